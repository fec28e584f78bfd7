//! Trouble tickets on the console (issue 22). Staff (every operator role) see every ticket by
//! queue and state, answer with their own words or a saved answer (the customer gets the reply
//! by mail), move a ticket to another queue, close it, and open one for a customer. A
//! reseller's user, under its own name, handles its own customers' tickets the way staff do
//! (its reply mails the customer) and opens tickets of its own to staff; it sees no other.

use std::fmt::Write as _;

use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use talktime_store::{NewTicket, Role, Ticket, TicketFilter, TicketQueue, TicketState};

use super::pages::{csrf_field, escape, page, reseller_page, utc};
use super::{ConsoleError, ConsoleState, LoggedIn};
use crate::server::wall_clock_ms;

/// The reseller a reseller's user speaks for; `None` for staff.
fn reseller_of(user: &LoggedIn) -> Result<Option<i64>, ConsoleError> {
    match (user.user.role, user.user.reseller_id) {
        (Role::Reseller, Some(root)) => Ok(Some(root)),
        (Role::Reseller, None) => Err(ConsoleError::NotFound),
        _ => Ok(None),
    }
}

/// Whether the user answers `ticket` for the business (staff, or the reseller of the customer
/// it is about) rather than asks in it (the reseller's own ticket to staff).
fn handles(user: &LoggedIn, ticket: &Ticket) -> Result<bool, ConsoleError> {
    Ok(match reseller_of(user)? {
        None => true,
        Some(reseller) => ticket.account_id.is_some() && ticket.reseller_id == Some(reseller),
    })
}

/// A page in the user's look: staff's console, or the reseller's own name.
async fn framed(
    state: &ConsoleState,
    user: &LoggedIn,
    title: &str,
    body: &str,
) -> Result<String, ConsoleError> {
    Ok(match reseller_of(user)? {
        Some(reseller) => {
            let brand = state.store.reseller(reseller).await?.name;
            reseller_page(&brand, title, user, body)
        }
        None => page(title, Some(user), "", body),
    })
}

/// The ticket if the user may see it, else "not found".
async fn visible_ticket(
    state: &ConsoleState,
    user: &LoggedIn,
    id: i64,
) -> Result<Ticket, ConsoleError> {
    let ticket = state
        .store
        .ticket(id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    match reseller_of(user)? {
        Some(reseller) if ticket.reseller_id != Some(reseller) => Err(ConsoleError::NotFound),
        _ => Ok(ticket),
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    queue: String,
    #[serde(default)]
    state: String,
}

pub async fn tickets_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Query(query): Query<ListQuery>,
) -> Result<Html<String>, ConsoleError> {
    let reseller = reseller_of(&user)?;
    let filter = TicketFilter {
        reseller_id: reseller,
        queue: TicketQueue::from_name(&query.queue),
        state: TicketState::from_name(&query.state),
        ..TicketFilter::default()
    };
    let tickets = state.store.tickets(&filter).await?;
    let mut body = String::from(
        "<form method=\"get\" action=\"/console/tickets\"><label>Queue <select name=\"queue\" \
         id=\"filter-queue\"><option value=\"\">all</option>",
    );
    for queue in TicketQueue::ALL {
        let _ = write!(body, "<option>{}</option>", queue.as_str());
    }
    body.push_str(
        "</select></label> <label>State <select name=\"state\" id=\"filter-state\">\
         <option value=\"\">all</option><option>open</option><option>answered</option>\
         <option>closed</option></select></label> <button id=\"filter\">Show</button></form>\
         <table id=\"tickets\"><tr><th>Ticket</th><th>Queue</th><th>State</th><th>From</th>\
         <th>Account or reseller</th><th>Changed (UTC)</th></tr>",
    );
    for ticket in &tickets {
        let _ = write!(
            body,
            "<tr class=\"ticket\"><td><a href=\"/console/tickets/{id}\">#{id} {}</a></td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&ticket.subject),
            ticket.queue.as_str(),
            ticket.state.as_str(),
            escape(&ticket.opened_by),
            match (ticket.account_id, ticket.reseller_id) {
                (Some(account), _) => account.to_string(),
                (None, Some(reseller)) => format!("reseller {reseller}"),
                (None, None) => String::new(),
            },
            utc(ticket.updated_at_ms),
            id = ticket.id,
        );
    }
    body.push_str("</table>");
    let account_field = if reseller.is_none() {
        "<label>For account (optional) <input name=\"account\" id=\"ticket-account\" \
         inputmode=\"numeric\"></label>"
    } else {
        ""
    };
    let _ = write!(
        body,
        "<h2>Open a ticket</h2><form method=\"post\" action=\"/console/tickets\">{}\
         <p><label>Queue <select name=\"queue\" id=\"ticket-queue\">{}</select></label> \
         {account_field}</p><p><label>Subject <input name=\"subject\" id=\"ticket-subject\" \
         required></label></p><p><label>Message <textarea name=\"body\" id=\"ticket-body\" \
         rows=\"3\" cols=\"60\" required></textarea></label></p>\
         <button id=\"open-ticket\">Open</button></form>",
        csrf_field(&user),
        queue_options(None),
    );
    if reseller.is_none() {
        body.push_str("<p><a href=\"/console/saved-answers\">Saved answers</a></p>");
    }
    Ok(Html(framed(&state, &user, "Tickets", &body).await?))
}

fn queue_options(selected: Option<TicketQueue>) -> String {
    TicketQueue::ALL
        .iter()
        .map(|queue| {
            let mark = if Some(*queue) == selected {
                " selected"
            } else {
                ""
            };
            format!("<option{mark}>{}</option>", queue.as_str())
        })
        .collect()
}

#[derive(Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    account: String,
    subject: String,
    body: String,
}

