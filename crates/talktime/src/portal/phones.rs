//! A customer's phones for calls without a PIN. A number typed here is only claimed: the
//! portal shows a one-time code, and the number becomes the account's caller ID when a call
//! from that very number keys the code at the PIN prompt before it expires (the ledger's PIN
//! look-up confirms it). Nobody can register a phone they cannot call from.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::fmt::Write;
use talktime_pii::Pii;

use super::{Customer, PortalError, PortalState, home_page};
use crate::console::{escape, utc};
use crate::server::wall_clock_ms;

/// Digits of a confirmation code unless the IVR's PIN lengths say otherwise: a guess is a
/// wrong PIN, counted and locked out as one.
const CODE_DIGITS: usize = 6;
/// Claims an account may have waiting at once.
const MAX_CLAIMS: usize = 3;

#[derive(Deserialize)]
pub(super) struct PhoneForm {
    #[serde(default)]
    csrf: String,
    number: String,
}

pub(super) async fn add(
    State(state): State<PortalState>,
    customer: Customer,
    Form(form): Form<PhoneForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    let account_id = customer.session.account_id;
    let now_ms = wall_clock_ms();
    let Some(number) = talktime_routing::caller_id_digits(&form.number) else {
        return answer(
            &state,
            &customer,
            StatusCode::BAD_REQUEST,
            "A phone number is 6 to 20 digits (a leading + and spaces are fine).",
        )
        .await;
    };
    let number = Pii::new(number);
    let waiting = state.store.caller_id_claims(account_id, now_ms).await?;
    let renewing = waiting.iter().any(|claim| claim.number == number);
    if waiting.len() >= MAX_CLAIMS && !renewing {
        return answer(
            &state,
            &customer,
            StatusCode::TOO_MANY_REQUESTS,
            "Confirm or remove the phones waiting first.",
        )
        .await;
    }
    let code = Pii::new(confirmation_code(state.claim_code_digits));
    let minutes = state.settings.claim_minutes.max(1);
    let lifetime_ms = i64::try_from(minutes.saturating_mul(60_000)).unwrap_or(i64::MAX);
    let expires_at_ms = now_ms.saturating_add(lifetime_ms);
    state
        .store
        .claim_caller_id(account_id, &number, &code, expires_at_ms, now_ms)
        .await?;
    let access = match state.settings.access_number.trim() {
        "" => "the access number".to_owned(),
        access => access.to_owned(),
    };
    // The code is shown once, on this page only: it is kept as a keyed hash.
    let notice = format!(
        "To confirm +{}, call {access} from that phone and key {} followed by # when you are \
         asked for your PIN, before {} (UTC).",
        number.expose(),
        code.expose(),
        utc(expires_at_ms),
    );
    answer(&state, &customer, StatusCode::OK, &notice).await
}

pub(super) async fn remove(
    State(state): State<PortalState>,
    customer: Customer,
    Form(form): Form<PhoneForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    let number = talktime_routing::caller_id_digits(&form.number).map(Pii::new);
    let removed = match &number {
        Some(number) => {
            state
                .store
                .remove_own_caller_id(customer.session.account_id, number)
                .await?
        }
        None => false,
    };
    if !removed {
        return Err(PortalError::NotFound);
    }
    answer(&state, &customer, StatusCode::OK, "The phone was removed.").await
}

async fn answer(
    state: &PortalState,
    customer: &Customer,
    status: StatusCode,
    notice: &str,
) -> Result<Response, PortalError> {
    let body = home_page(state, customer, Some(notice)).await?;
    Ok((status, Html(body)).into_response())
}

/// The confirmation code's length: keyed where the PIN goes, it must be one the IVR takes
/// (`[ivr] pin_min_length` ..= `pin_max_length`), six digits where it can.
pub fn claim_code_digits(ivr: &talktime_engine::IvrConfig) -> usize {
    CODE_DIGITS
        .max(ivr.pin_min_length)
        .min(ivr.pin_max_length)
        .max(1)
}

/// Digits of a portal login code read out by the IVR (`*01`): typed on the login page, where
/// the limiter allows five tries in five minutes.
const LOGIN_CODE_DIGITS: usize = 6;

/// A fresh portal login code.
pub fn login_code() -> String {
    confirmation_code(LOGIN_CODE_DIGITS)
}

fn confirmation_code(length: usize) -> String {
    let mut bytes = vec![0u8; length];
    rand::fill(bytes.as_mut_slice());
    // 250 of 256 byte values map evenly onto ten digits; the rest are drawn again.
    let mut digits = String::with_capacity(length);
    for byte in bytes {
        let mut value = byte;
        while value >= 250 {
            let mut again = [0u8; 1];
            rand::fill(&mut again);
            value = again[0];
        }
        digits.push(char::from(b'0' + value % 10));
    }
    digits
}

/// The home page's section: the account's phones, the ones waiting, the form.
pub(super) async fn section(
    state: &PortalState,
    customer: &Customer,
) -> Result<String, PortalError> {
    let account_id = customer.session.account_id;
    let numbers = state.store.caller_ids_of(account_id).await?;
    let waiting = state
        .store
        .caller_id_claims(account_id, wall_clock_ms())
        .await?;
    let csrf = escape(&customer.session.csrf_token);
    let mut body =
        String::from("<h2>Phones that call without a PIN</h2><table id=\"phones\"><tbody>");
    for number in &numbers {
        let _ = write!(
            body,
            "<tr class=\"phone\"><td>+{number}</td><td>ready</td><td><form class=\"inline\" \
             method=\"post\" action=\"/portal/phones/remove\"><input type=\"hidden\" \
             name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"number\" \
             value=\"{number}\"><button>Remove</button></form></td></tr>",
            number = escape(number.expose()),
        );
    }
    for claim in &waiting {
        let _ = write!(
            body,
            "<tr class=\"claim\"><td>+{}</td><td>waiting for its call until {} (UTC)</td>\
             <td></td></tr>",
            escape(claim.number.expose()),
            utc(claim.expires_at_ms),
        );
    }
    let _ = write!(
        body,
        "</tbody></table><form method=\"post\" action=\"/portal/phones\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><label>Phone number \
         <input name=\"number\" id=\"phone\" type=\"tel\" autocomplete=\"tel\" required>\
         </label> <button id=\"add-phone\">Add</button></form>"
    );
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmation_code_is_six_digits() {
        let code = confirmation_code(CODE_DIGITS);
        assert_eq!(code.len(), CODE_DIGITS);
        assert!(code.bytes().all(|byte| byte.is_ascii_digit()));
    }

    #[test]
    fn a_confirmation_code_is_as_long_as_a_pin_the_ivr_takes() {
        let mut ivr = talktime_engine::IvrConfig::default();
        assert_eq!(claim_code_digits(&ivr), 6);
        ivr.pin_min_length = 8;
        ivr.pin_max_length = 10;
        assert_eq!(claim_code_digits(&ivr), 8);
        ivr.pin_min_length = 3;
        ivr.pin_max_length = 4;
        assert_eq!(claim_code_digits(&ivr), 4);
    }
}
