//! Admission control (issue 20): a source address may start so many calls a second and hold
//! so many at once, and the switch holds so many in all; beyond that an INVITE to an access
//! number gets 503 with Retry-After before any media or ledger work is spent on it. A
//! `[[peers]]` entry may set its own limits (a gateway carries many callers).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use talktime_routing::TokenBucket;

use crate::config::{AdmissionConfig, PeerTrust};

/// Sources remembered at most; past it, those whose bucket is full again (idle) are dropped,
/// so a flood from spoofed addresses cannot grow the table without bound.
const MAX_SOURCES: usize = 10_000;

/// Why a new call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The source started too many calls this second.
    SourceRate,
    /// The source has too many calls up.
    SourceCalls,
    /// The switch has too many calls up.
    SwitchFull,
}

impl Refusal {
    /// Seconds the caller is told to wait.
    pub(crate) fn retry_after_s(self) -> u32 {
        match self {
            Refusal::SourceRate => 1,
            Refusal::SourceCalls | Refusal::SwitchFull => 5,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::SourceRate => "calls per second from the source",
            Refusal::SourceCalls => "calls up from the source",
            Refusal::SwitchFull => "calls up on the switch",
        }
    }
}

/// Ledger requests in flight the switch never refuses a call for (at light load the rate of
/// answers says little: two slow requests are no overload).
const LEDGER_FREE_BACKLOG: usize = 512;
/// Ledger requests in flight above which every new call is refused, however fast the ledger
/// answers (bounds the memory of a backlog).
const LEDGER_MAX_BACKLOG: usize = 8192;
/// The longest a new ledger request is expected to wait, in milliseconds, before new calls
/// are refused: the backlog divided by the rate at which the ledger answers. 100 ms (with 128
/// free) halved PostgreSQL's latency offered 1,000 calls/s but refused SQLite calls at
/// 1,400/s in a moment's pause (docs/PERFORMANCE.md).
const LEDGER_MAX_DELAY_MS: u64 = 250;
/// Answers are counted over windows this long.
const LEDGER_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);

/// How far behind the ledger is (issue 19). New calls are refused by the delay a request can
/// expect (the backlog over the rate of answers), not by the backlog alone: a fixed backlog
/// limit of 512 refused calls in bursts whenever the ledger paused for a moment at 1,400
/// calls/s (one COMMIT group, a checkpoint), and the refusals came back a hold time later as a
/// wave of settles; a faster ledger may carry a longer backlog for the same delay.
#[derive(Debug, Default)]
pub(crate) struct LedgerPace {
    /// Requests sent and not yet answered.
    pub(crate) in_flight: usize,
    window_start: Option<Instant>,
    answers_this_window: u64,
    answers_last_window: u64,
}

impl LedgerPace {
    pub(crate) fn sent(&mut self) {
        self.in_flight += 1;
    }

    pub(crate) fn answered(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.roll(now);
        self.answers_this_window += 1;
    }

    /// The backlog when a new call should be refused for it, else `None`.
    pub(crate) fn overloaded(&mut self, now: Instant) -> Option<usize> {
        self.roll(now);
        let backlog = self.in_flight;
        if backlog <= LEDGER_FREE_BACKLOG {
            return None;
        }
        if backlog > LEDGER_MAX_BACKLOG {
            return Some(backlog);
        }
        let window_ms = LEDGER_WINDOW.as_millis().max(1) as u64;
        let answers_per_second = self.answers_last_window * 1000 / window_ms;
        let backlog_u64 = u64::try_from(backlog).unwrap_or(u64::MAX);
        let delay_ms = backlog_u64.saturating_mul(1000) / answers_per_second.max(1);
        (delay_ms > LEDGER_MAX_DELAY_MS).then_some(backlog)
    }

    /// Starts a new window when the current one is over (an idle stretch counts as windows
    /// without answers).
    fn roll(&mut self, now: Instant) {
        let Some(start) = self.window_start else {
            self.window_start = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed < LEDGER_WINDOW {
            return;
        }
        self.answers_last_window = if elapsed < LEDGER_WINDOW * 2 {
            self.answers_this_window
        } else {
            0
        };
        self.answers_this_window = 0;
        self.window_start = Some(now);
    }
}

/// New-call buckets and calls up, per source address.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    buckets: HashMap<IpAddr, TokenBucket>,
    calls_up: HashMap<IpAddr, u32>,
}

