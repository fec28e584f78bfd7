//! The operator console (issue 15): server-rendered HTML on the admin listener, no script
//! and no asset from outside the binary. Users log in (`/console/login`) with a password;
//! every page needs a live session and every change its CSRF token. This first part has the
//! dashboard, the live calls (refreshed by the page itself) with an operator hang-up, and the
//! users and audit log; the rest of the pages build on the same session and layout.

mod accounts;
pub mod auth;
mod callbacks;
mod cards;
mod pages;
mod promotions;
mod prompts;
mod resellers;
mod subscribers;
pub use pages::escape;
pub(crate) use pages::utc;
mod routing;
mod tariffs;
mod tickets;
mod vouchers;

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
use talktime_b2bua::Input;
use talktime_store::{CdrCursor, CdrFilter, SessionRow, Store, User};
use tracing::warn;

use crate::server::{CoreSender, wall_clock_ms};
use auth::{LoginLimiter, SESSION_COOKIE};

/// What the console's handlers share.
#[derive(Clone, Debug)]
pub struct ConsoleState {
    pub store: Store,
    pub core: CoreSender,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Cookies carry `Secure` when the console is served over HTTPS.
    pub secure_cookies: bool,
    pub limiter: Arc<LoginLimiter>,
    /// Carriers and dial plans, changed live.
    pub routing: crate::routing_live::RoutingEditor,
    /// Where the prompts are (one directory per language).
    pub prompts_dir: std::path::PathBuf,
    /// A callback access number is configured: account pages offer a web callback.
    pub callbacks: bool,
    /// `[subscribers] realm`, for new subscribers' password hashes.
    pub subscriber_realm: String,
}

/// The console's routes (merged into the admin router).
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/console", get(dashboard))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/calls", get(calls_page))
        .route("/console/calls/{key}/hangup", post(hang_up))
        .route("/console/accounts/{id}/hangup", post(hang_up_account))
        .route(
            "/console/prompts",
            get(prompts::prompts_page).post(prompts::upload).layer(
                axum::extract::DefaultBodyLimit::max(prompts::UPLOAD_LIMIT_BYTES + 64 * 1024),
            ),
        )
        .route(
            "/console/prompts/{language}/{file}",
            get(prompts::prompt_file),
        )
        .route("/console/carriers", get(routing::carriers_page))
        .route("/console/carriers/save", post(routing::save_carrier))
        .route("/console/carriers/{name}", get(routing::carrier_page))
        .route(
            "/console/carriers/{name}/enabled",
            post(routing::set_enabled),
        )
        .route(
            "/console/carriers/{name}/delete",
            post(routing::delete_carrier),
        )
        .route("/console/dial-plans", get(routing::dial_plans_page))
        .route("/console/dial-plans/route", post(routing::save_route))
        .route(
            "/console/dial-plans/route/remove",
            post(routing::remove_route),
        )
        .route("/console/dial-plans/delete", post(routing::delete_plan))
        .route("/console/routes/explain", get(routing::explain))
        .route("/console/users", get(users_page).post(add_user))
        .route("/console/users/{name}/disabled", post(set_user_disabled))
        .route("/console/cdrs", get(cdrs_page))
        .route(
            "/console/tickets",
            get(tickets::tickets_page).post(tickets::open),
        )
        .route("/console/tickets/{id}", get(tickets::ticket_page))
        .route("/console/tickets/{id}/reply", post(tickets::reply))
        .route("/console/tickets/{id}/update", post(tickets::update))
        .route(
            "/console/saved-answers",
            get(tickets::saved_answers_page).post(tickets::save_answer),
        )
        .route(
            "/console/coupons",
            get(promotions::coupons_page).post(promotions::add_coupon),
        )
        .route(
            "/console/messages",
            get(promotions::messages_page).post(promotions::post_message),
        )
        .route(
            "/console/messages/{id}/remove",
            post(promotions::remove_message),
        )
        .route("/console/cdrs/export", get(cdrs_export))
        .route("/console/reports", get(reports_page))
        .route("/console/cards", get(cards::cards_page))
        .route("/console/cards/find", post(cards::find))
        .route("/console/cards/batches", post(cards::generate_batch))
        .route("/console/cards/{id}", get(cards::card_page))
        .route("/console/cards/{id}/status", post(cards::set_status))
        .route("/console/cards/{id}/recharge", post(cards::recharge))
        .route("/console/tariffs", get(tariffs::tariffs_page))
        .route("/console/tariffs/{id}", get(tariffs::tariff_page))
        .route("/console/tariffs/{id}/import", post(tariffs::import))
        .route(
            "/console/tariffs/{id}/settings",
            post(tariffs::save_settings),
        )
        .route("/console/tariffs/{id}/simulate", get(tariffs::simulate))
        .route(
            "/console/resellers",
            get(resellers::resellers_page).post(resellers::add_reseller),
        )
        .route("/console/resellers/{id}", get(resellers::reseller_page))
        .route(
            "/console/resellers/{id}/customers",
            post(resellers::add_customer),
        )
        .route(
            "/console/resellers/{id}/transfers",
            post(resellers::transfer),
        )
        .route(
            "/console/resellers/{id}/calls/{key}/hangup",
            post(resellers::hang_up),
        )
        .route("/console/accounts/{id}", get(accounts::account_page))
        .route("/console/accounts/{id}/recharge", post(accounts::recharge))
        .route(
            "/console/accounts/{id}/settings",
            post(accounts::save_settings),
        )
        .route(
            "/console/accounts/{id}/caller-ids",
            post(accounts::add_caller_id),
        )
        .route(
            "/console/accounts/{id}/caller-ids/remove",
            post(accounts::remove_caller_id),
        )
        .route("/console/accounts/{id}/callback", post(callbacks::place))
        .route("/console/accounts/{id}/subscribers", post(subscribers::add))
        .route(
            "/console/accounts/{id}/subscribers/{username}/status",
            post(subscribers::set_status),
        )
        .route(
            "/console/accounts/{id}/speed-dials",
            post(vouchers::set_speed_dial),
        )
        .route(
            "/console/accounts/{id}/speed-dials/remove",
            post(vouchers::remove_speed_dial),
        )
        .route(
            "/console/vouchers",
            get(vouchers::vouchers_page).post(vouchers::generate),
        )
        .with_state(state)
}

