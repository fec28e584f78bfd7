//! The JSON API's carriers and dial plans (issue 15): list them with their live health, add,
//! replace and remove them while calls are up (`crate::routing_live` validates, stores and
//! applies), and explain where a number would go. Passwords are never returned.

use axum::extract::{Path as UrlPath, Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use talktime_routing::{CarrierConfig, CarrierStatus, DialPlanConfig};

use crate::admin_http::{AdminError, AdminState, ApiCaller};
use crate::openapi::{
    CarrierList, CarrierSaved, DialPlanList, DialPlanSaved, ErrorBody, Explanation, RoutingVersion,
};
use crate::routing_live::{EditError, RoutingEditor};

impl From<EditError> for AdminError {
    fn from(error: EditError) -> Self {
        match error {
            EditError::Invalid { field, message } => {
                AdminError::Unprocessable(format!("{field}: {message}"))
            }
            EditError::NotFound { .. } => AdminError::NotFound(error.to_string()),
            EditError::Store(error) => AdminError::Store(error),
            EditError::Corrupt(..) => AdminError::Store(talktime_store::StoreError::Corrupt {
                column: "routing_documents.document",
                value: error.to_string(),
            }),
        }
    }
}

/// A carrier as the API shows it: its settings without the password, and its state now.
pub fn carrier_json(carrier: &CarrierConfig, status: Option<&CarrierStatus>) -> Value {
    let mut value = serde_json::to_value(carrier).unwrap_or_else(|_| json!({}));
    if let Some(object) = value.as_object_mut() {
        object.remove("password");
        object.insert("has_password".into(), json!(carrier.password.is_some()));
        object.insert(
            "status".into(),
            match status {
                Some(status) => json!({
                    "up": status.up,
                    "active_calls": status.active_calls,
                    "consecutive_misses": status.consecutive_misses,
                }),
                None => Value::Null,
            },
        );
    }
    value
}

/// Every carrier with its live health and calls up (never a password).
#[utoipa::path(get, path = "/api/carriers", tag = "routing",
    responses((status = 200, body = CarrierList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn carriers(State(state): State<AdminState>) -> Result<Json<CarrierList>, AdminError> {
    let routing = state.routing.current().await?;
    let statuses = state.metrics.carriers();
    let listed: Vec<Value> = routing
        .carriers
        .iter()
        .map(|carrier| {
            let status = statuses.iter().find(|status| status.name == carrier.name);
            carrier_json(carrier, status)
        })
        .collect();
    Ok(Json(CarrierList {
        version: routing.version,
        carriers: listed,
    }))
}

/// The body's carrier under the path's name. A body without a password keeps the stored
/// one while the user name stays the same (what was read can be written back).
pub async fn merged_carrier(
    editor: &RoutingEditor,
    name: &str,
    mut body: Value,
) -> Result<CarrierConfig, AdminError> {
    let object = body
        .as_object_mut()
        .ok_or_else(|| AdminError::BadRequest("a carrier is a JSON object".into()))?;
    object.remove("has_password");
    object.remove("status");
    same_name(object, name)?;
    let mut carrier: CarrierConfig = serde_json::from_value(body)
        .map_err(|error| AdminError::BadRequest(format!("carrier: {error}")))?;
    if carrier.password.is_none() {
        let routing = editor.current().await?;
        if let Some(stored) = routing.carriers.iter().find(|stored| stored.name == name)
            && stored.username == carrier.username
        {
            carrier.password.clone_from(&stored.password);
        }
    }
    Ok(carrier)
}

/// The body names what the path names (a PUT never renames).
fn same_name(object: &serde_json::Map<String, Value>, name: &str) -> Result<(), AdminError> {
    match object.get("name").and_then(Value::as_str) {
        Some(given) if given == name => Ok(()),
        Some(given) => Err(AdminError::BadRequest(format!(
            "name: the body names {given:?}, the path {name:?}"
        ))),
        None => Err(AdminError::BadRequest(
            "name: the body names what the path names".into(),
        )),
    }
}

/// Adds the carrier or replaces it; new calls use it at once, calls up keep theirs. A body
/// without `password` keeps the stored one while `username` stays the same.
#[utoipa::path(put, path = "/api/carriers/{name}", tag = "routing",
    params(("name" = String, Path, description = "The carrier's name")),
    request_body = talktime_routing::CarrierConfig,
    responses((status = 200, body = CarrierSaved), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_carrier(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath(name): UrlPath<String>,
    Json(body): Json<Value>,
) -> Result<Json<CarrierSaved>, AdminError> {
    let carrier = merged_carrier(&state.routing, &name, body).await?;
    let version = state.routing.put_carrier(carrier.clone()).await?;
    audit(
        &state,
        &caller,
        "carrier_put",
        &name,
        Some(carrier_json(&carrier, None)),
    )
    .await?;
    Ok(Json(CarrierSaved {
        version,
        carrier: carrier_json(&carrier, None),
    }))
}

/// Removes a carrier no route names.
#[utoipa::path(delete, path = "/api/carriers/{name}", tag = "routing",
    params(("name" = String, Path, description = "The carrier's name")),
    responses((status = 200, body = RoutingVersion), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn delete_carrier(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<RoutingVersion>, AdminError> {
    let version = state.routing.delete_carrier(&name).await?;
    audit(&state, &caller, "carrier_delete", &name, None).await?;
    Ok(Json(RoutingVersion { version }))
}

/// Every dial plan with its routes.
#[utoipa::path(get, path = "/api/dial_plans", tag = "routing",
    responses((status = 200, body = DialPlanList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn dial_plans(State(state): State<AdminState>) -> Result<Json<DialPlanList>, AdminError> {
    let routing = state.routing.current().await?;
    Ok(Json(DialPlanList {
        version: routing.version,
        dial_plans: routing.dial_plans,
    }))
}

/// Adds the dial plan or replaces it (all its routes).
#[utoipa::path(put, path = "/api/dial_plans/{name}", tag = "routing",
    params(("name" = String, Path, description = "The dial plan's name")),
    request_body = talktime_routing::DialPlanConfig,
    responses((status = 200, body = DialPlanSaved), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_dial_plan(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath(name): UrlPath<String>,
    Json(mut body): Json<Value>,
) -> Result<Json<DialPlanSaved>, AdminError> {
    let object = body
        .as_object_mut()
        .ok_or_else(|| AdminError::BadRequest("a dial plan is a JSON object".into()))?;
    same_name(object, &name)?;
    let plan: DialPlanConfig = serde_json::from_value(body)
        .map_err(|error| AdminError::BadRequest(format!("dial plan: {error}")))?;
    let version = state.routing.put_dial_plan(plan.clone()).await?;
    audit(
        &state,
        &caller,
        "dial_plan_put",
        &name,
        serde_json::to_value(&plan).ok(),
    )
    .await?;
    Ok(Json(DialPlanSaved {
        version,
        dial_plan: plan,
    }))
}

/// Removes a dial plan no access number routes with.
#[utoipa::path(delete, path = "/api/dial_plans/{name}", tag = "routing",
    params(("name" = String, Path, description = "The dial plan's name")),
    responses((status = 200, body = RoutingVersion), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn delete_dial_plan(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<RoutingVersion>, AdminError> {
    let version = state.routing.delete_dial_plan(&name).await?;
    audit(&state, &caller, "dial_plan_delete", &name, None).await?;
    Ok(Json(RoutingVersion { version }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// The number as dialled.
    number: String,
    /// The dial plan.
    plan: String,
}

/// Where a number would go now: the carriers in order and why the others were skipped (the
/// stored routing and buy rates; health as the switch last saw it is on /api/carriers).
#[utoipa::path(get, path = "/api/routes/explain", tag = "routing", params(ExplainQuery),
    responses((status = 200, body = Explanation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn explain(
    State(state): State<AdminState>,
    Query(query): Query<ExplainQuery>,
) -> Result<Json<Explanation>, AdminError> {
    let explanation =
        explain_text(&state.routing, state.store(), &query.plan, &query.number).await?;
    Ok(Json(Explanation { explanation }))
}

/// `routes explain` for the console and the API.
pub async fn explain_text(
    editor: &RoutingEditor,
    store: &talktime_store::Store,
    plan: &str,
    number: &str,
) -> Result<String, AdminError> {
    let routing = editor.current().await?;
    if !routing.dial_plans.iter().any(|known| known.name == plan) {
        return Err(AdminError::NotFound(format!("no dial plan named {plan:?}")));
    }
    let digits = talktime_routing::normalize(number, &editor.number_rules)
        .map_err(|error| AdminError::BadRequest(format!("number: {error}")))?;
    let buy_rates = crate::startup::buy_rate_decks(store, &routing.carriers)
        .await
        .map_err(|error| AdminError::Unprocessable(error.to_string()))?;
    let now = std::time::Instant::now();
    let router =
        talktime_routing::Router::new(routing.carriers, routing.dial_plans, buy_rates, now)
            .map_err(|errors| AdminError::Unprocessable(errors.to_string()))?;
    let start = talktime_billing::LocalStart::from_unix_ms(
        crate::server::wall_clock_ms(),
        editor.utc_offset_minutes,
    )
    .ok_or_else(|| AdminError::Unprocessable("the clock is out of range".into()))?;
    let request = talktime_routing::RouteRequest::new(plan, &digits, start);
    let explanation = router
        .explain(&request, now)
        .map_err(|error| AdminError::BadRequest(format!("number: {error}")))?;
    Ok(explanation.to_string())
}

async fn audit(
    state: &AdminState,
    caller: &ApiCaller,
    action: &str,
    subject: &str,
    after: Option<Value>,
) -> Result<(), AdminError> {
    let after = after.map(|value| value.to_string());
    state
        .store()
        .audit_api(
            &caller.0,
            action,
            subject,
            after.as_deref(),
            crate::server::wall_clock_ms(),
        )
        .await?;
    Ok(())
}
