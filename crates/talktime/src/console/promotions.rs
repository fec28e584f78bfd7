//! Promotions and news for the customer portal on the console (issue 22): the coupons customers
//! give with a voucher recharge, with their uses, and the messages the portal's board shows to
//! every customer or to one reseller's. The same rules as `talktime coupons add` and
//! `talktime messages post` (crate::coupons::CouponText, the store's checks).

use std::fmt::Write as _;

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use talktime_store::{StoreError, format_micros};

use super::pages::{csrf_field, escape, page, utc};
use super::{ConsoleError, ConsoleState, CsrfForm, LoggedIn, audit};
use crate::coupons::CouponText;
use crate::server::wall_clock_ms;

// ----- coupons -----

pub async fn coupons_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
) -> Result<Html<String>, ConsoleError> {
    Ok(Html(coupons_html(&state, &user, None).await?))
}

async fn coupons_html(
    state: &ConsoleState,
    user: &LoggedIn,
    error: Option<&str>,
) -> Result<String, ConsoleError> {
    let coupons = state.store.coupons().await?;
    let mut body = String::from(
        "<p>A customer gives a coupon's code with a voucher in the portal: the coupon adds a \
         share of the voucher or an amount, as a <code>promotion</code> line.</p>\
         <table id=\"coupons\"><tr><th>Code</th><th>Adds</th><th>Valid (UTC)</th>\
         <th>Uses</th><th>Per customer</th></tr>",
    );
    for coupon in &coupons {
        let adds = if coupon.percent_bp > 0 {
            format!("{} %", format_micros(coupon.percent_bp * 10_000))
        } else {
            format!(
                "{} {}",
                format_micros(coupon.amount_micros),
                escape(&coupon.currency)
            )
        };
        let from = coupon.valid_from_ms.map(utc).unwrap_or_default();
        let until = coupon
            .valid_until_ms
            .map(utc)
            .unwrap_or_else(|| "no end".into());
        let limit = |value: i64| {
            if value == 0 {
                "no limit".to_owned()
            } else {
                value.to_string()
            }
        };
        let _ = write!(
            body,
            "<tr class=\"coupon\"><td>{}</td><td>{adds}</td><td>{from} – {until}</td>\
             <td>{} of {}</td><td>{}</td></tr>",
            escape(&coupon.code),
            coupon.uses,
            limit(coupon.max_uses),
            limit(coupon.max_uses_per_account),
        );
    }
    body.push_str("</table>");
    if super::auth::may_change(&user.user) {
        let _ = write!(
            body,
            "<h2>New coupon</h2>{}<form method=\"post\" action=\"/console/coupons\">{}\
             <p><label>Code <input name=\"code\" id=\"coupon-code\" required></label></p>\
             <p><label>Share of the recharge, % <input name=\"percent\" id=\"coupon-percent\">\
             </label> or <label>amount <input name=\"amount\" id=\"coupon-amount\"></label> \
             <label>currency <input name=\"currency\" id=\"coupon-currency\" value=\"USD\">\
             </label></p><p><label>First day (YYYY-MM-DD, optional) <input name=\"from\" \
             id=\"coupon-from\"></label> <label>last day <input name=\"until\" \
             id=\"coupon-until\"></label></p><p><label>Uses in all (0: no limit) <input \
             name=\"max_uses\" id=\"coupon-max-uses\" value=\"0\"></label> <label>per customer \
             <input name=\"max_per_customer\" id=\"coupon-max-per-customer\" value=\"1\">\
             </label></p><p><button id=\"add-coupon\">Add</button></p></form>",
            error_line(error),
            csrf_field(user),
        );
    }
    Ok(page("Coupons", Some(user), "", &body))
}

/// Writes the change to the audit log under the user's name.
fn error_line(error: Option<&str>) -> String {
    error
        .map(|text| format!("<p class=\"error\" id=\"error\">{}</p>", escape(text)))
        .unwrap_or_default()
}

/// An empty field is "not given".
fn given(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|text| !text.is_empty())
}

#[derive(Deserialize)]
pub struct CouponForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    percent: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    max_uses: String,
    #[serde(default)]
    max_per_customer: String,
}

pub async fn add_coupon(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<CouponForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not make coupons.")?;
    let count = |text: &str| given(text).map_or(Ok(0), str::parse::<i64>);
    let (Ok(max_uses), Ok(max_per_customer)) =
        (count(&form.max_uses), count(&form.max_per_customer))
    else {
        return refuse_coupon(&state, &user, "Use limits are whole numbers (0: no limit).").await;
    };
    let parsed = CouponText {
        code: &form.code,
        percent: given(&form.percent),
        amount: given(&form.amount),
        currency: given(&form.currency).unwrap_or("USD"),
        from: given(&form.from),
        until: given(&form.until),
        max_uses,
        max_per_customer,
    }
    .parse();
    let coupon = match parsed {
        Ok(coupon) => coupon,
        Err(error) => return refuse_coupon(&state, &user, &format!("{error:#}")).await,
    };
    match state.store.create_coupon(&coupon, wall_clock_ms()).await {
        Ok(id) => {
            let subject = format!("coupon {id} ({})", coupon.code.to_ascii_uppercase());
            audit(&state, &user, "coupon_add", &subject, None, None).await?;
            Ok(Redirect::to("/console/coupons").into_response())
        }
        Err(StoreError::InvalidArgument(reason)) => refuse_coupon(&state, &user, &reason).await,
        Err(error) => Err(error.into()),
    }
}

