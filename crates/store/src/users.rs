//! Console users, their browser sessions and the audit log (issue 15). Password hashing and
//! session tokens are the shell's (argon2id, random tokens); the store keeps PHC strings and
//! token hashes only.

use crate::backend::{Conn, Store, with_conn};
use crate::error::StoreError;

/// What a user may do. Resellers extend this later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything, users included.
    Admin,
    /// Cards, accounts, tariffs, carriers, calls; not users.
    Operator,
    /// Reads everything, recharges and hangs up calls; changes nothing else.
    Support,
    /// A reseller's own user (issue 16): sees and acts on its reseller's tree only.
    Reseller,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Support => "support",
            Role::Reseller => "reseller",
        }
    }

    pub fn parse(text: &str) -> Result<Role, StoreError> {
        match text {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "support" => Ok(Role::Support),
            "reseller" => Ok(Role::Reseller),
            other => Err(StoreError::InvalidArgument(format!(
                "role {other:?} is not admin, operator, support or reseller"
            ))),
        }
    }
}

/// A console user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at_ms: i64,
    /// For [`Role::Reseller`]: the reseller whose tree the user sees.
    pub reseller_id: Option<i64>,
}

/// A user with the hash to check a password against.
#[derive(Clone, Debug)]
pub struct UserLogin {
    pub user: User,
    pub password_hash: String,
}

/// A live session: its user and CSRF token.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub user: User,
    pub csrf_token: String,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
}

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub user_name: String,
    pub action: String,
    pub subject: String,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub at_ms: i64,
}

type UserRow = (i64, String, String, i64, i64, String, Option<i64>);

fn user_of(
    (id, name, role, disabled, created_at_ms, _, reseller_id): &UserRow,
) -> Result<User, StoreError> {
    Ok(User {
        id: *id,
        name: name.clone(),
        role: Role::parse(role)?,
        disabled: *disabled != 0,
        created_at_ms: *created_at_ms,
        reseller_id: *reseller_id,
    })
}

