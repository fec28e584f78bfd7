//! Resellers (issue 16): vendor (the operator) -> resellers -> sub-resellers -> customers.
//!
//! A reseller keeps its money on an account of its own: the balance, the status, the
//! concurrency limit (0: unlimited) and the tariff it buys at, which is what the level above
//! (or the vendor) charges it. Its `credit_limit_micros` lets that balance go so far below zero.
//! A customer account names its reseller. [`Store::authorize`] holds credit on every level in
//! the call's transaction (`reservation_levels`, depth 1 = the customer's own reseller) and
//! settle charges each level at its own price in the same transaction; see reservation.rs.
//!
//! Locking: a call locks the customer's account, its owner's, then each reseller's account from
//! the customer's reseller upwards, so two calls always lock in the same order.

use crate::backend::{Conn, Store, with_conn};
use crate::error::StoreError;
use crate::exec::Exec;
use crate::ledger::{fetch_account, insert_account};
use crate::model::NewAccount;

/// The deepest a reseller can sit below the vendor when the caller gives no limit.
pub const DEFAULT_MAX_RESELLER_DEPTH: i64 = 3;
/// A guard against a damaged database: no chain is walked further than this.
const CHAIN_LIMIT: i64 = 16;

/// A reseller as stored, with its account's money.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reseller {
    pub id: i64,
    pub name: String,
    /// The reseller it buys from; `None`: from the vendor.
    pub parent_id: Option<i64>,
    /// Its own account (balance, status, limits, buy tariff).
    pub account_id: i64,
    /// How far below zero its balance may go.
    pub credit_limit_micros: i64,
    /// 1 directly below the vendor.
    pub depth: i64,
    pub currency: String,
    pub balance_micros: i64,
    /// The tariff it buys at; `None`: it pays what its customers pay (no margin).
    pub tariff_id: Option<i64>,
    /// What its customers without a tariff of their own pay (white label).
    pub sell_tariff_id: Option<i64>,
    /// A destination must sell at least this much above its own price, in percent.
    pub min_margin_percent: i64,
    /// Its commissions: basis points of its customers' calls (and a flat sum per charged
    /// call), and of its own customers' payments.
    pub commission: Commission,
    /// New calls a second over all its customers (0: no bound).
    pub calls_per_second: i64,
    pub status: String,
    pub concurrency_limit: i64,
    pub created_at_ms: i64,
}

/// What the vendor pays a reseller besides its margin (all zero: nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Commission {
    /// Basis points (1/100 %) of what the level below paid for each call.
    pub calls_bp: i64,
    /// Paid per charged call on top.
    pub call_flat_micros: i64,
    /// Basis points of each payment (recharge) of its own customers.
    pub payments_bp: i64,
}

/// What an operator changes of a reseller after adding it ([`Store::set_reseller_terms`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResellerTerms {
    /// How far below zero its balance may go.
    pub credit_limit_micros: i64,
    /// What its customers without a tariff of their own pay.
    pub sell_tariff_id: Option<i64>,
    /// The least margin over its own price, in percent.
    pub min_margin_percent: i64,
    pub commission: Commission,
    /// Calls at once over all its customers (0: no bound).
    pub concurrency_limit: i64,
    /// New calls a second over all its customers (0: no bound).
    pub calls_per_second: i64,
}

impl ResellerTerms {
    fn check(&self) -> Result<(), StoreError> {
        let invalid = |text: &str| Err(StoreError::InvalidArgument(text.to_owned()));
        let percent = |bp: i64| (0..=talktime_billing::BASIS_POINTS).contains(&bp);
        if self.credit_limit_micros < 0 {
            return invalid("a credit limit is not negative");
        }
        if !percent(self.commission.calls_bp) || !percent(self.commission.payments_bp) {
            return invalid("a commission is 0-100 %");
        }
        if self.concurrency_limit < 0 || self.calls_per_second < 0 {
            return invalid("limits must not be negative");
        }
        crate::ledger::check_amount(self.credit_limit_micros)?;
        crate::ledger::check_amount(self.commission.call_flat_micros)?;
        check_margin(self.min_margin_percent)
    }
}

impl Reseller {
    /// Its terms as they are, to change some and write them back.
    pub fn terms(&self) -> ResellerTerms {
        ResellerTerms {
            credit_limit_micros: self.credit_limit_micros,
            sell_tariff_id: self.sell_tariff_id,
            min_margin_percent: self.min_margin_percent,
            commission: self.commission,
            concurrency_limit: self.concurrency_limit,
            calls_per_second: self.calls_per_second,
        }
    }
}

