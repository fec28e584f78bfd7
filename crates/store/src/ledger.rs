//! Accounts, cards, caller IDs, the transaction log and failed-PIN counting.

use talktime_pii::Pii;

use crate::backend::{Conn, Store, with_conn};
use crate::error::StoreError;
use crate::exec::{Exec, record_struct};
use crate::model::{
    Account, AccountStatus, BalanceMismatch, CallerIdMatch, Card, CardKind, CardStatus, ExpiryRule,
    LedgerEntry, LockoutPolicy, NewAccount, NewCard, PinFailureState, TransactionKind,
};

/// The largest single amount the ledger accepts: a billion currency units. Keeps sums far
/// from i64 overflow (SQLite would silently turn an overflowing sum into a float).
pub const MAX_AMOUNT_MICROS: i64 = 1_000_000_000 * crate::model::MICROS_PER_UNIT;

record_struct! {
    #[derive(sqlx::FromRow)]
    pub(crate) struct AccountRow {
        pub(crate) id: i64,
        pub(crate) name: String,
        pub(crate) currency: String,
        pub(crate) balance_micros: i64,
        pub(crate) caller_id_min_balance_micros: i64,
        pub(crate) concurrency_limit: i64,
        pub(crate) owner_account_id: Option<i64>,
        pub(crate) tariff_id: Option<i64>,
        pub(crate) status: String,
        pub(crate) created_at_ms: i64,
        pub(crate) forward_destination: Option<String>,
        pub(crate) ivr_language: Option<String>,
    }
}

impl AccountRow {
    pub(crate) fn into_account(self) -> Result<Account, StoreError> {
        Ok(Account {
            id: self.id,
            name: self.name,
            currency: self.currency,
            balance_micros: self.balance_micros,
            caller_id_min_balance_micros: self.caller_id_min_balance_micros,
            concurrency_limit: self.concurrency_limit,
            owner_account_id: self.owner_account_id,
            tariff_id: self.tariff_id,
            status: AccountStatus::parse(&self.status)?,
            created_at_ms: self.created_at_ms,
            forward_destination: self.forward_destination.map(Pii::new),
            ivr_language: self.ivr_language,
        })
    }
}

record_struct! {
    #[derive(sqlx::FromRow)]
    pub(crate) struct CardRow {
        pub(crate) id: i64,
        pub(crate) account_id: i64,
        pub(crate) batch_id: Option<i64>,
        pub(crate) tariff_id: Option<i64>,
        pub(crate) kind: String,
        pub(crate) status: String,
        pub(crate) expires_at_ms: Option<i64>,
        pub(crate) valid_after_first_use_ms: Option<i64>,
        pub(crate) first_used_at_ms: Option<i64>,
        pub(crate) created_at_ms: i64,
        pub(crate) activation_fee_micros: i64,
    }
}

