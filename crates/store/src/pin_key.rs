//! PINs at rest: the ledger keeps `HMAC-SHA256(key, PIN)`, never the PIN, so a stolen
//! database file reveals no usable PIN while a lookup stays one index probe. The key lives
//! outside the database (a 0600 file or the environment); every process that opens the same
//! ledger (the switch, the CLI, every node) must use the same key. A check value stored in
//! the ledger turns a wrong key into a clear error at start instead of every PIN failing.

use std::io::Write;
use std::path::Path;

use hmac::{KeyInit, Mac};
use sha2::Sha256;
use talktime_pii::Pii;

use crate::backend::{Store, with_conn};
use crate::error::StoreError;

/// The key's file name beside an embedded ledger.
pub const PIN_KEY_FILE_NAME: &str = "pin.key";

/// The environment variable that carries the key as 64 hex digits (takes precedence).
pub const PIN_KEY_ENV: &str = "TALKTIME_PIN_KEY";

/// How a stored PIN hash starts: the scheme's version, so a later scheme can coexist.
pub(crate) const PIN_HASH_PREFIX: &str = "h1:";

/// Bytes of the MAC kept: 128 bits tell 10^18 PINs apart with room to spare, and a shorter
/// key keeps the UNIQUE index as shallow as the plain PINs' was (the lookup benchmark).
const KEPT_MAC_BYTES: usize = 16;

/// The secret that keys PIN hashes, with its HMAC state ready (the key schedule is done once,
/// not per lookup). Its `Debug` never shows the key.
#[derive(Clone)]
pub struct PinKey {
    mac: hmac::Hmac<Sha256>,
}

impl std::fmt::Debug for PinKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PinKey(<redacted>)")
    }
}

impl PinKey {
    /// A key from 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<PinKey, StoreError> {
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| StoreError::PinKey("a PIN key is 64 hex digits".into()))?;
        Ok(PinKey::from_bytes(&bytes))
    }

    /// The key in the environment ([`PIN_KEY_ENV`]), if set.
    pub fn from_environment() -> Result<Option<PinKey>, StoreError> {
        match std::env::var(PIN_KEY_ENV) {
            Ok(text) => PinKey::from_hex(&text)
                .map(Some)
                .map_err(|_| StoreError::PinKey(format!("{PIN_KEY_ENV} is not 64 hex digits"))),
            Err(_) => Ok(None),
        }
    }

    /// Reads an existing key file (refused when others can read it).
    pub fn load(path: &Path) -> Result<PinKey, StoreError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            StoreError::PinKey(format!("cannot read {}: {error}", path.display()))
        })?;
        refuse_shared_file(path)?;
        PinKey::from_hex(&text)
            .map_err(|_| StoreError::PinKey(format!("{} is not 64 hex digits", path.display())))
    }

    /// Reads the key file, or creates it (0600, 32 random bytes from the operating system)
    /// when it does not exist. A file others can read is refused, like ssh refuses a key.
    pub fn load_or_create(path: &Path) -> Result<PinKey, StoreError> {
        if path.exists() {
            PinKey::load(path)
        } else {
            create_key_file(path)
        }
    }

    fn from_bytes(bytes: &[u8; 32]) -> PinKey {
        // HMAC takes a key of any length: the fallback is never taken.
        let mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(bytes)
            .unwrap_or_else(|_| <hmac::Hmac<Sha256> as KeyInit>::new(&Default::default()));
        PinKey { mac }
    }

    /// A key for a ledger that lives only as long as the process (an in-memory database).
    pub(crate) fn random() -> PinKey {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        PinKey::from_bytes(&bytes)
    }

    /// The stored form of a PIN: `h1:` and the first 16 bytes of its HMAC-SHA256, in hex.
    pub fn hash(&self, pin: &Pii<String>) -> String {
        let mac = self.mac(pin.expose());
        format!("{PIN_HASH_PREFIX}{}", hex::encode(&mac[..KEPT_MAC_BYTES]))
    }

    /// A value that identifies the key without revealing it (kept in the ledger).
    pub(crate) fn check_value(&self) -> String {
        hex::encode(self.mac("talktime pin key check"))
    }

    fn mac(&self, text: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(text.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The ledger_meta row naming the key its PIN hashes were made with.
const KEY_CHECK_NAME: &str = "pin_key_check";

impl Store {
    /// The stored form of `pin` under this store's key (what `cards.pin_hash` holds).
    pub(crate) fn pin_hash(&self, pin: &Pii<String>) -> String {
        self.pin_key.hash(pin)
    }

    /// Ties the ledger to this store's key: the first open records the key's check value and
    /// hashes any plain PINs left by an older version; a later open with another key fails.
    pub(crate) async fn adopt_pin_key(&self) -> Result<(), StoreError> {
        let check = self.pin_key.check_value();
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let recorded: Option<String> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT value FROM ledger_meta WHERE name = $1",
        )
        .bind(KEY_CHECK_NAME)
        .fetch_optional(&mut **c)
        .await)?;
        match recorded {
            Some(recorded) if recorded == check => return transaction.commit().await,
            Some(_) => {
                return Err(StoreError::PinKey(
                    "this ledger's PINs were hashed with another key (check TALKTIME_PIN_KEY or \
                     the key file; without the right key no PIN authenticates)"
                        .into(),
                ));
            }
            None => {}
        }
        let plain: Vec<(i64, String)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, pin_hash FROM cards WHERE pin_hash NOT LIKE 'h1:%'",
        )
        .fetch_all(&mut **c)
        .await)?;
        for (id, pin) in &plain {
            let hash = self.pin_key.hash(&Pii::new(pin.clone()));
            with_conn!(&mut conn, c => sqlx::query("UPDATE cards SET pin_hash = $1 WHERE id = $2")
                .bind(&hash)
                .bind(id)
                .execute(&mut **c)
                .await
                .map(|_| ()))?;
        }
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO ledger_meta (name, value) VALUES ($1, $2)",
        )
        .bind(KEY_CHECK_NAME)
        .bind(&check)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        transaction.commit().await?;
        if !plain.is_empty() {
            tracing::info!(
                cards = plain.len(),
                "plain PINs of an earlier version hashed"
            );
        }
        Ok(())
    }
}

