//! The optional per-destination columns of a tariff CSV: every field of [`Rate`] beyond the
//! seven basic ones, as operators write them in a spreadsheet (docs/TARIFFS.md), and back.
//!
//! | column | form | example |
//! |---|---|---|
//! | `minimum_cost` | decimal | `0.10` |
//! | `disconnect_fee` | decimal | `0.05` |
//! | `disconnect_fee_threshold_s` | seconds | `30` |
//! | `disconnect_fee_applies` | `shorter_than` (default) or `at_least` | `at_least` |
//! | `disconnect_factor_percent` | decimal percent | `10` |
//! | `disconnect_factor_min_s` | seconds | `60` |
//! | `shrink_percent` | decimal percent, 0 < p <= 100 | `80` |
//! | `valid_from`, `valid_until` | `YYYY-MM-DD`, inclusive | `2026-12-01` |
//! | `steps` | `after_s:per_minute` or `after_s:percent%`, `;` between | `60:0.05;300:120%` |
//! | `periods` | `[days ]HH:MM-HH:MM=sell[/buy]`, `;` between; days `mon-fri`, `sat,sun` | `mon-fri 08:00-18:00=0.12/0.06` |
//!
//! An empty cell leaves the field unset.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::tariff::{
    DisconnectFactor, DisconnectFee, DisconnectFeeApplies, Rate, RatePeriod, RateStep, StepRate,
};
use crate::time::{Date, TimeOfDay, Weekday};

/// The optional columns, in the order an export writes them.
pub const RATE_EXTRA_COLUMNS: [&str; 11] = [
    "minimum_cost",
    "disconnect_fee",
    "disconnect_fee_threshold_s",
    "disconnect_fee_applies",
    "disconnect_factor_percent",
    "disconnect_factor_min_s",
    "shrink_percent",
    "valid_from",
    "valid_until",
    "steps",
    "periods",
];

/// A cell that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{column}: {message}")]
pub struct ColumnError {
    pub column: &'static str,
    pub message: String,
}

/// Every per-destination field of a rate beyond the basic seven.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateExtras {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_cost: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_fee: Option<DisconnectFee>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_factor: Option<DisconnectFactor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrink_percent: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Date>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<RateStep>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub periods: Vec<RatePeriod>,
}

