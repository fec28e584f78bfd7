//! Trouble tickets (issue 22): customers open them in the portal, resellers' users and staff
//! on the console; each sits in a queue and a state; replies are kept in order. A staff reply
//! queues the customer's mail in its own transaction (the outbox sends it), so a reply is never
//! recorded without its mail or mailed twice.

use talktime_pii::Pii;

use crate::backend::{Store, with_conn};
use crate::error::StoreError;
use crate::model::text_enum;
use crate::notifications::{NewNotification, NotificationKind, insert};

text_enum!(
    /// Where a ticket is handled.
    TicketQueue, "tickets.queue" {
        /// Calls that fail, sound bad, or a card that does not work.
        Support => "support",
        /// Charges, payments, refunds.
        Billing => "billing",
        /// Rates, resale, new services.
        Sales => "sales",
    }
);

text_enum!(
    /// Where a ticket stands.
    TicketState, "tickets.state" {
        /// Waiting for staff.
        Open => "open",
        /// Staff replied; waiting for the customer.
        Answered => "answered",
        /// Done.
        Closed => "closed",
    }
);

impl TicketQueue {
    pub const ALL: [TicketQueue; 3] = [
        TicketQueue::Support,
        TicketQueue::Billing,
        TicketQueue::Sales,
    ];

    /// A queue by its stored name.
    pub fn from_name(text: &str) -> Option<TicketQueue> {
        TicketQueue::parse(text).ok()
    }
}

impl TicketState {
    /// A state by its stored name.
    pub fn from_name(text: &str) -> Option<TicketState> {
        TicketState::parse(text).ok()
    }
}

/// The longest subject and message.
const MAX_SUBJECT_CHARS: usize = 200;
const MAX_BODY_CHARS: usize = 8000;

/// A ticket to open.
#[derive(Clone, Debug)]
pub struct NewTicket<'a> {
    /// The customer it is about (a portal customer's own account).
    pub account_id: Option<i64>,
    /// With no account, the reseller it is from (a reseller's user asking staff); with one,
    /// the reseller whose customer opened it, whose users handle it beside staff.
    pub reseller_id: Option<i64>,
    pub queue: TicketQueue,
    pub subject: &'a str,
    pub body: &'a str,
    /// Who opened it, as shown: `customer`, a user's name.
    pub author: &'a str,
    pub from_staff: bool,
}

/// A ticket as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: i64,
    pub account_id: Option<i64>,
    pub reseller_id: Option<i64>,
    pub queue: TicketQueue,
    pub subject: String,
    pub state: TicketState,
    pub opened_by: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One message of a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketMessage {
    pub id: i64,
    pub author: String,
    pub from_staff: bool,
    pub body: String,
    pub created_at_ms: i64,
}

/// Which tickets to list.
#[derive(Clone, Debug, Default)]
pub struct TicketFilter {
    pub account_id: Option<i64>,
    pub reseller_id: Option<i64>,
    pub queue: Option<TicketQueue>,
    pub state: Option<TicketState>,
}

/// A saved answer.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SavedAnswer {
    pub id: i64,
    pub title: String,
    pub body: String,
}

type TicketRow = (
    i64,
    Option<i64>,
    Option<i64>,
    String,
    String,
    String,
    String,
    i64,
    i64,
);

fn ticket_of(row: TicketRow) -> Result<Ticket, StoreError> {
    let (id, account_id, reseller_id, queue, subject, state, opened_by, created, updated) = row;
    Ok(Ticket {
        id,
        account_id,
        reseller_id,
        queue: TicketQueue::parse(&queue)?,
        subject,
        state: TicketState::parse(&state)?,
        opened_by,
        created_at_ms: created,
        updated_at_ms: updated,
    })
}

