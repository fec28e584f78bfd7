//! Card payments in the customer portal (issue 22), in a real browser against the running
//! switch and a local payment provider that implements the documented checkout-session API
//! (bearer key, idempotency key, hosted payment page, signed `checkout.session.completed`
//! notification, session look-up). A customer pays 10.00, comes back to "Thank you" and the
//! balance shows it once; the provider's notification replayed, a forged one, a stale one and a
//! second notification of the same session credit nothing more; an amount out of range is
//! refused before the provider is asked.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use common::browser::Browser;
use common::calls::start;
use common::prepaid::{self, ConfigFile};
use hmac::{KeyInit, Mac};
use serde_json::json;

const PIN: &str = "7107107101";
const FRIEND_PIN: &str = "7207207202";
const PASSWORD: &str = "correct horse battery";
const API_KEY: &str = "sk_test_talktime_4f2a";
const SIGNING_SECRET: &str = "whsec_test_9c1d";

#[derive(Clone, Debug)]
struct Session {
    id: String,
    amount: i64,
    currency: String,
    payment_id: String,
    success_url: String,
    paid: bool,
}

#[derive(Default)]
struct Provider {
    sessions: HashMap<String, Session>,
    by_idempotency_key: HashMap<String, String>,
    notify_url: String,
    address: String,
    /// The last notification sent: its body and signature header.
    sent: Vec<(String, String)>,
    created: usize,
}

type Shared = Arc<Mutex<Provider>>;

fn signature(timestamp: i64, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SIGNING_SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn now_s() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {API_KEY}"))
}

async fn create_session(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(fields): Form<HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut provider = shared.lock().unwrap();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let id = match provider.by_idempotency_key.get(&key) {
        Some(id) => id.clone(),
        None => {
            provider.created += 1;
            let id = format!("cs_test_{}", provider.created);
            let session = Session {
                id: id.clone(),
                amount: fields["line_items[0][price_data][unit_amount]"]
                    .parse()
                    .unwrap(),
                currency: fields["line_items[0][price_data][currency]"].clone(),
                payment_id: fields["metadata[payment_id]"].clone(),
                success_url: fields["success_url"].clone(),
                paid: false,
            };
            provider.sessions.insert(id.clone(), session);
            provider.by_idempotency_key.insert(key, id.clone());
            id
        }
    };
    let url = format!("http://{}/pay/{id}", provider.address);
    axum::Json(json!({ "id": id, "object": "checkout.session", "url": url })).into_response()
}

fn session_json(session: &Session) -> serde_json::Value {
    json!({
        "id": session.id,
        "object": "checkout.session",
        "payment_status": if session.paid { "paid" } else { "unpaid" },
        "amount_total": session.amount,
        "currency": session.currency,
        "metadata": { "payment_id": session.payment_id },
    })
}