/// Why a console request is refused.
#[derive(Debug)]
pub enum ConsoleError {
    /// No live session: to the login page.
    LoggedOut,
    /// The role may not do this, or the CSRF token is missing or wrong.
    Forbidden(&'static str),
    NotFound,
    /// A reseller's user asked for the dashboard: to its own page.
    ResellerHome,
    Internal(String),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::LoggedOut => Redirect::to("/console/login").into_response(),
            ConsoleError::ResellerHome => Redirect::to("/console/resellers").into_response(),
            ConsoleError::Forbidden(why) => (
                StatusCode::FORBIDDEN,
                Html(pages::message("Forbidden", why)),
            )
                .into_response(),
            ConsoleError::NotFound => (
                StatusCode::NOT_FOUND,
                Html(pages::message("Not found", "It is not there (any more).")),
            )
                .into_response(),
            ConsoleError::Internal(error) => {
                warn!(%error, "console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html(pages::message(
                        "Error",
                        "Something failed; the switch's log has the details.",
                    )),
                )
                    .into_response()
            }
        }
    }
}

impl From<talktime_store::StoreError> for ConsoleError {
    fn from(error: talktime_store::StoreError) -> Self {
        ConsoleError::Internal(error.to_string())
    }
}

/// Records what a console user did in the audit log, with the record before and after the
/// change where it has them: the console's one way to write it.
pub(crate) async fn audit(
    state: &ConsoleState,
    user: &LoggedIn,
    action: &str,
    subject: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), ConsoleError> {
    let before = before.map(|value| value.to_string());
    let after = after.map(|value| value.to_string());
    state
        .store
        .audit(
            Some(&user.user),
            action,
            subject,
            before.as_deref(),
            after.as_deref(),
            wall_clock_ms(),
        )
        .await?;
    Ok(())
}

/// The logged-in user of a request (its session cookie, alive, its user enabled).
#[derive(Debug)]
pub struct LoggedIn {
    pub user: User,
    pub csrf_token: String,
    token_hash: String,
}

