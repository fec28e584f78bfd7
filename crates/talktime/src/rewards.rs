//! Customer rewards for operators (issue 22): `talktime referrals set` (what a referral pays
//! both sides, per currency) and `list`. A signed-up customer names a referral code at
//! `/portal/signup`; the store pays both once, in the newcomer's first paid recharge
//! (crates/store/src/self_service.rs).

use anyhow::Context;
use clap::Subcommand;
use talktime_store::{ReferralRewards, format_micros, parse_micros};

use crate::admin::LedgerArgs;

#[derive(Debug, Subcommand)]
pub enum ReferralsCommand {
    /// Set what a referral pays in a currency: the customer who referred, and the newcomer.
    Set {
        #[command(flatten)]
        ledger: LedgerArgs,
        #[arg(long, default_value = "USD")]
        currency: String,
        /// Paid to the customer whose code was used, e.g. 2.00.
        #[arg(long)]
        referrer: String,
        /// Paid to the newcomer, e.g. 1.00.
        #[arg(long)]
        newcomer: String,
    },
    /// The rewards of every currency, as JSON.
    List {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
}

pub async fn run_referrals(command: ReferralsCommand) -> anyhow::Result<()> {
    match command {
        ReferralsCommand::Set {
            ledger,
            currency,
            referrer,
            newcomer,
        } => {
            let rewards = ReferralRewards {
                currency: currency.trim().to_ascii_uppercase(),
                referrer_micros: parse_micros(&referrer).context("--referrer")?,
                newcomer_micros: parse_micros(&newcomer).context("--newcomer")?,
            };
            let store = ledger.open().await?;
            store.set_referral_rewards(&rewards).await?;
            println!(
                "a referral pays {} to the referrer and {} to the newcomer in {}",
                format_micros(rewards.referrer_micros),
                format_micros(rewards.newcomer_micros),
                rewards.currency
            );
        }
        ReferralsCommand::List { ledger } => {
            let store = ledger.open().await?;
            let rows: Vec<serde_json::Value> = store
                .referral_rewards()
                .await?
                .into_iter()
                .map(|row| {
                    serde_json::json!({
                        "currency": row.currency,
                        "referrer": format_micros(row.referrer_micros),
                        "newcomer": format_micros(row.newcomer_micros),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(())
}
