#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(clippy::unwrap_used)]
//! Router behaviour through the public API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use talktime_billing::{Date, LocalStart, Rate, RateDeck, RatePeriod, TariffSettings, TimeOfDay};
use talktime_routing::*;

const UK_MOBILE: &str = "447700900123";
const UK_LONDON: &str = "442079460018";

fn start() -> LocalStart {
    LocalStart::new(
        Date::new(2025, 5, 1).unwrap(),
        TimeOfDay::new(12, 0, 0).unwrap(),
    )
}

fn deck(buy_rates: &[(&str, Decimal)]) -> Arc<RateDeck> {
    let rates = buy_rates.iter().map(|(prefix, buy)| {
        let mut rate = Rate::new(prefix, dec!(1), 60, 60);
        rate.buy_per_minute = *buy;
        rate
    });
    Arc::new(RateDeck::build(TariffSettings::default(), rates).unwrap())
}

fn carriers(names: &[&str]) -> Vec<CarrierConfig> {
    names
        .iter()
        .enumerate()
        .map(|(index, name)| CarrierConfig::new(*name, format!("192.0.2.{}", index + 1)))
        .collect()
}

fn plan(mode: RouteMode, listed: Vec<RouteCarrier>) -> DialPlanConfig {
    DialPlanConfig {
        name: "regular".into(),
        routes: vec![RouteConfig {
            prefix: "44".into(),
            mode,
            carriers: listed,
            blocked: false,
        }],
    }
}

fn listed(names: &[&str]) -> Vec<RouteCarrier> {
    names.iter().map(|name| RouteCarrier::new(*name)).collect()
}

fn order(route: &Route) -> Vec<&str> {
    route
        .targets
        .iter()
        .map(|target| target.carrier.as_str())
        .collect()
}

fn request(number: &str) -> RouteRequest<'_> {
    RouteRequest::new("regular", number, start())
}

/// Three carriers a, b, c on a least-cost route with these decks.
fn least_cost_router(now: Instant) -> Router {
    let decks = HashMap::from([
        ("a".to_owned(), deck(&[("44", dec!(0.03))])),
        (
            "b".to_owned(),
            deck(&[("44", dec!(0.05)), ("447", dec!(0.01))]),
        ),
        ("c".to_owned(), deck(&[("44", dec!(0.02))])),
    ]);
    Router::new(
        carriers(&["a", "b", "c"]),
        vec![plan(RouteMode::LeastCost, listed(&["a", "b", "c"]))],
        decks,
        now,
    )
    .unwrap()
}

#[test]
fn least_cost_orders_by_the_longest_deck_prefix_rate() {
    let now = Instant::now();
    let router = least_cost_router(now);
    let mobile = router.route(&request(UK_MOBILE), now).unwrap();
    assert_eq!(order(&mobile), ["b", "c", "a"]);
    assert_eq!(mobile.targets[0].buy_per_minute, Some(dec!(0.01)));
    assert_eq!(mobile.targets[0].buy_prefix.as_deref(), Some("447"));
    let london = router.route(&request(UK_LONDON), now).unwrap();
    assert_eq!(order(&london), ["c", "a", "b"]);
}

#[test]
fn least_cost_ties_go_to_priority_then_name() {
    let now = Instant::now();
    let same = || deck(&[("44", dec!(0.02))]);
    let decks = HashMap::from([
        ("x".to_owned(), same()),
        ("y".to_owned(), same()),
        ("z".to_owned(), same()),
    ]);
    let mut route_carriers = listed(&["z", "y", "x"]);
    route_carriers[0].priority = 0; // z
    route_carriers[1].priority = 1; // y
    route_carriers[2].priority = 1; // x
    let router = Router::new(
        carriers(&["x", "y", "z"]),
        vec![plan(RouteMode::LeastCost, route_carriers)],
        decks,
        now,
    )
    .unwrap();
    let route = router.route(&request(UK_LONDON), now).unwrap();
    assert_eq!(order(&route), ["z", "x", "y"]);
}

