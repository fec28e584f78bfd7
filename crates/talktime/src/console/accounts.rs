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

pub(super) async fn account_view(
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
    let dials = state.store.speed_dials(id).await?;
    let mut speed_dials = super::vouchers::speed_dials_html(user, id, &dials, error);
    if state.callbacks {
        speed_dials.push_str(&super::callbacks::callback_html(user, id, error));
    }
    let subscribers = state.store.subscribers_of(id).await?;
    speed_dials.push_str(&super::subscribers::subscribers_html(
        user,
        id,
        &subscribers,
        error,
    ));
    Ok(pages::account(
        user,
        &account,
        &callers,
        &entries,
        &speed_dials,
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
    talktime_routing::caller_id_digits(text)
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

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    /// Where calls to the account's DID go; empty stops forwarding.
    #[serde(default)]
    forward: String,
    /// Calls at once.
    #[serde(default)]
    concurrency: String,
    /// Below this balance the caller ID no longer skips the PIN.
    #[serde(default)]
    caller_id_min_balance: String,
}

impl SettingsForm {
    /// (forward destination, calls at once, caller-ID minimum balance), or the field at
    /// fault.
    #[allow(clippy::type_complexity)]
    fn parsed(&self) -> Result<(Option<Pii<String>>, i64, i64), (&'static str, &'static str)> {
        let forward = match self.forward.trim() {
            "" => None,
            text if caller_number(text).is_some() => Some(Pii::new(text.to_owned())),
            _ => return Err(("forward", "Digits, e.g. 0015551234567.")),
        };
        let concurrency = match self.concurrency.trim().parse::<i64>() {
            Ok(limit) if (1..=1000).contains(&limit) => limit,
            _ => return Err(("concurrency", "1 to 1000 calls at once.")),
        };
        let minimum = match talktime_store::parse_micros(self.caller_id_min_balance.trim()) {
            Ok(micros) if micros >= 0 => micros,
            _ => return Err(("caller_id_min_balance", "An amount, e.g. 0.50.")),
        };
        Ok((forward, concurrency, minimum))
    }
}

/// DID forwarding and limits; a bad field is named and nothing is written.
pub async fn save_settings(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<SettingsForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change accounts.")?;
    let (forward, concurrency, minimum) = match form.parsed() {
        Ok(parsed) => parsed,
        Err((field, text)) => {
            let page = account_view(&state, &user, id, Some((field, text))).await?;
            return Ok((StatusCode::BAD_REQUEST, Html(page)).into_response());
        }
    };
    let before = state.store.account(id).await?;
    let limits = talktime_store::AccountLimits {
        owner_account_id: None,
        caller_id_min_balance_micros: Some(minimum),
        concurrency_limit: Some(concurrency),
        tariff_id: None,
    };
    state.store.set_account_limits(id, &limits).await?;
    state
        .store
        .set_forward_destination(id, forward.as_ref())
        .await?;
    state
        .store
        .audit(
            Some(&user.user),
            "account_settings",
            &format!("account {id}"),
            Some(&format!(
                "calls at once {}, caller ID from {}, forwarding {}",
                before.concurrency_limit,
                talktime_store::format_micros(before.caller_id_min_balance_micros),
                if before.forward_destination.is_some() {
                    "on"
                } else {
                    "off"
                }
            )),
            Some(&format!(
                "calls at once {concurrency}, caller ID from {}, forwarding {}",
                talktime_store::format_micros(minimum),
                if forward.is_some() { "on" } else { "off" }
            )),
            wall_clock_ms(),
        )
        .await?;
    Ok(Redirect::to(&format!("/console/accounts/{id}")).into_response())
}
