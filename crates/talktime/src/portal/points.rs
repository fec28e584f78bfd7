//! A customer's bonus points in the portal: the balance, the last lines (earned on calls,
//! redeemed), and credit or free minutes bought with them once per form shown (the form's
//! key).

use std::fmt::Write;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use talktime_store::{MinutesRedemption, PointsRedemption, format_micros};

use super::{Customer, PortalError, PortalState, home_page};
use crate::console::{auth, escape, utc};
use crate::server::wall_clock_ms;

/// Points lines shown.
const LINES_SHOWN: i64 = 20;

#[derive(Deserialize)]
pub(super) struct RedeemForm {
    #[serde(default)]
    csrf: String,
    /// The form's own key: sent twice, it redeems once.
    key: String,
    points: String,
}

pub(super) async fn redeem(
    State(state): State<PortalState>,
    customer: Customer,
    Form(form): Form<RedeemForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    let points = form
        .points
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|points| *points > 0);
    let outcome = match points {
        Some(points) if !form.key.is_empty() && form.key.len() <= 64 => {
            state
                .store
                .redeem_points(
                    customer.session.account_id,
                    points,
                    &form.key,
                    wall_clock_ms(),
                )
                .await?
        }
        _ => {
            let body =
                home_page(&state, &customer, Some("Redeem a whole number of points.")).await?;
            return Ok((StatusCode::BAD_REQUEST, Html(body)).into_response());
        }
    };
    let (status, notice) = match outcome {
        PointsRedemption::Credited { credit_micros, .. } => (
            StatusCode::OK,
            format!(
                "Your points bought {} of credit.",
                format_micros(credit_micros)
            ),
        ),
        PointsRedemption::Replayed => (StatusCode::OK, "Done already.".to_owned()),
        PointsRedemption::NotEnoughPoints { points } => (
            StatusCode::BAD_REQUEST,
            format!("You have {points} points."),
        ),
        PointsRedemption::NoValue => (
            StatusCode::BAD_REQUEST,
            "Points cannot be redeemed in your currency yet.".to_owned(),
        ),
    };
    let body = home_page(&state, &customer, Some(&notice)).await?;
    Ok((status, Html(body)).into_response())
}

#[derive(Deserialize)]
pub(super) struct MinutesForm {
    #[serde(default)]
    csrf: String,
    /// The form's own key: sent twice, it redeems once.
    key: String,
    minutes: String,
}

pub(super) async fn redeem_minutes(
    State(state): State<PortalState>,
    customer: Customer,
    Form(form): Form<MinutesForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    let minutes = form
        .minutes
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|minutes| (1..=10_000).contains(minutes));
    let outcome = match minutes {
        Some(minutes) if !form.key.is_empty() && form.key.len() <= 64 => {
            state
                .store
                .redeem_points_for_minutes(
                    customer.session.account_id,
                    minutes,
                    &form.key,
                    wall_clock_ms(),
                )
                .await?
        }
        _ => {
            let notice = "Ask for a whole number of minutes.";
            let body = home_page(&state, &customer, Some(notice)).await?;
            return Ok((StatusCode::BAD_REQUEST, Html(body)).into_response());
        }
    };
    let (status, notice) = match outcome {
        MinutesRedemption::Added { seconds_left, .. } => (
            StatusCode::OK,
            format!(
                "Your points bought free minutes: you have {} free.",
                free_time(seconds_left)
            ),
        ),
        MinutesRedemption::Replayed => (StatusCode::OK, "Done already.".to_owned()),
        MinutesRedemption::NotEnoughPoints { points } => (
            StatusCode::BAD_REQUEST,
            format!("You have {points} points."),
        ),
        MinutesRedemption::NoOffer => (
            StatusCode::BAD_REQUEST,
            "Points buy no minutes in your currency.".to_owned(),
        ),
        MinutesRedemption::PlanPackage => (
            StatusCode::CONFLICT,
            "Your plan has its own free minutes each period: points cannot add to them.".to_owned(),
        ),
    };
    let body = home_page(&state, &customer, Some(&notice)).await?;
    Ok((status, Html(body)).into_response())
}

/// Free seconds as minutes and seconds ("2 min 30 s").
fn free_time(seconds: i64) -> String {
    match (seconds / 60, seconds % 60) {
        (minutes, 0) => format!("{minutes} min"),
        (minutes, rest) => format!("{minutes} min {rest} s"),
    }
}

/// The home page's section: the points, their lines, the form when points buy something.
pub(super) async fn section(
    state: &PortalState,
    customer: &Customer,
    currency: &str,
) -> Result<String, PortalError> {
    let account_id = customer.session.account_id;
    let points = state.store.points(account_id).await?;
    let lines = state.store.points_lines(account_id, LINES_SHOWN).await?;
    let value = state.store.points_value(currency).await?;
    let mut body =
        format!("<h2>Bonus points</h2><p>You have <strong id=\"points\">{points}</strong> points");
    if let Some(value) = value {
        let _ = write!(
            body,
            " (each buys {} {}).</p><form method=\"post\" action=\"/portal/points\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"key\" \
             value=\"{}\"><label>Points to redeem <input name=\"points\" id=\"redeem-points\" \
             inputmode=\"numeric\" required></label> <button id=\"redeem\">Buy credit</button></form>",
            format_micros(value),
            escape(currency),
            escape(&customer.session.csrf_token),
            auth::random_hex(12),
        );
    } else {
        body.push_str(".</p>");
    }
    if let Some(offer) = state.store.points_minutes(currency).await? {
        let plan = state.store.account_plan(account_id).await?;
        let free = plan.map_or(0, |plan| plan.package_seconds_left(wall_clock_ms()));
        let prefixes: Vec<String> = offer
            .prefixes
            .split(',')
            .map(|prefix| format!("+{prefix}"))
            .collect();
        let _ = write!(
            body,
            "<p>Free minutes: {} points a minute on calls to {}. You have <strong              id=\"free-minutes\">{}</strong> free.</p><form method=\"post\"              action=\"/portal/points/minutes\"><input type=\"hidden\" name=\"csrf\"              value=\"{}\"><input type=\"hidden\" name=\"key\" value=\"{}\"><label>Minutes              <input name=\"minutes\" id=\"redeem-minutes\" inputmode=\"numeric\" required>\
             </label> <button id=\"buy-minutes\">Buy free minutes</button></form>",
            offer.points_per_minute,
            escape(&prefixes.join(", ")),
            free_time(free),
            escape(&customer.session.csrf_token),
            auth::random_hex(12),
        );
    }
    if !lines.is_empty() {
        body.push_str("<table id=\"points-lines\"><tbody>");
        for line in &lines {
            let _ = write!(
                body,
                "<tr class=\"points-line\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                utc(line.created_at_ms),
                escape(&line.kind),
                line.points,
                line.balance_after
            );
        }
        body.push_str("</tbody></table>");
    }
    Ok(body)
}