impl Admission {
    /// Admits a new call from `source` (taking its token) or says why not. `calls_up` is the
    /// asking core's, held to its share of `max_calls` (one of `cores`).
    pub(crate) fn admit(
        &mut self,
        config: &AdmissionConfig,
        cores: usize,
        trust: &PeerTrust,
        source: IpAddr,
        calls_up: usize,
        now: Instant,
    ) -> Result<(), Refusal> {
        if config.max_calls > 0 && calls_up >= (config.max_calls as usize).div_ceil(cores.max(1)) {
            return Err(Refusal::SwitchFull);
        }
        let per_source = trust.max_calls.unwrap_or(config.calls_per_source);
        let held = self.calls_up.get(&source).copied().unwrap_or(0);
        if per_source > 0 && held >= per_source {
            return Err(Refusal::SourceCalls);
        }
        let rate = trust
            .calls_per_second
            .unwrap_or(config.calls_per_second_per_source);
        if rate > 0 {
            if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&source) {
                self.buckets.retain(|_, bucket| !bucket.is_full(now));
            }
            let bucket = self
                .buckets
                .entry(source)
                .or_insert_with(|| TokenBucket::new(rate));
            if !bucket.take(now) {
                return Err(Refusal::SourceRate);
            }
        }
        Ok(())
    }

    pub(crate) fn call_started(&mut self, source: IpAddr) {
        *self.calls_up.entry(source).or_default() += 1;
    }

    pub(crate) fn call_ended(&mut self, source: IpAddr) {
        if let Some(held) = self.calls_up.get_mut(&source) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                self.calls_up.remove(&source);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the virtual clock starts at a real instant
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(per_second: u32, per_source: u32, max: u32) -> AdmissionConfig {
        AdmissionConfig {
            calls_per_second_per_source: per_second,
            calls_per_source: per_source,
            max_calls: max,
        }
    }

    #[test]
    fn a_source_gets_its_rate_and_no_more_while_another_is_untouched() {
        let config = limits(5, 0, 0);
        let mut admission = Admission::default();
        let start = Instant::now();
        let (flood, other): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let trust = PeerTrust::default();
        let admitted = (0..50)
            .filter(|_| admission.admit(&config, 1, &trust, flood, 0, start).is_ok())
            .count();
        assert_eq!(admitted, 5, "a burst of one second's calls");
        assert_eq!(
            admission.admit(&config, 1, &trust, flood, 0, start),
            Err(Refusal::SourceRate)
        );
        assert!(admission.admit(&config, 1, &trust, other, 0, start).is_ok());
        // A fifth of a second later, one more call's token.
        let later = start + Duration::from_millis(200);
        assert!(admission.admit(&config, 1, &trust, flood, 0, later).is_ok());
        assert!(
            admission
                .admit(&config, 1, &trust, flood, 0, later)
                .is_err()
        );
    }

    #[test]
    fn calls_up_per_source_and_on_the_switch_are_bounded_and_freed() {
        let config = limits(0, 2, 3);
        let mut admission = Admission::default();
        let now = Instant::now();
        let source: IpAddr = "192.0.2.1".parse().unwrap();
        let trust = PeerTrust::default();
        for _ in 0..2 {
            admission.admit(&config, 1, &trust, source, 0, now).unwrap();
            admission.call_started(source);
        }
        assert_eq!(
            admission.admit(&config, 1, &trust, source, 2, now),
            Err(Refusal::SourceCalls)
        );
        admission.call_ended(source);
        assert!(admission.admit(&config, 1, &trust, source, 1, now).is_ok());
        let other: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(
            admission.admit(&config, 1, &trust, other, 3, now),
            Err(Refusal::SwitchFull)
        );
    }

    #[test]
    fn a_peer_with_its_own_limits_is_held_to_those() {
        let config = limits(1, 1, 0);
        let mut admission = Admission::default();
        let now = Instant::now();
        let gateway: IpAddr = "198.51.100.7".parse().unwrap();
        let trust = PeerTrust {
            access: true,
            calls_per_second: Some(0),
            max_calls: Some(0),
            ..PeerTrust::default()
        };
        for _ in 0..100 {
            admission
                .admit(&config, 1, &trust, gateway, 0, now)
                .unwrap();
            admission.call_started(gateway);
        }
    }

    #[test]
    fn a_flood_from_many_addresses_keeps_the_table_bounded() {
        let config = limits(1, 0, 0);
        let mut admission = Admission::default();
        let start = Instant::now();
        let trust = PeerTrust::default();
        for index in 0..30_000u32 {
            let source = IpAddr::from(index.wrapping_add(0x0a00_0000).to_be_bytes());
            // Two seconds between waves: earlier buckets are full again, so they go.
            let now = start + Duration::from_secs(u64::from(index / 5_000) * 2);
            let _ = admission.admit(&config, 1, &trust, source, 0, now);
        }
        assert!(
            admission.buckets.len() <= MAX_SOURCES,
            "{}",
            admission.buckets.len()
        );
    }

    /// `pace` with `in_flight` requests out, after one full window in which `answers` came.
    fn paced(in_flight: usize, answers: u64) -> (LedgerPace, Instant) {
        let start = Instant::now();
        let mut pace = LedgerPace::default();
        for _ in 0..in_flight as u64 + answers {
            pace.sent();
        }
        pace.overloaded(start);
        let step = LEDGER_WINDOW / u32::try_from(answers.max(1)).unwrap();
        for index in 0..answers {
            pace.answered(start + step * u32::try_from(index).unwrap());
        }
        (pace, start + LEDGER_WINDOW)
    }

    #[test]
    fn the_ledger_backlog_refuses_calls_by_the_delay_it_means() {
        // A short backlog is never refused, even with no answers at all.
        let (mut pace, now) = paced(LEDGER_FREE_BACKLOG, 0);
        assert_eq!(pace.overloaded(now), None);
        // 2,000 waiting while 1,000 answers came in 100 ms: 200 ms to wait, admitted.
        let (mut pace, now) = paced(2000, 1000);
        assert_eq!(pace.in_flight, 2000);
        assert_eq!(pace.overloaded(now), None);
        // The same backlog at a tenth of that pace: 2 s to wait, refused.
        let (mut pace, now) = paced(2000, 100);
        assert_eq!(pace.overloaded(now), Some(2000));
        // A ledger that stopped answering (a window and more without answers) is refused.
        let (mut pace, now) = paced(600, 1000);
        assert_eq!(pace.overloaded(now), None);
        assert_eq!(pace.overloaded(now + LEDGER_WINDOW * 2), Some(600));
        // However fast it answers, a backlog past the bound is refused.
        let (mut pace, now) = paced(LEDGER_MAX_BACKLOG + 1, 10_000);
        assert_eq!(pace.overloaded(now), Some(LEDGER_MAX_BACKLOG + 1));
    }
}
