//! Per-carrier state that changes at run time: OPTIONS health and capacity (concurrent calls
//! and a calls-per-second token bucket). Time is the caller's `Instant`.

use std::fmt;
use std::time::{Duration, Instant};

/// Consecutive unanswered OPTIONS pings after which a carrier is skipped.
pub const MISSES_BEFORE_DOWN: u32 = 2;

/// A carrier went down or came back, for the log and the call monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    pub carrier: String,
    pub up: bool,
    /// Unanswered pings in a row when the carrier went down (0 when it came back).
    pub consecutive_misses: u32,
    pub at: Instant,
}

impl fmt::Display for HealthChange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.up {
            write!(
                formatter,
                "carrier {} is up: it answered OPTIONS",
                self.carrier
            )
        } else {
            write!(
                formatter,
                "carrier {} is down: {} OPTIONS pings unanswered; calls skip it until it answers",
                self.carrier, self.consecutive_misses
            )
        }
    }
}

/// OPTIONS health of one carrier. A carrier starts up, so calls flow before the first ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    pub up: bool,
    pub misses: u32,
    /// `None` when the carrier is not checked (disabled, or an interval of 0).
    pub next_ping: Option<Instant>,
    pub interval: Duration,
}

impl Health {
    pub fn new(interval_ms: u64, checked: bool, now: Instant) -> Health {
        Health {
            up: true,
            misses: 0,
            next_ping: (checked && interval_ms > 0).then_some(now),
            interval: Duration::from_millis(interval_ms),
        }
    }

    /// Whether a ping is due; if so the next one is scheduled an interval from now.
    pub fn take_due(&mut self, now: Instant) -> bool {
        match self.next_ping {
            Some(due) if due <= now => {
                self.next_ping = Some(now + self.interval);
                true
            }
            _ => false,
        }
    }

    /// Records a ping's outcome; returns whether the carrier changed state.
    pub fn record(&mut self, answered: bool) -> bool {
        if answered {
            self.misses = 0;
            let changed = !self.up;
            self.up = true;
            return changed;
        }
        self.misses = self.misses.saturating_add(1);
        let changed = self.up && self.misses >= MISSES_BEFORE_DOWN;
        if changed {
            self.up = false;
        }
        changed
    }
}

/// A bucket holding at most one second of calls, refilled continuously; counted in
/// thousandths of a call so that no floats are needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    pub per_second: u32,
    milli_tokens: u64,
    updated: Option<Instant>,
}

impl TokenBucket {
    pub fn new(per_second: u32) -> TokenBucket {
        TokenBucket {
            per_second,
            milli_tokens: u64::from(per_second) * 1000,
            updated: None,
        }
    }

    fn available(&self, now: Instant) -> u64 {
        let capacity = u64::from(self.per_second) * 1000;
        let Some(updated) = self.updated else {
            return capacity;
        };
        let elapsed_micros = now.saturating_duration_since(updated).as_micros();
        // per_second calls a second = per_second thousandths of a call per millisecond.
        let refill = elapsed_micros.saturating_mul(u128::from(self.per_second)) / 1000;
        let refill = u64::try_from(refill).unwrap_or(u64::MAX);
        self.milli_tokens.saturating_add(refill).min(capacity)
    }

    pub fn has_call(&self, now: Instant) -> bool {
        self.available(now) >= 1000
    }

    /// Refilled to a whole second of calls: its owner has been idle that long.
    pub fn is_full(&self, now: Instant) -> bool {
        self.available(now) >= u64::from(self.per_second) * 1000
    }

    /// Takes one call's token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let available = self.available(now);
        if available < 1000 {
            return false;
        }
        self.milli_tokens = available - 1000;
        self.updated = Some(now);
        true
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests start their virtual clock from a real instant
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_of_one_second_then_refills() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2);
        assert!(bucket.take(start));
        assert!(bucket.take(start));
        assert!(!bucket.take(start));
        assert!(!bucket.has_call(start + Duration::from_millis(499)));
        assert!(bucket.take(start + Duration::from_millis(500)));
        assert!(!bucket.take(start + Duration::from_millis(500)));
        // Never more than one second's worth, however long it was idle.
        let later = start + Duration::from_secs(60);
        assert!(bucket.take(later) && bucket.take(later));
        assert!(!bucket.take(later));
    }

    #[test]
    fn health_goes_down_after_two_misses_and_up_after_one_answer() {
        let mut health = Health::new(1000, true, Instant::now());
        assert!(!health.record(false));
        assert!(health.up);
        assert!(health.record(false));
        assert!(!health.up);
        assert!(!health.record(false));
        assert!(health.record(true));
        assert!(health.up && health.misses == 0);
    }

    #[test]
    fn an_answer_resets_the_miss_count() {
        let mut health = Health::new(1000, true, Instant::now());
        health.record(false);
        health.record(true);
        assert!(!health.record(false));
        assert!(health.up);
    }
}
