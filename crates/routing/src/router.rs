//! The router: which carriers to try for a call, in which order, and why the others were
//! skipped.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use talktime_billing::{LocalStart, RateDeck, least_cost_routes};
use talktime_pii::Pii;

use crate::config::{
    CallerIdRule, CarrierConfig, DialPlanConfig, RouteCarrier, RouteConfig, RouteMode, Transport,
};
use crate::health::{Health, HealthChange, TokenBucket};
use crate::validate::{ConfigErrors, validate};

/// What the shell knows about a call when it asks for carriers.
#[derive(Clone, Copy)]
pub struct RouteRequest<'a> {
    /// Dial plan name (chosen by the tariff or the access number).
    pub plan: &'a str,
    /// E.164 digits, as returned by [`crate::normalize`].
    pub number: &'a str,
    /// The call's local start: chooses the valid buy rate and its time-of-day period.
    pub start: LocalStart,
    /// The caller's sell rate for this destination, when known.
    pub sell_per_minute: Option<Decimal>,
    /// Skip carriers whose buy rate is above `sell_per_minute` (the tariff's no-loss rule).
    /// A carrier without a buy rate (priority and weighted routes) cannot be judged and is kept.
    pub refuse_loss: bool,
    /// Randomness for weighted routes (any value; the same seed gives the same order).
    pub seed: u64,
}

impl<'a> RouteRequest<'a> {
    pub fn new(plan: &'a str, number: &'a str, start: LocalStart) -> RouteRequest<'a> {
        RouteRequest {
            plan,
            number,
            start,
            sell_per_minute: None,
            refuse_loss: false,
            seed: 0,
        }
    }

    /// Sets the sell rate and whether loss-making carriers are refused.
    pub fn with_sell_rate(mut self, sell_per_minute: Decimal, refuse_loss: bool) -> Self {
        self.sell_per_minute = Some(sell_per_minute);
        self.refuse_loss = refuse_loss;
        self
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Never prints the number.
impl fmt::Debug for RouteRequest<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RouteRequest")
            .field("plan", &self.plan)
            .field("number", &Pii::new(self.number))
            .field("start", &self.start)
            .field("sell_per_minute", &self.sell_per_minute)
            .field("refuse_loss", &self.refuse_loss)
            .field("seed", &self.seed)
            .finish()
    }
}

/// Digest credentials for one carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Pii<String>,
}

/// One carrier to try, with everything the shell needs to send the INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub carrier: String,
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    /// The Request-URI user after the carrier's strip/add rewrite.
    pub request_user: Pii<String>,
    pub credentials: Option<Credentials>,
    pub caller_id: CallerIdRule,
    /// This carrier's buy rate for the number (time-of-day period applied), if it has a deck.
    pub buy_per_minute: Option<Decimal>,
    /// The prefix of the carrier's deck that matched.
    pub buy_prefix: Option<String>,
    /// No 100 Trying within this: fail over.
    pub invite_timeout: Duration,
    /// Why the carrier is in this position, for logs and `routes explain`.
    pub reason: String,
}

/// Why a carrier of the route was not offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Disabled,
    /// Missed [`crate::MISSES_BEFORE_DOWN`] OPTIONS pings and has not answered since.
    Unhealthy,
    AtMaxCalls {
        limit: u32,
    },
    OverCallsPerSecond {
        limit: u32,
    },
    /// Least-cost routes only: the carrier's deck has no rate for the number (or no deck).
    NoBuyRate,
    LossMaking {
        buy_per_minute: Decimal,
        sell_per_minute: Decimal,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Disabled => formatter.write_str("disabled"),
            SkipReason::Unhealthy => formatter.write_str("unhealthy (OPTIONS unanswered)"),
            SkipReason::AtMaxCalls { limit } => write!(formatter, "at its limit of {limit} calls"),
            SkipReason::OverCallsPerSecond { limit } => {
                write!(formatter, "over its limit of {limit} calls per second")
            }
            SkipReason::NoBuyRate => formatter.write_str("no buy rate for this number"),
            SkipReason::LossMaking {
                buy_per_minute,
                sell_per_minute,
            } => write!(
                formatter,
                "buy {buy_per_minute}/min is above sell {sell_per_minute}/min"
            ),
        }
    }
}

/// A carrier of the route that was not offered, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub carrier: String,
    pub reason: SkipReason,
}

