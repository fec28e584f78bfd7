//! The HTTP admin API (JSON; money as exact decimal text, trailing zeros dropped): accounts, recharges, card batches, CDRs, traffic reports and
//! prompt uploads, for operators' tools and scripts. Every route but `/api/health` needs
//! `Authorization: Bearer <token>` (`[admin] token`, or the one generated into
//! `<data_dir>/admin.token` on first start). It shares the switch's ledger (one pool) and
//! hands uploaded prompts to the core, so callers hear them on their next playback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use talktime_engine::Language;
use talktime_media::Prompt;
use talktime_store::{
    Cdr, Store, StoreError, TrafficGrouping, TrafficRow, format_micros, parse_micros,
};
use tracing::{info, warn};

use crate::admin::{BatchError, BatchOrder};
use crate::openapi::{
    AccountView, CdrView, ErrorBody, Health, PromptStored, RechargeReply, TrafficView,
};
use crate::server::{CoreSender, wall_clock_ms};

/// Largest prompt accepted (about 10 minutes of 16-bit 8 kHz WAV; MP3s are far smaller).
const PROMPT_LIMIT_BYTES: usize = 16 << 20;
/// Largest card batch per request (a batch holds the SQLite write lock while it runs).
const BATCH_LIMIT: u32 = 10_000;
/// Rows per CDR page unless the request asks for fewer.
const CDR_PAGE: i64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("ledger: {0}")]
    Store(#[from] StoreError),
    #[error("cannot write the prompt: {0}")]
    Io(#[from] std::io::Error),
}

impl AdminError {
    fn status(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::NotFound(_) | AdminError::Store(StoreError::NotFound { .. }) => {
                StatusCode::NOT_FOUND
            }
            AdminError::BadRequest(_)
            | AdminError::Store(
                StoreError::InvalidArgument(_)
                | StoreError::DisposableCard { .. }
                | StoreError::PinSpaceExhausted { .. },
            ) => StatusCode::BAD_REQUEST,
            AdminError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Store(_) | AdminError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        // A failure of ours is logged in full and answered without its internals (paths,
        // SQL, driver text are for the operator's log, not for whoever called).
        let text = if status == StatusCode::INTERNAL_SERVER_ERROR {
            warn!(error = %self, "admin request failed");
            "internal error: the switch's log has the details".to_owned()
        } else {
            self.to_string()
        };
        let mut response = (status, Json(json!({ "error": text }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// What every handler shares.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // holds the token
pub struct AdminState {
    pub(crate) store: Store,
    token: Arc<str>,
    prompts_dir: PathBuf,
    core: CoreSender,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    pub(crate) routing: crate::routing_live::RoutingEditor,
    /// A callback access number is configured (web callbacks run its IVR).
    pub(crate) callbacks: bool,
    /// `[subscribers] realm`: subscribers' passwords are hashed with it.
    pub(crate) subscriber_realm: String,
    /// `[cluster] node_lease_s` in milliseconds: a node silent longer is dead.
    pub(crate) node_lease_ms: i64,
}

/// What the API needs of the switch's configuration.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// A callback access number is configured.
    pub callbacks: bool,
    pub subscriber_realm: String,
    /// `[cluster] node_lease_s` in milliseconds.
    pub node_lease_ms: i64,
    pub portal: talktime_b2bua::config::PortalConfig,
    /// Card payments in the portal (`[portal] payment_api`).
    pub payments: Option<crate::portal::PaymentProvider>,
    /// Digits of the portal's phone confirmation code: what the IVR takes as a PIN.
    pub claim_code_digits: usize,
}

impl AdminState {
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn callback_desk(&self) -> crate::callbacks::CallbackDesk {
        crate::callbacks::CallbackDesk {
            store: self.store.clone(),
            core: self.core.clone(),
            enabled: self.callbacks,
        }
    }
}

/// Where and how the admin API listens.
#[allow(missing_debug_implementations)] // TlsAcceptor has no Debug
pub struct Listener {
    pub listen: SocketAddr,
    pub limits: crate::http_serve::HttpLimits,
    /// HTTPS when given.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Binds the admin listener and serves it in its own task.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    Listener {
        listen,
        limits,
        tls,
    }: Listener,
    token: String,
    store: Store,
    prompts_dir: PathBuf,
    core: CoreSender,
    metrics: Arc<crate::metrics::Metrics>,
    routing: crate::routing_live::RoutingEditor,
    settings: ApiSettings,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let https = tls.is_some();
    let bound = listener.local_addr()?;
    let console = crate::console::ConsoleState {
        store: store.clone(),
        core: core.clone(),
        metrics: metrics.clone(),
        secure_cookies: https,
        limiter: Arc::default(),
        routing: routing.clone(),
        prompts_dir: prompts_dir.clone(),
        callbacks: settings.callbacks,
        subscriber_realm: settings.subscriber_realm.clone(),
    };
    let portal = crate::portal::PortalState {
        store: store.clone(),
        secure_cookies: https,
        limiter: Arc::default(),
        signups: Arc::default(),
        settings: Arc::new(settings.portal.clone()),
        payments: settings.payments.clone(),
        claim_code_digits: settings.claim_code_digits,
    };
    let state = AdminState {
        store,
        token: token.into(),
        prompts_dir,
        core,
        metrics,
        routing,
        callbacks: settings.callbacks,
        subscriber_realm: settings.subscriber_realm,
        node_lease_ms: settings.node_lease_ms,
    };
    tokio::spawn(crate::http_serve::serve(
        listener,
        router(state)
            .merge(crate::console::router(console))
            .merge(crate::portal::router(portal)),
        limits,
        tls,
    ));
    let scheme = if https { "https" } else { "http" };
    info!(%bound, https, "admin API listening");
    info!("console at {scheme}://{bound}/console");
    info!("customer portal at {scheme}://{bound}/portal");
    Ok(bound)
}

/// Every route but the health check sits behind [`require_token`], which runs before any
/// body is read, so a route added later cannot forget it.
fn router(state: AdminState) -> Router {
    let protected = Router::new()
        .route("/api/accounts/{id}", get(account))
        .route("/api/accounts/{id}/recharge", post(recharge))
        .route("/api/accounts/{id}/callback", post(crate::callbacks::place))
        .route(
            "/api/accounts/{id}/subscribers",
            get(crate::subscribers::list).post(crate::subscribers::create),
        )
        .route(
            "/api/subscribers/{username}/status",
            put(crate::subscribers::set_status),
        )
        .route(
            "/api/resellers",
            get(crate::resellers::list).post(crate::resellers::create),
        )
        .route("/api/resellers/{id}", get(crate::resellers::show))
        .route(
            "/api/resellers/{id}/statement",
            get(crate::resellers::statement),
        )
        .route(
            "/api/resellers/{id}/customers",
            post(crate::resellers::add_customer),
        )
        .route(
            "/api/resellers/{id}/transfers",
            post(crate::resellers::transfer),
        )
        .route(
            "/api/accounts/{id}/reseller",
            put(crate::resellers::set_customer),
        )
        .route("/api/cards/batches", post(card_batch))
        .route("/api/vouchers/batches", post(crate::vouchers::create_batch))
        .route("/api/vouchers/batches/{id}", get(crate::vouchers::batch))
        .route("/api/vouchers/{id}/disable", post(crate::vouchers::disable))
        .route(
            "/api/accounts/{id}/recharge/voucher",
            post(crate::vouchers::redeem),
        )
        .route(
            "/api/accounts/{id}/speed_dials",
            get(crate::vouchers::speed_dials),
        )
        .route(
            "/api/accounts/{id}/speed_dials/{key}",
            put(crate::vouchers::put_speed_dial).delete(crate::vouchers::delete_speed_dial),
        )
        .route("/api/cdrs", get(cdrs))
        .route("/api/cdrs/export", get(cdrs_export))
        .route("/api/reports/traffic", get(traffic))
        .route("/api/carriers", get(crate::admin_routing::carriers))
        .route(
            "/api/carriers/{name}",
            put(crate::admin_routing::put_carrier).delete(crate::admin_routing::delete_carrier),
        )
        .route("/api/dial_plans", get(crate::admin_routing::dial_plans))
        .route(
            "/api/dial_plans/{name}",
            put(crate::admin_routing::put_dial_plan).delete(crate::admin_routing::delete_dial_plan),
        )
        .route("/api/routes/explain", get(crate::admin_routing::explain))
        .route("/api/nodes", get(crate::nodes::list))
        .route("/api/nodes/{node}/drain", post(crate::nodes::drain))
        .route("/metrics", get(metrics))
        .route(
            "/api/prompts/{language}/{name}",
            put(upload_prompt).layer(DefaultBodyLimit::max(PROMPT_LIMIT_BYTES)),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(crate::openapi::document))
        .route("/api/docs", get(crate::openapi::page))
        .merge(protected)
        .layer(middleware::map_response(json_errors))
        .with_state(state)
}

/// Refusals made before a handler runs (a path that is not a number, a body that is not
/// JSON, a body too large) answer in the API's JSON error shape too.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let mut answer = (status, Json(json!({ "error": text }))).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// The token from the configuration, else the one kept in the data directory (made on first
/// start, readable by the owner only).
pub fn admin_token(configured: &str, data_dir: &Path) -> std::io::Result<String> {
    if !configured.is_empty() {
        return Ok(configured.to_owned());
    }
    let path = data_dir.join("admin.token");
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_owned()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let token = random_token();
    write_private(&path, token.as_bytes())?;
    info!(path = %path.display(), "admin API token generated");
    Ok(token)
}

fn random_token() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16usize)]))
        .collect()
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// The shared token acts as an admin; a user's own token (`talktime users token`) acts with
/// its user's role: support may read and recharge, nothing else.
async fn require_token(
    State(state): State<AdminState>,
    mut request: Request,
    next: Next,
) -> Result<Response, AdminError> {
    if authorize(&state, request.headers()).is_ok() {
        request.extensions_mut().insert(ApiCaller("api".into()));
        request.extensions_mut().insert(Scope(None));
        return Ok(next.run(request).await);
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(AdminError::Unauthorized)?;
    let hash = crate::console::auth::token_hash(given);
    let user = state
        .store
        .api_token_user(&hash)
        .await?
        .ok_or(AdminError::Unauthorized)?;
    let reads = request.method() == axum::http::Method::GET;
    let path = request.uri().path();
    let recharges = path.ends_with("/recharge")
        || path.ends_with("/recharge/voucher")
        || path.ends_with("/callback");
    if user.role == talktime_store::Role::Support && !reads && !recharges {
        return Err(AdminError::Forbidden(format!(
            "user {} ({}) may read and recharge, not this",
            user.name,
            user.role.as_str()
        )));
    }
    let scope = match (user.role, user.reseller_id) {
        (talktime_store::Role::Reseller, Some(root)) if reseller_route(request.method(), path) => {
            Scope(Some(root))
        }
        (talktime_store::Role::Reseller, _) => {
            return Err(AdminError::Forbidden(format!(
                "user {} is a reseller's user: its reseller's routes only",
                user.name
            )));
        }
        _ => Scope(None),
    };
    request.extensions_mut().insert(scope);
    request.extensions_mut().insert(ApiCaller(user.name));
    Ok(next.run(request).await)
}

/// What an API request may see: everything (`None`), or one reseller's tree (a reseller's
/// user, issue 16). Routes a reseller's user may call check it; the rest refuse such users.
#[derive(Clone, Copy, Debug)]
pub struct Scope(pub Option<i64>);

impl Scope {
    /// Not found unless the scope sees the reseller: a reseller's user learns nothing of
    /// other trees, not even that an id exists.
    pub async fn reseller(self, store: &talktime_store::Store, id: i64) -> Result<(), AdminError> {
        match self.0 {
            Some(root) if !store.reseller_in_tree(id, root).await? => {
                Err(AdminError::NotFound(format!("no reseller {id}")))
            }
            _ => Ok(()),
        }
    }

    /// Not found unless the scope sees the account.
    pub async fn account(self, store: &talktime_store::Store, id: i64) -> Result<(), AdminError> {
        match self.0 {
            Some(root) if !store.account_in_tree(id, root).await? => {
                Err(AdminError::NotFound(format!("no account {id}")))
            }
            _ => Ok(()),
        }
    }
}

/// The routes a reseller's user may call (each checks the scope): its tree's resellers,
/// statements, customers and transfers, and its customers' accounts. Anything else is refused.
fn reseller_route(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "resellers"] | ["api", "resellers", _] | ["api", "resellers", _, "statement"] => {
            method == Method::GET
        }
        ["api", "resellers", _, "customers"] | ["api", "resellers", _, "transfers"] => {
            method == Method::POST
        }
        ["api", "accounts", _] | ["api", "cdrs", "export"] => method == Method::GET,
        _ => false,
    }
}