impl CardRow {
    pub(crate) fn into_card(self) -> Result<Card, StoreError> {
        Ok(Card {
            id: self.id,
            account_id: self.account_id,
            batch_id: self.batch_id,
            tariff_id: self.tariff_id,
            kind: CardKind::parse(&self.kind)?,
            status: CardStatus::parse(&self.status)?,
            expiry: ExpiryRule {
                expires_at_ms: self.expires_at_ms,
                valid_after_first_use_ms: self.valid_after_first_use_ms,
            },
            first_used_at_ms: self.first_used_at_ms,
            created_at_ms: self.created_at_ms,
            activation_fee_micros: self.activation_fee_micros,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    account_id: i64,
    kind: String,
    amount_micros: i64,
    balance_after_micros: i64,
    call_id: Option<String>,
    reference: Option<String>,
    created_at_ms: i64,
}

impl EntryRow {
    fn into_entry(self) -> Result<LedgerEntry, StoreError> {
        Ok(LedgerEntry {
            id: self.id,
            account_id: self.account_id,
            kind: TransactionKind::parse(&self.kind)?,
            amount_micros: self.amount_micros,
            balance_after_micros: self.balance_after_micros,
            call_id: self.call_id,
            reference: self.reference,
            created_at_ms: self.created_at_ms,
        })
    }
}

/// account id, balance, threshold, status, card id, card status, forward destination,
/// currency, IVR language.
type CallerIdRow = (
    i64,
    i64,
    i64,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

/// One balance change to post inside a write transaction.
pub(crate) struct Posting<'a> {
    pub(crate) account_id: i64,
    pub(crate) kind: TransactionKind,
    pub(crate) amount_micros: i64,
    pub(crate) call_id: Option<&'a str>,
    pub(crate) reference: Option<&'a str>,
    /// A client's key that makes this posting happen at most once per account.
    pub(crate) idempotency_key: Option<&'a str>,
    pub(crate) now_ms: i64,
}

/// Updates the cached balance and appends the transaction row, in the caller's transaction,
/// so the two never disagree. Returns the balance after.
macro_rules! insert_transaction_sql {
    () => {
        "INSERT INTO transactions (account_id, kind, amount_micros, balance_after_micros, \
         call_id, reference, idempotency_key, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    };
}
const INSERT_TRANSACTION: &str = insert_transaction_sql!();
const INSERT_TRANSACTION_RETURNING_ID: &str = concat!(insert_transaction_sql!(), " RETURNING id");

pub(crate) async fn post(exec: &mut Exec<'_>, posting: Posting<'_>) -> Result<i64, StoreError> {
    check_amount(posting.amount_micros.checked_abs().unwrap_or(i64::MAX))?;
    let updated: Option<(i64, Option<String>)> = exec
        .fetch_optional(
            "UPDATE accounts SET balance_micros = balance_micros + $1 WHERE id = $2 \
             RETURNING balance_micros, notify_below",
            &[posting.amount_micros.into(), posting.account_id.into()],
        )
        .await?;
    let (balance_after, notify_below) =
        updated.ok_or_else(|| StoreError::not_found("account", posting.account_id))?;
    let args = [
        posting.account_id.into(),
        posting.kind.as_str().into(),
        posting.amount_micros.into(),
        balance_after.into(),
        posting.call_id.into(),
        posting.reference.into(),
        posting.idempotency_key.into(),
        posting.now_ms.into(),
    ];
    let Some(thresholds) = notify_below.filter(|_| posting.amount_micros < 0) else {
        // Nobody is told of this line: pipelined, it goes out with what follows it.
        exec.defer(INSERT_TRANSACTION, &args).await?;
        return Ok(balance_after);
    };
    let (transaction_id,): (i64,) = exec
        .fetch_one(INSERT_TRANSACTION_RETURNING_ID, &args)
        .await?;
    crate::notifications::queue_crossings(
        exec,
        crate::notifications::Crossing {
            account_id: posting.account_id,
            transaction_id,
            before_micros: balance_after - posting.amount_micros,
            after_micros: balance_after,
        },
        &thresholds,
        posting.now_ms,
    )
    .await?;
    Ok(balance_after)
}

/// What [`Store::recharge_once`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RechargeOutcome {
    pub balance_micros: i64,
    /// True when the key had been used already and nothing was posted.
    pub replayed: bool,
}

/// A recharge inside the caller's transaction: refused on a disposable card's account.
pub(crate) async fn recharge_in(
    conn: &mut Conn<'_>,
    posting: Posting<'_>,
) -> Result<i64, StoreError> {
    check_amount(posting.amount_micros)?;
    let disposable: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
        "SELECT id FROM cards WHERE account_id = $1 AND kind = 'disposable'",
    )
    .bind(posting.account_id)
    .fetch_optional(&mut **c)
    .await)?;
    if let Some(card_id) = disposable {
        return Err(StoreError::DisposableCard { card_id });
    }
    post(&mut conn.exec(), posting).await
}

pub(crate) fn check_amount(amount_micros: i64) -> Result<(), StoreError> {
    if !(0..=MAX_AMOUNT_MICROS).contains(&amount_micros) {
        return Err(StoreError::InvalidArgument(format!(
            "amount {amount_micros} micros is outside 0..={MAX_AMOUNT_MICROS}"
        )));
    }
    Ok(())
}

/// An account's balance, inside the caller's transaction.
pub(crate) async fn fetch_balance(exec: &mut Exec<'_>, account_id: i64) -> Result<i64, StoreError> {
    let balance: Option<(i64,)> = exec
        .fetch_optional(
            "SELECT balance_micros FROM accounts WHERE id = $1",
            &[account_id.into()],
        )
        .await?;
    balance
        .map(|(balance,)| balance)
        .ok_or_else(|| StoreError::not_found("account", account_id))
}

pub(crate) async fn fetch_account(
    exec: &mut Exec<'_>,
    account_id: i64,
) -> Result<Account, StoreError> {
    let row: Option<AccountRow> = exec
        .fetch_optional(
            "SELECT id, name, currency, balance_micros, caller_id_min_balance_micros, \
             concurrency_limit, owner_account_id, tariff_id, status, created_at_ms, \
             forward_destination, ivr_language FROM accounts WHERE id = $1",
            &[account_id.into()],
        )
        .await?;
    row.ok_or_else(|| StoreError::not_found("account", account_id))?
        .into_account()
}

pub(crate) async fn fetch_card(exec: &mut Exec<'_>, card_id: i64) -> Result<Card, StoreError> {
    let row: Option<CardRow> = exec
        .fetch_optional(
            "SELECT id, account_id, batch_id, tariff_id, kind, status, expires_at_ms, \
             valid_after_first_use_ms, first_used_at_ms, created_at_ms, activation_fee_micros \
             FROM cards WHERE id = $1",
            &[card_id.into()],
        )
        .await?;
    row.ok_or_else(|| StoreError::not_found("card", card_id))?
        .into_card()
}

pub(crate) async fn insert_account(
    conn: &mut Conn<'_>,
    account: &NewAccount,
    now_ms: i64,
) -> Result<i64, StoreError> {
    if account.concurrency_limit < 0 || account.caller_id_min_balance_micros < 0 {
        return Err(StoreError::InvalidArgument(
            "concurrency limit and caller-ID threshold must not be negative".into(),
        ));
    }
    if let Some(owner_id) = account.owner_account_id {
        // One level only: an owner never has an owner itself, so a call locks at most two
        // account rows, always the child before the owner.
        let owner = fetch_account(&mut conn.exec(), owner_id).await?;
        if owner.owner_account_id.is_some() {
            return Err(StoreError::InvalidArgument(format!(
                "account {owner_id} has an owner itself and cannot own accounts"
            )));
        }
    }
    let id: i64 = with_conn!(conn, c => sqlx::query_scalar(
        "INSERT INTO accounts (name, currency, caller_id_min_balance_micros, concurrency_limit, \
         owner_account_id, tariff_id, status, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7) RETURNING id",
    )
    .bind(&account.name)
    .bind(&account.currency)
    .bind(account.caller_id_min_balance_micros)
    .bind(account.concurrency_limit)
    .bind(account.owner_account_id)
    .bind(account.tariff_id)
    .bind(now_ms)
    .fetch_one(&mut **c)
    .await)?;
    Ok(id)
}

/// A shared balance's low-balance rule (seed 004).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowBalanceRule {
    /// Below this much free credit the rule applies.
    pub below_micros: i64,
    /// Calls at once allowed then.
    pub calls: i64,
    /// What each new call may hold then, if capped.
    pub call_cap_micros: Option<i64>,
}

