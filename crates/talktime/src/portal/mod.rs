//! The customer portal (issue 22), on the admin listener beside the console but with its own
//! look, cookie and sessions: a card holder claims the portal once with the card's PIN and a
//! password of their own, then logs in with both; a pinless customer logs in with the account
//! number and the password the operator set (`talktime accounts portal-password`). Inside, the
//! customer sees the balance, the calls with their cost, the ledger lines, and recharges with a
//! voucher and, if they have one, a promotion coupon (`talktime coupons add`); the operator's
//! messages meant for them head the page (`talktime messages post`). Every page shows the session's own account only: there is no account in any URL,
//! and a call that is not the customer's is "Not found".

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Path as UrlPath, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use talktime_pii::Pii;
use talktime_store::{
    Account, CdrFilter, CouponRecharge, CouponRefusal, CustomerSession, Redemption, Store,
    format_micros,
};
use tracing::{info, warn};

use crate::console::auth::{self, LoginLimiter, MIN_PASSWORD_CHARS};
use crate::console::escape;
use crate::console::utc;
use crate::server::wall_clock_ms;

mod gifts;
mod payments;
mod phones;
mod points;
mod signup;
mod speed_dials;
mod tickets;

pub use payments::PaymentProvider;
pub use phones::{claim_code_digits, login_code};

/// The portal's session cookie (apart from the console's).
pub const PORTAL_COOKIE: &str = "talktime_portal";
/// Calls listed on the portal's home page, newest first.
const CALLS_SHOWN: i64 = 50;
/// Ledger lines listed on the portal's home page, newest first.
const LINES_SHOWN: i64 = 50;

/// What the portal's handlers share.
#[derive(Clone, Debug)]
pub struct PortalState {
    pub store: Store,
    pub secure_cookies: bool,
    pub limiter: Arc<LoginLimiter>,
    /// Sign-ups by address (apart from failed logins, which it must not lock).
    pub signups: Arc<LoginLimiter>,
    /// `[portal]` of the configuration.
    pub settings: Arc<talktime_b2bua::config::PortalConfig>,
    /// Card payments, when a provider is configured.
    pub payments: Option<PaymentProvider>,
    /// Digits of a phone confirmation code ([`claim_code_digits`]).
    pub claim_code_digits: usize,
}

/// The portal's routes (merged into the admin router).
pub fn router(state: PortalState) -> Router {
    Router::new()
        .route("/portal", get(home))
        .route("/portal/login", get(login_page).post(login))
        .route("/portal/login/phone", post(phone_login))
        .route("/portal/claim", get(claim_page).post(claim))
        .route("/portal/logout", post(logout))
        .route("/portal/recharge", post(recharge))
        .route("/portal/calls/{call_id}", get(call_page))
        .route("/portal/signup", get(signup::form).post(signup::sign_up))
        .route("/portal/phones", post(phones::add))
        .route("/portal/phones/remove", post(phones::remove))
        .route("/portal/tickets", post(tickets::open))
        .route("/portal/tickets/{id}", get(tickets::page))
        .route("/portal/tickets/{id}/reply", post(tickets::reply))
        .route("/portal/tickets/{id}/close", post(tickets::close))
        .route("/portal/speed-dials", post(speed_dials::set))
        .route("/portal/speed-dials/remove", post(speed_dials::remove))
        .route("/portal/points", post(points::redeem))
        .route("/portal/points/minutes", post(points::redeem_minutes))
        .route("/portal/gifts", post(gifts::buy))
        .route("/portal/pay", post(payments::pay))
        .route("/portal/payments/notify", post(payments::notify))
        .route("/portal/payments/{id}", get(payments::payment_page))
        .with_state(state)
}

/// Why a portal request is refused.
#[derive(Debug)]
pub enum PortalError {
    LoggedOut,
    Forbidden,
    NotFound,
    Internal(String),
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        match self {
            PortalError::LoggedOut => Redirect::to("/portal/login").into_response(),
            PortalError::Forbidden => (
                StatusCode::FORBIDDEN,
                Html(page(
                    "Forbidden",
                    "<p>The form is out of date: reload the page.</p>",
                )),
            )
                .into_response(),
            PortalError::NotFound => (
                StatusCode::NOT_FOUND,
                Html(page("Not found", "<p>It is not there.</p>")),
            )
                .into_response(),
            PortalError::Internal(error) => {
                warn!(%error, "portal request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html(page(
                        "Error",
                        "<p>Something failed on our side; please try again later.</p>",
                    )),
                )
                    .into_response()
            }
        }
    }
}

