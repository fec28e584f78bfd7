//! Call detail records: one row per call attempt, unique on (call id, attempt).

use rust_decimal::{Decimal, RoundingStrategy};
use talktime_pii::Pii;

use crate::backend::{Store, with_conn};
use crate::error::StoreError;

pub use talktime_billing::Cdr;

#[derive(sqlx::FromRow)]
struct CdrRow {
    call_id: String,
    attempt: i64,
    account_id: Option<i64>,
    card_id: Option<i64>,
    caller_id: Option<String>,
    access_number: Option<String>,
    destination: String,
    carrier: Option<String>,
    start_ms: i64,
    answer_ms: Option<i64>,
    end_ms: i64,
    billed_seconds: i64,
    fees_json: String,
    taxes_json: String,
    tax_micros: i64,
    total_micros: i64,
    buy_cost_micros: i64,
    sip_code: Option<i64>,
    q850_cause: Option<i64>,
    hangup_by: Option<String>,
    disconnect_cause: Option<String>,
}

impl From<CdrRow> for Cdr {
    fn from(row: CdrRow) -> Self {
        Cdr {
            call_id: row.call_id,
            attempt: row.attempt,
            account_id: row.account_id,
            card_id: row.card_id,
            caller_id: row.caller_id.map(Pii::new),
            access_number: row.access_number,
            destination: Pii::new(row.destination),
            carrier: row.carrier,
            start_ms: row.start_ms,
            answer_ms: row.answer_ms,
            end_ms: row.end_ms,
            billed_seconds: row.billed_seconds,
            fees_json: row.fees_json,
            taxes_json: row.taxes_json,
            tax_micros: row.tax_micros,
            total_micros: row.total_micros,
            buy_cost_micros: row.buy_cost_micros,
            sip_code: row.sip_code,
            q850_cause: row.q850_cause,
            hangup_by: row.hangup_by,
            disconnect_cause: row.disconnect_cause,
        }
    }
}

/// The columns of [`CdrRow`], in order.
macro_rules! cdr_columns {
    () => {
        "call_id, attempt, account_id, card_id, caller_id, access_number, destination, \
         carrier, start_ms, answer_ms, end_ms, billed_seconds, fees_json, taxes_json, \
         tax_micros, total_micros, buy_cost_micros, sip_code, q850_cause, hangup_by, \
         disconnect_cause"
    };
}

/// What a [`Store::traffic_report`] row is grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrafficGrouping {
    /// The carrier tried (`cdrs.carrier`).
    Carrier,
    /// The access number dialled (`cdrs.access_number`).
    AccessNumber,
    /// The charged account (`cdrs.account_id`, as decimal text).
    Account,
    /// The UTC day the call started: days since 1970-01-01, as decimal text.
    Day,
    /// The hour the call started: hours since the epoch, as decimal text.
    Hour,
}

/// Traffic figures of one group over a time window. Money sums mix currencies if the group
/// does; group by account to keep one currency per row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficRow {
    /// The carrier name, access number, or account id as text; `None` for CDRs where that
    /// column is NULL.
    pub group: Option<String>,
    /// CDR rows (call attempts, failovers included).
    pub attempts: i64,
    /// Attempts that were answered (`answer_ms` set).
    pub answered: i64,
    /// Sum of `end_ms - answer_ms` over answered attempts.
    pub talk_ms: i64,
    /// Sum of billed seconds.
    pub billed_seconds: i64,
    /// Sum of what customers pay (`total_micros`, taxes included).
    pub revenue_micros: i64,
    /// Sum of taxes.
    pub tax_micros: i64,
    /// Sum of what carriers charge (`buy_cost_micros`).
    pub cost_micros: i64,
}

/// Report figures are rounded like the billing crate rounds totals: half away from zero.
const REPORT_DECIMAL_PLACES: u32 = 2;

fn round_for_report(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(
        REPORT_DECIMAL_PLACES,
        RoundingStrategy::MidpointAwayFromZero,
    )
}

impl TrafficRow {
    /// The rows' sums as one row named `group`.
    pub fn total(group: Option<String>, rows: &[TrafficRow]) -> TrafficRow {
        let mut total = TrafficRow {
            group,
            attempts: 0,
            answered: 0,
            talk_ms: 0,
            billed_seconds: 0,
            revenue_micros: 0,
            tax_micros: 0,
            cost_micros: 0,
        };
        for row in rows {
            total.attempts += row.attempts;
            total.answered += row.answered;
            total.talk_ms += row.talk_ms;
            total.billed_seconds += row.billed_seconds;
            total.revenue_micros += row.revenue_micros;
            total.tax_micros += row.tax_micros;
            total.cost_micros += row.cost_micros;
        }
        total
    }

