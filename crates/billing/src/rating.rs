//! The one rating function and the talk-time search built on it.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, round_amount};
use crate::tariff::{
    DisconnectFactor, DisconnectFee, DisconnectFeeApplies, DurationRounding, IncrementAnchor, Rate,
    StepRate, TariffError, TariffSettings, check_amount,
};
use crate::tax::{TaxLine, TaxProfile};
use crate::time::LocalStart;

const SECONDS_PER_MINUTE: Decimal = Decimal::from_parts(60, 0, 0, false, 0);

/// Errors from building a context or searching talk time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    #[error("invalid tariff: {0}")]
    Tariff(#[from] TariffError),
    #[error("rate for prefix {prefix} is not valid on {date}")]
    NotValidOnDate { prefix: String, date: String },
    #[error("no rate matches the dialled number")]
    NoRoute,
    #[error("currency mismatch: tariff in {tariff}, balance in {balance}")]
    CurrencyMismatch { tariff: Currency, balance: Currency },
    #[error(
        "insufficient credit: the first billable unit costs {first_unit_cost}, available {available}"
    )]
    InsufficientCredit {
        first_unit_cost: Money,
        available: Money,
    },
}

/// A one-off account fee charged with this call, e.g. the activation fee on first use
/// (see [`crate::AccountPlan::activation_fee_due`]). Including it here makes the talk-time
/// search reserve for it too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountFee {
    pub name: String,
    pub amount: Decimal,
}

/// Everything about one call that is not in the tariff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallFacts {
    pub start: LocalStart,
    /// The caller came in on a toll-free access number.
    #[serde(default)]
    pub toll_free_access: bool,
    /// Free seconds left in a package that matches this destination (the ledger decides which
    /// package matches; see [`crate::FreeMinutePackage`]).
    #[serde(default)]
    pub package_seconds_available: u32,
    #[serde(default)]
    pub account_fees: Vec<AccountFee>,
    #[serde(default)]
    pub taxes: TaxProfile,
}

impl CallFacts {
    pub fn new(start: LocalStart) -> CallFacts {
        CallFacts {
            start,
            toll_free_access: false,
            package_seconds_available: 0,
            account_fees: Vec::new(),
            taxes: TaxProfile::none(),
        }
    }
}

/// A per-minute rate in force from `from_seconds` of billed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedStep {
    pub from_seconds: u32,
    pub per_minute: Decimal,
}

/// A tariff row resolved for one call: period, steps and flags fixed, values owned.
/// Built once per call; [`rate_call`] and [`max_talk_time`] only read it. Only
/// [`RatingContext::new`] can build one, so every value in it has been validated (which is
/// why rating arithmetic cannot overflow); it serializes for reports but does not deserialize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RatingContext {
    pub currency: Currency,
    pub decimal_places: u32,
    pub duration_rounding: DurationRounding,
    pub increment_anchor: IncrementAnchor,
    pub max_call_seconds: u32,
    pub grace_seconds: u32,
    pub prefix: String,
    pub description: String,
    pub initial_seconds: u32,
    pub increment_seconds: u32,
    /// First entry starts at 0 with the (period-resolved) sell rate.
    pub steps: Vec<ResolvedStep>,
    pub buy_per_minute: Decimal,
    pub connection_fee: Decimal,
    pub minimum_cost: Option<Decimal>,
    pub disconnect_fee: Option<DisconnectFee>,
    pub disconnect_factor: Option<DisconnectFactor>,
    /// Zero unless the call came in on a toll-free access number.
    pub toll_free_surcharge_per_minute: Decimal,
    pub shrink_percent: Option<Decimal>,
    pub package_seconds_available: u32,
    pub account_fees: Vec<AccountFee>,
    pub taxes: TaxProfile,
    #[serde(skip)]
    validated: Validated,
}

/// Marks values that went through [`RatingContext::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Validated;

