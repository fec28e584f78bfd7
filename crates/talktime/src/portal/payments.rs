//! Card payments in the portal through a payment provider's hosted checkout (the widely used
//! checkout-session API: `POST /v1/checkout/sessions` form-encoded with a bearer key and an
//! `Idempotency-Key`, `GET /v1/checkout/sessions/{id}`, and `checkout.session.completed`
//! notifications signed `t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`).
//!
//! The ledger records the payment before the provider is asked, so a payment the provider
//! confirms is always known. A notification is believed only when its signature is good and
//! fresh, and then only what the provider answers when asked about the session: its state,
//! amount and currency. The credit is keyed by the payment (crates/store/src/payments.rs):
//! a replayed notification, or the provider retrying one, credits nothing more.

use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Form, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use talktime_b2bua::config::PortalConfig;
use talktime_billing::Currency;
use talktime_store::{PaymentCompletion, PaymentRow, format_micros, parse_micros};
use tracing::{info, warn};

use super::{Customer, PortalError, PortalState, home_page, logged_in_page};
use crate::console::{auth, escape};
use crate::server::wall_clock_ms;

/// How old a notification's signed time may be (a replay of an old one is refused outright;
/// a recent one finds its payment paid already).
const SIGNATURE_TOLERANCE_S: i64 = 300;
/// The longest wait for the provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// The provider's address and secrets (never printed).
#[derive(Clone)]
pub struct PaymentProvider {
    api: String,
    key: String,
    signing_secret: Vec<u8>,
    public_url: String,
    min_micros: i64,
    max_micros: i64,
}

impl std::fmt::Debug for PaymentProvider {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PaymentProvider")
            .field("api", &self.api)
            .field("key", &"<redacted>")
            .field("signing_secret", &"<redacted>")
            .finish()
    }
}

/// A secret from the environment, else from the file the configuration names.
fn secret(variable: &str, file: &str, what: &str) -> anyhow::Result<String> {
    if let Ok(value) = std::env::var(variable) {
        return Ok(value.trim().to_owned());
    }
    anyhow::ensure!(
        !file.is_empty(),
        "[portal] payment_api is set: set {what} (or {variable})"
    );
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("[portal] {what}: cannot read {file}"))?;
    let text = text.trim().to_owned();
    anyhow::ensure!(!text.is_empty(), "[portal] {what}: {file} is empty");
    Ok(text)
}

impl PaymentProvider {
    /// The provider of `[portal]`, if card payments are on.
    pub fn from_config(config: &PortalConfig) -> anyhow::Result<Option<PaymentProvider>> {
        let api = config.payment_api.trim().trim_end_matches('/');
        if api.is_empty() {
            return Ok(None);
        }
        url::Url::parse(api).context("[portal] payment_api is not a URL")?;
        let min_micros = parse_micros(&config.payment_min).context("[portal] payment_min")?;
        let max_micros = parse_micros(&config.payment_max).context("[portal] payment_max")?;
        anyhow::ensure!(
            0 < min_micros && min_micros <= max_micros,
            "[portal] payment_min must be above 0 and not above payment_max"
        );
        Ok(Some(PaymentProvider {
            api: api.to_owned(),
            key: secret(
                "TALKTIME_PAYMENT_KEY",
                &config.payment_key_file,
                "payment_key_file",
            )?,
            signing_secret: secret(
                "TALKTIME_PAYMENT_SIGNING_SECRET",
                &config.payment_signing_secret_file,
                "payment_signing_secret_file",
            )?
            .into_bytes(),
            public_url: config.public_url.trim().trim_end_matches('/').to_owned(),
            min_micros,
            max_micros,
        }))
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(PROVIDER_TIMEOUT))
            .build()
            .into()
    }

    /// Asks the provider for a checkout of `payment` (made once per payment id, however often
    /// it is asked: the id is the idempotency key).
    /// `portal_url`: where the customer's browser reaches the portal (the configured
    /// `public_url`, else the address the customer used).
    async fn create_checkout(
        &self,
        payment: &PaymentRow,
        portal_url: &str,
    ) -> anyhow::Result<Checkout> {
        let currency = Currency::new(&payment.currency)?;
        let minor = currency
            .micros_to_minor_units(payment.amount_micros)
            .context("the amount has a fraction the currency cannot be charged in")?;
        let url = format!("{}/v1/checkout/sessions", self.api);
        let key = self.key.clone();
        let fields = vec![
            ("mode", "payment".to_owned()),
            ("client_reference_id", payment.account_id.to_string()),
            ("metadata[payment_id]", payment.id.clone()),
            (
                "line_items[0][price_data][currency]",
                currency.as_str().to_ascii_lowercase(),
            ),
            ("line_items[0][price_data][unit_amount]", minor.to_string()),
            (
                "line_items[0][price_data][product_data][name]",
                "Calling credit".to_owned(),
            ),
            ("line_items[0][quantity]", "1".to_owned()),
            (
                "success_url",
                format!("{portal_url}/portal/payments/{}", payment.id),
            ),
            (
                "cancel_url",
                format!("{portal_url}/portal/payments/{}", payment.id),
            ),
        ];
        let idempotency = payment.id.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Checkout> {
            let mut response = Self::agent()
                .post(&url)
                .header("Authorization", &format!("Bearer {key}"))
                .header("Idempotency-Key", &idempotency)
                .send_form(fields.iter().map(|(name, value)| (*name, value.as_str())))
                .context("the payment provider refused or did not answer")?;
            Ok(response.body_mut().read_json::<Checkout>()?)
        })
        .await?
    }

    /// The provider's own account of a checkout session.
    async fn session(&self, id: &str) -> anyhow::Result<ProviderSession> {
        anyhow::ensure!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "a session id is letters, digits and _"
        );
        let url = format!("{}/v1/checkout/sessions/{id}", self.api);
        let key = self.key.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<ProviderSession> {
            let mut response = Self::agent()
                .get(&url)
                .header("Authorization", &format!("Bearer {key}"))
                .call()
                .context("the payment provider refused or did not answer")?;
            Ok(response.body_mut().read_json::<ProviderSession>()?)
        })
        .await?
    }
}

