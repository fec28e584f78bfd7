//! Client transactions (RFC 3261 §17.1 with the RFC 6026 Accepted state).

use std::time::{Duration, Instant};

use super::build;
use super::effects::{Armed, Effects, TimeoutKind};
use super::timer::{Durations, Timer};
use crate::{Message, Request, Response};

/// States of the INVITE client transaction (figure 5 of RFC 3261, amended by RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// States of the non-INVITE client transaction (figure 6 of RFC 3261).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteClientState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub(crate) struct InviteClient {
    pub state: InviteClientState,
    pub request: Request,
    ack: Option<Request>,
    last_provisional: Option<Vec<u8>>,
    interval: Duration,
    durations: Durations,
    pub timers: Armed,
}

impl InviteClient {
    /// Sends the INVITE and arms timers A (unreliable transports only) and B.
    pub fn start(request: Request, durations: Durations, now: Instant, fx: &mut Effects) -> Self {
        let mut client = InviteClient {
            state: InviteClientState::Calling,
            request,
            ack: None,
            last_provisional: None,
            interval: durations.config().t1,
            durations,
            timers: Armed::default(),
        };
        fx.send.push(Message::Request(client.request.clone()));
        if let Some(first) = durations.first_retransmit() {
            client.interval = first;
            client.timers.arm(Timer::A, now + first, fx);
        }
        client.timers.arm(Timer::B, now + durations.timeout(), fx);
        client
    }

    pub fn on_response(&mut self, response: Response, now: Instant, fx: &mut Effects) {
        use InviteClientState::*;
        let status = response.status;
        match self.state {
            Calling | Proceeding if status < 200 => {
                self.timers.disarm(Timer::A);
                self.timers.disarm(Timer::B);
                self.state = Proceeding;
                // A retransmitted INVITE makes the server resend its last provisional
                // response: hand the TU each distinct provisional once.
                let bytes = response.to_bytes();
                if self.last_provisional.as_deref() != Some(bytes.as_slice()) {
                    self.last_provisional = Some(bytes);
                    fx.deliver.push(response);
                }
            }
            Calling | Proceeding if status < 300 => {
                self.timers.clear();
                self.state = Accepted;
                // Accepted only passes 2xx on for Timer M's 32 s: the INVITE's SDP and the
                // last provisional are not needed again (issue 19: memory a live call).
                self.request.body = Vec::new();
                self.last_provisional = None;
                self.timers
                    .arm(Timer::M, now + self.durations.timeout(), fx);
                fx.deliver.push(response);
            }
            Calling | Proceeding => {
                self.timers.clear();
                let ack = build::ack_for_non_2xx(&self.request, &response);
                fx.send.push(Message::Request(ack.clone()));
                self.ack = Some(ack);
                fx.deliver.push(response);
                self.state = Completed;
                let d = self.durations.d();
                if d.is_zero() {
                    self.terminate(fx);
                } else {
                    self.timers.arm(Timer::D, now + d, fx);
                }
            }
            // RFC 6026 §8.4: every 2xx seen in Accepted goes to the TU, which ACKs it (it may
            // come from another fork or be a retransmission whose ACK was lost).
            Accepted if (200..300).contains(&status) => fx.deliver.push(response),
            // §17.1.1.2: a retransmitted final response is answered by resending the ACK.
            Completed if status >= 300 => {
                if let Some(ack) = &self.ack {
                    fx.send.push(Message::Request(ack.clone()));
                }
            }
            _ => {}
        }
    }

    pub fn on_timer(&mut self, timer: Timer, now: Instant, fx: &mut Effects) {
        use InviteClientState::*;
        match (timer, self.state) {
            (Timer::A, Calling) => {
                fx.send.push(Message::Request(self.request.clone()));
                self.interval = self.durations.next_a(self.interval);
                self.timers.arm(Timer::A, now + self.interval, fx);
            }
            (Timer::B, Calling) => {
                fx.timeout = Some(TimeoutKind::NoResponse);
                self.terminate(fx);
            }
            (Timer::CancelGuard, Calling | Proceeding) => {
                fx.timeout = Some(TimeoutKind::CancelUnanswered);
                self.terminate(fx);
            }
            (Timer::D, Completed) | (Timer::M, Accepted) => self.terminate(fx),
            _ => {}
        }
    }

    /// §9.1: once CANCEL is out, wait at most 64*T1 for the INVITE's final response.
    pub fn cancel_sent(&mut self, now: Instant, fx: &mut Effects) {
        if matches!(
            self.state,
            InviteClientState::Calling | InviteClientState::Proceeding
        ) {
            self.timers
                .arm(Timer::CancelGuard, now + self.durations.timeout(), fx);
        }
    }

    pub fn terminate(&mut self, fx: &mut Effects) {
        self.state = InviteClientState::Terminated;
        self.timers.clear();
        fx.terminated = true;
    }
}

#[derive(Debug)]
pub(crate) struct NonInviteClient {
    pub state: NonInviteClientState,
    pub request: Request,
    last_provisional: Option<Vec<u8>>,
    interval: Duration,
    durations: Durations,
    pub timers: Armed,
}

impl NonInviteClient {
    /// Sends the request and arms timers E (unreliable transports only) and F.
    pub fn start(request: Request, durations: Durations, now: Instant, fx: &mut Effects) -> Self {
        let mut client = NonInviteClient {
            state: NonInviteClientState::Trying,
            request,
            last_provisional: None,
            interval: durations.config().t1,
            durations,
            timers: Armed::default(),
        };
        fx.send.push(Message::Request(client.request.clone()));
        if let Some(first) = durations.first_retransmit() {
            client.interval = first;
            client.timers.arm(Timer::E, now + first, fx);
        }
        client.timers.arm(Timer::F, now + durations.timeout(), fx);
        client
    }

    pub fn on_response(&mut self, response: Response, now: Instant, fx: &mut Effects) {
        use NonInviteClientState::*;
        match self.state {
            Trying | Proceeding if response.status < 200 => {
                self.state = Proceeding;
                let bytes = response.to_bytes();
                if self.last_provisional.as_deref() != Some(bytes.as_slice()) {
                    self.last_provisional = Some(bytes);
                    fx.deliver.push(response);
                }
            }
            Trying | Proceeding => {
                self.timers.clear();
                self.state = Completed;
                fx.deliver.push(response);
                let k = self.durations.k();
                if k.is_zero() {
                    self.terminate(fx);
                } else {
                    self.timers.arm(Timer::K, now + k, fx);
                }
            }
            Completed | Terminated => {}
        }
    }

    pub fn on_timer(&mut self, timer: Timer, now: Instant, fx: &mut Effects) {
        use NonInviteClientState::*;
        match (timer, self.state) {
            (Timer::E, Trying) => {
                fx.send.push(Message::Request(self.request.clone()));
                self.interval = self.durations.next_capped(self.interval);
                self.timers.arm(Timer::E, now + self.interval, fx);
            }
            // §17.1.2.2: in Proceeding the retransmit interval is T2 from then on.
            (Timer::E, Proceeding) => {
                fx.send.push(Message::Request(self.request.clone()));
                self.interval = self.durations.t2();
                self.timers.arm(Timer::E, now + self.interval, fx);
            }
            (Timer::F, Trying | Proceeding) => {
                fx.timeout = Some(TimeoutKind::NoResponse);
                self.terminate(fx);
            }
            (Timer::K, Completed) => self.terminate(fx),
            _ => {}
        }
    }

    pub fn terminate(&mut self, fx: &mut Effects) {
        self.state = NonInviteClientState::Terminated;
        self.timers.clear();
        fx.terminated = true;
    }
}
