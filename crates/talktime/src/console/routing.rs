//! Carriers and dial plans in the console: listed with their live health and calls, added,
//! edited, enabled and disabled, removed, and `routes explain` for a number. Every change goes
//! through [`crate::routing_live::RoutingEditor`]: checked against the whole routing first
//! (a bad field gets its message and nothing is written), then applied without a restart.

use std::fmt::Write;

use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use talktime_routing::{
    CallerIdRule, CarrierConfig, CarrierStatus, DialPlanConfig, RouteCarrier, RouteConfig,
    RouteMode, Transport,
};

use super::pages::{csrf_field, escape, page};
use super::{ConsoleError, ConsoleState, LoggedIn, audit};
use crate::routing_live::{EditError, Routing};

type FieldError = (&'static str, String);

impl From<EditError> for ConsoleError {
    fn from(error: EditError) -> Self {
        ConsoleError::Internal(error.to_string())
    }
}

/// An edit's refusal as a field message, or a failure of ours.
fn field_error(error: EditError) -> Result<FieldError, ConsoleError> {
    match error {
        EditError::Invalid { field, message } => Ok((field, message)),
        EditError::NotFound { .. } => Ok(("name", error.to_string())),
        other => Err(other.into()),
    }
}

fn message_at(error: Option<&FieldError>, field: &str) -> String {
    match error {
        Some((bad, text)) if *bad == field => format!(
            " <span class=\"error\" id=\"error-{field}\">{}</span>",
            escape(text)
        ),
        _ => String::new(),
    }
}

fn text_field(name: &str, label: &str, value: &str, error: Option<&FieldError>) -> String {
    format!(
        "<p><label>{label} <input name=\"{name}\" id=\"{name}\" value=\"{}\"></label>{}</p>",
        escape(value),
        message_at(error, name)
    )
}

fn checkbox(name: &str, label: &str, checked: bool) -> String {
    let checked = if checked { " checked" } else { "" };
    format!(
        "<p><label><input type=\"checkbox\" name=\"{name}\" id=\"{name}\"{checked}> {label}\
         </label></p>"
    )
}

fn status_cell(status: Option<&CarrierStatus>) -> (String, String) {
    match status {
        Some(status) if status.up => ("up".into(), status.active_calls.to_string()),
        Some(status) => (
            format!("down ({} missed)", status.consecutive_misses),
            status.active_calls.to_string(),
        ),
        None => ("starting".into(), "0".into()),
    }
}

pub async fn carriers_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
) -> Result<Html<String>, ConsoleError> {
    let routing = state.routing.current().await?;
    let blank = CarrierForm::default();
    Ok(Html(carriers_html(
        &user,
        &routing,
        &state.metrics.carriers(),
        &blank,
        None,
    )))
}

fn carriers_html(
    user: &LoggedIn,
    routing: &Routing,
    statuses: &[CarrierStatus],
    form: &CarrierForm,
    error: Option<&FieldError>,
) -> String {
    let csrf = csrf_field(user);
    let may_change = super::auth::may_change(&user.user);
    let mut rows = String::new();
    for carrier in &routing.carriers {
        let status = statuses.iter().find(|status| status.name == carrier.name);
        let (health, calls) = status_cell(status);
        let mut actions = String::new();
        if may_change {
            let (value, label) = if carrier.enabled {
                ("false", "Disable")
            } else {
                ("true", "Enable")
            };
            let name = escape(&carrier.name);
            let _ = write!(
                actions,
                "<form class=\"inline\" method=\"post\" action=\"/console/carriers/{name}/enabled\">\
                 {csrf}<input type=\"hidden\" name=\"enabled\" value=\"{value}\">\
                 <button class=\"toggle\">{label}</button></form> \
                 <form class=\"inline\" method=\"post\" action=\"/console/carriers/{name}/delete\">\
                 {csrf}<button class=\"delete\">Remove</button></form>"
            );
        }
        let _ = write!(
            rows,
            "<tr class=\"carrier\" data-carrier=\"{name}\"><td><a href=\"/console/carriers/{name}\">\
             {name}</a></td><td>{host}:{port}</td><td>{transport}</td><td>{enabled}</td>\
             <td class=\"health\">{health}</td><td class=\"calls\">{calls}</td><td>{limit}</td>\
             <td>{actions}</td></tr>",
            name = escape(&carrier.name),
            host = escape(&carrier.host),
            port = carrier.port,
            transport = carrier.transport,
            enabled = if carrier.enabled {
                "enabled"
            } else {
                "disabled"
            },
            limit = carrier
                .max_calls
                .map(|limit| limit.to_string())
                .unwrap_or_default(),
        );
    }
    let mut body = format!(
        "<p>Routing version {}. Changes apply at once, without a restart; calls up keep their \
         carrier.</p><table><thead><tr><th>Carrier</th><th>Address</th><th>Transport</th>\
         <th>State</th><th>Health</th><th>Calls up</th><th>Max calls</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table>",
        routing.version
    );
    if may_change {
        body.push_str("<h2 id=\"edit\">Add or edit a carrier</h2>");
        body.push_str(&carrier_form(user, form, error));
    }
    page("Carriers", Some(user), "", &body)
}

