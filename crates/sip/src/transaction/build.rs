//! Requests the transaction layer builds itself: the ACK for a non-2xx final response
//! (§17.1.1.3) and CANCEL (§9.1), plus small header edits.

use super::TransactionError;
use super::random::MAGIC_COOKIE;
use crate::{Headers, Method, Request, Response};

/// §17.1.1.3: the ACK for a non-2xx final response. Same Request-URI, Call-ID, From and
/// CSeq number as the INVITE, the To of the response (it carries the UAS tag), only the
/// top Via of the INVITE (so it matches the server transaction), and the INVITE's Route.
pub fn ack_for_non_2xx(invite: &Request, response: &Response) -> Request {
    let mut headers = Headers::new();
    if let Some(via) = invite.headers.get_all("Via").next() {
        headers.push("Via", via);
    }
    copy_all(&invite.headers, &mut headers, "Route");
    headers.push("Max-Forwards", "70");
    copy_first(&invite.headers, &mut headers, "From");
    copy_first(&response.headers, &mut headers, "To");
    copy_first(&invite.headers, &mut headers, "Call-ID");
    headers.push("CSeq", &format!("{} ACK", sequence_of(invite)));
    request(Method::Ack, invite, headers)
}

/// §9.1: the CANCEL for a pending request. Request-URI, Call-ID, To, From and CSeq number
/// are those of the request, the top Via is the request's (same branch), and Route is
/// copied; CSeq method is CANCEL.
pub fn cancel_for(invite: &Request) -> Request {
    let mut headers = Headers::new();
    if let Some(via) = invite.headers.get_all("Via").next() {
        headers.push("Via", via);
    }
    copy_all(&invite.headers, &mut headers, "Route");
    headers.push("Max-Forwards", "70");
    copy_first(&invite.headers, &mut headers, "From");
    copy_first(&invite.headers, &mut headers, "To");
    copy_first(&invite.headers, &mut headers, "Call-ID");
    headers.push("CSeq", &format!("{} CANCEL", sequence_of(invite)));
    request(Method::Cancel, invite, headers)
}

fn request(method: Method, original: &Request, headers: Headers) -> Request {
    Request {
        method,
        uri: original.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

fn sequence_of(request: &Request) -> u32 {
    // send_request refuses requests without a valid CSeq, so the fallback is never used
    // for our own transactions.
    request.cseq().map(|cseq| cseq.sequence).unwrap_or(0)
}

fn copy_first(from: &Headers, to: &mut Headers, name: &str) {
    if let Some(value) = from.get(name) {
        to.push(name, value);
    }
}

fn copy_all(from: &Headers, to: &mut Headers, name: &str) {
    for value in from.get_all(name) {
        to.push(name, value);
    }
}

/// Gives the top Via a branch with the magic cookie if it has none (or a pre-RFC 3261
/// one). Requests must carry a top Via: only the TU knows our sent-by address.
pub(crate) fn ensure_branch(request: &mut Request, branch: &str) -> Result<(), TransactionError> {
    let mut top = request
        .top_via()
        .map_err(|_| TransactionError::MissingHeader("Via"))?;
    if top.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE)) {
        return Ok(());
    }
    top.params.set("branch", Some(branch));
    let mut vias: Vec<String> = request.headers.get_all("Via").map(str::to_owned).collect();
    match vias.first_mut() {
        Some(first) => *first = top.to_string(),
        None => vias.push(top.to_string()),
    }
    request.headers.set("Via", &vias.join(", "));
    Ok(())
}
