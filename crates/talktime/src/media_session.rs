//! One call's media: two UDP sockets (caller leg A, carrier leg B) and a sans-IO
//! [`Relay`](talktime_media::relay::Relay) on one of the media threads
//! ([`crate::media_workers`]). The core sends [`MediaCommand`]s and hears [`MediaReport`]s;
//! RTP never passes through the core.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use talktime_media::relay::{LegConfig, Side};
use talktime_media::{PlayItem, PortAllocator, PortError};
use tokio::sync::mpsc;

use crate::media_workers::{Control, MediaWorkers, NewCall, WorkerHandle};

/// What the core asks of a call's media.
#[derive(Debug)]
pub enum MediaCommand {
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
}

/// What the media tells the core about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaReport {
    /// A key from the caller (RFC 4733 or in-band).
    Digit(char),
    /// The playback ran to its end.
    PlaybackFinished(u64),
    /// No RTP from a leg for the leg's inactivity timeout.
    Inactive { side: Side, last_packet: Instant },
}

/// Reports go to the core tagged with the call they belong to.
/// Unbounded: a media thread never waits for the core (reports are a few per call).
pub type ReportSender = mpsc::UnboundedSender<(u64, MediaReport)>;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no RTP port free: {0}")]
    Ports(#[from] PortError),
    #[error("cannot bind an RTP socket: {0}")]
    Bind(#[from] std::io::Error),
}

/// The handle the core keeps; dropping it (or [`MediaSession::close`]) ends the call's media.
#[derive(Debug)]
pub struct MediaSession {
    worker: WorkerHandle,
    id: u64,
    ports: [u16; 2],
}

impl MediaSession {
    /// Binds one RTP port per leg on `address` and hands the call to a media thread, with the
    /// default inactivity timeout.
    pub fn open(
        workers: &MediaWorkers,
        call: u64,
        address: IpAddr,
        ports: &mut PortAllocator,
        reports: ReportSender,
    ) -> Result<MediaSession, MediaError> {
        Self::open_with(workers, call, address, ports, reports, INACTIVITY_TIMEOUT)
    }

    /// [`MediaSession::open`] with the inactivity timeout the legs are configured with (used
    /// to date the last packet when a leg goes quiet).
    pub fn open_with(
        workers: &MediaWorkers,
        call: u64,
        address: IpAddr,
        ports: &mut PortAllocator,
        reports: ReportSender,
        inactivity: Duration,
    ) -> Result<MediaSession, MediaError> {
        let (caller_port, caller_socket) = bind_leg(address, ports)?;
        let (carrier_port, carrier_socket) = match bind_leg(address, ports) {
            Ok(bound) => bound,
            Err(error) => {
                let _ = ports.release(caller_port);
                return Err(error);
            }
        };
        let (worker, id) = workers.assign();
        worker.send(Control::Open(Box::new(NewCall {
            id,
            call,
            sockets: [caller_socket, carrier_socket],
            reports,
            inactivity,
        })));
        Ok(MediaSession {
            worker,
            id,
            ports: [caller_port, carrier_port],
        })
    }

    /// Our RTP port on a leg (what goes into that leg's SDP).
    pub fn port(&self, side: Side) -> u16 {
        match side {
            Side::A => self.ports[0],
            Side::B => self.ports[1],
        }
    }

    pub fn send(&self, command: MediaCommand) {
        self.worker.send(Control::Command(self.id, command));
    }

    /// Ends the call's media and returns both ports.
    pub fn close(self, ports: &mut PortAllocator) {
        release(ports, self.ports);
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.worker.send(Control::Close(self.id));
    }
}

fn release(ports: &mut PortAllocator, numbers: [u16; 2]) {
    for number in numbers {
        let _ = ports.release(number);
    }
}

/// Port pairs tried before a call is refused when other programs hold ports of our range.
const BIND_ATTEMPTS: usize = 8;

/// Allocates a port pair and binds its RTP port, moving on to the next pair while a port is
/// taken by another program (the pairs that failed are returned to the pool afterwards, so
/// the next call does not draw them again at once).
pub(crate) fn bind_leg(
    address: IpAddr,
    ports: &mut PortAllocator,
) -> Result<(u16, UdpSocket), MediaError> {
    let mut taken = Vec::new();
    let mut result = Err(MediaError::Bind(std::io::Error::from(
        std::io::ErrorKind::AddrInUse,
    )));
    for _ in 0..BIND_ATTEMPTS {
        // A random start: the next call's ports cannot be guessed from this one's (issue 20).
        let start = {
            use rand::RngExt;
            rand::rng().random_range(0..usize::from(u16::MAX))
        };
        let pair = match ports.allocate_from(start) {
            Ok(pair) => pair,
            Err(error) => {
                result = Err(error.into());
                break;
            }
        };
        match bind(address, pair.rtp) {
            Ok(socket) => {
                result = Ok((pair.rtp, socket));
                break;
            }
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => taken.push(pair.rtp),
            Err(error) => {
                taken.push(pair.rtp);
                result = Err(error.into());
                break;
            }
        }
    }
    for port in taken {
        let _ = ports.release(port);
    }
    result
}

fn bind(address: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddr::new(address, port))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// No RTP for this long on a leg ends an answered call (billed to the last packet), unless
/// the configuration says otherwise (`[rtp] inactivity_timeout_ms`).
pub const INACTIVITY_TIMEOUT: Duration = Duration::from_secs(30);
