//! Property tests: the talk-time invariant against a brute-force reference, non-negative
//! costs, exact micro-unit round trips, and the deck index against a linear scan.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rust_decimal::Decimal;
use talktime_billing::*;

/// Short calls keep the brute-force reference cheap.
const CAP_SECONDS: u32 = 1_800;

fn amount(max_ten_thousandths: i64) -> impl Strategy<Value = Decimal> {
    (0..=max_ten_thousandths).prop_map(|value| Decimal::new(value, 4))
}

fn step_rate() -> impl Strategy<Value = StepRate> {
    prop_oneof![
        amount(30_000).prop_map(StepRate::PerMinute),
        (0i64..=300).prop_map(|percent| StepRate::PercentOfBase(Decimal::from(percent))),
    ]
}

fn steps() -> impl Strategy<Value = Vec<RateStep>> {
    prop::collection::vec((1u32..600, step_rate()), 0..=3).prop_map(|mut raw| {
        raw.sort_by_key(|(after, _)| *after);
        raw.dedup_by_key(|(after, _)| *after);
        raw.into_iter()
            .map(|(after_seconds, rate)| RateStep {
                after_seconds,
                rate,
            })
            .collect()
    })
}

fn disconnect_fee() -> impl Strategy<Value = Option<DisconnectFee>> {
    prop::option::of((amount(5_000), 1u32..200, any::<bool>()).prop_map(
        |(amount, threshold_seconds, shorter)| DisconnectFee {
            amount,
            threshold_seconds,
            applies: if shorter {
                DisconnectFeeApplies::ShorterThan
            } else {
                DisconnectFeeApplies::AtLeast
            },
        },
    ))
}

fn rate() -> impl Strategy<Value = Rate> {
    (
        amount(30_000),
        prop::sample::select(vec![0u32, 1, 6, 30, 60, 180]),
        prop::sample::select(vec![1u32, 6, 30, 60, 180]),
        amount(5_000),
        prop::option::of(amount(10_000)),
        disconnect_fee(),
        prop::option::of((0i64..=50, 0u32..200)),
        steps(),
    )
        .prop_map(
            |(sell, initial, increment, connection, minimum, disconnect, factor, steps)| {
                let mut rate = Rate::new("1", sell, initial, increment);
                rate.connection_fee = connection;
                rate.minimum_cost = minimum;
                rate.disconnect_fee = disconnect;
                rate.disconnect_factor =
                    factor.map(|(percent, minimum_seconds)| DisconnectFactor {
                        percent: Decimal::from(percent),
                        minimum_seconds,
                    });
                rate.steps = steps;
                rate
            },
        )
}

fn settings() -> impl Strategy<Value = TariffSettings> {
    (
        0u32..=6,
        prop::sample::select(vec![
            DurationRounding::Up,
            DurationRounding::Down,
            DurationRounding::Nearest,
        ]),
        any::<bool>(),
        0u32..10,
        amount(1_000),
    )
        .prop_map(
            |(decimal_places, duration_rounding, from_start, grace_seconds, surcharge)| {
                TariffSettings {
                    currency: Currency::USD,
                    decimal_places,
                    duration_rounding,
                    increment_anchor: if from_start {
                        IncrementAnchor::FromCallStart
                    } else {
                        IncrementAnchor::AfterInitialBlock
                    },
                    grace_seconds,
                    toll_free_surcharge_per_minute: surcharge,
                    max_call_seconds: CAP_SECONDS,
                    ..TariffSettings::default()
                }
            },
        )
}

fn tax() -> impl Strategy<Value = Tax> {
    (any::<bool>(), 0i64..=3000, any::<bool>()).prop_map(|(percent, value, compound)| Tax {
        name: "tax".to_owned(),
        kind: if percent {
            TaxKind::Percent(Decimal::new(value, 2))
        } else {
            TaxKind::Fixed(Decimal::new(value, 4))
        },
        compound,
    })
}