/// Logs a user out everywhere (a new password, a disabled user).
async fn end_sessions(conn: &mut Conn<'_>, user_id: i64) -> Result<(), StoreError> {
    with_conn!(conn, c => sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
    Ok(())
}

const USER_COLUMNS: &str = "id, name, role, disabled, created_at_ms, password_hash, reseller_id";

impl Store {
    /// Adds a user; a name already taken is an error.
    pub async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<User, StoreError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_whitespace) {
            return Err(StoreError::InvalidArgument(
                "a user name is 1 to 64 characters without spaces".into(),
            ));
        }
        if self.user_login(name).await?.is_some() {
            return Err(StoreError::InvalidArgument(format!(
                "user {name} already exists"
            )));
        }
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let id: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "INSERT INTO users (name, password_hash, role, created_at_ms) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(name)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now_ms)
        .fetch_one(&mut **c)
        .await)?;
        Ok(User {
            id,
            name: name.to_owned(),
            role,
            disabled: false,
            created_at_ms: now_ms,
            reseller_id: None,
        })
    }

    /// A [`Role::Reseller`] user of `reseller_id`; a name already taken is an error.
    pub async fn create_reseller_user(
        &self,
        name: &str,
        password_hash: &str,
        reseller_id: i64,
        now_ms: i64,
    ) -> Result<User, StoreError> {
        self.reseller(reseller_id).await?;
        let mut user = self
            .create_user(name, password_hash, Role::Reseller, now_ms)
            .await?;
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query("UPDATE users SET reseller_id = $2 WHERE id = $1")
            .bind(user.id)
            .bind(reseller_id)
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
        user.reseller_id = Some(reseller_id);
        Ok(user)
    }

    /// A user by name with its password hash (for a login).
    pub async fn user_login(&self, name: &str) -> Result<Option<UserLogin>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let query = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        let row: Option<UserRow> = with_conn!(&mut conn, c => sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
            .bind(name)
            .fetch_optional(&mut **c)
            .await)?;
        row.map(|row| {
            Ok(UserLogin {
                user: user_of(&row)?,
                password_hash: row.5,
            })
        })
        .transpose()
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let query = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        let rows: Vec<UserRow> = with_conn!(&mut conn, c => sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
            .fetch_all(&mut **c)
            .await)?;
        rows.iter().map(user_of).collect()
    }

    /// Sets a user's password hash (and ends its sessions).
    pub async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let user = self.user_by_name_required(name).await?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        with_conn!(&mut conn, c => sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user.id)
            .bind(password_hash)
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
        end_sessions(&mut conn, user.id).await?;
        transaction.commit().await
    }

    /// Disables or enables a user; disabling ends its sessions.
    pub async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<(), StoreError> {
        let user = self.user_by_name_required(name).await?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        with_conn!(&mut conn, c => sqlx::query("UPDATE users SET disabled = $2 WHERE id = $1")
            .bind(user.id)
            .bind(i64::from(disabled))
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
        if disabled {
            end_sessions(&mut conn, user.id).await?;
        }
        transaction.commit().await
    }

    async fn user_by_name_required(&self, name: &str) -> Result<User, StoreError> {
        self.user_login(name)
            .await?
            .map(|login| login.user)
            .ok_or_else(|| StoreError::InvalidArgument(format!("no user {name}")))
    }

    /// Starts a session (the cookie's hash, its CSRF token).
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at_ms, last_seen_ms) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(csrf_token)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The session of a cookie hash, if it exists and its user is enabled.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        type Row = (
            i64,
            String,
            String,
            i64,
            i64,
            String,
            String,
            i64,
            i64,
            Option<i64>,
        );
        let row: Option<Row> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT u.id, u.name, u.role, u.disabled, u.created_at_ms, u.password_hash, \
             s.csrf_token, s.created_at_ms, s.last_seen_ms, u.reseller_id FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut **c)
        .await)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = user_of(&(row.0, row.1, row.2, row.3, row.4, row.5, row.9))?;
        if user.disabled {
            return Ok(None);
        }
        Ok(Some(SessionRow {
            user,
            csrf_token: row.6,
            created_at_ms: row.7,
            last_seen_ms: row.8,
        }))
    }

    /// Marks a session used now.
    pub async fn touch_session(&self, token_hash: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query("UPDATE sessions SET last_seen_ms = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(now_ms)
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Adds an API token (its hash) for a user.
    pub async fn create_api_token(
        &self,
        token_hash: &str,
        user_name: &str,
        token_name: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let user = self.user_by_name_required(user_name).await?;
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO api_tokens (token_hash, user_id, name, created_at_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user.id)
        .bind(token_name)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The enabled user an API token (its hash) belongs to.
    pub async fn api_token_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<UserRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT u.id, u.name, u.role, u.disabled, u.created_at_ms, u.password_hash, \
             u.reseller_id FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut **c)
        .await)?;
        let user = row.as_ref().map(user_of).transpose()?;
        Ok(user.filter(|user| !user.disabled))
    }

    /// Records a change made through the JSON API by `caller` (`api` for the shared admin
    /// token, else the user whose token it was).
    pub async fn audit_api(
        &self,
        caller: &str,
        action: &str,
        subject: &str,
        after_json: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.audit_named(None, caller, action, subject, None, after_json, now_ms)
            .await
    }

    /// Records a change: who (`user_id` None for the CLI), what, on what, before and after.
    pub async fn audit(
        &self,
        user: Option<&User>,
        action: &str,
        subject: &str,
        before_json: Option<&str>,
        after_json: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let name = user.map_or("cli", |user| user.name.as_str());
        self.audit_named(user, name, action, subject, before_json, after_json, now_ms)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit_named(
        &self,
        user: Option<&User>,
        name: &str,
        action: &str,
        subject: &str,
        before_json: Option<&str>,
        after_json: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO audit_log (user_id, user_name, action, subject, before_json, after_json, \
             at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.map(|user| user.id))
        .bind(name)
        .bind(action)
        .bind(subject)
        .bind(before_json)
        .bind(after_json)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The newest audit entries first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        type Row = (String, String, String, Option<String>, Option<String>, i64);
        let rows: Vec<Row> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT user_name, action, subject, before_json, after_json, at_ms FROM audit_log \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(user_name, action, subject, before_json, after_json, at_ms)| AuditEntry {
                    user_name,
                    action,
                    subject,
                    before_json,
                    after_json,
                    at_ms,
                },
            )
            .collect())
    }
}
