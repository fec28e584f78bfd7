//! Timer values of RFC 3261 §17 (table 4 of Appendix A) and the RFC 6026 timers L and M.

use std::time::Duration;

/// The three base intervals every transaction timer is derived from.
///
/// Defaults are the RFC values: T1 = 500 ms (RTT estimate), T2 = 4 s (maximum retransmit
/// interval for non-INVITE requests and INVITE responses), T4 = 5 s (maximum time a message
/// stays in the network). `timer_d` is kept separate because §17.1.1.2 fixes it at
/// "at least 32 s" on unreliable transports rather than deriving it from T1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    /// How long the INVITE client transaction absorbs retransmitted final responses (UDP).
    pub timer_d: Duration,
    /// Delay after which the INVITE server transaction sends 100 Trying on its own if the
    /// TU has not sent any response yet (§17.2.1: "within 200 ms").
    pub trying_delay: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
            trying_delay: Duration::from_millis(200),
        }
    }
}

/// Every timer a transaction can arm, named as in the RFCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE client: retransmit the INVITE (UDP only), doubling.
    A,
    /// INVITE client: give up waiting for any response (64*T1).
    B,
    /// INVITE client: leave Completed (absorbs final response retransmissions).
    D,
    /// Non-INVITE client: retransmit the request (UDP only), doubling up to T2.
    E,
    /// Non-INVITE client: give up waiting for a final response (64*T1).
    F,
    /// INVITE server: retransmit the non-2xx final response (UDP only), doubling up to T2.
    G,
    /// INVITE server: give up waiting for the ACK (64*T1).
    H,
    /// INVITE server: leave Confirmed (absorbs ACK retransmissions).
    I,
    /// Non-INVITE server: leave Completed (absorbs request retransmissions).
    J,
    /// Non-INVITE client: leave Completed (absorbs response retransmissions).
    K,
    /// INVITE server (RFC 6026): leave Accepted.
    L,
    /// INVITE client (RFC 6026): leave Accepted (absorbs 2xx retransmissions and forks).
    M,
    /// INVITE server: send 100 Trying if the TU has been silent for 200 ms.
    Trying,
    /// INVITE client after we sent CANCEL: give up on a final response (§9.1, 64*T1).
    CancelGuard,
}

/// The timer durations for one transaction, given whether its transport is reliable.
///
/// §17.1.1.2 and §17.1.2.2: on reliable transports the retransmit timers are not used and the
/// "absorb retransmissions" timers (D, I, J, K) are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durations {
    config: TimerConfig,
    reliable: bool,
}

impl Durations {
    pub fn new(config: TimerConfig, reliable: bool) -> Self {
        Durations { config, reliable }
    }

    pub fn reliable(&self) -> bool {
        self.reliable
    }

    pub fn config(&self) -> &TimerConfig {
        &self.config
    }

    /// 64*T1, the common transaction timeout (timers B, F, H, L, M and the 2xx give-up).
    pub fn timeout(&self) -> Duration {
        self.config.t1.saturating_mul(64)
    }

    /// First interval of a retransmit timer (A, E, G); `None` on reliable transports.
    pub fn first_retransmit(&self) -> Option<Duration> {
        if self.reliable {
            None
        } else {
            Some(self.config.t1)
        }
    }

    /// Next interval of timer A: doubles without a cap (§17.1.1.2).
    pub fn next_a(&self, current: Duration) -> Duration {
        current.saturating_mul(2)
    }

    /// Next interval of timers E and G: doubles, capped at T2.
    pub fn next_capped(&self, current: Duration) -> Duration {
        current.saturating_mul(2).min(self.config.t2)
    }

    pub fn t2(&self) -> Duration {
        self.config.t2
    }

    pub fn d(&self) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            self.config.timer_d
        }
    }

    pub fn i(&self) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            self.config.t4
        }
    }

    pub fn j(&self) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            self.timeout()
        }
    }

    pub fn k(&self) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            self.config.t4
        }
    }

    pub fn trying(&self) -> Duration {
        self.config.trying_delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreliable_values_follow_the_rfc_table() {
        let durations = Durations::new(TimerConfig::default(), false);
        assert_eq!(durations.timeout(), Duration::from_secs(32));
        assert_eq!(
            durations.first_retransmit(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(durations.d(), Duration::from_secs(32));
        assert_eq!(durations.i(), Duration::from_secs(5));
        assert_eq!(durations.j(), Duration::from_secs(32));
        assert_eq!(durations.k(), Duration::from_secs(5));
        assert_eq!(
            durations.next_capped(Duration::from_secs(2)),
            Duration::from_secs(4)
        );
        assert_eq!(
            durations.next_capped(Duration::from_secs(4)),
            Duration::from_secs(4)
        );
        assert_eq!(
            durations.next_a(Duration::from_secs(4)),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn reliable_transports_zero_the_absorb_timers() {
        let durations = Durations::new(TimerConfig::default(), true);
        assert_eq!(durations.first_retransmit(), None);
        assert_eq!(durations.d(), Duration::ZERO);
        assert_eq!(durations.i(), Duration::ZERO);
        assert_eq!(durations.j(), Duration::ZERO);
        assert_eq!(durations.k(), Duration::ZERO);
        assert_eq!(durations.timeout(), Duration::from_secs(32));
    }
}
