//! Tariff-level settings and per-destination rates (the rows of a rate deck).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, MAX_DECIMAL_PLACES};
use crate::time::{Date, LocalStart, TimeOfDay, Weekday};

/// Upper bound for any money amount or per-minute rate in a tariff. Together with
/// [`MAX_CALL_SECONDS`] it keeps every intermediate product far inside `Decimal`'s 28 digits,
/// so rating arithmetic cannot overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// Upper bound for percentages (taxes, disconnect factor, step percentages).
pub const MAX_PERCENT: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);
/// Upper bound for a call's length and any configured number of seconds (about 11.5 days).
pub const MAX_CALL_SECONDS: u32 = 1_000_000;
/// Rates and amounts may carry at most this many decimal places.
pub const MAX_AMOUNT_SCALE: u32 = 10;

/// Invalid tariff data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TariffError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> TariffError {
    TariffError::Invalid {
        field,
        reason: reason.into(),
    }
}

pub(crate) fn check_amount(field: &'static str, value: Decimal) -> Result<(), TariffError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(invalid(field, format!("{value} is negative")));
    }
    if value > MAX_AMOUNT {
        return Err(invalid(field, format!("{value} exceeds {MAX_AMOUNT}")));
    }
    if value.scale() > MAX_AMOUNT_SCALE {
        return Err(invalid(
            field,
            format!("{value} has more than {MAX_AMOUNT_SCALE} decimals"),
        ));
    }
    Ok(())
}

pub(crate) fn check_percent(field: &'static str, value: Decimal) -> Result<(), TariffError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(invalid(field, format!("{value} is negative")));
    }
    if value > MAX_PERCENT || value.scale() > MAX_AMOUNT_SCALE {
        return Err(invalid(field, format!("{value} is out of range")));
    }
    Ok(())
}

fn check_seconds(field: &'static str, value: u32) -> Result<(), TariffError> {
    if value > MAX_CALL_SECONDS {
        return Err(invalid(
            field,
            format!("{value} exceeds {MAX_CALL_SECONDS} s"),
        ));
    }
    Ok(())
}

/// Where increments are counted from once the initial block is exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncrementAnchor {
    /// Increments are multiples counted from second 0, never less than the initial block
    /// (A2Billing, MagnusBilling): 45 s at 30/60 bills 60 s.
    FromCallStart,
    /// Increments follow the end of the initial block (ASTPP, Yeti, Kazoo):
    /// 45 s at 30/60 bills 30 + 60 = 90 s.
    #[default]
    AfterInitialBlock,
}

/// How a duration in milliseconds becomes whole seconds before any other rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurationRounding {
    /// Any started second counts (1 ms → 1 s).
    #[default]
    Up,
    /// Only complete seconds count (1999 ms → 1 s).
    Down,
    /// Nearest second, 500 ms rounds up.
    Nearest,
}

impl DurationRounding {
    /// Whole seconds for a duration, saturating at `u32::MAX`.
    pub fn seconds(self, duration_ms: u64) -> u32 {
        let seconds = match self {
            DurationRounding::Up => duration_ms.div_ceil(1000),
            DurationRounding::Down => duration_ms / 1000,
            DurationRounding::Nearest => duration_ms.saturating_add(500) / 1000,
        };
        u32::try_from(seconds).unwrap_or(u32::MAX)
    }

    /// The longest duration in milliseconds that rounds to at most `seconds`.
    pub fn last_millisecond_of(self, seconds: u32) -> u64 {
        let start = u64::from(seconds) * 1000;
        match self {
            DurationRounding::Up => start,
            DurationRounding::Down => start + 999,
            DurationRounding::Nearest => start + 499,
        }
    }
}

/// Settings shared by every destination of a tariff. The ledger stores this as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TariffSettings {
    pub currency: Currency,
    /// Decimal places of a call's total (0..=6); the only rounding point. Default 4.
    pub decimal_places: u32,
    pub duration_rounding: DurationRounding,
    pub increment_anchor: IncrementAnchor,
    /// Answered calls shorter than this are free (no call charges at all).
    pub grace_seconds: u32,
    /// Added per billed minute when the caller came in on a toll-free access number.
    pub toll_free_surcharge_per_minute: Decimal,
    /// Longest call the switch allows; the talk-time search never looks past it.
    pub max_call_seconds: u32,
    /// The dial plan calls rated by this tariff are routed with (seed 003's "premium" and
    /// "regular"); `None` keeps the access number's.
    pub dial_plan: Option<String>,
    /// Never connect a call through a carrier whose buy rate is above this tariff's sell
    /// rate for the destination (no loss-making calls).
    pub refuse_loss_making_routes: bool,
    /// The tariff's tax profile, applied in order to every charged call (an account's own
    /// profile replaces it).
    pub taxes: Vec<crate::tax::Tax>,
    /// Destinations this tariff's callers may reach (empty lists: all it rates).
    pub destinations: crate::destinations::DestinationPolicy,
}

