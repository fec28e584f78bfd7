//! Reservations: hold credit for a call, then settle the actual cost or release the hold.
//!
//! Locking: on SQLite every write transaction starts with `BEGIN IMMEDIATE`, which takes the
//! database's single write lock, so reading the balance, counting open reservations and
//! inserting the new one cannot interleave with another writer. On PostgreSQL `authorize`
//! locks the account row (then its owner's row, always in that order, so two calls never
//! deadlock) with `SELECT ... FOR UPDATE`, and only then reads balances and open reservations
//! in a fresh statement, which under READ COMMITTED sees everything committed before the lock
//! was granted. `settle` and `release` flip the reservation with one conditional
//! `UPDATE ... WHERE state = 'open'`: of two concurrent settles exactly one matches the row.

use std::fmt;

use crate::backend::{Store, with_conn};
use crate::cdr::{Cdr, record_cdr};
use crate::error::StoreError;
use crate::exec::{Exec, record_struct};
use crate::ledger::{Posting, check_amount, check_card_usable, post};
use crate::model::{ReservationState, TransactionKind};

/// Who pays for a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payer {
    /// A card (its own account, bounded by its owner account if it has one).
    Card(i64),
    /// An account directly (pinless caller ID, prepaid extension).
    Account(i64),
}

/// What the ledger knows when the rating function decides, read under the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Available {
    /// The paying account (the card's account for a card).
    pub account_id: i64,
    /// The card, if the payer is one.
    pub card_id: Option<i64>,
    /// The tariff to rate with (the card's, else the account's).
    pub tariff_id: Option<i64>,
    /// Currency of the balance.
    pub currency: String,
    /// The account's balance.
    pub balance_micros: i64,
    /// Held by the account's other open reservations.
    pub reserved_micros: i64,
    /// The owner account's balance minus everything reserved against it, if there is an owner.
    pub owner_available_micros: Option<i64>,
    /// What this call may reserve: the smaller of the account's and the owner's free credit,
    /// never negative.
    pub available_micros: i64,
    /// Calls already in progress on the account.
    pub open_calls: i64,
    /// The resellers above the account, its own first: each must hold its price of the call
    /// ([`Decision::level_holds`]) within its own free credit.
    pub levels: Vec<crate::resellers::LevelAvailable>,
}

/// The rating function's answer: how much credit to hold for the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Credit to hold, at most [`Available::available_micros`].
    pub reserve_micros: i64,
    /// The talk-time limit the switch enforces (recorded with the reservation).
    pub max_duration_ms: i64,
    /// What each reseller level of [`Available::levels`] holds, in the same order, each at
    /// most that level's free credit. Empty for a customer of the vendor.
    pub level_holds: Vec<i64>,
    /// A callback's called leg: what the caller leg's hold at each level becomes (each level
    /// pays for both legs; its old hold is counted back into the level's free credit). Empty:
    /// those holds stay as they are.
    pub companion_level_holds: Vec<i64>,
}

impl Decision {
    /// A hold for a customer of the vendor (no reseller levels).
    pub fn new(reserve_micros: i64, max_duration_ms: i64) -> Decision {
        Decision {
            reserve_micros,
            max_duration_ms,
            level_holds: Vec::new(),
            companion_level_holds: Vec::new(),
        }
    }
}

/// Why the rating function refused a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not enough credit for the first billing block.
    InsufficientCredit {
        /// Credit available.
        available_micros: i64,
        /// Credit the first block needs.
        needed_micros: i64,
    },
    /// The tariff has no rate for the destination.
    NoRate,
    /// Anything else.
    Other(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::InsufficientCredit {
                available_micros,
                needed_micros,
            } => write!(
                formatter,
                "insufficient credit: {available_micros} micros available, {needed_micros} needed"
            ),
            Refusal::NoRate => formatter.write_str("no rate for the destination"),
            Refusal::Other(reason) => formatter.write_str(reason),
        }
    }
}

