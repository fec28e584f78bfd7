//! Call detail records: one row per call attempt, unique on (call id, attempt). The switch
//! builds them, the ledger stores them.

use talktime_pii::Pii;

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