impl From<talktime_store::StoreError> for PortalError {
    fn from(error: talktime_store::StoreError) -> Self {
        PortalError::Internal(error.to_string())
    }
}

/// The customer of a request: a live portal session.
#[derive(Debug)]
pub struct Customer {
    session: CustomerSession,
    token_hash: String,
    /// The name the portal wears for this customer: their reseller's (white label), else the
    /// operator's default.
    brand: String,
}

impl FromRequestParts<PortalState> for Customer {
    type Rejection = PortalError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Self, Self::Rejection> {
        let token =
            auth::cookie_value(&parts.headers, PORTAL_COOKIE).ok_or(PortalError::LoggedOut)?;
        let token_hash = auth::token_hash(&token);
        let now = wall_clock_ms();
        let Some(session) = state.store.customer_session(&token_hash).await? else {
            return Err(PortalError::LoggedOut);
        };
        if !auth::session_alive(session.created_at_ms, session.last_seen_ms, now) {
            state.store.delete_customer_session(&token_hash).await?;
            return Err(PortalError::LoggedOut);
        }
        if now - session.last_seen_ms > 60_000 {
            state.store.touch_customer_session(&token_hash, now).await?;
        }
        let brand = brand_of(&state.store, session.account_id).await?;
        Ok(Customer {
            session,
            token_hash,
            brand,
        })
    }
}

/// The portal's name when nobody's reseller wears it.
const DEFAULT_BRAND: &str = "My calling card";

/// A reseller's customers see the portal under the reseller's name.
async fn brand_of(store: &Store, account_id: i64) -> Result<String, PortalError> {
    Ok(match store.account_reseller(account_id).await? {
        Some(reseller) => store.reseller(reseller).await?.name,
        None => DEFAULT_BRAND.to_owned(),
    })
}

impl Customer {
    fn check_csrf(&self, given: &str) -> Result<(), PortalError> {
        if auth::csrf_matches(&self.session.csrf_token, given) {
            Ok(())
        } else {
            Err(PortalError::Forbidden)
        }
    }
}

#[derive(Deserialize)]
struct LoginForm {
    /// A card's PIN, or a pinless account's number.
    login: String,
    password: String,
}

#[derive(Deserialize)]
struct PhoneLoginForm {
    number: String,
    code: String,
}

#[derive(Deserialize)]
struct ClaimForm {
    pin: String,
    password: String,
    repeat: String,
}

#[derive(Deserialize)]
struct RechargeForm {
    #[serde(default)]
    csrf: String,
    code: String,
    /// A promotion coupon's code, if the customer has one.
    #[serde(default)]
    coupon: String,
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The limiter's key for a login: a digest, so no PIN sits in its table.
fn limiter_key(login: &str) -> String {
    auth::token_hash(login.trim())[..16].to_owned()
}

/// The account a login names: the e-mail address of a signed-up customer, the card whose PIN
/// it is, else the account of that number (pinless customers, whose password the operator
/// sets).
async fn account_of_login(store: &Store, login: &str) -> Result<Option<i64>, PortalError> {
    let login = login.trim();
    if login.contains('@') {
        return Ok(store.account_by_login_email(login).await?);
    }
    if login.is_empty() || !login.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(None);
    }
    if let Some(card) = store.card_by_pin(&Pii::new(login.to_owned())).await? {
        return Ok(Some(card.account_id));
    }
    Ok(login.parse::<i64>().ok())
}

async fn login_page(State(state): State<PortalState>) -> Html<String> {
    Html(login_form(None, &state.settings))
}