fn call() -> impl Strategy<Value = CallFacts> {
    (
        any::<bool>(),
        prop::sample::select(vec![0u32, 0, 30, 120, 600]),
        prop::option::of(amount(5_000)),
        prop::collection::vec(tax(), 0..=3),
    )
        .prop_map(|(toll_free_access, package, activation, taxes)| CallFacts {
            start: LocalStart::new(
                Date::new(2025, 5, 1).unwrap_or_else(|_| unreachable!()),
                TimeOfDay::MIDNIGHT,
            ),
            toll_free_access,
            package_seconds_available: package,
            account_fees: activation
                .into_iter()
                .map(|amount| AccountFee {
                    name: "activation".to_owned(),
                    amount,
                })
                .collect(),
            taxes: TaxProfile {
                name: "random".to_owned(),
                taxes,
            },
        })
}

fn context() -> impl Strategy<Value = RatingContext> {
    (settings(), rate(), call()).prop_map(|(settings, rate, call)| {
        RatingContext::new(&settings, &rate, &call).unwrap_or_else(|error| panic!("{error}"))
    })
}

fn cost_of_seconds(context: &RatingContext, seconds: u32) -> Decimal {
    // Any millisecond value inside the second gives the same rated seconds.
    let duration_ms = context
        .duration_rounding
        .last_millisecond_of(seconds)
        .min(u64::from(seconds) * 1000);
    rate_call(context, duration_ms).total.amount
}