impl RatingContext {
    /// Resolves a rate for a call: checks validity on the start date, picks the time-of-day
    /// period, turns step percentages into rates. Validates everything, so rating cannot fail.
    pub fn new(
        settings: &TariffSettings,
        rate: &Rate,
        call: &CallFacts,
    ) -> Result<RatingContext, RatingError> {
        settings.validate()?;
        rate.validate()?;
        call.taxes.validate()?;
        for fee in &call.account_fees {
            check_amount("account_fees", fee.amount)?;
        }
        if !rate.is_valid_on(call.start.date) {
            return Err(RatingError::NotValidOnDate {
                prefix: rate.prefix.clone(),
                date: call.start.date.to_string(),
            });
        }
        let period = rate
            .periods
            .iter()
            .find(|period| period.matches(&call.start));
        let sell = period.map_or(rate.sell_per_minute, |period| period.sell_per_minute);
        let buy = period
            .and_then(|period| period.buy_per_minute)
            .unwrap_or(rate.buy_per_minute);
        let mut steps = vec![ResolvedStep {
            from_seconds: 0,
            per_minute: sell,
        }];
        steps.extend(rate.steps.iter().map(|step| ResolvedStep {
            from_seconds: step.after_seconds,
            per_minute: match step.rate {
                StepRate::PerMinute(per_minute) => per_minute,
                StepRate::PercentOfBase(percent) => sell * percent / Decimal::ONE_HUNDRED,
            },
        }));
        Ok(RatingContext {
            currency: settings.currency,
            decimal_places: settings.decimal_places,
            duration_rounding: settings.duration_rounding,
            increment_anchor: settings.increment_anchor,
            max_call_seconds: settings.max_call_seconds,
            grace_seconds: settings.grace_seconds,
            prefix: rate.prefix.clone(),
            description: rate.description.clone(),
            initial_seconds: rate.initial_seconds,
            increment_seconds: rate.increment_seconds,
            steps,
            buy_per_minute: buy,
            connection_fee: rate.connection_fee,
            minimum_cost: rate.minimum_cost,
            disconnect_fee: rate.disconnect_fee.clone(),
            disconnect_factor: rate.disconnect_factor.clone(),
            toll_free_surcharge_per_minute: if call.toll_free_access {
                settings.toll_free_surcharge_per_minute
            } else {
                Decimal::ZERO
            },
            shrink_percent: rate.shrink_percent,
            package_seconds_available: call.package_seconds_available,
            account_fees: call.account_fees.clone(),
            taxes: call.taxes.clone(),
            validated: Validated,
        })
    }

    /// Billed seconds for `seconds` of (rounded) talk, by initial block, increment and anchor.
    pub fn billed_seconds(&self, seconds: u32) -> u32 {
        if seconds == 0 {
            return 0;
        }
        let initial = u64::from(self.initial_seconds);
        let increment = u64::from(self.increment_seconds.max(1));
        let seconds = u64::from(seconds);
        if seconds <= initial {
            return self.initial_seconds;
        }
        let billed = match self.increment_anchor {
            IncrementAnchor::FromCallStart => seconds.div_ceil(increment) * increment,
            IncrementAnchor::AfterInitialBlock => {
                initial + (seconds - initial).div_ceil(increment) * increment
            }
        };
        // Saturates only for calls of over 136 years.
        u32::try_from(billed).unwrap_or(u32::MAX)
    }

    fn money(&self, amount: Decimal) -> Money {
        Money::new(amount, self.currency)
    }
}

/// The time charge of one step of step billing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCharge {
    /// Billed-time interval `[from_seconds, to_seconds)` charged at `per_minute`.
    pub from_seconds: u32,
    pub to_seconds: u32,
    pub per_minute: Decimal,
    pub amount: Money,
}

/// The itemised price of one call. Every line is exact; only `total` is rounded and
/// `rounding = total − exact_total` shows by how much, so the lines always reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub currency: Currency,
    pub duration_ms: u64,
    /// Duration after the millisecond rounding rule.
    pub seconds: u32,
    /// The call was shorter than the grace period: no call charges.
    pub within_grace: bool,
    /// Seconds after initial block and increments (0 within grace or unanswered).
    pub billed_seconds: u32,
    /// Billed seconds taken from the free-minute package.
    pub package_seconds_used: u32,
    /// Billed seconds paid with money.
    pub charged_seconds: u32,
    pub connection_fee: Money,
    /// Sum of `steps`.
    pub time_charge: Money,
    pub steps: Vec<StepCharge>,
    pub toll_free_surcharge: Money,
    pub disconnect_fee: Money,
    pub disconnect_factor_fee: Money,
    /// Raises the call charges to the destination's minimum cost.
    pub minimum_cost_topup: Money,
    /// Connection + time + toll-free + disconnect fees + minimum top-up.
    pub call_charges: Money,
    pub account_fees: Vec<AccountFee>,
    /// Call charges + account fees, before tax.
    pub subtotal: Money,
    pub taxes: Vec<TaxLine>,
    pub tax_total: Money,
    pub exact_total: Money,
    pub rounding: Money,
    /// What the ledger debits: `exact_total` rounded once.
    pub total: Money,
    pub buy_cost: Money,
    /// `call_charges − buy_cost` (pre-tax, account fees excluded).
    pub margin: Money,
}

