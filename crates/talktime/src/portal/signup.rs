//! Self sign-up (`[portal] signup = true`): a stranger opens a pinless account (no balance, no
//! caller ID yet) in the configured reseller's tree, logs in by e-mail from then on, and may
//! name the referral code of the customer who sent them (`/portal/signup?ref=CODE`).

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, Response};
use serde::Deserialize;
use talktime_pii::Pii;
use talktime_store::{SignUp, SignUpOutcome};
use tracing::info;

use super::{DEFAULT_BRAND, PortalError, PortalState, error_line, refused, shell, start_session};
use crate::console::auth::{self, MIN_PASSWORD_CHARS};
use crate::console::escape;
use crate::server::wall_clock_ms;

/// The sign-up limiter's key: an address may open a few accounts, then waits.
const SIGNUP_KEY: &str = "signup";

#[derive(Deserialize)]
pub(super) struct SignUpQuery {
    #[serde(default, rename = "ref")]
    referral: String,
}

#[derive(Deserialize)]
pub(super) struct SignUpForm {
    name: String,
    email: String,
    password: String,
    repeat: String,
    #[serde(default)]
    referral: String,
}

pub(super) async fn form(
    State(state): State<PortalState>,
    Query(query): Query<SignUpQuery>,
) -> Result<Html<String>, PortalError> {
    if !state.settings.signup {
        return Err(PortalError::NotFound);
    }
    Ok(Html(signup_form(brand(&state), &query.referral, None)))
}

pub(super) async fn sign_up(
    State(state): State<PortalState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<SignUpForm>,
) -> Result<Response, PortalError> {
    if !state.settings.signup {
        return Err(PortalError::NotFound);
    }
    let now = Instant::now();
    let referral = form.referral.trim().to_uppercase();
    let again = |status, error: &str| {
        Ok(refused(
            status,
            signup_form(brand(&state), &referral, Some(error)),
        ))
    };
    if !state.signups.allows(peer.ip(), SIGNUP_KEY, now) {
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ups from here: wait a few minutes.",
        );
    }
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return again(
            StatusCode::BAD_REQUEST,
            "Your name, please (up to 100 characters).",
        );
    }
    if !plausible_email(&form.email) {
        return again(
            StatusCode::BAD_REQUEST,
            "That e-mail address does not look right.",
        );
    }
    if form.password != form.repeat {
        return again(StatusCode::BAD_REQUEST, "The two passwords differ.");
    }
    if form.password.chars().count() < MIN_PASSWORD_CHARS {
        return again(
            StatusCode::BAD_REQUEST,
            &format!("A password has at least {MIN_PASSWORD_CHARS} characters."),
        );
    }
    let reseller_id = match state.settings.signup_reseller.trim() {
        "" => None,
        name => Some(
            state
                .store
                .reseller_by_name(name)
                .await?
                .ok_or_else(|| {
                    PortalError::Internal(format!("[portal] signup_reseller {name:?} is unknown"))
                })?
                .id,
        ),
    };
    let password = form.password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|error| PortalError::Internal(error.to_string()))?
        .map_err(|error| PortalError::Internal(error.to_string()))?;
    let email = Pii::new(form.email.trim().to_owned());
    let own_code = referral_code();
    let outcome = state
        .store
        .sign_up(
            &SignUp {
                name,
                email: &email,
                password_hash: &hash,
                currency: &state.settings.signup_currency,
                reseller_id,
                referred_by_code: (!referral.is_empty()).then_some(referral.as_str()),
                own_referral_code: &own_code,
            },
            wall_clock_ms(),
        )
        .await?;
    // Every attempt counts, so one address cannot open accounts without end.
    state.signups.failed(peer.ip(), SIGNUP_KEY, now);
    match outcome {
        SignUpOutcome::Created { account_id } => {
            info!(account_id, "customer signed up");
            start_session(&state, account_id).await
        }
        SignUpOutcome::EmailTaken => again(
            StatusCode::CONFLICT,
            "An account uses this e-mail address already: log in instead.",
        ),
        SignUpOutcome::UnknownReferral => again(
            StatusCode::BAD_REQUEST,
            "No customer has this referral code.",
        ),
    }
}

/// Something, an `@`, a dotted domain; no spaces. The mail that follows is the real check.
fn plausible_email(text: &str) -> bool {
    let text = text.trim();
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && text.len() <= 254
        && !text.chars().any(char::is_whitespace)
}

/// A new referral code: 8 characters a customer can read out (no 0/O or 1/I).
pub(super) fn referral_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

/// The sign-up page wears the name of the reseller whose tree it fills.
fn brand(state: &PortalState) -> &str {
    match state.settings.signup_reseller.trim() {
        "" => DEFAULT_BRAND,
        reseller => reseller,
    }
}

fn signup_form(brand: &str, referral: &str, error: Option<&str>) -> String {
    shell(
        brand,
        "Open an account",
        "",
        &format!(
            "{}<form method=\"post\" action=\"/portal/signup\">\
             <p><label>Your name <input name=\"name\" id=\"name\" autocomplete=\"name\" \
             required></label></p>\
             <p><label>E-mail <input name=\"email\" id=\"email\" type=\"email\" \
             autocomplete=\"email\" required></label></p>\
             <p><label>Password <input name=\"password\" id=\"password\" type=\"password\" \
             autocomplete=\"new-password\" required></label></p>\
             <p><label>Again <input name=\"repeat\" id=\"repeat\" type=\"password\" \
             autocomplete=\"new-password\" required></label></p>\
             <p><label>Referral code (if a friend gave you one) <input name=\"referral\" \
             id=\"referral\" value=\"{}\" autocomplete=\"off\"></label></p>\
             <p><button id=\"submit\">Open my account</button></p></form>\
             <p>Have an account? <a href=\"/portal/login\">Log in</a>.</p>",
            error_line(error),
            escape(referral),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_loosely_but_not_blindly() {
        assert!(plausible_email(" ana@example.com "));
        assert!(!plausible_email("ana@example"));
        assert!(!plausible_email("@example.com"));
        assert!(!plausible_email("ana example@x.com"));
    }

    #[test]
    fn referral_codes_avoid_lookalike_characters() {
        let code = referral_code();
        assert_eq!(code.len(), 8);
        assert!(!code.contains(['0', 'O', '1', 'I']));
    }
}