async fn login(
    State(state): State<PortalState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Result<Response, PortalError> {
    let now = Instant::now();
    let key = limiter_key(&form.login);
    if !state.limiter.allows(peer.ip(), &key, now) {
        return Ok(too_many_logins(&state));
    }
    let account_id = account_of_login(&state.store, &form.login).await?;
    let hash = match account_id {
        Some(account_id) => state.store.customer_password_hash(account_id).await?,
        None => None,
    };
    let verified = match (account_id, hash) {
        (Some(account_id), Some(hash)) => {
            let password = form.password.clone();
            // Hashing takes tens of milliseconds: off the async workers.
            let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
                .await
                .unwrap_or(false);
            ok.then_some(account_id)
        }
        _ => None,
    };
    let Some(account_id) = verified else {
        state.limiter.failed(peer.ip(), &key, now);
        return Ok(refused(
            StatusCode::UNAUTHORIZED,
            login_form(Some("Wrong PIN, account or password."), &state.settings),
        ));
    };
    state.limiter.succeeded(peer.ip(), &key);
    start_session(&state, account_id).await
}

/// The login page refusing a login the limiter holds back.
fn too_many_logins(state: &PortalState) -> Response {
    refused(
        StatusCode::TOO_MANY_REQUESTS,
        login_form(
            Some("Too many failed logins: wait a few minutes."),
            &state.settings,
        ),
    )
}

/// A login with a phone: the number called from and the code the IVR read out to it (`*01`),
/// once. Throttled like a password login, per address and per number.
async fn phone_login(
    State(state): State<PortalState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<PhoneLoginForm>,
) -> Result<Response, PortalError> {
    let now = Instant::now();
    let number = talktime_routing::caller_id_digits(&form.number);
    let key = limiter_key(number.as_deref().unwrap_or(form.number.trim()));
    if !state.limiter.allows(peer.ip(), &key, now) {
        return Ok(too_many_logins(&state));
    }
    let code = form.code.trim();
    let account_id = match number {
        Some(number) if !code.is_empty() && code.bytes().all(|byte| byte.is_ascii_digit()) => {
            let (number, code) = (Pii::new(number), Pii::new(code.to_owned()));
            state
                .store
                .use_portal_code(&number, &code, wall_clock_ms())
                .await?
        }
        _ => None,
    };
    let Some(account_id) = account_id else {
        state.limiter.failed(peer.ip(), &key, now);
        return Ok(refused(
            StatusCode::UNAUTHORIZED,
            login_form(
                Some("Wrong or expired code for this phone: call again for a new one."),
                &state.settings,
            ),
        ));
    };
    state.limiter.succeeded(peer.ip(), &key);
    start_session(&state, account_id).await
}

/// A new session (a new token at every login) and the cookie that carries it, to home.
async fn start_session(state: &PortalState, account_id: i64) -> Result<Response, PortalError> {
    let token = auth::random_hex(32);
    let csrf = auth::random_hex(32);
    state
        .store
        .create_customer_session(
            &auth::token_hash(&token),
            account_id,
            &csrf,
            wall_clock_ms(),
        )
        .await?;
    info!(account_id, "portal login");
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie =
        format!("{PORTAL_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/portal{secure}");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/portal")).into_response())
}

async fn claim_page() -> Html<String> {
    Html(claim_form(None))
}

/// A card holder's first visit: the PIN proves the card, the password is theirs from now on.
async fn claim(
    State(state): State<PortalState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<ClaimForm>,
) -> Result<Response, PortalError> {
    let now = Instant::now();
    let key = limiter_key(&form.pin);
    if !state.limiter.allows(peer.ip(), &key, now) {
        return Ok(refused(
            StatusCode::TOO_MANY_REQUESTS,
            claim_form(Some("Too many failed attempts: wait a few minutes.")),
        ));
    }
    if form.password != form.repeat {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            claim_form(Some("The two passwords differ.")),
        ));
    }
    if form.password.chars().count() < MIN_PASSWORD_CHARS {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            claim_form(Some(&format!(
                "A password has at least {MIN_PASSWORD_CHARS} characters."
            ))),
        ));
    }
    let pin = form.pin.trim().to_owned();
    let card = if pin.bytes().all(|byte| byte.is_ascii_digit()) && !pin.is_empty() {
        state.store.card_by_pin(&Pii::new(pin)).await?
    } else {
        None
    };
    let Some(card) = card else {
        state.limiter.failed(peer.ip(), &key, now);
        return Ok(refused(
            StatusCode::UNAUTHORIZED,
            claim_form(Some("No card has this PIN.")),
        ));
    };
    let password = form.password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|error| PortalError::Internal(error.to_string()))?
        .map_err(|error| PortalError::Internal(error.to_string()))?;
    if !state
        .store
        .create_customer_login(card.account_id, &hash, wall_clock_ms())
        .await?
    {
        return Ok(refused(
            StatusCode::CONFLICT,
            claim_form(Some(
                "This card has a portal password already: log in with it.",
            )),
        ));
    }
    state.limiter.succeeded(peer.ip(), &key);
    start_session(&state, card.account_id).await
}

async fn logout(
    State(state): State<PortalState>,
    customer: Customer,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    state
        .store
        .delete_customer_session(&customer.token_hash)
        .await?;
    let cookie = format!("{PORTAL_COOKIE}=; HttpOnly; SameSite=Strict; Path=/portal; Max-Age=0");
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/portal/login"),
    )
        .into_response())
}

