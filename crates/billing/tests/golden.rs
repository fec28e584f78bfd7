//! Hand-computed golden tests. Each names its source: a seed brochure, a bug report of another
//! billing system, or "hand" for features computed by hand from their documented definition.

#![allow(clippy::unwrap_used)]

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use talktime_billing::*;

fn thursday_9am() -> LocalStart {
    LocalStart::new(
        Date::new(2025, 5, 1).unwrap(),
        TimeOfDay::new(9, 0, 0).unwrap(),
    )
}

fn settings(anchor: IncrementAnchor) -> TariffSettings {
    TariffSettings {
        increment_anchor: anchor,
        ..TariffSettings::default()
    }
}

fn context(settings: &TariffSettings, rate: &Rate) -> RatingContext {
    RatingContext::new(settings, rate, &CallFacts::new(thursday_9am())).unwrap()
}

fn usd(amount: Decimal) -> Money {
    Money::new(amount, Currency::USD)
}

fn total(context: &RatingContext, duration_ms: u64) -> Decimal {
    rate_call(context, duration_ms).total.amount
}

/// Asserts the limit holds for the whole prefix and that one millisecond more does not fit.
fn assert_limit_is_tight(context: &RatingContext, available: Decimal, talk_time: &TalkTime) {
    assert!(total(context, talk_time.limit_ms) <= available);
    assert_eq!(
        total(context, talk_time.limit_ms),
        talk_time.cost_at_limit.amount
    );
    if !talk_time.capped {
        assert!(total(context, talk_time.limit_ms + 1) > available);
    }
}

/// Seed 000: 25 minutes to India at $0.08/min, 3-minute increments, $0.39 activation and
/// $0.39 connection: (27 × 0.08) + 0.39 + 0.39 = $2.94.
#[test]
fn seed_000_india_with_activation_and_connection() {
    let mut rate = Rate::new("91", dec!(0.08), 180, 180);
    rate.connection_fee = dec!(0.39);
    let plan = AccountPlan {
        currency: Currency::USD,
        activation_fee: Some(dec!(0.39)),
        maintenance: None,
        expiry: Expiry::default(),
    };
    let activation = plan.activation_fee_due(None).unwrap();
    let mut call = CallFacts::new(thursday_9am());
    call.account_fees.push(AccountFee {
        name: "activation".to_owned(),
        amount: activation.amount,
    });
    for anchor in [
        IncrementAnchor::FromCallStart,
        IncrementAnchor::AfterInitialBlock,
    ] {
        let context = RatingContext::new(&settings(anchor), &rate, &call).unwrap();
        let charge = rate_call(&context, 25 * 60 * 1000);
        assert_eq!(charge.billed_seconds, 27 * 60);
        assert_eq!(charge.time_charge.amount, dec!(2.16));
        assert_eq!(charge.total.amount, dec!(2.94));
        assert_eq!(charge.rounding.amount, Decimal::ZERO);
    }
    // Seed 000 "extended billing increments": 9 min 3 s at 3-minute increments bills 12 min.
    let context = context(&TariffSettings::default(), &rate);
    assert_eq!(
        rate_call(&context, (9 * 60 + 3) * 1000).billed_seconds,
        12 * 60
    );
}

/// Seed 003 "30 by 6": 45 s at 0.05/min bills 48 s = 0.04.
#[test]
fn seed_003_thirty_by_six() {
    let rate = Rate::new("1", dec!(0.05), 30, 6);
    for anchor in [
        IncrementAnchor::FromCallStart,
        IncrementAnchor::AfterInitialBlock,
    ] {
        let charge = rate_call(&context(&settings(anchor), &rate), 45_000);
        assert_eq!(charge.billed_seconds, 48);
        assert_eq!(charge.total.amount, dec!(0.04));
    }
    // Shorter than the initial block: the block is billed.
    let charge = rate_call(&context(&TariffSettings::default(), &rate), 1_000);
    assert_eq!(charge.billed_seconds, 30);
    assert_eq!(charge.total.amount, dec!(0.025));
}

