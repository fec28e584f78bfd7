//! Reseller levels (issue 16): a call of a reseller's customer is priced once more on every
//! reseller above the customer. Each level pays its own tariff's price for the call, or, when it
//! has none, the price of the level below it (the customer's for the first). The call may last
//! only as long as every level's free credit pays for, and each level holds and is charged what
//! the same rating function ([`rate_call`]) gives for that time: the limit and the bill of every
//! level come from one place, as the customer's do.

use crate::money::Money;
use crate::rating::{
    CompanionLeg, RatingContext, RatingError, max_talk_time, max_talk_time_beside, rate_call,
};

/// One reseller level of a call: its own rating (`None`: the level below's) and its free credit.
#[derive(Debug, Clone, Copy)]
pub struct Level<'a> {
    pub context: Option<&'a RatingContext>,
    pub credit: Money,
}

/// The talk time every level pays for, and what each level holds for it (its cost at the
/// limit, never more than its credit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelLimit {
    /// The call's limit: the customer's, or less when a level cannot pay for that long.
    pub limit_ms: u64,
    /// What each level's price comes to at `limit_ms`, in the order given.
    pub holds: Vec<Money>,
    /// The first level whose credit shortened the limit, if any.
    pub limited_by: Option<usize>,
}

/// The rating each level pays with: its own, else the one below it.
fn in_effect<'a>(
    customer: &'a RatingContext,
    levels: impl Iterator<Item = Option<&'a RatingContext>>,
) -> Vec<&'a RatingContext> {
    let mut below = customer;
    levels
        .map(|own| {
            let context = own.unwrap_or(below);
            below = context;
            context
        })
        .collect()
}

/// The limit of a call the customer may make for `customer_limit_ms`, within every level's
/// credit. A level that cannot pay for the first billable unit refuses the call
/// ([`RatingError::InsufficientCredit`]).
pub fn level_limit(
    customer: &RatingContext,
    customer_limit_ms: u64,
    levels: &[Level<'_>],
) -> Result<LevelLimit, RatingError> {
    let contexts = in_effect(customer, levels.iter().map(|level| level.context));
    let mut limit_ms = customer_limit_ms;
    let mut limited_by = None;
    for (index, (context, level)) in contexts.iter().zip(levels).enumerate() {
        let talk_time = max_talk_time(context, level.credit)?;
        if talk_time.limit_ms < limit_ms {
            limit_ms = talk_time.limit_ms;
            limited_by = Some(index);
        }
    }
    // A disconnect fee on short calls can make a shorter call cost more than the level's own
    // limit did; the hold never exceeds the credit, and settle charges what the call costs.
    let holds = contexts
        .iter()
        .zip(levels)
        .map(|(context, level)| {
            let cost = rate_call(context, limit_ms).total;
            if cost.amount > level.credit.amount {
                level.credit
            } else {
                cost
            }
        })
        .collect();
    Ok(LevelLimit {
        limit_ms,
        holds,
        limited_by,
    })
}

/// A callback's leg to the caller as every level pays for it: that leg's customer rating,
/// each level's own (`None`: the level below's), and how long it will have run when the
/// called leg answers.
#[derive(Debug, Clone)]
pub struct CompanionLevels<'a> {
    pub customer: &'a RatingContext,
    pub levels: Vec<Option<&'a RatingContext>>,
    pub elapsed_ms: u64,
}

/// [`level_limit`] for a callback's called leg: each level's credit pays for this leg and
/// the caller leg beside it, both at that level's prices, the caller leg running `elapsed_ms`
/// longer. `companion_holds` are what the caller leg's level holds become (its cost at each
/// level up to the limit); a level's two holds never exceed its credit together.
pub fn level_limit_beside(
    customer: &RatingContext,
    customer_limit_ms: u64,
    levels: &[Level<'_>],
    companion: &CompanionLevels<'_>,
) -> Result<(LevelLimit, Vec<Money>), RatingError> {
    let contexts = in_effect(customer, levels.iter().map(|level| level.context));
    let companions = in_effect(companion.customer, companion.levels.iter().copied());
    let leg = |index: usize| {
        // The same account's chain priced twice: a level missing on one side pays this leg's
        // price for the caller leg too.
        let context = companions.get(index).copied().unwrap_or(contexts[index]);
        CompanionLeg {
            context,
            elapsed_ms: companion.elapsed_ms,
        }
    };
    let mut limit_ms = customer_limit_ms;
    let mut limited_by = None;
    for (index, (context, level)) in contexts.iter().zip(levels).enumerate() {
        let talk_time = max_talk_time_beside(context, level.credit, leg(index))?;
        if talk_time.limit_ms < limit_ms {
            limit_ms = talk_time.limit_ms;
            limited_by = Some(index);
        }
    }
    let seconds = u32::try_from(limit_ms / 1000).unwrap_or(u32::MAX);
    let mut holds = Vec::with_capacity(levels.len());
    let mut companion_holds = Vec::with_capacity(levels.len());
    for (index, (context, level)) in contexts.iter().zip(levels).enumerate() {
        let caller_leg = at_most(leg(index).cost_with(seconds), level.credit);
        let room = Money::new(
            level.credit.amount - caller_leg.amount,
            level.credit.currency,
        );
        holds.push(at_most(rate_call(context, limit_ms).total, room));
        companion_holds.push(caller_leg);
    }
    let limit = LevelLimit {
        limit_ms,
        holds,
        limited_by,
    };
    Ok((limit, companion_holds))
}

fn at_most(cost: Money, credit: Money) -> Money {
    if cost.amount > credit.amount {
        credit
    } else {
        cost
    }
}

/// What each level pays for `answered_ms` of talk, in the order given.
pub fn level_charges(
    customer: &RatingContext,
    levels: &[Option<&RatingContext>],
    answered_ms: u64,
) -> Vec<Money> {
    in_effect(customer, levels.iter().copied())
        .into_iter()
        .map(|context| rate_call(context, answered_ms).total)
        .collect()
}

/// Basis points in one whole (100 %).
pub const BASIS_POINTS: i64 = 10_000;

/// A reseller's commission on `base_micros` (a call's charge or a payment): `rate_bp` basis
/// points of it, rounded down to the micro-unit (the reseller never gets a fraction more than
/// its rate), plus `flat_micros`. Nothing on a base of zero: no call charged, no commission.
pub fn commission_micros(base_micros: i64, rate_bp: i64, flat_micros: i64) -> i64 {
    if base_micros <= 0 {
        return 0;
    }
    let share = i128::from(base_micros) * i128::from(rate_bp.max(0)) / i128::from(BASIS_POINTS);
    i64::try_from(share)
        .unwrap_or(i64::MAX)
        .saturating_add(flat_micros.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commission_rounds_down_to_the_micro_unit_and_needs_a_charge() {
        assert_eq!(commission_micros(900_001, 1_000, 0), 90_000);
        assert_eq!(commission_micros(1_200_000, 250, 10_000), 40_000);
        assert_eq!(
            commission_micros(0, 250, 10_000),
            0,
            "no charge, no commission"
        );
        assert_eq!(commission_micros(i64::MAX, BASIS_POINTS, 0), i64::MAX);
    }
}