/// The carrier form's fields, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct CarrierForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    transport: String,
    #[serde(default)]
    username: String,
    /// Empty keeps the stored password.
    #[serde(default)]
    password: String,
    #[serde(default)]
    strip_digits: String,
    #[serde(default)]
    add_prefix: String,
    /// `pass_through`, `hide` or a number.
    #[serde(default)]
    caller_id: String,
    #[serde(default)]
    max_calls: String,
    #[serde(default)]
    calls_per_second: String,
    #[serde(default)]
    buy_tariff: String,
    #[serde(default)]
    failover_codes: String,
    #[serde(default)]
    invite_timeout_ms: String,
    #[serde(default)]
    options_interval_ms: String,
    #[serde(default)]
    register_expires_s: String,
    #[serde(default)]
    tls_server_name: String,
    #[serde(default)]
    tls_pin_sha256: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    delayed_offer: Option<String>,
}

impl CarrierForm {
    /// The form as a stored carrier shows it (for editing).
    fn from_carrier(carrier: &CarrierConfig) -> CarrierForm {
        let optional =
            |value: Option<u32>| value.map(|value| value.to_string()).unwrap_or_default();
        CarrierForm {
            csrf: String::new(),
            name: carrier.name.clone(),
            host: carrier.host.clone(),
            port: carrier.port.to_string(),
            transport: carrier.transport.to_string(),
            username: carrier.username.clone().unwrap_or_default(),
            password: String::new(),
            strip_digits: carrier.strip_digits.to_string(),
            add_prefix: carrier.add_prefix.clone(),
            caller_id: match &carrier.caller_id {
                CallerIdRule::PassThrough => "pass_through".into(),
                CallerIdRule::Hide => "hide".into(),
                CallerIdRule::Fixed(number) => number.clone(),
            },
            max_calls: optional(carrier.max_calls),
            calls_per_second: optional(carrier.calls_per_second),
            buy_tariff: carrier.buy_tariff.clone().unwrap_or_default(),
            failover_codes: carrier
                .failover_codes
                .as_ref()
                .map(|codes| {
                    codes
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
            invite_timeout_ms: carrier.invite_timeout_ms.to_string(),
            options_interval_ms: carrier.options_interval_ms.to_string(),
            register_expires_s: carrier.register_expires_s.to_string(),
            tls_server_name: carrier.tls_server_name.clone().unwrap_or_default(),
            tls_pin_sha256: carrier.tls_pin_sha256.clone().unwrap_or_default(),
            enabled: carrier.enabled.then(|| "on".into()),
            delayed_offer: carrier.delayed_offer.then(|| "on".into()),
        }
    }

    /// The carrier, starting from the stored one of that name (fields the form lacks stay
    /// as they were), or the field at fault.
    fn carrier(&self, stored: Option<&CarrierConfig>) -> Result<CarrierConfig, FieldError> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > 64 || !name.chars().all(is_name_character) {
            return Err((
                "name",
                "1 to 64 letters, digits, '-', '_' or '.'".to_owned(),
            ));
        }
        let mut carrier = stored
            .cloned()
            .unwrap_or_else(|| CarrierConfig::new(name, ""));
        carrier.host = self.host.trim().to_owned();
        if carrier.host.is_empty() {
            return Err(("host", "a host name or IP address".to_owned()));
        }
        carrier.port = number_or(&self.port, "port", 5060)?;
        carrier.transport = match self.transport.trim() {
            "" | "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            other => return Err(("transport", format!("{other:?} is not udp, tcp or tls"))),
        };
        let username = self.username.trim();
        if username.is_empty() {
            carrier.username = None;
            carrier.password = None;
        } else {
            if carrier.username.as_deref() != Some(username) || !self.password.is_empty() {
                carrier.password = Some(self.password.clone()).filter(|p| !p.is_empty());
            }
            carrier.username = Some(username.to_owned());
        }
        carrier.strip_digits = number_or(&self.strip_digits, "strip_digits", 0)?;
        carrier.add_prefix = self.add_prefix.trim().to_owned();
        carrier.caller_id = match self.caller_id.trim() {
            "" | "pass_through" => CallerIdRule::PassThrough,
            "hide" => CallerIdRule::Hide,
            number => CallerIdRule::Fixed(number.to_owned()),
        };
        carrier.max_calls = optional_number(&self.max_calls, "max_calls")?;
        carrier.calls_per_second = optional_number(&self.calls_per_second, "calls_per_second")?;
        carrier.buy_tariff = Some(self.buy_tariff.trim().to_owned()).filter(|t| !t.is_empty());
        carrier.failover_codes = failover_codes(&self.failover_codes)?;
        carrier.invite_timeout_ms = number_or(&self.invite_timeout_ms, "invite_timeout_ms", 2000)?;
        carrier.options_interval_ms =
            number_or(&self.options_interval_ms, "options_interval_ms", 30_000)?;
        carrier.register_expires_s = number_or(&self.register_expires_s, "register_expires_s", 0)?;
        carrier.tls_server_name =
            Some(self.tls_server_name.trim().to_owned()).filter(|name| !name.is_empty());
        carrier.tls_pin_sha256 =
            Some(self.tls_pin_sha256.trim().to_owned()).filter(|pin| !pin.is_empty());
        carrier.enabled = self.enabled.is_some();
        carrier.delayed_offer = self.delayed_offer.is_some();
        Ok(carrier)
    }
}

fn is_name_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.')
}