/// Changes to an account's limits ([`Store::set_account_limits`]); `None` keeps a field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountLimits {
    pub owner_account_id: Option<i64>,
    pub caller_id_min_balance_micros: Option<i64>,
    pub concurrency_limit: Option<i64>,
    pub tariff_id: Option<i64>,
}

/// Inserts a card and its account; `Ok(None)` when the PIN is already taken. `pin_hash` is
/// the card's PIN under the store's key ([`Store::pin_hash`]).
pub(crate) async fn insert_card(
    conn: &mut Conn<'_>,
    card: &NewCard,
    pin_hash: &str,
    batch_id: Option<i64>,
    now_ms: i64,
) -> Result<Option<Card>, StoreError> {
    check_amount(card.initial_value_micros)?;
    check_amount(card.activation_fee_micros)?;
    if card.pin.expose().is_empty() {
        return Err(StoreError::InvalidArgument("empty PIN".into()));
    }
    let taken: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
        "SELECT id FROM cards WHERE pin_hash = $1",
    )
    .bind(pin_hash)
    .fetch_optional(&mut **c)
    .await)?;
    if taken.is_some() {
        return Ok(None);
    }
    let account = NewAccount {
        name: "card".to_owned(),
        currency: card.currency.clone(),
        caller_id_min_balance_micros: card.caller_id_min_balance_micros,
        concurrency_limit: card.concurrency_limit,
        owner_account_id: card.owner_account_id,
        tariff_id: card.tariff_id,
    };
    let account_id = insert_account(conn, &account, now_ms).await?;
    // The pre-check above makes a clash rare; the UNIQUE index still decides under races.
    let card_id: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
        "INSERT INTO cards (pin_hash, account_id, batch_id, tariff_id, kind, status, expires_at_ms, \
         valid_after_first_use_ms, created_at_ms, activation_fee_micros) \
         VALUES ($1, $2, $3, $4, $5, 'new', $6, $7, $8, $9) \
         ON CONFLICT (pin_hash) DO NOTHING RETURNING id",
    )
    .bind(pin_hash)
    .bind(account_id)
    .bind(batch_id)
    .bind(card.tariff_id)
    .bind(card.kind.as_str())
    .bind(card.expiry.expires_at_ms)
    .bind(card.expiry.valid_after_first_use_ms)
    .bind(now_ms)
    .bind(card.activation_fee_micros)
    .fetch_optional(&mut **c)
    .await)?;
    let Some(card_id) = card_id else {
        return Ok(None);
    };
    if card.initial_value_micros > 0 {
        let reference = match batch_id {
            Some(batch) => format!("card value, batch {batch}"),
            None => "card value".to_owned(),
        };
        post(
            &mut conn.exec(),
            Posting {
                account_id,
                kind: TransactionKind::Recharge,
                amount_micros: card.initial_value_micros,
                call_id: None,
                reference: Some(&reference),
                idempotency_key: None,
                now_ms,
            },
        )
        .await?;
    }
    Ok(Some(Card {
        id: card_id,
        account_id,
        batch_id,
        tariff_id: card.tariff_id,
        kind: card.kind,
        status: CardStatus::New,
        expiry: card.expiry,
        first_used_at_ms: None,
        created_at_ms: now_ms,
        activation_fee_micros: card.activation_fee_micros,
    }))
}