/// A subject on one line (it becomes a mail's subject).
fn one_line(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn check_text(subject: Option<&str>, body: &str) -> Result<(), StoreError> {
    if let Some(subject) = subject
        && (subject.trim().is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS)
    {
        return Err(StoreError::InvalidArgument(format!(
            "a ticket has a subject of up to {MAX_SUBJECT_CHARS} characters"
        )));
    }
    if body.trim().is_empty() || body.chars().count() > MAX_BODY_CHARS {
        return Err(StoreError::InvalidArgument(format!(
            "a message has text, up to {MAX_BODY_CHARS} characters"
        )));
    }
    Ok(())
}

impl Store {
    /// Opens a ticket with its first message; its id.
    pub async fn open_ticket(
        &self,
        ticket: &NewTicket<'_>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        check_text(Some(ticket.subject), ticket.body)?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let id: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "INSERT INTO tickets (account_id, reseller_id, queue, subject, state, opened_by, \
             created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, 'open', $5, $6, $6) \
             RETURNING id",
        )
        .bind(ticket.account_id)
        .bind(ticket.reseller_id)
        .bind(ticket.queue.as_str())
        .bind(one_line(ticket.subject))
        .bind(ticket.author)
        .bind(now_ms)
        .fetch_one(&mut **c)
        .await)?;
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO ticket_messages (ticket_id, author, from_staff, body, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(ticket.author)
        .bind(i64::from(ticket.from_staff))
        .bind(ticket.body)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        transaction.commit().await?;
        Ok(id)
    }

    /// A ticket by id.
    pub async fn ticket(&self, id: i64) -> Result<Option<Ticket>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<TicketRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, account_id, reseller_id, queue, subject, state, opened_by, \
             created_at_ms, updated_at_ms FROM tickets WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?;
        row.map(ticket_of).transpose()
    }

    /// Tickets matching `filter`, the most recently changed first (at most 500).
    pub async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<TicketRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, account_id, reseller_id, queue, subject, state, opened_by, \
             created_at_ms, updated_at_ms FROM tickets \
             WHERE ($1 IS NULL OR account_id = $1) AND ($2 IS NULL OR reseller_id = $2) \
             AND ($3 IS NULL OR queue = $3) AND ($4 IS NULL OR state = $4) \
             ORDER BY updated_at_ms DESC, id DESC LIMIT 500",
        )
        .bind(filter.account_id)
        .bind(filter.reseller_id)
        .bind(filter.queue.map(TicketQueue::as_str))
        .bind(filter.state.map(TicketState::as_str))
        .fetch_all(&mut **c)
        .await)?;
        rows.into_iter().map(ticket_of).collect()
    }

    /// A ticket's messages, in order.
    pub async fn ticket_messages(&self, id: i64) -> Result<Vec<TicketMessage>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<(i64, String, i64, String, i64)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, author, from_staff, body, created_at_ms FROM ticket_messages \
             WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, author, from_staff, body, created_at_ms)| TicketMessage {
                    id,
                    author,
                    from_staff: from_staff != 0,
                    body,
                    created_at_ms,
                },
            )
            .collect())
    }

    /// Adds a reply. Staff's marks the ticket answered and, when the ticket is a customer's
    /// with an e-mail address, queues their mail (one per reply); anyone else's reopens it.
    pub async fn reply_to_ticket(
        &self,
        id: i64,
        author: &str,
        from_staff: bool,
        body: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        check_text(None, body)?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let state = if from_staff {
            TicketState::Answered
        } else {
            TicketState::Open
        };
        let ticket: Option<(Option<i64>, String)> = with_conn!(&mut conn, c => sqlx::query_as(
            "UPDATE tickets SET state = $2, updated_at_ms = $3 WHERE id = $1 \
             RETURNING account_id, subject",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(now_ms)
        .fetch_optional(&mut **c)
        .await)?;
        let Some((account_id, subject)) = ticket else {
            return Err(StoreError::not_found("ticket", id));
        };
        let message_id: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "INSERT INTO ticket_messages (ticket_id, author, from_staff, body, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(id)
        .bind(author)
        .bind(i64::from(from_staff))
        .bind(body)
        .bind(now_ms)
        .fetch_one(&mut **c)
        .await)?;
        if let (true, Some(account_id)) = (from_staff, account_id) {
            let address: Option<(Option<String>, Option<String>, String)> = with_conn!(&mut conn, c => sqlx::query_as(
                    "SELECT email, email_language, currency FROM accounts WHERE id = $1",
                )
                .bind(account_id)
                .fetch_optional(&mut **c)
                .await)?;
            if let Some((Some(email), language, currency)) = address {
                let notification = NewNotification {
                    kind: NotificationKind::TicketReply,
                    dedupe_key: format!("ticket_reply:{message_id}"),
                    account_id: Some(account_id),
                    recipient: Pii::new(email),
                    language: language.unwrap_or_else(|| "en".to_owned()),
                    currency,
                    amount_micros: 0,
                    threshold_micros: 0,
                    detail: format!("{id}\n{subject}\n{body}"),
                };
                insert(&mut conn.exec(), &notification, now_ms).await?;
            }
        }
        transaction.commit().await?;
        Ok(message_id)
    }

    /// Moves a ticket to another state or queue.
    pub async fn update_ticket(
        &self,
        id: i64,
        state: Option<TicketState>,
        queue: Option<TicketQueue>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let changed = with_conn!(&mut conn, c => sqlx::query(
            "UPDATE tickets SET state = COALESCE($2, state), queue = COALESCE($3, queue), \
             updated_at_ms = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(state.map(TicketState::as_str))
        .bind(queue.map(TicketQueue::as_str))
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        if changed == 0 {
            return Err(StoreError::not_found("ticket", id));
        }
        Ok(())
    }

    /// Saves (or rewrites) a reply staff can reuse.
    pub async fn save_answer(
        &self,
        title: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        check_text(Some(title), body)?;
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO saved_answers (title, body, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (title) DO UPDATE SET body = excluded.body",
        )
        .bind(title.trim())
        .bind(body)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Every saved answer, by title.
    pub async fn saved_answers(&self) -> Result<Vec<SavedAnswer>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<SavedAnswer> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, title, body FROM saved_answers ORDER BY title",
        )
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows)
    }
}
