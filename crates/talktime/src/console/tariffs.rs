//! Tariffs in the console: the list, a tariff's rates browsed by prefix with keyset paging
//! (100,000 prefixes stay quick), and a CSV import with a dry run that reports each bad row
//! by line and column and writes nothing.

use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use talktime_store::ImportOptions;

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
    tariff_view(&state, &user, id, &query, None).await
}

async fn tariff_view(
    state: &ConsoleState,
    user: &LoggedIn,
    id: i64,
    query: &RatesQuery,
    report: Option<&talktime_store::ImportReport>,
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
        );
        return Ok((StatusCode::BAD_REQUEST, Html(page)).into_response());
    }
    let rates = state
        .store
        .rates_page(id, search, query.after.trim(), RATE_PAGE)
        .await?;
    let more = rates.len() as i64 == RATE_PAGE;
    let page = pages::tariff(user, &tariff, query, &rates, None, report);
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
    let view = tariff_view(&state, &user, id, &RatesQuery::default(), Some(&report)).await?;
    Ok((status, view).into_response())
}