/// The carriers to try for a call, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub plan: String,
    /// The dial-plan prefix that matched (`""` for a catch-all route).
    pub route_prefix: String,
    pub mode: RouteMode,
    /// Never empty.
    pub targets: Vec<Target>,
    pub skipped: Vec<Skipped>,
}

/// Why no carrier can be offered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no dial plan named {0:?}")]
    UnknownDialPlan(String),
    #[error("the number must be E.164 digits (normalize it first)")]
    InvalidNumber,
    #[error("dial plan {plan:?} has no route for this number")]
    NoRoute { plan: String },
    #[error("dial plan {plan:?} blocks destinations starting {prefix:?}")]
    Blocked { plan: String, prefix: String },
    #[error("no carrier available on route {prefix:?} of dial plan {plan:?} ({})", list_skipped(.skipped))]
    NoCarrierAvailable {
        plan: String,
        prefix: String,
        skipped: Vec<Skipped>,
    },
}

fn list_skipped(skipped: &[Skipped]) -> String {
    skipped
        .iter()
        .map(|skip| format!("{}: {}", skip.carrier, skip.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The carrier could not take another call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    #[error("no carrier named {0:?}")]
    UnknownCarrier(String),
    #[error("carrier {carrier:?} is at its limit of {limit} calls")]
    AtMaxCalls { carrier: String, limit: u32 },
    #[error("carrier {carrier:?} is over its limit of {limit} calls per second")]
    OverCallsPerSecond { carrier: String, limit: u32 },
}

/// A carrier's run-time state, for the call monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierStatus {
    pub name: String,
    pub enabled: bool,
    pub up: bool,
    pub consecutive_misses: u32,
    pub active_calls: u32,
}

#[derive(Debug, Clone)]
struct CarrierState {
    config: CarrierConfig,
    active_calls: u32,
    bucket: Option<TokenBucket>,
    health: Health,
}

impl CarrierState {
    fn new(config: CarrierConfig, now: Instant) -> CarrierState {
        CarrierState {
            bucket: config.calls_per_second.map(TokenBucket::new),
            health: Health::new(config.options_interval_ms, config.enabled, now),
            active_calls: 0,
            config,
        }
    }

    /// The first reason not to offer this carrier now, ignoring price.
    fn unavailable(&self, now: Instant) -> Option<SkipReason> {
        if !self.config.enabled {
            return Some(SkipReason::Disabled);
        }
        if !self.health.up {
            return Some(SkipReason::Unhealthy);
        }
        if let Some(limit) = self.config.max_calls
            && self.active_calls >= limit
        {
            return Some(SkipReason::AtMaxCalls { limit });
        }
        if let Some(bucket) = &self.bucket
            && !bucket.has_call(now)
        {
            return Some(SkipReason::OverCallsPerSecond {
                limit: bucket.per_second,
            });
        }
        None
    }
}

/// A carrier that passed every check, before ordering.
struct Candidate<'router> {
    listed: &'router RouteCarrier,
    carrier: &'router CarrierState,
    buy: Option<(String, Decimal)>,
}

/// What [`Router::evaluate`] found; `route` and `explain` present it differently.
struct Evaluation {
    route_prefix: String,
    mode: RouteMode,
    blocked: bool,
    targets: Vec<Target>,
    skipped: Vec<Skipped>,
}

/// Carriers, dial plans and buy rates, plus each carrier's health and capacity.
///
/// One instance is shared by all calls (behind a mutex in the shell); every method is quick
/// and allocation-light, with no IO. The default routes nowhere.
#[derive(Debug, Default)]
pub struct Router {
    carriers: Vec<CarrierState>,
    carrier_positions: HashMap<String, usize>,
    /// Routes of each plan, longest prefix first.
    plans: HashMap<String, Vec<RouteConfig>>,
    buy_rates: HashMap<String, Arc<RateDeck>>,
    events: VecDeque<HealthChange>,
}

impl Router {
    /// Validates the configuration and builds the router. `buy_rates` maps carrier names to
    /// their buy-rate decks; carriers without one have no buy rate (skipped by least-cost
    /// routes). Health checks of every enabled carrier are due at `now`.
    pub fn new(
        carriers: Vec<CarrierConfig>,
        dial_plans: Vec<DialPlanConfig>,
        buy_rates: HashMap<String, Arc<RateDeck>>,
        now: Instant,
    ) -> Result<Router, ConfigErrors> {
        validate(&carriers, &dial_plans)?;
        let carrier_positions = carriers
            .iter()
            .enumerate()
            .map(|(position, carrier)| (carrier.name.clone(), position))
            .collect();
        let carriers = carriers
            .into_iter()
            .map(|config| CarrierState::new(config, now))
            .collect();
        let plans = dial_plans
            .into_iter()
            .map(|plan| {
                let mut routes = plan.routes;
                routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
                (plan.name, routes)
            })
            .collect();
        Ok(Router {
            carriers,
            carrier_positions,
            plans,
            buy_rates,
            events: VecDeque::new(),
        })
    }