#[test]
fn least_cost_skips_carriers_without_a_rate() {
    let now = Instant::now();
    let decks = HashMap::from([
        ("a".to_owned(), deck(&[("44", dec!(0.03))])),
        ("b".to_owned(), deck(&[("33", dec!(0.01))])),
    ]);
    let router = Router::new(
        carriers(&["a", "b", "c"]),
        vec![plan(RouteMode::LeastCost, listed(&["a", "b", "c"]))],
        decks,
        now,
    )
    .unwrap();
    let route = router.route(&request(UK_LONDON), now).unwrap();
    assert_eq!(order(&route), ["a"]);
    let skipped: Vec<_> = route
        .skipped
        .iter()
        .map(|s| (s.carrier.as_str(), &s.reason))
        .collect();
    assert_eq!(
        skipped,
        [("b", &SkipReason::NoBuyRate), ("c", &SkipReason::NoBuyRate)]
    );
}

#[test]
fn least_cost_uses_the_time_of_day_buy_rate() {
    let now = Instant::now();
    let mut night = Rate::new("44", dec!(1), 60, 60);
    night.buy_per_minute = dec!(0.05);
    night.periods.push(RatePeriod {
        days: Vec::new(),
        from: TimeOfDay::new(9, 0, 0).unwrap(),
        until: TimeOfDay::new(18, 0, 0).unwrap(),
        sell_per_minute: dec!(1),
        buy_per_minute: Some(dec!(0.001)),
    });
    let decks = HashMap::from([
        ("a".to_owned(), deck(&[("44", dec!(0.01))])),
        (
            "b".to_owned(),
            Arc::new(RateDeck::build(TariffSettings::default(), [night]).unwrap()),
        ),
    ]);
    let router = Router::new(
        carriers(&["a", "b"]),
        vec![plan(RouteMode::LeastCost, listed(&["a", "b"]))],
        decks,
        now,
    )
    .unwrap();
    let noon = router.route(&request(UK_LONDON), now).unwrap();
    assert_eq!(order(&noon), ["b", "a"]);
    let late = LocalStart::new(start().date, TimeOfDay::new(22, 0, 0).unwrap());
    let evening = router
        .route(&RouteRequest::new("regular", UK_LONDON, late), now)
        .unwrap();
    assert_eq!(order(&evening), ["a", "b"]);
}

#[test]
fn priority_mode_orders_by_priority_then_listing() {
    let now = Instant::now();
    let mut route_carriers = listed(&["a", "b", "c"]);
    route_carriers[0].priority = 2;
    route_carriers[1].priority = 1;
    route_carriers[2].priority = 2;
    let router = Router::new(
        carriers(&["a", "b", "c"]),
        vec![plan(RouteMode::Priority, route_carriers)],
        HashMap::new(),
        now,
    )
    .unwrap();
    let route = router.route(&request(UK_LONDON), now).unwrap();
    assert_eq!(order(&route), ["b", "a", "c"]);
    assert!(
        route.skipped.is_empty(),
        "priority routes do not need buy rates"
    );
    assert_eq!(route.targets[0].buy_per_minute, None);
}

fn weighted_router(now: Instant) -> Router {
    let mut route_carriers = listed(&["a", "b"]);
    route_carriers[0].weight = 3;
    Router::new(
        carriers(&["a", "b"]),
        vec![plan(RouteMode::Weighted, route_carriers)],
        HashMap::new(),
        now,
    )
    .unwrap()
}

#[test]
fn weighted_share_over_ten_thousand_draws_follows_the_weights() {
    let now = Instant::now();
    let router = weighted_router(now);
    let draws = 10_000u64;
    let first_a = (0..draws)
        .filter(|&seed| {
            let route = router
                .route(&request(UK_LONDON).with_seed(seed), now)
                .unwrap();
            assert_eq!(route.targets.len(), 2, "both carriers are always offered");
            route.targets[0].carrier == "a"
        })
        .count();
    let share = first_a as f64 / draws as f64;
    assert!((share - 0.75).abs() <= 0.03, "share of a was {share}");
}

#[test]
fn weighted_order_is_the_same_for_the_same_seed() {
    let now = Instant::now();
    let router = weighted_router(now);
    for seed in [0, 1, 42, u64::MAX] {
        let first = router
            .route(&request(UK_LONDON).with_seed(seed), now)
            .unwrap();
        let second = router
            .route(&request(UK_LONDON).with_seed(seed), now)
            .unwrap();
        assert_eq!(order(&first), order(&second));
    }
}