/// Brief (A2Billing/MagnusBilling vs ASTPP/Yeti/Kazoo): 45 s at 30/60, 0.06/min.
#[test]
fn increment_anchor_thirty_by_sixty() {
    let rate = Rate::new("1", dec!(0.06), 30, 60);
    let from_start = rate_call(
        &context(&settings(IncrementAnchor::FromCallStart), &rate),
        45_000,
    );
    assert_eq!(from_start.billed_seconds, 60);
    assert_eq!(from_start.total.amount, dec!(0.06));
    let after_block = rate_call(
        &context(&settings(IncrementAnchor::AfterInitialBlock), &rate),
        45_000,
    );
    assert_eq!(after_block.billed_seconds, 90);
    assert_eq!(after_block.total.amount, dec!(0.09));
}

/// Brief: credit 1.00, connection 0.10, 0.05/min in 6 s increments: 0.90 buys 18 minutes.
#[test]
fn talk_time_with_connection_fee_is_1080_seconds() {
    let mut rate = Rate::new("1", dec!(0.05), 6, 6);
    rate.connection_fee = dec!(0.10);
    let context = context(&TariffSettings::default(), &rate);
    let talk_time = max_talk_time(&context, usd(dec!(1.00))).unwrap();
    assert_eq!(talk_time.limit_ms, 1_080_000);
    assert_eq!(talk_time.announced_ms, 1_080_000);
    assert_eq!(talk_time.cost_at_limit.amount, dec!(1.00));
    assert_eq!(talk_time.first_unit_cost.amount, dec!(0.105));
    assert!(!talk_time.capped);
    assert_limit_is_tight(&context, dec!(1.00), &talk_time);
    // One more increment costs 1.005.
    assert_eq!(total(&context, 1_086_000), dec!(1.005));
}

/// Brief: credit 0.01 at 0.04/min with a 60 s initial block is refused.
#[test]
fn first_block_that_does_not_fit_is_refused() {
    let rate = Rate::new("1", dec!(0.04), 60, 60);
    let context = context(&TariffSettings::default(), &rate);
    assert_eq!(first_unit_cost(&context).amount, dec!(0.04));
    let refusal = max_talk_time(&context, usd(dec!(0.01))).unwrap_err();
    assert_eq!(
        refusal,
        RatingError::InsufficientCredit {
            first_unit_cost: usd(dec!(0.0400)),
            available: usd(dec!(0.01)),
        }
    );
    // Exactly the first block fits.
    let talk_time = max_talk_time(&context, usd(dec!(0.04))).unwrap();
    assert_eq!(talk_time.limit_ms, 60_000);
}

/// Brief: a connection fee larger than the balance gives a talk time of 0 (refusal).
#[test]
fn connection_fee_above_balance_gives_zero() {
    let mut rate = Rate::new("44", dec!(0.01), 1, 1);
    rate.connection_fee = dec!(0.50);
    let deck = RateDeck::build(TariffSettings::default(), vec![rate.clone()]).unwrap();
    let context = context(deck.settings(), &rate);
    assert!(matches!(
        max_talk_time(&context, usd(dec!(0.25))),
        Err(RatingError::InsufficientCredit { .. })
    ));
    let report = simulate(
        &deck,
        &SimulationRequest {
            number: "442071234567".to_owned(),
            duration_ms: 0,
            start: thursday_9am(),
            toll_free_access: false,
            package_seconds_available: 0,
            account_fees: Vec::new(),
            taxes: TaxProfile::none(),
            balance: Some(usd(dec!(0.25))),
        },
    )
    .unwrap();
    let talk_time = report.max_talk_time.unwrap();
    assert_eq!(talk_time.limit_ms, 0);
    assert!(talk_time.refused.unwrap().contains("insufficient credit"));
}

