//! The customer portal's message board for operators (issue 22): `talktime messages post`,
//! `list` and `remove`. Customers read the messages meant for them on `/portal`.

use clap::Subcommand;

use crate::admin::{LedgerArgs, end_of_day_ms};
use crate::server::wall_clock_ms;

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// Post a message to every customer, or to one reseller's customers (--reseller).
    Post {
        #[command(flatten)]
        ledger: LedgerArgs,
        #[arg(long)]
        title: String,
        #[arg(long)]
        body: String,
        /// Only this reseller's customers (its name or id).
        #[arg(long)]
        reseller: Option<String>,
        /// Shown through this day (UTC, YYYY-MM-DD); without it, until removed.
        #[arg(long)]
        until: Option<String>,
    },
    /// Every message, newest first, as JSON.
    List {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Remove a message.
    Remove {
        #[command(flatten)]
        ledger: LedgerArgs,
        id: i64,
    },
}

pub async fn run(command: MessagesCommand) -> anyhow::Result<()> {
    match command {
        MessagesCommand::Post {
            ledger,
            title,
            body,
            reseller,
            until,
        } => {
            let store = ledger.open().await?;
            let reseller_id = match reseller.as_deref() {
                Some(text) => Some(crate::resellers::find(&store, text).await?.id),
                None => None,
            };
            let until = until.as_deref().map(end_of_day_ms).transpose()?;
            let id = store
                .post_portal_message(&title, &body, reseller_id, until, wall_clock_ms())
                .await?;
            println!("message {id} posted");
        }
        MessagesCommand::List { ledger } => {
            let store = ledger.open().await?;
            let rows: Vec<serde_json::Value> = store
                .portal_messages()
                .await?
                .into_iter()
                .map(|message| {
                    serde_json::json!({
                        "id": message.id,
                        "title": message.title,
                        "body": message.body,
                        "reseller_id": message.reseller_id,
                        "posted_at_ms": message.posted_at_ms,
                        "expires_at_ms": message.expires_at_ms,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        MessagesCommand::Remove { ledger, id } => {
            let store = ledger.open().await?;
            if !store.remove_portal_message(id).await? {
                anyhow::bail!("no message {id}");
            }
            println!("message {id} removed");
        }
    }
    Ok(())
}
