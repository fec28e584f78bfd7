//! Graceful stop (issue 12): on SIGTERM or SIGINT new calls are refused with 503 and
//! Retry-After, calls up may run `[shutdown] drain_s` more, then each is ended with BYE on both
//! legs (Reason: switch shutdown), billed and recorded; the process exits once every call is
//! gone and every ledger write is done. A second signal ends the calls at once.
//!
//! A drain (issue 19, `talktime nodes drain`, read back with the heartbeat) is a stop with no
//! end for the calls: new calls and OPTIONS get 503 (a proxy's probe takes the node out), the
//! calls up run to their own end, and the process exits when the last is gone.

use std::time::{Duration, Instant};

use talktime_engine::DisconnectCause;
use tracing::info;

use crate::switch::Switch;

/// How long BYE retransmissions may still go out after the last call is gone (two UDP
/// retransmissions at T1 = 500 ms).
const LINGER: Duration = Duration::from_secs(2);
/// What a refused caller is told to wait before trying again (another node, or this one back).
pub(crate) const RETRY_AFTER_S: u32 = 30;

/// A stop in progress.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopping {
    /// When the calls still up are ended; `None` while draining (they end by themselves).
    end_calls_at: Option<Instant>,
    calls_ended: bool,
    /// Set when the last call and ledger write are done: exit when the transactions are done
    /// or this passes.
    linger_until: Option<Instant>,
}

impl Switch {
    /// A signal arrived: the first starts the drain, the second ends every call now. During
    /// an operator's drain a signal starts the ordinary stop's clock.
    pub(crate) fn request_stop(&mut self, now: Instant) {
        let drain = Duration::from_secs(self.config.shutdown.drain_s);
        if let Some(stopping) = self.stopping.as_mut() {
            if stopping.end_calls_at.is_none() && !drain.is_zero() {
                info!(
                    calls = self.sessions.len(),
                    drain_s = drain.as_secs(),
                    "stopping a draining node: calls up may run until the drain time"
                );
                stopping.end_calls_at = Some(now + drain);
                return;
            }
            info!(
                calls = self.sessions.len(),
                "second signal: ending every call now"
            );
            self.end_calls_for_stop();
            return;
        }
        info!(
            calls = self.sessions.len(),
            drain_s = drain.as_secs(),
            "stopping: new calls are refused, calls up may run until the drain time"
        );
        self.begin_stop(Some(now + drain));
        if drain.is_zero() {
            self.end_calls_for_stop();
        }
    }

    /// An operator asked this node to drain: new calls are refused, the calls up end by
    /// themselves, then the node stops. Asking again changes nothing.
    pub(crate) fn request_drain(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        info!(
            calls = self.sessions.len(),
            "draining: new calls are refused, the node stops when its calls have ended"
        );
        self.begin_stop(None);
    }

    fn begin_stop(&mut self, end_calls_at: Option<Instant>) {
        self.stopping = Some(Stopping {
            end_calls_at,
            calls_ended: false,
            linger_until: None,
        });
        self.stop_callbacks();
    }

    fn end_calls_for_stop(&mut self) {
        let Some(stopping) = self.stopping.as_mut() else {
            return;
        };
        if stopping.calls_ended {
            return;
        }
        stopping.calls_ended = true;
        info!(
            calls = self.sessions.len(),
            "ending every call: BYE on both legs, billed and recorded"
        );
        self.abort_all(DisconnectCause::Shutdown);
    }

    /// The shell's word on this node's heartbeat: late, new calls are refused (a call taken
    /// now could be billed and ended by another node that takes this one for dead); written
    /// again, they are taken.
    pub(crate) fn lease_changed(&mut self, current: bool) {
        if self.lease_late != current {
            return;
        }
        self.lease_late = !current;
        if current {
            info!("the heartbeat is written again: new calls are taken");
        } else {
            tracing::warn!(
                calls = self.sessions.len(),
                "the heartbeat is late: new calls are refused with 503 until it is written"
            );
        }
    }

    /// 503 + Retry-After: this node takes nothing new.
    pub(crate) fn stopping_refusal(
        &self,
        request: &talktime_sip::Request,
    ) -> talktime_sip::Response {
        let mut response = talktime_sip::Response::for_request(request, 503, "Service Unavailable");
        response
            .headers
            .push("Retry-After", &RETRY_AFTER_S.to_string());
        response
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.is_some()
    }

    /// The drain's deadlines, for the core loop's wake-up.
    pub(crate) fn stop_timeout(&self) -> Option<Instant> {
        let stopping = self.stopping?;
        if stopping.calls_ended || stopping.end_calls_at.is_none() {
            stopping.linger_until
        } else {
            stopping.end_calls_at
        }
    }

    pub(crate) fn stop_timers(&mut self, now: Instant) {
        if self.stopping.is_some_and(|stopping| {
            !stopping.calls_ended && stopping.end_calls_at.is_some_and(|end| now >= end)
        }) {
            self.end_calls_for_stop();
        }
    }

    /// True when a stop is done: no call, no ledger write in flight, and the last BYEs had
    /// their chance to be answered.
    pub fn stopped(&mut self, now: Instant) -> bool {
        let idle = self.calls_up() == 0 && self.ledger_pace.in_flight == 0;
        let Some(stopping) = self.stopping.as_mut() else {
            return false;
        };
        if !idle {
            stopping.linger_until = None;
            tracing::debug!(
                calls = self.sessions.len(),
                calls_up = self.calls_up(),
                ledger = self.ledger_pace.in_flight,
                "stopping: waiting for calls and ledger answers"
            );
            return false;
        }
        let linger_until = *stopping.linger_until.get_or_insert(now + LINGER);
        self.layer.is_empty() || now >= linger_until
    }
}