/// CGRateS #260: a 60 s call at 0.50/min must cost exactly 0.50 (it cost 0.4980), whatever
/// the increments, and even when step billing splits the time at an awkward second.
#[test]
fn cgrates_260_sixty_seconds_at_half_a_unit_is_exactly_half() {
    for (initial, increment) in [(1, 1), (60, 60), (30, 6), (0, 1), (6, 6)] {
        let rate = Rate::new("1", dec!(0.50), initial, increment);
        let charge = rate_call(&context(&TariffSettings::default(), &rate), 60_000);
        assert_eq!(
            charge.exact_total.amount,
            dec!(0.50),
            "{initial}/{increment}"
        );
        assert_eq!(charge.total.amount, dec!(0.50));
        assert_eq!(charge.total_micros(), Ok(500_000));
    }
    let mut rate = Rate::new("1", dec!(0.50), 1, 1);
    rate.steps.push(RateStep {
        after_seconds: 7,
        rate: StepRate::PercentOfBase(dec!(100)),
    });
    let charge = rate_call(&context(&TariffSettings::default(), &rate), 60_000);
    assert_eq!(charge.steps.len(), 2);
    assert_eq!(charge.total.amount, dec!(0.50));
}

/// A2Billing #22: a call allowed 15 s was billed a 60 s block (balance −0.03). Here the limit
/// comes from the bill, so the block either fits or the call is refused, and a call cut at the
/// limit never costs more than the balance.
#[test]
fn a2billing_22_limit_and_bill_agree() {
    let rate = Rate::new("1", dec!(0.12), 60, 60);
    let context = context(&TariffSettings::default(), &rate);
    // 0.03 would be "15 s" by balance ÷ rate; the 60 s block costs 0.12: refused.
    assert!(max_talk_time(&context, usd(dec!(0.03))).is_err());
    // 0.30 is "150 s" by balance ÷ rate, which would bill 180 s = 0.36. The limit is 120 s.
    let talk_time = max_talk_time(&context, usd(dec!(0.30))).unwrap();
    assert_eq!(talk_time.limit_ms, 120_000);
    let charge = rate_call(&context, talk_time.limit_ms);
    assert_eq!(charge.total.amount, dec!(0.24));
    assert!(usd(dec!(0.30)).checked_sub(&charge.total).unwrap().amount >= Decimal::ZERO);
    assert_limit_is_tight(&context, dec!(0.30), &talk_time);
}

/// Hand (seed 003 step billing): 0.10/min, +20 % after 60 s, 0.15/min after 300 s.
/// 400 s: 60 × 0.10/60 + 240 × 0.12/60 + 100 × 0.15/60 = 0.10 + 0.48 + 0.25 = 0.83.
#[test]
fn step_billing_two_steps() {
    let mut rate = Rate::new("1", dec!(0.10), 1, 1);
    rate.steps = vec![
        RateStep {
            after_seconds: 60,
            rate: StepRate::PercentOfBase(dec!(120)),
        },
        RateStep {
            after_seconds: 300,
            rate: StepRate::PerMinute(dec!(0.15)),
        },
    ];
    let context = context(&TariffSettings::default(), &rate);
    let charge = rate_call(&context, 400_000);
    let amounts: Vec<Decimal> = charge.steps.iter().map(|step| step.amount.amount).collect();
    assert_eq!(amounts, vec![dec!(0.10), dec!(0.48), dec!(0.25)]);
    assert_eq!(charge.steps[1].per_minute, dec!(0.12));
    assert_eq!(charge.total.amount, dec!(0.83));
    // A call that does not reach a step pays only the base rate.
    assert_eq!(total(&context, 60_000), dec!(0.10));
    let talk_time = max_talk_time(&context, usd(dec!(0.83))).unwrap();
    assert_eq!(talk_time.limit_ms, 400_000);
    assert_limit_is_tight(&context, dec!(0.83), &talk_time);
}

/// Hand (seed 003 minute shrinking): at 80 % the call is cut when 80 % of the announced time is
/// used. 0.80 at 0.10/min buys 480 s real; the IVR announces 600 s.
#[test]
fn minute_shrinking_announces_more_than_real() {
    let mut rate = Rate::new("1", dec!(0.10), 1, 1);
    rate.shrink_percent = Some(dec!(80));
    let context = context(&TariffSettings::default(), &rate);
    let talk_time = max_talk_time(&context, usd(dec!(0.80))).unwrap();
    assert_eq!(talk_time.limit_ms, 480_000);
    assert_eq!(talk_time.announced_ms, 600_000);
}