    /// Replaces the configuration, keeping the calls in progress, health and call-rate state
    /// of carriers that keep their name. On error nothing changes.
    pub fn reload(
        &mut self,
        carriers: Vec<CarrierConfig>,
        dial_plans: Vec<DialPlanConfig>,
        buy_rates: HashMap<String, Arc<RateDeck>>,
        now: Instant,
    ) -> Result<(), ConfigErrors> {
        let mut fresh = Router::new(carriers, dial_plans, buy_rates, now)?;
        for state in &mut fresh.carriers {
            let Some(old) = self.state(&state.config.name) else {
                continue;
            };
            state.active_calls = old.active_calls;
            if old.config.calls_per_second == state.config.calls_per_second {
                state.bucket.clone_from(&old.bucket);
            }
            // Health carries over while the carrier stays checked; a new interval starts now.
            if state.health.next_ping.is_some() && old.health.next_ping.is_some() {
                state.health.up = old.health.up;
                state.health.misses = old.health.misses;
                if old.health.interval == state.health.interval {
                    state.health.next_ping = old.health.next_ping;
                }
            }
        }
        fresh.events = std::mem::take(&mut self.events);
        *self = fresh;
        Ok(())
    }

    fn state(&self, carrier: &str) -> Option<&CarrierState> {
        self.carrier_positions
            .get(carrier)
            .map(|&position| &self.carriers[position])
    }

    fn state_mut(&mut self, carrier: &str) -> Option<&mut CarrierState> {
        self.carrier_positions
            .get(carrier)
            .map(|&position| &mut self.carriers[position])
    }

    pub fn carrier(&self, name: &str) -> Option<&CarrierConfig> {
        self.state(name).map(|state| &state.config)
    }

    /// Every carrier's state, in configuration order.
    pub fn carrier_status(&self) -> Vec<CarrierStatus> {
        self.carriers
            .iter()
            .map(|state| CarrierStatus {
                name: state.config.name.clone(),
                enabled: state.config.enabled,
                up: state.health.up,
                consecutive_misses: state.health.misses,
                active_calls: state.active_calls,
            })
            .collect()
    }

    /// The carriers to try, best first, or why there are none.
    pub fn route(&self, request: &RouteRequest<'_>, now: Instant) -> Result<Route, RouteError> {
        let evaluation = self.evaluate(request, now)?;
        let plan = request.plan.to_owned();
        if evaluation.blocked {
            return Err(RouteError::Blocked {
                plan,
                prefix: evaluation.route_prefix,
            });
        }
        if evaluation.targets.is_empty() {
            return Err(RouteError::NoCarrierAvailable {
                plan,
                prefix: evaluation.route_prefix,
                skipped: evaluation.skipped,
            });
        }
        Ok(Route {
            plan,
            route_prefix: evaluation.route_prefix,
            mode: evaluation.mode,
            targets: evaluation.targets,
            skipped: evaluation.skipped,
        })
    }

    /// The same decision as [`Router::route`], kept whole for `talktime routes explain`:
    /// a blocked route or one with every carrier skipped is an explanation, not an error.
    pub fn explain(
        &self,
        request: &RouteRequest<'_>,
        now: Instant,
    ) -> Result<crate::Explanation, RouteError> {
        let evaluation = self.evaluate(request, now)?;
        Ok(crate::Explanation {
            plan: request.plan.to_owned(),
            number: Pii::new(request.number.to_owned()),
            route_prefix: evaluation.route_prefix,
            mode: evaluation.mode,
            blocked: evaluation.blocked,
            targets: evaluation.targets,
            skipped: evaluation.skipped,
        })
    }