impl Charge {
    /// The total in the ledger's micro-units (always exact: totals have at most 6 decimals).
    pub fn total_micros(&self) -> Result<i64, crate::MoneyError> {
        self.total.to_micros()
    }
}

/// Rates a call of `duration_ms` (0 = unanswered: nothing is charged).
///
/// Order: milliseconds → seconds; grace (shorter calls pay no call charges); initial block and
/// increments → billed seconds; package seconds cover billed time from the start; the rest is
/// charged per step; toll-free surcharge on all billed seconds; flat disconnect fee by
/// threshold; disconnect factor on the time charge; minimum cost top-up (unless the package
/// covered the whole call); account fees; taxes in profile order; one rounding of the total.
pub fn rate_call(context: &RatingContext, duration_ms: u64) -> Charge {
    let seconds = context.duration_rounding.seconds(duration_ms);
    rate_seconds(context, seconds, duration_ms)
}

fn rate_seconds(context: &RatingContext, seconds: u32, duration_ms: u64) -> Charge {
    let zero = Decimal::ZERO;
    let answered = seconds > 0;
    let within_grace = answered && seconds < context.grace_seconds;
    let billable = answered && !within_grace;
    let billed_seconds = if billable {
        context.billed_seconds(seconds)
    } else {
        0
    };
    let package_seconds_used = context.package_seconds_available.min(billed_seconds);
    let steps = step_charges(context, package_seconds_used, billed_seconds);
    let time_charge: Decimal = steps.iter().map(|step| step.amount.amount).sum();

    let connection_fee = if billable {
        context.connection_fee
    } else {
        zero
    };
    let toll_free_surcharge = per_minute(context.toll_free_surcharge_per_minute, billed_seconds);
    let disconnect_fee = match &context.disconnect_fee {
        Some(fee) if billable => {
            let applies = match fee.applies {
                DisconnectFeeApplies::ShorterThan => seconds < fee.threshold_seconds,
                DisconnectFeeApplies::AtLeast => seconds >= fee.threshold_seconds,
            };
            if applies { fee.amount } else { zero }
        }
        _ => zero,
    };
    let disconnect_factor_fee = match &context.disconnect_factor {
        Some(factor) if billable && seconds >= factor.minimum_seconds => {
            time_charge * factor.percent / Decimal::ONE_HUNDRED
        }
        _ => zero,
    };
    let before_minimum =
        connection_fee + time_charge + toll_free_surcharge + disconnect_fee + disconnect_factor_fee;
    let minimum_cost_topup = match context.minimum_cost {
        Some(minimum) if billable && billed_seconds > package_seconds_used => {
            (minimum - before_minimum).max(zero)
        }
        _ => zero,
    };
    let call_charges = before_minimum + minimum_cost_topup;
    let account_fees = if answered {
        context.account_fees.clone()
    } else {
        Vec::new()
    };
    let subtotal = call_charges + account_fees.iter().map(|fee| fee.amount).sum::<Decimal>();
    let taxes = context.taxes.apply(subtotal);
    let tax_total: Decimal = taxes.iter().map(|line| line.amount).sum();
    let exact_total = subtotal + tax_total;
    let total = round_amount(exact_total, context.decimal_places);
    let buy_cost = per_minute(context.buy_per_minute, seconds);
    Charge {
        currency: context.currency,
        duration_ms,
        seconds,
        within_grace,
        billed_seconds,
        package_seconds_used,
        charged_seconds: billed_seconds - package_seconds_used,
        connection_fee: context.money(connection_fee),
        time_charge: context.money(time_charge),
        steps,
        toll_free_surcharge: context.money(toll_free_surcharge),
        disconnect_fee: context.money(disconnect_fee),
        disconnect_factor_fee: context.money(disconnect_factor_fee),
        minimum_cost_topup: context.money(minimum_cost_topup),
        call_charges: context.money(call_charges),
        account_fees,
        subtotal: context.money(subtotal),
        taxes,
        tax_total: context.money(tax_total),
        exact_total: context.money(exact_total),
        rounding: context.money(total - exact_total),
        total: context.money(total),
        buy_cost: context.money(buy_cost),
        margin: context.money(call_charges - buy_cost),
    }
}

