//! Web callback (issue 21): an operator, a help desk or a customer's web page asks the switch
//! to call an account's holder at a number and connect them to another (or give them the
//! IVR). The switch does the rest (crates/b2bua/src/callback.rs): the leg to the caller is
//! authorized, placed and billed by its own destination, the called leg beside it.

use axum::Json;
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use talktime_b2bua::Input;
use talktime_b2bua::callback::WebCallback;
use talktime_engine::{AccountId, AccountInfo, Language};
use talktime_pii::Pii;
use talktime_store::Store;
use utoipa::ToSchema;

use crate::admin_http::{AdminError, AdminState, ApiCaller};
use crate::openapi::ErrorBody;
use crate::server::CoreSender;

/// A web callback as asked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackOrder {
    /// The number to call first (the customer), as they would dial it.
    pub number: String,
    /// The number to connect them to once they answer; without it they hear the IVR's
    /// destination prompt.
    #[serde(default)]
    pub destination: Option<String>,
}

/// The callback's call id: its CDR rows are `<call_id>#0` (the leg to the customer) and
/// `<call_id>#1`... (the called legs).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallbackPlaced {
    pub call_id: String,
}

/// Why a web callback cannot be placed.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("no access number has callback = true: a web callback runs that number's IVR")]
    NoCallbackLine,
    #[error("{0}: {1}")]
    Number(&'static str, talktime_engine::DestinationError),
    #[error("account {0} is {1}, not active")]
    Inactive(i64, String),
    #[error("the switch is stopping")]
    Stopping,
    #[error(transparent)]
    Store(#[from] talktime_store::StoreError),
}

impl From<CallbackError> for AdminError {
    fn from(error: CallbackError) -> Self {
        match error {
            CallbackError::NoCallbackLine | CallbackError::Inactive(..) => {
                AdminError::Conflict(error.to_string())
            }
            CallbackError::Number(..) => AdminError::BadRequest(error.to_string()),
            CallbackError::Stopping => AdminError::Conflict(error.to_string()),
            CallbackError::Store(error) => AdminError::Store(error),
        }
    }
}

/// What the core needs to call an account back, checked here so the core never waits.
#[derive(Debug)]
pub struct CallbackDesk {
    pub store: Store,
    pub core: CoreSender,
    /// A callback access number is configured.
    pub enabled: bool,
}

impl CallbackDesk {
    /// Hands a web callback to the switch and returns its call id.
    pub async fn place(
        &self,
        account_id: i64,
        number: &str,
        destination: Option<&str>,
    ) -> Result<String, CallbackError> {
        if !self.enabled {
            return Err(CallbackError::NoCallbackLine);
        }
        let number = talktime_engine::normalize_destination(number)
            .map_err(|error| CallbackError::Number("number", error))?;
        let destination = destination
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(|text| {
                talktime_engine::normalize_destination(text)
                    .map_err(|error| CallbackError::Number("destination", error))
            })
            .transpose()?;
        let account = self.store.account(account_id).await?;
        if account.status.as_str() != "active" {
            return Err(CallbackError::Inactive(
                account_id,
                account.status.as_str().to_owned(),
            ));
        }
        let call_id = format!("web-{:016x}@talktime", rand::random::<u64>());
        let info = AccountInfo {
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
        };
        let request = WebCallback {
            call_id: call_id.clone(),
            account: info,
            number: Pii::new(number),
            destination: destination.map(Pii::new),
        };
        self.core
            .send(Input::Callback(request))
            .await
            .map_err(|_| CallbackError::Stopping)?;
        Ok(call_id)
    }
}

/// Calls the account's holder at `number` and, once they answer, connects them to
/// `destination` (or gives them the IVR's destination prompt). Both legs are billed to the
/// account, the first by its own destination. 202: the call is being placed; 409 when no
/// callback access number is configured or the account is not active.
#[utoipa::path(post, path = "/api/accounts/{id}/callback", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    request_body = CallbackOrder,
    responses((status = 202, body = CallbackPlaced), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn place(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath(id): UrlPath<i64>,
    Json(order): Json<CallbackOrder>,
) -> Result<(StatusCode, Json<CallbackPlaced>), AdminError> {
    let desk = state.callback_desk();
    let call_id = desk
        .place(id, &order.number, order.destination.as_deref())
        .await?;
    let after = serde_json::json!({ "call_id": call_id });
    crate::vouchers::audit(&state, &caller, "callback", &format!("account {id}"), after).await?;
    Ok((StatusCode::ACCEPTED, Json(CallbackPlaced { call_id })))
}