#[test]
fn weighted_share_is_redistributed_when_a_carrier_is_skipped() {
    let now = Instant::now();
    let mut all = carriers(&["a", "b"]);
    all[0].enabled = false;
    let mut route_carriers = listed(&["a", "b"]);
    route_carriers[0].weight = 3;
    let router = Router::new(
        all,
        vec![plan(RouteMode::Weighted, route_carriers)],
        HashMap::new(),
        now,
    )
    .unwrap();
    for seed in 0..100 {
        let route = router
            .route(&request(UK_LONDON).with_seed(seed), now)
            .unwrap();
        assert_eq!(order(&route), ["b"]);
    }
}

#[test]
fn longest_route_prefix_wins_and_empty_prefix_catches_the_rest() {
    let now = Instant::now();
    let plan = DialPlanConfig {
        name: "regular".into(),
        routes: vec![
            RouteConfig {
                prefix: String::new(),
                mode: RouteMode::Priority,
                carriers: listed(&["a"]),
                blocked: false,
            },
            RouteConfig {
                prefix: "447".into(),
                mode: RouteMode::Priority,
                carriers: listed(&["b"]),
                blocked: false,
            },
            RouteConfig {
                prefix: "44".into(),
                mode: RouteMode::Priority,
                carriers: listed(&["c"]),
                blocked: false,
            },
        ],
    };
    let router = Router::new(carriers(&["a", "b", "c"]), vec![plan], HashMap::new(), now).unwrap();
    let prefix_of = |number| router.route(&request(number), now).unwrap().route_prefix;
    assert_eq!(prefix_of(UK_MOBILE), "447");
    assert_eq!(prefix_of(UK_LONDON), "44");
    assert_eq!(prefix_of("919812345678"), "");
}

#[test]
fn missing_plan_route_or_bad_number_are_errors() {
    let now = Instant::now();
    let router = least_cost_router(now);
    let missing = RouteRequest::new("premium", UK_LONDON, start());
    assert_eq!(
        router.route(&missing, now),
        Err(RouteError::UnknownDialPlan("premium".into()))
    );
    assert_eq!(
        router.route(&request("919812345678"), now),
        Err(RouteError::NoRoute {
            plan: "regular".into()
        })
    );
    assert_eq!(
        router.route(&request("+4420"), now),
        Err(RouteError::InvalidNumber)
    );
    assert_eq!(
        router.route(&request(""), now),
        Err(RouteError::InvalidNumber)
    );
}

#[test]
fn blocked_route_refuses_before_any_carrier() {
    let now = Instant::now();
    let mut dial_plan = plan(RouteMode::Priority, listed(&["a"]));
    dial_plan.routes.push(RouteConfig {
        prefix: "44909".into(),
        mode: RouteMode::Priority,
        carriers: Vec::new(),
        blocked: true,
    });
    let router = Router::new(carriers(&["a"]), vec![dial_plan], HashMap::new(), now).unwrap();
    assert_eq!(
        router.route(&request("449098790000"), now),
        Err(RouteError::Blocked {
            plan: "regular".into(),
            prefix: "44909".into()
        })
    );
}

#[test]
fn request_user_is_rewritten_per_carrier() {
    let now = Instant::now();
    let mut all = carriers(&["a", "b"]);
    all[0].strip_digits = 2;
    all[0].add_prefix = "0".into();
    all[1].add_prefix = "9901".into();
    let router = Router::new(
        all,
        vec![plan(RouteMode::Priority, listed(&["a", "b"]))],
        HashMap::new(),
        now,
    )
    .unwrap();
    let route = router.route(&request(UK_MOBILE), now).unwrap();
    assert_eq!(route.targets[0].request_user.expose(), "07700900123");
    assert_eq!(route.targets[1].request_user.expose(), "9901447700900123");
}

#[test]
fn rewrite_strips_at_most_the_whole_number() {
    let mut carrier = CarrierConfig::new("a", "192.0.2.1");
    carrier.strip_digits = 20;
    carrier.add_prefix = "1".into();
    assert_eq!(carrier.rewrite("4420"), "1");
}