    /// Answer-seizure ratio: answered × 100 / attempts, to 2 decimals; `None` without attempts.
    pub fn asr_percent(&self) -> Option<Decimal> {
        if self.attempts == 0 {
            return None;
        }
        let ratio = Decimal::from(self.answered)
            .checked_mul(Decimal::ONE_HUNDRED)?
            .checked_div(Decimal::from(self.attempts))?;
        Some(round_for_report(ratio))
    }

    /// Average call duration: talk time / answered attempts in seconds, to 2 decimals; `None`
    /// when nothing was answered.
    pub fn acd_seconds(&self) -> Option<Decimal> {
        if self.answered == 0 {
            return None;
        }
        // talk_ms scaled by 3 decimal places is talk seconds.
        let average = Decimal::new(self.talk_ms, 3).checked_div(Decimal::from(self.answered))?;
        Some(round_for_report(average))
    }

    /// Revenue minus taxes minus carrier cost (saturating: sums near `i64` limits are not
    /// real traffic, and a report must not panic).
    pub fn margin_micros(&self) -> i64 {
        self.revenue_micros
            .saturating_sub(self.tax_micros)
            .saturating_sub(self.cost_micros)
    }
}

#[derive(sqlx::FromRow)]
struct TrafficRowData {
    group_key: Option<String>,
    attempts: i64,
    answered: i64,
    talk_ms: i64,
    billed_seconds: i64,
    revenue_micros: i64,
    tax_micros: i64,
    cost_micros: i64,
}

impl From<TrafficRowData> for TrafficRow {
    fn from(row: TrafficRowData) -> Self {
        TrafficRow {
            group: row.group_key,
            attempts: row.attempts,
            answered: row.answered,
            talk_ms: row.talk_ms,
            billed_seconds: row.billed_seconds,
            revenue_micros: row.revenue_micros,
            tax_micros: row.tax_micros,
            cost_micros: row.cost_micros,
        }
    }
}

/// The traffic query for one grouping, as a `&'static str`. PostgreSQL's SUM(BIGINT) is
/// NUMERIC, hence the casts; COALESCE covers sums over no answered rows.
macro_rules! traffic_query {
    ($group_select:literal, $group_by:literal) => {
        concat!(
            "SELECT ",
            $group_select,
            " AS group_key, COUNT(*) AS attempts, COUNT(answer_ms) AS answered, \
             CAST(COALESCE(SUM(end_ms - answer_ms), 0) AS BIGINT) AS talk_ms, \
             CAST(COALESCE(SUM(billed_seconds), 0) AS BIGINT) AS billed_seconds, \
             CAST(COALESCE(SUM(total_micros), 0) AS BIGINT) AS revenue_micros, \
             CAST(COALESCE(SUM(tax_micros), 0) AS BIGINT) AS tax_micros, \
             CAST(COALESCE(SUM(buy_cost_micros), 0) AS BIGINT) AS cost_micros \
             FROM cdrs WHERE start_ms >= $1 AND start_ms < $2 GROUP BY ",
            $group_by,
            " ORDER BY ",
            $group_by,
            " NULLS LAST"
        )
    };
}

const INSERT_CDR: &str = "INSERT INTO cdrs (call_id, attempt, account_id, card_id, caller_id, \
     access_number, destination, carrier, start_ms, answer_ms, end_ms, billed_seconds, \
     fees_json, taxes_json, tax_micros, total_micros, buy_cost_micros, sip_code, q850_cause, \
     hangup_by, disconnect_cause, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
     $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
     ON CONFLICT (call_id, attempt) DO NOTHING";