/// Hand: subtotal 10 min × 0.10 + 0.20 connection = 1.20; 10 % simple = 0.12, 5 % compound on
/// 1.32 = 0.066, fixed 0.05: taxes 0.236, total 1.436 → 1.4360 (4 places) or 1.44 (2 places).
#[test]
fn tax_profile_in_order_with_compounding() {
    let mut rate = Rate::new("1", dec!(0.10), 60, 60);
    rate.connection_fee = dec!(0.20);
    let mut call = CallFacts::new(thursday_9am());
    call.taxes = TaxProfile {
        name: "test".to_owned(),
        taxes: vec![
            Tax {
                name: "sales".to_owned(),
                kind: TaxKind::Percent(dec!(10)),
                compound: false,
            },
            Tax {
                name: "excise".to_owned(),
                kind: TaxKind::Percent(dec!(5)),
                compound: true,
            },
            Tax {
                name: "911".to_owned(),
                kind: TaxKind::Fixed(dec!(0.05)),
                compound: false,
            },
        ],
    };
    let context = RatingContext::new(&TariffSettings::default(), &rate, &call).unwrap();
    let charge = rate_call(&context, 600_000);
    assert_eq!(charge.subtotal.amount, dec!(1.20));
    assert_eq!(charge.tax_total.amount, dec!(0.236));
    assert_eq!(charge.total.amount, dec!(1.436));
    let cents = TariffSettings {
        decimal_places: 2,
        ..TariffSettings::default()
    };
    let context = RatingContext::new(&cents, &rate, &call).unwrap();
    let charge = rate_call(&context, 600_000);
    assert_eq!(charge.total.amount, dec!(1.44));
    assert_eq!(charge.rounding.amount, dec!(0.004));
}

/// Hand: talk time includes taxes: 0.10/min + 25 % VAT = 0.125/min, so 1.00 buys 480 s.
#[test]
fn talk_time_includes_taxes() {
    let rate = Rate::new("1", dec!(0.10), 1, 1);
    let mut call = CallFacts::new(thursday_9am());
    call.taxes.taxes.push(Tax {
        name: "VAT".to_owned(),
        kind: TaxKind::Percent(dec!(25)),
        compound: false,
    });
    let context = RatingContext::new(&TariffSettings::default(), &rate, &call).unwrap();
    let talk_time = max_talk_time(&context, usd(dec!(1.00))).unwrap();
    assert_eq!(talk_time.limit_ms, 480_000);
    assert_limit_is_tight(&context, dec!(1.00), &talk_time);
}

/// Hand: the single rounding point is half-up: 30 s at 0.25/min = 0.125 → 0.13 at 2 places
/// (bankers' rounding would give 0.12).
#[test]
fn rounding_midpoint_goes_up() {
    let cents = TariffSettings {
        decimal_places: 2,
        ..TariffSettings::default()
    };
    let rate = Rate::new("1", dec!(0.25), 1, 1);
    let charge = rate_call(&context(&cents, &rate), 30_000);
    assert_eq!(charge.exact_total.amount, dec!(0.125));
    assert_eq!(charge.total.amount, dec!(0.13));
}

/// Hand (seed 003 package billing): 0.10/min at 60/60 with 0.05 connection; 185 s bills 240 s.
#[test]
fn free_minute_package_is_used_before_money() {
    let mut rate = Rate::new("91", dec!(0.10), 60, 60);
    rate.connection_fee = dec!(0.05);
    rate.minimum_cost = Some(dec!(0.30));
    let mut call = CallFacts::new(thursday_9am());
    call.package_seconds_available = 120;
    let context = RatingContext::new(&TariffSettings::default(), &rate, &call).unwrap();
    let charge = rate_call(&context, 185_000);
    assert_eq!(charge.billed_seconds, 240);
    assert_eq!(charge.package_seconds_used, 120);
    assert_eq!(charge.charged_seconds, 120);
    // 0.05 + 120 s × 0.10/60 = 0.25, raised to the 0.30 minimum.
    assert_eq!(charge.minimum_cost_topup.amount, dec!(0.05));
    assert_eq!(charge.total.amount, dec!(0.30));
    // A package covering the whole call leaves only the connection fee (no minimum).
    call.package_seconds_available = 300;
    let context = RatingContext::new(&TariffSettings::default(), &rate, &call).unwrap();
    let charge = rate_call(&context, 185_000);
    assert_eq!(charge.package_seconds_used, 240);
    assert_eq!(charge.charged_seconds, 0);
    assert_eq!(charge.total.amount, dec!(0.05));
}

