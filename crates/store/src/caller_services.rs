//! What a caller does for themselves over the IVR (issue 21): recharge with a voucher, change
//! a refillable card's PIN, keep speed dials, and have the IVR remember their language.
//!
//! Vouchers are a second kind of PIN: random digit codes made in batches, kept only as keyed
//! hashes (the PIN key, with a `voucher:` domain so a code and a PIN never share a hash). A
//! redemption marks the voucher used and credits the account in one transaction, through one
//! conditional UPDATE (`... WHERE used_at_ms IS NULL`): two calls entering the same code at
//! once both reach it, one of them changes the row and the other finds it used.

use std::io::Write;

use talktime_billing::format_micros;
use talktime_pii::Pii;

use crate::backend::{Store, with_conn};
use crate::cards::random_digits;
use crate::error::StoreError;
use crate::ledger::{Posting, check_amount, fetch_account, post, recharge_in};
use crate::model::TransactionKind;

/// Voucher code lengths the generator accepts: long enough that guessing one (each wrong try
/// counts towards the caller's lock-out like a wrong PIN) is hopeless.
pub const VOUCHER_CODE_LENGTHS: std::ops::RangeInclusive<u32> = 10..=18;

/// Speed-dial slots: the keys 1 to 9.
pub const SPEED_DIAL_SLOTS: std::ops::RangeInclusive<u8> = 1..=9;

/// Fresh codes tried per voucher before giving up.
const CODE_ATTEMPTS: u32 = 64;

/// What [`Store::generate_vouchers`] creates.
#[derive(Clone, Debug)]
pub struct VoucherBatchSpec {
    pub name: String,
    pub count: u32,
    /// Digits per code, within [`VOUCHER_CODE_LENGTHS`].
    pub code_length: u32,
    /// What each voucher adds, micros.
    pub value_micros: i64,
    /// Only an account in this currency can use them.
    pub currency: String,
    /// After this (epoch ms) a voucher is refused.
    pub expires_at_ms: Option<i64>,
    /// A gift card's design name (`None`: a plain voucher).
    pub design: Option<String>,
}

/// A generated batch: the only place its codes exist in the clear.
#[derive(Clone, Debug)]
pub struct VoucherBatch {
    pub id: i64,
    pub name: String,
    pub value_micros: i64,
    pub currency: String,
    pub expires_at_ms: Option<i64>,
    /// Voucher ids, in creation order.
    pub voucher_ids: Vec<i64>,
    /// Their codes, in the order of `voucher_ids`.
    pub codes: Vec<Pii<String>>,
}

impl VoucherBatch {
    /// The batch as CSV (`voucher_id,code,value,currency,expires_at_ms`) for printing. It
    /// holds the codes: keep it secret.
    pub fn write_csv<W: Write>(&self, writer: W) -> Result<(), StoreError> {
        let mut csv_writer = csv::Writer::from_writer(writer);
        csv_writer.write_record(["voucher_id", "code", "value", "currency", "expires_at_ms"])?;
        let expires = self
            .expires_at_ms
            .map(|at| at.to_string())
            .unwrap_or_default();
        for (id, code) in self.voucher_ids.iter().zip(&self.codes) {
            csv_writer.write_record([
                id.to_string(),
                code.expose().clone(),
                format_micros(self.value_micros),
                self.currency.clone(),
                expires.clone(),
            ])?;
        }
        csv_writer.flush()?;
        Ok(())
    }
}

/// One voucher as the operator sees it (never its code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoucherRow {
    pub id: i64,
    pub batch_id: i64,
    pub value_micros: i64,
    pub currency: String,
    pub status: String,
    pub expires_at_ms: Option<i64>,
    pub used_at_ms: Option<i64>,
    pub used_by_account_id: Option<i64>,
    pub used_call_id: Option<String>,
}

/// Digits of a gift card bought in the portal.
const GIFT_CARD_CODE_LENGTH: u32 = 14;

/// What buying a gift card did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GiftCardPurchase {
    /// Made: its code (shown to the buyer once) and the buyer's balance after.
    Bought {
        voucher_id: i64,
        code: Pii<String>,
        balance_micros: i64,
    },
    /// The same form again: nothing more (the code was shown the first time).
    Replayed,
    NotEnoughCredit {
        free_micros: i64,
    },
}

