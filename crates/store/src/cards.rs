//! Card batches: generation with random unique PINs and CSV export.

use std::io::Write;

use rand::RngExt;
use talktime_pii::Pii;

use crate::backend::{Store, with_conn};
use crate::error::StoreError;
use crate::ledger::{check_amount, fetch_account, insert_card};
use crate::model::{CardKind, ExpiryRule, NewCard};
use talktime_billing::format_micros;

/// PIN lengths the generator accepts.
pub const PIN_LENGTHS: std::ops::RangeInclusive<u32> = 4..=18;

/// Fresh PINs tried per card before giving up (a clash means the PIN space is crowded).
const PIN_ATTEMPTS: u32 = 64;

/// What [`Store::generate_cards`] creates.
#[derive(Clone, Debug)]
pub struct CardBatchSpec {
    /// Batch name ("Calling card user batch 1").
    pub name: String,
    /// Cards to create.
    pub count: u32,
    /// Digits per PIN, within [`PIN_LENGTHS`].
    pub pin_length: u32,
    /// Initial credit of each card, micros.
    pub value_micros: i64,
    /// Currency of the cards.
    pub currency: String,
    /// Tariff of the cards.
    pub tariff_id: Option<i64>,
    /// Refillable or disposable.
    pub kind: CardKind,
    /// Expiry of each card.
    pub expiry: ExpiryRule,
    /// An owner account bounding the cards' spending (seed 002, tip 2), if any.
    pub owner_account_id: Option<i64>,
    /// Charged with each card's first answered call, micros.
    pub activation_fee_micros: i64,
    /// Caller-ID recognition threshold of each card's account (seed 002, tip 1), micros.
    pub caller_id_min_balance_micros: i64,
    /// Calls at once on each card (a shared balance, seed 004); at least 1.
    pub concurrency_limit: i64,
    /// The reseller whose customers the cards are (issue 16), if any.
    pub reseller_id: Option<i64>,
}

/// A generated batch. It is the only place its PINs exist in the clear (the ledger keeps keyed
/// hashes): write it out with [`Store::export_batch_csv`] before dropping it.
#[derive(Clone, Debug)]
pub struct CardBatch {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Cards created.
    pub card_count: i64,
    /// Digits per PIN.
    pub pin_length: i64,
    /// Initial credit per card.
    pub value_micros: i64,
    /// Currency.
    pub currency: String,
    /// Card ids, in creation order.
    pub card_ids: Vec<i64>,
    /// The cards' PINs, in the order of `card_ids`.
    pub pins: Vec<Pii<String>>,
}

/// A PIN or voucher code of `length` decimal digits from the thread-local CSPRNG (ChaCha, seeded and
/// periodically reseeded from the operating system).
pub(crate) fn random_digits(length: u32) -> Pii<String> {
    let mut rng = rand::rng();
    let pin: String = (0..length)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    Pii::new(pin)
}

