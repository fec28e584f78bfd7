//! What the switch asks of a call's media and what it hears back. RTP never passes through
//! the switch: the shell runs each call's sans-IO relay on a media thread and carries these
//! commands and reports. The switch hands out the RTP port numbers (they go into SDP); the
//! shell binds them.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use talktime_media::PlayItem;
use talktime_media::relay::{LegConfig, Side};

/// A command for one call's media.
#[derive(Debug)]
#[non_exhaustive]
pub enum MediaCommand {
    /// Bind the call's RTP ports on `address` (caller leg A, carrier leg B) and start its
    /// relay; a leg with no [`MediaCommand::SetLeg`] yet ignores what it receives.
    Open {
        address: IpAddr,
        ports: [u16; 2],
        /// No RTP this long on a bridged leg is reported as [`MediaReport::Inactive`].
        inactivity: Duration,
    },
    SetLeg(Side, LegConfig),
    /// Play to the caller; a new playback replaces the one in progress.
    Play {
        playback: u64,
        items: Vec<PlayItem>,
        barge_in: bool,
    },
    /// Stop the caller's playback (no report follows).
    Stop,
    /// Relay audio between the legs (or stop relaying).
    Bridge(bool),
    /// End the call's media and close its sockets (the ports are free again).
    Close,
}

/// What the media says about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaReport {
    /// A key from the caller (RFC 4733 or in-band).
    Digit(char),
    /// The playback ran to its end.
    PlaybackFinished(u64),
    /// No RTP from a leg for the leg's inactivity timeout.
    Inactive { side: Side, last_packet: Instant },
    /// The ports of [`MediaCommand::Open`] are bound: a new call is answered only after
    /// this (its SDP names them).
    Opened,
    /// The ports of [`MediaCommand::Open`] could not be bound. `busy`: the port another
    /// program holds; a call not yet answered moves to other ports and that one is set aside
    /// for a while. `None` (no such address, no permission): the call is ended.
    OpenFailed { busy: Option<u16> },
}

/// No RTP for this long on a leg ends an answered call (billed to the last packet), unless
/// the configuration says otherwise (`[rtp] inactivity_timeout_ms`).
pub const INACTIVITY_TIMEOUT: Duration = Duration::from_secs(30);

/// A call's two RTP ports, taken from the switch's allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MediaPorts {
    ports: [u16; 2],
}

impl MediaPorts {
    /// Two port pairs from a random place in the range: the next call's ports cannot be
    /// guessed from this one's (issue 20).
    pub(crate) fn allocate(
        allocator: &mut talktime_media::PortAllocator,
        random: u64,
    ) -> Result<MediaPorts, talktime_media::PortError> {
        let start = usize::try_from(random % u64::from(u16::MAX)).unwrap_or_default();
        let caller = allocator.allocate_from(start)?;
        let carrier = match allocator.allocate_from(start.wrapping_add(1)) {
            Ok(pair) => pair,
            Err(error) => {
                let _ = allocator.release(caller.rtp);
                return Err(error);
            }
        };
        Ok(MediaPorts {
            ports: [caller.rtp, carrier.rtp],
        })
    }

    /// Our RTP port on a leg (what goes into that leg's SDP).
    pub(crate) fn port(&self, side: Side) -> u16 {
        match side {
            Side::A => self.ports[0],
            Side::B => self.ports[1],
        }
    }

    pub(crate) fn numbers(&self) -> [u16; 2] {
        self.ports
    }

    pub(crate) fn release(self, allocator: &mut talktime_media::PortAllocator) {
        for port in self.ports {
            let _ = allocator.release(port);
        }
    }

    /// Gives back the pair that is not `busy`; `busy` stays allocated (the caller sets it
    /// aside). False when `busy` is not one of these ports.
    pub(crate) fn keep_only(
        self,
        busy: u16,
        allocator: &mut talktime_media::PortAllocator,
    ) -> bool {
        if !self.ports.contains(&busy) {
            return false;
        }
        for port in self.ports.into_iter().filter(|port| *port != busy) {
            let _ = allocator.release(port);
        }
        true
    }
}