impl FromRequestParts<ConsoleState> for LoggedIn {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let token =
            auth::cookie_value(&parts.headers, SESSION_COOKIE).ok_or(ConsoleError::LoggedOut)?;
        let token_hash = auth::token_hash(&token);
        let now = wall_clock_ms();
        let Some(SessionRow {
            user,
            csrf_token,
            created_at_ms,
            last_seen_ms,
        }) = state.store.session(&token_hash).await?
        else {
            return Err(ConsoleError::LoggedOut);
        };
        if !auth::session_alive(created_at_ms, last_seen_ms, now) {
            state.store.delete_session(&token_hash).await?;
            return Err(ConsoleError::LoggedOut);
        }
        // A reseller's user reaches its own pages only; the rest is not there for it.
        if user.role == talktime_store::Role::Reseller {
            match parts.uri.path() {
                "/console" => return Err(ConsoleError::ResellerHome),
                "/console/logout" => {}
                path if path.starts_with("/console/resellers") => {}
                path if path.starts_with("/console/tickets") => {}
                _ => return Err(ConsoleError::NotFound),
            }
        }
        // One write a minute at most per session, not one per page.
        if now - last_seen_ms > 60_000 {
            state.store.touch_session(&token_hash, now).await?;
        }
        Ok(LoggedIn {
            user,
            csrf_token,
            token_hash,
        })
    }
}

impl LoggedIn {
    /// Refuses a change the user's role may not make (support reads and recharges only).
    fn require_change(&self, why: &'static str) -> Result<(), ConsoleError> {
        if auth::may_change(&self.user) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(why))
        }
    }

    /// Refuses a change whose form lacks this session's CSRF token.
    fn check_csrf(&self, given: &str) -> Result<(), ConsoleError> {
        if auth::csrf_matches(&self.csrf_token, given) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(
                "The form's security token is missing or out of date: reload the page.",
            ))
        }
    }
}

async fn dashboard(
    State(state): State<ConsoleState>,
    user: LoggedIn,
) -> Result<Html<String>, ConsoleError> {
    let figures = dashboard_figures(&state, wall_clock_ms()).await?;
    Ok(Html(pages::dashboard(
        &user,
        state.metrics.gauges(),
        &figures,
    )))
}

async fn login_page() -> Html<String> {
    Html(pages::login(None))
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

async fn login(
    State(state): State<ConsoleState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let now = Instant::now();
    if !state.limiter.allows(peer.ip(), &form.name, now) {
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            Html(pages::login(Some(
                "Too many failed logins: wait a few minutes and try again.",
            ))),
        )
            .into_response());
    }
    let login = state.store.user_login(&form.name).await?;
    let password = form.password.clone();
    // Hashing takes tens of milliseconds: off the async workers.
    let verified = match login {
        Some(login) if !login.user.disabled => {
            let hash = login.password_hash.clone();
            let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
                .await
                .unwrap_or(false);
            ok.then_some(login.user)
        }
        _ => None,
    };
    let Some(user) = verified else {
        state.limiter.failed(peer.ip(), &form.name, now);
        return Ok((
            StatusCode::UNAUTHORIZED,
            Html(pages::login(Some("Wrong user name or password."))),
        )
            .into_response());
    };
    state.limiter.succeeded(peer.ip(), &form.name);
    // A new token at every login: a session fixed before it is worth nothing.
    let token = auth::random_hex(32);
    let csrf = auth::random_hex(32);
    let now_ms = wall_clock_ms();
    state
        .store
        .create_session(&auth::token_hash(&token), user.id, &csrf, now_ms)
        .await?;
    state
        .store
        .audit(
            Some(&user),
            "login",
            &format!("user {}", user.name),
            None,
            None,
            now_ms,
        )
        .await?;
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/console")).into_response())
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

async fn logout(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    state.store.delete_session(&user.token_hash).await?;
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/console/login"),
    )
        .into_response())
}

async fn calls_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
) -> Result<Html<String>, ConsoleError> {
    let calls = state.metrics.live_calls();
    Ok(Html(pages::calls(&user, &calls, wall_clock_ms())))
}

async fn hang_up(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(key): UrlPath<u64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may look at calls, not end them.")?;
    let call = state
        .metrics
        .live_calls()
        .into_iter()
        .find(|call| call.key == key)
        .ok_or(ConsoleError::NotFound)?;
    end_call(&state, &user, &call).await?;
    Ok(Redirect::to("/console/calls").into_response())
}