fn number_or<T: std::str::FromStr>(
    text: &str,
    field: &'static str,
    default: T,
) -> Result<T, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(default);
    }
    text.parse()
        .map_err(|_| (field, format!("{text:?} is not a whole number in range")))
}

fn optional_number(text: &str, field: &'static str) -> Result<Option<u32>, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    number_or(text, field, 0).map(Some)
}

fn failover_codes(text: &str) -> Result<Option<Vec<u16>>, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.split(',')
        .map(|code| number_or(code, "failover_codes", 0))
        .collect::<Result<Vec<u16>, _>>()
        .map(Some)
}

fn carrier_form(user: &LoggedIn, form: &CarrierForm, error: Option<&FieldError>) -> String {
    let selected = |value: &str| {
        if form.transport == value || (form.transport.is_empty() && value == "udp") {
            " selected"
        } else {
            ""
        }
    };
    let mut html = format!(
        "<form method=\"post\" action=\"/console/carriers/save\">{}",
        csrf_field(user)
    );
    let fields = [
        ("name", "Name", &form.name),
        ("host", "Host", &form.host),
        ("port", "Port (5060)", &form.port),
    ];
    for (name, label, value) in fields {
        html.push_str(&text_field(name, label, value, error));
    }
    let _ = write!(
        html,
        "<p><label>Transport <select name=\"transport\" id=\"transport\">\
         <option{}>udp</option><option{}>tcp</option><option{}>tls</option></select></label>{}</p>",
        selected("udp"),
        selected("tcp"),
        selected("tls"),
        message_at(error, "transport")
    );
    html.push_str(&text_field("username", "User name", &form.username, error));
    let _ = write!(
        html,
        "<p><label>Password (empty keeps the stored one) <input type=\"password\" \
         name=\"password\" id=\"password\" autocomplete=\"new-password\"></label></p>"
    );
    let more = [
        ("strip_digits", "Strip leading digits", &form.strip_digits),
        ("add_prefix", "Add prefix", &form.add_prefix),
        (
            "caller_id",
            "Caller ID (pass_through, hide or a number)",
            &form.caller_id,
        ),
        ("max_calls", "Max calls", &form.max_calls),
        (
            "calls_per_second",
            "Calls per second",
            &form.calls_per_second,
        ),
        ("buy_tariff", "Buy tariff", &form.buy_tariff),
        (
            "failover_codes",
            "Failover codes (comma-separated; empty = default)",
            &form.failover_codes,
        ),
        (
            "invite_timeout_ms",
            "INVITE timeout, ms (2000)",
            &form.invite_timeout_ms,
        ),
        (
            "options_interval_ms",
            "OPTIONS every, ms (30000; 0 = off)",
            &form.options_interval_ms,
        ),
        (
            "register_expires_s",
            "Register for, s (0 = no)",
            &form.register_expires_s,
        ),
        ("tls_server_name", "TLS server name", &form.tls_server_name),
        ("tls_pin_sha256", "TLS pin (SHA-256)", &form.tls_pin_sha256),
    ];
    for (name, label, value) in more {
        html.push_str(&text_field(name, label, value, error));
    }
    let new_form = form.name.is_empty();
    html.push_str(&checkbox(
        "enabled",
        "Enabled",
        new_form || form.enabled.is_some(),
    ));
    html.push_str(&checkbox(
        "delayed_offer",
        "Delayed offer (INVITE without SDP)",
        form.delayed_offer.is_some(),
    ));
    html.push_str("<p><button id=\"save-carrier\">Save carrier</button></p></form>");
    html
}

