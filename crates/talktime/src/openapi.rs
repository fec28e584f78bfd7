//! The JSON API's OpenAPI 3.1 document, generated from the handlers' annotations and the
//! request and response types below (utoipa), served at `/api/openapi.json`; `/api/docs` shows
//! it as a plain page (no script, nothing fetched from outside). Money is decimal text in
//! every schema, never a number.

use std::fmt::Write as _;

use axum::Json;
use axum::response::Html;
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every refusal and failure: what went wrong, for a person.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: i64,
    pub name: String,
    /// Decimal text, e.g. "12.5".
    pub balance: String,
    pub currency: String,
    pub status: String,
    pub calls_in_progress: usize,
    pub forward_destination: Option<String>,
    /// The reseller whose customer it is; null: the vendor's.
    pub reseller_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RechargeReply {
    pub id: i64,
    pub balance: String,
    /// True when an earlier request with the same Idempotency-Key already credited it.
    pub replayed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CdrView {
    pub call_id: String,
    pub attempt: i64,
    pub account_id: Option<i64>,
    pub card_id: Option<i64>,
    pub caller_id: Option<String>,
    pub access_number: Option<String>,
    pub destination: String,
    pub carrier: Option<String>,
    pub start_ms: i64,
    pub answer_ms: Option<i64>,
    pub end_ms: i64,
    pub billed_seconds: i64,
    pub total: String,
    pub tax: String,
    pub buy_cost: String,
    pub sip_code: Option<i64>,
    pub q850_cause: Option<i64>,
    pub hangup_by: Option<String>,
    pub disconnect_cause: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrafficView {
    pub group: Option<String>,
    pub attempts: i64,
    pub answered: i64,
    pub asr_percent: Option<String>,
    pub acd_seconds: Option<String>,
    pub talk_seconds: i64,
    pub billed_seconds: i64,
    pub revenue: String,
    pub tax: String,
    pub cost: String,
    pub margin: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromptStored {
    /// `language/name`.
    pub prompt: String,
    pub format: String,
    pub duration_ms: u64,
}

/// A carrier as listed: its settings (never its password), `has_password`, and `status`
/// (health and calls up, as the switch last saw them; null before its first check).
#[derive(Debug, Serialize, ToSchema)]
pub struct CarrierList {
    pub version: i64,
    #[schema(value_type = Vec<Object>)]
    pub carriers: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CarrierSaved {
    /// The routing version the change made.
    pub version: i64,
    #[schema(value_type = Object)]
    pub carrier: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DialPlanList {
    pub version: i64,
    pub dial_plans: Vec<talktime_routing::DialPlanConfig>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DialPlanSaved {
    pub version: i64,
    pub dial_plan: talktime_routing::DialPlanConfig,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingVersion {
    pub version: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Explanation {
    /// The carriers in order with their buy rates and why, then those skipped and why.
    pub explanation: String,
}

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Talktime admin API",
        description = "Accounts, recharges, card and voucher batches, speed dials, CDRs, reports, prompts, carriers and \
                       dial plans. Every route but /api/health needs `Authorization: Bearer \
                       <token>`: the switch's admin token, or a user's own (`talktime users \
                       token`; support may read and recharge only). Money is decimal text."
    ),
    paths(
        crate::admin_http::health,
        crate::admin_http::account,
        crate::admin_http::recharge,
        crate::callbacks::place,
        crate::subscribers::list,
        crate::subscribers::create,
        crate::subscribers::set_status,
        crate::resellers::list,
        crate::resellers::create,
        crate::resellers::show,
        crate::resellers::statement,
        crate::resellers::set_customer,
        crate::resellers::add_customer,
        crate::resellers::transfer,
        crate::admin_http::card_batch,
        crate::admin_http::cdrs,
        crate::admin_http::cdrs_export,
        crate::admin_http::traffic,
        crate::admin_http::upload_prompt,
        crate::admin_routing::carriers,
        crate::admin_routing::put_carrier,
        crate::admin_routing::delete_carrier,
        crate::admin_routing::dial_plans,
        crate::admin_routing::put_dial_plan,
        crate::admin_routing::delete_dial_plan,
        crate::admin_routing::explain,
        crate::vouchers::create_batch,
        crate::vouchers::batch,
        crate::vouchers::disable,
        crate::vouchers::redeem,
        crate::vouchers::speed_dials,
        crate::vouchers::put_speed_dial,
        crate::vouchers::delete_speed_dial,
        crate::nodes::list,
        crate::nodes::drain,
    ),
    modifiers(&BearerToken),
    security(("bearer" = []))
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The document as JSON.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The document as a page: each route with its parameters and answers.
pub async fn page() -> Html<String> {
    let document = ApiDoc::openapi();
    let mut body = String::new();
    let escape = crate::console::escape;
    for (path, item) in &document.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let _ = write!(
                body,
                "<section class=\"route\"><h2><code>{method} {}</code></h2><p>{}</p>",
                escape(path),
                escape(operation.description.as_deref().unwrap_or_default())
            );
            if let Some(parameters) = &operation.parameters {
                body.push_str("<ul>");
                for parameter in parameters {
                    let _ = write!(
                        body,
                        "<li><code>{}</code> ({}){}</li>",
                        escape(&parameter.name),
                        serde_json::to_value(&parameter.parameter_in)
                            .ok()
                            .and_then(|value| value.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        parameter
                            .description
                            .as_deref()
                            .map(|text| format!(": {}", escape(text)))
                            .unwrap_or_default()
                    );
                }
                body.push_str("</ul>");
            }
            let answers: Vec<String> = operation.responses.responses.keys().cloned().collect();
            let _ = write!(body, "<p>Answers: {}</p></section>", answers.join(", "));
        }
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Talktime API</title><style>body{{font-family:system-ui,sans-serif;margin:1em}}\
         section{{border-bottom:1px solid #ddd}}</style></head><body><h1>Talktime admin API</h1>\
         <p>{}</p><p>The machine-readable document: <a href=\"/api/openapi.json\">\
         /api/openapi.json</a> (OpenAPI 3.1).</p>{body}</body></html>",
        escape(document.info.description.as_deref().unwrap_or_default()),
    ))
}
