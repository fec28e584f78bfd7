//! A customer's speed dials in the portal: keys 1-9 the IVR dials when one is keyed alone at
//! the destination prompt (the same rows the IVR's `*1`-`*9` writes and the console shows).

use std::fmt::Write;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use talktime_pii::Pii;

use super::{Customer, PortalError, PortalState, home_page};
use crate::console::escape;
use crate::server::wall_clock_ms;

#[derive(Deserialize)]
pub(super) struct SpeedDialForm {
    #[serde(default)]
    csrf: String,
    key: String,
    #[serde(default)]
    number: String,
}

fn key(text: &str) -> Option<u8> {
    text.trim()
        .parse::<u8>()
        .ok()
        .filter(|key| talktime_store::SPEED_DIAL_SLOTS.contains(key))
}

pub(super) async fn set(
    State(state): State<PortalState>,
    customer: Customer,
    Form(form): Form<SpeedDialForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    let number = talktime_engine::normalize_destination(form.number.trim());
    let (Some(key), Ok(number)) = (key(&form.key), number) else {
        let body = home_page(
            &state,
            &customer,
            Some("A key 1-9 and a number as you dial it, e.g. 00442071234567."),
        )
        .await?;
        return Ok((StatusCode::BAD_REQUEST, Html(body)).into_response());
    };
    state
        .store
        .set_speed_dial(
            customer.session.account_id,
            key,
            &Pii::new(number),
            wall_clock_ms(),
        )
        .await?;
    let notice = format!("Key {key} is stored.");
    Ok(Html(home_page(&state, &customer, Some(&notice)).await?).into_response())
}

pub(super) async fn remove(
    State(state): State<PortalState>,
    customer: Customer,
    Form(form): Form<SpeedDialForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    let removed = match key(&form.key) {
        Some(key) => {
            state
                .store
                .remove_speed_dial(customer.session.account_id, key)
                .await?
        }
        None => false,
    };
    if !removed {
        return Err(PortalError::NotFound);
    }
    Ok(Html(home_page(&state, &customer, Some("The key is free again.")).await?).into_response())
}

/// The home page's section: the stored keys and the form.
pub(super) async fn section(
    state: &PortalState,
    customer: &Customer,
) -> Result<String, PortalError> {
    let dials = state.store.speed_dials(customer.session.account_id).await?;
    let csrf = escape(&customer.session.csrf_token);
    let mut body = String::from(
        "<h2>Speed dials</h2><p>When you are asked for the number, key the digit alone instead of \
         the whole number (on a call, *1 to *9 stores the last number you dialled).</p>\
         <table id=\"speed-dials\"><tbody>",
    );
    for (key, number) in &dials {
        let _ = write!(
            body,
            "<tr class=\"speed-dial\"><td>{key}</td><td>{}</td><td><form class=\"inline\" \
             method=\"post\" action=\"/portal/speed-dials/remove\"><input type=\"hidden\" \
             name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"key\" value=\"{key}\">\
             <button>Remove</button></form></td></tr>",
            escape(number.expose()),
        );
    }
    let _ = write!(
        body,
        "</tbody></table><form method=\"post\" action=\"/portal/speed-dials\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><label>Key <input name=\"key\" \
         id=\"speed-key\" inputmode=\"numeric\" size=\"2\" required></label> <label>Number \
         <input name=\"number\" id=\"speed-number\" type=\"tel\" required></label> \
         <button id=\"store-speed-dial\">Store</button></form>"
    );
    Ok(body)
}
