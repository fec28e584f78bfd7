//! Card payments (issue 22): the ledger's side of a payment provider's checkout. The shell
//! records a payment before it asks the provider, names the provider's session, and completes
//! it when the provider says it is paid; completing credits the account in the same
//! transaction that turns the row 'paid', so a replayed notification credits nothing.

use crate::backend::{Store, with_conn};
use crate::error::StoreError;
use crate::ledger::{Posting, fetch_account, recharge_in};
use crate::model::TransactionKind;

/// A payment as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: String,
    pub account_id: i64,
    pub amount_micros: i64,
    pub currency: String,
    /// `pending`, `paid`, `failed` (the provider's amount was not ours).
    pub state: String,
    pub provider_session: Option<String>,
    pub created_at_ms: i64,
    pub paid_at_ms: Option<i64>,
}

/// What completing a payment did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentCompletion {
    /// The account was credited now.
    Credited {
        account_id: i64,
        amount_micros: i64,
        balance_micros: i64,
    },
    /// It was completed before (paid, or failed on a mismatch): nothing more.
    AlreadyPaid,
    /// No payment has this id.
    Unknown,
    /// The provider's amount or currency is not the payment's: nothing credited, marked failed.
    Mismatch,
}

impl Store {
    /// Records a payment the customer is about to make, in the account's currency.
    pub async fn start_payment(
        &self,
        id: &str,
        account_id: i64,
        amount_micros: i64,
        now_ms: i64,
    ) -> Result<PaymentRow, StoreError> {
        crate::ledger::check_amount(amount_micros)?;
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let account = fetch_account(&mut conn.exec(), account_id).await?;
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO payments (id, account_id, amount_micros, currency, state, created_at_ms) \
             VALUES ($1, $2, $3, $4, 'pending', $5)",
        )
        .bind(id)
        .bind(account_id)
        .bind(amount_micros)
        .bind(&account.currency)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(PaymentRow {
            id: id.to_owned(),
            account_id,
            amount_micros,
            currency: account.currency,
            state: "pending".into(),
            provider_session: None,
            created_at_ms: now_ms,
            paid_at_ms: None,
        })
    }

    /// Names the provider's checkout session of a payment.
    pub async fn name_payment_session(&self, id: &str, session: &str) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE payments SET provider_session = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(session)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// A payment by its id.
    pub async fn payment(&self, id: &str) -> Result<Option<PaymentRow>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<PaymentRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, account_id, amount_micros, currency, state, provider_session, \
             created_at_ms, paid_at_ms FROM payments WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(row)
    }

    /// The provider says payment `id` is paid, `amount_micros` in `currency`: the first time,
    /// the account is credited (a `recharge` line keyed by the payment, the reseller's
    /// commission, a referral's reward) in the transaction that marks it paid.
    pub async fn complete_payment(
        &self,
        id: &str,
        amount_micros: i64,
        currency: &str,
        now_ms: i64,
    ) -> Result<PaymentCompletion, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let row: Option<PaymentRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "UPDATE payments SET state = 'paid', paid_at_ms = $2 \
             WHERE id = $1 AND state = 'pending' RETURNING id, account_id, amount_micros, \
             currency, state, provider_session, created_at_ms, paid_at_ms",
        )
        .bind(id)
        .bind(now_ms)
        .fetch_optional(&mut **c)
        .await)?;
        let Some(row) = row else {
            // Rolled back (nothing was written) before the look-up takes a connection.
            drop(transaction);
            return Ok(match self.payment(id).await? {
                Some(_) => PaymentCompletion::AlreadyPaid,
                None => PaymentCompletion::Unknown,
            });
        };
        if row.amount_micros != amount_micros || !row.currency.eq_ignore_ascii_case(currency) {
            with_conn!(&mut conn, c => sqlx::query(
                "UPDATE payments SET state = 'failed' WHERE id = $1",
            )
            .bind(id)
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
            transaction.commit().await?;
            return Ok(PaymentCompletion::Mismatch);
        }
        let key = format!("payment:{id}");
        let reference = format!("card payment {id}");
        let balance_micros = recharge_in(
            &mut conn,
            Posting {
                account_id: row.account_id,
                kind: TransactionKind::Recharge,
                amount_micros: row.amount_micros,
                call_id: None,
                reference: Some(&reference),
                idempotency_key: Some(&key),
                now_ms,
            },
        )
        .await?;
        crate::resellers::pay_payment_commission(
            &mut conn,
            row.account_id,
            row.amount_micros,
            now_ms,
        )
        .await?;
        let balance_micros =
            crate::self_service::reward_referral_in(&mut conn, row.account_id, now_ms)
                .await?
                .unwrap_or(balance_micros);
        transaction.commit().await?;
        Ok(PaymentCompletion::Credited {
            account_id: row.account_id,
            amount_micros: row.amount_micros,
            balance_micros,
        })
    }
}