/// What [`Store::add_reseller`] needs.
#[derive(Clone, Debug)]
pub struct NewReseller {
    pub name: String,
    pub parent_id: Option<i64>,
    pub currency: String,
    /// The tariff it buys at (what its parent or the vendor charges it).
    pub tariff_id: Option<i64>,
    pub credit_limit_micros: i64,
    /// Calls at once over all its customers; 0: unlimited.
    pub concurrency_limit: i64,
    /// The deepest level allowed ([`DEFAULT_MAX_RESELLER_DEPTH`] by default).
    pub max_depth: i64,
    /// What its customers without a tariff of their own pay.
    pub sell_tariff_id: Option<i64>,
    /// The least margin over its own price, in percent.
    pub min_margin_percent: i64,
}

/// What [`Store::transfer_to_customer`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub customer_balance_micros: i64,
    pub reseller_balance_micros: i64,
    /// An earlier transfer with the same key did it; nothing moved now.
    pub replayed: bool,
}

/// One reseller above a customer, as the ledger prices a call with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResellerLevel {
    /// 1 = the customer's own reseller.
    pub depth: i64,
    pub reseller_id: i64,
    pub account_id: i64,
    /// The tariff it buys at; `None`: the price of the level below.
    pub tariff_id: Option<i64>,
    /// What its customers without a tariff of their own pay.
    pub sell_tariff_id: Option<i64>,
    /// The least margin over its own price, in percent.
    pub min_margin_percent: i64,
}

/// One level as [`crate::Store::authorize`] reads it under the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelAvailable {
    pub level: ResellerLevel,
    /// Balance plus credit limit minus what its open calls hold; may be negative. For a
    /// callback's called leg, the caller leg's hold at this level is counted back in.
    pub available_micros: i64,
    /// That caller leg's hold at this level (0 for any other call).
    pub companion_micros: i64,
}

/// One call on a reseller's statement.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StatementLine {
    pub call_id: String,
    /// The reseller's level in the call (1 = the customer's own reseller).
    pub depth: i64,
    /// The customer account that made the call.
    pub customer_account_id: i64,
    /// The call's reservation: `open`, `settled` or `released`.
    pub state: String,
    /// What the reseller paid for the call; `None` while it is up.
    pub bought_micros: Option<i64>,
    /// What the level below paid the reseller for it; `None` while it is up.
    pub sold_micros: Option<i64>,
    /// The vendor's commission to the reseller on it.
    pub commission_micros: Option<i64>,
    pub created_at_ms: i64,
}

/// A level's part in one call.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LevelLine {
    pub call_id: String,
    pub depth: i64,
    pub reseller_id: i64,
    /// What the call holds (open) or held at this level.
    pub amount_micros: i64,
    /// What the level was charged; `None` while the call is up or when it was released.
    pub charged_micros: Option<i64>,
    pub open: bool,
}