pub async fn open(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<OpenForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let reseller = reseller_of(&user)?;
    let account_id = match (reseller, form.account.trim()) {
        (None, "") | (Some(_), _) => None,
        (None, text) => {
            let id: i64 = text.parse().map_err(|_| ConsoleError::NotFound)?;
            state
                .store
                .account(id)
                .await
                .map_err(|_| ConsoleError::NotFound)?;
            Some(id)
        }
    };
    let ticket = NewTicket {
        account_id,
        reseller_id: reseller,
        queue: TicketQueue::from_name(&form.queue).unwrap_or(TicketQueue::Support),
        subject: &form.subject,
        body: &form.body,
        author: &user.user.name,
        from_staff: reseller.is_none(),
    };
    match state.store.open_ticket(&ticket, wall_clock_ms()).await {
        Ok(id) => Ok(Redirect::to(&format!("/console/tickets/{id}")).into_response()),
        Err(talktime_store::StoreError::InvalidArgument(reason)) => Ok((
            StatusCode::BAD_REQUEST,
            Html(super::pages::message("Not opened", &reason)),
        )
            .into_response()),
        Err(error) => Err(error.into()),
    }
}

pub async fn ticket_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
) -> Result<Html<String>, ConsoleError> {
    let ticket = visible_ticket(&state, &user, id).await?;
    let messages = state.store.ticket_messages(id).await?;
    let staff = reseller_of(&user)?.is_none();
    let handler = handles(&user, &ticket)?;
    let csrf = csrf_field(&user);
    let mut body = format!(
        "<p>Queue <strong id=\"ticket-queue-now\">{}</strong> · state <strong \
         id=\"ticket-state\">{}</strong> · opened by {}{}</p>",
        ticket.queue.as_str(),
        ticket.state.as_str(),
        escape(&ticket.opened_by),
        ticket
            .account_id
            .map(|account| format!(
                " · account <a href=\"/console/accounts/{account}\">{account}</a>"
            ))
            .unwrap_or_default(),
    );
    for message in &messages {
        let _ = write!(
            body,
            "<article class=\"ticket-message\"><h3>{}{} · {}</h3><p>{}</p></article>",
            escape(&message.author),
            if message.from_staff { " (staff)" } else { "" },
            utc(message.created_at_ms),
            escape(&message.body).replace('\n', "<br>"),
        );
    }
    let saved = if staff {
        let answers = state.store.saved_answers().await?;
        let options: String = answers
            .iter()
            .map(|answer| {
                format!(
                    "<option value=\"{}\">{}</option>",
                    answer.id,
                    escape(&answer.title)
                )
            })
            .collect();
        format!(
            "<p><label>Or a saved answer <select name=\"saved\" id=\"saved-answer\">\
             <option value=\"\">none</option>{options}</select></label></p>"
        )
    } else {
        String::new()
    };
    let _ = write!(
        body,
        "<h2>Reply</h2><form method=\"post\" action=\"/console/tickets/{id}/reply\">{csrf}\
         <p><textarea name=\"body\" id=\"reply\" rows=\"4\" cols=\"70\"></textarea></p>{saved}\
         <button id=\"send-reply\">Send</button></form>"
    );
    if handler {
        let _ = write!(
            body,
            "<h2>Move or close</h2><form method=\"post\" action=\"/console/tickets/{id}/update\">\
             {csrf}<label>Queue <select name=\"queue\" id=\"move-queue\">{}</select></label> \
             <label>State <select name=\"state\" id=\"set-state\"><option value=\"\">as it is\
             </option><option>open</option><option>closed</option></select></label> \
             <button id=\"update-ticket\">Save</button></form>",
            queue_options(Some(ticket.queue)),
        );
    }
    body.push_str("<p><a href=\"/console/tickets\">All tickets</a></p>");
    let title = format!("#{id} {}", ticket.subject);
    Ok(Html(framed(&state, &user, &title, &body).await?))
}