/// Hand: grace 5 s. 4000 ms is free; 4001 ms rounds up to 5 s and pays 30 s + connection.
#[test]
fn grace_seconds_make_short_calls_free() {
    let mut rate = Rate::new("1", dec!(0.06), 30, 6);
    rate.connection_fee = dec!(0.10);
    let graceful = TariffSettings {
        grace_seconds: 5,
        ..TariffSettings::default()
    };
    let context = context(&graceful, &rate);
    let free = rate_call(&context, 4_000);
    assert!(free.within_grace);
    assert_eq!(free.billed_seconds, 0);
    assert_eq!(free.total.amount, Decimal::ZERO);
    let paid = rate_call(&context, 4_001);
    assert!(!paid.within_grace);
    assert_eq!(paid.billed_seconds, 30);
    assert_eq!(paid.total.amount, dec!(0.13));
    // The first billable unit is the first second after grace.
    assert_eq!(first_unit_cost(&context).amount, dec!(0.13));
}

/// Hand: minimum cost 0.10 at 0.02/min: 60 s (0.02) is raised to 0.10; 600 s (0.20) is not.
#[test]
fn minimum_cost_tops_up_cheap_calls() {
    let mut rate = Rate::new("1", dec!(0.02), 1, 1);
    rate.minimum_cost = Some(dec!(0.10));
    let context = context(&TariffSettings::default(), &rate);
    let short = rate_call(&context, 60_000);
    assert_eq!(short.minimum_cost_topup.amount, dec!(0.08));
    assert_eq!(short.total.amount, dec!(0.10));
    let long = rate_call(&context, 600_000);
    assert_eq!(long.minimum_cost_topup.amount, Decimal::ZERO);
    assert_eq!(long.total.amount, dec!(0.20));
    // Talk time: 0.10 buys the minimum (300 s of 0.02/min) and not one second more.
    let talk_time = max_talk_time(&context, usd(dec!(0.10))).unwrap();
    assert_eq!(talk_time.limit_ms, 300_000);
}

/// Hand (seed 000 toll-free fee): 0.03/min surcharge on a 90 s call at 60/60, 0.05/min:
/// 120 s billed: 0.10 + 0.06 = 0.16 via toll-free access, 0.10 otherwise.
#[test]
fn toll_free_access_surcharge() {
    let tariff = TariffSettings {
        toll_free_surcharge_per_minute: dec!(0.03),
        ..TariffSettings::default()
    };
    let rate = Rate::new("1", dec!(0.05), 60, 60);
    let mut call = CallFacts::new(thursday_9am());
    call.toll_free_access = true;
    let context = RatingContext::new(&tariff, &rate, &call).unwrap();
    let charge = rate_call(&context, 90_000);
    assert_eq!(charge.toll_free_surcharge.amount, dec!(0.06));
    assert_eq!(charge.total.amount, dec!(0.16));
    call.toll_free_access = false;
    let context = RatingContext::new(&tariff, &rate, &call).unwrap();
    assert_eq!(total(&context, 90_000), dec!(0.10));
}