async fn home(
    State(state): State<PortalState>,
    customer: Customer,
) -> Result<Html<String>, PortalError> {
    Ok(Html(home_page(&state, &customer, None).await?))
}

async fn recharge(
    State(state): State<PortalState>,
    customer: Customer,
    Form(form): Form<RechargeForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    let code = Pii::new(form.code.chars().filter(char::is_ascii_digit).collect());
    let account_id = customer.session.account_id;
    let now_ms = wall_clock_ms();
    let coupon = form.coupon.trim();
    let outcome = if coupon.is_empty() {
        state
            .store
            .redeem_voucher(account_id, &code, None, now_ms)
            .await?
    } else {
        match state
            .store
            .redeem_voucher_with_coupon(account_id, &code, coupon, now_ms)
            .await?
        {
            CouponRecharge::Credited {
                amount_micros,
                bonus_micros,
                ..
            } => {
                let notice = format!(
                    "Recharged {} and {} more with the coupon.",
                    format_micros(amount_micros),
                    format_micros(bonus_micros)
                );
                let body = home_page(&state, &customer, Some(&notice)).await?;
                return Ok((StatusCode::OK, Html(body)).into_response());
            }
            CouponRecharge::Voucher(redemption) => redemption,
            CouponRecharge::Coupon(refusal) => {
                let notice = coupon_refusal(refusal);
                let body = home_page(&state, &customer, Some(notice)).await?;
                return Ok((StatusCode::BAD_REQUEST, Html(body)).into_response());
            }
        }
    };
    let (status, notice) = match outcome {
        Redemption::Credited {
            amount_micros,
            voucher_id,
            ..
        } => (
            StatusCode::OK,
            match state.store.voucher_design(voucher_id).await? {
                Some(design) => format!(
                    "Gift card “{design}”: recharged {}.",
                    format_micros(amount_micros)
                ),
                None => format!("Recharged {}.", format_micros(amount_micros)),
            },
        ),
        Redemption::Unknown => (StatusCode::BAD_REQUEST, "No voucher has this code.".into()),
        Redemption::AlreadyUsed => (
            StatusCode::BAD_REQUEST,
            "This voucher has been used.".into(),
        ),
        Redemption::Expired => (StatusCode::BAD_REQUEST, "This voucher has expired.".into()),
        Redemption::WrongCurrency => (
            StatusCode::BAD_REQUEST,
            "This voucher is in another currency.".into(),
        ),
        Redemption::NotRefillable => (
            StatusCode::BAD_REQUEST,
            "This card cannot be recharged.".into(),
        ),
    };
    let body = home_page(&state, &customer, Some(&notice)).await?;
    Ok((status, Html(body)).into_response())
}

/// What the customer reads when a coupon is refused (the voucher was not used either).
fn coupon_refusal(refusal: CouponRefusal) -> &'static str {
    match refusal {
        CouponRefusal::Unknown => "No coupon has this code; the voucher was not used.",
        CouponRefusal::NotYetValid => "This coupon is not valid yet; the voucher was not used.",
        CouponRefusal::Expired => "This coupon has expired; the voucher was not used.",
        CouponRefusal::UsedUp => {
            "This coupon has been used as often as it may; the voucher was not used."
        }
        CouponRefusal::UsedByAccount => {
            "You have used this coupon already; the voucher was not used."
        }
        CouponRefusal::WrongCurrency => {
            "This coupon is in another currency; the voucher was not used."
        }
    }
}

/// One call's CDR rows, if the call is the customer's; else "Not found".
async fn call_page(
    State(state): State<PortalState>,
    customer: Customer,
    UrlPath(call_id): UrlPath<String>,
) -> Result<Html<String>, PortalError> {
    let rows: Vec<_> = state
        .store
        .cdrs_for_call(&call_id)
        .await?
        .into_iter()
        .filter(|cdr| cdr.account_id == Some(customer.session.account_id))
        .collect();
    if rows.is_empty() {
        return Err(PortalError::NotFound);
    }
    let mut body = String::from(
        "<table><thead><tr><th>Attempt</th><th>Started (UTC)</th><th>Number</th>\
         <th>Seconds billed</th><th>Fees</th><th>Tax</th><th>Cost</th></tr></thead><tbody>",
    );
    for cdr in &rows {
        let _ = write!(
            body,
            "<tr class=\"attempt\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td class=\"cost\">{}</td></tr>",
            cdr.attempt,
            utc(cdr.start_ms),
            escape(cdr.destination.expose()),
            cdr.billed_seconds,
            escape(&cdr.fees_json),
            format_micros(cdr.tax_micros),
            format_micros(cdr.total_micros),
        );
    }
    body.push_str("</tbody></table><p><a href=\"/portal\">Back</a></p>");
    Ok(Html(logged_in_page("Call", &customer, &body)))
}

