//! CDRs as a CSV download of any size (issue 15): pages of the keyset search written out as
//! they are read, so a month of traffic streams with the memory of one page and never a
//! COUNT or an OFFSET over the table. Money is exact decimal text, times epoch milliseconds.

use axum::body::{Body, Bytes};
use talktime_store::{Cdr, CdrCursor, CdrFilter, Store, StoreError, format_micros};
use tracing::warn;

/// Rows read per page.
const PAGE: i64 = 1_000;

const HEADER: [&str; 19] = [
    "call_id",
    "attempt",
    "account_id",
    "card_id",
    "caller_id",
    "access_number",
    "destination",
    "carrier",
    "start_ms",
    "answer_ms",
    "end_ms",
    "billed_seconds",
    "total",
    "tax",
    "buy_cost",
    "sip_code",
    "q850_cause",
    "hangup_by",
    "disconnect_cause",
];

/// One CDR. `for_reseller`: a reseller's user never sees the carrier or what it cost us.
fn write_row(writer: &mut csv::Writer<Vec<u8>>, cdr: &Cdr, for_reseller: bool) -> csv::Result<()> {
    let optional = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
    let (carrier, buy_cost) = if for_reseller {
        (String::new(), String::new())
    } else {
        (
            cdr.carrier.clone().unwrap_or_default(),
            format_micros(cdr.buy_cost_micros),
        )
    };
    writer.write_record([
        cdr.call_id.clone(),
        cdr.attempt.to_string(),
        optional(cdr.account_id),
        optional(cdr.card_id),
        cdr.caller_id
            .as_ref()
            .map(|number| number.expose().clone())
            .unwrap_or_default(),
        cdr.access_number.clone().unwrap_or_default(),
        cdr.destination.expose().clone(),
        carrier,
        cdr.start_ms.to_string(),
        optional(cdr.answer_ms),
        cdr.end_ms.to_string(),
        cdr.billed_seconds.to_string(),
        format_micros(cdr.total_micros),
        format_micros(cdr.tax_micros),
        buy_cost,
        optional(cdr.sip_code),
        optional(cdr.q850_cause),
        cdr.hangup_by.clone().unwrap_or_default(),
        cdr.disconnect_cause.clone().unwrap_or_default(),
    ])
}

/// One page as CSV text (with the header first when `header`).
fn chunk(rows: &[(CdrCursor, Cdr)], header: bool, for_reseller: bool) -> Result<Bytes, StoreError> {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 160));
    let failed = |error: csv::Error| StoreError::Io(std::io::Error::other(error));
    if header {
        writer.write_record(HEADER).map_err(failed)?;
    }
    for (_, cdr) in rows {
        write_row(&mut writer, cdr, for_reseller).map_err(failed)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|error| StoreError::Io(std::io::Error::other(error.to_string())))?;
    Ok(Bytes::from(bytes))
}

struct Walk {
    store: Store,
    filter: CdrFilter,
    before: Option<CdrCursor>,
    first: bool,
    done: bool,
}

/// The CDRs `filter` selects, newest first, as a streamed CSV body. A database failure half
/// way ends the download early (the client sees it cut) and is logged. A filter scoped to a
/// reseller's tree leaves the carrier and buy cost columns empty.
pub fn csv_body(store: Store, filter: CdrFilter) -> Body {
    let walk = Walk {
        store,
        filter,
        before: None,
        first: true,
        done: false,
    };
    let pages = futures_util::stream::unfold(walk, |mut walk| async move {
        if walk.done {
            return None;
        }
        let page = walk
            .store
            .search_cdrs(&walk.filter, walk.before, PAGE)
            .await;
        let rows = match page {
            Ok(rows) => rows,
            Err(error) => {
                warn!(%error, "CDR export cut short");
                walk.done = true;
                return Some((Err(error), walk));
            }
        };
        walk.done = (rows.len() as i64) < PAGE;
        walk.before = rows.last().map(|(cursor, _)| *cursor);
        let header = std::mem::replace(&mut walk.first, false);
        let for_reseller = walk.filter.reseller_tree.is_some();
        Some((chunk(&rows, header, for_reseller), walk))
    });
    Body::from_stream(pages)
}
