//! SIP subscribers for operators (issue 16): `talktime subscribers add|list|disable|enable`,
//! and the ledger's answer when the switch checks a subscriber's digest
//! (crates/b2bua/src/subscribers.rs).

use std::path::PathBuf;

use clap::Subcommand;
use talktime_b2bua::ledger::SubscriberAuth;
use talktime_engine::{AccountId, AccountInfo, Language};
use talktime_pii::Pii;
use talktime_sip::auth::{Algorithm, compute_ha1};
use talktime_store::Store;
use tracing::warn;

use crate::admin::AccountArgs;
use crate::admin::LedgerArgs;
use crate::server::wall_clock_ms;

/// Random passwords are this long (letters and digits: about 95 bits).
const PASSWORD_LENGTH: usize = 16;
const MIN_PASSWORD_LENGTH: usize = 8;

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Add a SIP subscriber (a phone that registers and calls without the IVR) to an
    /// account. Without --password-file a random password is made and printed, once.
    Add {
        #[command(flatten)]
        account: AccountArgs,
        /// The phone's SIP username.
        username: String,
        /// A file holding the password (the first line).
        #[arg(long = "password-file")]
        password_file: Option<PathBuf>,
        /// The caller ID its calls present to carriers.
        #[arg(long = "caller-id")]
        caller_id: Option<String>,
        /// The digest realm: `[subscribers] realm` of the switch's configuration.
        #[arg(long, default_value = "talktime")]
        realm: String,
    },
    /// An account's subscribers (never their passwords).
    List {
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Refuse a subscriber's registrations and calls.
    Disable {
        #[command(flatten)]
        ledger: LedgerArgs,
        username: String,
    },
    /// Accept a disabled subscriber again.
    Enable {
        #[command(flatten)]
        ledger: LedgerArgs,
        username: String,
    },
}

fn random_password() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut random = rand::rng();
    (0..PASSWORD_LENGTH)
        .map(|_| char::from(ALPHABET[random.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A new subscriber as ordered (CLI, API): without a password one is made.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberOrder {
    /// The phone's SIP username (letters, digits, `._-+`).
    pub username: String,
    /// At least 8 characters; omitted: a random one is made and answered once.
    #[serde(default)]
    pub password: Option<String>,
    /// The caller ID its calls present to carriers.
    #[serde(default)]
    pub caller_id: Option<String>,
}

/// A subscriber as listed (never its password or hash).
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SubscriberView {
    pub username: String,
    pub account_id: i64,
    /// `active` or `disabled`.
    pub status: String,
    pub caller_id: Option<String>,
    /// Only when the switch made the password: the one time it can be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl From<&talktime_store::Subscriber> for SubscriberView {
    fn from(subscriber: &talktime_store::Subscriber) -> Self {
        SubscriberView {
            username: subscriber.username.clone(),
            account_id: subscriber.account_id,
            status: subscriber.status.clone(),
            caller_id: subscriber.caller_id.as_ref().map(|id| id.expose().clone()),
            password: None,
        }
    }
}

/// Why a subscriber was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("a password has at least {MIN_PASSWORD_LENGTH} characters")]
    ShortPassword,
    #[error("username {0} is taken")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] talktime_store::StoreError),
}

/// Adds a subscriber with the password's digest hash for `realm`.
pub async fn add(
    store: &Store,
    account_id: i64,
    order: SubscriberOrder,
    realm: &str,
) -> Result<SubscriberView, AddError> {
    let (password, made) = match order.password {
        Some(password) => (password, false),
        None => (random_password(), true),
    };
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(AddError::ShortPassword);
    }
    if store.subscriber(&order.username).await?.is_some() {
        return Err(AddError::Taken(order.username));
    }
    let ha1 = Pii::new(compute_ha1(
        Algorithm::Md5,
        &order.username,
        realm,
        &password,
    ));
    let caller_id = order.caller_id.map(Pii::new);
    let added = store
        .add_subscriber(
            account_id,
            &order.username,
            realm,
            &ha1,
            caller_id.as_ref(),
            wall_clock_ms(),
        )
        .await?;
    let mut view = SubscriberView::from(&added);
    view.password = made.then_some(password);
    Ok(view)
}

pub async fn run(command: SubscribersCommand) -> anyhow::Result<()> {
    match command {
        SubscribersCommand::Add {
            account,
            username,
            password_file,
            caller_id,
            realm,
        } => {
            let (store, account) = account.resolve().await?;
            let password = match password_file {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).map_err(|error| {
                        anyhow::anyhow!("cannot read {}: {error}", path.display())
                    })?;
                    Some(text.lines().next().unwrap_or_default().to_owned())
                }
                None => None,
            };
            let order = SubscriberOrder {
                username,
                password,
                caller_id,
            };
            let added = add(&store, account, order, &realm).await?;
            eprintln!(
                "subscriber {} added to account {} (realm {realm})",
                added.username, added.account_id
            );
            if let Some(password) = added.password {
                // The only time it can be read.
                println!("{password}");
            }
        }
        SubscribersCommand::List { account } => {
            let (store, account) = account.resolve().await?;
            for subscriber in store.subscribers_of(account).await? {
                println!(
                    "{}\t{}\t{}",
                    subscriber.username,
                    subscriber.status,
                    subscriber
                        .caller_id
                        .as_ref()
                        .map_or("-", |id| id.expose().as_str())
                );
            }
        }
        SubscribersCommand::Disable { ledger, username } => {
            set_status_cli(&ledger, &username, false).await?;
        }
        SubscribersCommand::Enable { ledger, username } => {
            set_status_cli(&ledger, &username, true).await?;
        }
    }
    Ok(())
}