#[derive(Debug, Deserialize)]
struct Checkout {
    id: String,
    url: String,
}

#[derive(Debug, Deserialize)]
struct ProviderSession {
    id: String,
    payment_status: String,
    amount_total: i64,
    currency: String,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    payment_id: String,
}

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "type")]
    kind: String,
    data: NotificationData,
}

#[derive(Debug, Deserialize)]
struct NotificationData {
    object: NotifiedSession,
}

#[derive(Debug, Deserialize)]
struct NotifiedSession {
    id: String,
}

/// Whether `header` (`t=<unix seconds>,v1=<hex>`, several `v1` allowed while the provider
/// rolls its secret) signs `body` with `secret`, at most [`SIGNATURE_TOLERANCE_S`] from now.
pub fn signature_valid(header: &str, body: &[u8], secret: &[u8], now_s: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if (now_s - timestamp).abs() > SIGNATURE_TOLERANCE_S {
        return false;
    }
    signatures.iter().any(|signature| {
        let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(secret) else {
            return false;
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        // Constant time: the MAC crate's own comparison.
        mac.verify_slice(signature).is_ok()
    })
}

#[derive(Deserialize)]
pub(super) struct PayForm {
    #[serde(default)]
    csrf: String,
    amount: String,
}

/// The customer asks to pay: the payment is recorded, the provider makes a checkout, the
/// browser goes there.
pub(super) async fn pay(
    State(state): State<PortalState>,
    customer: Customer,
    headers: HeaderMap,
    Form(form): Form<PayForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    let Some(provider) = state.payments.clone() else {
        return Err(PortalError::NotFound);
    };
    let account_id = customer.session.account_id;
    let amount = parse_micros(form.amount.trim())
        .ok()
        .filter(|amount| (provider.min_micros..=provider.max_micros).contains(amount));
    let Some(amount_micros) = amount else {
        let notice = format!(
            "A card payment is between {} and {}.",
            format_micros(provider.min_micros),
            format_micros(provider.max_micros)
        );
        let body = home_page(&state, &customer, Some(&notice)).await?;
        return Ok((StatusCode::BAD_REQUEST, Html(body)).into_response());
    };
    let id = format!("pay_{}", auth::random_hex(12));
    let payment = state
        .store
        .start_payment(&id, account_id, amount_micros, wall_clock_ms())
        .await?;
    let portal_url = match provider.public_url.as_str() {
        "" => {
            let host = headers
                .get(axum::http::header::HOST)
                .and_then(|value| value.to_str().ok())
                .filter(|host| !host.is_empty() && !host.contains(['/', ' ', '@']))
                .ok_or(PortalError::NotFound)?;
            let scheme = if state.secure_cookies {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{host}")
        }
        configured => configured.to_owned(),
    };
    let checkout = match provider.create_checkout(&payment, &portal_url).await {
        Ok(checkout) => checkout,
        Err(error) => {
            warn!(%error, payment = %id, "the payment provider made no checkout");
            let body = home_page(
                &state,
                &customer,
                Some("Card payments are not available just now; please try later."),
            )
            .await?;
            return Ok((StatusCode::BAD_GATEWAY, Html(body)).into_response());
        }
    };
    state.store.name_payment_session(&id, &checkout.id).await?;
    info!(account_id, payment = %id, "card payment started");
    Ok(Redirect::to(&checkout.url).into_response())
}

/// Where the provider sends the customer back: the payment's state (the notification may
/// come a moment later: the page says so and refreshes).
pub(super) async fn payment_page(
    State(state): State<PortalState>,
    customer: Customer,
    UrlPath(id): UrlPath<String>,
) -> Result<Html<String>, PortalError> {
    let payment = state
        .store
        .payment(&id)
        .await?
        .filter(|payment| payment.account_id == customer.session.account_id)
        .ok_or(PortalError::NotFound)?;
    let amount = format!(
        "{} {}",
        format_micros(payment.amount_micros),
        escape(&payment.currency)
    );
    let body = match payment.state.as_str() {
        "paid" => format!("<p id=\"payment\">Thank you: {amount} were added to your balance.</p>"),
        "pending" => format!(
            "<meta http-equiv=\"refresh\" content=\"2\"><p id=\"payment\">Waiting for the \
             payment of {amount} to be confirmed…</p>"
        ),
        _ => format!("<p id=\"payment\">The payment of {amount} did not go through.</p>"),
    };
    let body = format!("{body}<p><a href=\"/portal\">Back to my account</a></p>");
    Ok(Html(logged_in_page("Card payment", &customer, &body)))
}

/// The provider's notification. 200 once handled (or when there is nothing to do, so the
/// provider stops retrying), 400 for a bad signature or body, 503 when the provider or the
/// ledger cannot be reached (the provider retries; the credit is keyed, so that is safe).
pub(super) async fn notify(
    State(state): State<PortalState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(provider) = state.payments.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let signature = headers
        .get("stripe-signature")
        .or_else(|| headers.get("payment-signature"))
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let now_s = wall_clock_ms() / 1000;
    if !signature_valid(signature, &body, &provider.signing_secret, now_s) {
        warn!("a payment notification with a bad or stale signature was refused");
        return StatusCode::BAD_REQUEST.into_response();
    }
    let Ok(notification) = serde_json::from_slice::<Notification>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if notification.kind != "checkout.session.completed" {
        return StatusCode::OK.into_response();
    }
    match settle_session(&state, &provider, &notification.data.object.id).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => {
            warn!(%error, "a payment notification could not be handled yet");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// Asks the provider about the session and credits its payment if it is paid.
async fn settle_session(
    state: &PortalState,
    provider: &PaymentProvider,
    session_id: &str,
) -> anyhow::Result<()> {
    let session = provider.session(session_id).await?;
    anyhow::ensure!(
        session.id == session_id,
        "the provider answered for another session"
    );
    if session.payment_status != "paid" {
        return Ok(());
    }
    let currency = Currency::new(&session.currency)?;
    let amount_micros = currency
        .minor_units_to_micros(session.amount_total)
        .context("the provider's amount is out of range")?;
    let id = session.metadata.payment_id;
    let outcome = state
        .store
        .complete_payment(&id, amount_micros, currency.as_str(), wall_clock_ms())
        .await?;
    match outcome {
        PaymentCompletion::Credited {
            account_id,
            amount_micros,
            ..
        } => {
            info!(account_id, payment = %id, amount = %format_micros(amount_micros), "card payment credited")
        }
        PaymentCompletion::AlreadyPaid => {
            info!(payment = %id, "card payment notified again: nothing more")
        }
        PaymentCompletion::Unknown => {
            warn!(payment = %id, "the provider notified a payment this ledger never started")
        }
        PaymentCompletion::Mismatch => {
            warn!(payment = %id, "the provider's amount is not the payment's: nothing credited")
        }
    }
    Ok(())
}

/// The home page's card-payment form, when payments are on.
pub(super) fn form(provider: &PaymentProvider, csrf: &str, currency: &str) -> String {
    format!(
        "<h2>Pay by card</h2><form method=\"post\" action=\"/portal/pay\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><label>Amount ({}) \
         <input name=\"amount\" id=\"amount\" inputmode=\"decimal\" required></label> \
         <button id=\"pay\">Pay</button> <small>{} to {}</small></form>",
        escape(csrf),
        escape(currency),
        format_micros(provider.min_micros),
        format_micros(provider.max_micros),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        format!(
            "t={timestamp},v1={}",
            hex::encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn a_notification_is_believed_only_signed_with_the_secret_and_fresh() {
        let body = br#"{"type":"checkout.session.completed"}"#;
        let now = 1_800_000_000;
        let good = sign(b"whsec_1", now, body);
        assert!(signature_valid(&good, body, b"whsec_1", now + 10));
        assert!(!signature_valid(&good, body, b"whsec_2", now));
        assert!(!signature_valid(&good, b"{}", b"whsec_1", now));
        assert!(!signature_valid(&good, body, b"whsec_1", now + 301));
        assert!(!signature_valid("v1=00", body, b"whsec_1", now));
        let rolled = format!(
            "{},v1={}",
            sign(b"old", now, body),
            &good[good.len() - 64..]
        );
        assert!(signature_valid(&rolled, body, b"whsec_1", now));
    }
}
