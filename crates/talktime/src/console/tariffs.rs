//! Tariffs in the console: the list, a tariff's rates browsed by prefix with keyset paging
//! (100,000 prefixes stay quick), and a CSV import with a dry run that reports each bad row
//! by line and column and writes nothing.

use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use talktime_store::ImportOptions;

use std::fmt::Write as _;

use axum::response::Redirect;

use super::pages::{csrf_field, escape};
use super::{ConsoleError, ConsoleState, LoggedIn, pages};
use crate::server::wall_clock_ms;

/// Rates per page.
const RATE_PAGE: i64 = 100;

pub async fn tariffs_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
) -> Result<Html<String>, ConsoleError> {
    let mut listed = Vec::new();
    for tariff in state.store.tariffs().await? {
        let count = state.store.rate_count(tariff.id).await?;
        listed.push((tariff, count));
    }
    Ok(Html(pages::tariffs(&user, &listed)))
}

#[derive(Debug, Default, Deserialize)]
pub struct RatesQuery {
    #[serde(default)]
    pub search: String,
    #[serde(default)]
    pub after: String,
}

pub async fn tariff_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Query(query): Query<RatesQuery>,
) -> Result<Response, ConsoleError> {
    tariff_view(&state, &user, id, &query, None, &Extras::default()).await
}

