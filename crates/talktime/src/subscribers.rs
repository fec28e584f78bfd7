//! SIP subscribers for operators (issue 16): `talktime subscribers add|list|disable|enable`,
//! and the ledger's answer when the switch checks a subscriber's digest
//! (crates/b2bua/src/subscribers.rs).

use std::path::PathBuf;

use clap::Subcommand;
use talktime_b2bua::ledger::SubscriberAuth;
use talktime_engine::{AccountId, AccountInfo, Language};
use talktime_pii::Pii;
use talktime_sip::auth::{Algorithm, compute_ha1};
use talktime_store::Store;
use tracing::warn;

use crate::admin::AccountArgs;
use crate::admin::LedgerArgs;
use crate::server::wall_clock_ms;

/// Random passwords are this long (letters and digits: about 95 bits).
const PASSWORD_LENGTH: usize = 16;
const MIN_PASSWORD_LENGTH: usize = 8;

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Add a SIP subscriber (a phone that registers and calls without the IVR) to an
    /// account. Without --password-file a random password is made and printed, once.
    Add {
        #[command(flatten)]
        account: AccountArgs,
        /// The phone's SIP username.
        username: String,
        /// A file holding the password (the first line).
        #[arg(long = "password-file")]
        password_file: Option<PathBuf>,
        /// The caller ID its calls present to carriers.
        #[arg(long = "caller-id")]
        caller_id: Option<String>,
        /// The digest realm: `[subscribers] realm` of the switch's configuration.
        #[arg(long, default_value = "talktime")]
        realm: String,
    },
    /// An account's subscribers (never their passwords).
    List {
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Refuse a subscriber's registrations and calls.
    Disable {
        #[command(flatten)]
        ledger: LedgerArgs,
        username: String,
    },
    /// Accept a disabled subscriber again.
    Enable {
        #[command(flatten)]
        ledger: LedgerArgs,
        username: String,
    },
}

fn random_password() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut random = rand::rng();
    (0..PASSWORD_LENGTH)
        .map(|_| char::from(ALPHABET[random.random_range(0..ALPHABET.len())]))
        .collect()
}

pub async fn run(command: SubscribersCommand) -> anyhow::Result<()> {
    match command {
        SubscribersCommand::Add {
            account,
            username,
            password_file,
            caller_id,
            realm,
        } => {
            let (store, account) = account.resolve().await?;
            let (password, made) = match password_file {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).map_err(|error| {
                        anyhow::anyhow!("cannot read {}: {error}", path.display())
                    })?;
                    (text.lines().next().unwrap_or_default().to_owned(), false)
                }
                None => (random_password(), true),
            };
            if password.chars().count() < MIN_PASSWORD_LENGTH {
                anyhow::bail!("a password has at least {MIN_PASSWORD_LENGTH} characters");
            }
            let ha1 = Pii::new(compute_ha1(Algorithm::Md5, &username, &realm, &password));
            let caller_id = caller_id.map(Pii::new);
            let added = store
                .add_subscriber(
                    account,
                    &username,
                    &realm,
                    &ha1,
                    caller_id.as_ref(),
                    wall_clock_ms(),
                )
                .await?;
            eprintln!(
                "subscriber {} added to account {} (realm {realm})",
                added.username, added.account_id
            );
            if made {
                // The only time it can be read.
                println!("{password}");
            }
        }
        SubscribersCommand::List { account } => {
            let (store, account) = account.resolve().await?;
            for subscriber in store.subscribers_of(account).await? {
                println!(
                    "{}\t{}\t{}",
                    subscriber.username,
                    subscriber.status,
                    subscriber
                        .caller_id
                        .as_ref()
                        .map_or("-", |id| id.expose().as_str())
                );
            }
        }
        SubscribersCommand::Disable { ledger, username } => {
            set_status(&ledger, &username, false).await?;
        }
        SubscribersCommand::Enable { ledger, username } => {
            set_status(&ledger, &username, true).await?;
        }
    }
    Ok(())
}

async fn set_status(ledger: &LedgerArgs, username: &str, active: bool) -> anyhow::Result<()> {
    let store = ledger.open().await?;
    if !store.set_subscriber_status(username, active).await? {
        anyhow::bail!("no subscriber {username}");
    }
    eprintln!(
        "subscriber {username} {}",
        if active { "enabled" } else { "disabled" }
    );
    Ok(())
}

/// The subscriber the switch asks for, if it and its account are active. A database error
/// is logged and answered as unknown: the phone is refused, never let in.
pub async fn lookup(store: &Store, username: &str) -> Option<Box<SubscriberAuth>> {
    let found = async {
        let Some(subscriber) = store.subscriber(username).await? else {
            return Ok(None);
        };
        if subscriber.status != "active" {
            return Ok(None);
        }
        let account = store.account(subscriber.account_id).await?;
        if account.status.as_str() != "active" {
            return Ok(None);
        }
        Ok::<_, talktime_store::StoreError>(Some(Box::new(SubscriberAuth {
            username: subscriber.username,
            realm: subscriber.realm,
            ha1: subscriber.ha1,
            account: AccountInfo {
                account: AccountId(account.id),
                card: None,
                balance_micros: account.balance_micros,
                minimum_micros: 0,
                currency: account.currency,
                language: account
                    .ivr_language
                    .as_deref()
                    .and_then(Language::from_code),
                forward_destination: None,
            },
            caller_id: subscriber.caller_id,
        })))
    };
    match found.await {
        Ok(found) => found,
        Err(error) => {
            warn!(%error, "subscriber lookup failed; refused");
            None
        }
    }
}
