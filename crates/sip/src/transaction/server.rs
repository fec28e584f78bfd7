//! Server transactions (RFC 3261 §17.2 with the RFC 6026 Accepted state).

use std::time::{Duration, Instant};

use super::TransactionError;
use super::effects::{Armed, Effects, TimeoutKind};
use super::timer::{Durations, Timer};
use crate::{Message, Method, Request, Response};

/// States of the INVITE server transaction (figure 7 of RFC 3261, amended by RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteServerState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

/// States of the non-INVITE server transaction (figure 8 of RFC 3261).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteServerState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// What the layer should do with a request that matched an existing server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Absorbed {
    /// A retransmission, handled inside the transaction.
    Handled,
    /// RFC 6026 §8.7: an ACK matching the transaction in Accepted goes to the TU.
    PassAckToUser,
}

#[derive(Debug)]
pub(crate) struct InviteServer {
    pub state: InviteServerState,
    pub request: Request,
    pub last_response: Option<Response>,
    interval: Duration,
    durations: Durations,
    pub timers: Armed,
}

impl InviteServer {
    /// A new INVITE: wait for the TU, sending 100 Trying ourselves if it stays silent.
    pub fn start(request: Request, durations: Durations, now: Instant, fx: &mut Effects) -> Self {
        let mut server = InviteServer {
            state: InviteServerState::Proceeding,
            request,
            last_response: None,
            interval: durations.config().t1,
            durations,
            timers: Armed::default(),
        };
        server
            .timers
            .arm(Timer::Trying, now + durations.trying(), fx);
        server
    }

    pub fn on_request(&mut self, request: &Request, now: Instant, fx: &mut Effects) -> Absorbed {
        use InviteServerState::*;
        if request.method == Method::Ack {
            match self.state {
                Completed => {
                    self.timers.disarm(Timer::G);
                    self.timers.disarm(Timer::H);
                    self.state = Confirmed;
                    let i = self.durations.i();
                    if i.is_zero() {
                        self.terminate(fx);
                    } else {
                        self.timers.arm(Timer::I, now + i, fx);
                    }
                }
                Accepted => return Absorbed::PassAckToUser,
                _ => {}
            }
            return Absorbed::Handled;
        }
        // A retransmitted INVITE: resend the last provisional (Proceeding) or the non-2xx
        // final response (Completed). In Accepted the TU owns 2xx retransmission.
        if matches!(self.state, Proceeding | Completed)
            && let Some(last) = &self.last_response
        {
            fx.send.push(Message::Response(last.clone()));
        }
        Absorbed::Handled
    }

    pub fn send_response(
        &mut self,
        response: Response,
        now: Instant,
        fx: &mut Effects,
    ) -> Result<(), TransactionError> {
        use InviteServerState::*;
        let status = response.status;
        match self.state {
            Proceeding => {
                self.timers.disarm(Timer::Trying);
                fx.send.push(Message::Response(response.clone()));
                self.last_response = Some(response);
                if (200..300).contains(&status) {
                    self.state = Accepted;
                    self.shed_bodies();
                    self.timers
                        .arm(Timer::L, now + self.durations.timeout(), fx);
                } else if status >= 300 {
                    self.state = Completed;
                    if let Some(first) = self.durations.first_retransmit() {
                        self.interval = first;
                        self.timers.arm(Timer::G, now + first, fx);
                    }
                    self.timers
                        .arm(Timer::H, now + self.durations.timeout(), fx);
                }
                Ok(())
            }
            // RFC 6026 §8.5: the TU may resend (or send more) 2xx while Accepted.
            Accepted if (200..300).contains(&status) => {
                fx.send.push(Message::Response(response));
                Ok(())
            }
            state => Err(TransactionError::InvalidState {
                status,
                state: format!("{state:?}"),
            }),
        }
    }

