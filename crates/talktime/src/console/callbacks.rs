//! Web callback from the console (issue 21): the account page calls the holder at a number and
//! connects them to another, or gives them the IVR (crates/talktime/src/callbacks.rs).

use std::fmt::Write as _;

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{ConsoleError, ConsoleState, LoggedIn, escape};
use crate::server::wall_clock_ms;

#[derive(Deserialize)]
pub struct CallbackForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    destination: String,
}

/// The account page's callback section; `outcome` is ("callback", why it failed) or
/// ("callback-placed", the call id).
pub fn callback_html(user: &LoggedIn, account: i64, outcome: Option<(&str, &str)>) -> String {
    let csrf = super::pages::csrf_field(user);
    let message = match outcome {
        Some(("callback", text)) => format!(
            "<p class=\"error\" id=\"error-callback\">{}</p>",
            escape(text)
        ),
        Some(("callback-placed", call_id)) => format!(
            "<p class=\"notice\" id=\"callback-placed\">Calling back: call <code>{}</code>; \
             its CDRs are <code>#0</code> (the leg to the customer) and <code>#1</code>.</p>",
            escape(call_id)
        ),
        _ => String::new(),
    };
    let mut body = String::from("<h2>Call back</h2>");
    let _ = write!(
        body,
        "{message}<form method=\"post\" action=\"/console/accounts/{account}/callback\">{csrf}\
         <p><label>Customer's number <input name=\"number\" id=\"callback-number\"></label> \
         <label>Connect to (empty: the IVR) <input name=\"destination\" \
         id=\"callback-destination\"></label></p>\
         <p><button id=\"place-callback\">Call back</button></p></form>"
    );
    body
}

pub async fn place(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<CallbackForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let desk = crate::callbacks::CallbackDesk {
        store: state.store.clone(),
        core: state.core.clone(),
        enabled: state.callbacks,
    };
    let destination = Some(form.destination.as_str());
    match desk.place(id, form.number.trim(), destination).await {
        Ok(call_id) => {
            state
                .store
                .audit(
                    Some(&user.user),
                    "callback",
                    &format!("account {id}"),
                    None,
                    Some(&serde_json::json!({ "call_id": call_id }).to_string()),
                    wall_clock_ms(),
                )
                .await?;
            let page = super::accounts::account_view(
                &state,
                &user,
                id,
                Some(("callback-placed", &call_id)),
            )
            .await?;
            Ok(Html(page).into_response())
        }
        Err(crate::callbacks::CallbackError::Store(error)) => Err(error.into()),
        Err(error) => {
            let text = error.to_string();
            let page =
                super::accounts::account_view(&state, &user, id, Some(("callback", &text))).await?;
            Ok((StatusCode::BAD_REQUEST, Html(page)).into_response())
        }
    }
}
