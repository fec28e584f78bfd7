//! Alarms about abuse the per-call rules cannot see (issue 20): PIN failures across the whole
//! switch (a guessing campaign spread over many sources), many short answered calls to one
//! destination range (a fraud pattern: revenue-share numbers, test calls before a run), and
//! an account spending more in an hour than the operator expects.
//!
//! Each alarm is a `warn!` line with target `talktime::alarm`, said once when it starts (and
//! once per window while it lasts); no PIN or phone number is logged (a prefix of the
//! destination's first digits and an account id are). While PIN failures are above their rate,
//! every PIN answer is held back a fixed time (the same for right and wrong PINs, so the delay
//! tells a guesser nothing), which slows a campaign to a crawl while customers wait seconds.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tracing::warn;

/// `[alarms]` of the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmConfig {
    /// Wrong PINs a minute, from all sources together, that raise the alarm (0: off).
    pub pin_failures_per_minute: u32,
    /// While that alarm lasts, every PIN answer waits this long.
    pub pin_answer_delay_ms: u64,
    /// Answered calls shorter than this count as short.
    pub short_call_seconds: u32,
    /// Short calls to one prefix within `window_s` that raise an alarm (0: off).
    pub short_calls_per_prefix: u32,
    /// The destination digits a prefix is made of for that count.
    pub prefix_digits: usize,
    /// What an account may spend within `window_s` before an alarm (decimal text in its
    /// currency's units; empty: off).
    pub account_spend: String,
    pub window_s: u64,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        AlarmConfig {
            pin_failures_per_minute: 120,
            pin_answer_delay_ms: 3000,
            short_call_seconds: 6,
            short_calls_per_prefix: 30,
            prefix_digits: 6,
            account_spend: String::new(),
            window_s: 3600,
        }
    }
}

/// Entries kept per sliding window (a count never needs more than its threshold) and keys
/// kept at most (prefixes, accounts): memory stays bounded whatever a caller sends.
const MAX_KEYS: usize = 10_000;
const PIN_WINDOW: Duration = Duration::from_secs(60);

/// The alarms' state.
#[derive(Debug)]
pub struct Alarms {
    config: AlarmConfig,
    spend_limit_micros: Option<i64>,
    pin_failures: VecDeque<Instant>,
    pin_alarm_until: Option<Instant>,
    short_calls: HashMap<String, Window>,
    spend: HashMap<i64, Window>,
    /// Alarms raised since start, by kind (`/metrics`).
    pub raised: std::collections::BTreeMap<&'static str, u64>,
}

/// Events within a window, with when an alarm about them was last said.
#[derive(Debug, Default)]
struct Window {
    events: VecDeque<(Instant, i64)>,
    alarmed_at: Option<Instant>,
}

impl Window {
    /// Adds an event of `weight` and returns the window's total after dropping old events.
    fn add(&mut self, now: Instant, weight: i64, window: Duration, keep: usize) -> i64 {
        while let Some((at, _)) = self.events.front() {
            if now.duration_since(*at) < window && self.events.len() < keep.max(1) {
                break;
            }
            self.events.pop_front();
        }
        self.events.push_back((now, weight));
        self.events.iter().map(|(_, weight)| weight).sum()
    }

    /// Whether an alarm is due now (none said within the window).
    fn due(&mut self, now: Instant, window: Duration) -> bool {
        let due = self
            .alarmed_at
            .is_none_or(|at| now.duration_since(at) >= window);
        if due {
            self.alarmed_at = Some(now);
        }
        due
    }
}

impl Alarms {
    pub fn new(config: AlarmConfig) -> Alarms {
        let spend_limit_micros = talktime_billing::parse_micros(config.account_spend.trim()).ok();
        Alarms {
            config,
            spend_limit_micros,
            pin_failures: VecDeque::new(),
            pin_alarm_until: None,
            short_calls: HashMap::new(),
            spend: HashMap::new(),
            raised: std::collections::BTreeMap::new(),
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.config.window_s.max(1))
    }

    /// A wrong PIN anywhere on the switch.
    pub fn pin_failed(&mut self, now: Instant) {
        let threshold = self.config.pin_failures_per_minute as usize;
        if threshold == 0 {
            return;
        }
        while let Some(at) = self.pin_failures.front() {
            if now.duration_since(*at) < PIN_WINDOW && self.pin_failures.len() < threshold {
                break;
            }
            self.pin_failures.pop_front();
        }
        self.pin_failures.push_back(now);
        if self.pin_failures.len() < threshold {
            return;
        }
        if self.pin_alarm_until.is_none_or(|until| now >= until) {
            *self.raised.entry("pin_failures").or_default() += 1;
            warn!(
                target: "talktime::alarm",
                alarm = "pin_failures",
                per_minute = threshold,
                delay_ms = self.config.pin_answer_delay_ms,
                "wrong PINs above the alarm rate from all sources: PIN answers are delayed"
            );
        }
        self.pin_alarm_until = Some(now + PIN_WINDOW);
    }

