//! Call detail records: one row per call attempt, unique on (call id, attempt).

use talktime_pii::Pii;

use crate::backend::{Conn, Store, with_conn};
use crate::error::StoreError;

/// A call detail record. Fees and taxes are JSON text the billing crate writes and reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cdr {
    /// SIP Call-ID of the inbound leg (the reservation key).
    pub call_id: String,
    /// 1 for the first carrier tried, 2 for the first failover, ...
    pub attempt: i64,
    /// The charged account.
    pub account_id: Option<i64>,
    /// The card used, if any.
    pub card_id: Option<i64>,
    /// The calling number.
    pub caller_id: Option<Pii<String>>,
    /// The access number dialled.
    pub access_number: Option<String>,
    /// The destination dialled.
    pub destination: Pii<String>,
    /// The carrier tried.
    pub carrier: Option<String>,
    /// INVITE sent, epoch ms.
    pub start_ms: i64,
    /// 200 OK received, epoch ms.
    pub answer_ms: Option<i64>,
    /// BYE or failure, epoch ms.
    pub end_ms: i64,
    /// Seconds billed after rounding to blocks.
    pub billed_seconds: i64,
    /// Fees as JSON text.
    pub fees_json: String,
    /// Taxes as JSON text.
    pub taxes_json: String,
    /// Sum of taxes, micros.
    pub tax_micros: i64,
    /// What the customer pays for this attempt, micros.
    pub total_micros: i64,
    /// What the carrier charges, micros.
    pub buy_cost_micros: i64,
    /// Final SIP status code.
    pub sip_code: Option<i64>,
    /// Q.850 cause.
    pub q850_cause: Option<i64>,
    /// "caller", "callee", "system" (talk-time limit), ...
    pub hangup_by: Option<String>,
    /// Why the attempt ended: "credit_exhausted", "caller_hung_up", "busy", ...
    pub disconnect_cause: Option<String>,
}

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

/// Inserts a CDR unless one exists for (call id, attempt); returns whether it was inserted.
pub(crate) async fn insert_cdr(
    conn: &mut Conn<'_>,
    cdr: &Cdr,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let result = with_conn!(conn, c => sqlx::query(
        "INSERT INTO cdrs (call_id, attempt, account_id, card_id, caller_id, access_number, \
         destination, carrier, start_ms, answer_ms, end_ms, billed_seconds, fees_json, \
         taxes_json, tax_micros, total_micros, buy_cost_micros, sip_code, q850_cause, hangup_by, \
         disconnect_cause, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
         ON CONFLICT (call_id, attempt) DO NOTHING",
    )
    .bind(&cdr.call_id)
    .bind(cdr.attempt)
    .bind(cdr.account_id)
    .bind(cdr.card_id)
    .bind(cdr.caller_id.as_ref().map(|number| number.expose().as_str()))
    .bind(cdr.access_number.as_deref())
    .bind(cdr.destination.expose())
    .bind(cdr.carrier.as_deref())
    .bind(cdr.start_ms)
    .bind(cdr.answer_ms)
    .bind(cdr.end_ms)
    .bind(cdr.billed_seconds)
    .bind(&cdr.fees_json)
    .bind(&cdr.taxes_json)
    .bind(cdr.tax_micros)
    .bind(cdr.total_micros)
    .bind(cdr.buy_cost_micros)
    .bind(cdr.sip_code)
    .bind(cdr.q850_cause)
    .bind(cdr.hangup_by.as_deref())
    .bind(cdr.disconnect_cause.as_deref())
    .bind(now_ms)
    .execute(&mut **c)
    .await
        .map(|done| done.rows_affected()))?;
    Ok(result == 1)
}

impl Store {
    /// Writes one CDR (e.g. a failed attempt before failover); a replay of the same
    /// (call id, attempt) is ignored and returns `false`.
    pub async fn write_cdr(&self, cdr: &Cdr, now_ms: i64) -> Result<bool, StoreError> {
        let mut held = self.acquire_for_write().await?;
        insert_cdr(&mut held.conn(), cdr, now_ms).await
    }

    /// The CDRs of a call, by attempt.
    pub async fn cdrs_for_call(&self, call_id: &str) -> Result<Vec<Cdr>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<CdrRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT call_id, attempt, account_id, card_id, caller_id, access_number, destination, \
             carrier, start_ms, answer_ms, end_ms, billed_seconds, fees_json, taxes_json, \
             tax_micros, total_micros, buy_cost_micros, sip_code, q850_cause, hangup_by, \
             disconnect_cause FROM cdrs WHERE call_id = $1 ORDER BY attempt",
        )
        .bind(call_id)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows.into_iter().map(Cdr::from).collect())
    }
}