async fn home_page(
    state: &PortalState,
    customer: &Customer,
    notice: Option<&str>,
) -> Result<String, PortalError> {
    let account_id = customer.session.account_id;
    let account = state.store.account(account_id).await?;
    let filter = CdrFilter {
        from_ms: 0,
        to_ms: i64::MAX,
        account_id: Some(account_id),
        carrier: None,
        cause: None,
        destination_prefix: None,
        reseller_tree: None,
    };
    let calls = state.store.search_cdrs(&filter, None, CALLS_SHOWN).await?;
    let entries = state
        .store
        .recent_transactions(account_id, LINES_SHOWN)
        .await?;
    let messages = state
        .store
        .portal_messages_for(account_id, wall_clock_ms())
        .await?;
    let mut body = String::new();
    if let Some(notice) = notice {
        let _ = write!(body, "<p id=\"notice\">{}</p>", escape(notice));
    }
    body.push_str(&balance_box(&account));
    if !messages.is_empty() {
        body.push_str("<section id=\"messages\"><h2>News</h2>");
        for message in &messages {
            let _ = write!(
                body,
                "<article class=\"message\"><h3>{}</h3><p>{}</p></article>",
                escape(&message.title),
                escape(&message.body)
            );
        }
        body.push_str("</section>");
    }
    let _ = write!(
        body,
        "<h2>Recharge</h2><form method=\"post\" action=\"/portal/recharge\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label>Voucher code <input name=\"code\" id=\"code\" inputmode=\"numeric\" \
         autocomplete=\"off\" required></label> <label>Coupon (if you have one) \
         <input name=\"coupon\" id=\"coupon\" autocomplete=\"off\"></label> \
         <button id=\"recharge\">Recharge</button></form>",
        escape(&customer.session.csrf_token)
    );
    if let Some(provider) = &state.payments {
        body.push_str(&payments::form(
            provider,
            &customer.session.csrf_token,
            &account.currency,
        ));
    }
    body.push_str(&phones::section(state, customer).await?);
    body.push_str(&speed_dials::section(state, customer).await?);
    body.push_str(&points::section(state, customer, &account.currency).await?);
    body.push_str(&gifts::section(state, customer));
    body.push_str(&tickets::section(state, customer).await?);
    let referral = state
        .store
        .referral_code(account_id, &signup::referral_code())
        .await?;
    let _ = write!(
        body,
        "<h2>Invite friends</h2><p>Your referral code is <strong id=\"referral-code\">{}</strong>: \
         a friend who opens an account with it and recharges earns you both credit.</p>",
        escape(&referral)
    );
    body.push_str(
        "<h2>Calls</h2><table id=\"calls\"><thead><tr><th>Started (UTC)</th><th>Number</th>\
         <th>Seconds</th><th>Cost</th></tr></thead><tbody>",
    );
    for (_, cdr) in &calls {
        let _ = write!(
            body,
            "<tr class=\"call\"><td><a href=\"/portal/calls/{}\">{}</a></td><td>{}</td>\
             <td>{}</td><td class=\"cost\">{}</td></tr>",
            escape(&url_segment(&cdr.call_id)),
            utc(cdr.start_ms),
            escape(cdr.destination.expose()),
            cdr.billed_seconds,
            format_micros(cdr.total_micros),
        );
    }
    body.push_str(
        "</tbody></table><h2>Payments and charges</h2><table id=\"ledger\"><thead><tr>\
         <th>When (UTC)</th><th>What</th><th>Amount</th><th>Balance after</th></tr></thead>\
         <tbody>",
    );
    for entry in &entries {
        let _ = write!(
            body,
            "<tr class=\"entry\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            utc(entry.created_at_ms),
            entry.kind.as_str(),
            format_micros(entry.amount_micros),
            format_micros(entry.balance_after_micros),
        );
    }
    body.push_str("</tbody></table>");
    Ok(logged_in_page("My account", customer, &body))
}

fn balance_box(account: &Account) -> String {
    format!(
        "<p class=\"balance\">Balance <strong id=\"balance\">{}</strong> {}</p>",
        format_micros(account.balance_micros),
        escape(&account.currency),
    )
}