/// Asks the core to end a live call (BYE on both legs, settled, CDR cause `operator`) and
/// audits who did.
async fn end_call(
    state: &ConsoleState,
    user: &LoggedIn,
    call: &talktime_b2bua::monitor::LiveCall,
) -> Result<(), ConsoleError> {
    let input = Input::OperatorHangup {
        call: call.key,
        by: user.user.name.clone(),
    };
    state
        .core
        .send(input)
        .await
        .map_err(|_| ConsoleError::Internal("the switch is stopping".into()))?;
    state
        .store
        .audit(
            Some(&user.user),
            "hang_up",
            &format!("call {}", call.call_id),
            None,
            None,
            wall_clock_ms(),
        )
        .await?;
    Ok(())
}

async fn hang_up_account(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(account): UrlPath<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may look at calls, not end them.")?;
    let input = Input::OperatorHangupAccount {
        account,
        by: user.user.name.clone(),
    };
    state
        .core
        .send(input)
        .await
        .map_err(|_| ConsoleError::Internal("the switch is stopping".into()))?;
    state
        .store
        .audit(
            Some(&user.user),
            "hang_up_account",
            &format!("account {account}"),
            None,
            None,
            wall_clock_ms(),
        )
        .await?;
    Ok(Redirect::to("/console/calls").into_response())
}

async fn users_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
) -> Result<Html<String>, ConsoleError> {
    if user.user.role != talktime_store::Role::Admin {
        return Err(ConsoleError::Forbidden("Only an admin sees the users."));
    }
    let users = state.store.users().await?;
    let audit = state.store.audit_log(200).await?;
    Ok(Html(pages::users(&user, &users, &audit, None)))
}

