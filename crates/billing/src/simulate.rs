//! The rate simulator behind `talktime rate`: one call priced and explained as JSON.

use serde::{Deserialize, Serialize};

use crate::deck::RateDeck;
use crate::money::Money;
use crate::rating::{
    AccountFee, CallFacts, Charge, RatingContext, RatingError, TalkTime, first_unit_cost,
    max_talk_time, rate_call,
};
use crate::tax::TaxProfile;
use crate::time::LocalStart;

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulationRequest {
    pub number: String,
    pub duration_ms: u64,
    pub start: LocalStart,
    #[serde(default)]
    pub toll_free_access: bool,
    #[serde(default)]
    pub package_seconds_available: u32,
    #[serde(default)]
    pub account_fees: Vec<AccountFee>,
    #[serde(default)]
    pub taxes: TaxProfile,
    /// When given, the report includes the maximum talk time for this balance.
    #[serde(default)]
    pub balance: Option<Money>,
}

/// The matched destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedDestination {
    pub prefix: String,
    pub description: String,
}

/// The talk-time part of a report: either a limit or the reason for refusal (limit 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TalkTimeReport {
    pub balance: Money,
    pub limit_ms: u64,
    pub announced_ms: u64,
    pub first_unit_cost: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<TalkTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// The simulator's answer; `serde_json::to_string_pretty` gives the CLI output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimulationReport {
    pub destination: MatchedDestination,
    /// The resolved tariff row actually used (period, steps, flags applied).
    pub context: RatingContext,
    pub charge: Charge,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_talk_time: Option<TalkTimeReport>,
}

/// Prices `request` against `deck` exactly as a live call would be.
pub fn simulate(
    deck: &RateDeck,
    request: &SimulationRequest,
) -> Result<SimulationReport, RatingError> {
    let rate = deck
        .find(&request.number, request.start.date)
        .ok_or(RatingError::NoRoute)?;
    let call = CallFacts {
        start: request.start,
        toll_free_access: request.toll_free_access,
        package_seconds_available: request.package_seconds_available,
        account_fees: request.account_fees.clone(),
        taxes: request.taxes.clone(),
    };
    let context = RatingContext::new(deck.settings(), rate, &call)?;
    let charge = rate_call(&context, request.duration_ms);
    let max_talk_time = match request.balance {
        None => None,
        Some(balance) => Some(talk_time_report(&context, balance)?),
    };
    Ok(SimulationReport {
        destination: MatchedDestination {
            prefix: rate.prefix.clone(),
            description: rate.description.clone(),
        },
        context,
        charge,
        max_talk_time,
    })
}

fn talk_time_report(
    context: &RatingContext,
    balance: Money,
) -> Result<TalkTimeReport, RatingError> {
    match max_talk_time(context, balance) {
        Ok(talk_time) => Ok(TalkTimeReport {
            balance,
            limit_ms: talk_time.limit_ms,
            announced_ms: talk_time.announced_ms,
            first_unit_cost: talk_time.first_unit_cost,
            detail: Some(talk_time),
            refused: None,
        }),
        Err(error @ RatingError::InsufficientCredit { .. }) => Ok(TalkTimeReport {
            balance,
            limit_ms: 0,
            announced_ms: 0,
            first_unit_cost: first_unit_cost(context),
            detail: None,
            refused: Some(error.to_string()),
        }),
        Err(other) => Err(other),
    }
}