#[test]
fn target_carries_address_transport_credentials_and_timeout() {
    let now = Instant::now();
    let mut all = carriers(&["a"]);
    all[0].port = 5080;
    all[0].transport = Transport::Tcp;
    all[0].username = Some("talktime".into());
    all[0].password = Some("hunter2".into());
    all[0].invite_timeout_ms = 1500;
    all[0].caller_id = CallerIdRule::Hide;
    let router = Router::new(
        all,
        vec![plan(RouteMode::Priority, listed(&["a"]))],
        HashMap::new(),
        now,
    )
    .unwrap();
    let target = router
        .route(&request(UK_MOBILE), now)
        .unwrap()
        .targets
        .remove(0);
    assert_eq!((target.host.as_str(), target.port), ("192.0.2.1", 5080));
    assert_eq!(target.transport, Transport::Tcp);
    let credentials = target.credentials.clone().unwrap();
    assert_eq!(credentials.username, "talktime");
    assert_eq!(credentials.password.expose(), "hunter2");
    assert_eq!(target.invite_timeout, Duration::from_millis(1500));
    assert_eq!(target.caller_id.apply("447700900999"), None);
    let printed = format!("{target:?} {:?}", router.carrier("a").unwrap());
    assert!(
        !printed.contains("hunter2") && !printed.contains(UK_MOBILE),
        "{printed}"
    );
}

#[test]
fn disabled_carrier_is_skipped() {
    let now = Instant::now();
    let mut all = carriers(&["a", "b"]);
    all[0].enabled = false;
    let router = Router::new(
        all,
        vec![plan(RouteMode::Priority, listed(&["a", "b"]))],
        HashMap::new(),
        now,
    )
    .unwrap();
    let route = router.route(&request(UK_MOBILE), now).unwrap();
    assert_eq!(order(&route), ["b"]);
    assert_eq!(route.skipped[0].reason, SkipReason::Disabled);
}

fn two_carrier_router(now: Instant, configure: impl FnOnce(&mut CarrierConfig)) -> Router {
    let mut all = carriers(&["a", "b"]);
    configure(&mut all[0]);
    Router::new(
        all,
        vec![plan(RouteMode::Priority, listed(&["a", "b"]))],
        HashMap::new(),
        now,
    )
    .unwrap()
}

#[test]
fn carrier_is_down_after_two_missed_pings_and_back_after_one_answer() {
    let now = Instant::now();
    let mut router = two_carrier_router(now, |_| {});
    router.health_result("a", false, now);
    assert_eq!(
        order(&router.route(&request(UK_MOBILE), now).unwrap()),
        ["a", "b"]
    );
    assert_eq!(router.poll_event(), None);
    router.health_result("a", false, now);
    let route = router.route(&request(UK_MOBILE), now).unwrap();
    assert_eq!(order(&route), ["b"]);
    assert_eq!(route.skipped[0].reason, SkipReason::Unhealthy);
    let down = router.poll_event().unwrap();
    assert!(!down.up && down.carrier == "a" && down.consecutive_misses == MISSES_BEFORE_DOWN);
    assert!(down.to_string().contains("down"), "{down}");
    router.health_result("a", false, now);
    assert_eq!(router.poll_event(), None, "one event per change");
    router.health_result("a", true, now);
    assert_eq!(
        order(&router.route(&request(UK_MOBILE), now).unwrap()),
        ["a", "b"]
    );
    assert!(router.poll_event().unwrap().up);
}

#[test]
fn pings_are_due_at_start_then_every_interval() {
    let now = Instant::now();
    let mut router = two_carrier_router(now, |carrier| carrier.options_interval_ms = 10_000);
    assert_eq!(router.poll_timeout(), Some(now));
    assert_eq!(router.health_due(now), ["a", "b"]);
    assert!(router.health_due(now).is_empty());
    let ten_seconds = now + Duration::from_secs(10);
    assert_eq!(router.poll_timeout(), Some(ten_seconds));
    assert_eq!(router.health_due(ten_seconds), ["a"]);
    assert_eq!(router.poll_timeout(), Some(now + Duration::from_secs(20)));
}

#[test]
fn unchecked_and_disabled_carriers_are_never_pinged() {
    let now = Instant::now();
    let mut all = carriers(&["a", "b"]);
    all[0].options_interval_ms = 0;
    all[1].enabled = false;
    let mut router = Router::new(
        all,
        vec![plan(RouteMode::Priority, listed(&["a", "b"]))],
        HashMap::new(),
        now,
    )
    .unwrap();
    assert_eq!(router.poll_timeout(), None);
    assert!(
        router
            .health_due(now + Duration::from_secs(3600))
            .is_empty()
    );
    router.health_result("a", false, now);
    router.health_result("a", false, now);
    assert_eq!(
        order(&router.route(&request(UK_MOBILE), now).unwrap()),
        ["a"]
    );
}

