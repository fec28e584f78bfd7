//! Bonus points (issue 22): the operator's rules (`talktime points rule`, `value`, `show`,
//! `award`) and the switch's sweep that awards calls' points from the ledger's charges every
//! `[portal] points_sweep_s` (crates/store/src/points.rs). Customers see and spend them in the
//! portal.

use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use talktime_store::{PointsScope, Store, format_micros, parse_micros};
use tracing::warn;

use crate::admin::LedgerArgs;
use crate::server::wall_clock_ms;

/// Charges looked at per transaction of a sweep.
const SWEEP_BATCH: i64 = 500;

#[derive(Debug, Subcommand)]
pub enum PointsCommand {
    /// How many points a whole unit spent on calls earns: for everyone, a reseller's
    /// customers (--reseller) or a tariff's (--tariff); the tariff's rule wins, then the
    /// reseller's.
    Rule {
        #[command(flatten)]
        ledger: LedgerArgs,
        #[arg(long, conflicts_with = "tariff")]
        reseller: Option<String>,
        #[arg(long)]
        tariff: Option<i64>,
        /// Points per unit spent (0: none).
        #[arg(long = "per-unit")]
        per_unit: i64,
    },
    /// What one point buys in a currency, e.g. 0.01.
    Value {
        #[command(flatten)]
        ledger: LedgerArgs,
        #[arg(long, default_value = "USD")]
        currency: String,
        #[arg(long = "per-point")]
        per_point: String,
    },
    /// What points buy as free minutes in a currency: N points a minute on calls to these
    /// prefixes (0 points: no minutes). Customers redeem them in the portal.
    Minutes {
        #[command(flatten)]
        ledger: LedgerArgs,
        #[arg(long, default_value = "USD")]
        currency: String,
        #[arg(long = "points-per-minute")]
        points_per_minute: i64,
        /// Destination prefixes the minutes are free on, comma-separated (1,44).
        #[arg(long, default_value = "")]
        prefixes: String,
    },
    /// Awards the points of the calls charged so far (the switch does it by itself).
    Award {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// An account's points and its last lines, as JSON.
    Show {
        #[command(flatten)]
        ledger: LedgerArgs,
        #[arg(long)]
        account: i64,
    },
}

pub async fn run(command: PointsCommand) -> anyhow::Result<()> {
    match command {
        PointsCommand::Rule {
            ledger,
            reseller,
            tariff,
            per_unit,
        } => {
            let store = ledger.open().await?;
            let scope = match (reseller, tariff) {
                (Some(name), _) => PointsScope::Reseller(
                    store
                        .reseller_by_name(&name)
                        .await?
                        .with_context(|| format!("no reseller is named {name:?}"))?
                        .id,
                ),
                (None, Some(tariff)) => PointsScope::Tariff(tariff),
                (None, None) => PointsScope::Everyone,
            };
            store.set_points_rule(scope, per_unit).await?;
            println!("{per_unit} points a unit spent for {scope:?}");
        }
        PointsCommand::Value {
            ledger,
            currency,
            per_point,
        } => {
            let micros = parse_micros(&per_point).context("--per-point")?;
            let currency = currency.trim().to_ascii_uppercase();
            let store = ledger.open().await?;
            store.set_points_value(&currency, micros).await?;
            println!("a point buys {} {currency}", format_micros(micros));
        }
        PointsCommand::Minutes {
            ledger,
            currency,
            points_per_minute,
            prefixes,
        } => {
            let currency = currency.trim().to_ascii_uppercase();
            let store = ledger.open().await?;
            store
                .set_points_minutes(&currency, points_per_minute, &prefixes)
                .await?;
            match store.points_minutes(&currency).await? {
                Some(offer) => println!(
                    "in {currency}, {} points buy a free minute to {}",
                    offer.points_per_minute, offer.prefixes
                ),
                None => println!("in {currency}, points buy no minutes"),
            }
        }
        PointsCommand::Award { ledger } => {
            let store = ledger.open().await?;
            let charges = sweep(&store).await?;
            println!("{charges} call charges looked at");
        }
        PointsCommand::Show { ledger, account } => {
            let store = ledger.open().await?;
            let lines: Vec<serde_json::Value> = store
                .points_lines(account, 50)
                .await?
                .into_iter()
                .map(|line| {
                    serde_json::json!({
                        "points": line.points,
                        "kind": line.kind,
                        "balance_after": line.balance_after,
                        "at_ms": line.created_at_ms,
                    })
                })
                .collect();
            let shown = serde_json::json!({
                "account": account,
                "points": store.points(account).await?,
                "lines": lines,
            });
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
    }
    Ok(())
}

/// Awards every charge due; how many were looked at.
async fn sweep(store: &Store) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let looked = store.award_points(wall_clock_ms(), SWEEP_BATCH).await?;
        total += looked;
        if looked < usize::try_from(SWEEP_BATCH).unwrap_or(usize::MAX) {
            return Ok(total);
        }
    }
}

/// The switch's sweep, every `every_s` (none when 0). A ledger that is down only delays
/// points: the cursor stays where it was.
pub fn spawn(store: Store, every_s: u64) {
    if every_s == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(every_s));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = sweep(&store).await {
                warn!(%error, "bonus points not awarded this time");
            }
        }
    });
}
