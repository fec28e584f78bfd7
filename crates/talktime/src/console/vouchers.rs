//! Vouchers and speed dials in the console (issue 21): a voucher batch made and downloaded
//! as CSV (its codes, the only time they can be read), a batch's vouchers with who used
//! them, and an account's speed dials set and removed.

use std::fmt::Write as _;

use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::{csrf_field, escape, page};
use super::{ConsoleError, ConsoleState, LoggedIn, audit};
use crate::server::wall_clock_ms;
use crate::vouchers::VoucherOrder;

#[derive(Deserialize, Default)]
pub struct BatchQuery {
    #[serde(default)]
    batch: Option<i64>,
}

pub async fn vouchers_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Query(query): Query<BatchQuery>,
) -> Result<Html<String>, ConsoleError> {
    let listed = match query.batch {
        Some(batch) => Some((batch, state.store.vouchers_of_batch(batch).await?)),
        None => None,
    };
    Ok(Html(vouchers_html(&user, listed.as_ref(), None)))
}

fn vouchers_html(
    user: &LoggedIn,
    listed: Option<&(i64, Vec<talktime_store::VoucherRow>)>,
    error: Option<&str>,
) -> String {
    let csrf = csrf_field(user);
    let mut body = String::from(
        "<p>Vouchers are single-use recharge codes: a caller keys one after <code>*0</code> at \
         the destination prompt, or on a recharge line, and its value is added once.</p>",
    );
    if super::auth::may_change(&user.user) {
        let message = error
            .map(|text| {
                format!(
                    "<p class=\"error\" id=\"error-voucher\">{}</p>",
                    escape(text)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            body,
            "<h2>New batch</h2>{message}<form method=\"post\" action=\"/console/vouchers\">{csrf}\
             <p><label>Name <input name=\"name\" id=\"voucher-name\"></label></p>\
             <p><label>Vouchers <input name=\"count\" id=\"voucher-count\"></label></p>\
             <p><label>Value <input name=\"value\" id=\"voucher-value\"></label></p>\
             <p><label>Currency <input name=\"currency\" id=\"voucher-currency\" value=\"USD\"></label></p>\
             <p><label>Last day (YYYY-MM-DD, optional) <input name=\"expires_on\" \
             id=\"voucher-expires\"></label></p>\
             <p><label>Gift card design (optional) <input name=\"design\" \
             id=\"voucher-design\"></label></p>\
             <p><button id=\"generate-vouchers\">Generate and download CSV</button></p></form>"
        );
    }
    body.push_str(
        "<h2>A batch</h2><form method=\"get\" action=\"/console/vouchers\"><p><label>Batch id \
         <input name=\"batch\" id=\"voucher-batch\"></label> <button id=\"show-batch\">Show</button>\
         </p></form>",
    );
    if let Some((batch, rows)) = listed {
        let _ = write!(
            body,
            "<table id=\"vouchers\"><caption>Batch {batch}</caption><thead><tr><th>Voucher</th>\
             <th>Value</th><th>State</th><th>Used</th><th>By account</th></tr></thead><tbody>"
        );
        for row in rows {
            let state = if row.used_at_ms.is_some() {
                "used"
            } else {
                row.status.as_str()
            };
            let account = row
                .used_by_account_id
                .map(|id| format!("<a href=\"/console/accounts/{id}\">{id}</a>"))
                .unwrap_or_default();
            let used = row.used_at_ms.map(super::pages::utc).unwrap_or_default();
            let _ = write!(
                body,
                "<tr class=\"voucher\"><td>{}</td><td>{} {}</td><td class=\"state\">{state}</td>\
                 <td>{used}</td><td>{account}</td></tr>",
                row.id,
                talktime_store::format_micros(row.value_micros),
                escape(&row.currency),
            );
        }
        body.push_str("</tbody></table>");
    }
    page("Vouchers", Some(user), "", &body)
}

#[derive(Deserialize)]
pub struct VoucherForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    expires_on: String,
    #[serde(default)]
    design: String,
}

/// Makes a batch and answers with its CSV.
pub async fn generate(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<VoucherForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not make vouchers.")?;
    let refuse = |text: String| {
        let page = vouchers_html(&user, None, Some(&text));
        Ok((StatusCode::BAD_REQUEST, Html(page)).into_response())
    };
    let Ok(count) = form.count.trim().parse::<u32>() else {
        return refuse("How many vouchers: a whole number, e.g. 100.".into());
    };
    if form.name.trim().is_empty() {
        return refuse("A batch needs a name.".into());
    }
    let order = VoucherOrder {
        name: form.name.trim().to_owned(),
        count,
        value: form.value.trim().to_owned(),
        currency: Some(form.currency.trim().to_ascii_uppercase())
            .filter(|code| !code.is_empty())
            .unwrap_or_else(|| "USD".into()),
        code_length: 12,
        expires_on: Some(form.expires_on.trim().to_owned()).filter(|day| !day.is_empty()),
        design: Some(form.design.trim().to_owned()).filter(|design| !design.is_empty()),
    };
    let batch = match order.generate(&state.store).await {
        Ok(batch) => batch,
        Err(crate::admin_http::AdminError::Store(error)) => return Err(error.into()),
        Err(error) => return refuse(error.to_string()),
    };
    let mut csv = Vec::new();
    batch
        .write_csv(&mut csv)
        .map_err(|error| ConsoleError::Internal(error.to_string()))?;
    state
        .store
        .audit(
            Some(&user.user),
            "vouchers_generate",
            &format!("voucher batch {} ({})", batch.id, batch.name),
            None,
            Some(&format!("{} vouchers", batch.codes.len())),
            wall_clock_ms(),
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"vouchers-{}.csv\"", batch.id),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        csv,
    )
        .into_response())
}

