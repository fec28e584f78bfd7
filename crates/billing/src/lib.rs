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
//! # Definitions (where the brochures leave room, this is what the crate does)
//!
//! - **Unanswered** (0 rated seconds): nothing is charged, not even account fees.
//! - **Grace**: answered calls shorter than `grace_seconds` pay no call charges (connection,
//!   time, surcharge, disconnect fees, minimum); one-off account fees passed with the call
//!   (activation) and their taxes are still charged, since the card was used.
//! - **Increments**: see [`IncrementAnchor`]; a call shorter than the initial block bills the block.
//! - **Packages**: free seconds cover billed time from the start of the call; the connection
//!   fee and toll-free surcharge still apply; no minimum cost when the package covers the whole
//!   call.
//! - **Steps**: billed seconds in `[after_seconds, next step)` cost that step's rate.
//! - **Toll-free surcharge**: per billed minute, including package-covered time (it pays for
//!   the access number, not the destination).
//! - **Flat disconnect fee**: by the rated (not billed) seconds against its threshold, either
//!   below or at-or-above it ([`DisconnectFeeApplies`]).
//! - **Disconnect fee factor** (seed 000: "the total duration of the call will be reduced by the
//!   percentage"; seed 003: "a percentage amount based on the length of connection", not applied
//!   below a preset time): a fee of `percent` % of the call's time charge, for calls of at least
//!   `minimum_seconds`; equivalently each billed minute costs `1 + percent/100` minutes of money.
//! - **Minimum cost**: tops the call charges (before account fees and taxes) up to the minimum.
//! - **Taxes**: on the pre-tax subtotal, in profile order; see [`TaxProfile`] for compounding.
//! - **Periods**: the whole call is rated at the period in force at its local start.
//! - **Buy cost**: `buy rate × rated seconds ÷ 60` (carriers assumed to bill per second);
//!   `margin = call charges − buy cost`.
//! - **Shrinking**: the money buys `limit_ms` of real time; the IVR announces
//!   `limit_ms ÷ (shrink_percent / 100)`.
//! - **Available credit**: the ledger passes what is unreserved, bounded by every balance the
//!   call draws on (seed 002: a card is also bounded by its owner's account balance).
//! - **Double charging**: `rate_call` is a pure function of its inputs, so re-rating a call
//!   gives the same charge; charging once per call id is the ledger's job.
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
//! let limit = max_talk_time(&context, Money::new(dec!(1.00), Currency::USD)).unwrap();
//! assert_eq!(limit.limit_ms, 750_000); // 12.5 minutes at 0.08/min
//! let charge = rate_call(&context, limit.limit_ms);
//! assert_eq!(charge.total.amount, dec!(1.00));
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod account;
mod cdr;
mod columns;
mod deck;
mod destinations;
mod levels;
mod micros;
mod money;
mod rating;
mod simulate;
mod tariff;
mod tax;
mod time;

pub use account::{
    AccountPlan, Expiry, FreeMinutePackage, Interval, MaintenanceDue, MaintenanceFee, due_instants,
};
pub use cdr::Cdr;
pub use columns::{ColumnError, RATE_EXTRA_COLUMNS, RateExtras};
pub use deck::{
    CarrierOffer, DeckError, Destination, MAX_PREFIX_DIGITS, PrefixHasher, RateDeck,
    least_cost_routes,
};
pub use destinations::{DestinationPolicy, MAX_POLICY_PREFIXES};
pub use levels::{
    BASIS_POINTS, CompanionLevels, Level, LevelLimit, commission_micros, level_charges,
    level_limit, level_limit_beside,
};
pub use micros::{DecimalError, MAX_FRACTION_DIGITS, format_micros, parse_micros};
pub use money::{Currency, MAX_DECIMAL_PLACES, MICROS_PER_UNIT, Money, MoneyError};
pub use rating::{
    AccountFee, CallFacts, Charge, CompanionLeg, RatingContext, RatingError, ResolvedStep,
    StepCharge, TalkTime, first_unit_cost, max_talk_time, max_talk_time_beside, rate_call,
};
pub use simulate::{
    MatchedDestination, SimulationReport, SimulationRequest, TalkTimeReport, simulate,
};
pub use tariff::{
    DisconnectFactor, DisconnectFee, DisconnectFeeApplies, DurationRounding, IncrementAnchor,
    MAX_AMOUNT, MAX_CALL_SECONDS, MAX_PERCENT, Rate, RatePeriod, RateStep, StepRate, TariffError,
    TariffSettings,
};
pub use tax::{MAX_TAXES, Tax, TaxKind, TaxLine, TaxProfile};
pub use time::{Date, LocalStart, TimeError, TimeOfDay, Weekday};
