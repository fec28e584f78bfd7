//! Accounts in the console: balance, limits, DID forwarding, the caller IDs that skip the PIN
//! (added and removed here), an idempotent recharge, and the transactions.

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use talktime_pii::Pii;

use super::{ConsoleError, ConsoleState, LoggedIn, auth, pages};
use crate::server::wall_clock_ms;

pub async fn account_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
) -> Result<Html<String>, ConsoleError> {
    account_view(&state, &user, id, None).await.map(Html)
}

async fn account_view(
    state: &ConsoleState,
    user: &LoggedIn,
    id: i64,
    error: Option<(&str, &str)>,
) -> Result<String, ConsoleError> {
    let account = match state.store.account(id).await {
        Ok(account) => account,
        Err(talktime_store::StoreError::NotFound { .. }) => return Err(ConsoleError::NotFound),
        Err(error) => return Err(error.into()),
    };
    let callers = state.store.caller_ids_of(id).await?;
    let mut entries = state.store.transactions(id).await?;
    entries.reverse();
    entries.truncate(50);
    Ok(pages::account(
        user,
        &account,
        &callers,
        &entries,
        &auth::random_hex(16),
        error,
    ))
}

#[derive(Deserialize)]
pub struct NumberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    number: String,
}

/// A caller ID as typed: digits, an optional leading +.
fn caller_number(text: &str) -> Option<String> {
    let digits = text.trim().trim_start_matches('+');
    (!digits.is_empty() && digits.len() <= 20 && digits.chars().all(|c| c.is_ascii_digit()))
        .then(|| digits.to_owned())
}

pub async fn add_caller_id(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<NumberForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change caller IDs.")?;
    let Some(number) = caller_number(&form.number) else {
        let page = account_view(
            &state,
            &user,
            id,
            Some(("number", "Digits, e.g. 15551230000.")),
        )
        .await?;
        return Ok((StatusCode::BAD_REQUEST, Html(page)).into_response());
    };
    state
        .store
        .register_caller_id(id, &Pii::new(number), wall_clock_ms())
        .await?;
    state
        .store
        .audit(
            Some(&user.user),
            "caller_id_add",
            &format!("account {id}"),
            None,
            None,
            wall_clock_ms(),
        )
        .await?;
    Ok(Redirect::to(&format!("/console/accounts/{id}")).into_response())
}

pub async fn remove_caller_id(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<NumberForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change caller IDs.")?;
    let number = Pii::new(form.number.trim().to_owned());
    // Only a number of this account: a forged form cannot remove another's.
    if state.store.caller_ids_of(id).await?.contains(&number) {
        state.store.remove_caller_id(&number).await?;
        state
            .store
            .audit(
                Some(&user.user),
                "caller_id_remove",
                &format!("account {id}"),
                None,
                None,
                wall_clock_ms(),
            )
            .await?;
    }
    Ok(Redirect::to(&format!("/console/accounts/{id}")).into_response())
}

pub async fn recharge(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<super::cards::RechargeForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let subject = format!("account {id}");
    match super::cards::apply_recharge(&state, &user, id, &subject, &form).await? {
        Ok(()) => Ok(Redirect::to(&format!("/console/accounts/{id}")).into_response()),
        Err(text) => {
            let page = account_view(&state, &user, id, Some(("amount", &text))).await?;
            Ok((StatusCode::BAD_REQUEST, Html(page)).into_response())
        }
    }
}