    /// How long a PIN answer must wait now (zero unless the PIN alarm is on).
    pub fn pin_answer_delay(&self, now: Instant) -> Duration {
        match self.pin_alarm_until {
            Some(until) if now < until => Duration::from_millis(self.config.pin_answer_delay_ms),
            _ => Duration::ZERO,
        }
    }

    /// An answered attempt ended: `number` the E.164 destination, `charged_micros` what it
    /// costs the account.
    pub fn call_settled(
        &mut self,
        now: Instant,
        account: i64,
        number: &str,
        answered_ms: u64,
        charged_micros: i64,
    ) {
        if answered_ms == 0 {
            return;
        }
        let short = answered_ms < u64::from(self.config.short_call_seconds) * 1000;
        if short && self.config.short_calls_per_prefix > 0 {
            self.count_short_call(now, number);
        }
        if let Some(limit) = self.spend_limit_micros {
            self.count_spend(now, account, charged_micros, limit);
        }
    }

    fn count_short_call(&mut self, now: Instant, number: &str) {
        let prefix: String = number.chars().take(self.config.prefix_digits).collect();
        let window = self.window();
        let threshold = self.config.short_calls_per_prefix;
        prune(&mut self.short_calls, now, window);
        let entry = self.short_calls.entry(prefix.clone()).or_default();
        let count = entry.add(now, 1, window, threshold as usize);
        if count >= i64::from(threshold) && entry.due(now, window) {
            *self.raised.entry("short_calls").or_default() += 1;
            warn!(
                target: "talktime::alarm",
                alarm = "short_calls",
                prefix = %prefix,
                calls = count,
                window_s = window.as_secs(),
                "many short answered calls to one destination prefix"
            );
        }
    }

    fn count_spend(&mut self, now: Instant, account: i64, charged_micros: i64, limit: i64) {
        let window = self.window();
        prune(&mut self.spend, now, window);
        let entry = self.spend.entry(account).or_default();
        let spent = entry.add(now, charged_micros, window, usize::MAX);
        if spent > limit && entry.due(now, window) {
            *self.raised.entry("account_spend").or_default() += 1;
            warn!(
                target: "talktime::alarm",
                alarm = "account_spend",
                account,
                spent = %talktime_billing::format_micros(spent),
                window_s = window.as_secs(),
                "an account spent more than [alarms] account_spend"
            );
        }
    }
}

/// Drops keys whose last event left the window, once the map is at its bound.
fn prune<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Window>, now: Instant, window: Duration) {
    if map.len() < MAX_KEYS {
        return;
    }
    map.retain(|_, entry| {
        entry
            .events
            .back()
            .is_some_and(|(at, _)| now.duration_since(*at) < window)
    });
    if map.len() >= MAX_KEYS {
        map.clear();
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the virtual clock starts at a real instant
mod tests {
    use super::*;

    fn alarms() -> Alarms {
        Alarms::new(AlarmConfig {
            pin_failures_per_minute: 3,
            short_calls_per_prefix: 2,
            account_spend: "1.00".into(),
            window_s: 600,
            ..AlarmConfig::default()
        })
    }

    #[test]
    fn pin_answers_are_delayed_while_failures_are_above_the_rate() {
        let mut alarms = alarms();
        let start = Instant::now();
        alarms.pin_failed(start);
        alarms.pin_failed(start + Duration::from_secs(10));
        assert_eq!(
            alarms.pin_answer_delay(start + Duration::from_secs(11)),
            Duration::ZERO
        );
        alarms.pin_failed(start + Duration::from_secs(20));
        let delay = alarms.pin_answer_delay(start + Duration::from_secs(21));
        assert_eq!(delay, Duration::from_millis(3000));
        // A minute without failures ends it.
        assert_eq!(
            alarms.pin_answer_delay(start + Duration::from_secs(81)),
            Duration::ZERO
        );
    }

    #[test]
    fn failures_spread_wider_than_a_minute_raise_nothing() {
        let mut alarms = alarms();
        let start = Instant::now();
        for second in [0, 40, 80, 120] {
            alarms.pin_failed(start + Duration::from_secs(second));
        }
        assert_eq!(
            alarms.pin_answer_delay(start + Duration::from_secs(121)),
            Duration::ZERO
        );
    }

    #[test]
    fn short_calls_and_spend_are_counted_per_prefix_and_account() {
        let mut alarms = alarms();
        let start = Instant::now();
        alarms.call_settled(start, 7, "88213001", 2000, 100_000);
        alarms.call_settled(start, 7, "88213002", 3000, 100_000);
        assert_eq!(alarms.short_calls["882130"].events.len(), 2);
        assert!(alarms.short_calls["882130"].alarmed_at.is_some());
        alarms.call_settled(start, 7, "4420", 600_000, 900_000);
        assert!(alarms.spend[&7].alarmed_at.is_some());
        // Unanswered attempts count for nothing.
        alarms.call_settled(start, 8, "4420", 0, 0);
        assert!(!alarms.spend.contains_key(&8));
    }
}