/// A call id as one path segment (Call-IDs hold `@` and may hold `/`).
fn url_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn refused(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2b24;background:#f6faf7}\
header{background:#1f6f50;color:#fff;padding:.7em 1em;display:flex;gap:1em;align-items:center}\
header a,header button{color:#fff}main{padding:1em;max-width:60em}table{border-collapse:collapse;\
width:100%}th,td{border-bottom:1px solid #cfe0d6;padding:.35em .5em;text-align:left}\
.balance{font-size:1.6em}.error{color:#a00}form.inline{display:inline}\
header button{background:none;border:1px solid #fff;border-radius:4px;cursor:pointer}";

fn page(title: &str, body: &str) -> String {
    shell(DEFAULT_BRAND, title, "", body)
}

fn logged_in_page(title: &str, customer: &Customer, body: &str) -> String {
    let nav = format!(
        "<a href=\"/portal\">My account</a><form class=\"inline\" method=\"post\" \
         action=\"/portal/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button id=\"logout\">Log out</button></form>",
        escape(&customer.session.csrf_token)
    );
    shell(&customer.brand, title, &nav, body)
}

fn shell(brand: &str, title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · {brand}</title><style>{STYLE}</style></head><body><header>\
         <strong id=\"brand\">{brand}</strong>{nav}</header><main><h1>{title}</h1>{body}</main>\
         </body></html>",
        title = escape(title),
        brand = escape(brand),
    )
}

fn error_line(error: Option<&str>) -> String {
    error
        .map(|text| format!("<p class=\"error\" id=\"error\">{}</p>", escape(text)))
        .unwrap_or_default()
}

fn login_form(error: Option<&str>, settings: &talktime_b2bua::config::PortalConfig) -> String {
    let signup = if settings.signup {
        "<p>New here? <a id=\"signup\" href=\"/portal/signup\">Open an account</a>.</p>"
    } else {
        ""
    };
    let access = match settings.access_number.trim() {
        "" => "the access number".to_owned(),
        access => escape(access),
    };
    page(
        "Log in",
        &format!(
            "{}<form method=\"post\" action=\"/portal/login\">\
             <p><label>E-mail, card PIN or account number <input name=\"login\" id=\"login\" \
             autocomplete=\"username\" required></label></p>\
             <p><label>Password <input name=\"password\" id=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required></label></p>\
             <p><button id=\"submit\">Log in</button></p></form>\
             <h2>Or with your phone</h2><p>Call {access} from your phone, key *01 and # when \
             asked for the number to call, and type the code you hear.</p>\
             <form method=\"post\" action=\"/portal/login/phone\">\
             <p><label>Phone number <input name=\"number\" id=\"phone-number\" type=\"tel\" \
             autocomplete=\"tel\" required></label></p>\
             <p><label>Code <input name=\"code\" id=\"phone-code\" inputmode=\"numeric\" \
             autocomplete=\"one-time-code\" required></label></p>\
             <p><button id=\"phone-submit\">Log in</button></p></form>\
             <p>First time with your card? <a id=\"claim\" href=\"/portal/claim\">Choose a \
             password</a>.</p>{signup}",
            error_line(error)
        ),
    )
}

fn claim_form(error: Option<&str>) -> String {
    page(
        "Choose a password",
        &format!(
            "{}<form method=\"post\" action=\"/portal/claim\">\
             <p><label>Card PIN <input name=\"pin\" id=\"pin\" inputmode=\"numeric\" \
             autocomplete=\"off\" required></label></p>\
             <p><label>New password <input name=\"password\" id=\"password\" type=\"password\" \
             autocomplete=\"new-password\" required></label></p>\
             <p><label>Again <input name=\"repeat\" id=\"repeat\" type=\"password\" \
             autocomplete=\"new-password\" required></label></p>\
             <p><button id=\"submit\">Save and log in</button></p></form>",
            error_line(error)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_id_is_one_path_segment() {
        assert_eq!(url_segment("a1-b2@host.example"), "a1-b2@host.example");
        assert_eq!(url_segment("x/y z"), "x%2Fy%20z");
    }

    #[test]
    fn the_limiter_never_keeps_the_pin_itself() {
        let key = limiter_key(" 1234567890 ");
        assert_eq!(key.len(), 16);
        assert!(!key.contains("1234567890"));
        assert_eq!(key, limiter_key("1234567890"));
    }
}