/// What entering a voucher code did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redemption {
    /// The voucher's value was added; the account's balance is now `balance_micros`.
    Credited {
        voucher_id: i64,
        amount_micros: i64,
        balance_micros: i64,
    },
    /// No voucher has this code.
    Unknown,
    /// It was used before (by this account or another).
    AlreadyUsed,
    /// Past its expiry, or disabled by the operator.
    Expired,
    /// The voucher is in another currency than the account.
    WrongCurrency,
    /// Disposable cards are never recharged (seed 002, tip 3).
    NotRefillable,
}

/// What a PIN change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinChange {
    Changed,
    /// Another card has this PIN. Tell the caller no more than "choose another" and count it
    /// as a PIN guess: it reveals what trying the PIN at the prompt would.
    Taken,
    /// Disposable cards keep their PIN.
    NotRefillable,
}

fn check_slot(slot: u8) -> Result<(), StoreError> {
    if SPEED_DIAL_SLOTS.contains(&slot) {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument(format!(
            "speed dial {slot} is outside 1-9"
        )))
    }
}

type VoucherState = (Option<i64>, String, Option<i64>, String);

impl Store {
    /// The stored form of a voucher code: the PIN key's hash in the voucher domain.
    fn voucher_hash(&self, code: &Pii<String>) -> String {
        self.pin_hash(&Pii::new(format!("voucher:{}", code.expose())))
    }