#[derive(Deserialize)]
struct NewUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// Adds a console user (admins only); a bad name or short password is named at its field.
async fn add_user(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<NewUserForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    if user.user.role != talktime_store::Role::Admin {
        return Err(ConsoleError::Forbidden("Only an admin adds users."));
    }
    let refuse = |field: &'static str, text: String| (field, text);
    let refused = match talktime_store::Role::parse(form.role.trim()) {
        Err(error) => Some(refuse("name", error.to_string())),
        Ok(talktime_store::Role::Reseller) => Some(refuse(
            "name",
            "A reseller's user is added with talktime users add --role reseller --reseller NAME."
                .to_owned(),
        )),
        Ok(_) if form.password.chars().count() < auth::MIN_PASSWORD_CHARS => Some(refuse(
            "password",
            format!("At least {} characters.", auth::MIN_PASSWORD_CHARS),
        )),
        Ok(role) => {
            let password = form.password.clone();
            let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
                .await
                .map_err(|error| ConsoleError::Internal(error.to_string()))?
                .map_err(|error| ConsoleError::Internal(error.to_string()))?;
            match state
                .store
                .create_user(&form.name, &hash, role, wall_clock_ms())
                .await
            {
                Ok(created) => {
                    state
                        .store
                        .audit(
                            Some(&user.user),
                            "user_add",
                            &format!("user {}", created.name),
                            None,
                            Some(role.as_str()),
                            wall_clock_ms(),
                        )
                        .await?;
                    None
                }
                Err(talktime_store::StoreError::InvalidArgument(message)) => {
                    Some(refuse("name", message))
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    match refused {
        None => Ok(Redirect::to("/console/users").into_response()),
        Some((field, message)) => {
            let users = state.store.users().await?;
            let audit = state.store.audit_log(200).await?;
            let page = pages::users(&user, &users, &audit, Some((field, &message)));
            Ok((StatusCode::BAD_REQUEST, Html(page)).into_response())
        }
    }
}

#[derive(Deserialize)]
struct DisabledForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    disabled: String,
}

/// Disables a user (their sessions end) or enables them again; not oneself.
async fn set_user_disabled(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(name): UrlPath<String>,
    Form(form): Form<DisabledForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    if user.user.role != talktime_store::Role::Admin {
        return Err(ConsoleError::Forbidden("Only an admin changes users."));
    }
    if name == user.user.name {
        return Err(ConsoleError::Forbidden("You cannot disable yourself."));
    }
    let disabled = form.disabled == "true";
    match state.store.set_user_disabled(&name, disabled).await {
        Ok(()) => {}
        Err(talktime_store::StoreError::InvalidArgument(_)) => return Err(ConsoleError::NotFound),
        Err(error) => return Err(error.into()),
    }
    let action = if disabled {
        "user_disable"
    } else {
        "user_enable"
    };
    state
        .store
        .audit(
            Some(&user.user),
            action,
            &format!("user {name}"),
            None,
            None,
            wall_clock_ms(),
        )
        .await?;
    Ok(Redirect::to("/console/users").into_response())
}

/// The CDR search form's fields, as typed (all optional; dates are UTC days).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CdrQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub carrier: String,
    #[serde(default)]
    pub cause: String,
    #[serde(default)]
    pub prefix: String,
    /// The page's cursor: `start_ms-id` of the last row of the previous page.
    #[serde(default)]
    pub before: String,
}

/// Rows per CDR page.
const CDR_PAGE: i64 = 100;

impl CdrQuery {
    /// The filter, or the message for the field at fault.
    pub(crate) fn filter(
        &self,
        now_ms: i64,
    ) -> Result<(CdrFilter, Option<CdrCursor>), (&'static str, String)> {
        let day = |text: &str,
                   field: &'static str,
                   default: i64|
         -> Result<i64, (&'static str, String)> {
            if text.trim().is_empty() {
                return Ok(default);
            }
            crate::admin_http::instant_ms(text.trim())
                .map_err(|_| (field, format!("{text:?} is not a date (YYYY-MM-DD)")))
        };
        let from_ms = day(&self.from, "from", 0)?;
        let to_ms = day(&self.to, "to", now_ms + 86_400_000)?;
        if to_ms <= from_ms {
            return Err(("to", "must be after from".into()));
        }
        let account_id = match self.account.trim() {
            "" => None,
            text => Some(
                text.parse::<i64>()
                    .map_err(|_| ("account", format!("{text:?} is not an account number")))?,
            ),
        };
        let prefix = self.prefix.trim();
        if !prefix.chars().all(|c| c.is_ascii_digit()) {
            return Err(("prefix", format!("{prefix:?} is not digits")));
        }
        let text = |value: &str| Some(value.trim().to_owned()).filter(|value| !value.is_empty());
        let before = match self.before.split_once('-') {
            Some((start, id)) => Some(CdrCursor {
                start_ms: start
                    .parse()
                    .map_err(|_| ("before", "bad page".to_owned()))?,
                id: id.parse().map_err(|_| ("before", "bad page".to_owned()))?,
            }),
            None => None,
        };
        Ok((
            CdrFilter {
                from_ms,
                to_ms,
                account_id,
                carrier: text(&self.carrier),
                cause: text(&self.cause),
                destination_prefix: text(prefix),
                reseller_tree: None,
            },
            before,
        ))
    }
}

async fn cdrs_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    axum::extract::Query(query): axum::extract::Query<CdrQuery>,
) -> Result<Response, ConsoleError> {
    let (filter, before) = match query.filter(wall_clock_ms()) {
        Ok(parsed) => parsed,
        Err((field, message)) => {
            let page = pages::cdrs(&user, &query, &[], None, Some((field, &message)));
            return Ok((StatusCode::BAD_REQUEST, Html(page)).into_response());
        }
    };
    let rows = state.store.search_cdrs(&filter, before, CDR_PAGE).await?;
    let next = (rows.len() as i64 == CDR_PAGE)
        .then(|| rows.last().map(|(cursor, _)| *cursor))
        .flatten();
    Ok(Html(pages::cdrs(&user, &query, &rows, next, None)).into_response())
}

/// The search's CDRs as a CSV download, streamed page by page.
async fn cdrs_export(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    axum::extract::Query(query): axum::extract::Query<CdrQuery>,
) -> Result<Response, ConsoleError> {
    let (filter, _) = match query.filter(wall_clock_ms()) {
        Ok(parsed) => parsed,
        Err((field, message)) => {
            let page = pages::cdrs(&user, &query, &[], None, Some((field, &message)));
            return Ok((StatusCode::BAD_REQUEST, Html(page)).into_response());
        }
    };
    Ok(cdr_download(state.store.clone(), filter))
}

/// A streamed CSV of CDRs with the headers of a download.
pub(crate) fn cdr_download(store: Store, filter: CdrFilter) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cdrs.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        crate::cdr_export::csv_body(store, filter),
    )
        .into_response()
}