#[test]
fn carrier_at_max_calls_is_skipped_until_a_call_ends() {
    let now = Instant::now();
    let mut router = two_carrier_router(now, |carrier| carrier.max_calls = Some(2));
    router.call_started("a", now).unwrap();
    router.call_started("a", now).unwrap();
    assert_eq!(
        router.call_started("a", now),
        Err(CapacityError::AtMaxCalls {
            carrier: "a".into(),
            limit: 2
        })
    );
    let route = router.route(&request(UK_MOBILE), now).unwrap();
    assert_eq!(order(&route), ["b"]);
    assert_eq!(route.skipped[0].reason, SkipReason::AtMaxCalls { limit: 2 });
    router.call_ended("a");
    assert_eq!(
        order(&router.route(&request(UK_MOBILE), now).unwrap()),
        ["a", "b"]
    );
    assert_eq!(router.carrier_status()[0].active_calls, 1);
}

#[test]
fn carrier_over_calls_per_second_is_skipped_until_the_bucket_refills() {
    let now = Instant::now();
    let mut router = two_carrier_router(now, |carrier| carrier.calls_per_second = Some(1));
    router.call_started("a", now).unwrap();
    assert!(matches!(
        router.call_started("a", now),
        Err(CapacityError::OverCallsPerSecond { limit: 1, .. })
    ));
    let route = router.route(&request(UK_MOBILE), now).unwrap();
    assert_eq!(
        route.skipped[0].reason,
        SkipReason::OverCallsPerSecond { limit: 1 }
    );
    let later = now + Duration::from_secs(1);
    assert_eq!(
        order(&router.route(&request(UK_MOBILE), later).unwrap()),
        ["a", "b"]
    );
    router.call_started("a", later).unwrap();
}

#[test]
fn loss_making_carrier_is_refused_only_when_the_tariff_says_so() {
    let now = Instant::now();
    let router = least_cost_router(now);
    let sell = dec!(0.025);
    let refusing = request(UK_LONDON).with_sell_rate(sell, true);
    let route = router.route(&refusing, now).unwrap();
    assert_eq!(order(&route), ["c"]);
    assert_eq!(
        route.skipped[0],
        Skipped {
            carrier: "a".into(),
            reason: SkipReason::LossMaking {
                buy_per_minute: dec!(0.03),
                sell_per_minute: sell
            }
        }
    );
    let allowing = request(UK_LONDON).with_sell_rate(sell, false);
    assert_eq!(
        order(&router.route(&allowing, now).unwrap()),
        ["c", "a", "b"]
    );
    let break_even = request(UK_LONDON).with_sell_rate(dec!(0.02), true);
    assert_eq!(order(&router.route(&break_even, now).unwrap()), ["c"]);
}

#[test]
fn no_carrier_left_is_an_error_listing_the_reasons() {
    let now = Instant::now();
    let router = least_cost_router(now);
    let too_cheap = request(UK_LONDON).with_sell_rate(dec!(0.001), true);
    let Err(RouteError::NoCarrierAvailable { skipped, .. }) = router.route(&too_cheap, now) else {
        panic!("expected no carrier");
    };
    assert_eq!(skipped.len(), 3);
    let message = router.route(&too_cheap, now).unwrap_err().to_string();
    assert!(
        message.contains("a: buy 0.03/min is above sell 0.001/min"),
        "{message}"
    );
}

#[test]
fn failover_follows_the_carrier_rule() {
    let now = Instant::now();
    let router = two_carrier_router(now, |carrier| carrier.failover_codes = Some(vec![486]));
    assert!(router.failover("b", Some(503)));
    assert!(!router.failover("b", Some(486)));
    assert!(router.failover("b", None));
    assert!(router.failover("a", Some(486)));
    assert!(!router.failover("a", Some(503)));
    assert!(router.failover("a", None));
    assert!(router.failover("unknown", Some(503)));
}

#[test]
fn explain_lists_chosen_and_skipped_carriers_with_reasons() {
    let now = Instant::now();
    let mut router = least_cost_router(now);
    router.health_result("b", false, now);
    router.health_result("b", false, now);
    let explanation = router
        .explain(&request(UK_MOBILE).with_sell_rate(dec!(0.025), true), now)
        .unwrap();
    let text = explanation.to_string();
    assert!(
        text.contains("dial plan regular, number 447700900123: route 44, least cost"),
        "{text}"
    );
    assert!(text.contains("least cost: buy 0.02/min for 44"), "{text}");
    assert!(text.contains("192.0.2.3:5060/udp"), "{text}");
    assert!(text.contains("unhealthy"), "{text}");
    assert!(
        text.contains("buy 0.03/min is above sell 0.025/min"),
        "{text}"
    );
    let first_row = text.lines().nth(2).unwrap();
    assert!(first_row.trim_start().starts_with("1  c"), "{text}");
    assert!(!format!("{explanation:?}").contains(UK_MOBILE));
}