impl Store {
    /// Creates an account with a zero balance.
    pub async fn create_account(
        &self,
        account: &NewAccount,
        now_ms: i64,
    ) -> Result<Account, StoreError> {
        let mut transaction = self.begin_write().await?;
        let id = insert_account(&mut transaction.conn(), account, now_ms).await?;
        let created = fetch_account(&mut transaction.conn().exec(), id).await?;
        transaction.commit().await?;
        Ok(created)
    }

    /// Creates a card with its own account; its initial value is posted as a recharge row.
    pub async fn create_card(&self, card: &NewCard, now_ms: i64) -> Result<Card, StoreError> {
        let mut transaction = self.begin_write().await?;
        let pin_hash = self.pin_hash(&card.pin);
        let created = insert_card(&mut transaction.conn(), card, &pin_hash, None, now_ms).await?;
        let created = created.ok_or_else(|| {
            StoreError::InvalidArgument("a card with this PIN already exists".into())
        })?;
        transaction.commit().await?;
        Ok(created)
    }

    /// An account by id.
    pub async fn account(&self, account_id: i64) -> Result<Account, StoreError> {
        let mut read = self.acquire_call_read().await?;
        fetch_account(&mut read.exec(), account_id).await
    }

    /// A card by id.
    pub async fn card(&self, card_id: i64) -> Result<Card, StoreError> {
        let mut read = self.acquire_call_read().await?;
        fetch_card(&mut read.exec(), card_id).await
    }

    /// The card whose PIN this is.
    pub async fn card_by_pin(&self, pin: &Pii<String>) -> Result<Option<Card>, StoreError> {
        let pin_hash = self.pin_hash(pin);
        let mut read = self.acquire_call_read().await?;
        let row: Option<CardRow> = read
            .exec()
            .fetch_optional(
                "SELECT id, account_id, batch_id, tariff_id, kind, status, expires_at_ms, \
                 valid_after_first_use_ms, first_used_at_ms, created_at_ms, \
                 activation_fee_micros FROM cards WHERE pin_hash = $1",
                &[(&pin_hash).into()],
            )
            .await?;
        row.map(CardRow::into_card).transpose()
    }

    /// The cached balance of an account.
    pub async fn balance(&self, account_id: i64) -> Result<i64, StoreError> {
        Ok(self.account(account_id).await?.balance_micros)
    }

    /// Sets an account's status (block, unblock, close).
    pub async fn set_account_status(
        &self,
        account_id: i64,
        status: AccountStatus,
    ) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let result = with_conn!(&mut conn, c => sqlx::query(
            "UPDATE accounts SET status = $1 WHERE id = $2",
        )
        .bind(status.as_str())
        .bind(account_id)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        if result == 0 {
            return Err(StoreError::not_found("account", account_id));
        }
        Ok(())
    }

    /// Blocks or unblocks a card (`Blocked`/`Active`), or marks it expired.
    pub async fn set_card_status(
        &self,
        card_id: i64,
        status: CardStatus,
    ) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let result = with_conn!(&mut conn, c => sqlx::query(
            "UPDATE cards SET status = $1 WHERE id = $2",
        )
        .bind(status.as_str())
        .bind(card_id)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        if result == 0 {
            return Err(StoreError::not_found("card", card_id));
        }
        Ok(())
    }