/// The report form: a UTC day range and the grouping.
#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub by: String,
}

async fn reports_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    axum::extract::Query(query): axum::extract::Query<ReportQuery>,
) -> Result<Response, ConsoleError> {
    let now = wall_clock_ms();
    let grouping = match query.by.as_str() {
        "" | "carrier" => talktime_store::TrafficGrouping::Carrier,
        "access_number" => talktime_store::TrafficGrouping::AccessNumber,
        "account" => talktime_store::TrafficGrouping::Account,
        "day" => talktime_store::TrafficGrouping::Day,
        _ => {
            let page = pages::reports(
                &user,
                &query,
                &[],
                Some(("by", "carrier, access_number, account or day")),
            );
            return Ok((StatusCode::BAD_REQUEST, Html(page)).into_response());
        }
    };
    let cdr_query = CdrQuery {
        from: query.from.clone(),
        to: query.to.clone(),
        ..CdrQuery::default()
    };
    let filter = match cdr_query.filter(now) {
        Ok((filter, _)) => filter,
        Err((field, message)) => {
            let page = pages::reports(&user, &query, &[], Some((field, &message)));
            return Ok((StatusCode::BAD_REQUEST, Html(page)).into_response());
        }
    };
    let mut rows = state
        .store
        .traffic_report(filter.from_ms, filter.to_ms, grouping)
        .await?;
    if grouping == talktime_store::TrafficGrouping::Day {
        label_days(&mut rows);
    }
    Ok(Html(pages::reports(&user, &query, &rows, None)).into_response())
}

/// Day groups (days since the epoch) as dates, YYYY-MM-DD.
pub fn label_days(rows: &mut [talktime_store::TrafficRow]) {
    for row in rows {
        let date = row
            .group
            .as_deref()
            .and_then(|days| days.parse::<i64>().ok())
            .and_then(talktime_billing::Date::from_days_since_epoch);
        if let Some(date) = date {
            row.group = Some(date.to_string());
        }
    }
}

/// What the dashboard shows besides the gauges: the last hour's ASR and ACD, today's revenue
/// and margin, and calls per hour over the last day (all from the CDRs).
#[derive(Debug)]
pub struct DashboardFigures {
    pub calls_per_second_hundredths: u64,
    pub last_hour: talktime_store::TrafficRow,
    pub today: talktime_store::TrafficRow,
    /// (hours since the epoch, attempts, answered), oldest first, 24 of them.
    pub hours: Vec<(i64, i64, i64)>,
}

async fn dashboard_figures(
    state: &ConsoleState,
    now_ms: i64,
) -> Result<DashboardFigures, ConsoleError> {
    use talktime_store::{TrafficGrouping, TrafficRow};
    const HOUR: i64 = 3_600_000;
    let day_start = now_ms - now_ms.rem_euclid(86_400_000);
    let hourly = state
        .store
        .traffic_report(now_ms - 24 * HOUR, now_ms + 1, TrafficGrouping::Hour)
        .await?;
    let last_hour = state
        .store
        .traffic_report(now_ms - HOUR, now_ms + 1, TrafficGrouping::Hour)
        .await?;
    let today = state
        .store
        .traffic_report(day_start, now_ms + 1, TrafficGrouping::Day)
        .await?;
    let current_hour = now_ms / HOUR;
    let hours = (current_hour - 23..=current_hour)
        .map(|hour| {
            let row = hourly
                .iter()
                .find(|row| row.group.as_deref() == Some(hour.to_string().as_str()));
            (
                hour,
                row.map_or(0, |row| row.attempts),
                row.map_or(0, |row| row.answered),
            )
        })
        .collect();
    Ok(DashboardFigures {
        calls_per_second_hundredths: state.metrics.calls_per_second_hundredths(),
        last_hour: TrafficRow::total(None, &last_hour),
        today: TrafficRow::total(None, &today),
        hours,
    })
}