pub async fn carrier_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(name): UrlPath<String>,
) -> Result<Html<String>, ConsoleError> {
    let routing = state.routing.current().await?;
    let carrier = routing
        .carriers
        .iter()
        .find(|carrier| carrier.name == name)
        .ok_or(ConsoleError::NotFound)?;
    let form = CarrierForm::from_carrier(carrier);
    Ok(Html(carriers_html(
        &user,
        &routing,
        &state.metrics.carriers(),
        &form,
        None,
    )))
}

pub async fn save_carrier(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<CarrierForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change carriers.")?;
    let routing = state.routing.current().await?;
    let stored = routing
        .carriers
        .iter()
        .find(|carrier| carrier.name == form.name.trim());
    let refused = match form.carrier(stored) {
        Ok(carrier) => {
            let before = stored.map(|stored| crate::admin_routing::carrier_json(stored, None));
            match state.routing.put_carrier(carrier.clone()).await {
                Ok(_) => {
                    let after = crate::admin_routing::carrier_json(&carrier, None);
                    audit(
                        &state,
                        &user,
                        "carrier_put",
                        &carrier.name,
                        before,
                        Some(after),
                    )
                    .await?;
                    return Ok(Redirect::to("/console/carriers").into_response());
                }
                Err(error) => field_error(error)?,
            }
        }
        Err(refused) => refused,
    };
    refused_carriers_page(&state, &user, &form, &refused).await
}

/// The carriers page again with the form as typed and the refusal at its field (400).
async fn refused_carriers_page(
    state: &ConsoleState,
    user: &LoggedIn,
    form: &CarrierForm,
    refused: &FieldError,
) -> Result<Response, ConsoleError> {
    let routing = state.routing.current().await?;
    let page = carriers_html(
        user,
        &routing,
        &state.metrics.carriers(),
        form,
        Some(refused),
    );
    Ok((StatusCode::BAD_REQUEST, Html(page)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct EnabledForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
}

pub async fn set_enabled(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(name): UrlPath<String>,
    Form(form): Form<EnabledForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change carriers.")?;
    let routing = state.routing.current().await?;
    let mut carrier = routing
        .carriers
        .into_iter()
        .find(|carrier| carrier.name == name)
        .ok_or(ConsoleError::NotFound)?;
    carrier.enabled = form.enabled == "true";
    state.routing.put_carrier(carrier.clone()).await?;
    let action = if carrier.enabled {
        "carrier_enable"
    } else {
        "carrier_disable"
    };
    audit(&state, &user, action, &name, None, None).await?;
    Ok(Redirect::to("/console/carriers").into_response())
}

pub async fn delete_carrier(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(name): UrlPath<String>,
    Form(form): Form<super::CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change carriers.")?;
    match state.routing.delete_carrier(&name).await {
        Ok(_) => {
            audit(&state, &user, "carrier_delete", &name, None, None).await?;
            Ok(Redirect::to("/console/carriers").into_response())
        }
        Err(error) => {
            let refused = field_error(error)?;
            refused_carriers_page(&state, &user, &CarrierForm::default(), &refused).await
        }
    }
}

/// The route form's fields, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct RouteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    mode: String,
    /// `name[:priority[:weight]]`, comma-separated.
    #[serde(default)]
    carriers: String,
    #[serde(default)]
    blocked: Option<String>,
}

impl RouteForm {
    fn route(&self) -> Result<RouteConfig, FieldError> {
        let prefix = self.prefix.trim();
        if !prefix.chars().all(|c| c.is_ascii_digit()) {
            return Err(("prefix", format!("{prefix:?} is not digits")));
        }
        let mode = match self.mode.trim() {
            "" | "priority" => RouteMode::Priority,
            "least_cost" => RouteMode::LeastCost,
            "weighted" => RouteMode::Weighted,
            other => {
                return Err((
                    "mode",
                    format!("{other:?} is not priority, least_cost or weighted"),
                ));
            }
        };
        let mut carriers = Vec::new();
        for entry in self.carriers.split(',').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let mut parts = entry.split(':');
            let mut carrier = RouteCarrier::new(parts.next().unwrap_or_default().trim());
            if let Some(priority) = parts.next() {
                carrier.priority = number_or(priority, "carriers", 0)?;
            }
            if let Some(weight) = parts.next() {
                carrier.weight = number_or(weight, "carriers", 1)?;
            }
            if parts.next().is_some() {
                return Err(("carriers", format!("{entry:?} is not name:priority:weight")));
            }
            carriers.push(carrier);
        }
        Ok(RouteConfig {
            prefix: prefix.to_owned(),
            mode,
            carriers,
            blocked: self.blocked.is_some(),
        })
    }
}