    /// Creates a batch of vouchers with random unique codes, in one transaction.
    pub async fn generate_vouchers(
        &self,
        spec: &VoucherBatchSpec,
        now_ms: i64,
    ) -> Result<VoucherBatch, StoreError> {
        if !VOUCHER_CODE_LENGTHS.contains(&spec.code_length) {
            return Err(StoreError::InvalidArgument(format!(
                "voucher code length {} is outside {VOUCHER_CODE_LENGTHS:?}",
                spec.code_length
            )));
        }
        if spec.value_micros <= 0 {
            return Err(StoreError::InvalidArgument(
                "a voucher's value must be above zero".into(),
            ));
        }
        check_amount(spec.value_micros)?;
        talktime_billing::Currency::new(&spec.currency)
            .map_err(|error| StoreError::InvalidArgument(error.to_string()))?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let batch_id: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "INSERT INTO voucher_batches (name, currency, value_micros, voucher_count, \
             code_length, expires_at_ms, created_at_ms, design) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&spec.name)
        .bind(spec.currency.to_ascii_uppercase())
        .bind(spec.value_micros)
        .bind(i64::from(spec.count))
        .bind(i64::from(spec.code_length))
        .bind(spec.expires_at_ms)
        .bind(now_ms)
        .bind(spec.design.as_deref())
        .fetch_one(&mut **c)
        .await)?;
        let mut voucher_ids = Vec::with_capacity(spec.count as usize);
        let mut codes = Vec::with_capacity(spec.count as usize);
        let currency = spec.currency.to_ascii_uppercase();
        for _ in 0..spec.count {
            let (id, code) = self
                .insert_voucher(
                    &mut conn,
                    batch_id,
                    spec.code_length,
                    spec.value_micros,
                    &currency,
                    spec.expires_at_ms,
                    now_ms,
                )
                .await?;
            voucher_ids.push(id);
            codes.push(code);
        }
        transaction.commit().await?;
        Ok(VoucherBatch {
            id: batch_id,
            name: spec.name.clone(),
            value_micros: spec.value_micros,
            currency: spec.currency.to_ascii_uppercase(),
            expires_at_ms: spec.expires_at_ms,
            voucher_ids,
            codes,
        })
    }

    /// One voucher of a batch with a fresh random code; its id and code.
    #[allow(clippy::too_many_arguments)]
    async fn insert_voucher(
        &self,
        conn: &mut crate::backend::Conn<'_>,
        batch_id: i64,
        code_length: u32,
        value_micros: i64,
        currency: &str,
        expires_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(i64, Pii<String>), StoreError> {
        for _ in 0..CODE_ATTEMPTS {
            let code = random_digits(code_length);
            let hash = self.voucher_hash(&code);
            let id: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
                "INSERT INTO vouchers (batch_id, code_hash, value_micros, currency, \
                 expires_at_ms, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (code_hash) DO NOTHING RETURNING id",
            )
            .bind(batch_id)
            .bind(&hash)
            .bind(value_micros)
            .bind(currency)
            .bind(expires_at_ms)
            .bind(now_ms)
            .fetch_optional(&mut **c)
            .await)?;
            if let Some(id) = id {
                return Ok((id, code));
            }
        }
        Err(StoreError::InvalidArgument(format!(
            "no free voucher code of {code_length} digits after {CODE_ATTEMPTS} draws"
        )))
    }

    /// A customer buys a gift card from their free credit (balance less open holds): the
    /// debit (`gift_card`, once per `key`) and the one-voucher batch with its design are one
    /// transaction. The code is returned once; the ledger keeps only its hash.
    pub async fn buy_gift_card(
        &self,
        account_id: i64,
        value_micros: i64,
        design: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<GiftCardPurchase, StoreError> {
        if value_micros <= 0 || design.trim().is_empty() || design.chars().count() > 60 {
            return Err(StoreError::InvalidArgument(
                "a gift card has a value above zero and a design name of up to 60 characters"
                    .into(),
            ));
        }
        check_amount(value_micros)?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let idempotency = format!("gift:{key}");
        let done: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT id FROM transactions WHERE account_id = $1 AND reference = $2",
        )
        .bind(account_id)
        .bind(&idempotency)
        .fetch_optional(&mut **c)
        .await)?;
        if done.is_some() {
            return Ok(GiftCardPurchase::Replayed);
        }
        // As an authorization does: no call can hold this credit between the check and the
        // debit.
        crate::reservation::lock_account(&mut conn.exec(), account_id).await?;
        let account = fetch_account(&mut conn.exec(), account_id).await?;
        let held: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT) FROM reservations \
             WHERE account_id = $1 AND state = 'open'",
        )
        .bind(account_id)
        .fetch_one(&mut **c)
        .await)?;
        let free_micros = account.balance_micros - held;
        if free_micros < value_micros {
            return Ok(GiftCardPurchase::NotEnoughCredit { free_micros });
        }
        let batch_id: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "INSERT INTO voucher_batches (name, currency, value_micros, voucher_count, \
             code_length, created_at_ms, design, bought_by_account_id) \
             VALUES ($1, $2, $3, 1, $4, $5, $6, $7) RETURNING id",
        )
        .bind(format!("gift card of account {account_id}"))
        .bind(&account.currency)
        .bind(value_micros)
        .bind(i64::from(GIFT_CARD_CODE_LENGTH))
        .bind(now_ms)
        .bind(design.trim())
        .bind(account_id)
        .fetch_one(&mut **c)
        .await)?;
        let (voucher_id, code) = self
            .insert_voucher(
                &mut conn,
                batch_id,
                GIFT_CARD_CODE_LENGTH,
                value_micros,
                &account.currency,
                None,
                now_ms,
            )
            .await?;
        let balance_micros = post(
            &mut conn.exec(),
            Posting {
                account_id,
                kind: TransactionKind::GiftCard,
                amount_micros: -value_micros,
                call_id: None,
                reference: Some(&idempotency),
                idempotency_key: Some(&idempotency),
                now_ms,
            },
        )
        .await?;
        transaction.commit().await?;
        Ok(GiftCardPurchase::Bought {
            voucher_id,
            code,
            balance_micros,
        })
    }

    /// The design of a voucher's batch, if the voucher is a gift card.
    pub async fn voucher_design(&self, voucher_id: i64) -> Result<Option<String>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let design: Option<Option<String>> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT b.design FROM vouchers v JOIN voucher_batches b ON b.id = v.batch_id \
             WHERE v.id = $1",
        )
        .bind(voucher_id)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(design.flatten())
    }

    /// Adds a voucher's value to an account, exactly once: the voucher is marked used and the
    /// recharge posted in one transaction. `call_id` names the call that entered it.
    pub async fn redeem_voucher(
        &self,
        account_id: i64,
        code: &Pii<String>,
        call_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Redemption, StoreError> {
        let mut transaction = self.begin_write().await?;
        let redemption = self
            .redeem_in(&mut transaction.conn(), account_id, code, call_id, now_ms)
            .await?;
        if matches!(redemption, Redemption::Credited { .. }) {
            transaction.commit().await?;
        }
        Ok(redemption)
    }

    /// [`Store::redeem_voucher`] inside the caller's write transaction (which commits it).
    pub(crate) async fn redeem_in(
        &self,
        conn: &mut crate::backend::Conn<'_>,
        account_id: i64,
        code: &Pii<String>,
        call_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Redemption, StoreError> {
        let hash = self.voucher_hash(code);
        let account = fetch_account(&mut conn.exec(), account_id).await?;
        let disposable: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
            "SELECT id FROM cards WHERE account_id = $1 AND kind = 'disposable'",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        if disposable.is_some() {
            return Ok(Redemption::NotRefillable);
        }
        let claimed: Option<(i64, i64)> = with_conn!(conn, c => sqlx::query_as(
            "UPDATE vouchers SET used_at_ms = $1, used_by_account_id = $2, used_call_id = $3 \
             WHERE code_hash = $4 AND used_at_ms IS NULL AND status = 'active' \
             AND (expires_at_ms IS NULL OR expires_at_ms > $1) AND currency = $5 \
             RETURNING id, value_micros",
        )
        .bind(now_ms)
        .bind(account_id)
        .bind(call_id)
        .bind(&hash)
        .bind(&account.currency)
        .fetch_optional(&mut **c)
        .await)?;
        let Some((voucher_id, amount_micros)) = claimed else {
            let state: Option<VoucherState> = with_conn!(conn, c => sqlx::query_as(
                "SELECT used_at_ms, status, expires_at_ms, currency FROM vouchers \
                 WHERE code_hash = $1",
            )
            .bind(&hash)
            .fetch_optional(&mut **c)
            .await)?;
            return Ok(why_refused(state, &account.currency, now_ms));
        };
        let key = format!("voucher:{voucher_id}");
        let balance_micros = recharge_in(
            conn,
            Posting {
                account_id,
                kind: TransactionKind::Recharge,
                amount_micros,
                call_id,
                reference: Some(&format!("voucher {voucher_id}")),
                idempotency_key: Some(&key),
                now_ms,
            },
        )
        .await?;
        crate::resellers::pay_payment_commission(conn, account_id, amount_micros, now_ms).await?;
        // A referral reward paid with this first recharge is in the balance announced.
        let balance_micros = crate::self_service::reward_referral_in(conn, account_id, now_ms)
            .await?
            .unwrap_or(balance_micros);
        Ok(Redemption::Credited {
            voucher_id,
            amount_micros,
            balance_micros,
        })
    }

    /// Vouchers of a batch, by id.
    pub async fn vouchers_of_batch(&self, batch_id: i64) -> Result<Vec<VoucherRow>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        type Row = (
            i64,
            i64,
            i64,
            String,
            String,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, batch_id, value_micros, currency, status, expires_at_ms, used_at_ms, \
             used_by_account_id, used_call_id FROM vouchers WHERE batch_id = $1 ORDER BY id",
        )
        .bind(batch_id)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|row| VoucherRow {
                id: row.0,
                batch_id: row.1,
                value_micros: row.2,
                currency: row.3,
                status: row.4,
                expires_at_ms: row.5,
                used_at_ms: row.6,
                used_by_account_id: row.7,
                used_call_id: row.8,
            })
            .collect())
    }

    /// Disables an unused voucher (lost or stolen); a used one stays as it is.
    pub async fn disable_voucher(&self, voucher_id: i64) -> Result<bool, StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let changed = with_conn!(&mut conn, c => sqlx::query(
            "UPDATE vouchers SET status = 'disabled' WHERE id = $1 AND used_at_ms IS NULL",
        )
        .bind(voucher_id)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Gives a refillable card a new PIN chosen by its holder.
    pub async fn change_pin(
        &self,
        card_id: i64,
        new_pin: &Pii<String>,
    ) -> Result<PinChange, StoreError> {
        let hash = self.pin_hash(new_pin);
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let kind: Option<String> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT kind FROM cards WHERE id = $1",
        )
        .bind(card_id)
        .fetch_optional(&mut **c)
        .await)?;
        match kind.as_deref() {
            None => return Err(StoreError::not_found("card", card_id)),
            Some("disposable") => return Ok(PinChange::NotRefillable),
            Some(_) => {}
        }
        let holder: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT id FROM cards WHERE pin_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&mut **c)
        .await)?;
        match holder {
            Some(holder) if holder == card_id => return Ok(PinChange::Changed),
            Some(_) => return Ok(PinChange::Taken),
            None => {}
        }
        with_conn!(&mut conn, c => sqlx::query("UPDATE cards SET pin_hash = $1 WHERE id = $2")
            .bind(&hash)
            .bind(card_id)
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
        transaction.commit().await?;
        Ok(PinChange::Changed)
    }

    /// Stores `number` (E.164 or national digits, as dialled after normalization) under a key.
    pub async fn set_speed_dial(
        &self,
        account_id: i64,
        slot: u8,
        number: &Pii<String>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        check_slot(slot)?;
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        fetch_account(&mut conn.exec(), account_id).await?;
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO speed_dials (account_id, slot, number, updated_at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, slot) \
             DO UPDATE SET number = excluded.number, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(account_id)
        .bind(i64::from(slot))
        .bind(number.expose())
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Removes a speed dial; `false` when the key held none.
    pub async fn remove_speed_dial(&self, account_id: i64, slot: u8) -> Result<bool, StoreError> {
        check_slot(slot)?;
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let removed = with_conn!(&mut conn, c => sqlx::query(
            "DELETE FROM speed_dials WHERE account_id = $1 AND slot = $2",
        )
        .bind(account_id)
        .bind(i64::from(slot))
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(removed == 1)
    }

    /// Every speed dial of an account: (key, number), by key.
    pub async fn speed_dials(&self, account_id: i64) -> Result<Vec<(u8, Pii<String>)>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<(i64, String)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT slot, number FROM speed_dials WHERE account_id = $1 ORDER BY slot",
        )
        .bind(account_id)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(slot, number)| Some((u8::try_from(slot).ok()?, Pii::new(number))))
            .collect())
    }

    /// The number under a key, or with `slot` 0 the last number the account dialled (its
    /// newest CDR's destination): what `#` redials.
    pub async fn stored_number(
        &self,
        account_id: i64,
        slot: u8,
    ) -> Result<Option<Pii<String>>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let number: Option<String> = if slot == 0 {
            with_conn!(&mut conn, c => sqlx::query_scalar(
                "SELECT destination FROM cdrs WHERE account_id = $1 \
                 ORDER BY start_ms DESC, id DESC LIMIT 1",
            )
            .bind(account_id)
            .fetch_optional(&mut **c)
            .await)?
        } else {
            check_slot(slot)?;
            with_conn!(&mut conn, c => sqlx::query_scalar(
                "SELECT number FROM speed_dials WHERE account_id = $1 AND slot = $2",
            )
            .bind(account_id)
            .bind(i64::from(slot))
            .fetch_optional(&mut **c)
            .await)?
        };
        Ok(number.map(Pii::new))
    }

    /// Remembers the IVR language a caller chose: on the account (when known) and under the
    /// caller ID (when there is one), for the next call's language menu.
    pub async fn remember_language(
        &self,
        account_id: Option<i64>,
        caller_id: Option<&Pii<String>>,
        language: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        if let Some(account_id) = account_id {
            with_conn!(&mut conn, c => sqlx::query(
                "UPDATE accounts SET ivr_language = $1 WHERE id = $2",
            )
            .bind(language)
            .bind(account_id)
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
        }
        if let Some(caller_id) = caller_id {
            with_conn!(&mut conn, c => sqlx::query(
                "INSERT INTO caller_languages (number, language, updated_at_ms) \
                 VALUES ($1, $2, $3) ON CONFLICT (number) \
                 DO UPDATE SET language = excluded.language, \
                 updated_at_ms = excluded.updated_at_ms",
            )
            .bind(caller_id.expose())
            .bind(language)
            .bind(now_ms)
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
        }
        transaction.commit().await
    }

    /// The language remembered for an account (first) or a caller ID.
    pub async fn remembered_language(
        &self,
        account_id: Option<i64>,
        caller_id: Option<&Pii<String>>,
    ) -> Result<Option<String>, StoreError> {
        // An unregistered caller's call asks: a call's read.
        let mut read = self.acquire_call_read().await?;
        let mut exec = read.exec();
        if let Some(account_id) = account_id {
            let language: Option<(Option<String>,)> = exec
                .fetch_optional(
                    "SELECT ivr_language FROM accounts WHERE id = $1",
                    &[account_id.into()],
                )
                .await?;
            if let Some((Some(language),)) = language {
                return Ok(Some(language));
            }
        }
        let Some(caller_id) = caller_id else {
            return Ok(None);
        };
        let language: Option<(String,)> = exec
            .fetch_optional(
                "SELECT language FROM caller_languages WHERE number = $1",
                &[caller_id.expose().into()],
            )
            .await?;
        Ok(language.map(|(language,)| language))
    }
}

/// Why the conditional UPDATE changed nothing, from the voucher's row (if any).
fn why_refused(state: Option<VoucherState>, currency: &str, now_ms: i64) -> Redemption {
    match state {
        None => Redemption::Unknown,
        Some((Some(_), ..)) => Redemption::AlreadyUsed,
        Some((None, status, expires, _))
            if status != "active" || expires.is_some_and(|at| at <= now_ms) =>
        {
            Redemption::Expired
        }
        Some((None, _, _, voucher_currency)) if voucher_currency != currency => {
            Redemption::WrongCurrency
        }
        // The row changed between the two statements (not under one transaction's lock).
        Some(_) => Redemption::AlreadyUsed,
    }
}
