//! Symmetric RTP latching (comedia): send to where the leg's packets really come from.
//!
//! Rule against hijacking: the first packet that arrives latches its source address. After
//! that, packets from any other address are dropped, unless the latched source has been silent
//! for `relatch_after` (default 1 s), in which case the new source is latched (a caller whose
//! NAT binding changed, or a re-INVITE that moved the media). An attacker spraying packets at
//! our port during a live call therefore cannot take the stream over; one racing the very first
//! packet could, which is the accepted cost of serving callers behind NAT, unless the leg names
//! the hosts its media may come from ([`Latch::allow_only`]: the SDP's address and the SIP
//! peer's): then a stranger is never latched, however early it sends (issue 20).

use std::net::{IpAddr, SocketAddr};
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
    /// From a host the leg does not accept media from at all.
    Foreign,
}

#[derive(Debug, Clone)]
pub struct Latch {
    signalled: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    last_accepted: Option<Instant>,
    relatch_after: Duration,
    /// Hosts packets may come from; empty accepts any (plain comedia).
    allowed: Vec<IpAddr>,
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
            allowed: Vec::new(),
        }
    }

    /// Accepts packets only from these hosts (IPv4-mapped IPv6 counts as IPv4); empty: any.
    pub fn allow_only(&mut self, hosts: &[IpAddr]) {
        self.allowed = hosts.iter().copied().map(canonical).collect();
    }

    /// New SDP (re-INVITE): keep the latched address but allow the next source to latch.
    pub fn renegotiated(&mut self, signalled: Option<SocketAddr>) {
        self.signalled = signalled;
        self.last_accepted = None;
    }

    pub fn on_packet(&mut self, from: SocketAddr, now: Instant) -> LatchDecision {
        if !self.allowed.is_empty() && !self.allowed.contains(&canonical(from.ip())) {
            return LatchDecision::Foreign;
        }
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
    ///
    /// (Kept below `on_packet`: a latched address is always an allowed one.)
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}