#[derive(Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    saved: String,
}

pub async fn reply(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<ReplyForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let ticket = visible_ticket(&state, &user, id).await?;
    let staff = reseller_of(&user)?.is_none();
    let handler = handles(&user, &ticket)?;
    let mut text = form.body.trim().to_owned();
    if text.is_empty()
        && staff
        && let Ok(saved) = form.saved.parse::<i64>()
    {
        let answers = state.store.saved_answers().await?;
        text = answers
            .into_iter()
            .find(|answer| answer.id == saved)
            .map(|answer| answer.body)
            .unwrap_or_default();
    }
    match state
        .store
        .reply_to_ticket(id, &user.user.name, handler, &text, wall_clock_ms())
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/console/tickets/{id}")).into_response()),
        Err(talktime_store::StoreError::InvalidArgument(reason)) => Ok((
            StatusCode::BAD_REQUEST,
            Html(super::pages::message("Not sent", &reason)),
        )
            .into_response()),
        Err(error) => Err(error.into()),
    }
}

#[derive(Deserialize)]
pub struct UpdateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    state: String,
}

pub async fn update(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<UpdateForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let ticket = visible_ticket(&state, &user, id).await?;
    if !handles(&user, &ticket)? {
        return Err(ConsoleError::NotFound);
    }
    state
        .store
        .update_ticket(
            id,
            TicketState::from_name(&form.state),
            TicketQueue::from_name(&form.queue),
            wall_clock_ms(),
        )
        .await?;
    Ok(Redirect::to(&format!("/console/tickets/{id}")).into_response())
}

pub async fn saved_answers_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
) -> Result<Html<String>, ConsoleError> {
    if reseller_of(&user)?.is_some() {
        return Err(ConsoleError::NotFound);
    }
    let answers = state.store.saved_answers().await?;
    let mut body = String::from("<table id=\"saved-answers\"><tr><th>Title</th><th>Text</th></tr>");
    for answer in &answers {
        let _ = write!(
            body,
            "<tr class=\"saved-answer\"><td>{}</td><td>{}</td></tr>",
            escape(&answer.title),
            escape(&answer.body)
        );
    }
    let _ = write!(
        body,
        "</table><h2>Save an answer</h2><form method=\"post\" action=\"/console/saved-answers\">\
         {}<p><label>Title <input name=\"title\" id=\"answer-title\" required></label></p>\
         <p><textarea name=\"body\" id=\"answer-body\" rows=\"4\" cols=\"70\" required>\
         </textarea></p><button id=\"save-answer\">Save</button></form>",
        csrf_field(&user)
    );
    Ok(Html(page("Saved answers", Some(&user), "", &body)))
}

#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    csrf: String,
    title: String,
    body: String,
}

pub async fn save_answer(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<AnswerForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    if reseller_of(&user)?.is_some() {
        return Err(ConsoleError::NotFound);
    }
    match state
        .store
        .save_answer(&form.title, form.body.trim(), wall_clock_ms())
        .await
    {
        Ok(()) => Ok(Redirect::to("/console/saved-answers").into_response()),
        Err(talktime_store::StoreError::InvalidArgument(reason)) => Ok((
            StatusCode::BAD_REQUEST,
            Html(super::pages::message("Not saved", &reason)),
        )
            .into_response()),
        Err(error) => Err(error.into()),
    }
}