/// A reservation row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// SIP Call-ID (unique).
    pub call_id: String,
    /// The account holding the credit.
    pub account_id: i64,
    /// Its owner account, also bounded by the hold.
    pub owner_account_id: Option<i64>,
    /// The card, if the payer was one.
    pub card_id: Option<i64>,
    /// Credit held.
    pub amount_micros: i64,
    /// The talk-time limit from the decision.
    pub max_duration_ms: i64,
    /// Open, settled or released.
    pub state: ReservationState,
    /// What settle charged.
    pub charged_micros: Option<i64>,
    /// When authorised.
    pub created_at_ms: i64,
    /// When settled or released.
    pub closed_at_ms: Option<i64>,
}

/// A card's first answered call, for [`Store::settle_call`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstUse {
    pub card_id: i64,
    /// The activation fee included in the settled cost (0 when none was).
    pub activation_fee_micros: i64,
}

/// Records a card's first use; false when it already had one.
async fn mark_first_use(
    exec: &mut Exec<'_>,
    card_id: i64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let updated = exec
        .execute(
            "UPDATE cards SET first_used_at_ms = $1, \
             status = CASE WHEN status = 'new' THEN 'active' ELSE status END \
             WHERE id = $2 AND first_used_at_ms IS NULL",
            &[now_ms.into(), card_id.into()],
        )
        .await?;
    Ok(updated == 1)
}

/// What a settle carries besides the cost: see [`Store::settle_call`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SettleExtras<'a> {
    /// A card's first answered call.
    pub first_use: Option<FirstUse>,
    /// Free package seconds the call used.
    pub package_seconds: i64,
    /// What each reseller level above the payer pays for the call, its own reseller first
    /// (each at its own price); a level left out pays nothing.
    pub level_charges: &'a [i64],
}

/// The result of a successful [`Store::settle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettleOutcome {
    /// The cost was charged now.
    Charged {
        /// The amount charged.
        charged_micros: i64,
        /// The paying account's balance afterwards.
        balance_after_micros: i64,
    },
    /// The same settle was applied before; nothing was charged this time.
    Replayed {
        /// The amount charged by the first settle.
        charged_micros: i64,
    },
}

/// The result of a successful [`Store::release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The hold was dropped now.
    Released,
    /// It had been released before.
    AlreadyReleased,
}

/// What [`Store::reconcile`] did with stale reservations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Call ids released (no CDR was written for them).
    pub released: Vec<String>,
    /// Call ids settled from their CDRs, with the amount charged.
    pub settled: Vec<(String, i64)>,
}

record_struct! {
    struct LockedAccount {
        balance_micros: i64,
        concurrency_limit: i64,
        low_balance_micros: Option<i64>,
        low_balance_calls: i64,
        low_balance_call_cap_micros: Option<i64>,
        reseller_id: Option<i64>,
        owner_account_id: Option<i64>,
        status: String,
        currency: String,
        tariff_id: Option<i64>,
        reserved_micros: i64,
        open_calls: i64,
    }
}

record_struct! {
    #[derive(sqlx::FromRow)]
    struct ReservationRow {
        call_id: String,
        account_id: i64,
        owner_account_id: Option<i64>,
        card_id: Option<i64>,
        amount_micros: i64,
        max_duration_ms: i64,
        state: String,
        charged_micros: Option<i64>,
        created_at_ms: i64,
        closed_at_ms: Option<i64>,
    }
}

impl ReservationRow {
    fn into_reservation(self) -> Result<Reservation, StoreError> {
        Ok(Reservation {
            call_id: self.call_id,
            account_id: self.account_id,
            owner_account_id: self.owner_account_id,
            card_id: self.card_id,
            amount_micros: self.amount_micros,
            max_duration_ms: self.max_duration_ms,
            state: ReservationState::parse(&self.state)?,
            charged_micros: self.charged_micros,
            created_at_ms: self.created_at_ms,
            closed_at_ms: self.closed_at_ms,
        })
    }
}

/// On PostgreSQL, waits for and holds the account row's lock until commit. On SQLite the
/// transaction already holds the database write lock (`BEGIN IMMEDIATE`).
pub(crate) async fn lock_account(exec: &mut Exec<'_>, account_id: i64) -> Result<(), StoreError> {
    if exec.is_postgres() {
        // Pipelined, the lock goes out with the read after it (`read_locked_account`).
        exec.defer(
            "SELECT id FROM accounts WHERE id = $1 FOR UPDATE",
            &[account_id.into()],
        )
        .await?;
    }
    Ok(())
}

