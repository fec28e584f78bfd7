//! SIP subscribers (issue 16): a username and a digest HA1 per softphone, each on an account
//! it spends from. The core asks for a subscriber by username when a REGISTER or an INVITE
//! answers its challenge; the password never reaches the ledger (the caller computes the HA1).

use talktime_pii::Pii;

use crate::backend::{Store, with_conn};
use crate::error::StoreError;
use crate::ledger::fetch_account;

/// Usernames are what a phone's account line carries: letters, digits and `._-+`.
pub const MAX_USERNAME_LENGTH: usize = 64;

/// A subscriber as the core needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub id: i64,
    pub account_id: i64,
    pub username: String,
    pub realm: String,
    /// MD5(username:realm:password), lowercase hex.
    pub ha1: Pii<String>,
    /// Presented to carriers on the subscriber's calls.
    pub caller_id: Option<Pii<String>>,
    pub status: String,
}

type SubscriberRow = (i64, i64, String, String, String, Option<String>, String);

fn subscriber(
    (id, account_id, username, realm, ha1, caller_id, status): SubscriberRow,
) -> Subscriber {
    Subscriber {
        id,
        account_id,
        username,
        realm,
        ha1: Pii::new(ha1),
        caller_id: caller_id.map(Pii::new),
        status,
    }
}

fn check_username(username: &str) -> Result<(), StoreError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+');
    if username.is_empty() || username.len() > MAX_USERNAME_LENGTH || !username.chars().all(allowed)
    {
        return Err(StoreError::InvalidArgument(format!(
            "a username is 1-{MAX_USERNAME_LENGTH} letters, digits or ._-+"
        )));
    }
    Ok(())
}

impl Store {
    /// Adds a subscriber to an account. A username already taken is refused.
    pub async fn add_subscriber(
        &self,
        account_id: i64,
        username: &str,
        realm: &str,
        ha1: &Pii<String>,
        caller_id: Option<&Pii<String>>,
        now_ms: i64,
    ) -> Result<Subscriber, StoreError> {
        check_username(username)?;
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        fetch_account(&mut conn.exec(), account_id).await?;
        let inserted: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "INSERT INTO sip_subscribers (account_id, username, realm, ha1, caller_id, \
             created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (username) DO NOTHING RETURNING id",
        )
        .bind(account_id)
        .bind(username)
        .bind(realm)
        .bind(ha1.expose())
        .bind(caller_id.map(|id| id.expose().clone()))
        .bind(now_ms)
        .fetch_optional(&mut **c)
        .await)?;
        let Some(id) = inserted else {
            return Err(StoreError::InvalidArgument(format!(
                "username {username} is taken"
            )));
        };
        Ok(Subscriber {
            id,
            account_id,
            username: username.to_owned(),
            realm: realm.to_owned(),
            ha1: ha1.clone(),
            caller_id: caller_id.cloned(),
            status: "active".into(),
        })
    }

    /// The subscriber with this username, if any (whatever its status).
    pub async fn subscriber(&self, username: &str) -> Result<Option<Subscriber>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<SubscriberRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, account_id, username, realm, ha1, caller_id, status \
             FROM sip_subscribers WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(row.map(subscriber))
    }

    /// An account's subscribers.
    pub async fn subscribers_of(&self, account_id: i64) -> Result<Vec<Subscriber>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<SubscriberRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, account_id, username, realm, ha1, caller_id, status \
             FROM sip_subscribers WHERE account_id = $1 ORDER BY username",
        )
        .bind(account_id)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows.into_iter().map(subscriber).collect())
    }

    /// Disables (or enables again) a subscriber; `false` when there is none by that name.
    pub async fn set_subscriber_status(
        &self,
        username: &str,
        active: bool,
    ) -> Result<bool, StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let status = if active { "active" } else { "disabled" };
        let updated = with_conn!(&mut conn, c => sqlx::query(
            "UPDATE sip_subscribers SET status = $2 WHERE username = $1",
        )
        .bind(username)
        .bind(status)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(updated == 1)
    }
}