/// The simulator's report as HTML, or the field at fault and why.
type Simulated = Result<String, (&'static str, String)>;

/// The settings form (as stored, or as typed with its error) and the simulator's result.
#[derive(Debug, Default)]
struct Extras {
    settings: Option<(String, String)>,
    simulation: Option<(SimulateQuery, Simulated)>,
}

fn extras_html(
    user: &LoggedIn,
    tariff: &talktime_store::Tariff,
    extras: &Extras,
) -> Result<String, ConsoleError> {
    let mut html = String::new();
    if super::auth::may_change(&user.user) {
        let (text, error) = match &extras.settings {
            Some((text, error)) => (text.clone(), Some(error.as_str())),
            None => {
                let settings = crate::tariff_admin::settings_of(tariff)
                    .map_err(|error| ConsoleError::Internal(error.to_string()))?;
                let text = crate::tariff_admin::settings_toml(&settings)
                    .map_err(|error| ConsoleError::Internal(error.to_string()))?;
                (text, None)
            }
        };
        let message = error
            .map(|text| {
                format!(
                    "<p class=\"error\" id=\"error-settings\">{}</p>",
                    escape(text)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            html,
            "<h2>Settings</h2>{message}<form method=\"post\" \
             action=\"/console/tariffs/{}/settings\">{}<p><textarea name=\"settings\" \
             id=\"settings\" rows=\"14\" cols=\"80\">{}</textarea></p>\
             <p><button id=\"save-settings\">Save settings</button></p></form>",
            tariff.id,
            csrf_field(user),
            escape(&text)
        );
    }
    let blank = SimulateQuery::default();
    let (query, result) = match &extras.simulation {
        Some((query, result)) => (query, Some(result)),
        None => (&blank, None),
    };
    let field_error = |field: &str| match result {
        Some(Err((bad, text))) if *bad == field => format!(
            " <span class=\"error\" id=\"error-{field}\">{}</span>",
            escape(text)
        ),
        _ => String::new(),
    };
    let checked = if query.toll_free.is_some() {
        " checked"
    } else {
        ""
    };
    let _ = write!(
        html,
        "<h2>Rate simulator</h2><form method=\"get\" action=\"/console/tariffs/{}/simulate\">\
         <p><label>Number <input name=\"number\" id=\"sim-number\" value=\"{}\"></label>{}</p>\
         <p><label>Seconds <input name=\"seconds\" id=\"sim-seconds\" value=\"{}\"></label>{}</p>\
         <p><label>Balance (for the talk time) <input name=\"balance\" id=\"sim-balance\" \
         value=\"{}\"></label>{}</p><p><label>Local start <input name=\"at\" id=\"sim-at\" \
         value=\"{}\" placeholder=\"2026-11-23T18:30:00\"></label>{}</p><p><label><input \
         type=\"checkbox\" name=\"toll_free\" id=\"sim-toll-free\"{checked}> Toll-free access \
         number</label></p><p><button id=\"simulate\">Rate it</button></p></form>",
        tariff.id,
        escape(&query.number),
        field_error("number"),
        escape(&query.seconds),
        field_error("seconds"),
        escape(&query.balance),
        field_error("balance"),
        escape(&query.at),
        field_error("at"),
    );
    if let Some(Ok(report)) = result {
        html.push_str(report);
    }
    Ok(html)
}

async fn tariff_view(
    state: &ConsoleState,
    user: &LoggedIn,
    id: i64,
    query: &RatesQuery,
    report: Option<&talktime_store::ImportReport>,
    extras: &Extras,
) -> Result<Response, ConsoleError> {
    let tariff = match state.store.tariff(id).await {
        Ok(tariff) => tariff,
        Err(talktime_store::StoreError::NotFound { .. }) => return Err(ConsoleError::NotFound),
        Err(error) => return Err(error.into()),
    };
    let search = query.search.trim();
    if !search.chars().all(|c| c.is_ascii_digit()) {
        let page = pages::tariff(
            user,
            &tariff,
            query,
            &[],
            Some("A prefix is digits."),
            report,
            &extras_html(user, &tariff, extras)?,
        );
        return Ok((StatusCode::BAD_REQUEST, Html(page)).into_response());
    }
    let rates = state
        .store
        .rates_page(id, search, query.after.trim(), RATE_PAGE)
        .await?;
    let more = rates.len() as i64 == RATE_PAGE;
    let page = pages::tariff(
        user,
        &tariff,
        query,
        &rates,
        None,
        report,
        &extras_html(user, &tariff, extras)?,
    );
    let page = if more {
        page
    } else {
        page.replace("<a id=\"next\"", "<a hidden id=\"next\"")
    };
    Ok(Html(page).into_response())
}

#[derive(Deserialize)]
pub struct ImportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    csv: String,
    #[serde(default)]
    dry_run: Option<String>,
}

pub async fn import(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<ImportForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change tariffs.")?;
    let options = ImportOptions {
        dry_run: form.dry_run.is_some(),
        ..ImportOptions::default()
    };
    let extras = crate::ledger::rate_extras_columns();
    let report = state
        .store
        .import_tariff_csv_with(id, form.csv.as_bytes(), options, Some(&extras))
        .await;
    let report = match report {
        Ok(report) => report,
        Err(talktime_store::StoreError::CsvHeader(message)) => talktime_store::ImportReport {
            rows_read: 0,
            rows_valid: 0,
            rows_written: 0,
            errors: vec![talktime_store::RowError {
                line: 1,
                column: None,
                message,
            }],
        },
        Err(error) => return Err(error.into()),
    };
    if report.rows_written > 0 {
        state
            .store
            .audit(
                Some(&user.user),
                "tariff_import",
                &format!("tariff {id}"),
                None,
                Some(&format!("{} rows", report.rows_written)),
                wall_clock_ms(),
            )
            .await?;
    }
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let view = tariff_view(
        &state,
        &user,
        id,
        &RatesQuery::default(),
        Some(&report),
        &Extras::default(),
    )
    .await?;
    Ok((status, view).into_response())
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    settings: String,
}

/// Replaces a tariff's settings from the form's TOML (the `tariffs settings` file format);
/// a wrong key or value is named above the form and nothing is written.
pub async fn save_settings(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<SettingsForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change tariffs.")?;
    let tariff = match state.store.tariff(id).await {
        Ok(tariff) => tariff,
        Err(talktime_store::StoreError::NotFound { .. }) => return Err(ConsoleError::NotFound),
        Err(error) => return Err(error.into()),
    };
    let before = tariff.settings_json.clone();
    match crate::tariff_admin::replace_settings_text(&state.store, &tariff, &form.settings).await {
        Ok(settings) => {
            state
                .store
                .audit(
                    Some(&user.user),
                    "tariff_settings",
                    &format!("tariff {}", tariff.name),
                    Some(&before),
                    Some(&settings.to_json()),
                    wall_clock_ms(),
                )
                .await?;
            Ok(Redirect::to(&format!("/console/tariffs/{id}")).into_response())
        }
        Err(error) => {
            let extras = Extras {
                settings: Some((form.settings.clone(), format!("{error:#}"))),
                simulation: None,
            };
            let view =
                tariff_view(&state, &user, id, &RatesQuery::default(), None, &extras).await?;
            Ok((StatusCode::BAD_REQUEST, view).into_response())
        }
    }
}

/// The rate simulator's fields, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct SimulateQuery {
    #[serde(default)]
    number: String,
    #[serde(default)]
    seconds: String,
    #[serde(default)]
    balance: String,
    #[serde(default)]
    at: String,
    #[serde(default)]
    toll_free: Option<String>,
}

/// Prices a call as the switch would (`talktime rate`): every fee, the taxes, the total and,
/// given a balance, the maximum talk time.
pub async fn simulate(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Query(query): Query<SimulateQuery>,
) -> Result<Response, ConsoleError> {
    let result = simulation(&state, id, &query).await?;
    let failed = result.is_err();
    let extras = Extras {
        settings: None,
        simulation: Some((query, result)),
    };
    let view = tariff_view(&state, &user, id, &RatesQuery::default(), None, &extras).await?;
    let status = if failed {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, view).into_response())
}