/// Who made an API request, for the audit log: `api` for the shared token, else the user
/// whose token it was.
#[derive(Clone, Debug)]
pub struct ApiCaller(pub String);

/// Compares the bearer token in time independent of where the first difference is.
fn authorize(state: &AdminState, headers: &HeaderMap) -> Result<(), AdminError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .as_bytes();
    let wanted = state.token.as_bytes();
    let differences = given
        .iter()
        .zip(wanted)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if given.len() == wanted.len() && differences == 0 {
        Ok(())
    } else {
        Err(AdminError::Unauthorized)
    }
}

/// Prometheus scrapes with the bearer token (`authorization: credentials_file` in its job).
async fn metrics(State(state): State<AdminState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The switch answers (no token needed).
#[utoipa::path(get, path = "/api/health", tag = "switch", security(()),
    responses((status = 200, body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// An account's balance, state and calls in progress.
#[utoipa::path(get, path = "/api/accounts/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn account(
    State(state): State<AdminState>,
    Extension(scope): Extension<Scope>,
    UrlPath(id): UrlPath<i64>,
) -> Result<Json<AccountView>, AdminError> {
    scope.account(&state.store, id).await?;
    let account = state.store.account(id).await?;
    let in_progress = state.store.open_reservations(id).await?.len();
    let reseller_id = state.store.account_reseller(id).await?;
    Ok(Json(AccountView {
        reseller_id,
        id,
        name: account.name,
        balance: format_micros(account.balance_micros),
        currency: account.currency,
        status: account.status.as_str().to_owned(),
        calls_in_progress: in_progress,
        forward_destination: account
            .forward_destination
            .as_ref()
            .map(|number| number.expose().clone()),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RechargeRequest {
    /// Decimal text in the account's currency, e.g. "10.00" (never a JSON float).
    amount: String,
    reference: Option<String>,
}

/// Credits an account; with an `Idempotency-Key` a retried request credits once.
#[utoipa::path(post, path = "/api/accounts/{id}/recharge", tag = "accounts",
    params(("id" = i64, Path, description = "Account id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Credits once per key")),
    request_body = RechargeRequest,
    responses((status = 200, body = RechargeReply), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn recharge(
    State(state): State<AdminState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<i64>,
    Json(request): Json<RechargeRequest>,
) -> Result<Json<RechargeReply>, AdminError> {
    let micros = parse_micros(&request.amount)
        .map_err(|error| AdminError::BadRequest(format!("amount: {error}")))?;
    let key = headers
        .get("idempotency-key")
        .map(|value| {
            value
                .to_str()
                .map_err(|_| AdminError::BadRequest("Idempotency-Key must be text".into()))
        })
        .transpose()?;
    let now = wall_clock_ms();
    let (balance, replayed) = match key {
        // A retry with the same key (the first answer lost) credits nothing more.
        Some(key) => {
            let outcome = state.store.recharge_once(id, micros, key, now).await?;
            (outcome.balance_micros, outcome.replayed)
        }
        None => {
            let reference = request.reference.as_deref().unwrap_or("admin-api");
            let balance = state
                .store
                .recharge(id, micros, Some(reference), now)
                .await?;
            (balance, false)
        }
    };
    info!(account = id, amount = %request.amount, replayed, "recharge through the admin API");
    Ok(Json(RechargeReply {
        id,
        balance: format_micros(balance),
        replayed,
    }))
}

/// Generates a batch and answers with its CSV (the PINs: keep the response safe).
/// The batch's cards with their PINs: CSV, or XLSX when `Accept` asks for it.
#[utoipa::path(post, path = "/api/cards/batches", tag = "cards",
    request_body = BatchOrder,
    responses((status = 200, description = "The cards with their PINs (the only time they can \
        be read)", content(
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn card_batch(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Json(order): Json<BatchOrder>,
) -> Result<Response, AdminError> {
    let as_xlsx = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains(crate::xlsx::CONTENT_TYPE));
    if order.count == 0 || order.count > BATCH_LIMIT {
        return Err(AdminError::BadRequest(format!(
            "count must be 1..={BATCH_LIMIT}"
        )));
    }
    let batch = order
        .generate(&state.store, wall_clock_ms())
        .await
        .map_err(|error| match error {
            BatchError::UnknownTariff(_) => AdminError::NotFound(error.to_string()),
            BatchError::Value(_) | BatchError::CurrencyMismatch { .. } => {
                AdminError::BadRequest(error.to_string())
            }
            BatchError::Store(error) => AdminError::Store(error),
        })?;
    let mut csv = Vec::new();
    state.store.export_batch_csv(&batch, &mut csv).await?;
    info!(
        batch = batch.id,
        cards = batch.card_count,
        "card batch generated through the admin API"
    );
    let (content_type, _, body) = crate::xlsx::batch_download(batch.id, csv, as_xlsx)
        .map_err(|error| AdminError::Io(std::io::Error::other(error)))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::HeaderName::from_static("x-batch-id"),
                batch.id.to_string(),
            ),
        ],
        body,
    )
        .into_response())
}

/// A time window: `from` and `to` as epoch milliseconds or UTC dates (YYYY-MM-DD; `to` is
/// exclusive).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Window {
    /// Epoch ms or a UTC day (YYYY-MM-DD).
    from: String,
    /// Epoch ms or a UTC day (YYYY-MM-DD), exclusive.
    to: String,
    /// Rows at most (CDRs; 1 to 1000).
    limit: Option<i64>,
    /// Reports: carrier, access_number, account or day (UTC).
    by: Option<String>,
}

impl Window {
    fn bounds(&self) -> Result<(i64, i64), AdminError> {
        let from = instant_ms(&self.from)?;
        let to = instant_ms(&self.to)?;
        if to <= from {
            return Err(AdminError::BadRequest("`to` must be after `from`".into()));
        }
        Ok((from, to))
    }
}

/// Epoch milliseconds from digits, or from a UTC date YYYY-MM-DD (the billing crate's
/// calendar, the one home of dates).
pub(crate) fn instant_ms(text: &str) -> Result<i64, AdminError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let date: talktime_billing::Date = text.parse().map_err(|_| {
        AdminError::BadRequest(format!("{text:?} is neither epoch ms nor YYYY-MM-DD"))
    })?;
    Ok(date.days_since_epoch() * 86_400_000)
}

/// CDRs started in the window, oldest first.
#[utoipa::path(get, path = "/api/cdrs", tag = "cdrs", params(Window),
    responses((status = 200, body = Vec<CdrView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn cdrs(
    State(state): State<AdminState>,
    Query(window): Query<Window>,
) -> Result<Json<Vec<CdrView>>, AdminError> {
    let (from, to) = window.bounds()?;
    let limit = window.limit.unwrap_or(CDR_PAGE).clamp(1, CDR_PAGE);
    let rows = state.store.cdrs_between(from, to, limit).await?;
    Ok(Json(rows.iter().map(cdr_view).collect()))
}

/// Every CDR the search selects as CSV, newest first, streamed (any size).
#[utoipa::path(get, path = "/api/cdrs/export", tag = "cdrs",
    params(crate::console::CdrQuery),
    responses((status = 200, description = "CSV, a header then one row per CDR",
            content_type = "text/csv", body = String),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn cdrs_export(
    State(state): State<AdminState>,
    Extension(scope): Extension<Scope>,
    Query(query): Query<crate::console::CdrQuery>,
) -> Result<Response, AdminError> {
    let (mut filter, _) = query
        .filter(wall_clock_ms())
        .map_err(|(field, message)| AdminError::BadRequest(format!("{field}: {message}")))?;
    // A reseller's user gets its tree's calls only, and another tree's account is not there.
    if let Some(account) = filter.account_id {
        scope.account(&state.store, account).await?;
    }
    filter.reseller_tree = scope.0;
    Ok(crate::console::cdr_download(state.store.clone(), filter))
}

fn cdr_view(cdr: &Cdr) -> CdrView {
    CdrView {
        call_id: cdr.call_id.clone(),
        attempt: cdr.attempt,
        account_id: cdr.account_id,
        card_id: cdr.card_id,
        caller_id: cdr.caller_id.as_ref().map(|number| number.expose().clone()),
        access_number: cdr.access_number.clone(),
        destination: cdr.destination.expose().clone(),
        carrier: cdr.carrier.clone(),
        start_ms: cdr.start_ms,
        answer_ms: cdr.answer_ms,
        end_ms: cdr.end_ms,
        billed_seconds: cdr.billed_seconds,
        total: format_micros(cdr.total_micros),
        tax: format_micros(cdr.tax_micros),
        buy_cost: format_micros(cdr.buy_cost_micros),
        sip_code: cdr.sip_code,
        q850_cause: cdr.q850_cause,
        hangup_by: cdr.hangup_by.clone(),
        disconnect_cause: cdr.disconnect_cause.clone(),
    }
}

/// Attempts, answers, ASR, ACD, minutes, revenue, cost and margin per group.
#[utoipa::path(get, path = "/api/reports/traffic", tag = "reports", params(Window),
    responses((status = 200, body = Vec<TrafficView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn traffic(
    State(state): State<AdminState>,
    Query(window): Query<Window>,
) -> Result<Json<Vec<TrafficView>>, AdminError> {
    let (from, to) = window.bounds()?;
    let grouping = match window.by.as_deref().unwrap_or("carrier") {
        "carrier" => TrafficGrouping::Carrier,
        "access_number" => TrafficGrouping::AccessNumber,
        "account" => TrafficGrouping::Account,
        "day" => TrafficGrouping::Day,
        other => {
            return Err(AdminError::BadRequest(format!(
                "by={other}: use carrier, access_number, account or day"
            )));
        }
    };
    let mut rows = state.store.traffic_report(from, to, grouping).await?;
    if grouping == TrafficGrouping::Day {
        crate::console::label_days(&mut rows);
    }
    Ok(Json(rows.iter().map(traffic_view).collect()))
}

fn traffic_view(row: &TrafficRow) -> TrafficView {
    TrafficView {
        group: row.group.clone(),
        attempts: row.attempts,
        answered: row.answered,
        asr_percent: row.asr_percent().map(|asr| asr.normalize().to_string()),
        acd_seconds: row.acd_seconds().map(|acd| acd.normalize().to_string()),
        talk_seconds: row.talk_ms / 1000,
        billed_seconds: row.billed_seconds,
        revenue: format_micros(row.revenue_micros),
        tax: format_micros(row.tax_micros),
        cost: format_micros(row.cost_micros),
        margin: format_micros(row.margin_micros()),
    }
}

/// Stores a WAV or MP3 prompt after decoding it (a file the IVR could not play is refused
/// with the decoder's reason) and hands it to the running switch.
#[utoipa::path(put, path = "/api/prompts/{language}/{name}", tag = "prompts",
    params(("language" = String, Path, description = "en, es, fr, ..."),
        ("name" = String, Path, description = "1 to 64 of a-z, 0-9, _ and -")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "A WAV or MP3 file"),
    responses((status = 201, body = PromptStored), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "Larger than 16 MB"),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn upload_prompt(
    State(state): State<AdminState>,
    UrlPath((language, name)): UrlPath<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<PromptStored>), AdminError> {
    let stored = store_prompt(&state.prompts_dir, &state.core, &language, &name, body).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// Decodes a WAV or MP3 prompt (a file the IVR could not play is refused with the decoder's
/// reason), writes it into the prompts directory and hands it to the running switch: the
/// API's upload and the console's.
pub(crate) async fn store_prompt(
    prompts_dir: &Path,
    core: &CoreSender,
    language: &str,
    name: &str,
    body: Bytes,
) -> Result<PromptStored, AdminError> {
    let language = Language::from_code(language)
        .filter(|language| crate::startup::prompt_languages(prompts_dir).contains(language))
        .ok_or_else(|| AdminError::NotFound(format!("no language {language:?}")))?;
    if !is_prompt_name(name) {
        return Err(AdminError::BadRequest(
            "a prompt name is 1 to 64 of a-z, 0-9, _ and -".into(),
        ));
    }
    let decoded = tokio::task::spawn_blocking({
        let body = body.clone();
        move || Prompt::from_file_bytes(&body)
    })
    .await
    .map_err(|error| AdminError::Unprocessable(format!("decoder stopped: {error}")))?;
    let prompt = decoded.map_err(|error| AdminError::Unprocessable(error.to_string()))?;
    let extension = if body.starts_with(b"RIFF") {
        "wav"
    } else {
        "mp3"
    };
    let directory = prompts_dir.join(language.code());
    replace_prompt_file(&directory, name, extension, &body).await?;
    let key = format!("{}/{name}", language.code());
    let duration_ms = prompt.duration().as_millis();
    // The core may be gone at shutdown; the file is written either way.
    let _ = core
        .send(talktime_b2bua::Input::PromptUploaded {
            name: key.clone(),
            prompt,
        })
        .await;
    info!(prompt = %key, duration_ms, "prompt uploaded");
    Ok(PromptStored {
        prompt: key,
        format: extension.to_owned(),
        duration_ms: u64::try_from(duration_ms).unwrap_or(u64::MAX),
    })
}

pub(crate) fn is_prompt_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"_-".contains(&byte))
}

/// Writes beside the final name and renames over it (a reader never sees half a file), then
/// removes the same prompt in the other format so start-up loads only the new one.
async fn replace_prompt_file(
    directory: &Path,
    name: &str,
    extension: &str,
    bytes: &[u8],
) -> Result<(), AdminError> {
    tokio::fs::create_dir_all(directory).await?;
    let final_path = directory.join(format!("{name}.{extension}"));
    let temporary = directory.join(format!(".{name}.{extension}.upload"));
    tokio::fs::write(&temporary, bytes).await?;
    tokio::fs::rename(&temporary, &final_path).await?;
    let other = if extension == "wav" { "mp3" } else { "wav" };
    match tokio::fs::remove_file(directory.join(format!("{name}.{other}"))).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_become_utc_midnight_epoch_ms() {
        assert_eq!(instant_ms("1970-01-01").ok(), Some(0));
        assert_eq!(instant_ms("2026-11-23").ok(), Some(1_795_392_000_000));
        assert_eq!(instant_ms("2000-03-01").ok(), Some(951_868_800_000));
        assert_eq!(instant_ms("1234").ok(), Some(1234));
        assert!(instant_ms("2026-13-01").is_err());
        assert!(instant_ms("yesterday").is_err());
    }

    #[test]
    fn prompt_names_are_plain() {
        assert!(is_prompt_name("welcome"));
        assert!(is_prompt_name("enter_pin-2"));
        assert!(!is_prompt_name("../etc/passwd"));
        assert!(!is_prompt_name("Welcome"));
        assert!(!is_prompt_name(""));
        assert!(!is_prompt_name(&"a".repeat(65)));
    }
}