async fn get_session(
    State(shared): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match shared.lock().unwrap().sessions.get(&id) {
        Some(session) => axum::Json(session_json(session)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn payment_page(UrlPath(id): UrlPath<String>) -> Html<String> {
    Html(format!(
        "<!doctype html><title>Checkout</title><form method=\"post\" action=\"/pay/{id}\">\
         <button id=\"card-pay\">Pay with test card</button></form>"
    ))
}

/// The customer pays: the session is paid, the switch is notified (signed), the browser goes
/// back to the success URL.
async fn pay(State(shared): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let (body, header, url, back) = {
        let mut provider = shared.lock().unwrap();
        let session = provider.sessions.get_mut(&id).unwrap();
        session.paid = true;
        let event = json!({
            "id": format!("evt_{id}"),
            "type": "checkout.session.completed",
            "data": { "object": session_json(session) },
        });
        let body = event.to_string();
        let header = signature(now_s(), &body);
        let back = session.success_url.clone();
        provider.sent.push((body.clone(), header.clone()));
        (body, header, provider.notify_url.clone(), back)
    };
    let status = notify(&url, &body, &header).await;
    assert_eq!(status, 200, "the switch took the notification");
    Redirect::to(&back).into_response()
}

async fn notify(url: &str, body: &str, header: &str) -> u16 {
    let (url, body, header) = (url.to_owned(), body.to_owned(), header.to_owned());
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .post(&url)
            .header("Stripe-Signature", &header)
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .map(|response| response.status().as_u16())
            .unwrap_or(0)
    })
    .await
    .unwrap()
}

fn start_provider() -> (Shared, SocketAddr) {
    let shared: Shared = Arc::default();
    let runtime = prepaid::runtime();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    shared.lock().unwrap().address = address.to_string();
    let app = Router::new()
        .route("/v1/checkout/sessions", post(create_session))
        .route("/v1/checkout/sessions/{id}", get(get_session))
        .route("/pay/{id}", get(payment_page).post(pay))
        .with_state(shared.clone());
    runtime.spawn(async move { axum::serve(listener, app).await });
    (shared, address)
}

#[test]
fn a_card_payment_credits_once_however_often_the_provider_says_so() {
    let dir = prepaid::data_dir("portal-payments");
    let account = prepaid::card(&dir, PIN, 1_000_000, 0);
    let friend = prepaid::card(&dir, FRIEND_PIN, 0, 0);
    // Printed gift cards sold in shops: a voucher batch with a design.
    let csv = common::cli(
        &dir,
        &[
            "vouchers", "generate", "--name", "xmas", "--count", "1", "--value", "5", "--design",
            "Holidays",
        ],
    );
    let printed = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_owned();
    let (provider, provider_address) = start_provider();
    std::fs::write(dir.join("payment.key"), format!("{API_KEY}\n")).unwrap();
    std::fs::write(dir.join("payment.secret"), SIGNING_SECRET).unwrap();
    let switch = start(
        &dir,
        ConfigFile::new().raw(&format!(
            "[portal]\npayment_api = \"http://{provider_address}\"\n\
             payment_key_file = \"{}\"\npayment_signing_secret_file = \"{}\"\n\
             payment_min = \"5\"\npayment_max = \"50\"\n",
            dir.join("payment.key").display(),
            dir.join("payment.secret").display()
        )),
    );
    let notify_url = format!("http://{}/portal/payments/notify", switch.admin);
    provider.lock().unwrap().notify_url = notify_url.clone();
    let log = switch.log_text();
    assert!(
        !log.contains(API_KEY) && !log.contains(SIGNING_SECRET),
        "no secret logged"
    );

    let portal = format!("http://{}/portal", switch.admin);
    let browser = Browser::start();
    browser.go(&format!("{portal}/claim"));
    browser.type_into("#pin", PIN);
    browser.type_into("#password", PASSWORD);
    browser.type_into("#repeat", PASSWORD);
    browser.click("#submit");
    browser
        .wait_for("#balance", Duration::from_secs(10))
        .unwrap();
    assert_eq!(browser.text("#balance"), "1");

    // Out of range: refused here, the provider never hears of it.
    browser.type_into("#amount", "500");
    browser.click("#pay");
    browser.until_page_says("A card payment is between 5 and 50.");
    assert_eq!(provider.lock().unwrap().created, 0);

    // 10.00: to the provider's page, paid, back to "Thank you".
    browser.type_into("#amount", "10");
    browser.click("#pay");
    browser
        .wait_for("#card-pay", Duration::from_secs(10))
        .unwrap();
    assert!(browser.url().contains(&provider_address.to_string()));
    browser.click("#card-pay");
    browser.until_page_says("10 USD were added to your balance");
    assert_eq!(prepaid::balance(&dir, account), 11_000_000);
    browser.go(&portal);
    browser
        .wait_for("#balance", Duration::from_secs(10))
        .unwrap();
    assert_eq!(browser.text("#balance"), "11");
    let ledger = browser.text("#ledger").replace('\t', " ");
    assert!(ledger.contains("recharge 10"), "{ledger}");

    let runtime = prepaid::runtime();
    let (body, header) = provider.lock().unwrap().sent[0].clone();
    // The same notification again (the provider retries; somebody replays it): 200, nothing.
    assert_eq!(runtime.block_on(notify(&notify_url, &body, &header)), 200);
    // Signed anew, as a provider's retry is: still nothing more.
    let again = signature(now_s(), &body);
    assert_eq!(runtime.block_on(notify(&notify_url, &body, &again)), 200);
    // Forged (another secret) or stale (an hour old): refused.
    let forged = header.replace(&header[header.len() - 8..], "00000000");
    assert_eq!(runtime.block_on(notify(&notify_url, &body, &forged)), 400);
    let stale = signature(now_s() - 3600, &body);
    assert_eq!(runtime.block_on(notify(&notify_url, &body, &stale)), 400);
    // A made-up body claiming more money under a good signature still asks the provider,
    // which says the session is worth 10.00 and paid already.
    let inflated = body.replace("\"amount_total\":1000", "\"amount_total\":999900");
    let inflated_signature = signature(now_s(), &inflated);
    assert_eq!(
        runtime.block_on(notify(&notify_url, &inflated, &inflated_signature)),
        200
    );
    assert_eq!(prepaid::balance(&dir, account), 11_000_000, "credited once");
    browser.go(&portal);
    browser
        .wait_for("#balance", Duration::from_secs(10))
        .unwrap();
    assert_eq!(browser.text("#balance"), "11");
    let lines = browser.text("#ledger").replace('\t', " ");
    assert_eq!(lines.matches("recharge 10 ").count(), 1, "{lines}");
    assert!(
        switch
            .log_text()
            .contains("card payment notified again: nothing more")
    );

    // A gift card from the credit: its design, its code once; more than the credit: refused.
    browser.click("#gift-design option:nth-child(2)");
    browser.type_into("#gift-value", "40");
    browser.click("#buy-gift");
    browser.until_page_says("not enough for this gift card");
    browser.click("#gift-design option:nth-child(2)");
    browser.type_into("#gift-value", "4");
    browser.click("#buy-gift");
    browser.until_page_says("Your gift card:");
    assert!(browser.text("#gift-card").contains("Thank you"));
    let gift = browser.text("#gift-code");
    assert_eq!(gift.len(), 14, "{gift}");
    assert_eq!(browser.text("#balance"), "7");
    assert!(browser.text("#ledger").contains("gift_card"));
    browser.click("#logout");
    // The logout's own navigation lands first (seen in CI: it overtook the next `go`).
    browser.find("#login");

    // Anyone holding the code redeems it, once: here the holder of another card.
    browser.go(&format!("{portal}/claim"));
    browser.type_into("#pin", FRIEND_PIN);
    browser.type_into("#password", PASSWORD);
    browser.type_into("#repeat", PASSWORD);
    browser.click("#submit");
    browser
        .wait_for("#balance", Duration::from_secs(10))
        .unwrap();
    browser.type_into("#code", &gift);
    browser.click("#recharge");
    browser.until_page_says("Gift card “Thank you”: recharged 4.");
    browser.type_into("#code", &gift);
    browser.click("#recharge");
    browser.until_page_says("This voucher has been used.");
    browser.type_into("#code", &printed);
    browser.click("#recharge");
    browser.until_page_says("Gift card “Holidays”: recharged 5.");
    assert_eq!(prepaid::balance(&dir, friend), 9_000_000);
    assert_eq!(prepaid::balance(&dir, account), 7_000_000);
}
