//! Sans-IO carrier routing for Talktime: which carriers a call is sent to, in which order,
//! and when to move on to the next one.
//!
//! No sockets, no clock, no database: the shell passes `Instant`s, the call's local start,
//! and the buy-rate decks it loaded from the ledger; it sends the INVITEs and OPTIONS itself.
//!
//! # Configuration
//!
//! Carriers are `[[carriers]]` and dial plans `[[dial_plans]]` with `[[dial_plans.routes]]`.
//! Every table refuses unknown keys. Defaults: `port = 5060`, `transport = "udp"`,
//! `strip_digits = 0`, `add_prefix = ""`, `caller_id = "pass_through"` (or `"hide"`, or
//! `{ fixed = "442071234567" }`), no call limits, `failover_codes` unset (the default rule of
//! [`fails_over`]), `enabled = true`, `options_interval_ms = 30000` (0: no health check),
//! `invite_timeout_ms = 2000`; a route's `prefix = ""` (all numbers), `mode = "priority"`
//! (or `"least_cost"`, `"weighted"`), `blocked = false`; a route carrier's `priority = 0`
//! (lower first) and `weight = 1`. Route prefixes and deck prefixes are E.164 digits, matched
//! against the number after [`normalize`]; the longest matching route prefix wins.
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::Instant;
//! use talktime_routing::*;
//!
//! let text = r#"
//! [[carriers]]
//! name = "alpha"
//! host = "192.0.2.10"
//! username = "talktime"
//! password = "secret"
//! strip_digits = 0
//! add_prefix = "00"
//! max_calls = 30
//! calls_per_second = 5
//! buy_tariff = "alpha-buy"
//!
//! [[carriers]]
//! name = "beta"
//! host = "sip.beta.example"
//! transport = "tcp"
//! caller_id = { fixed = "442071234567" }
//! failover_codes = [500, 502, 503, 504, 408]
//! options_interval_ms = 0
//!
//! [[dial_plans]]
//! name = "regular"
//!
//! [[dial_plans.routes]]
//! prefix = ""
//! mode = "priority"
//! carriers = [{ name = "beta" }, { name = "alpha", priority = 1 }]
//!
//! [[dial_plans.routes]]
//! prefix = "44"
//! mode = "weighted"
//! carriers = [{ name = "alpha", weight = 3 }, { name = "beta" }]
//!
//! [[dial_plans.routes]]
//! prefix = "44909"
//! blocked = true
//!
//! [number_rules]
//! national_prefix = "0"
//! country_code = "44"
//! blocked_prefixes = ["44871"]
//! "#;
//! let config: RoutingConfig = toml::from_str(text).unwrap();
//! assert_eq!(config.carriers[1].port, 5060);
//! assert_eq!(config.carriers[1].transport, Transport::Tcp);
//! assert_eq!(config.dial_plans[0].routes[1].carriers[1].weight, 1);
//! assert_eq!(config.number_rules.international_prefixes, ["00", "011", "+"]);
//!
//! let now = Instant::now();
//! let router = Router::new(config.carriers, config.dial_plans, HashMap::new(), now).unwrap();
//! let number = normalize("07700 900123", &config.number_rules).unwrap();
//! assert_eq!(number, "447700900123");
//! let start = talktime_billing::LocalStart::new(
//!     talktime_billing::Date::new(2025, 5, 1).unwrap(),
//!     talktime_billing::TimeOfDay::MIDNIGHT,
//! );
//! let route = router.route(&RouteRequest::new("regular", &number, start), now).unwrap();
//! assert_eq!(route.route_prefix, "44");
//! assert_eq!(route.targets.len(), 2);
//! let alpha = route.targets.iter().find(|t| t.carrier == "alpha").unwrap();
//! assert_eq!(alpha.request_user.expose(), "00447700900123");
//!
//! let blocked = router.route(&RouteRequest::new("regular", "449091234567", start), now);
//! assert!(matches!(blocked, Err(RouteError::Blocked { .. })));
//! assert!(toml::from_str::<RoutingConfig>("[[carriers]]\nname = \"x\"\nhost = \"h\"\ncolour = 1").is_err());
//! ```
//!
//! # Use from the shell
//!
//! 1. Normalize the dialled number with the access number's [`NumberRules`] ([`normalize`]);
//!    a [`NormalizeError::BlockedPrefix`] is refused before any carrier is tried.
//! 2. [`Router::route`] with the tariff's dial plan, the call's local start, the sell rate,
//!    the tariff's no-loss rule and a seed (a call counter will do).
//! 3. For each [`Target`] in order: [`Router::call_started`] (on error try the next), send
//!    the INVITE to `host:port` over `transport` with `request_user`; no 100 within
//!    `invite_timeout`, or a final failure for which [`Router::failover`] is true: call
//!    [`Router::call_ended`] and try the next target. Otherwise the response is final for the
//!    caller. Call [`Router::call_ended`] when the call ends.
//! 4. Health: at [`Router::poll_timeout`], send OPTIONS to each of [`Router::health_due`];
//!    report each outcome with [`Router::health_result`]; log [`Router::poll_event`]s.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod config;
mod explain;
mod health;
mod number;
mod router;
mod validate;

pub use config::{
    CallerIdRule, CarrierConfig, DialPlanConfig, RouteCarrier, RouteConfig, RouteMode,
    RoutingConfig, Transport,
};
pub use explain::Explanation;
pub use health::{HealthChange, MISSES_BEFORE_DOWN, TokenBucket};
pub use number::{MAX_E164_DIGITS, NormalizeError, NumberRules, caller_id_digits, normalize};
pub use router::{
    CapacityError, CarrierStatus, Credentials, Route, RouteError, RouteRequest, Router, SkipReason,
    Skipped, Target,
};
pub use validate::{ConfigError, ConfigErrors, validate};

/// Whether a carrier's final response means "try the next carrier".
///
/// `status` is `None` when the carrier sent nothing (no 100 Trying in time, or the INVITE
/// transaction timed out): that always fails over. With `codes` given, exactly those codes
/// fail over. The default rule: 5xx, 403 and 408 fail over; every other response (486 busy,
/// 480 unavailable, 404 not found, 603 declined, other 4xx and 6xx) is final for the caller,
/// since another carrier would give the same answer.
pub fn fails_over(codes: Option<&[u16]>, status: Option<u16>) -> bool {
    let Some(status) = status else {
        return true;
    };
    match codes {
        Some(codes) => codes.contains(&status),
        None => matches!(status, 500..=599 | 403 | 408),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_fail_over_by_default() {
        for status in [500, 502, 503, 504, 599, 403, 408] {
            assert!(fails_over(None, Some(status)), "{status}");
        }
    }

    #[test]
    fn callee_answers_are_final_by_default() {
        for status in [486, 480, 404, 603, 600, 484, 487, 401, 200, 302] {
            assert!(!fails_over(None, Some(status)), "{status}");
        }
    }

    #[test]
    fn no_response_always_fails_over() {
        assert!(fails_over(None, None));
        assert!(fails_over(Some(&[]), None));
        assert!(fails_over(Some(&[503]), None));
    }

    #[test]
    fn a_custom_list_replaces_the_default_rule() {
        let codes: &[u16] = &[503, 486];
        assert!(fails_over(Some(codes), Some(503)));
        assert!(fails_over(Some(codes), Some(486)));
        assert!(!fails_over(Some(codes), Some(500)));
        assert!(!fails_over(Some(codes), Some(403)));
    }
}