/// `rate × seconds / 60`, dividing once after the exact product.
fn per_minute(rate: Decimal, seconds: u32) -> Decimal {
    if seconds == 0 || rate.is_zero() {
        return Decimal::ZERO;
    }
    rate * Decimal::from(seconds) / SECONDS_PER_MINUTE
}

/// Splits billed time `[charged_from, billed)` across the rate steps.
fn step_charges(context: &RatingContext, charged_from: u32, billed: u32) -> Vec<StepCharge> {
    let mut charges = Vec::new();
    for (position, step) in context.steps.iter().enumerate() {
        let step_end = context
            .steps
            .get(position + 1)
            .map_or(u32::MAX, |next| next.from_seconds);
        let from = step.from_seconds.max(charged_from);
        let to = step_end.min(billed);
        if from >= to {
            continue;
        }
        charges.push(StepCharge {
            from_seconds: from,
            to_seconds: to,
            per_minute: step.per_minute,
            amount: context.money(per_minute(step.per_minute, to - from)),
        });
    }
    charges
}

/// The result of the talk-time search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TalkTime {
    /// Disconnect the call after this many milliseconds of talk (real time).
    pub limit_ms: u64,
    /// What the IVR announces: `limit_ms × 100 ÷ shrink_percent` (equal without shrinking).
    pub announced_ms: u64,
    /// `limit_ms` in rated seconds.
    pub limit_seconds: u32,
    /// What a call of exactly `limit_ms` costs (≤ available).
    pub cost_at_limit: Money,
    /// What authorization must reserve at least (see [`first_unit_cost`]).
    pub first_unit_cost: Money,
    /// The limit is the tariff's `max_call_seconds`, not the money.
    pub capped: bool,
}

/// The cost of the shortest call that pays call charges: one second past grace (which bills
/// the initial block or first increment, the connection fee, fees, account fees and taxes).
pub fn first_unit_cost(context: &RatingContext) -> Money {
    let seconds = context.grace_seconds.max(1).min(context.max_call_seconds);
    rate_seconds(context, seconds, 0).total
}

/// The longest call `available` pays for, found by searching over [`rate_call`] itself.
///
/// Guarantee: every call of `t' ≤ limit_ms` costs at most `available`, and (unless `capped`)
/// a call of `limit_ms + 1` costs more. Cost is non-decreasing in duration except at the
/// threshold of a `ShorterThan` flat disconnect fee, where it may drop. The search therefore
/// splits `[1, max_call_seconds]` at that threshold into pieces on which cost is
/// non-decreasing; a piece whose last second fits is safe entirely and the search moves on,
/// otherwise it bisects that piece for its last affordable second and stops. So a longer call
/// that happens to be cheaper is never granted across a shorter call that is not affordable.
/// When cost is monotonic this is the usual `cost(t) ≤ available < cost(t + increment)`.
pub fn max_talk_time(context: &RatingContext, available: Money) -> Result<TalkTime, RatingError> {
    max_talk_time_with(context, available, &|_| Decimal::ZERO)
}

/// A callback's caller leg, paid for beside the called leg: it was answered `elapsed_ms`
/// before the called leg can be (its ringing included) and keeps running while the called
/// leg talks.
#[derive(Debug, Clone, Copy)]
pub struct CompanionLeg<'a> {
    pub context: &'a RatingContext,
    pub elapsed_ms: u64,
}

impl CompanionLeg<'_> {
    /// What the companion leg costs once the called leg has talked `seconds` (to the last
    /// millisecond of the last one, which the called leg's limit may reach).
    pub fn cost_with(&self, seconds: u32) -> Money {
        let ms = self
            .elapsed_ms
            .saturating_add(u64::from(seconds) * 1000 + 999);
        rate_call(self.context, ms).total
    }
}

