//! What a single transaction asks its layer to do after handling an input.

use std::time::Instant;

use super::timer::Timer;
use crate::{Message, Response};

/// Why a transaction gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// Timer B or F: the request got no (final) response.
    NoResponse,
    /// Timer H: our non-2xx final response to an INVITE was never ACKed.
    NoAck,
    /// §9.1: we sent CANCEL but the INVITE got no final response within 64*T1.
    CancelUnanswered,
}

/// Outputs of one step of one transaction; the layer turns them into transmits, events and
/// heap entries.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub send: Vec<Message>,
    pub deliver: Vec<Response>,
    pub arm: Vec<(Timer, Instant)>,
    pub timeout: Option<TimeoutKind>,
    pub terminated: bool,
}

/// The timers currently armed on one transaction. Firing entries in the layer's heap that
/// no longer match an armed timer are stale and ignored.
#[derive(Debug, Default, Clone)]
pub(crate) struct Armed {
    timers: Vec<(Timer, Instant)>,
}

impl Armed {
    pub fn arm(&mut self, timer: Timer, at: Instant, effects: &mut Effects) {
        self.disarm(timer);
        self.timers.push((timer, at));
        effects.arm.push((timer, at));
    }

    pub fn disarm(&mut self, timer: Timer) {
        self.timers.retain(|(armed, _)| *armed != timer);
    }

    pub fn clear(&mut self) {
        self.timers.clear();
    }

    /// True when `timer` is armed for exactly `at`; consumes it, so it fires once.
    pub fn take_if_due(&mut self, timer: Timer, at: Instant) -> bool {
        let before = self.timers.len();
        self.timers
            .retain(|(armed, deadline)| !(*armed == timer && *deadline == at));
        self.timers.len() != before
    }

    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.timers
            .iter()
            .find(|(armed, _)| *armed == timer)
            .map(|(_, at)| *at)
    }
}
