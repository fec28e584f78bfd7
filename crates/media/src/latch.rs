//! Symmetric RTP latching (comedia): send to where the leg's packets really come from.
//!
//! Rule against hijacking: the first packet that arrives latches its source address. After
//! that, packets from any other address are dropped, unless the latched source has been silent
//! for `relatch_after` (default 1 s), in which case the new source is latched (a caller whose
//! NAT binding changed, or a re-INVITE that moved the media). An attacker spraying packets at
//! our port during a live call therefore cannot take the stream over; one racing the very first
//! packet could, which is the accepted cost of serving callers behind NAT.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What to do with a packet, by its source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchDecision {
    /// From the latched source.
    Accept,
    /// Accepted, and this address is now where we send.
    Latched(SocketAddr),
    /// From a stranger while the latched source is active.
    Reject,
}

#[derive(Debug, Clone)]
pub struct Latch {
    signalled: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    last_accepted: Option<Instant>,
    relatch_after: Duration,
}

impl Latch {
    pub const DEFAULT_RELATCH_AFTER: Duration = Duration::from_secs(1);

    /// `signalled` is the address from SDP, used until a packet arrives.
    pub fn new(signalled: Option<SocketAddr>, relatch_after: Duration) -> Self {
        Self {
            signalled,
            latched: None,
            last_accepted: None,
            relatch_after,
        }
    }

    /// New SDP (re-INVITE): keep the latched address but allow the next source to latch.
    pub fn renegotiated(&mut self, signalled: Option<SocketAddr>) {
        self.signalled = signalled;
        self.last_accepted = None;
    }

    pub fn on_packet(&mut self, from: SocketAddr, now: Instant) -> LatchDecision {
        if self.latched == Some(from) {
            self.last_accepted = Some(now);
            return LatchDecision::Accept;
        }
        let source_silent = match self.last_accepted {
            None => true,
            Some(last) => now.saturating_duration_since(last) >= self.relatch_after,
        };
        if source_silent {
            self.latched = Some(from);
            self.last_accepted = Some(now);
            LatchDecision::Latched(from)
        } else {
            LatchDecision::Reject
        }
    }

    /// Where to send media: the latched address, else the signalled one.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }
}