fn refuse_shared_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|error| StoreError::PinKey(format!("{}: {error}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(StoreError::PinKey(format!(
            "{} can be read by others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

fn create_key_file(path: &Path) -> Result<PinKey, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let key = PinKey::from_bytes(&bytes);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::backend::create_private_dir(parent).map_err(StoreError::DataDirectory)?;
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    let mut file = match created {
        Ok(file) => file,
        // Another process created it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return PinKey::load(path);
        }
        Err(error) => {
            return Err(StoreError::PinKey(format!(
                "cannot create {}: {error}",
                path.display()
            )));
        }
    };
    writeln!(file, "{}", hex::encode(bytes))
        .and_then(|()| file.sync_all())
        .map_err(|error| StoreError::PinKey(format!("cannot write {}: {error}", path.display())))?;
    tracing::info!(file = %path.display(), "a new PIN key was created: back it up with the ledger");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_pin_hashes_alike_under_one_key_and_apart_under_another() {
        let one = PinKey::from_bytes(&[7; 32]);
        let other = PinKey::from_bytes(&[8; 32]);
        let pin = Pii::new("1234567890".to_owned());
        assert_eq!(one.hash(&pin), one.hash(&pin));
        assert_ne!(one.hash(&pin), other.hash(&pin));
        assert!(one.hash(&pin).starts_with(PIN_HASH_PREFIX));
        assert!(!one.hash(&pin).contains("1234567890"));
        assert_eq!(format!("{one:?}"), "PinKey(<redacted>)");
    }

    #[test]
    fn a_key_file_is_created_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("talktime-pin-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join(PIN_KEY_FILE_NAME);
        let created = PinKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let read = PinKey::load_or_create(&path).unwrap();
        assert_eq!(created.check_value(), read.check_value());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = PinKey::load_or_create(&path).unwrap_err().to_string();
        assert!(refused.contains("chmod 600"), "{refused}");
        assert!(PinKey::from_hex("abc").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