/// Balance, limits and open reservations of an account (counting those of the accounts it
/// owns). Must run after [`lock_account`] in its own statement; see the module docs. Each
/// sum is split by column so it searches a partial index instead of scanning all open calls.
async fn read_locked_account(
    exec: &mut Exec<'_>,
    account_id: i64,
) -> Result<LockedAccount, StoreError> {
    let row: Option<LockedAccount> = exec.fetch_optional(
        "SELECT a.balance_micros, a.concurrency_limit, a.low_balance_micros, a.low_balance_calls, \
         a.low_balance_call_cap_micros, a.reseller_id, a.owner_account_id, a.status, a.currency, \
         a.tariff_id, \
         (SELECT CAST(COALESCE(SUM(r.amount_micros), 0) AS BIGINT) FROM reservations r \
          WHERE r.state = 'open' AND r.account_id = a.id) \
         + (SELECT CAST(COALESCE(SUM(r.amount_micros), 0) AS BIGINT) FROM reservations r \
          WHERE r.state = 'open' AND r.owner_account_id = a.id) AS reserved_micros, \
         (SELECT COUNT(*) FROM reservations r WHERE r.state = 'open' AND r.account_id = a.id) \
         + (SELECT COUNT(*) FROM reservations r \
          WHERE r.state = 'open' AND r.owner_account_id = a.id) AS open_calls \
         FROM accounts a WHERE a.id = $1",
        &[account_id.into()],
    )
    .await?;
    row.ok_or_else(|| StoreError::not_found("account", account_id))
}

/// What an open reservation of `account_id` holds, locked with the account.
async fn open_hold(
    exec: &mut Exec<'_>,
    call_id: &str,
    account_id: i64,
) -> Result<Option<i64>, StoreError> {
    let held: Option<(i64,)> = exec
        .fetch_optional(
            "SELECT amount_micros FROM reservations \
             WHERE call_id = $1 AND account_id = $2 AND state = 'open'",
            &[call_id.into(), account_id.into()],
        )
        .await?;
    Ok(held.map(|(amount,)| amount))
}

async fn resize_hold(
    exec: &mut Exec<'_>,
    call_id: &str,
    amount_micros: i64,
) -> Result<(), StoreError> {
    exec.defer(
        "UPDATE reservations SET amount_micros = $2 WHERE call_id = $1 AND state = 'open'",
        &[call_id.into(), amount_micros.into()],
    )
    .await?;
    Ok(())
}

/// A shared balance's low-balance rule (seed 004): below its threshold of free credit the
/// account carries only so many calls, and a call may hold at most the cap. Returns what this
/// call may hold of `own_free`.
fn low_balance_rule(
    account_id: i64,
    account: &LockedAccount,
    own_free: i64,
) -> Result<i64, StoreError> {
    let Some(threshold) = account.low_balance_micros else {
        return Ok(own_free);
    };
    if account.balance_micros - account.reserved_micros >= threshold {
        return Ok(own_free);
    }
    if account.open_calls >= account.low_balance_calls {
        return Err(StoreError::ConcurrencyLimit {
            account_id,
            limit: account.low_balance_calls,
            open: account.open_calls,
        });
    }
    Ok(match account.low_balance_call_cap_micros {
        Some(cap) => own_free.min(cap),
        None => own_free,
    })
}

/// One hold per reseller level, none negative or above the level's free credit.
/// Each level's new hold, with a callback caller leg's hold at that level (resized, or as it
/// was), within the level's free credit.
fn check_level_holds(
    levels: &[crate::resellers::LevelAvailable],
    holds: &[i64],
    companion_holds: &[i64],
) -> Result<(), StoreError> {
    if holds.len() != levels.len()
        || !(companion_holds.is_empty() || companion_holds.len() == levels.len())
    {
        return Err(StoreError::InvalidArgument(format!(
            "{} reseller levels but {} holds and {} caller-leg holds",
            levels.len(),
            holds.len(),
            companion_holds.len()
        )));
    }
    for (index, (level, &hold)) in levels.iter().zip(holds).enumerate() {
        let companion = companion_holds
            .get(index)
            .copied()
            .unwrap_or(level.companion_micros);
        let requested = hold.saturating_add(companion);
        if hold < 0 || companion < 0 || requested > level.available_micros.max(0) {
            return Err(StoreError::ReservationTooLarge {
                requested_micros: requested,
                available_micros: level.available_micros.max(0),
            });
        }
    }
    Ok(())
}

