//! The e-mail outbox (issue 18). Events are queued as rows (a low balance in the very
//! transaction that crossed the threshold; card expiry and carrier outages by the shell with a
//! dedupe key); the shell's sender claims due rows, renders and sends them, and marks them sent
//! or due again later. Nothing here talks SMTP.

use talktime_pii::Pii;

use crate::backend::{Store, with_conn};
use crate::error::StoreError;
use crate::exec::Exec;

/// What a queued mail is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationKind {
    /// The account's balance fell below one of its thresholds.
    LowBalance,
    /// A card of the account expires soon.
    CardExpiry,
    /// A carrier stopped answering (to the operator).
    CarrierDown,
    /// Staff replied to the customer's ticket (`detail`: ticket id, subject, reply, a line
    /// each but the reply's own).
    TicketReply,
}

impl NotificationKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::LowBalance => "low_balance",
            NotificationKind::CardExpiry => "card_expiry",
            NotificationKind::CarrierDown => "carrier_down",
            NotificationKind::TicketReply => "ticket_reply",
        }
    }

    fn parse(text: &str) -> Result<NotificationKind, StoreError> {
        match text {
            "low_balance" => Ok(NotificationKind::LowBalance),
            "card_expiry" => Ok(NotificationKind::CardExpiry),
            "carrier_down" => Ok(NotificationKind::CarrierDown),
            "ticket_reply" => Ok(NotificationKind::TicketReply),
            other => Err(StoreError::Corrupt {
                column: "notifications.kind",
                value: other.to_owned(),
            }),
        }
    }
}

/// A mail to queue.
#[derive(Clone, Debug)]
pub struct NewNotification {
    pub kind: NotificationKind,
    /// One event, one mail: a second queueing with the same key is ignored.
    pub dedupe_key: String,
    pub account_id: Option<i64>,
    /// The address (personal data: redacted in `Debug`).
    pub recipient: Pii<String>,
    pub language: String,
    pub currency: String,
    pub amount_micros: i64,
    pub threshold_micros: i64,
    /// Free text for the template (the carrier's name, the card's expiry time).
    pub detail: String,
}

/// A queued mail the sender claimed.
#[derive(Clone, Debug)]
pub struct Notification {
    pub id: i64,
    pub kind: NotificationKind,
    pub account_id: Option<i64>,
    pub recipient: Pii<String>,
    pub language: String,
    pub currency: String,
    pub amount_micros: i64,
    pub threshold_micros: i64,
    pub detail: String,
    pub created_at_ms: i64,
    /// Tries before this one.
    pub attempts: i64,
}

/// An account's notification settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifySettings {
    /// Where its mails go; `None`: it gets none.
    pub email: Option<Pii<String>>,
    /// Balances (micros) whose downward crossing sends a mail.
    pub below_micros: Vec<i64>,
    /// Language of its mails (`en` when unset).
    pub language: Option<String>,
}

type NotificationRow = (
    i64,
    String,
    Option<i64>,
    String,
    String,
    String,
    i64,
    i64,
    String,
    i64,
    i64,
);

/// The thresholds as stored: comma-separated micros.
fn parse_thresholds(text: &str) -> Vec<i64> {
    text.split(',')
        .filter_map(|part| part.trim().parse().ok())
        .collect()
}

/// A posting that lowered a balance.
pub(crate) struct Crossing {
    pub account_id: i64,
    pub transaction_id: i64,
    pub before_micros: i64,
    pub after_micros: i64,
}

/// Queues one low-balance mail when the posting took the balance under one or more of its
/// thresholds, inside the posting's transaction (so once per crossing, never lost to a crash).
pub(crate) async fn queue_crossings(
    exec: &mut Exec<'_>,
    crossing: Crossing,
    thresholds: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let Crossing {
        account_id,
        transaction_id,
        before_micros,
        after_micros,
    } = crossing;
    let crossed: Vec<i64> = parse_thresholds(thresholds)
        .into_iter()
        .filter(|threshold| before_micros >= *threshold && after_micros < *threshold)
        .collect();
    let Some(lowest) = crossed.iter().min().copied() else {
        return Ok(());
    };
    let row: Option<(Option<String>, Option<String>, String)> = exec
        .fetch_optional(
            "SELECT email, email_language, currency FROM accounts WHERE id = $1",
            &[account_id.into()],
        )
        .await?;
    let Some((Some(email), language, currency)) = row else {
        return Ok(());
    };
    // One mail for one posting, naming the lowest threshold it went under.
    let notification = NewNotification {
        kind: NotificationKind::LowBalance,
        dedupe_key: format!("low_balance:{transaction_id}"),
        account_id: Some(account_id),
        recipient: Pii::new(email),
        language: language.unwrap_or_else(|| "en".to_owned()),
        currency,
        amount_micros: after_micros,
        threshold_micros: lowest,
        detail: String::new(),
    };
    insert(exec, &notification, now_ms).await?;
    Ok(())
}

pub(crate) async fn insert(
    exec: &mut Exec<'_>,
    notification: &NewNotification,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let inserted = exec
        .execute(
            "INSERT INTO notifications (kind, dedupe_key, account_id, recipient, language, \
             currency, amount_micros, threshold_micros, detail, created_at_ms, next_attempt_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             ON CONFLICT (dedupe_key) DO NOTHING",
            &[
                notification.kind.as_str().into(),
                (&notification.dedupe_key).into(),
                notification.account_id.into(),
                notification.recipient.expose().into(),
                (&notification.language).into(),
                (&notification.currency).into(),
                notification.amount_micros.into(),
                notification.threshold_micros.into(),
                (&notification.detail).into(),
                now_ms.into(),
            ],
        )
        .await?;
    Ok(inserted == 1)
}