    fn evaluate(&self, request: &RouteRequest<'_>, now: Instant) -> Result<Evaluation, RouteError> {
        let routes = self
            .plans
            .get(request.plan)
            .ok_or_else(|| RouteError::UnknownDialPlan(request.plan.to_owned()))?;
        let number = request.number;
        if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(RouteError::InvalidNumber);
        }
        let route = routes
            .iter()
            .find(|route| number.starts_with(route.prefix.as_str()))
            .ok_or_else(|| RouteError::NoRoute {
                plan: request.plan.to_owned(),
            })?;
        let mut evaluation = Evaluation {
            route_prefix: route.prefix.clone(),
            mode: route.mode,
            blocked: route.blocked,
            targets: Vec::new(),
            skipped: Vec::new(),
        };
        if route.blocked {
            return Ok(evaluation);
        }
        let mut candidates = Vec::new();
        for listed in &route.carriers {
            // Validation guarantees every listed carrier exists.
            let Some(carrier) = self.state(&listed.name) else {
                continue;
            };
            let buy = self.buy_rate(&listed.name, number, &request.start);
            match skip_reason(carrier, route.mode, buy.as_ref(), request, now) {
                Some(reason) => evaluation.skipped.push(Skipped {
                    carrier: listed.name.clone(),
                    reason,
                }),
                None => candidates.push(Candidate {
                    listed,
                    carrier,
                    buy,
                }),
            }
        }
        evaluation.targets = order(candidates, route.mode, request.seed)
            .into_iter()
            .map(|(candidate, reason)| target(candidate, number, reason))
            .collect();
        Ok(evaluation)
    }

    /// The carrier's buy rate for `number` at `start` and the deck prefix it came from.
    fn buy_rate(
        &self,
        carrier: &str,
        number: &str,
        start: &LocalStart,
    ) -> Option<(String, Decimal)> {
        let deck = self.buy_rates.get(carrier)?;
        least_cost_routes([((), deck.as_ref())], number, start)
            .into_iter()
            .next()
            .map(|offer| (offer.rate.prefix.clone(), offer.buy_per_minute))
    }

    /// Whether a final response from `carrier` (`None`: no response, or no 100 Trying in
    /// time) means "try the next carrier". Unknown carriers use the default rule.
    pub fn failover(&self, carrier: &str, status: Option<u16>) -> bool {
        match self.state(carrier) {
            Some(state) => state.config.fails_over(status),
            None => crate::fails_over(None, status),
        }
    }

    /// Counts a call sent to `carrier`, if it has room: a concurrent slot and, when limited,
    /// a calls-per-second token. On error nothing is counted; try the next target.
    pub fn call_started(&mut self, carrier: &str, now: Instant) -> Result<(), CapacityError> {
        let state = self
            .state_mut(carrier)
            .ok_or_else(|| CapacityError::UnknownCarrier(carrier.to_owned()))?;
        if let Some(limit) = state.config.max_calls
            && state.active_calls >= limit
        {
            return Err(CapacityError::AtMaxCalls {
                carrier: carrier.to_owned(),
                limit,
            });
        }
        if let Some(bucket) = &mut state.bucket
            && !bucket.take(now)
        {
            return Err(CapacityError::OverCallsPerSecond {
                carrier: carrier.to_owned(),
                limit: bucket.per_second,
            });
        }
        state.active_calls += 1;
        Ok(())
    }

    /// A call counted by [`Router::call_started`] ended (or its attempt failed).
    pub fn call_ended(&mut self, carrier: &str) {
        if let Some(state) = self.state_mut(carrier) {
            state.active_calls = state.active_calls.saturating_sub(1);
        }
    }

    /// Carriers whose OPTIONS ping is due; each is scheduled again one interval from `now`.
    pub fn health_due(&mut self, now: Instant) -> Vec<String> {
        self.carriers
            .iter_mut()
            .filter_map(|state| {
                state
                    .health
                    .take_due(now)
                    .then(|| state.config.name.clone())
            })
            .collect()
    }

    /// The outcome of a ping sent after [`Router::health_due`]: any response counts as
    /// answered; a transaction timeout counts as a miss.
    pub fn health_result(&mut self, carrier: &str, answered: bool, now: Instant) {
        let Some(state) = self.state_mut(carrier) else {
            return;
        };
        if state.health.next_ping.is_none() || !state.health.record(answered) {
            return;
        }
        let change = HealthChange {
            carrier: carrier.to_owned(),
            up: state.health.up,
            consecutive_misses: state.health.misses,
            at: now,
        };
        self.events.push_back(change);
    }

    /// When [`Router::health_due`] next has something to return.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.carriers
            .iter()
            .filter_map(|state| state.health.next_ping)
            .min()
    }

    /// The next carrier that went down or came back, oldest first.
    pub fn poll_event(&mut self) -> Option<HealthChange> {
        self.events.pop_front()
    }
}