impl RateExtras {
    /// Reads the optional cells of one row (column name, cell text); names must be among
    /// [`RATE_EXTRA_COLUMNS`]. The result is checked by [`Rate::validate`] through a rate.
    pub fn from_columns(cells: &[(&'static str, &str)]) -> Result<RateExtras, ColumnError> {
        let cell = |name: &str| {
            cells
                .iter()
                .find(|(column, _)| *column == name)
                .map(|(_, text)| text.trim())
                .filter(|text| !text.is_empty())
        };
        let mut extras = RateExtras {
            minimum_cost: cell("minimum_cost")
                .map(|text| decimal("minimum_cost", text))
                .transpose()?,
            shrink_percent: cell("shrink_percent")
                .map(|text| decimal("shrink_percent", text))
                .transpose()?,
            valid_from: cell("valid_from")
                .map(|text| date("valid_from", text))
                .transpose()?,
            valid_until: cell("valid_until")
                .map(|text| date("valid_until", text))
                .transpose()?,
            ..RateExtras::default()
        };
        if let Some(amount) = cell("disconnect_fee") {
            let applies = match cell("disconnect_fee_applies") {
                None | Some("shorter_than") => DisconnectFeeApplies::ShorterThan,
                Some("at_least") => DisconnectFeeApplies::AtLeast,
                Some(other) => {
                    return Err(error(
                        "disconnect_fee_applies",
                        format!("{other:?} is neither shorter_than nor at_least"),
                    ));
                }
            };
            extras.disconnect_fee = Some(DisconnectFee {
                amount: decimal("disconnect_fee", amount)?,
                threshold_seconds: cell("disconnect_fee_threshold_s")
                    .map(|text| seconds("disconnect_fee_threshold_s", text))
                    .transpose()?
                    .unwrap_or(0),
                applies,
            });
        }
        if let Some(percent) = cell("disconnect_factor_percent") {
            extras.disconnect_factor = Some(DisconnectFactor {
                percent: decimal("disconnect_factor_percent", percent)?,
                minimum_seconds: cell("disconnect_factor_min_s")
                    .map(|text| seconds("disconnect_factor_min_s", text))
                    .transpose()?
                    .unwrap_or(0),
            });
        }
        if let Some(text) = cell("steps") {
            extras.steps = steps(text)?;
        }
        if let Some(text) = cell("periods") {
            extras.periods = periods(text)?;
        }
        Ok(extras)
    }

    /// The cells of [`RATE_EXTRA_COLUMNS`], in that order (empty where unset): what an
    /// export writes, and what [`RateExtras::from_columns`] reads back to the same value.
    pub fn to_columns(&self) -> Vec<String> {
        let fee = self.disconnect_fee.as_ref();
        let factor = self.disconnect_factor.as_ref();
        let text = |value: Option<String>| value.unwrap_or_default();
        vec![
            text(self.minimum_cost.map(|d| d.normalize().to_string())),
            text(fee.map(|fee| fee.amount.normalize().to_string())),
            text(fee.map(|fee| fee.threshold_seconds.to_string())),
            text(fee.map(|fee| match fee.applies {
                DisconnectFeeApplies::ShorterThan => "shorter_than".to_owned(),
                DisconnectFeeApplies::AtLeast => "at_least".to_owned(),
            })),
            text(factor.map(|factor| factor.percent.normalize().to_string())),
            text(factor.map(|factor| factor.minimum_seconds.to_string())),
            text(self.shrink_percent.map(|d| d.normalize().to_string())),
            text(self.valid_from.map(|date| date.to_string())),
            text(self.valid_until.map(|date| date.to_string())),
            self.steps
                .iter()
                .map(step_text)
                .collect::<Vec<_>>()
                .join(";"),
            self.periods
                .iter()
                .map(period_text)
                .collect::<Vec<_>>()
                .join(";"),
        ]
    }

    pub fn is_empty(&self) -> bool {
        *self == RateExtras::default()
    }

    /// Sets these fields on a rate.
    pub fn apply_to(&self, rate: &mut Rate) {
        rate.minimum_cost = self.minimum_cost;
        rate.disconnect_fee = self.disconnect_fee.clone();
        rate.disconnect_factor = self.disconnect_factor.clone();
        rate.shrink_percent = self.shrink_percent;
        rate.valid_from = self.valid_from;
        rate.valid_until = self.valid_until;
        rate.steps = self.steps.clone();
        rate.periods = self.periods.clone();
    }
}

fn error(column: &'static str, message: impl Into<String>) -> ColumnError {
    ColumnError {
        column,
        message: message.into(),
    }
}

fn decimal(column: &'static str, text: &str) -> Result<Decimal, ColumnError> {
    text.parse::<Decimal>()
        .map_err(|_| error(column, format!("{text:?} is not a decimal number")))
}

fn seconds(column: &'static str, text: &str) -> Result<u32, ColumnError> {
    text.parse::<u32>()
        .map_err(|_| error(column, format!("{text:?} is not a whole number of seconds")))
}

fn date(column: &'static str, text: &str) -> Result<Date, ColumnError> {
    text.parse::<Date>()
        .map_err(|_| error(column, format!("{text:?} is not a YYYY-MM-DD date")))
}

/// `60:0.05;300:120%`
fn steps(text: &str) -> Result<Vec<RateStep>, ColumnError> {
    text.split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (after, rate) = part
                .split_once(':')
                .ok_or_else(|| error("steps", format!("{part:?} is not after_s:rate")))?;
            let rate = match rate.trim().strip_suffix('%') {
                Some(percent) => StepRate::PercentOfBase(decimal("steps", percent.trim())?),
                None => StepRate::PerMinute(decimal("steps", rate.trim())?),
            };
            Ok(RateStep {
                after_seconds: seconds("steps", after.trim())?,
                rate,
            })
        })
        .collect()
}

fn step_text(step: &RateStep) -> String {
    match step.rate {
        StepRate::PerMinute(rate) => format!("{}:{}", step.after_seconds, rate.normalize()),
        StepRate::PercentOfBase(percent) => {
            format!("{}:{}%", step.after_seconds, percent.normalize())
        }
    }
}

/// `mon-fri 08:00-18:00=0.12/0.06;sat,sun 00:00-00:00=0.05`
fn periods(text: &str) -> Result<Vec<RatePeriod>, ColumnError> {
    text.split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(period)
        .collect()
}