/// The longest prefix of seconds whose every call is affordable, by brute force.
fn reference_limit(context: &RatingContext, available: Decimal) -> u32 {
    let mut limit = 0;
    for seconds in 1..=context.max_call_seconds {
        if cost_of_seconds(context, seconds) > available {
            break;
        }
        limit = seconds;
    }
    limit
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn talk_time_is_safe_and_maximal(context in context(), balance in amount(100_000)) {
        let available = Money::new(balance, Currency::USD);
        let reference = reference_limit(&context, balance);
        let first_seconds = context.grace_seconds.max(1);
        match max_talk_time(&context, available) {
            Ok(talk_time) => {
                prop_assert_eq!(talk_time.limit_seconds, reference);
                prop_assert!(rate_call(&context, talk_time.limit_ms).total.amount <= balance);
                prop_assert!(talk_time.first_unit_cost.amount <= balance);
                if talk_time.capped {
                    prop_assert_eq!(talk_time.limit_seconds, context.max_call_seconds);
                } else {
                    prop_assert!(rate_call(&context, talk_time.limit_ms + 1).total.amount > balance);
                    let cost_falls = context.disconnect_fee.as_ref().is_some_and(|fee| {
                        fee.applies == DisconnectFeeApplies::ShorterThan
                    });
                    if !cost_falls {
                        // The usual form: one more increment does not fit.
                        let next = talk_time.limit_ms + u64::from(context.increment_seconds) * 1000;
                        prop_assert!(rate_call(&context, next).total.amount > balance);
                    }
                }
                prop_assert!(talk_time.announced_ms >= talk_time.limit_ms);
            }
            Err(RatingError::InsufficientCredit { first_unit_cost, .. }) => {
                prop_assert!(first_unit_cost.amount > balance || reference < first_seconds);
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn a_callback_pays_both_legs_within_the_credit(
        called in context(),
        caller in context(),
        elapsed_ms in 0u64..600_000,
        balance in amount(100_000),
    ) {
        let available = Money::new(balance, Currency::USD);
        let companion = CompanionLeg { context: &caller, elapsed_ms };
        match max_talk_time_beside(&called, available, companion) {
            Ok(talk_time) => {
                let both = rate_call(&called, talk_time.limit_ms).total.amount
                    + rate_call(&caller, elapsed_ms + talk_time.limit_ms).total.amount;
                prop_assert!(both <= balance, "{both} > {balance}");
                prop_assert_eq!(
                    talk_time.cost_at_limit.amount,
                    rate_call(&called, talk_time.limit_ms).total.amount
                );
                let alone = max_talk_time(&called, available);
                prop_assert!(alone.is_ok_and(|alone| alone.limit_ms >= talk_time.limit_ms));
            }
            Err(RatingError::InsufficientCredit { .. }) => {
                let first = called.grace_seconds.max(1).min(called.max_call_seconds);
                let first_both = first_unit_cost(&called).amount
                    + companion.cost_with(first).amount;
                // Only a disconnect fee can make a longer first piece unaffordable.
                prop_assert!(first_both > balance || called.disconnect_fee.is_some());
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn every_reseller_level_holds_within_its_credit(
        customer in context(),
        own in prop::collection::vec(prop::option::of(context()), 1..=3),
        credits in prop::collection::vec(amount(100_000), 3),
        customer_limit_ms in 0u64..2_000_000,
    ) {
        let levels: Vec<Level<'_>> = own
            .iter()
            .zip(&credits)
            .map(|(context, credit)| Level {
                context: context.as_ref(),
                credit: Money::new(*credit, Currency::USD),
            })
            .collect();
        match level_limit(&customer, customer_limit_ms, &levels) {
            Ok(limit) => {
                prop_assert!(limit.limit_ms <= customer_limit_ms);
                prop_assert_eq!(limit.holds.len(), levels.len());
                let mut below = &customer;
                for (index, (level, hold)) in levels.iter().zip(&limit.holds).enumerate() {
                    let context = level.context.unwrap_or(below);
                    below = context;
                    prop_assert!(hold.amount <= level.credit.amount);
                    let alone = max_talk_time(context, level.credit).unwrap();
                    prop_assert!(limit.limit_ms <= alone.limit_ms, "level {index}");
                    let cost = rate_call(context, limit.limit_ms).total.amount;
                    prop_assert!(hold.amount == cost || cost > level.credit.amount);
                }
                let charges = level_charges(
                    &customer,
                    &own.iter().map(Option::as_ref).collect::<Vec<_>>(),
                    limit.limit_ms,
                );
                let held: Vec<Decimal> = limit.holds.iter().map(|hold| hold.amount).collect();
                let charged: Vec<Decimal> = charges.iter().map(|charge| charge.amount).collect();
                let uncapped = held.iter().zip(&credits).all(|(hold, credit)| hold < credit);
                prop_assert!(!uncapped || held == charged);
            }
            Err(RatingError::InsufficientCredit { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    /// A callback's called leg of a reseller's customer: at every level both legs' costs up to
    /// the limit fit the level's credit (the caller leg running `elapsed_ms` longer), and the
    /// holds say so.
    #[test]
    fn every_reseller_level_holds_both_callback_legs_within_its_credit(
        customer in context(),
        caller_leg in context(),
        own in prop::collection::vec(prop::option::of(context()), 1..=3),
        caller_leg_own in prop::collection::vec(prop::option::of(context()), 3),
        credits in prop::collection::vec(amount(100_000), 3),
        customer_limit_ms in 0u64..2_000_000,
        elapsed_ms in 0u64..120_000,
    ) {
        let levels: Vec<Level<'_>> = own
            .iter()
            .zip(&credits)
            .map(|(context, credit)| Level {
                context: context.as_ref(),
                credit: Money::new(*credit, Currency::USD),
            })
            .collect();
        let companion = CompanionLevels {
            customer: &caller_leg,
            levels: caller_leg_own.iter().take(levels.len()).map(Option::as_ref).collect(),
            elapsed_ms,
        };
        match level_limit_beside(&customer, customer_limit_ms, &levels, &companion) {
            Ok((limit, companion_holds)) => {
                prop_assert!(limit.limit_ms <= customer_limit_ms);
                prop_assert_eq!(companion_holds.len(), levels.len());
                let seconds = u32::try_from(limit.limit_ms / 1000).unwrap();
                let (mut below, mut caller_below) = (&customer, &caller_leg);
                for (index, level) in levels.iter().enumerate() {
                    let context = level.context.unwrap_or(below);
                    below = context;
                    let caller_context = companion.levels[index].unwrap_or(caller_below);
                    caller_below = caller_context;
                    let (hold, caller_hold) = (&limit.holds[index], &companion_holds[index]);
                    prop_assert!(hold.amount + caller_hold.amount <= level.credit.amount);
                    let both = rate_call(context, limit.limit_ms).total.amount
                        + CompanionLeg { context: caller_context, elapsed_ms }
                            .cost_with(seconds)
                            .amount;
                    // What both legs cost at the limit is held, unless a disconnect fee makes
                    // the shorter call dearer (then the hold is the whole credit).
                    prop_assert!(
                        both <= level.credit.amount
                            || context.disconnect_fee.is_some()
                            || caller_context.disconnect_fee.is_some(),
                        "level {index}: {both} over {}", level.credit.amount
                    );
                    if both <= level.credit.amount {
                        prop_assert_eq!(hold.amount + caller_hold.amount, both);
                    }
                }
            }
            Err(RatingError::InsufficientCredit { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn cost_is_never_negative_and_fits_micros(context in context(), duration_ms in 0u64..4_000_000) {
        let charge = rate_call(&context, duration_ms);
        let lines = [
            &charge.connection_fee, &charge.time_charge, &charge.toll_free_surcharge,
            &charge.disconnect_fee, &charge.disconnect_factor_fee, &charge.minimum_cost_topup,
            &charge.subtotal, &charge.tax_total, &charge.total, &charge.buy_cost,
        ];
        for line in lines {
            prop_assert!(!line.is_negative(), "{line}");
        }
        prop_assert!(charge.total_micros().is_ok());
        let half_unit = Decimal::new(5, context.decimal_places + 1);
        prop_assert!(charge.rounding.amount.abs() <= half_unit);
        prop_assert_eq!(charge.exact_total.amount + charge.rounding.amount, charge.total.amount);
        prop_assert_eq!(
            charge.package_seconds_used + charge.charged_seconds,
            charge.billed_seconds
        );
    }

    #[test]
    fn micro_units_round_trip(micros in any::<i64>()) {
        let money = Money::from_micros(micros, Currency::EUR);
        prop_assert_eq!(money.to_micros(), Ok(micros));
        let text = serde_json::to_string(&money).unwrap_or_default();
        let back: Money = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.to_micros(), Ok(micros));
    }

    #[test]
    fn deck_matches_a_linear_scan(
        prefixes in prop::collection::hash_set("[0-9]{1,6}", 1..60),
        numbers in prop::collection::vec("[0-9]{0,9}", 1..40),
    ) {
        let rates: Vec<Rate> = prefixes
            .iter()
            .map(|prefix| Rate::new(prefix, Decimal::ONE, 60, 60))
            .collect();
        let deck = RateDeck::build(TariffSettings::default(), rates)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for number in &numbers {
            let expected = prefixes
                .iter()
                .filter(|prefix| number.starts_with(prefix.as_str()))
                .max_by_key(|prefix| prefix.len());
            let found = deck.lookup(number).map(|destination| &destination.prefix);
            prop_assert_eq!(found, expected);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The largest values validation admits, any duration: rating never panics, never goes
    /// negative, and the total still converts to micro-units or reports overflow as an error.
    #[test]
    fn extreme_valid_inputs_do_not_panic(
        duration_ms in any::<u64>(),
        increment in 1u32..=MAX_CALL_SECONDS,
        initial in 0u32..=MAX_CALL_SECONDS,
        from_start in any::<bool>(),
        balance_micros in any::<i64>(),
    ) {
        let mut rate = Rate::new("1", MAX_AMOUNT, initial, increment);
        rate.connection_fee = MAX_AMOUNT;
        rate.minimum_cost = Some(MAX_AMOUNT);
        rate.disconnect_factor = Some(DisconnectFactor { percent: MAX_PERCENT, minimum_seconds: 0 });
        rate.steps = vec![RateStep { after_seconds: 1, rate: StepRate::PercentOfBase(MAX_PERCENT) }];
        let settings = TariffSettings {
            increment_anchor: if from_start {
                IncrementAnchor::FromCallStart
            } else {
                IncrementAnchor::AfterInitialBlock
            },
            toll_free_surcharge_per_minute: MAX_AMOUNT,
            max_call_seconds: MAX_CALL_SECONDS,
            ..TariffSettings::default()
        };
        let mut call = CallFacts::new(LocalStart::new(
            Date::new(2025, 5, 1).unwrap(),
            TimeOfDay::MIDNIGHT,
        ));
        call.toll_free_access = true;
        call.taxes.taxes = vec![
            Tax { name: "t".to_owned(), kind: TaxKind::Percent(Decimal::ONE_HUNDRED), compound: true };
            MAX_TAXES
        ];
        let context = RatingContext::new(&settings, &rate, &call).unwrap();
        let charge = rate_call(&context, duration_ms);
        prop_assert!(!charge.total.is_negative());
        let _ = charge.total_micros();
        let _ = max_talk_time(&context, Money::from_micros(balance_micros, Currency::USD));
    }
}