fn check_account(account_id: i64, account: &LockedAccount) -> Result<(), StoreError> {
    if account.status != "active" {
        return Err(StoreError::NotUsable {
            entity: "account",
            id: account_id,
            status: account.status.clone(),
        });
    }
    if account.concurrency_limit > 0 && account.open_calls >= account.concurrency_limit {
        return Err(StoreError::ConcurrencyLimit {
            account_id,
            limit: account.concurrency_limit,
            open: account.open_calls,
        });
    }
    Ok(())
}

impl Store {
    /// Holds credit for a call. Under the account lock it reads the free credit (balance minus
    /// open reservations, bounded by the owner account's free credit), enforces the
    /// concurrency limits of the account and its owner, asks `decide` how much to hold, and
    /// records the reservation. `decide` runs while the lock is held: keep it pure and quick.
    pub async fn authorize<F>(
        &self,
        call_id: &str,
        payer: Payer,
        now_ms: i64,
        decide: F,
    ) -> Result<Reservation, StoreError>
    where
        F: FnOnce(&Available) -> Result<Decision, Refusal>,
    {
        let decide_alone = |available: &Available, _held: i64| Ok((decide(available)?, 0));
        let (reservation, _) = self
            .hold(call_id, None, payer, now_ms, decide_alone)
            .await?;
        Ok(reservation)
    }

    /// [`Store::authorize`] beside `companion`, an open hold of the same call on the same
    /// account (a callback's leg to the caller): what the companion holds counts as free
    /// credit and it is not another call for the concurrency limit; `decide` gets that hold
    /// and answers with this hold and the companion's new size, both written in the one
    /// transaction. Returns the reservation and the companion's new hold. A companion that is
    /// no longer open counts as holding nothing and is left alone.
    pub async fn authorize_beside<F>(
        &self,
        call_id: &str,
        companion: &str,
        payer: Payer,
        now_ms: i64,
        decide: F,
    ) -> Result<(Reservation, i64), StoreError>
    where
        F: FnOnce(&Available, i64) -> Result<(Decision, i64), Refusal>,
    {
        self.hold(call_id, Some(companion), payer, now_ms, decide)
            .await
    }