fn skip_reason(
    carrier: &CarrierState,
    mode: RouteMode,
    buy: Option<&(String, Decimal)>,
    request: &RouteRequest<'_>,
    now: Instant,
) -> Option<SkipReason> {
    if let Some(reason) = carrier.unavailable(now) {
        return Some(reason);
    }
    let Some((_, buy_per_minute)) = buy else {
        return (mode == RouteMode::LeastCost).then_some(SkipReason::NoBuyRate);
    };
    match request.sell_per_minute {
        Some(sell_per_minute) if request.refuse_loss && *buy_per_minute > sell_per_minute => {
            Some(SkipReason::LossMaking {
                buy_per_minute: *buy_per_minute,
                sell_per_minute,
            })
        }
        _ => None,
    }
}

/// Candidates in the order to try them, each with the reason for its place.
fn order(
    mut candidates: Vec<Candidate<'_>>,
    mode: RouteMode,
    seed: u64,
) -> Vec<(Candidate<'_>, String)> {
    match mode {
        RouteMode::Priority => {
            // Stable: equal priorities keep the order listed.
            candidates.sort_by_key(|candidate| candidate.listed.priority);
            candidates
                .into_iter()
                .map(|candidate| {
                    let reason = format!("priority {}", candidate.listed.priority);
                    (candidate, reason)
                })
                .collect()
        }
        RouteMode::LeastCost => {
            candidates.sort_by(|left, right| {
                let price = |candidate: &Candidate<'_>| candidate.buy.as_ref().map(|(_, buy)| *buy);
                price(left)
                    .cmp(&price(right))
                    .then(left.listed.priority.cmp(&right.listed.priority))
                    .then(left.listed.name.cmp(&right.listed.name))
            });
            candidates
                .into_iter()
                .map(|candidate| {
                    let reason = match &candidate.buy {
                        Some((prefix, buy)) => format!(
                            "least cost: buy {buy}/min for {prefix}, priority {}",
                            candidate.listed.priority
                        ),
                        None => "least cost: no buy rate".to_owned(),
                    };
                    (candidate, reason)
                })
                .collect()
        }
        RouteMode::Weighted => {
            let total: u64 = candidates
                .iter()
                .map(|candidate| u64::from(candidate.listed.weight))
                .sum();
            weighted_order(candidates, seed)
                .into_iter()
                .map(|candidate| {
                    let reason = format!("weighted: weight {} of {total}", candidate.listed.weight);
                    (candidate, reason)
                })
                .collect()
        }
    }
}

/// Draws without replacement: each draw picks a remaining candidate with probability
/// weight / remaining total, so the first carrier is `i` in `weight_i / total` of seeds.
fn weighted_order(mut remaining: Vec<Candidate<'_>>, seed: u64) -> Vec<Candidate<'_>> {
    let mut state = seed;
    let mut ordered = Vec::with_capacity(remaining.len());
    while !remaining.is_empty() {
        let total: u64 = remaining
            .iter()
            .map(|candidate| u64::from(candidate.listed.weight))
            .sum();
        let position = if total == 0 {
            0
        } else {
            let mut draw = split_mix(&mut state) % total;
            remaining
                .iter()
                .position(|candidate| {
                    let weight = u64::from(candidate.listed.weight);
                    if draw < weight {
                        return true;
                    }
                    draw -= weight;
                    false
                })
                .unwrap_or(0)
        };
        ordered.push(remaining.remove(position));
    }
    ordered
}

/// splitmix64: spreads consecutive seeds (call counters) into well-mixed draws.
fn split_mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut value = *state;
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

fn target(candidate: Candidate<'_>, number: &str, reason: String) -> Target {
    let config = &candidate.carrier.config;
    let credentials = match (&config.username, &config.password) {
        (Some(username), Some(password)) => Some(Credentials {
            username: username.clone(),
            password: Pii::new(password.clone()),
        }),
        _ => None,
    };
    let (buy_prefix, buy_per_minute) = candidate.buy.unzip();
    Target {
        carrier: config.name.clone(),
        host: config.host.clone(),
        port: config.port,
        transport: config.transport,
        request_user: Pii::new(config.rewrite(number)),
        credentials,
        caller_id: config.caller_id.clone(),
        buy_per_minute,
        buy_prefix,
        invite_timeout: Duration::from_millis(config.invite_timeout_ms),
        reason,
    }
}