impl Store {
    /// Creates a batch of cards with random unique PINs, all in one transaction. A PIN that
    /// is already taken (checked, and enforced by the UNIQUE index) is redrawn. On SQLite the
    /// batch holds the write lock while it runs (about 4 statements per card), so generate
    /// large batches outside busy hours or in slices.
    pub async fn generate_cards(
        &self,
        spec: &CardBatchSpec,
        now_ms: i64,
    ) -> Result<CardBatch, StoreError> {
        if !PIN_LENGTHS.contains(&spec.pin_length) {
            return Err(StoreError::InvalidArgument(format!(
                "PIN length {} is outside {PIN_LENGTHS:?}",
                spec.pin_length
            )));
        }
        // Keep the batch to at most a tenth of the PIN space, so guessing stays hard and
        // redraws stay rare.
        let space = 10u64.pow(spec.pin_length);
        if u64::from(spec.count) > space / 10 {
            return Err(StoreError::PinSpaceExhausted {
                pin_length: spec.pin_length,
                count: spec.count.into(),
            });
        }
        check_amount(spec.value_micros)?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        if let Some(owner) = spec.owner_account_id {
            fetch_account(&mut conn.exec(), owner).await?;
        }
        let batch_id: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "INSERT INTO card_batches (name, tariff_id, owner_account_id, currency, card_count, \
             pin_length, value_micros, kind, expires_at_ms, valid_after_first_use_ms, \
             created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(&spec.name)
        .bind(spec.tariff_id)
        .bind(spec.owner_account_id)
        .bind(&spec.currency)
        .bind(i64::from(spec.count))
        .bind(i64::from(spec.pin_length))
        .bind(spec.value_micros)
        .bind(spec.kind.as_str())
        .bind(spec.expiry.expires_at_ms)
        .bind(spec.expiry.valid_after_first_use_ms)
        .bind(now_ms)
        .fetch_one(&mut **c)
        .await)?;
        let mut card_ids = Vec::with_capacity(spec.count as usize);
        let mut pins = Vec::with_capacity(spec.count as usize);
        for _ in 0..spec.count {
            let mut created = None;
            for _ in 0..PIN_ATTEMPTS {
                let card = NewCard {
                    pin: random_digits(spec.pin_length),
                    kind: spec.kind,
                    tariff_id: spec.tariff_id,
                    expiry: spec.expiry,
                    initial_value_micros: spec.value_micros,
                    currency: spec.currency.clone(),
                    owner_account_id: spec.owner_account_id,
                    caller_id_min_balance_micros: spec.caller_id_min_balance_micros,
                    concurrency_limit: spec.concurrency_limit.max(1),
                    activation_fee_micros: spec.activation_fee_micros,
                };
                let pin_hash = self.pin_hash(&card.pin);
                let inserted =
                    insert_card(&mut conn, &card, &pin_hash, Some(batch_id), now_ms).await?;
                if let Some(inserted) = inserted {
                    created = Some((inserted, card.pin));
                    break;
                }
            }
            let (card, pin) = created.ok_or(StoreError::PinSpaceExhausted {
                pin_length: spec.pin_length,
                count: spec.count.into(),
            })?;
            card_ids.push(card.id);
            pins.push(pin);
        }
        if let Some(reseller_id) = spec.reseller_id {
            crate::resellers::put_batch_under(&mut conn, batch_id, reseller_id, &spec.currency)
                .await?;
        }
        transaction.commit().await?;
        Ok(CardBatch {
            id: batch_id,
            name: spec.name.clone(),
            card_count: i64::from(spec.count),
            pin_length: i64::from(spec.pin_length),
            value_micros: spec.value_micros,
            currency: spec.currency.clone(),
            card_ids,
            pins,
        })
    }

    /// Writes a just-generated batch as CSV (header `card_id,pin,balance,currency,kind,status,
    /// expires_at_ms,valid_after_first_use_ms`, balances as decimals) for printing or
    /// distribution; balances and states are read from the ledger. Returns the number of cards
    /// written. The output holds PINs, and is the only time they can be read: keep it secret.
    pub async fn export_batch_csv<W: Write>(
        &self,
        batch: &CardBatch,
        writer: W,
    ) -> Result<u64, StoreError> {
        let batch_id = batch.id;
        type ExportRow = (i64, i64, String, String, String, Option<i64>, Option<i64>);
        let rows: Vec<ExportRow> = {
            let mut held = self.acquire().await?;
            let mut conn = held.conn();
            let exists: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
                "SELECT id FROM card_batches WHERE id = $1",
            )
            .bind(batch_id)
            .fetch_optional(&mut **c)
            .await)?;
            if exists.is_none() {
                return Err(StoreError::not_found("card batch", batch_id));
            }
            with_conn!(&mut conn, c => sqlx::query_as(
                "SELECT cards.id, a.balance_micros, a.currency, cards.kind, \
                 cards.status, cards.expires_at_ms, cards.valid_after_first_use_ms \
                 FROM cards JOIN accounts a ON a.id = cards.account_id \
                 WHERE cards.batch_id = $1 ORDER BY cards.id",
            )
            .bind(batch_id)
            .fetch_all(&mut **c)
            .await)?
        };
        let mut csv_writer = csv::Writer::from_writer(writer);
        csv_writer.write_record([
            "card_id",
            "pin",
            "balance",
            "currency",
            "kind",
            "status",
            "expires_at_ms",
            "valid_after_first_use_ms",
        ])?;
        let optional = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
        let pins: std::collections::HashMap<i64, &Pii<String>> =
            batch.card_ids.iter().copied().zip(&batch.pins).collect();
        for (id, balance, currency, kind, status, expires, validity) in &rows {
            let pin = pins.get(id).ok_or_else(|| {
                StoreError::InvalidArgument(format!("card {id} is not in the batch given"))
            })?;
            csv_writer.write_record([
                id.to_string(),
                pin.expose().clone(),
                format_micros(*balance),
                currency.clone(),
                kind.clone(),
                status.clone(),
                optional(*expires),
                optional(*validity),
            ])?;
        }
        csv_writer.flush()?;
        Ok(rows.len() as u64)
    }
}