pub async fn dial_plans_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
) -> Result<Html<String>, ConsoleError> {
    let routing = state.routing.current().await?;
    Ok(Html(dial_plans_html(
        &user,
        &routing,
        &RouteForm::default(),
        None,
        None,
    )))
}

fn mode_name(mode: RouteMode) -> &'static str {
    match mode {
        RouteMode::Priority => "priority",
        RouteMode::LeastCost => "least_cost",
        RouteMode::Weighted => "weighted",
    }
}

fn dial_plans_html(
    user: &LoggedIn,
    routing: &Routing,
    form: &RouteForm,
    error: Option<&FieldError>,
    explanation: Option<&str>,
) -> String {
    let csrf = csrf_field(user);
    let may_change = super::auth::may_change(&user.user);
    let mut body = String::new();
    for plan in &routing.dial_plans {
        let name = escape(&plan.name);
        let _ = write!(
            body,
            "<h2>Dial plan {name}</h2><table class=\"plan\" data-plan=\"{name}\"><thead><tr>\
             <th>Prefix</th><th>Mode</th><th>Carriers (name:priority:weight)</th><th></th></tr>\
             </thead><tbody>"
        );
        for route in &plan.routes {
            let carriers = if route.blocked {
                "blocked".to_owned()
            } else {
                route
                    .carriers
                    .iter()
                    .map(|c| format!("{}:{}:{}", c.name, c.priority, c.weight))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let remove = if may_change {
                format!(
                    "<form class=\"inline\" method=\"post\" \
                     action=\"/console/dial-plans/route/remove\">{csrf}\
                     <input type=\"hidden\" name=\"plan\" value=\"{name}\">\
                     <input type=\"hidden\" name=\"prefix\" value=\"{}\">\
                     <button class=\"remove-route\">Remove</button></form>",
                    escape(&route.prefix)
                )
            } else {
                String::new()
            };
            let _ = write!(
                body,
                "<tr class=\"route\"><td>{}</td><td>{}</td><td>{}</td><td>{remove}</td></tr>",
                if route.prefix.is_empty() {
                    "(any)".to_owned()
                } else {
                    escape(&route.prefix)
                },
                mode_name(route.mode),
                escape(&carriers),
            );
        }
        body.push_str("</tbody></table>");
    }
    if may_change {
        let selected = |value: &str| {
            if form.mode == value || (form.mode.is_empty() && value == "priority") {
                " selected"
            } else {
                ""
            }
        };
        let _ = write!(
            body,
            "<h2>Add or replace a route</h2><form method=\"post\" \
             action=\"/console/dial-plans/route\">{csrf}{}{}\
             <p><label>Mode <select name=\"mode\" id=\"mode\"><option{}>priority</option>\
             <option{}>least_cost</option><option{}>weighted</option></select></label>{}</p>{}\
             <p><label><input type=\"checkbox\" name=\"blocked\" id=\"blocked\"> Blocked</label>\
             </p><p><button id=\"save-route\">Save route</button></p></form>\
             <h2>Remove a dial plan</h2><form method=\"post\" action=\"/console/dial-plans/delete\">\
             {csrf}<p><label>Dial plan <input name=\"plan\" id=\"delete-plan\"></label>{}</p>\
             <p><button id=\"delete-plan-button\">Remove</button></p></form>",
            text_field(
                "plan",
                "Dial plan (a new name makes a new plan)",
                &form.plan,
                error
            ),
            text_field(
                "prefix",
                "Prefix (empty = every number)",
                &form.prefix,
                error
            ),
            selected("priority"),
            selected("least_cost"),
            selected("weighted"),
            message_at(error, "mode"),
            text_field(
                "carriers",
                "Carriers (name:priority:weight, comma-separated)",
                &form.carriers,
                error
            ),
            message_at(error, "name"),
        );
    }
    let _ = write!(
        body,
        "<h2>Explain a route</h2><form method=\"get\" action=\"/console/routes/explain\">\
         <p><label>Dial plan <input name=\"plan\" id=\"explain-plan\"></label></p>\
         <p><label>Number <input name=\"number\" id=\"explain-number\"></label></p>\
         <p><button id=\"explain\">Explain</button></p></form>"
    );
    if let Some(text) = explanation {
        let _ = write!(body, "<pre id=\"explanation\">{}</pre>", escape(text));
    }
    page("Dial plans", Some(user), "", &body)
}

pub async fn save_route(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<RouteForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change dial plans.")?;
    let plan_name = form.plan.trim().to_owned();
    let refused = if plan_name.is_empty() || !plan_name.chars().all(is_name_character) {
        (
            "plan",
            "1 to 64 letters, digits, '-', '_' or '.'".to_owned(),
        )
    } else {
        match form.route() {
            Ok(route) => {
                let routing = state.routing.current().await?;
                let mut plan = routing
                    .dial_plans
                    .iter()
                    .find(|plan| plan.name == plan_name)
                    .cloned()
                    .unwrap_or_else(|| DialPlanConfig {
                        name: plan_name.clone(),
                        routes: Vec::new(),
                    });
                let before = serde_json::to_value(&plan).ok();
                plan.routes
                    .retain(|existing| existing.prefix != route.prefix);
                plan.routes.push(route);
                match state.routing.put_dial_plan(plan.clone()).await {
                    Ok(_) => {
                        let after = serde_json::to_value(&plan).ok();
                        audit(&state, &user, "dial_plan_put", &plan_name, before, after).await?;
                        return Ok(Redirect::to("/console/dial-plans").into_response());
                    }
                    Err(error) => field_error(error)?,
                }
            }
            Err(refused) => refused,
        }
    };
    let routing = state.routing.current().await?;
    let page = dial_plans_html(&user, &routing, &form, Some(&refused), None);
    Ok((StatusCode::BAD_REQUEST, Html(page)).into_response())
}

pub async fn remove_route(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<RouteForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change dial plans.")?;
    let routing = state.routing.current().await?;
    let mut plan = routing
        .dial_plans
        .into_iter()
        .find(|plan| plan.name == form.plan.trim())
        .ok_or(ConsoleError::NotFound)?;
    let before = serde_json::to_value(&plan).ok();
    plan.routes
        .retain(|route| route.prefix != form.prefix.trim());
    let after = serde_json::to_value(&plan).ok();
    let name = plan.name.clone();
    state.routing.put_dial_plan(plan).await?;
    audit(&state, &user, "dial_plan_put", &name, before, after).await?;
    Ok(Redirect::to("/console/dial-plans").into_response())
}

pub async fn delete_plan(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<RouteForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change dial plans.")?;
    let name = form.plan.trim();
    let refused = match state.routing.delete_dial_plan(name).await {
        Ok(_) => {
            audit(&state, &user, "dial_plan_delete", name, None, None).await?;
            return Ok(Redirect::to("/console/dial-plans").into_response());
        }
        Err(error) => field_error(error)?,
    };
    let routing = state.routing.current().await?;
    let page = dial_plans_html(&user, &routing, &RouteForm::default(), Some(&refused), None);
    Ok((StatusCode::BAD_REQUEST, Html(page)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ExplainQuery {
    #[serde(default)]
    plan: String,
    #[serde(default)]
    number: String,
}

pub async fn explain(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Query(query): Query<ExplainQuery>,
) -> Result<Html<String>, ConsoleError> {
    let text = match crate::admin_routing::explain_text(
        &state.routing,
        &state.store,
        query.plan.trim(),
        query.number.trim(),
    )
    .await
    {
        Ok(text) => text,
        Err(error) => error.to_string(),
    };
    let routing = state.routing.current().await?;
    Ok(Html(dial_plans_html(
        &user,
        &routing,
        &RouteForm::default(),
        None,
        Some(&text),
    )))
}