    pub fn on_timer(&mut self, timer: Timer, now: Instant, fx: &mut Effects) {
        use InviteServerState::*;
        match (timer, self.state) {
            (Timer::Trying, Proceeding) if self.last_response.is_none() => {
                let trying = Response::for_request(&self.request, 100, "Trying");
                fx.send.push(Message::Response(trying.clone()));
                self.last_response = Some(trying);
            }
            (Timer::G, Completed) => {
                if let Some(last) = &self.last_response {
                    fx.send.push(Message::Response(last.clone()));
                }
                self.interval = self.durations.next_capped(self.interval);
                self.timers.arm(Timer::G, now + self.interval, fx);
            }
            (Timer::H, Completed) => {
                fx.timeout = Some(TimeoutKind::NoAck);
                self.terminate(fx);
            }
            (Timer::I, Confirmed) | (Timer::L, Accepted) => self.terminate(fx),
            _ => {}
        }
    }

    /// In Accepted the transaction only absorbs retransmitted INVITEs (matched by the key
    /// the layer keeps) and matches the ACK by the 2xx's To tag; the TU owns the 2xx and the
    /// dialog. The INVITE and the 2xx would sit here whole for Timer L's 32 s for nothing
    /// (issue 19: memory a live call): the INVITE keeps its request line, the 2xx its
    /// status line and To.
    fn shed_bodies(&mut self) {
        self.request.body = Vec::new();
        self.request.headers = crate::Headers::new();
        if let Some(response) = &mut self.last_response {
            let mut kept = crate::Headers::new();
            if let Some(to) = response.headers.get("To") {
                kept.push("To", to);
            }
            response.headers = kept;
            response.body = Vec::new();
        }
    }

    pub fn terminate(&mut self, fx: &mut Effects) {
        self.state = InviteServerState::Terminated;
        self.timers.clear();
        fx.terminated = true;
    }
}

#[derive(Debug)]
pub(crate) struct NonInviteServer {
    pub state: NonInviteServerState,
    pub request: Request,
    pub last_response: Option<Response>,
    durations: Durations,
    pub timers: Armed,
}

impl NonInviteServer {
    pub fn start(request: Request, durations: Durations) -> Self {
        NonInviteServer {
            state: NonInviteServerState::Trying,
            request,
            last_response: None,
            durations,
            timers: Armed::default(),
        }
    }

    /// A retransmitted request: silent in Trying, otherwise resend the last response.
    pub fn on_request(&mut self, fx: &mut Effects) {
        if matches!(
            self.state,
            NonInviteServerState::Proceeding | NonInviteServerState::Completed
        ) && let Some(last) = &self.last_response
        {
            fx.send.push(Message::Response(last.clone()));
        }
    }

    pub fn send_response(
        &mut self,
        response: Response,
        now: Instant,
        fx: &mut Effects,
    ) -> Result<(), TransactionError> {
        use NonInviteServerState::*;
        let status = response.status;
        match self.state {
            Trying | Proceeding => {
                fx.send.push(Message::Response(response.clone()));
                self.last_response = Some(response);
                if status < 200 {
                    self.state = Proceeding;
                } else {
                    self.state = Completed;
                    // Completed only resends the final response for Timer J (32 s on UDP):
                    // the request's headers and body are not needed again (a BYE's are most
                    // of what a call leaves behind after it ends; issue 19).
                    self.request.headers = crate::Headers::new();
                    self.request.body = Vec::new();
                    let j = self.durations.j();
                    if j.is_zero() {
                        self.terminate(fx);
                    } else {
                        self.timers.arm(Timer::J, now + j, fx);
                    }
                }
                Ok(())
            }
            state => Err(TransactionError::InvalidState {
                status,
                state: format!("{state:?}"),
            }),
        }
    }

    pub fn on_timer(&mut self, timer: Timer, fx: &mut Effects) {
        if timer == Timer::J && self.state == NonInviteServerState::Completed {
            self.terminate(fx);
        }
    }

    pub fn terminate(&mut self, fx: &mut Effects) {
        self.state = NonInviteServerState::Terminated;
        self.timers.clear();
        fx.terminated = true;
    }
}