fn cdr_args(cdr: &Cdr, now_ms: i64) -> [crate::exec::Arg<'_>; 22] {
    let caller_id = cdr
        .caller_id
        .as_ref()
        .map(|number| number.expose().as_str());
    [
        (&cdr.call_id).into(),
        cdr.attempt.into(),
        cdr.account_id.into(),
        cdr.card_id.into(),
        caller_id.into(),
        cdr.access_number.as_deref().into(),
        cdr.destination.expose().into(),
        cdr.carrier.as_deref().into(),
        cdr.start_ms.into(),
        cdr.answer_ms.into(),
        cdr.end_ms.into(),
        cdr.billed_seconds.into(),
        (&cdr.fees_json).into(),
        (&cdr.taxes_json).into(),
        cdr.tax_micros.into(),
        cdr.total_micros.into(),
        cdr.buy_cost_micros.into(),
        cdr.sip_code.into(),
        cdr.q850_cause.into(),
        cdr.hangup_by.as_deref().into(),
        cdr.disconnect_cause.as_deref().into(),
        now_ms.into(),
    ]
}

/// Inserts a CDR unless one exists for (call id, attempt); returns whether it was inserted.
pub(crate) async fn insert_cdr(
    exec: &mut crate::exec::Exec<'_>,
    cdr: &Cdr,
    now_ms: i64,
) -> Result<bool, StoreError> {
    Ok(exec.execute(INSERT_CDR, &cdr_args(cdr, now_ms)).await? == 1)
}

/// [`insert_cdr`] inside a call's transaction, where whether it was new is not asked: on a
/// pipelined connection it goes out with the COMMIT.
pub(crate) async fn record_cdr(
    exec: &mut crate::exec::Exec<'_>,
    cdr: &Cdr,
    now_ms: i64,
) -> Result<(), StoreError> {
    exec.defer(INSERT_CDR, &cdr_args(cdr, now_ms)).await
}

impl Store {
    /// Writes one CDR (e.g. a failed attempt before failover); a replay of the same
    /// (call id, attempt) is ignored and returns `false`.
    pub async fn write_cdr(&self, cdr: &Cdr, now_ms: i64) -> Result<bool, StoreError> {
        // A call's failed attempt before failover: one of a call's writes.
        let mut write = self.begin_call_statement().await?;
        let inserted = insert_cdr(&mut write.exec(), cdr, now_ms).await?;
        write.commit().await?;
        Ok(inserted)
    }

    /// The account's last answered call: (what it cost in micro-units, its talk time in
    /// milliseconds); `None` before its first. For the balance line.
    pub async fn last_answered_call(
        &self,
        account_id: i64,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<(i64, i64)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT total_micros, end_ms - answer_ms FROM cdrs \
             WHERE account_id = $1 AND answer_ms IS NOT NULL \
             ORDER BY start_ms DESC, id DESC LIMIT 1",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(row)
    }

    /// The CDRs of a call, by attempt.
    pub async fn cdrs_for_call(&self, call_id: &str) -> Result<Vec<Cdr>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<CdrRow> = with_conn!(&mut conn, c => sqlx::query_as(
            concat!("SELECT ", cdr_columns!(), " FROM cdrs WHERE call_id = $1 ORDER BY attempt"),
        )
        .bind(call_id)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows.into_iter().map(Cdr::from).collect())
    }

    /// CDRs that started in `[from_ms, to_ms)`, by start time, call id and attempt, at most
    /// `limit` of them (page on by asking again from the last start time).
    pub async fn cdrs_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<Cdr>, StoreError> {
        // SQLite reads a negative LIMIT as "no limit", PostgreSQL rejects it: refuse on both.
        if limit < 0 {
            return Err(StoreError::InvalidArgument(format!(
                "CDR limit must not be negative, got {limit}"
            )));
        }
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<CdrRow> = with_conn!(&mut conn, c => sqlx::query_as(
            concat!(
                "SELECT ",
                cdr_columns!(),
                " FROM cdrs WHERE start_ms >= $1 AND start_ms < $2 \
                 ORDER BY start_ms, call_id, attempt LIMIT $3"
            ),
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows.into_iter().map(Cdr::from).collect())
    }

    /// Attempts, answers, talk time, billed seconds and money of the CDRs that started in
    /// `[from_ms, to_ms)`, one row per group. Accounts come in numeric order, carriers and
    /// access numbers in byte order (the same on both backends, whatever PostgreSQL's
    /// collation); the NULL group comes last.
    pub async fn traffic_report(
        &self,
        from_ms: i64,
        to_ms: i64,
        grouping: TrafficGrouping,
    ) -> Result<Vec<TrafficRow>, StoreError> {
        let query = match grouping {
            TrafficGrouping::Carrier => traffic_query!("carrier", "carrier"),
            TrafficGrouping::AccessNumber => traffic_query!("access_number", "access_number"),
            // Grouped and ordered by the number, returned as text.
            TrafficGrouping::Account => traffic_query!("CAST(account_id AS TEXT)", "account_id"),
            TrafficGrouping::Day => {
                traffic_query!("CAST(start_ms / 86400000 AS TEXT)", "start_ms / 86400000")
            }
            TrafficGrouping::Hour => {
                traffic_query!("CAST(start_ms / 3600000 AS TEXT)", "start_ms / 3600000")
            }
        };
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<TrafficRowData> = with_conn!(&mut conn, c => sqlx::query_as(query)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&mut **c)
            .await)?;
        let mut report: Vec<TrafficRow> = rows.into_iter().map(TrafficRow::from).collect();
        if matches!(
            grouping,
            TrafficGrouping::Carrier | TrafficGrouping::AccessNumber
        ) {
            // Option orders None first; the key puts it last, as the SQL does.
            report.sort_by(|left, right| {
                (left.group.is_none(), &left.group).cmp(&(right.group.is_none(), &right.group))
            });
        }
        Ok(report)
    }
}