impl Default for TariffSettings {
    fn default() -> Self {
        TariffSettings {
            currency: Currency::USD,
            decimal_places: 4,
            duration_rounding: DurationRounding::Up,
            increment_anchor: IncrementAnchor::AfterInitialBlock,
            grace_seconds: 0,
            toll_free_surcharge_per_minute: Decimal::ZERO,
            max_call_seconds: 4 * 3600,
            dial_plan: None,
            refuse_loss_making_routes: false,
            taxes: Vec::new(),
            destinations: crate::destinations::DestinationPolicy::default(),
        }
    }
}

impl TariffSettings {
    pub fn validate(&self) -> Result<(), TariffError> {
        if self.decimal_places > MAX_DECIMAL_PLACES {
            return Err(invalid(
                "decimal_places",
                format!("at most {MAX_DECIMAL_PLACES}"),
            ));
        }
        check_seconds("grace_seconds", self.grace_seconds)?;
        check_seconds("max_call_seconds", self.max_call_seconds)?;
        if self.max_call_seconds == 0 {
            return Err(invalid("max_call_seconds", "must be positive"));
        }
        check_amount(
            "toll_free_surcharge_per_minute",
            self.toll_free_surcharge_per_minute,
        )?;
        self.destinations.validate()?;
        self.tax_profile().validate()
    }

    /// The taxes as a profile named after nothing in particular ("tariff").
    pub fn tax_profile(&self) -> crate::tax::TaxProfile {
        crate::tax::TaxProfile {
            name: "tariff".into(),
            taxes: self.taxes.clone(),
        }
    }

    pub fn from_json(text: &str) -> Result<TariffSettings, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A flat fee charged at disconnect depending on the call's (rounded) length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectFee {
    pub amount: Decimal,
    pub threshold_seconds: u32,
    pub applies: DisconnectFeeApplies,
}

/// Which side of the threshold pays the flat disconnect fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectFeeApplies {
    /// Calls of fewer than `threshold_seconds` pay it (discourages very short calls). This makes
    /// cost fall at the threshold; the talk-time search handles that (see `max_talk_time`).
    ShorterThan,
    /// Calls of `threshold_seconds` or more pay it.
    AtLeast,
}

/// The brochures' "disconnect fee factor": the call's time charge is increased by `percent`
/// percent at disconnect, i.e. each billed minute costs `1 + percent/100` minutes of money (the
/// card's minutes shrink by that factor), for calls lasting at least `minimum_seconds`
/// (seed 003: "if the call lasted less time than the pre-set disconnection time, this fee is not
/// applied").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectFactor {
    pub percent: Decimal,
    #[serde(default)]
    pub minimum_seconds: u32,
}

/// The rate of one step of step billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepRate {
    PerMinute(Decimal),
    /// A percentage of the destination's (period-resolved) sell rate: 120 means +20 %.
    PercentOfBase(Decimal),
}

/// From `after_seconds` of billed time on, billed seconds cost `rate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateStep {
    pub after_seconds: u32,
    pub rate: StepRate,
}

/// A time-of-day / day-of-week rate. Chosen by the call's local start; the whole call is rated
/// at the period where it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatePeriod {
    /// Days on which the period starts; empty means every day.
    #[serde(default)]
    pub days: Vec<Weekday>,
    /// Inclusive start. A period whose end is before its start wraps past midnight;
    /// equal start and end means the whole day.
    pub from: TimeOfDay,
    /// Exclusive end.
    pub until: TimeOfDay,
    pub sell_per_minute: Decimal,
    /// Defaults to the destination's buy rate.
    #[serde(default)]
    pub buy_per_minute: Option<Decimal>,
}

impl RatePeriod {
    pub fn matches(&self, start: &LocalStart) -> bool {
        if !self.days.is_empty() && !self.days.contains(&start.weekday()) {
            return false;
        }
        let time = start.time;
        match self.from.cmp(&self.until) {
            std::cmp::Ordering::Less => self.from <= time && time < self.until,
            std::cmp::Ordering::Greater => time >= self.from || time < self.until,
            std::cmp::Ordering::Equal => true,
        }
    }
}