    async fn hold<F>(
        &self,
        call_id: &str,
        companion: Option<&str>,
        payer: Payer,
        now_ms: i64,
        decide: F,
    ) -> Result<(Reservation, i64), StoreError>
    where
        F: FnOnce(&Available, i64) -> Result<(Decision, i64), Refusal>,
    {
        // The card is read before the write lock, on a reader: a card's account never
        // changes, and a block or expiry that lands meanwhile is one that came just after
        // this call (calls up are not cut by it either). On SQLite this keeps a statement
        // off the one writer every call waits for.
        let (account_id, card_id, card_tariff) = match payer {
            Payer::Card(card_id) => {
                let card = self.card(card_id).await?;
                check_card_usable(&card, now_ms)?;
                (card.account_id, Some(card_id), card.tariff_id)
            }
            Payer::Account(account_id) => (account_id, None, None),
        };
        let mut transaction = self.begin_call_write().await?;
        let mut conn = transaction.exec();
        lock_account(&mut conn, account_id).await?;
        let mut account = read_locked_account(&mut conn, account_id).await?;
        let held = match companion {
            Some(companion) => open_hold(&mut conn, companion, account_id).await?,
            None => None,
        };
        let beside = i64::from(held.is_some());
        account.open_calls -= beside;
        let held = held.unwrap_or(0);
        check_account(account_id, &account)?;
        let own_free = account.balance_micros - account.reserved_micros + held;
        let own_free = low_balance_rule(account_id, &account, own_free)?;
        let owner_free = match account.owner_account_id {
            Some(owner_id) => {
                lock_account(&mut conn, owner_id).await?;
                let mut owner = read_locked_account(&mut conn, owner_id).await?;
                owner.open_calls -= beside;
                check_account(owner_id, &owner)?;
                Some(owner.balance_micros - owner.reserved_micros + held)
            }
            None => None,
        };
        // A customer of the vendor (most calls) costs no look for resellers.
        let levels = match account.reseller_id {
            Some(_) => {
                let companion = companion.filter(|_| beside == 1);
                crate::resellers::lock_levels(&mut conn, account_id, companion, now_ms).await?
            }
            None => Vec::new(),
        };
        let available = Available {
            account_id,
            card_id,
            tariff_id: card_tariff.or(account.tariff_id),
            currency: account.currency,
            balance_micros: account.balance_micros,
            reserved_micros: account.reserved_micros,
            owner_available_micros: owner_free,
            available_micros: own_free.min(owner_free.unwrap_or(own_free)).max(0),
            open_calls: account.open_calls,
            levels,
        };
        let (decision, companion_micros) = decide(&available, held).map_err(StoreError::Refused)?;
        let total = decision.reserve_micros.saturating_add(companion_micros);
        if decision.reserve_micros < 0 || companion_micros < 0 || total > available.available_micros
        {
            return Err(StoreError::ReservationTooLarge {
                requested_micros: total,
                available_micros: available.available_micros,
            });
        }
        check_level_holds(
            &available.levels,
            &decision.level_holds,
            &decision.companion_level_holds,
        )?;
        if let Some(companion) = companion {
            resize_hold(&mut conn, companion, companion_micros).await?;
            crate::resellers::resize_level_holds(
                &mut conn,
                companion,
                &available.levels,
                &decision.companion_level_holds,
            )
            .await?;
        }
        let inserted: Option<(i64,)> = conn
            .fetch_optional(
                "INSERT INTO reservations (call_id, account_id, owner_account_id, card_id, \
                 amount_micros, max_duration_ms, state, created_at_ms, node_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8) \
                 ON CONFLICT (call_id) DO NOTHING RETURNING id",
                &[
                    call_id.into(),
                    account_id.into(),
                    account.owner_account_id.into(),
                    card_id.into(),
                    decision.reserve_micros.into(),
                    decision.max_duration_ms.into(),
                    now_ms.into(),
                    self.node_id().into(),
                ],
            )
            .await?;
        if inserted.is_none() {
            return Err(StoreError::CallIdInUse);
        }
        crate::resellers::insert_level_holds(
            &mut conn,
            call_id,
            &available.levels,
            &decision.level_holds,
            now_ms,
        )
        .await?;
        transaction.commit().await?;
        let reservation = Reservation {
            call_id: call_id.to_owned(),
            account_id,
            owner_account_id: account.owner_account_id,
            card_id,
            amount_micros: decision.reserve_micros,
            max_duration_ms: decision.max_duration_ms,
            state: ReservationState::Open,
            charged_micros: None,
            created_at_ms: now_ms,
            closed_at_ms: None,
        };
        Ok((reservation, companion_micros))
    }

    /// Charges the actual cost of a call (which may exceed the hold), writes its CDRs and
    /// closes the reservation, all in one transaction. Idempotent by call id: the same settle
    /// again returns [`SettleOutcome::Replayed`]; a settle with a different amount after the
    /// first returns [`StoreError::SettleConflict`] and charges nothing. A card with an owner
    /// is charged on both accounts (seed 002, tip 2: the card's spend comes out of the owner's
    /// credit too).
    pub async fn settle(
        &self,
        call_id: &str,
        actual_cost_micros: i64,
        cdrs: &[Cdr],
        now_ms: i64,
    ) -> Result<SettleOutcome, StoreError> {
        self.settle_call(
            call_id,
            actual_cost_micros,
            cdrs,
            now_ms,
            SettleExtras::default(),
        )
        .await
    }

