//! A customer's trouble tickets in the portal: open one in a queue, read staff's replies (also
//! mailed to them), answer, close. Only the customer's own tickets exist here: another's is
//! "Not found".

use std::fmt::Write;

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use talktime_store::{NewTicket, Ticket, TicketFilter, TicketQueue, TicketState};

use super::{Customer, PortalError, PortalState, home_page, logged_in_page};
use crate::console::{escape, utc};
use crate::server::wall_clock_ms;

/// How the customer is named in a ticket.
const AUTHOR: &str = "customer";

#[derive(Deserialize)]
pub(super) struct OpenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    queue: String,
    subject: String,
    body: String,
}

#[derive(Deserialize)]
pub(super) struct ReplyForm {
    #[serde(default)]
    csrf: String,
    body: String,
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn open(
    State(state): State<PortalState>,
    customer: Customer,
    Form(form): Form<OpenForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    let queue = TicketQueue::from_name(&form.queue).unwrap_or(TicketQueue::Support);
    // A reseller's customer is the reseller's to help: its users see and answer the ticket.
    let reseller = state
        .store
        .account_reseller(customer.session.account_id)
        .await?;
    let ticket = NewTicket {
        account_id: Some(customer.session.account_id),
        reseller_id: reseller,
        queue,
        subject: &form.subject,
        body: &form.body,
        author: AUTHOR,
        from_staff: false,
    };
    match state.store.open_ticket(&ticket, wall_clock_ms()).await {
        Ok(id) => Ok(Redirect::to(&format!("/portal/tickets/{id}")).into_response()),
        Err(talktime_store::StoreError::InvalidArgument(reason)) => {
            let body = home_page(&state, &customer, Some(&reason)).await?;
            Ok((StatusCode::BAD_REQUEST, Html(body)).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// The customer's own ticket, else "Not found".
async fn own_ticket(
    state: &PortalState,
    customer: &Customer,
    id: i64,
) -> Result<Ticket, PortalError> {
    state
        .store
        .ticket(id)
        .await?
        .filter(|ticket| ticket.account_id == Some(customer.session.account_id))
        .ok_or(PortalError::NotFound)
}

pub(super) async fn page(
    State(state): State<PortalState>,
    customer: Customer,
    UrlPath(id): UrlPath<i64>,
) -> Result<Html<String>, PortalError> {
    let ticket = own_ticket(&state, &customer, id).await?;
    let messages = state.store.ticket_messages(id).await?;
    let csrf = escape(&customer.session.csrf_token);
    let mut body = format!(
        "<p>Queue <strong>{}</strong> · <span id=\"ticket-state\">{}</span></p>",
        ticket.queue.as_str(),
        ticket.state.as_str()
    );
    for message in &messages {
        let who = if message.from_staff {
            "Our team"
        } else {
            "You"
        };
        let _ = write!(
            body,
            "<article class=\"ticket-message\"><h3>{who} · {}</h3><p>{}</p></article>",
            utc(message.created_at_ms),
            escape(&message.body).replace('\n', "<br>")
        );
    }
    if ticket.state != TicketState::Closed {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/portal/tickets/{id}/reply\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><p><label>Your answer \
             <textarea name=\"body\" id=\"reply\" rows=\"4\" cols=\"60\" required></textarea>\
             </label></p><button id=\"send-reply\">Send</button></form>\
             <form method=\"post\" action=\"/portal/tickets/{id}/close\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button id=\"close-ticket\">Close this ticket</button></form>"
        );
    }
    body.push_str("<p><a href=\"/portal\">Back to my account</a></p>");
    Ok(Html(logged_in_page(
        &format!("#{id} {}", ticket.subject),
        &customer,
        &body,
    )))
}

pub(super) async fn reply(
    State(state): State<PortalState>,
    customer: Customer,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<ReplyForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    own_ticket(&state, &customer, id).await?;
    match state
        .store
        .reply_to_ticket(id, AUTHOR, false, &form.body, wall_clock_ms())
        .await
    {
        Ok(_) | Err(talktime_store::StoreError::InvalidArgument(_)) => {
            Ok(Redirect::to(&format!("/portal/tickets/{id}")).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn close(
    State(state): State<PortalState>,
    customer: Customer,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    own_ticket(&state, &customer, id).await?;
    state
        .store
        .update_ticket(id, Some(TicketState::Closed), None, wall_clock_ms())
        .await?;
    Ok(Redirect::to(&format!("/portal/tickets/{id}")).into_response())
}

/// The home page's section: the customer's tickets and the form to open one.
pub(super) async fn section(
    state: &PortalState,
    customer: &Customer,
) -> Result<String, PortalError> {
    let filter = TicketFilter {
        account_id: Some(customer.session.account_id),
        ..TicketFilter::default()
    };
    let tickets = state.store.tickets(&filter).await?;
    let mut body = String::from("<h2>Help</h2>");
    if !tickets.is_empty() {
        body.push_str("<table id=\"tickets\"><tbody>");
        for ticket in &tickets {
            let _ = write!(
                body,
                "<tr class=\"ticket\"><td><a href=\"/portal/tickets/{id}\">#{id} {}</a></td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&ticket.subject),
                ticket.queue.as_str(),
                ticket.state.as_str(),
                utc(ticket.updated_at_ms),
                id = ticket.id,
            );
        }
        body.push_str("</tbody></table>");
    }
    let options: String = TicketQueue::ALL
        .iter()
        .map(|queue| format!("<option value=\"{0}\">{0}</option>", queue.as_str()))
        .collect();
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/portal/tickets\"><input type=\"hidden\" name=\"csrf\" \
         value=\"{}\"><p><label>About <select name=\"queue\" id=\"ticket-queue\">{options}\
         </select></label> <label>Subject <input name=\"subject\" id=\"ticket-subject\" \
         maxlength=\"200\" required></label></p><p><label>What happened? <textarea name=\"body\" \
         id=\"ticket-body\" rows=\"3\" cols=\"60\" required></textarea></label></p>\
         <button id=\"open-ticket\">Ask for help</button></form>",
        escape(&customer.session.csrf_token)
    );
    Ok(body)
}