/// Hand: time-of-day and day-of-week periods chosen by the local start.
#[test]
fn time_of_day_and_weekday_periods() {
    let mut rate = Rate::new("1", dec!(0.10), 60, 60);
    let weekdays = vec![
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ];
    rate.periods = vec![
        RatePeriod {
            days: weekdays,
            from: "08:00".parse().unwrap(),
            until: "18:00".parse().unwrap(),
            sell_per_minute: dec!(0.20),
            buy_per_minute: None,
        },
        RatePeriod {
            days: vec![Weekday::Saturday, Weekday::Sunday],
            from: TimeOfDay::MIDNIGHT,
            until: TimeOfDay::MIDNIGHT,
            sell_per_minute: dec!(0.05),
            buy_per_minute: None,
        },
        RatePeriod {
            days: Vec::new(),
            from: "22:00".parse().unwrap(),
            until: "06:00".parse().unwrap(),
            sell_per_minute: dec!(0.07),
            buy_per_minute: None,
        },
    ];
    let at = |date: (i32, u8, u8), time: &str| {
        let start = LocalStart::new(
            Date::new(date.0, date.1, date.2).unwrap(),
            time.parse().unwrap(),
        );
        let context =
            RatingContext::new(&TariffSettings::default(), &rate, &CallFacts::new(start)).unwrap();
        total(&context, 60_000)
    };
    // 2025-05-01 is a Thursday, 2025-05-03 a Saturday.
    assert_eq!(at((2025, 5, 1), "09:00"), dec!(0.20));
    assert_eq!(at((2025, 5, 1), "07:59:59"), dec!(0.10));
    assert_eq!(at((2025, 5, 1), "18:00"), dec!(0.10));
    assert_eq!(at((2025, 5, 1), "23:30"), dec!(0.07));
    assert_eq!(at((2025, 5, 2), "05:59"), dec!(0.07));
    assert_eq!(at((2025, 5, 3), "10:00"), dec!(0.05));
}

/// Hand: a rate outside its validity dates is refused by the context.
#[test]
fn rate_outside_validity_is_refused() {
    let mut rate = Rate::new("1", dec!(0.10), 60, 60);
    rate.valid_until = Some(Date::new(2025, 4, 30).unwrap());
    let result = RatingContext::new(
        &TariffSettings::default(),
        &rate,
        &CallFacts::new(thursday_9am()),
    );
    assert!(matches!(result, Err(RatingError::NotValidOnDate { .. })));
}

/// Hand: a flat 0.25 disconnect fee on calls shorter than 30 s, 0.06/min per second.
#[test]
fn flat_disconnect_fee_below_threshold() {
    let mut rate = Rate::new("1", dec!(0.06), 1, 1);
    rate.disconnect_fee = Some(DisconnectFee {
        amount: dec!(0.25),
        threshold_seconds: 30,
        applies: DisconnectFeeApplies::ShorterThan,
    });
    let context = context(&TariffSettings::default(), &rate);
    assert_eq!(total(&context, 20_000), dec!(0.27));
    assert_eq!(total(&context, 30_000), dec!(0.03));
    // Cost falls at the threshold. 0.20 cannot pay a 1 s call (0.251): refused, although a
    // 60 s call (0.06) would fit — the caller could hang up early.
    assert!(max_talk_time(&context, usd(dec!(0.20))).is_err());
    // 0.30 pays every call up to 29 s (≤ 0.279) and then 300 s at 0.06/min.
    let talk_time = max_talk_time(&context, usd(dec!(0.30))).unwrap();
    assert_eq!(talk_time.limit_ms, 300_000);
    assert_limit_is_tight(&context, dec!(0.30), &talk_time);
    // 0.27 pays up to 20 s (0.27) but not 21 s (0.271): the limit stops there even though
    // 30 s to 270 s would be cheaper, because a call hung up at 21 s would overspend.
    let talk_time = max_talk_time(&context, usd(dec!(0.27))).unwrap();
    assert_eq!(talk_time.limit_ms, 20_000);
    for seconds in 1..=20 {
        assert!(total(&context, seconds * 1000) <= dec!(0.27));
    }
}

/// Hand: a flat 0.10 fee on calls of 60 s or more.
#[test]
fn flat_disconnect_fee_at_or_above_threshold() {
    let mut rate = Rate::new("1", dec!(0.06), 1, 1);
    rate.disconnect_fee = Some(DisconnectFee {
        amount: dec!(0.10),
        threshold_seconds: 60,
        applies: DisconnectFeeApplies::AtLeast,
    });
    let context = context(&TariffSettings::default(), &rate);
    assert_eq!(total(&context, 59_000), dec!(0.059));
    assert_eq!(total(&context, 60_000), dec!(0.16));
    // 0.10 pays 59 s (0.059) but 60 s costs 0.16.
    assert_eq!(
        max_talk_time(&context, usd(dec!(0.10))).unwrap().limit_ms,
        59_000
    );
}