/// One destination of a rate deck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Digits only, matched as the longest prefix of the dialled number.
    pub prefix: String,
    #[serde(default)]
    pub description: String,
    pub sell_per_minute: Decimal,
    #[serde(default)]
    pub buy_per_minute: Decimal,
    /// Seconds billed at least once the call is answered (0 = none).
    pub initial_seconds: u32,
    /// Billing step after (or counted with, per [`IncrementAnchor`]) the initial block; ≥ 1.
    pub increment_seconds: u32,
    #[serde(default)]
    pub connection_fee: Decimal,
    #[serde(default)]
    pub minimum_cost: Option<Decimal>,
    #[serde(default)]
    pub disconnect_fee: Option<DisconnectFee>,
    #[serde(default)]
    pub disconnect_factor: Option<DisconnectFactor>,
    /// Ascending `after_seconds`; any number of steps.
    #[serde(default)]
    pub steps: Vec<RateStep>,
    /// IVR minute shrinking, in percent (0 < p ≤ 100): the caller is told `real ÷ p %`.
    #[serde(default)]
    pub shrink_percent: Option<Decimal>,
    /// The first matching period replaces the sell (and optionally buy) rate.
    #[serde(default)]
    pub periods: Vec<RatePeriod>,
    /// Inclusive first day this rate applies (local date of the call's start).
    #[serde(default)]
    pub valid_from: Option<Date>,
    /// Inclusive last day this rate applies.
    #[serde(default)]
    pub valid_until: Option<Date>,
}

impl Rate {
    /// A rate with only the essential fields set; the rest empty.
    pub fn new(
        prefix: &str,
        sell_per_minute: Decimal,
        initial_seconds: u32,
        increment_seconds: u32,
    ) -> Rate {
        Rate {
            prefix: prefix.to_owned(),
            description: String::new(),
            sell_per_minute,
            buy_per_minute: Decimal::ZERO,
            initial_seconds,
            increment_seconds,
            connection_fee: Decimal::ZERO,
            minimum_cost: None,
            disconnect_fee: None,
            disconnect_factor: None,
            steps: Vec::new(),
            shrink_percent: None,
            periods: Vec::new(),
            valid_from: None,
            valid_until: None,
        }
    }

    pub fn is_valid_on(&self, date: Date) -> bool {
        self.valid_from.is_none_or(|from| from <= date)
            && self.valid_until.is_none_or(|until| date <= until)
    }

    pub fn validate(&self) -> Result<(), TariffError> {
        check_amount("sell_per_minute", self.sell_per_minute)?;
        check_amount("buy_per_minute", self.buy_per_minute)?;
        check_amount("connection_fee", self.connection_fee)?;
        check_seconds("initial_seconds", self.initial_seconds)?;
        check_seconds("increment_seconds", self.increment_seconds)?;
        if self.increment_seconds == 0 {
            return Err(invalid("increment_seconds", "must be at least 1"));
        }
        if let Some(minimum) = self.minimum_cost {
            check_amount("minimum_cost", minimum)?;
        }
        if let Some(fee) = &self.disconnect_fee {
            check_amount("disconnect_fee.amount", fee.amount)?;
            check_seconds("disconnect_fee.threshold_seconds", fee.threshold_seconds)?;
        }
        if let Some(factor) = &self.disconnect_factor {
            check_percent("disconnect_factor.percent", factor.percent)?;
            check_seconds("disconnect_factor.minimum_seconds", factor.minimum_seconds)?;
        }
        self.validate_steps()?;
        if let Some(percent) = self.shrink_percent
            && (percent <= Decimal::ZERO || percent > Decimal::ONE_HUNDRED || percent.scale() > 6)
        {
            return Err(invalid("shrink_percent", "must be in (0, 100]"));
        }
        for period in &self.periods {
            check_amount("periods.sell_per_minute", period.sell_per_minute)?;
            if let Some(buy) = period.buy_per_minute {
                check_amount("periods.buy_per_minute", buy)?;
            }
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until)
            && until < from
        {
            return Err(invalid("valid_until", "is before valid_from"));
        }
        Ok(())
    }

    fn validate_steps(&self) -> Result<(), TariffError> {
        let mut previous = 0;
        for step in &self.steps {
            check_seconds("steps.after_seconds", step.after_seconds)?;
            if step.after_seconds == 0 || step.after_seconds <= previous {
                return Err(invalid(
                    "steps",
                    "after_seconds must be positive and ascending",
                ));
            }
            previous = step.after_seconds;
            match step.rate {
                StepRate::PerMinute(rate) => check_amount("steps.rate", rate)?,
                StepRate::PercentOfBase(percent) => check_percent("steps.rate", percent)?,
            }
        }
        Ok(())
    }
}
