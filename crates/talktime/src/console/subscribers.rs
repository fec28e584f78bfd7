//! SIP subscribers on the console's account page (issue 16): listed, added with a password
//! the switch makes (shown once), disabled and enabled.

use std::fmt::Write as _;

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{ConsoleError, ConsoleState, LoggedIn, escape};
use crate::server::wall_clock_ms;
use crate::subscribers::{AddError, SubscriberOrder};

#[derive(Deserialize)]
pub struct SubscriberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    caller_id: String,
}

/// The account page's subscriber section; `outcome` is ("subscriber", why adding failed) or
/// ("subscriber-added", "username password").
pub fn subscribers_html(
    user: &LoggedIn,
    account: i64,
    subscribers: &[talktime_store::Subscriber],
    outcome: Option<(&str, &str)>,
) -> String {
    let csrf = super::pages::csrf_field(user);
    let may_change = super::auth::may_change(&user.user);
    let mut body = String::from("<h2>SIP subscribers</h2>");
    match outcome {
        Some(("subscriber", text)) => {
            let _ = write!(
                body,
                "<p class=\"error\" id=\"error-subscriber\">{}</p>",
                escape(text)
            );
        }
        Some(("subscriber-added", text)) => {
            let (username, password) = text.split_once(' ').unwrap_or((text, ""));
            let _ = write!(
                body,
                "<p class=\"notice\" id=\"subscriber-added\">{} added. Its password, shown \
                 this once: <code id=\"subscriber-password\">{}</code></p>",
                escape(username),
                escape(password)
            );
        }
        _ => {}
    }
    body.push_str("<ul>");
    for subscriber in subscribers {
        let active = subscriber.status == "active";
        let toggle = if may_change {
            format!(
                " <form class=\"inline\" method=\"post\" \
                 action=\"/console/accounts/{account}/subscribers/{}/status\">{csrf}\
                 <input type=\"hidden\" name=\"active\" value=\"{}\">\
                 <button class=\"toggle\">{}</button></form>",
                escape(&subscriber.username),
                !active,
                if active { "Disable" } else { "Enable" }
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<li class=\"subscriber\">{} ({}){toggle}</li>",
            escape(&subscriber.username),
            escape(&subscriber.status)
        );
    }
    body.push_str("</ul>");
    if may_change {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/console/accounts/{account}/subscribers\">{csrf}\
             <p><label>Username <input name=\"username\" id=\"subscriber-username\"></label> \
             <label>Caller ID <input name=\"caller_id\" id=\"subscriber-caller-id\"></label></p>\
             <p><button id=\"add-subscriber\">Add</button></p></form>"
        );
    }
    body
}

pub async fn add(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<SubscriberForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not add subscribers.")?;
    let caller_id = Some(form.caller_id.trim().to_owned()).filter(|id| !id.is_empty());
    let order = SubscriberOrder {
        username: form.username.trim().to_owned(),
        password: None,
        caller_id,
    };
    let (status, outcome) =
        match crate::subscribers::add(&state.store, id, order, &state.subscriber_realm).await {
            Ok(added) => {
                state
                    .store
                    .audit(
                        Some(&user.user),
                        "subscriber_add",
                        &format!("account {id}"),
                        None,
                        Some(&serde_json::json!({ "username": added.username }).to_string()),
                        wall_clock_ms(),
                    )
                    .await?;
                let shown = format!("{} {}", added.username, added.password.unwrap_or_default());
                (StatusCode::OK, ("subscriber-added", shown))
            }
            Err(AddError::Store(talktime_store::StoreError::NotFound { .. })) => {
                return Err(ConsoleError::NotFound);
            }
            Err(AddError::Store(talktime_store::StoreError::InvalidArgument(text))) => {
                (StatusCode::BAD_REQUEST, ("subscriber", text))
            }
            Err(AddError::Store(error)) => return Err(error.into()),
            Err(error) => (StatusCode::BAD_REQUEST, ("subscriber", error.to_string())),
        };
    let page =
        super::accounts::account_view(&state, &user, id, Some((outcome.0, &outcome.1))).await?;
    Ok((status, Html(page)).into_response())
}

#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    active: bool,
}

pub async fn set_status(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath((id, username)): UrlPath<(i64, String)>,
    Form(form): Form<StatusForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not change subscribers.")?;
    let belongs = state
        .store
        .subscriber(&username)
        .await?
        .is_some_and(|subscriber| subscriber.account_id == id);
    if !belongs {
        return Err(ConsoleError::NotFound);
    }
    state
        .store
        .set_subscriber_status(&username, form.active)
        .await?;
    state
        .store
        .audit(
            Some(&user.user),
            "subscriber_status",
            &format!("subscriber {username}"),
            None,
            Some(&serde_json::json!({ "active": form.active }).to_string()),
            wall_clock_ms(),
        )
        .await?;
    Ok(Redirect::to(&format!("/console/accounts/{id}")).into_response())
}