/// Hand (seeds 000 and 003 disconnect fee factor): 10 % of the time charge for calls of at
/// least 60 s: 5 min at 0.10/min → 0.50 + 0.05; a 30 s call (billed 60 s, 0.10) pays no factor.
#[test]
fn disconnect_factor_percentage_of_time_charge() {
    let mut rate = Rate::new("1", dec!(0.10), 60, 60);
    rate.disconnect_factor = Some(DisconnectFactor {
        percent: dec!(10),
        minimum_seconds: 60,
    });
    let context = context(&TariffSettings::default(), &rate);
    let long = rate_call(&context, 300_000);
    assert_eq!(long.disconnect_factor_fee.amount, dec!(0.05));
    assert_eq!(long.total.amount, dec!(0.55));
    let short = rate_call(&context, 30_000);
    assert_eq!(short.disconnect_factor_fee.amount, Decimal::ZERO);
    assert_eq!(short.total.amount, dec!(0.10));
}

/// Hand: millisecond rounding modes and the matching limit in milliseconds.
#[test]
fn duration_rounding_modes() {
    let rate = Rate::new("1", dec!(0.60), 1, 1);
    let with = |rounding| {
        context(
            &TariffSettings {
                duration_rounding: rounding,
                ..TariffSettings::default()
            },
            &rate,
        )
    };
    assert_eq!(rate_call(&with(DurationRounding::Up), 1_001).seconds, 2);
    assert_eq!(rate_call(&with(DurationRounding::Down), 1_999).seconds, 1);
    assert_eq!(
        rate_call(&with(DurationRounding::Nearest), 1_499).seconds,
        1
    );
    assert_eq!(
        rate_call(&with(DurationRounding::Nearest), 1_500).seconds,
        2
    );
    // 0.10 buys 10 s at 0.60/min; the last millisecond depends on the rounding.
    for (rounding, limit_ms) in [
        (DurationRounding::Up, 10_000),
        (DurationRounding::Down, 10_999),
        (DurationRounding::Nearest, 10_499),
    ] {
        let context = with(rounding);
        let talk_time = max_talk_time(&context, usd(dec!(0.10))).unwrap();
        assert_eq!(talk_time.limit_ms, limit_ms, "{rounding:?}");
        assert_limit_is_tight(&context, dec!(0.10), &talk_time);
    }
}

/// Hand: buy cost and margin. 0.10 sell, 0.04 buy, 90 s at 60/60: 0.20 − 0.06 = 0.14.
#[test]
fn buy_cost_and_margin() {
    let mut rate = Rate::new("1", dec!(0.10), 60, 60);
    rate.buy_per_minute = dec!(0.04);
    let charge = rate_call(&context(&TariffSettings::default(), &rate), 90_000);
    assert_eq!(charge.buy_cost.amount, dec!(0.06));
    assert_eq!(charge.margin.amount, dec!(0.14));
}

/// Hand: an unanswered call costs nothing, even with fees.
#[test]
fn unanswered_call_is_free() {
    let mut rate = Rate::new("1", dec!(0.10), 60, 60);
    rate.connection_fee = dec!(0.39);
    rate.minimum_cost = Some(dec!(1));
    let charge = rate_call(&context(&TariffSettings::default(), &rate), 0);
    assert_eq!(charge.total.amount, Decimal::ZERO);
    assert_eq!(charge.billed_seconds, 0);
}

/// Hand: free calls are capped by `max_call_seconds`.
#[test]
fn free_destination_is_capped() {
    let rate = Rate::new("800", Decimal::ZERO, 1, 1);
    let context = context(&TariffSettings::default(), &rate);
    let talk_time = max_talk_time(&context, usd(Decimal::ZERO)).unwrap();
    assert!(talk_time.capped);
    assert_eq!(talk_time.limit_ms, 4 * 3600 * 1000);
}