/// What the console's CDR search filters on; `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CdrFilter {
    /// Started at or after (epoch ms).
    pub from_ms: i64,
    /// Started before (epoch ms).
    pub to_ms: i64,
    pub account_id: Option<i64>,
    pub carrier: Option<String>,
    /// The CDR cause name (`operator`, `credit_exhausted`, ...).
    pub cause: Option<String>,
    /// Leading digits of the destination.
    pub destination_prefix: Option<String>,
    /// Only the calls of customers of this reseller or of any reseller below it (what a
    /// reseller's user may see).
    pub reseller_tree: Option<i64>,
}

/// Where a page of [`Store::search_cdrs`] ends: the next page starts below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CdrCursor {
    pub start_ms: i64,
    pub id: i64,
}

#[derive(sqlx::FromRow)]
struct CdrRowWithId {
    id: i64,
    #[sqlx(flatten)]
    row: CdrRow,
}

impl Store {
    /// A page of CDRs matching `filter`, newest first, below `before` (keyset paging: the
    /// cost of a page does not grow with how deep it is, and nothing counts the table).
    pub async fn search_cdrs(
        &self,
        filter: &CdrFilter,
        before: Option<CdrCursor>,
        limit: i64,
    ) -> Result<Vec<(CdrCursor, Cdr)>, StoreError> {
        if !(0..=10_000).contains(&limit) {
            return Err(StoreError::InvalidArgument(format!(
                "a CDR page holds 0 to 10000 rows, not {limit}"
            )));
        }
        let cursor = before.unwrap_or(CdrCursor {
            start_ms: i64::MAX,
            id: i64::MAX,
        });
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<CdrRowWithId> = with_conn!(&mut conn, c => sqlx::query_as(
            concat!(
                "SELECT id, ",
                cdr_columns!(),
                " FROM cdrs WHERE start_ms >= $1 AND start_ms < $2 \
                 AND start_ms <= $3 AND (start_ms, id) < ($3, $4) \
                 AND (CAST($5 AS BIGINT) IS NULL OR account_id = $5) \
                 AND (CAST($6 AS TEXT) IS NULL OR carrier = $6) \
                 AND (CAST($7 AS TEXT) IS NULL OR disconnect_cause = $7) \
                 AND (CAST($8 AS TEXT) IS NULL OR substr(destination, 1, length($8)) = $8) \
                 AND (CAST($10 AS BIGINT) IS NULL OR account_id IN ( \
                   SELECT id FROM accounts WHERE reseller_id IN (",
                crate::resellers::tree_ids!("$10"),
                "))) ORDER BY start_ms DESC, id DESC LIMIT $9"
            ),
        )
        .bind(filter.from_ms)
        .bind(filter.to_ms)
        .bind(cursor.start_ms)
        .bind(cursor.id)
        .bind(filter.account_id)
        .bind(filter.carrier.as_deref())
        .bind(filter.cause.as_deref())
        .bind(filter.destination_prefix.as_deref())
        .bind(limit)
        .bind(filter.reseller_tree)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|found| {
                let cursor = CdrCursor {
                    start_ms: found.row.start_ms,
                    id: found.id,
                };
                (cursor, Cdr::from(found.row))
            })
            .collect())
    }
}