async fn set_status_cli(ledger: &LedgerArgs, username: &str, active: bool) -> anyhow::Result<()> {
    let store = ledger.open().await?;
    if !store.set_subscriber_status(username, active).await? {
        anyhow::bail!("no subscriber {username}");
    }
    eprintln!(
        "subscriber {username} {}",
        if active { "enabled" } else { "disabled" }
    );
    Ok(())
}

/// The subscriber the switch asks for, if it and its account are active. A database error
/// is logged and answered as unknown: the phone is refused, never let in.
pub async fn lookup(store: &Store, username: &str) -> Option<Box<SubscriberAuth>> {
    let found = async {
        let Some(subscriber) = store.subscriber(username).await? else {
            return Ok(None);
        };
        if subscriber.status != "active" {
            return Ok(None);
        }
        let account = store.account(subscriber.account_id).await?;
        if account.status.as_str() != "active" {
            return Ok(None);
        }
        Ok::<_, talktime_store::StoreError>(Some(Box::new(SubscriberAuth {
            username: subscriber.username,
            realm: subscriber.realm,
            ha1: subscriber.ha1,
            account: AccountInfo {
                account: AccountId(account.id),
                card: None,
                balance_micros: account.balance_micros,
                minimum_micros: 0,
                currency: account.currency,
                language: account
                    .ivr_language
                    .as_deref()
                    .and_then(Language::from_code),
                forward_destination: None,
            },
            caller_id: subscriber.caller_id,
        })))
    };
    match found.await {
        Ok(found) => found,
        Err(error) => {
            warn!(%error, "subscriber lookup failed; refused");
            None
        }
    }
}

// ----- admin API -----

use axum::Json;
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::StatusCode;

use crate::admin_http::{AdminError, AdminState, ApiCaller};
use crate::openapi::ErrorBody;

impl From<AddError> for AdminError {
    fn from(error: AddError) -> Self {
        match error {
            AddError::ShortPassword => AdminError::BadRequest(error.to_string()),
            AddError::Taken(_) => AdminError::Conflict(error.to_string()),
            AddError::Store(error) => AdminError::Store(error),
        }
    }
}

/// An account's SIP subscribers.
#[utoipa::path(get, path = "/api/accounts/{id}/subscribers", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = Vec<SubscriberView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    UrlPath(id): UrlPath<i64>,
) -> Result<Json<Vec<SubscriberView>>, AdminError> {
    state.store().account(id).await?;
    let subscribers = state.store().subscribers_of(id).await?;
    Ok(Json(subscribers.iter().map(SubscriberView::from).collect()))
}

/// Adds a SIP subscriber (a phone that registers and calls without the IVR) to an account.
/// Without `password` one is made and answered here, once. 409 when the username is taken.
#[utoipa::path(post, path = "/api/accounts/{id}/subscribers", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    request_body = SubscriberOrder,
    responses((status = 201, body = SubscriberView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath(id): UrlPath<i64>,
    Json(order): Json<SubscriberOrder>,
) -> Result<(StatusCode, Json<SubscriberView>), AdminError> {
    let added = add(state.store(), id, order, &state.subscriber_realm).await?;
    let after = serde_json::json!({ "username": added.username });
    let subject = format!("account {id}");
    crate::vouchers::audit(&state, &caller, "subscribers.add", &subject, after).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// A subscriber's status: `{"active": false}` refuses its registrations and calls.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberStatus {
    pub active: bool,
}

/// Disables or enables a subscriber.
#[utoipa::path(put, path = "/api/subscribers/{username}/status", tag = "accounts",
    params(("username" = String, Path, description = "The SIP username")),
    request_body = SubscriberStatus,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn set_status(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath(username): UrlPath<String>,
    Json(status): Json<SubscriberStatus>,
) -> Result<StatusCode, AdminError> {
    if !state
        .store()
        .set_subscriber_status(&username, status.active)
        .await?
    {
        return Err(AdminError::NotFound(format!("no subscriber {username}")));
    }
    let after = serde_json::json!({ "active": status.active });
    let subject = format!("subscriber {username}");
    crate::vouchers::audit(&state, &caller, "subscribers.status", &subject, after).await?;
    Ok(StatusCode::NO_CONTENT)
}