    /// [`Store::settle`] for an answered call on a card: in the same transaction the card's
    /// first use is recorded if it has none, and `first_use.activation_fee_micros` (part of
    /// `actual_cost_micros`) is booked as the activation. If another call used the card first,
    /// a cost that includes an activation fee is refused with
    /// [`StoreError::AlreadyActivated`] and nothing is written: the caller rates again without
    /// the fee. So a card pays its activation exactly once, whatever races. The
    /// `package_seconds` the call used of its account's free-minute package are counted in
    /// the same transaction.
    pub async fn settle_call(
        &self,
        call_id: &str,
        actual_cost_micros: i64,
        cdrs: &[Cdr],
        now_ms: i64,
        extras: SettleExtras<'_>,
    ) -> Result<SettleOutcome, StoreError> {
        let SettleExtras {
            first_use,
            package_seconds,
            level_charges,
        } = extras;
        check_amount(actual_cost_micros)?;
        let mut transaction = self.begin_call_write().await?;
        let mut conn = transaction.exec();
        // Whether resellers hold on it comes back with the claim: most calls have none and
        // cost no look at the level table.
        let claimed: Option<(i64, Option<i64>, i64)> = conn
            .fetch_optional(
                "UPDATE reservations SET state = 'settled', charged_micros = $2, \
                 closed_at_ms = $3 WHERE call_id = $1 AND state = 'open' \
                 RETURNING account_id, owner_account_id, \
                 CAST(CASE WHEN EXISTS (SELECT 1 FROM reservation_levels l \
                   WHERE l.call_id = $1 AND l.is_open = 1) THEN 1 ELSE 0 END AS BIGINT)",
                &[call_id.into(), actual_cost_micros.into(), now_ms.into()],
            )
            .await?;
        let Some((account_id, owner_account_id, levels_hold)) = claimed else {
            // Read why on the writer, and answer once what it saw is committed: under group
            // commit the settle that closed it may still be waiting for its COMMIT.
            let existing: Option<(String, Option<i64>)> = conn
                .fetch_optional(
                    "SELECT state, charged_micros FROM reservations WHERE call_id = $1",
                    &[call_id.into()],
                )
                .await?;
            transaction.commit().await?;
            return settle_again(call_id, actual_cost_micros, existing);
        };
        let activation = match first_use {
            Some(first_use) => {
                let first = mark_first_use(&mut conn, first_use.card_id, now_ms).await?;
                if !first && first_use.activation_fee_micros > 0 {
                    drop(transaction);
                    return Err(StoreError::AlreadyActivated {
                        card_id: first_use.card_id,
                    });
                }
                first_use.activation_fee_micros.min(actual_cost_micros)
            }
            None => 0,
        };
        crate::plans::use_package_seconds(&mut conn, account_id, package_seconds, now_ms).await?;
        let mut balance_after = None;
        for paying in std::iter::once(account_id).chain(owner_account_id) {
            let postings = [
                (TransactionKind::Activation, activation),
                (TransactionKind::CallCharge, actual_cost_micros - activation),
            ];
            // Nothing charged, no ledger line: an attempt that was never answered (or a free
            // call) is in the CDRs; lines of 0 only filled statements and the writer's queue.
            for (kind, amount) in postings.into_iter().filter(|(_, amount)| *amount != 0) {
                let balance = post(
                    &mut conn,
                    Posting {
                        account_id: paying,
                        kind,
                        amount_micros: -amount,
                        call_id: Some(call_id),
                        reference: None,
                        idempotency_key: None,
                        now_ms,
                    },
                )
                .await?;
                if paying == account_id {
                    balance_after = Some(balance);
                }
            }
        }
        if levels_hold == 1 {
            crate::resellers::charge_levels(
                &mut conn,
                call_id,
                actual_cost_micros,
                level_charges,
                now_ms,
            )
            .await?;
        }
        for cdr in cdrs {
            record_cdr(&mut conn, cdr, now_ms).await?;
        }
        let balance_after = match balance_after {
            Some(balance) => balance,
            None => crate::ledger::fetch_balance(&mut conn, account_id).await?,
        };
        transaction.commit().await?;
        Ok(SettleOutcome::Charged {
            charged_micros: actual_cost_micros,
            balance_after_micros: balance_after,
        })
    }

    /// Drops the hold of a call that never connected. Releasing twice is harmless; releasing a
    /// settled call is an error.
    pub async fn release(&self, call_id: &str, now_ms: i64) -> Result<ReleaseOutcome, StoreError> {
        let mut transaction = self.begin_call_write().await?;
        let mut conn = transaction.exec();
        let result = conn
            .execute(
                "UPDATE reservations SET state = 'released', closed_at_ms = $2 \
                 WHERE call_id = $1 AND state = 'open'",
                &[call_id.into(), now_ms.into()],
            )
            .await?;
        if result == 1 {
            crate::resellers::close_level_holds(&mut conn, call_id).await?;
        }
        transaction.commit().await?;
        if result == 1 {
            return Ok(ReleaseOutcome::Released);
        }
        let existing = self
            .reservation(call_id)
            .await?
            .ok_or(StoreError::UnknownCall)?;
        match existing.state {
            ReservationState::Released => Ok(ReleaseOutcome::AlreadyReleased),
            state => Err(StoreError::ReservationClosed {
                state: state.as_str().to_owned(),
            }),
        }
    }