async fn simulation(
    state: &ConsoleState,
    id: i64,
    query: &SimulateQuery,
) -> Result<Simulated, ConsoleError> {
    let number = query.number.trim();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Err((
            "number",
            "Digits in international form, e.g. 441234567890.".into(),
        )));
    }
    let seconds = match query.seconds.trim() {
        "" => 60,
        text => match text.parse::<u64>() {
            Ok(seconds) if seconds <= 86_400 => seconds,
            _ => return Ok(Err(("seconds", "0 to 86400 seconds.".into()))),
        },
    };
    let at = match query.at.trim() {
        "" => "2026-01-01T12:00:00",
        text => text,
    };
    let start = match crate::admin::parse_local_start(at) {
        Ok(start) => start,
        Err(error) => return Ok(Err(("at", format!("{error:#}")))),
    };
    let deck = crate::ledger::load_deck(&state.store, id)
        .await
        .map_err(|error| ConsoleError::Internal(error.to_string()))?;
    let settings = deck.settings().clone();
    let balance = match query.balance.trim() {
        "" => None,
        text => match talktime_store::parse_micros(text) {
            Ok(micros) => Some(talktime_billing::Money::from_micros(
                micros,
                settings.currency,
            )),
            Err(error) => return Ok(Err(("balance", error.to_string()))),
        },
    };
    let request = talktime_billing::SimulationRequest {
        number: number.to_owned(),
        duration_ms: seconds * 1000,
        start,
        toll_free_access: query.toll_free.is_some(),
        package_seconds_available: 0,
        account_fees: Vec::new(),
        taxes: settings.tax_profile(),
        balance,
    };
    let report = match talktime_billing::simulate(&deck, &request) {
        Ok(report) => report,
        Err(error) => return Ok(Err(("number", error.to_string()))),
    };
    let charge = &report.charge;
    let talk_time = report
        .max_talk_time
        .as_ref()
        .and_then(|talk| serde_json::to_value(talk).ok())
        .map(|value| {
            format!(
                "<p>Maximum talk time: <code id=\"sim-talk-time\">{}</code></p>",
                escape(&value.to_string())
            )
        })
        .unwrap_or_default();
    let json = serde_json::to_string_pretty(&report)
        .map_err(|error| ConsoleError::Internal(error.to_string()))?;
    Ok(Ok(format!(
        "<div id=\"simulation\"><p>Billed {} s; call charges {}, taxes {}, total \
         <strong id=\"sim-total\">{}</strong>; margin {}.</p>{talk_time}<details><summary>\
         Every step</summary><pre>{}</pre></details></div>",
        charge.billed_seconds,
        charge.call_charges,
        charge.tax_total,
        charge.total,
        charge.margin,
        escape(&json)
    )))
}