// ----- speed dials on the account page -----

#[derive(Deserialize)]
pub struct SpeedDialForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    number: String,
}

/// The account page's speed-dial section.
pub fn speed_dials_html(
    user: &LoggedIn,
    account: i64,
    dials: &[(u8, talktime_pii::Pii<String>)],
    error: Option<(&str, &str)>,
) -> String {
    let csrf = csrf_field(user);
    let may_change = super::auth::may_change(&user.user);
    let mut body = String::from("<h2>Speed dials</h2><ul>");
    for (key, number) in dials {
        let remove = if may_change {
            format!(
                " <form class=\"inline\" method=\"post\" \
                 action=\"/console/accounts/{account}/speed-dials/remove\">{csrf}\
                 <input type=\"hidden\" name=\"key\" value=\"{key}\">\
                 <button class=\"remove\">Remove</button></form>"
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<li class=\"speed-dial\">{key}: {}{remove}</li>",
            escape(number.expose())
        );
    }
    body.push_str("</ul>");
    if may_change {
        let message = match error {
            Some(("speed", text)) => format!(
                " <span class=\"error\" id=\"error-speed\">{}</span>",
                escape(text)
            ),
            _ => String::new(),
        };
        let keys: String = (1..=9)
            .map(|key| format!("<option>{key}</option>"))
            .collect();
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/console/accounts/{account}/speed-dials\">{csrf}\
             <p><label>Key <select name=\"key\" id=\"speed-key\">{keys}</select></label> \
             <label>Number <input name=\"number\" id=\"speed-number\"></label>{message}</p>\
             <p><button id=\"add-speed-dial\">Store</button></p></form>"
        );
    }
    body
}

fn key(text: &str) -> Option<u8> {
    text.trim()
        .parse::<u8>()
        .ok()
        .filter(|key| talktime_store::SPEED_DIAL_SLOTS.contains(key))
}

pub async fn set_speed_dial(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<SpeedDialForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change speed dials.")?;
    let number = talktime_engine::normalize_destination(form.number.trim());
    let (Some(key), Ok(number)) = (key(&form.key), number) else {
        let page = super::accounts::account_view(
            &state,
            &user,
            id,
            Some((
                "speed",
                "A key 1-9 and a number as dialled, e.g. 00442071234567.",
            )),
        )
        .await?;
        return Ok((StatusCode::BAD_REQUEST, Html(page)).into_response());
    };
    state
        .store
        .set_speed_dial(id, key, &talktime_pii::Pii::new(number), wall_clock_ms())
        .await?;
    audit(
        &state,
        &user,
        "speed_dial_set",
        &speed_dial_subject(id, key),
        None,
        None,
    )
    .await?;
    Ok(Redirect::to(&format!("/console/accounts/{id}")).into_response())
}

pub async fn remove_speed_dial(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<SpeedDialForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change speed dials.")?;
    if let Some(key) = key(&form.key)
        && state.store.remove_speed_dial(id, key).await?
    {
        audit(
            &state,
            &user,
            "speed_dial_remove",
            &speed_dial_subject(id, key),
            None,
            None,
        )
        .await?;
    }
    Ok(Redirect::to(&format!("/console/accounts/{id}")).into_response())
}

/// The audit log's subject of a speed dial.
fn speed_dial_subject(account: i64, key: u8) -> String {
    format!("account {account} key {key}")
}