fn period(part: &str) -> Result<RatePeriod, ColumnError> {
    let (when, rates) = part
        .split_once('=')
        .ok_or_else(|| error("periods", format!("{part:?} has no =rate")))?;
    let (days, hours) = match when.trim().rsplit_once(' ') {
        Some((days, hours)) => (weekdays(days.trim())?, hours),
        None => (Vec::new(), when.trim()),
    };
    let (from, until) = hours
        .split_once('-')
        .ok_or_else(|| error("periods", format!("{hours:?} is not HH:MM-HH:MM")))?;
    let time = |text: &str| {
        text.trim()
            .parse::<TimeOfDay>()
            .map_err(|_| error("periods", format!("{text:?} is not HH:MM")))
    };
    let (sell, buy) = match rates.split_once('/') {
        Some((sell, buy)) => (sell, Some(decimal("periods", buy.trim())?)),
        None => (rates, None),
    };
    Ok(RatePeriod {
        days,
        from: time(from)?,
        until: time(until)?,
        sell_per_minute: decimal("periods", sell.trim())?,
        buy_per_minute: buy,
    })
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn weekday(text: &str) -> Result<usize, ColumnError> {
    let name = text.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|day| name.starts_with(day))
        .ok_or_else(|| error("periods", format!("{text:?} is not a day (mon..sun)")))
}

/// `mon-fri`, `sat,sun`, `mon,wed-fri`
fn weekdays(text: &str) -> Result<Vec<Weekday>, ColumnError> {
    let mut days = Vec::new();
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (weekday(first)?, weekday(last)?),
            None => (weekday(part)?, weekday(part)?),
        };
        if last < first {
            return Err(error("periods", format!("{part:?} runs backwards")));
        }
        days.extend_from_slice(&Weekday::ALL[first..=last]);
    }
    Ok(days)
}

fn period_text(period: &RatePeriod) -> String {
    let days = period
        .days
        .iter()
        .map(|day| DAY_NAMES[Weekday::ALL.iter().position(|d| d == day).unwrap_or(0)])
        .collect::<Vec<_>>()
        .join(",");
    let short = |time: TimeOfDay| {
        let text = time.to_string();
        text.strip_suffix(":00").map(str::to_owned).unwrap_or(text)
    };
    let hours = format!("{}-{}", short(period.from), short(period.until));
    let rates = match period.buy_per_minute {
        Some(buy) => format!("{}/{}", period.sell_per_minute.normalize(), buy.normalize()),
        None => period.sell_per_minute.normalize().to_string(),
    };
    if days.is_empty() {
        format!("{hours}={rates}")
    } else {
        format!("{days} {hours}={rates}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(cells: &[(&'static str, &str)]) -> Result<RateExtras, ColumnError> {
        RateExtras::from_columns(cells)
    }

    #[test]
    fn every_column_reads_and_writes_back_the_same() {
        let cells: Vec<(&'static str, &str)> = RATE_EXTRA_COLUMNS
            .iter()
            .copied()
            .zip([
                "0.1",
                "0.05",
                "30",
                "at_least",
                "10",
                "60",
                "80",
                "2026-12-01",
                "2027-01-31",
                "60:0.05;300:120%",
                "mon-fri 08:00-18:00=0.12/0.06;sat,sun 00:00-00:00=0.05",
            ])
            .collect();
        let extras = row(&cells).unwrap();
        assert_eq!(extras.periods[0].days.len(), 5);
        assert_eq!(
            extras.steps[1].rate,
            StepRate::PercentOfBase(Decimal::from(120))
        );
        let written = extras.to_columns();
        let again: Vec<(&'static str, &str)> = RATE_EXTRA_COLUMNS
            .iter()
            .copied()
            .zip(written.iter().map(String::as_str))
            .collect();
        assert_eq!(row(&again).unwrap(), extras);
        assert_eq!(
            written[10],
            "mon,tue,wed,thu,fri 08:00-18:00=0.12/0.06;sat,sun 00:00-00:00=0.05"
        );
    }

    #[test]
    fn empty_cells_leave_fields_unset_and_bad_ones_name_their_column() {
        assert!(
            row(&[("minimum_cost", " "), ("steps", "")])
                .unwrap()
                .is_empty()
        );
        let bad = row(&[
            ("disconnect_fee", "0.05"),
            ("disconnect_fee_applies", "sometimes"),
        ]);
        assert_eq!(bad.unwrap_err().column, "disconnect_fee_applies");
        assert_eq!(
            row(&[("periods", "xyz 08:00-09:00=1")]).unwrap_err().column,
            "periods"
        );
        assert_eq!(
            row(&[("valid_from", "2026-13-01")]).unwrap_err().column,
            "valid_from"
        );
    }
}