/// [`max_talk_time`] for a call whose companion leg is paid from the same credit (a
/// callback: the leg to the caller is rated by its own destination): the longest talk `t`
/// with `cost(t) + companion.cost_with(t) <= available`. `cost_at_limit` is this leg's part;
/// the companion's is [`CompanionLeg::cost_with`] at `limit_seconds`.
pub fn max_talk_time_beside(
    context: &RatingContext,
    available: Money,
    companion: CompanionLeg<'_>,
) -> Result<TalkTime, RatingError> {
    if companion.context.currency != context.currency {
        return Err(RatingError::CurrencyMismatch {
            tariff: companion.context.currency,
            balance: context.currency,
        });
    }
    max_talk_time_with(context, available, &|seconds| {
        companion.cost_with(seconds).amount
    })
}

/// The search of [`max_talk_time`] over this leg's cost plus `extra(seconds)`, a
/// non-decreasing cost of something running beside it.
fn max_talk_time_with(
    context: &RatingContext,
    available: Money,
    extra: &dyn Fn(u32) -> Decimal,
) -> Result<TalkTime, RatingError> {
    if available.currency != context.currency {
        return Err(RatingError::CurrencyMismatch {
            tariff: context.currency,
            balance: available.currency,
        });
    }
    let first_unit = first_unit_cost(context);
    let insufficient = || RatingError::InsufficientCredit {
        first_unit_cost: first_unit,
        available,
    };
    let first_seconds = context.grace_seconds.max(1).min(context.max_call_seconds);
    if first_unit.amount + extra(first_seconds) > available.amount {
        return Err(insufficient());
    }
    let own_cost = |seconds: u32| rate_seconds(context, seconds, 0).total.amount;
    let cost = |seconds: u32| own_cost(seconds) + extra(seconds);
    let limit = available.amount;
    let cap = context.max_call_seconds;
    let mut pieces = vec![(1, cap)];
    if let Some(fee) = &context.disconnect_fee {
        let threshold = fee.threshold_seconds;
        if fee.applies == DisconnectFeeApplies::ShorterThan && threshold > 1 && threshold <= cap {
            pieces = vec![(1, threshold - 1), (threshold, cap)];
        }
    }
    let mut safe_until = 0;
    for (low, high) in pieces {
        if cost(high) <= limit {
            safe_until = high;
            continue;
        }
        safe_until = last_affordable(low, high, limit, &cost).unwrap_or(safe_until);
        break;
    }
    if safe_until < first_seconds {
        return Err(insufficient());
    }
    let limit_ms = if safe_until == cap {
        u64::from(cap) * 1000
    } else {
        context.duration_rounding.last_millisecond_of(safe_until)
    };
    Ok(TalkTime {
        limit_ms,
        announced_ms: announced(limit_ms, context.shrink_percent),
        limit_seconds: safe_until,
        cost_at_limit: context.money(own_cost(safe_until)),
        first_unit_cost: first_unit,
        capped: safe_until == cap,
    })
}

/// Last second in `[low, high]` whose cost fits, given cost is non-decreasing there and
/// `cost(high) > limit`.
fn last_affordable(
    low: u32,
    high: u32,
    limit: Decimal,
    cost: &impl Fn(u32) -> Decimal,
) -> Option<u32> {
    if cost(low) > limit {
        return None;
    }
    // Invariant: cost(good) ≤ limit < cost(bad).
    let (mut good, mut bad) = (low, high);
    while bad - good > 1 {
        let middle = good + (bad - good) / 2;
        if cost(middle) <= limit {
            good = middle;
        } else {
            bad = middle;
        }
    }
    Some(good)
}

/// Minute shrinking: the caller hears `real ÷ percent`, the switch cuts at `real`.
fn announced(limit_ms: u64, shrink_percent: Option<Decimal>) -> u64 {
    match shrink_percent {
        Some(percent) if percent > Decimal::ZERO => {
            (Decimal::from(limit_ms) * Decimal::ONE_HUNDRED / percent)
                .floor()
                .to_u64()
                .unwrap_or(u64::MAX)
        }
        _ => limit_ms,
    }
}