impl Store {
    /// Sets where an account's mails go and below which balances it is told; `None` leaves a
    /// setting as it is, an empty address or list removes it.
    pub async fn set_notify_settings(
        &self,
        account_id: i64,
        settings: &NotifySettings,
    ) -> Result<(), StoreError> {
        let thresholds = settings
            .below_micros
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let email = settings.email.as_ref().map(|email| email.expose().as_str());
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let updated = with_conn!(&mut conn, c => sqlx::query(
            "UPDATE accounts SET email = $2, notify_below = $3, email_language = $4 WHERE id = $1",
        )
        .bind(account_id)
        .bind(email.filter(|email| !email.is_empty()))
        .bind(Some(thresholds).filter(|text| !text.is_empty()))
        .bind(settings.language.as_deref())
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        if updated == 0 {
            return Err(StoreError::not_found("account", account_id));
        }
        Ok(())
    }

    /// An account's notification settings.
    pub async fn notify_settings(&self, account_id: i64) -> Result<NotifySettings, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<(Option<String>, Option<String>, Option<String>)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT email, notify_below, email_language FROM accounts WHERE id = $1",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        let (email, below, language) =
            row.ok_or_else(|| StoreError::not_found("account", account_id))?;
        Ok(NotifySettings {
            email: email.map(Pii::new),
            below_micros: below.as_deref().map(parse_thresholds).unwrap_or_default(),
            language,
        })
    }

    /// Queues a mail unless one with its dedupe key exists; true when queued.
    pub async fn queue_notification(
        &self,
        notification: &NewNotification,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut held = self.acquire_for_write().await?;
        insert(&mut held.conn().exec(), notification, now_ms).await
    }

    /// Claims up to `limit` unsent mails that are due: each is pushed `lease_ms` into the
    /// future first, so another node's sender (or this one after a crash) retries it only if
    /// this attempt never finishes.
    pub async fn claim_notifications(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let rows: Vec<NotificationRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, kind, account_id, recipient, language, currency, amount_micros, \
             threshold_micros, detail, created_at_ms, attempts FROM notifications \
             WHERE sent_at_ms IS NULL AND next_attempt_ms <= $1 ORDER BY id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let taken = with_conn!(&mut conn, c => sqlx::query(
                "UPDATE notifications SET next_attempt_ms = $2 \
                 WHERE id = $1 AND sent_at_ms IS NULL AND next_attempt_ms <= $3",
            )
            .bind(row.0)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(now_ms)
            .execute(&mut **c)
            .await
            .map(|done| done.rows_affected()))?;
            if taken == 1 {
                claimed.push(Notification {
                    id: row.0,
                    kind: NotificationKind::parse(&row.1)?,
                    account_id: row.2,
                    recipient: Pii::new(row.3),
                    language: row.4,
                    currency: row.5,
                    amount_micros: row.6,
                    threshold_micros: row.7,
                    detail: row.8,
                    created_at_ms: row.9,
                    attempts: row.10,
                });
            }
        }
        Ok(claimed)
    }

    /// Records the outcome of one attempt: sent, or due again at `retry_at_ms` with the error.
    pub async fn finish_notification(
        &self,
        id: i64,
        outcome: Result<(), &str>,
        now_ms: i64,
        retry_at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        match outcome {
            Ok(()) => with_conn!(&mut conn, c => sqlx::query(
                "UPDATE notifications SET sent_at_ms = $2, attempts = attempts + 1, \
                 last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(now_ms)
            .execute(&mut **c)
            .await
            .map(|_| ()))?,
            Err(error) => with_conn!(&mut conn, c => sqlx::query(
                "UPDATE notifications SET next_attempt_ms = $2, attempts = attempts + 1, \
                 last_error = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(retry_at_ms)
            .bind(error)
            .execute(&mut **c)
            .await
            .map(|_| ()))?,
        }
        Ok(())
    }

    /// Mails not sent yet (for `/metrics` and the operator).
    pub async fn unsent_notifications(&self) -> Result<i64, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let count: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE sent_at_ms IS NULL",
        )
        .fetch_one(&mut **c)
        .await)?;
        Ok(count)
    }

    /// Cards expiring in `(now, until]` whose account has an address, with that account's
    /// address, language and the expiry: (card id, account id, email, language, expires at).
    pub async fn cards_expiring(
        &self,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<(i64, i64, Pii<String>, String, i64)>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<(i64, i64, String, Option<String>, i64)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT cards.id, a.id, a.email, a.email_language, cards.expires_at_ms FROM cards \
             JOIN accounts a ON a.id = cards.account_id \
             WHERE a.email IS NOT NULL AND cards.status <> 'blocked' \
             AND cards.expires_at_ms > $1 AND cards.expires_at_ms <= $2",
        )
        .bind(now_ms)
        .bind(until_ms)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(card, account, email, language, expires)| {
                (
                    card,
                    account,
                    Pii::new(email),
                    language.unwrap_or_else(|| "en".to_owned()),
                    expires,
                )
            })
            .collect())
    }
}
