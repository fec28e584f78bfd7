//! Sans-IO prepaid rating for Talktime: rate decks, per-call charges, account fees, taxes and
//! the maximum talk time, all from one rating function.
//!
//! No IO, no clock, no floats: the caller passes the call's local start time and durations in
//! milliseconds; money is [`rust_decimal::Decimal`], stored by the ledger as `i64` micro-units
//! ([`Money::from_micros`], [`Money::to_micros`]).
//!
//! # The rounding rule
//!
//! **A call's total is rounded once, to the tariff's `decimal_places` (default 4, at most 6),
//! midpoint away from zero (half-up; totals are never negative); nothing else is rounded.**
//! Every itemised line ([`Charge`]) is exact: sums and products of decimals are exact, and
//! per-minute rates are applied as `rate × seconds ÷ 60` with the single division carried to
//! 28 significant digits. [`Charge::rounding`] is `total − exact_total`, so the lines always
//! reconcile with the total. Half-up was chosen over bankers' rounding because a customer
//! checking a bill by hand expects it. Durations become whole seconds first, by the
//! tariff's [`DurationRounding`] (up by default).
//!
//! # One function
//!
//! [`rate_call`] prices a call. [`max_talk_time`] and [`first_unit_cost`] call it (bisection
//! over seconds), so the limit given to the switch and the bill cannot disagree: a call
//! cut at `limit_ms` costs at most the balance (the A2Billing #22 failure, a call allowed 15 s
//! but billed a 60 s block, cannot happen). Authorization should reserve at least
//! [`first_unit_cost`]; overspend by parallel calls is prevented by the ledger reserving the
//! talk-time cost per call and computing each new call's limit from the unreserved balance.
//!
//! # Typical use
//!
//! ```
//! use std::sync::Arc;
//! use rust_decimal_macros::dec;
//! use talktime_billing::*;
//!
//! let deck = Arc::new(RateDeck::build(
//!     TariffSettings::default(),
//!     vec![Rate::new("91", dec!(0.08), 60, 6)],
//! ).unwrap());
//! let start = LocalStart::new(Date::new(2025, 5, 1).unwrap(), TimeOfDay::new(9, 0, 0).unwrap());
//! let rate = deck.find("919812345678", start.date).unwrap();
//! let context = RatingContext::new(deck.settings(), rate, &CallFacts::new(start)).unwrap();
//! let limit = max_talk_time(&context, &Money::new(dec!(1.00), Currency::USD)).unwrap();
//! assert_eq!(limit.limit_ms, 750_000); // 12.5 minutes at 0.08/min
//! let charge = rate_call(&context, limit.limit_ms);
//! assert_eq!(charge.total.amount, dec!(1.00));
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod account;
mod deck;
mod money;
mod rating;
mod simulate;
mod tariff;
mod tax;
mod time;

pub use account::{
    AccountPlan, Expiry, FreeMinutePackage, Interval, MaintenanceDue, MaintenanceFee,
};
pub use deck::{
    CarrierOffer, DeckError, Destination, MAX_PREFIX_DIGITS, PrefixHasher, RateDeck,
    least_cost_routes,
};
pub use money::{Currency, MAX_DECIMAL_PLACES, MICROS_PER_UNIT, Money, MoneyError};
pub use rating::{
    AccountFee, CallFacts, Charge, RatingContext, RatingError, ResolvedStep, StepCharge, TalkTime,
    first_unit_cost, max_talk_time, rate_call,
};
pub use simulate::{
    MatchedDestination, SimulationReport, SimulationRequest, TalkTimeReport, simulate,
};
pub use tariff::{
    DisconnectFactor, DisconnectFee, DisconnectFeeApplies, DurationRounding, IncrementAnchor,
    MAX_AMOUNT, MAX_CALL_SECONDS, MAX_PERCENT, Rate, RatePeriod, RateStep, StepRate, TariffError,
    TariffSettings,
};
pub use tax::{Tax, TaxKind, TaxLine, TaxProfile};
pub use time::{Date, LocalStart, TimeError, TimeOfDay, Weekday};