    async fn post_one(
        &self,
        account_id: i64,
        kind: TransactionKind,
        amount_micros: i64,
        reference: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let balance = post(
            &mut transaction.conn().exec(),
            Posting {
                account_id,
                kind,
                amount_micros,
                call_id: None,
                reference,
                idempotency_key: None,
                now_ms,
            },
        )
        .await?;
        transaction.commit().await?;
        Ok(balance)
    }

    /// Adds credit. Refused on a disposable card's account. Returns the new balance.
    pub async fn recharge(
        &self,
        account_id: i64,
        amount_micros: i64,
        reference: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let balance = recharge_in(
            &mut transaction.conn(),
            Posting {
                account_id,
                kind: TransactionKind::Recharge,
                amount_micros,
                call_id: None,
                reference,
                idempotency_key: None,
                now_ms,
            },
        )
        .await?;
        crate::resellers::pay_payment_commission(
            &mut transaction.conn(),
            account_id,
            amount_micros,
            now_ms,
        )
        .await?;
        transaction.commit().await?;
        Ok(balance)
    }

    /// [`Store::recharge`] at most once per account and `key`: a repeat with the same key and
    /// amount (a client retrying after a lost answer) posts nothing and reports the balance as
    /// it is now; the same key with another amount is refused. The unique index on
    /// (account, key) holds even when two repeats race.
    pub async fn recharge_once(
        &self,
        account_id: i64,
        amount_micros: i64,
        key: &str,
        now_ms: i64,
    ) -> Result<RechargeOutcome, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let earlier: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT amount_micros FROM transactions \
             WHERE account_id = $1 AND idempotency_key = $2",
        )
        .bind(account_id)
        .bind(key)
        .fetch_optional(&mut **c)
        .await)?;
        let outcome = match earlier {
            Some(earlier) if earlier == amount_micros => RechargeOutcome {
                balance_micros: fetch_balance(&mut conn.exec(), account_id).await?,
                replayed: true,
            },
            Some(earlier) => {
                return Err(StoreError::InvalidArgument(format!(
                    "recharge key {key:?} was used for {earlier} micros, not {amount_micros}"
                )));
            }
            None => RechargeOutcome {
                balance_micros: recharge_in(
                    &mut conn,
                    Posting {
                        account_id,
                        kind: TransactionKind::Recharge,
                        amount_micros,
                        call_id: None,
                        reference: Some(key),
                        idempotency_key: Some(key),
                        now_ms,
                    },
                )
                .await?,
                replayed: false,
            },
        };
        if !outcome.replayed {
            crate::resellers::pay_payment_commission(&mut conn, account_id, amount_micros, now_ms)
                .await?;
        }
        transaction.commit().await?;
        Ok(outcome)
    }

    /// Gives credit back (positive `amount_micros`). Returns the new balance.
    pub async fn refund(
        &self,
        account_id: i64,
        amount_micros: i64,
        reference: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        check_amount(amount_micros)?;
        self.post_one(
            account_id,
            TransactionKind::Refund,
            amount_micros,
            reference,
            now_ms,
        )
        .await
    }

    /// An operator correction of either sign. Returns the new balance.
    pub async fn adjust(
        &self,
        account_id: i64,
        amount_micros: i64,
        reference: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.post_one(
            account_id,
            TransactionKind::Adjustment,
            amount_micros,
            reference,
            now_ms,
        )
        .await
    }

    /// Charges a maintenance fee (the amount computed by billing) as it is, even below zero.
    pub async fn charge_maintenance(
        &self,
        account_id: i64,
        fee_micros: i64,
        reference: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        check_amount(fee_micros)?;
        self.post_one(
            account_id,
            TransactionKind::Maintenance,
            -fee_micros,
            reference,
            now_ms,
        )
        .await
    }

    /// Marks a card's first use and charges the activation fee, once: returns `false` (and
    /// charges nothing) when the card was already activated. Expired or blocked cards are refused.
    pub async fn activate_card(
        &self,
        card_id: i64,
        fee_micros: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        check_amount(fee_micros)?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let card = fetch_card(&mut conn.exec(), card_id).await?;
        check_card_usable(&card, now_ms)?;
        if card.first_used_at_ms.is_some() {
            return Ok(false);
        }
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE cards SET first_used_at_ms = $1, status = 'active' WHERE id = $2",
        )
        .bind(now_ms)
        .bind(card_id)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        if fee_micros > 0 {
            post(
                &mut conn.exec(),
                Posting {
                    account_id: card.account_id,
                    kind: TransactionKind::Activation,
                    amount_micros: -fee_micros,
                    call_id: None,
                    reference: None,
                    idempotency_key: None,
                    now_ms,
                },
            )
            .await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// Marks every card whose rule says it has expired at `now_ms`; returns how many.
    /// Balances are left as they are (forfeiture, if any, is an adjustment).
    pub async fn expire_cards(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let result = with_conn!(&mut conn, c => sqlx::query(
            "UPDATE cards SET status = 'expired' WHERE status <> 'expired' AND ( \
             (expires_at_ms IS NOT NULL AND expires_at_ms <= $1) OR \
             (valid_after_first_use_ms IS NOT NULL AND first_used_at_ms IS NOT NULL \
              AND first_used_at_ms + valid_after_first_use_ms <= $1))",
        )
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        transaction.commit().await?;
        Ok(result)
    }

    /// Changes an account's limits: its owner (one level, same currency), the caller-ID
    /// threshold, the calls it may carry at once (a shared balance) and its tariff. `None`
    /// leaves a field as it is.
    pub async fn set_account_limits(
        &self,
        account_id: i64,
        limits: &AccountLimits,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let account = fetch_account(&mut conn.exec(), account_id).await?;
        if let Some(owner_id) = limits.owner_account_id {
            let owner = fetch_account(&mut conn.exec(), owner_id).await?;
            if owner_id == account_id || owner.owner_account_id.is_some() {
                return Err(StoreError::InvalidArgument(format!(
                    "account {owner_id} cannot own account {account_id} (one level of owners)"
                )));
            }
            if owner.currency != account.currency {
                return Err(StoreError::InvalidArgument(format!(
                    "account {owner_id} is in {}, account {account_id} in {}",
                    owner.currency, account.currency
                )));
            }
        }
        if limits.caller_id_min_balance_micros.is_some_and(|v| v < 0)
            || limits.concurrency_limit.is_some_and(|v| v < 0)
        {
            return Err(StoreError::InvalidArgument(
                "limits must not be negative".into(),
            ));
        }
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE accounts SET owner_account_id = COALESCE($2, owner_account_id), \
             caller_id_min_balance_micros = COALESCE($3, caller_id_min_balance_micros), \
             concurrency_limit = COALESCE($4, concurrency_limit), \
             tariff_id = COALESCE($5, tariff_id) WHERE id = $1",
        )
        .bind(account_id)
        .bind(limits.owner_account_id)
        .bind(limits.caller_id_min_balance_micros)
        .bind(limits.concurrency_limit)
        .bind(limits.tariff_id)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        transaction.commit().await?;
        Ok(())
    }

    /// Sets (or with `None` removes) a shared balance's low-balance rule: below `below_micros`
    /// of free credit at most `calls` calls at once, each holding at most `call_cap_micros`.
    pub async fn set_low_balance_rule(
        &self,
        account_id: i64,
        rule: Option<LowBalanceRule>,
    ) -> Result<(), StoreError> {
        if let Some(rule) = rule {
            check_amount(rule.below_micros)?;
            if rule.calls < 1 {
                return Err(StoreError::InvalidArgument(
                    "a low-balance rule allows at least one call".into(),
                ));
            }
            if let Some(cap) = rule.call_cap_micros {
                check_amount(cap)?;
            }
        }
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        fetch_account(&mut conn.exec(), account_id).await?;
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE accounts SET low_balance_micros = $2, low_balance_calls = $3, \
             low_balance_call_cap_micros = $4 WHERE id = $1",
        )
        .bind(account_id)
        .bind(rule.map(|rule| rule.below_micros))
        .bind(rule.map_or(1, |rule| rule.calls))
        .bind(rule.and_then(|rule| rule.call_cap_micros))
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        transaction.commit().await?;
        Ok(())
    }

    /// An account's low-balance rule, if it has one.
    pub async fn low_balance_rule(
        &self,
        account_id: i64,
    ) -> Result<Option<LowBalanceRule>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<(Option<i64>, i64, Option<i64>)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT low_balance_micros, low_balance_calls, low_balance_call_cap_micros \
             FROM accounts WHERE id = $1",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        let (below, calls, cap) =
            row.ok_or_else(|| StoreError::not_found("account", account_id))?;
        Ok(below.map(|below_micros| LowBalanceRule {
            below_micros,
            calls,
            call_cap_micros: cap,
        }))
    }

    /// What an account was charged for calls (call charges and activations) from `since_ms`.
    pub async fn spent_since(&self, account_id: i64, since_ms: i64) -> Result<i64, StoreError> {
        // A call of an account with a daily limit asks: a call's read.
        let mut read = self.acquire_call_read().await?;
        let (spent,): (i64,) = read
            .exec()
            .fetch_one(
                "SELECT CAST(COALESCE(SUM(-amount_micros), 0) AS BIGINT) FROM transactions \
                 WHERE account_id = $1 AND created_at_ms >= $2 \
                 AND kind IN ('call_charge', 'activation')",
                &[account_id.into(), since_ms.into()],
            )
            .await?;
        Ok(spent)
    }

    /// The transaction log of an account, oldest first.
    pub async fn transactions(&self, account_id: i64) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<EntryRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, account_id, kind, amount_micros, balance_after_micros, call_id, \
             reference, created_at_ms FROM transactions WHERE account_id = $1 ORDER BY id",
        )
        .bind(account_id)
        .fetch_all(&mut **c)
        .await)?;
        rows.into_iter().map(EntryRow::into_entry).collect()
    }

    /// The last `limit` rows of an account's transaction log, newest first (a page a customer
    /// reads, however long the log is).
    pub async fn recent_transactions(
        &self,
        account_id: i64,
        limit: i64,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<EntryRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, account_id, kind, amount_micros, balance_after_micros, call_id, \
             reference, created_at_ms FROM transactions WHERE account_id = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(account_id)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?;
        rows.into_iter().map(EntryRow::into_entry).collect()
    }

    /// Every account whose cached balance is not the sum of its transaction rows (empty when
    /// the ledger is consistent).
    pub async fn check_balances(&self) -> Result<Vec<BalanceMismatch>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<(i64, i64, i64)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT a.id, a.balance_micros, CAST(COALESCE(t.total, 0) AS BIGINT) \
             FROM accounts a LEFT JOIN \
             (SELECT account_id, SUM(amount_micros) AS total FROM transactions GROUP BY account_id) t \
             ON t.account_id = a.id \
             WHERE a.balance_micros <> COALESCE(t.total, 0) ORDER BY a.id",
        )
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(account_id, cached_micros, sum_micros)| BalanceMismatch {
                account_id,
                cached_micros,
                sum_micros,
            })
            .collect())
    }

    /// Sets (or with `None` clears) the preset destination a DID-forwarding access number
    /// connects this account's registered callers to (seed 003). Stored as given; the engine
    /// normalizes it like a dialled number. An empty destination is refused.
    pub async fn set_forward_destination(
        &self,
        account_id: i64,
        destination: Option<&Pii<String>>,
    ) -> Result<(), StoreError> {
        let destination = destination.map(|number| number.expose().trim());
        if destination.is_some_and(str::is_empty) {
            return Err(StoreError::InvalidArgument(
                "empty forward destination (use None to clear it)".into(),
            ));
        }
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let result = with_conn!(&mut conn, c => sqlx::query(
            "UPDATE accounts SET forward_destination = $1 WHERE id = $2",
        )
        .bind(destination)
        .bind(account_id)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        if result == 0 {
            return Err(StoreError::not_found("account", account_id));
        }
        Ok(())
    }

    /// Registers a calling number to an account for pinless access (replaces an earlier owner).
    pub async fn register_caller_id(
        &self,
        account_id: i64,
        number: &Pii<String>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        fetch_account(&mut conn.exec(), account_id).await?;
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO caller_ids (number, account_id, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (number) DO UPDATE SET account_id = excluded.account_id, \
             created_at_ms = excluded.created_at_ms",
        )
        .bind(number.expose())
        .bind(account_id)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// The calling numbers registered to an account, in order.
    pub async fn caller_ids_of(&self, account_id: i64) -> Result<Vec<Pii<String>>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let numbers: Vec<String> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT number FROM caller_ids WHERE account_id = $1 ORDER BY number",
        )
        .bind(account_id)
        .fetch_all(&mut **c)
        .await)?;
        Ok(numbers.into_iter().map(Pii::new).collect())
    }

    /// Removes a calling number; returns whether it was registered.
    pub async fn remove_caller_id(&self, number: &Pii<String>) -> Result<bool, StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let result = with_conn!(&mut conn, c => sqlx::query(
            "DELETE FROM caller_ids WHERE number = $1",
        )
        .bind(number.expose())
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(result > 0)
    }

    /// Finds the account a calling number is registered to, and whether it is recognised
    /// (active and at least at its caller-ID balance threshold).
    pub async fn lookup_caller_id(
        &self,
        number: &Pii<String>,
    ) -> Result<Option<CallerIdMatch>, StoreError> {
        let mut read = self.acquire_call_read().await?;
        let row: Option<CallerIdRow> = read
            .exec()
            .fetch_optional(
                "SELECT a.id, a.balance_micros, a.caller_id_min_balance_micros, a.status, \
                 cards.id, cards.status, a.forward_destination, a.currency, a.ivr_language \
                 FROM caller_ids n JOIN accounts a ON a.id = n.account_id \
                 LEFT JOIN cards ON cards.account_id = a.id WHERE n.number = $1",
                &[number.expose().into()],
            )
            .await?;
        Ok(row.map(|row| {
            let (
                account_id,
                balance_micros,
                threshold,
                status,
                card_id,
                card_status,
                forward,
                currency,
                ivr_language,
            ) = row;
            let card_usable = !matches!(card_status.as_deref(), Some("blocked" | "expired"));
            let active = status == "active";
            CallerIdMatch {
                account_id,
                card_id,
                recognised: active && card_usable && balance_micros >= threshold,
                balance_micros,
                forward_destination: forward.map(Pii::new),
                active,
                minimum_micros: threshold,
                currency,
                ivr_language,
            }
        }))
    }

    /// Counts a wrong PIN from `caller_id`; locks the number out after `policy.max_failures`
    /// failures within `policy.window_ms`.
    pub async fn record_pin_failure(
        &self,
        caller_id: &Pii<String>,
        policy: LockoutPolicy,
        now_ms: i64,
    ) -> Result<PinFailureState, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let row: Option<(i64, i64, Option<i64>)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT failures, window_started_ms, locked_until_ms FROM pin_failures \
             WHERE caller_id = $1",
        )
        .bind(caller_id.expose())
        .fetch_optional(&mut **c)
        .await)?;
        let (failures, window_started_ms) = match row {
            Some((failures, started, locked_until))
                if now_ms - started < policy.window_ms
                    || locked_until.is_some_and(|until| until > now_ms) =>
            {
                (failures.saturating_add(1), started)
            }
            _ => (1, now_ms),
        };
        let locked_until_ms =
            (failures >= policy.max_failures).then(|| now_ms.saturating_add(policy.lockout_ms));
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO pin_failures (caller_id, failures, window_started_ms, locked_until_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (caller_id) DO UPDATE SET \
             failures = excluded.failures, window_started_ms = excluded.window_started_ms, \
             locked_until_ms = excluded.locked_until_ms",
        )
        .bind(caller_id.expose())
        .bind(failures)
        .bind(window_started_ms)
        .bind(locked_until_ms)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        transaction.commit().await?;
        Ok(PinFailureState {
            failures,
            locked_until_ms,
        })
    }

    /// Until when `caller_id` is locked out, if it is at `now_ms`.
    pub async fn pin_lockout(
        &self,
        caller_id: &Pii<String>,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut read = self.acquire_call_read().await?;
        let until: Option<(Option<i64>,)> = read
            .exec()
            .fetch_optional(
                "SELECT locked_until_ms FROM pin_failures WHERE caller_id = $1",
                &[caller_id.expose().into()],
            )
            .await?;
        Ok(until
            .and_then(|(until,)| until)
            .filter(|until| *until > now_ms))
    }

    /// Forgets the failures of `caller_id` (after a correct PIN).
    pub async fn clear_pin_failures(&self, caller_id: &Pii<String>) -> Result<(), StoreError> {
        // Every right PIN asks; most callers never missed one, and a read costs no turn of
        // the one writer.
        let failed: Option<(i64,)> = self
            .acquire_call_read()
            .await?
            .exec()
            .fetch_optional(
                "SELECT CAST(1 AS BIGINT) FROM pin_failures WHERE caller_id = $1",
                &[caller_id.expose().into()],
            )
            .await?;
        if failed.is_none() {
            return Ok(());
        }
        let mut write = self.begin_call_statement().await?;
        write
            .exec()
            .execute(
                "DELETE FROM pin_failures WHERE caller_id = $1",
                &[caller_id.expose().into()],
            )
            .await?;
        write.commit().await
    }
}

/// Refuses blocked and expired cards.
pub(crate) fn check_card_usable(card: &Card, now_ms: i64) -> Result<(), StoreError> {
    if card.status == CardStatus::Blocked {
        return Err(StoreError::NotUsable {
            entity: "card",
            id: card.id,
            status: "blocked".into(),
        });
    }
    if card.is_expired(now_ms) {
        return Err(StoreError::NotUsable {
            entity: "card",
            id: card.id,
            status: "expired".into(),
        });
    }
    Ok(())
}