async fn refuse_coupon(
    state: &ConsoleState,
    user: &LoggedIn,
    reason: &str,
) -> Result<Response, ConsoleError> {
    let body = coupons_html(state, user, Some(reason)).await?;
    Ok((StatusCode::BAD_REQUEST, Html(body)).into_response())
}

// ----- the portal's message board -----

pub async fn messages_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
) -> Result<Html<String>, ConsoleError> {
    Ok(Html(messages_html(&state, &user, None).await?))
}

async fn messages_html(
    state: &ConsoleState,
    user: &LoggedIn,
    error: Option<&str>,
) -> Result<String, ConsoleError> {
    let messages = state.store.portal_messages().await?;
    let resellers = state.store.resellers().await?;
    let name_of = |id: i64| {
        resellers
            .iter()
            .find(|reseller| reseller.id == id)
            .map_or_else(
                || format!("reseller {id}"),
                |reseller| reseller.name.clone(),
            )
    };
    let changes = super::auth::may_change(&user.user);
    let csrf = csrf_field(user);
    let mut body = String::from(
        "<p>News on the customer portal's home page, newest first.</p><table id=\"messages\">\
         <tr><th>Title</th><th>Text</th><th>For</th><th>Posted (UTC)</th><th>Until (UTC)</th>\
         <th></th></tr>",
    );
    for message in &messages {
        let audience = message
            .reseller_id
            .map_or_else(|| "every customer".to_owned(), name_of);
        let remove = if changes {
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/console/messages/{}/remove\">\
                 {csrf}<button>Remove</button></form>",
                message.id
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr class=\"message\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{remove}</td></tr>",
            escape(&message.title),
            escape(&message.body),
            escape(&audience),
            utc(message.posted_at_ms),
            message.expires_at_ms.map(utc).unwrap_or_default(),
        );
    }
    body.push_str("</table>");
    if changes {
        let options: String = resellers
            .iter()
            .map(|reseller| {
                format!(
                    "<option value=\"{}\">{}'s customers</option>",
                    reseller.id,
                    escape(&reseller.name)
                )
            })
            .collect();
        let _ = write!(
            body,
            "<h2>Post</h2>{}<form method=\"post\" action=\"/console/messages\">{csrf}\
             <p><label>Title <input name=\"title\" id=\"message-title\" required></label></p>\
             <p><textarea name=\"body\" id=\"message-body\" rows=\"3\" cols=\"70\"></textarea></p>\
             <p><label>For <select name=\"reseller\" id=\"message-reseller\"><option value=\"\">\
             every customer</option>{options}</select></label> <label>Last day (YYYY-MM-DD, \
             optional) <input name=\"until\" id=\"message-until\"></label></p>\
             <p><button id=\"post-message\">Post</button></p></form>",
            error_line(error),
        );
    }
    Ok(page("News", Some(user), "", &body))
}

#[derive(Deserialize)]
pub struct MessageForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    reseller: String,
    #[serde(default)]
    until: String,
}

pub async fn post_message(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<MessageForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not post news.")?;
    let reseller_id = match given(&form.reseller).map(str::parse::<i64>) {
        None => None,
        Some(Ok(id)) => match state.store.reseller(id).await {
            Ok(reseller) => Some(reseller.id),
            Err(StoreError::NotFound { .. }) => {
                return refuse_message(&state, &user, "There is no such reseller.").await;
            }
            Err(error) => return Err(error.into()),
        },
        Some(Err(_)) => return refuse_message(&state, &user, "There is no such reseller.").await,
    };
    let until = match given(&form.until).map(crate::admin::end_of_day_ms) {
        None => None,
        Some(Ok(until)) => Some(until),
        Some(Err(_)) => {
            return refuse_message(&state, &user, "The last day is YYYY-MM-DD.").await;
        }
    };
    let posted = state
        .store
        .post_portal_message(&form.title, &form.body, reseller_id, until, wall_clock_ms())
        .await;
    match posted {
        Ok(id) => {
            let subject = format!("portal message {id}");
            audit(&state, &user, "message_post", &subject, None, None).await?;
            Ok(Redirect::to("/console/messages").into_response())
        }
        Err(StoreError::InvalidArgument(reason)) => refuse_message(&state, &user, &reason).await,
        Err(error) => Err(error.into()),
    }
}

pub async fn remove_message(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not remove news.")?;
    if !state.store.remove_portal_message(id).await? {
        return Err(ConsoleError::NotFound);
    }
    let subject = format!("portal message {id}");
    audit(&state, &user, "message_remove", &subject, None, None).await?;
    Ok(Redirect::to("/console/messages").into_response())
}

async fn refuse_message(
    state: &ConsoleState,
    user: &LoggedIn,
    reason: &str,
) -> Result<Response, ConsoleError> {
    let body = messages_html(state, user, Some(reason)).await?;
    Ok((StatusCode::BAD_REQUEST, Html(body)).into_response())
}
