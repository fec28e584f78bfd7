//! Console users' credentials and sessions: argon2id password hashes, a random session token
//! in an HttpOnly SameSite=Strict cookie (the ledger keeps only its SHA-256), a CSRF token per
//! session checked on every change, idle and absolute timeouts, and a login rate limit per
//! address and per user name.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use talktime_store::{Role, Store, User};
use tracing::info;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "talktime_session";
/// A session unused this long is over.
pub const IDLE_TIMEOUT_MS: i64 = 30 * 60 * 1000;
/// A session is over this long after its login, used or not.
pub const ABSOLUTE_TIMEOUT_MS: i64 = 12 * 60 * 60 * 1000;
/// Failed logins per address or user name within [`LOGIN_WINDOW`] before logins wait.
const LOGIN_FAILURES: u32 = 5;
const LOGIN_WINDOW: Duration = Duration::from_secs(300);

/// 32 random bytes as hex (session tokens, CSRF tokens, generated passwords).
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::fill(buffer.as_mut_slice());
    hex::encode(buffer)
}

/// The shortest password a user may have (the CLI's rule too).
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The argon2id PHC string of a password.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|error| anyhow::anyhow!("salt: {error}"))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| anyhow::anyhow!("cannot hash the password: {error}"))?;
    Ok(hash.to_string())
}

/// Whether `password` is the one `hash` was made from (false for a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// What the ledger keeps of a session token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A password an operator can type: 20 characters from an unambiguous alphabet.
pub fn generated_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

/// On a ledger without users: an `admin` with a generated password, written 0600 into
/// `<data_dir>/admin.password` for the operator's first login.
pub async fn first_admin(store: &Store, data_dir: &Path, now_ms: i64) -> anyhow::Result<()> {
    if !store.users().await?.is_empty() {
        return Ok(());
    }
    let password = generated_password();
    let path = data_dir.join("admin.password");
    crate::admin_http::write_private(&path, format!("{password}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    store
        .create_user("admin", &hash_password(&password)?, Role::Admin, now_ms)
        .await?;
    info!(file = %path.display(), "console user admin created; its password is in the file");
    // Printed once, like the demo PIN: the operator needs it for the first login.
    println!(
        "Console user admin created; its password is in {} (change it with `talktime users \
         passwd admin`).",
        path.display()
    );
    Ok(())
}

/// The value of the cookie `name` in a request's headers (the console's and the portal's).
pub fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value.to_owned())
}

/// Whether a form's CSRF token is the session's, compared in constant time.
pub fn csrf_matches(wanted: &str, given: &str) -> bool {
    let (wanted, given) = (wanted.as_bytes(), given.as_bytes());
    let differences = given
        .iter()
        .zip(wanted)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    given.len() == wanted.len() && differences == 0
}

/// Whether a session row is still valid at `now_ms`.
pub fn session_alive(created_at_ms: i64, last_seen_ms: i64, now_ms: i64) -> bool {
    now_ms - last_seen_ms < IDLE_TIMEOUT_MS && now_ms - created_at_ms < ABSOLUTE_TIMEOUT_MS
}

/// Whether a role may change things (end calls, block cards, import tariffs, edit caller IDs,
/// make cards): admins and operators; support reads and recharges.
pub fn may_change(user: &User) -> bool {
    matches!(user.role, Role::Admin | Role::Operator)
}

/// Failed logins by address and by user name; a key past the limit waits out the window.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    /// Whether a login from `address` as `name` may be tried now.
    pub fn allows(&self, address: IpAddr, name: &str, now: Instant) -> bool {
        let Ok(mut failures) = self.failures.lock() else {
            return false;
        };
        failures.retain(|_, (_, since)| now.duration_since(*since) < LOGIN_WINDOW);
        [address.to_string(), format!("user:{name}")]
            .iter()
            .all(|key| {
                failures
                    .get(key)
                    .is_none_or(|(count, _)| *count < LOGIN_FAILURES)
            })
    }

    pub fn failed(&self, address: IpAddr, name: &str, now: Instant) {
        if let Ok(mut failures) = self.failures.lock() {
            // Bounded: a flood of invented names cannot grow the table without end.
            if failures.len() > 100_000 {
                failures.clear();
            }
            for key in [address.to_string(), format!("user:{name}")] {
                let entry = failures.entry(key).or_insert((0, now));
                entry.0 += 1;
            }
        }
    }

    pub fn succeeded(&self, address: IpAddr, name: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&address.to_string());
            failures.remove(&format!("user:{name}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn a_csrf_token_matches_itself_only_and_a_cookie_is_found_by_name() {
        assert!(csrf_matches("abc123", "abc123"));
        assert!(!csrf_matches("abc123", "abc124"));
        assert!(!csrf_matches("abc123", "abc12"));
        assert!(!csrf_matches("abc123", ""));
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "a=1; talktime_portal=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(
            cookie_value(&headers, "talktime_portal").as_deref(),
            Some("xyz")
        );
        assert_eq!(cookie_value(&headers, "talktime_session"), None);
    }

    #[test]
    fn logins_wait_after_five_failures_from_one_address_or_for_one_name() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..5 {
            assert!(limiter.allows(address, "admin", now));
            limiter.failed(address, "admin", now);
        }
        assert!(!limiter.allows(address, "admin", now));
        assert!(!limiter.allows("192.0.2.2".parse().unwrap(), "admin", now));
        assert!(!limiter.allows(address, "other", now));
        assert!(limiter.allows(address, "admin", now + LOGIN_WINDOW));
    }
}