type LevelRow = (String, i64, i64, i64, Option<i64>, i64);
type ChainRow = (i64, i64, i64, Option<i64>, Option<i64>, i64);
type StatementRow = (
    String,
    i64,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

fn level_line((call_id, depth, reseller_id, amount, charged, open): LevelRow) -> LevelLine {
    LevelLine {
        call_id,
        depth,
        reseller_id,
        amount_micros: amount,
        charged_micros: charged,
        open: open == 1,
    }
}

#[derive(sqlx::FromRow)]
struct ResellerRow {
    id: i64,
    name: String,
    parent_id: Option<i64>,
    account_id: i64,
    credit_limit_micros: i64,
    sell_tariff_id: Option<i64>,
    min_margin_percent: i64,
    commission_calls_bp: i64,
    commission_call_flat_micros: i64,
    commission_payments_bp: i64,
    calls_per_second: i64,
    depth: i64,
    currency: String,
    balance_micros: i64,
    tariff_id: Option<i64>,
    status: String,
    concurrency_limit: i64,
    created_at_ms: i64,
}

/// The ids of reseller `$root` (a bound parameter) and of every reseller below it, as SQL: the
/// one definition of a reseller's tree, for listing it and for scoping CDRs to it.
macro_rules! tree_ids {
    ($root:literal) => {
        concat!(
            "WITH RECURSIVE tree (id, steps) AS ( \
               SELECT CAST(",
            $root,
            " AS BIGINT), CAST(0 AS BIGINT) \
               UNION ALL SELECT child.id, tree.steps + 1 FROM resellers child \
               JOIN tree ON child.parent_id = tree.id WHERE tree.steps < 16) \
             SELECT id FROM tree"
        )
    };
}
pub(crate) use tree_ids;

/// `SELECT` of a reseller with its account's money, then `$tail`.
macro_rules! select_resellers {
    ($tail:literal) => {
        concat!(
            "SELECT r.id, r.name, r.parent_id, r.account_id, r.credit_limit_micros, \
             r.sell_tariff_id, r.min_margin_percent, r.commission_calls_bp, \
             r.commission_call_flat_micros, r.commission_payments_bp, r.calls_per_second, \
             r.depth, a.currency, \
             a.balance_micros, \
             a.tariff_id, a.status, a.concurrency_limit, r.created_at_ms \
             FROM resellers r JOIN accounts a ON a.id = r.account_id ",
            $tail
        )
    };
}

fn reseller(row: ResellerRow) -> Reseller {
    Reseller {
        id: row.id,
        name: row.name,
        parent_id: row.parent_id,
        account_id: row.account_id,
        credit_limit_micros: row.credit_limit_micros,
        depth: row.depth,
        currency: row.currency,
        balance_micros: row.balance_micros,
        tariff_id: row.tariff_id,
        sell_tariff_id: row.sell_tariff_id,
        min_margin_percent: row.min_margin_percent,
        commission: Commission {
            calls_bp: row.commission_calls_bp,
            call_flat_micros: row.commission_call_flat_micros,
            payments_bp: row.commission_payments_bp,
        },
        calls_per_second: row.calls_per_second,
        status: row.status,
        concurrency_limit: row.concurrency_limit,
        created_at_ms: row.created_at_ms,
    }
}

fn check_amount_positive(amount_micros: i64) -> Result<(), StoreError> {
    crate::ledger::check_amount(amount_micros)?;
    if amount_micros == 0 {
        return Err(StoreError::InvalidArgument("an amount above zero".into()));
    }
    Ok(())
}

fn check_margin(percent: i64) -> Result<(), StoreError> {
    if !(0..=1000).contains(&percent) {
        return Err(StoreError::InvalidArgument(
            "a minimum margin is 0-1000 percent".into(),
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() || name.len() > 100 {
        return Err(StoreError::InvalidArgument(
            "a reseller's name is 1-100 characters".into(),
        ));
    }
    Ok(())
}

pub(crate) async fn fetch_reseller(conn: &mut Conn<'_>, id: i64) -> Result<Reseller, StoreError> {
    let row: Option<ResellerRow> = with_conn!(conn, c => sqlx::query_as(select_resellers!("WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?;
    row.map(reseller)
        .ok_or_else(|| StoreError::not_found("reseller", id))
}

/// The resellers above `account_id`, its own first; empty for a customer of the vendor.
pub(crate) async fn chain_of(
    exec: &mut Exec<'_>,
    account_id: i64,
) -> Result<Vec<ResellerLevel>, StoreError> {
    let rows: Vec<ChainRow> = exec
        .fetch_all(
            "WITH RECURSIVE chain (depth, reseller_id, parent_id) AS ( \
           SELECT CAST(1 AS BIGINT), r.id, r.parent_id FROM accounts a \
           JOIN resellers r ON r.id = a.reseller_id WHERE a.id = $1 \
           UNION ALL \
           SELECT c.depth + 1, r.id, r.parent_id FROM chain c \
           JOIN resellers r ON r.id = c.parent_id WHERE c.depth < $2) \
         SELECT c.depth, c.reseller_id, r.account_id, a.tariff_id, r.sell_tariff_id, \
         r.min_margin_percent FROM chain c \
         JOIN resellers r ON r.id = c.reseller_id JOIN accounts a ON a.id = r.account_id \
         ORDER BY c.depth",
            &[account_id.into(), CHAIN_LIMIT.into()],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(depth, reseller_id, account_id, tariff_id, sell_tariff_id, margin)| ResellerLevel {
                depth,
                reseller_id,
                account_id,
                tariff_id,
                sell_tariff_id,
                min_margin_percent: margin,
            },
        )
        .collect())
}

/// What each level above `account_id` can still hold, its accounts locked bottom-up; a level
/// suspended or at its concurrency limit refuses the call. `beside`: the call already holds
/// one open call on every level (a callback's second leg), which is not another call.
pub(crate) async fn lock_levels(
    conn: &mut Exec<'_>,
    account_id: i64,
    companion: Option<&str>,
    now_ms: i64,
) -> Result<Vec<LevelAvailable>, StoreError> {
    let beside = companion.is_some();
    let chain = chain_of(conn, account_id).await?;
    let mut levels = Vec::with_capacity(chain.len());
    for level in chain {
        crate::reservation::lock_account(conn, level.account_id).await?;
        let (balance, limit, status, credit_limit, per_second, held, open_calls): LevelRead = conn.fetch_one(
            "SELECT a.balance_micros, a.concurrency_limit, a.status, r.credit_limit_micros, \
             r.calls_per_second, \
             (SELECT CAST(COALESCE(SUM(l.amount_micros), 0) AS BIGINT) FROM reservation_levels l \
              WHERE l.is_open = 1 AND l.account_id = a.id), \
             (SELECT COUNT(*) FROM reservation_levels l WHERE l.is_open = 1 AND l.account_id = a.id) \
             FROM accounts a JOIN resellers r ON r.account_id = a.id WHERE a.id = $1",
            &[level.account_id.into()],
        )
        .await?;
        let open_calls = open_calls - i64::from(beside);
        if status != "active" {
            return Err(StoreError::NotUsable {
                entity: "reseller",
                id: level.reseller_id,
                status,
            });
        }
        if limit > 0 && open_calls >= limit {
            return Err(StoreError::ConcurrencyLimit {
                account_id: level.account_id,
                limit,
                open: open_calls,
            });
        }
        if per_second > 0 && !beside {
            check_call_rate(conn, level.account_id, per_second, now_ms).await?;
        }
        let companion_micros = match companion {
            Some(call_id) => level_hold_of(conn, call_id, level.account_id).await?,
            None => 0,
        };
        levels.push(LevelAvailable {
            level,
            available_micros: balance + credit_limit - held + companion_micros,
            companion_micros,
        });
    }
    Ok(levels)
}

type LevelRead = (i64, i64, String, i64, i64, i64, i64);

/// Refuses a call when the level's customers started `per_second` calls in the last second.
async fn check_call_rate(
    exec: &mut Exec<'_>,
    account_id: i64,
    per_second: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let (recent,): (i64,) = exec
        .fetch_one(
            "SELECT COUNT(*) FROM reservation_levels \
             WHERE account_id = $1 AND created_at_ms > $2",
            &[account_id.into(), (now_ms - 1_000).into()],
        )
        .await?;
    if recent >= per_second {
        return Err(StoreError::CallRateLimit {
            account_id,
            per_second,
        });
    }
    Ok(())
}

/// Records the call's hold on each level.
pub(crate) async fn insert_level_holds(
    exec: &mut Exec<'_>,
    call_id: &str,
    levels: &[LevelAvailable],
    holds: &[i64],
    now_ms: i64,
) -> Result<(), StoreError> {
    for (level, hold) in levels.iter().zip(holds) {
        exec.defer(
            "INSERT INTO reservation_levels (call_id, depth, reseller_id, account_id, \
             amount_micros, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                call_id.into(),
                level.level.depth.into(),
                level.level.reseller_id.into(),
                level.level.account_id.into(),
                (*hold).into(),
                now_ms.into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// What a call holds open at one level (0 when it holds nothing there).
async fn level_hold_of(
    exec: &mut Exec<'_>,
    call_id: &str,
    account_id: i64,
) -> Result<i64, StoreError> {
    let (held,): (i64,) = exec
        .fetch_one(
            "SELECT CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT) FROM reservation_levels \
             WHERE call_id = $1 AND account_id = $2 AND is_open = 1",
            &[call_id.into(), account_id.into()],
        )
        .await?;
    Ok(held)
}

/// Sets a callback caller leg's holds at each level to what its called leg's authorization
/// decided (`holds` empty: unchanged).
pub(crate) async fn resize_level_holds(
    exec: &mut Exec<'_>,
    call_id: &str,
    levels: &[LevelAvailable],
    holds: &[i64],
) -> Result<(), StoreError> {
    for (level, hold) in levels.iter().zip(holds) {
        exec.defer(
            "UPDATE reservation_levels SET amount_micros = $1 \
             WHERE call_id = $2 AND account_id = $3 AND is_open = 1",
            &[
                (*hold).into(),
                call_id.into(),
                level.level.account_id.into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Closes a call's level holds without a charge (released, or settled with nothing to pay).
pub(crate) async fn close_level_holds(
    exec: &mut Exec<'_>,
    call_id: &str,
) -> Result<(), StoreError> {
    exec.defer(
        "UPDATE reservation_levels SET is_open = 0 WHERE call_id = $1 AND is_open = 1",
        &[call_id.into()],
    )
    .await?;
    Ok(())
}

/// Charges each level of a settling call its price (`charges[depth - 1]`; a level without
/// one pays nothing), pays each its call commission on what the level below paid (the customer's
/// `customer_charge` for the first), and closes its hold.
pub(crate) async fn charge_levels(
    conn: &mut Exec<'_>,
    call_id: &str,
    customer_charge: i64,
    charges: &[i64],
    now_ms: i64,
) -> Result<(), StoreError> {
    let open: Vec<(i64, i64, i64, i64)> = conn
        .fetch_all(
            "SELECT l.depth, l.account_id, r.commission_calls_bp, \
             r.commission_call_flat_micros \
             FROM reservation_levels l JOIN resellers r ON r.id = l.reseller_id \
             WHERE l.call_id = $1 AND l.is_open = 1 ORDER BY l.depth",
            &[call_id.into()],
        )
        .await?;
    let charge_at = |depth: i64| {
        usize::try_from(depth - 1)
            .ok()
            .and_then(|index| charges.get(index))
            .copied()
            .unwrap_or(0)
    };
    for (depth, account_id, rate_bp, flat_micros) in open {
        let charge = charge_at(depth);
        crate::ledger::check_amount(charge)?;
        let paid_below = if depth == 1 {
            customer_charge
        } else {
            charge_at(depth - 1)
        };
        let commission = talktime_billing::commission_micros(paid_below, rate_bp, flat_micros);
        conn.execute(
            "UPDATE reservation_levels SET is_open = 0, charged_micros = $3, \
             commission_micros = $4 WHERE call_id = $1 AND depth = $2",
            &[
                call_id.into(),
                depth.into(),
                charge.into(),
                commission.into(),
            ],
        )
        .await?;
        let postings = [
            (crate::model::TransactionKind::CallCharge, -charge),
            (crate::model::TransactionKind::Commission, commission),
        ];
        for (kind, amount_micros) in postings {
            if amount_micros == 0 {
                continue;
            }
            crate::ledger::post(
                conn,
                crate::ledger::Posting {
                    account_id,
                    kind,
                    amount_micros,
                    call_id: Some(call_id),
                    reference: None,
                    idempotency_key: None,
                    now_ms,
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// Pays the payment commission of `account_id`'s reseller on a payment of `amount_micros`
/// by that customer (an operator's recharge, a voucher), in the payment's transaction.
pub(crate) async fn pay_payment_commission(
    conn: &mut Conn<'_>,
    account_id: i64,
    amount_micros: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let reseller: Option<(i64, i64)> = with_conn!(conn, c => sqlx::query_as(
        "SELECT r.account_id, r.commission_payments_bp FROM accounts a \
         JOIN resellers r ON r.id = a.reseller_id WHERE a.id = $1",
    )
    .bind(account_id)
    .fetch_optional(&mut **c)
    .await)?;
    let Some((reseller_account, rate_bp)) = reseller else {
        return Ok(());
    };
    let commission = talktime_billing::commission_micros(amount_micros, rate_bp, 0);
    if commission == 0 {
        return Ok(());
    }
    let reference = format!("payment by account {account_id}");
    crate::ledger::post(
        &mut conn.exec(),
        crate::ledger::Posting {
            account_id: reseller_account,
            kind: crate::model::TransactionKind::Commission,
            amount_micros: commission,
            call_id: None,
            reference: Some(&reference),
            idempotency_key: None,
            now_ms,
        },
    )
    .await?;
    Ok(())
}

/// Makes a just-generated batch's card accounts customers of `reseller_id`.
pub(crate) async fn put_batch_under(
    conn: &mut Conn<'_>,
    batch_id: i64,
    reseller_id: i64,
    currency: &str,
) -> Result<(), StoreError> {
    let reseller = fetch_reseller(conn, reseller_id).await?;
    if reseller.currency != currency {
        return Err(StoreError::InvalidArgument(format!(
            "reseller {reseller_id} is in {}, the cards in {currency}",
            reseller.currency
        )));
    }
    with_conn!(conn, c => sqlx::query(
        "UPDATE accounts SET reseller_id = $1 \
         WHERE id IN (SELECT account_id FROM cards WHERE batch_id = $2)",
    )
    .bind(reseller_id)
    .bind(batch_id)
    .execute(&mut **c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Balance plus credit limit minus what the reseller's calls hold now, its account locked.
async fn locked_free_credit(conn: &mut Conn<'_>, reseller: &Reseller) -> Result<i64, StoreError> {
    crate::reservation::lock_account(&mut conn.exec(), reseller.account_id).await?;
    let (balance, held): (i64, i64) = with_conn!(conn, c => sqlx::query_as(
        "SELECT a.balance_micros, \
         (SELECT CAST(COALESCE(SUM(l.amount_micros), 0) AS BIGINT) FROM reservation_levels l \
          WHERE l.is_open = 1 AND l.account_id = a.id) FROM accounts a WHERE a.id = $1",
    )
    .bind(reseller.account_id)
    .fetch_one(&mut **c)
    .await)?;
    Ok(balance + reseller.credit_limit_micros - held)
}

/// The balance of `account_id` when an earlier posting with `key` moved exactly `amount`;
/// an error when it moved another amount; `None` when the key is new.
async fn replayed_transfer(
    conn: &mut Conn<'_>,
    account_id: i64,
    key: &str,
    amount_micros: i64,
) -> Result<Option<i64>, StoreError> {
    let earlier: Option<(i64, i64)> = with_conn!(conn, c => sqlx::query_as(
        "SELECT t.amount_micros, a.balance_micros FROM transactions t \
         JOIN accounts a ON a.id = t.account_id \
         WHERE t.account_id = $1 AND t.idempotency_key = $2",
    )
    .bind(account_id)
    .bind(key)
    .fetch_optional(&mut **c)
    .await)?;
    match earlier {
        Some((earlier, balance)) if earlier == amount_micros => Ok(Some(balance)),
        Some((earlier, _)) => Err(StoreError::InvalidArgument(format!(
            "transfer key {key:?} was used for {earlier} micros, not {amount_micros}"
        ))),
        None => Ok(None),
    }
}

impl Store {
    /// Moves `amount_micros` from a reseller's credit to one of its own customers (seed 003's
    /// pinless reseller and retail recharge), at most once per customer and `key`: a repeat
    /// with the same key and amount moves nothing. Refused when the reseller's free credit
    /// (balance plus credit limit minus what its calls hold) is short, and, as not found, when
    /// the account is not its customer.
    pub async fn transfer_to_customer(
        &self,
        reseller_id: i64,
        account_id: i64,
        amount_micros: i64,
        key: &str,
        now_ms: i64,
    ) -> Result<Transfer, StoreError> {
        check_amount_positive(amount_micros)?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let reseller = fetch_reseller(&mut conn, reseller_id).await?;
        let customer_of: Option<Option<i64>> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT reseller_id FROM accounts WHERE id = $1",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        if customer_of.flatten() != Some(reseller_id) {
            return Err(StoreError::not_found("account", account_id));
        }
        if let Some(balance) = replayed_transfer(&mut conn, account_id, key, amount_micros).await? {
            return Ok(Transfer {
                customer_balance_micros: balance,
                reseller_balance_micros: reseller.balance_micros,
                replayed: true,
            });
        }
        let free = locked_free_credit(&mut conn, &reseller).await?;
        if free < amount_micros {
            return Err(StoreError::Refused(
                crate::reservation::Refusal::InsufficientCredit {
                    available_micros: free.max(0),
                    needed_micros: amount_micros,
                },
            ));
        }
        let to_customer = format!("to account {account_id}");
        let reseller_balance = crate::ledger::post(
            &mut conn.exec(),
            crate::ledger::Posting {
                account_id: reseller.account_id,
                kind: crate::model::TransactionKind::Transfer,
                amount_micros: -amount_micros,
                call_id: None,
                reference: Some(&to_customer),
                idempotency_key: Some(key),
                now_ms,
            },
        )
        .await?;
        let from_reseller = format!("reseller {}", reseller.name);
        let customer_balance = crate::ledger::recharge_in(
            &mut conn,
            crate::ledger::Posting {
                account_id,
                kind: crate::model::TransactionKind::Recharge,
                amount_micros,
                call_id: None,
                reference: Some(&from_reseller),
                idempotency_key: Some(key),
                now_ms,
            },
        )
        .await?;
        transaction.commit().await?;
        Ok(Transfer {
            customer_balance_micros: customer_balance,
            reseller_balance_micros: reseller_balance,
            replayed: false,
        })
    }

    /// A pinless customer of a reseller: a new account in its currency, under it, with
    /// `number` registered as its caller ID. Refused when the number is registered already.
    pub async fn add_pinless_customer(
        &self,
        reseller_id: i64,
        name: &str,
        number: &talktime_pii::Pii<String>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let reseller = fetch_reseller(&mut conn, reseller_id).await?;
        let taken: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT account_id FROM caller_ids WHERE number = $1",
        )
        .bind(number.expose())
        .fetch_optional(&mut **c)
        .await)?;
        if taken.is_some() {
            return Err(StoreError::InvalidArgument(
                "the number is registered to an account already".into(),
            ));
        }
        let account_id = insert_account(
            &mut conn,
            &NewAccount::new(name, &reseller.currency),
            now_ms,
        )
        .await?;
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE accounts SET reseller_id = $2 WHERE id = $1",
        )
        .bind(account_id)
        .bind(reseller_id)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO caller_ids (number, account_id, created_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(number.expose())
        .bind(account_id)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        transaction.commit().await?;
        Ok(account_id)
    }

    /// The account a reseller's customer's number is registered to, if it is its customer.
    pub async fn customer_by_number(
        &self,
        reseller_id: i64,
        number: &talktime_pii::Pii<String>,
    ) -> Result<Option<i64>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let found: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT a.id FROM caller_ids n JOIN accounts a ON a.id = n.account_id \
             WHERE n.number = $1 AND a.reseller_id = $2",
        )
        .bind(number.expose())
        .bind(reseller_id)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(found)
    }

    /// Sets the PIN a reseller's retail agents key on a retail recharge line (its keyed hash
    /// is kept); false when another reseller has that PIN.
    pub async fn set_agent_pin(
        &self,
        reseller_id: i64,
        pin: &talktime_pii::Pii<String>,
    ) -> Result<bool, StoreError> {
        let hash = self.pin_hash(pin);
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        fetch_reseller(&mut conn, reseller_id).await?;
        let taken: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT id FROM resellers WHERE agent_pin_hash = $1 AND id <> $2",
        )
        .bind(&hash)
        .bind(reseller_id)
        .fetch_optional(&mut **c)
        .await)?;
        if taken.is_some() {
            return Ok(false);
        }
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE resellers SET agent_pin_hash = $2 WHERE id = $1",
        )
        .bind(reseller_id)
        .bind(&hash)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        transaction.commit().await?;
        Ok(true)
    }

    /// The reseller whose agent PIN this is.
    pub async fn reseller_by_agent_pin(
        &self,
        pin: &talktime_pii::Pii<String>,
    ) -> Result<Option<Reseller>, StoreError> {
        let hash = self.pin_hash(pin);
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<ResellerRow> = with_conn!(&mut conn, c => sqlx::query_as(
            select_resellers!("WHERE r.agent_pin_hash = $1"),
        )
        .bind(&hash)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(row.map(reseller))
    }

    /// The reseller whose own account this is.
    pub async fn reseller_of_account(
        &self,
        account_id: i64,
    ) -> Result<Option<Reseller>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<ResellerRow> = with_conn!(&mut conn, c => sqlx::query_as(
            select_resellers!("WHERE r.account_id = $1"),
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(row.map(reseller))
    }

    /// True when `reseller_id` is `root` or sits anywhere below it.
    pub async fn reseller_in_tree(&self, reseller_id: i64, root: i64) -> Result<bool, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let found: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            concat!("SELECT id FROM resellers WHERE id = $1 AND id IN (", tree_ids!("$2"), ")"),
        )
        .bind(reseller_id)
        .bind(root)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(found.is_some())
    }

    /// True when the account is a customer of `root` or of a reseller below it.
    pub async fn account_in_tree(&self, account_id: i64, root: i64) -> Result<bool, StoreError> {
        match self.account_reseller(account_id).await {
            Ok(Some(reseller)) => self.reseller_in_tree(reseller, root).await,
            Ok(None) | Err(StoreError::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Adds a reseller with an account of its own (zero balance, unlimited calls unless
    /// given). A sub-reseller shares its parent's currency and sits at most `max_depth` deep.
    pub async fn add_reseller(
        &self,
        new: &NewReseller,
        now_ms: i64,
    ) -> Result<Reseller, StoreError> {
        check_name(&new.name)?;
        if new.credit_limit_micros < 0 {
            return Err(StoreError::InvalidArgument(
                "a credit limit is not negative".into(),
            ));
        }
        check_margin(new.min_margin_percent)?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let depth = match new.parent_id {
            Some(parent_id) => {
                let parent = fetch_reseller(&mut conn, parent_id).await?;
                if parent.currency != new.currency {
                    return Err(StoreError::InvalidArgument(format!(
                        "reseller {parent_id} is in {}, not {}",
                        parent.currency, new.currency
                    )));
                }
                parent.depth + 1
            }
            None => 1,
        };
        if depth > new.max_depth.max(1) {
            return Err(StoreError::InvalidArgument(format!(
                "resellers nest at most {} deep",
                new.max_depth.max(1)
            )));
        }
        let taken: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT id FROM resellers WHERE name = $1",
        )
        .bind(&new.name)
        .fetch_optional(&mut **c)
        .await)?;
        if taken.is_some() {
            return Err(StoreError::InvalidArgument(format!(
                "a reseller named {} exists",
                new.name
            )));
        }
        let mut account = NewAccount::new(format!("reseller {}", new.name), &new.currency);
        account.concurrency_limit = new.concurrency_limit;
        account.tariff_id = new.tariff_id;
        let account_id = insert_account(&mut conn, &account, now_ms).await?;
        let id: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "INSERT INTO resellers (name, parent_id, account_id, credit_limit_micros, depth, \
             sell_tariff_id, min_margin_percent, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&new.name)
        .bind(new.parent_id)
        .bind(account_id)
        .bind(new.credit_limit_micros)
        .bind(depth)
        .bind(new.sell_tariff_id)
        .bind(new.min_margin_percent)
        .bind(now_ms)
        .fetch_one(&mut **c)
        .await)?;
        let added = fetch_reseller(&mut conn, id).await?;
        transaction.commit().await?;
        Ok(added)
    }

    /// A reseller by id.
    pub async fn reseller(&self, id: i64) -> Result<Reseller, StoreError> {
        let mut held = self.acquire().await?;
        fetch_reseller(&mut held.conn(), id).await
    }

    /// A reseller by name.
    pub async fn reseller_by_name(&self, name: &str) -> Result<Option<Reseller>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<ResellerRow> = with_conn!(&mut conn, c => sqlx::query_as(select_resellers!("WHERE r.name = $1"))
            .bind(name)
            .fetch_optional(&mut **c)
            .await)?;
        Ok(row.map(reseller))
    }

    /// Every reseller, parents before their children.
    pub async fn resellers(&self) -> Result<Vec<Reseller>, StoreError> {
        self.resellers_under(None).await
    }

    /// Reseller `root` and every reseller below it (every reseller with `None`), parents
    /// before their children: what a reseller's user may see.
    pub async fn resellers_under(&self, root: Option<i64>) -> Result<Vec<Reseller>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<ResellerRow> = with_conn!(&mut conn, c => sqlx::query_as(
            concat!(
                select_resellers!("WHERE CAST($1 AS BIGINT) IS NULL OR r.id IN ("),
                tree_ids!("$1"),
                ") ORDER BY r.depth, r.id"
            ),
        )
        .bind(root)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows.into_iter().map(reseller).collect())
    }

    /// Changes a reseller's terms, all in one transaction: credit limit, white-label tariff,
    /// minimum margin, commissions and limits over all its customers. Read them with
    /// [`Reseller::terms`], change what changes, write them back.
    pub async fn set_reseller_terms(
        &self,
        id: i64,
        terms: &ResellerTerms,
    ) -> Result<Reseller, StoreError> {
        terms.check()?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let reseller = fetch_reseller(&mut conn, id).await?;
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE resellers SET credit_limit_micros = $2, sell_tariff_id = $3, \
             min_margin_percent = $4, commission_calls_bp = $5, \
             commission_call_flat_micros = $6, commission_payments_bp = $7, \
             calls_per_second = $8 WHERE id = $1",
        )
        .bind(id)
        .bind(terms.credit_limit_micros)
        .bind(terms.sell_tariff_id)
        .bind(terms.min_margin_percent)
        .bind(terms.commission.calls_bp)
        .bind(terms.commission.call_flat_micros)
        .bind(terms.commission.payments_bp)
        .bind(terms.calls_per_second)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE accounts SET concurrency_limit = $2 WHERE id = $1",
        )
        .bind(reseller.account_id)
        .bind(terms.concurrency_limit)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        let changed = fetch_reseller(&mut conn, id).await?;
        transaction.commit().await?;
        Ok(changed)
    }

    /// Puts a customer account (a card's or a pinless one) under a reseller, or back under
    /// the vendor with `None`. A reseller's own account cannot be a customer, and the
    /// currencies must match. Calls already up keep the levels they were authorized with.
    pub async fn set_account_reseller(
        &self,
        account_id: i64,
        reseller_id: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let account = fetch_account(&mut conn.exec(), account_id).await?;
        let is_reseller: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT id FROM resellers WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        if is_reseller.is_some() {
            return Err(StoreError::InvalidArgument(format!(
                "account {account_id} is a reseller's own account"
            )));
        }
        if let Some(reseller_id) = reseller_id {
            let reseller = fetch_reseller(&mut conn, reseller_id).await?;
            if reseller.currency != account.currency {
                return Err(StoreError::InvalidArgument(format!(
                    "reseller {reseller_id} is in {}, account {account_id} in {}",
                    reseller.currency, account.currency
                )));
            }
        }
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE accounts SET reseller_id = $2 WHERE id = $1",
        )
        .bind(account_id)
        .bind(reseller_id)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        transaction.commit().await?;
        Ok(())
    }

    /// The resellers above an account, its own first (for pricing a call before it is
    /// authorized; the authorization reads them again under the lock).
    pub async fn reseller_chain(&self, account_id: i64) -> Result<Vec<ResellerLevel>, StoreError> {
        // A reseller's customer's call asks: a call's read.
        let mut read = self.acquire_call_read().await?;
        chain_of(&mut read.exec(), account_id).await
    }

    /// The reseller of an account, if any.
    pub async fn account_reseller(&self, account_id: i64) -> Result<Option<i64>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let found: Option<Option<i64>> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT reseller_id FROM accounts WHERE id = $1",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        found.ok_or_else(|| StoreError::not_found("account", account_id))
    }

    /// A reseller's statement: every call it took part in (as any level), newest first, at
    /// most `limit`: what it paid the level above (`bought`) and what the level below paid it
    /// (`sold`: its customer's charge at depth 1, else the sub-reseller's).
    pub async fn reseller_statement(
        &self,
        reseller_id: i64,
        limit: i64,
    ) -> Result<Vec<StatementLine>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<StatementRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT l.call_id, l.depth, r.account_id, r.state, l.charged_micros, \
             CASE WHEN l.depth = 1 THEN r.charged_micros ELSE b.charged_micros END, \
             l.commission_micros, r.created_at_ms \
             FROM reservation_levels l JOIN reservations r ON r.call_id = l.call_id \
             LEFT JOIN reservation_levels b ON b.call_id = l.call_id AND b.depth = l.depth - 1 \
             WHERE l.reseller_id = $1 ORDER BY r.id DESC LIMIT $2",
        )
        .bind(reseller_id)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(call_id, depth, customer, state, bought, sold, commission, at_ms)| {
                    StatementLine {
                        call_id,
                        depth,
                        customer_account_id: customer,
                        state,
                        bought_micros: bought,
                        sold_micros: sold,
                        commission_micros: commission,
                        created_at_ms: at_ms,
                    }
                },
            )
            .collect())
    }

    /// What a reseller's calls hold now, and how many are up.
    pub async fn reseller_holds(&self, reseller_id: i64) -> Result<(i64, i64), StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let holds: (i64, i64) = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT), COUNT(*) \
             FROM reservation_levels WHERE reseller_id = $1 AND is_open = 1",
        )
        .bind(reseller_id)
        .fetch_one(&mut **c)
        .await)?;
        Ok(holds)
    }

    /// The levels of one call, its own reseller first.
    pub async fn call_levels(&self, call_id: &str) -> Result<Vec<LevelLine>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<LevelRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT call_id, depth, reseller_id, amount_micros, charged_micros, is_open \
             FROM reservation_levels WHERE call_id = $1 ORDER BY depth",
        )
        .bind(call_id)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows.into_iter().map(level_line).collect())
    }
}
