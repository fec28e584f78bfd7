//! Promotion coupons for operators (issue 22): `talktime coupons add` and `list`. A customer
//! gives a coupon's code with a voucher in the customer portal (`/portal`); the store applies
//! it (crates/store/src/coupons.rs).

use anyhow::Context;
use clap::Subcommand;
use talktime_store::{NewCoupon, parse_micros};

use crate::admin::{LedgerArgs, end_of_day_ms};
use crate::server::wall_clock_ms;

#[derive(Debug, Subcommand)]
pub enum CouponsCommand {
    /// Make a coupon: a share of the recharge (--percent) or a fixed amount (--amount).
    Add {
        #[command(flatten)]
        ledger: LedgerArgs,
        /// What customers type (letters and digits; any case).
        code: String,
        /// Share of the recharge added, e.g. 10 or 2.5.
        #[arg(long, conflicts_with = "amount", required_unless_present = "amount")]
        percent: Option<String>,
        /// Fixed amount added, e.g. 1.00.
        #[arg(long)]
        amount: Option<String>,
        #[arg(long, default_value = "USD")]
        currency: String,
        /// Valid from the start of this day (UTC, YYYY-MM-DD).
        #[arg(long = "from")]
        from: Option<String>,
        /// Valid through this day (UTC, YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        /// Uses in all (0: no limit).
        #[arg(long = "max-uses", default_value_t = 0)]
        max_uses: i64,
        /// Uses by one customer (0: no limit).
        #[arg(long = "max-per-customer", default_value_t = 1)]
        max_per_customer: i64,
    },
    /// Every coupon with its uses, as JSON.
    List {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
}

/// A coupon as an operator writes it (the CLI's options, the console's form).
pub(crate) struct CouponText<'a> {
    pub code: &'a str,
    /// Share of the recharge, e.g. "10" or "2.5" (or none, with an amount).
    pub percent: Option<&'a str>,
    /// Fixed amount, e.g. "1.00" (or none, with a share).
    pub amount: Option<&'a str>,
    pub currency: &'a str,
    /// First and last day (UTC, YYYY-MM-DD).
    pub from: Option<&'a str>,
    pub until: Option<&'a str>,
    pub max_uses: i64,
    pub max_per_customer: i64,
}

impl CouponText<'_> {
    /// The coupon to store; the store checks the rest (one of share and amount, limits).
    pub(crate) fn parse(&self) -> anyhow::Result<NewCoupon> {
        let day_start = |day: &str| end_of_day_ms(day).map(|end| end - 86_400_000);
        Ok(NewCoupon {
            code: self.code.trim().to_owned(),
            percent_bp: self.percent.map(basis_points).transpose()?.unwrap_or(0),
            amount_micros: self
                .amount
                .map(parse_micros)
                .transpose()
                .context("the amount is a number such as 1.00")?
                .unwrap_or(0),
            currency: self.currency.trim().to_owned(),
            valid_from_ms: self.from.map(day_start).transpose()?,
            valid_until_ms: self.until.map(end_of_day_ms).transpose()?,
            max_uses: self.max_uses,
            max_uses_per_account: self.max_per_customer,
        })
    }
}

/// A percentage as basis points: "10" is 1000, "2.5" is 250; at most two decimals.
fn basis_points(percent: &str) -> anyhow::Result<i64> {
    let micros = parse_micros(percent).context("the share is a number such as 10 or 2.5")?;
    // A percent in micro-units: 1 % is 1,000,000 micros and 100 basis points.
    if micros % 10_000 != 0 {
        anyhow::bail!("the share takes at most two decimals");
    }
    Ok(micros / 10_000)
}

pub async fn run(command: CouponsCommand) -> anyhow::Result<()> {
    match command {
        CouponsCommand::Add {
            ledger,
            code,
            percent,
            amount,
            currency,
            from,
            until,
            max_uses,
            max_per_customer,
        } => {
            let coupon = CouponText {
                code: &code,
                percent: percent.as_deref(),
                amount: amount.as_deref(),
                currency: &currency,
                from: from.as_deref(),
                until: until.as_deref(),
                max_uses,
                max_per_customer,
            }
            .parse()?;
            let store = ledger.open().await?;
            let id = store.create_coupon(&coupon, wall_clock_ms()).await?;
            println!(
                "coupon {} added (id {id})",
                coupon.code.to_ascii_uppercase()
            );
        }
        CouponsCommand::List { ledger } => {
            let store = ledger.open().await?;
            let rows: Vec<serde_json::Value> = store
                .coupons()
                .await?
                .into_iter()
                .map(|row| {
                    serde_json::json!({
                        "id": row.id,
                        "code": row.code,
                        "percent": talktime_store::format_micros(row.percent_bp * 10_000),
                        "amount": talktime_store::format_micros(row.amount_micros),
                        "currency": row.currency,
                        "valid_from_ms": row.valid_from_ms,
                        "valid_until_ms": row.valid_until_ms,
                        "max_uses": row.max_uses,
                        "max_per_customer": row.max_uses_per_account,
                        "uses": row.uses,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentage_is_basis_points_with_two_decimals_at_most() {
        assert_eq!(basis_points("10").unwrap(), 1_000);
        assert_eq!(basis_points("2.5").unwrap(), 250);
        assert_eq!(basis_points("0.01").unwrap(), 1);
        assert!(basis_points("0.001").is_err());
        assert!(basis_points("ten").is_err());
    }
}