    /// The reservation of a call, in any state.
    pub async fn reservation(&self, call_id: &str) -> Result<Option<Reservation>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<ReservationRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT call_id, account_id, owner_account_id, card_id, amount_micros, \
             max_duration_ms, state, charged_micros, created_at_ms, closed_at_ms \
             FROM reservations WHERE call_id = $1",
        )
        .bind(call_id)
        .fetch_optional(&mut **c)
        .await)?;
        row.map(ReservationRow::into_reservation).transpose()
    }

    /// Open reservations of an account (including those of the accounts it owns).
    pub async fn open_reservations(&self, account_id: i64) -> Result<Vec<Reservation>, StoreError> {
        // A PIN call asks (the card's calls in progress): a call's read.
        let mut read = self.acquire_call_read().await?;
        let rows: Vec<ReservationRow> = read
            .exec()
            .fetch_all(
                "SELECT call_id, account_id, owner_account_id, card_id, amount_micros, \
                 max_duration_ms, state, charged_micros, created_at_ms, closed_at_ms \
                 FROM reservations WHERE state = 'open' \
                 AND (account_id = $1 OR owner_account_id = $1) ORDER BY id",
                &[account_id.into()],
            )
            .await?;
        rows.into_iter()
            .map(ReservationRow::into_reservation)
            .collect()
    }

    /// Start-up recovery: closes every reservation still open that was created before
    /// `created_before_ms` (pass the start time: a previous process died holding them).
    ///
    /// Rule: if CDRs were written for the call id, the call is settled for the sum of their
    /// `total_micros` (the switch writes a CDR once a call has ended and been rated, so that
    /// sum is what the customer owes). Without a CDR the call's duration is unknown and the
    /// hold is released: the customer is not charged for a call the switch cannot prove.
    pub async fn reconcile(
        &self,
        created_before_ms: i64,
        now_ms: i64,
    ) -> Result<ReconcileReport, StoreError> {
        let stale: Vec<String> = {
            let mut held = self.acquire().await?;
            let mut conn = held.conn();
            with_conn!(&mut conn, c => sqlx::query_scalar(
                "SELECT call_id FROM reservations WHERE state = 'open' AND created_at_ms < $1 \
                 ORDER BY id",
            )
            .bind(created_before_ms)
            .fetch_all(&mut **c)
            .await)?
        };
        let mut report = ReconcileReport::default();
        for call_id in stale {
            match self.close_unanswered(&call_id, now_ms).await? {
                crate::recovery::Closed::Released => report.released.push(call_id),
                crate::recovery::Closed::Settled(total) => report.settled.push((call_id, total)),
                crate::recovery::Closed::AlreadyClosed => {}
            }
        }
        if !report.released.is_empty() || !report.settled.is_empty() {
            tracing::warn!(
                released = report.released.len(),
                settled = report.settled.len(),
                "reconciled stale reservations"
            );
        }
        Ok(report)
    }
}

/// Explains why a settle found no open reservation, from its row (state, charged).
fn settle_again(
    call_id: &str,
    requested_micros: i64,
    existing: Option<(String, Option<i64>)>,
) -> Result<SettleOutcome, StoreError> {
    let (state, charged) = existing.ok_or(StoreError::UnknownCall)?;
    let state = ReservationState::parse(&state)?;
    match (state, charged) {
        (ReservationState::Settled, Some(charged)) if charged == requested_micros => {
            tracing::info!(call_id, charged, "settle replayed; nothing charged");
            Ok(SettleOutcome::Replayed {
                charged_micros: charged,
            })
        }
        (ReservationState::Settled, charged) => Err(StoreError::SettleConflict {
            charged_micros: charged.unwrap_or(0),
            requested_micros,
        }),
        (state, _) => Err(StoreError::ReservationClosed {
            state: state.as_str().to_owned(),
        }),
    }
}
