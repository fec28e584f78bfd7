//! The customer portal's logins and sessions (issue 22): one login per account, a password's
//! argon2id hash (made by the caller: the store never sees a password), and browser sessions
//! kept as the console's are (the cookie's SHA-256, a CSRF token).

use crate::backend::{Store, with_conn};
use crate::error::StoreError;

/// A customer's live portal session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerSession {
    pub account_id: i64,
    pub csrf_token: String,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
}

impl Store {
    /// Gives an account its first portal password: false (and nothing changed) when it has
    /// one already, so whoever holds a card's PIN can claim its portal once, not take it over.
    pub async fn create_customer_login(
        &self,
        account_id: i64,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let inserted = with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO customer_logins (account_id, password_hash, created_at_ms) \
             VALUES ($1, $2, $3) ON CONFLICT (account_id) DO NOTHING",
        )
        .bind(account_id)
        .bind(password_hash)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(inserted == 1)
    }

    /// Sets (or replaces) an account's portal password, as the operator does, and ends the
    /// account's portal sessions.
    pub async fn set_customer_password(
        &self,
        account_id: i64,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        crate::ledger::fetch_account(&mut conn.exec(), account_id).await?;
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO customer_logins (account_id, password_hash, created_at_ms) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET password_hash = excluded.password_hash",
        )
        .bind(account_id)
        .bind(password_hash)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        with_conn!(&mut conn, c => sqlx::query(
            "DELETE FROM customer_sessions WHERE account_id = $1",
        )
        .bind(account_id)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        transaction.commit().await?;
        Ok(())
    }

    /// The account's portal password hash, if it has a login.
    pub async fn customer_password_hash(
        &self,
        account_id: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let hash: Option<String> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT password_hash FROM customer_logins WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(hash)
    }

    /// Starts a portal session (the cookie's hash, its CSRF token).
    pub async fn create_customer_session(
        &self,
        token_hash: &str,
        account_id: i64,
        csrf_token: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO customer_sessions \
             (token_hash, account_id, csrf_token, created_at_ms, last_seen_ms) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(token_hash)
        .bind(account_id)
        .bind(csrf_token)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The portal session of a cookie hash, if there is one.
    pub async fn customer_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<CustomerSession>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<(i64, String, i64, i64)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT account_id, csrf_token, created_at_ms, last_seen_ms FROM customer_sessions \
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(row.map(
            |(account_id, csrf_token, created_at_ms, last_seen_ms)| CustomerSession {
                account_id,
                csrf_token,
                created_at_ms,
                last_seen_ms,
            },
        ))
    }

    /// Marks a portal session used now.
    pub async fn touch_customer_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE customer_sessions SET last_seen_ms = $2 WHERE token_hash = $1",
        )
        .bind(token_hash)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Ends a portal session.
    pub async fn delete_customer_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "DELETE FROM customer_sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}

/// A message on the portal's board.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PortalMessage {
    pub id: i64,
    pub title: String,
    pub body: String,
    /// Only this reseller's direct customers see it; `None`: every customer.
    pub reseller_id: Option<i64>,
    pub posted_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

/// Messages a customer sees at once, newest first.
const MESSAGES_SHOWN: i64 = 20;

impl Store {
    /// Posts a message to every customer (`reseller_id` None) or to one reseller's customers.
    pub async fn post_portal_message(
        &self,
        title: &str,
        body: &str,
        reseller_id: Option<i64>,
        expires_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        if title.trim().is_empty() || title.chars().count() > 200 || body.chars().count() > 4000 {
            return Err(StoreError::InvalidArgument(
                "a message has a title (up to 200 characters) and a body up to 4000".into(),
            ));
        }
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let id: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "INSERT INTO portal_messages (title, body, reseller_id, posted_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(title.trim())
        .bind(body)
        .bind(reseller_id)
        .bind(now_ms)
        .bind(expires_at_ms)
        .fetch_one(&mut **c)
        .await)?;
        Ok(id)
    }

    /// Every message, newest first (the operator's list).
    pub async fn portal_messages(&self) -> Result<Vec<PortalMessage>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<PortalMessage> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, title, body, reseller_id, posted_at_ms, expires_at_ms \
             FROM portal_messages ORDER BY id DESC",
        )
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows)
    }

    /// The messages an account's holder sees now: to everyone, or to the account's reseller's
    /// customers; not expired; newest first.
    pub async fn portal_messages_for(
        &self,
        account_id: i64,
        now_ms: i64,
    ) -> Result<Vec<PortalMessage>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<PortalMessage> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT m.id, m.title, m.body, m.reseller_id, m.posted_at_ms, m.expires_at_ms \
             FROM portal_messages m, accounts a WHERE a.id = $1 \
             AND (m.reseller_id IS NULL OR m.reseller_id = a.reseller_id) \
             AND (m.expires_at_ms IS NULL OR m.expires_at_ms > $2) \
             ORDER BY m.id DESC LIMIT $3",
        )
        .bind(account_id)
        .bind(now_ms)
        .bind(MESSAGES_SHOWN)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows)
    }

    /// Removes a message; false if there was none.
    pub async fn remove_portal_message(&self, id: i64) -> Result<bool, StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let removed = with_conn!(&mut conn, c => sqlx::query(
            "DELETE FROM portal_messages WHERE id = $1",
        )
        .bind(id)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(removed == 1)
    }
}