#[test]
fn explain_shows_a_blocked_route() {
    let now = Instant::now();
    let dial_plan = DialPlanConfig {
        name: "regular".into(),
        routes: vec![RouteConfig {
            prefix: "44909".into(),
            mode: RouteMode::Priority,
            carriers: Vec::new(),
            blocked: true,
        }],
    };
    let router = Router::new(Vec::new(), vec![dial_plan], HashMap::new(), now).unwrap();
    let text = router
        .explain(&request("449098790000"), now)
        .unwrap()
        .to_string();
    assert!(text.contains("blocked"), "{text}");
}

#[test]
fn invalid_configuration_is_refused() {
    let result = Router::new(
        carriers(&["a"]),
        vec![plan(RouteMode::Priority, listed(&["a", "ghost"]))],
        HashMap::new(),
        Instant::now(),
    );
    let errors = result.unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert!(errors.to_string().contains("ghost"));
}

#[test]
fn reload_keeps_calls_in_progress_and_health() {
    let now = Instant::now();
    let mut router = two_carrier_router(now, |carrier| carrier.max_calls = Some(1));
    router.call_started("a", now).unwrap();
    router.health_result("b", false, now);
    router.health_result("b", false, now);
    let mut all = carriers(&["a", "b", "c"]);
    all[0].max_calls = Some(1);
    router
        .reload(
            all,
            vec![plan(RouteMode::Priority, listed(&["a", "b", "c"]))],
            HashMap::new(),
            now,
        )
        .unwrap();
    let route = router.route(&request(UK_MOBILE), now).unwrap();
    assert_eq!(order(&route), ["c"]);
    assert_eq!(route.skipped.len(), 2);
    let bad = router.reload(
        Vec::new(),
        vec![plan(RouteMode::Priority, listed(&["a"]))],
        HashMap::new(),
        now,
    );
    assert!(bad.is_err());
    assert_eq!(
        router.carrier_status().len(),
        3,
        "a failed reload changes nothing"
    );
}

proptest! {
    #[test]
    fn every_listed_carrier_is_offered_or_skipped_exactly_once(
        buy in proptest::collection::vec(proptest::option::of(1u32..100), 1..6),
        enabled in proptest::collection::vec(any::<bool>(), 6),
        sell in 1u32..100,
        seed in any::<u64>(),
        mode in prop_oneof![Just(RouteMode::Priority), Just(RouteMode::LeastCost), Just(RouteMode::Weighted)],
    ) {
        let now = Instant::now();
        let names: Vec<String> = (0..buy.len()).map(|index| format!("c{index}")).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut all = carriers(&name_refs);
        for (carrier, enabled) in all.iter_mut().zip(&enabled) {
            carrier.enabled = *enabled;
        }
        let decks: HashMap<String, Arc<RateDeck>> = names
            .iter()
            .zip(&buy)
            .filter_map(|(name, buy)| Some((name.clone(), deck(&[("44", Decimal::new(i64::from((*buy)?), 3))]))))
            .collect();
        let router = Router::new(all, vec![plan(mode, listed(&name_refs))], decks, now).unwrap();
        let explanation = router
            .explain(&request(UK_LONDON).with_sell_rate(Decimal::new(i64::from(sell), 3), true).with_seed(seed), now)
            .unwrap();
        let mut seen: Vec<&str> = explanation.targets.iter().map(|t| t.carrier.as_str())
            .chain(explanation.skipped.iter().map(|s| s.carrier.as_str()))
            .collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, name_refs.clone());
        if mode == RouteMode::LeastCost {
            let prices: Vec<Decimal> = explanation.targets.iter().map(|t| t.buy_per_minute.unwrap()).collect();
            prop_assert!(prices.windows(2).all(|pair| pair[0] <= pair[1]));
        }
        for target in &explanation.targets {
            if let Some(buy) = target.buy_per_minute {
                prop_assert!(buy <= Decimal::new(i64::from(sell), 3));
            }
        }
    }
}