#[test]
fn balance_in_another_currency_is_refused() {
    let rate = Rate::new("1", dec!(0.10), 60, 60);
    let context = context(&TariffSettings::default(), &rate);
    assert!(matches!(
        max_talk_time(&context, Money::new(dec!(5), Currency::EUR)),
        Err(RatingError::CurrencyMismatch { .. })
    ));
}

/// The simulator's JSON carries the matched destination, each fee, taxes, total and talk time.
#[test]
fn simulator_report_as_json() {
    let mut rate = Rate::new("91", dec!(0.08), 180, 180);
    rate.description = "India".to_owned();
    rate.connection_fee = dec!(0.39);
    let deck = RateDeck::build(
        TariffSettings::default(),
        vec![Rate::new("9", dec!(1), 60, 60), rate],
    )
    .unwrap();
    let request = SimulationRequest {
        number: "+919812345678".to_owned(),
        duration_ms: 1_500_000,
        start: thursday_9am(),
        toll_free_access: false,
        package_seconds_available: 0,
        account_fees: vec![AccountFee {
            name: "activation".to_owned(),
            amount: dec!(0.39),
        }],
        taxes: TaxProfile::none(),
        balance: Some(usd(dec!(5))),
    };
    let report = simulate(&deck, &request).unwrap();
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["destination"]["prefix"], "91");
    assert_eq!(json["destination"]["description"], "India");
    assert_eq!(json["charge"]["total"]["amount"], "2.94");
    assert_eq!(json["charge"]["connection_fee"]["amount"], "0.39");
    assert_eq!(json["charge"]["billed_seconds"], 1620);
    // 5.00 − 0.78 fees = 4.22 buys 17 three-minute blocks at 0.24 (4.08): 51 minutes.
    assert_eq!(json["max_talk_time"]["limit_ms"], 51 * 60 * 1000);
    assert_eq!(
        json["max_talk_time"]["detail"]["cost_at_limit"]["amount"],
        "4.86"
    );
    // The request itself is JSON too (what the CLI reads).
    let text = serde_json::to_string(&request).unwrap();
    assert_eq!(
        serde_json::from_str::<SimulationRequest>(&text).unwrap(),
        request
    );
    let unknown = SimulationRequest {
        number: "33123".to_owned(),
        ..request
    };
    assert_eq!(simulate(&deck, &unknown).unwrap_err(), RatingError::NoRoute);
}

/// The ledger stores tariff settings and rates as JSON text.
#[test]
fn settings_and_rates_round_trip_as_json() {
    let settings = TariffSettings {
        currency: Currency::EUR,
        decimal_places: 2,
        duration_rounding: DurationRounding::Nearest,
        increment_anchor: IncrementAnchor::FromCallStart,
        grace_seconds: 3,
        toll_free_surcharge_per_minute: dec!(0.015),
        max_call_seconds: 7200,
        dial_plan: Some("premium".into()),
        refuse_loss_making_routes: true,
        taxes: vec![talktime_billing::Tax {
            name: "VAT".into(),
            kind: talktime_billing::TaxKind::Percent(dec!(20)),
            compound: false,
        }],
        destinations: talktime_billing::DestinationPolicy {
            allowed: vec!["33".into()],
            denied: vec!["3389".into()],
        },
    };
    let text = settings.to_json();
    assert_eq!(TariffSettings::from_json(&text).unwrap(), settings);
    // Missing fields take defaults.
    let partial = TariffSettings::from_json(r#"{"currency":"EUR"}"#).unwrap();
    assert_eq!(partial.decimal_places, 4);
    let rate: Rate = serde_json::from_str(
        r#"{"prefix":"44","sell_per_minute":"0.05","initial_seconds":30,"increment_seconds":6,
            "steps":[{"after_seconds":60,"rate":{"percent_of_base":"120"}}]}"#,
    )
    .unwrap();
    assert_eq!(rate.steps.len(), 1);
    assert!(rate.validate().is_ok());
}
