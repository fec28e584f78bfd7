//! One call's media: two UDP sockets (caller leg A, carrier leg B) and a sans-IO
//! [`Relay`] in their own task. The core sends [`MediaCommand`]s and hears [`MediaReport`]s;
//! RTP never passes through the core.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use talktime_media::relay::{LegConfig, MediaEvent, Relay, RtcpMode, RtpAction, Side};
use talktime_media::{PlayItem, PortAllocator, PortError};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::debug;

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
pub type ReportSender = mpsc::Sender<(u64, MediaReport)>;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no RTP port free: {0}")]
    Ports(#[from] PortError),
    #[error("cannot bind an RTP socket: {0}")]
    Bind(#[from] std::io::Error),
}

/// The handle the core keeps; dropping it does not stop the task, [`MediaSession::close`] does.
#[derive(Debug)]
pub struct MediaSession {
    commands: mpsc::UnboundedSender<MediaCommand>,
    ports: [u16; 2],
    task: AbortHandle,
}

impl MediaSession {
    /// Binds one RTP port per leg on `address` and starts the relay task, with the default
    /// inactivity timeout.
    pub fn open(
        call: u64,
        address: IpAddr,
        ports: &mut PortAllocator,
        reports: ReportSender,
    ) -> Result<MediaSession, MediaError> {
        Self::open_with(call, address, ports, reports, INACTIVITY_TIMEOUT)
    }

    /// [`MediaSession::open`] with the inactivity timeout the legs are configured with (used
    /// to date the last packet when a leg goes quiet).
    pub fn open_with(
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
        let numbers = [caller_port, carrier_port];
        let sockets = [caller_socket, carrier_socket];
        let (commands, receiver) = mpsc::unbounded_channel();
        let worker = Worker {
            call,
            sockets,
            relay: Relay::new(RtcpMode::Terminate),
            commands: receiver,
            reports,
            playback: None,
            inactivity,
        };
        let task = tokio::spawn(worker.run()).abort_handle();
        Ok(MediaSession {
            commands,
            ports: numbers,
            task,
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
        // The task only ends through `close`, so a send error means it already stopped.
        let _ = self.commands.send(command);
    }

    /// Stops the task and returns both ports.
    pub fn close(self, ports: &mut PortAllocator) {
        self.task.abort();
        release(ports, self.ports);
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
        let pair = match ports.allocate() {
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
    let socket = std::net::UdpSocket::bind(SocketAddr::new(address, port))?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

struct Worker {
    call: u64,
    sockets: [UdpSocket; 2],
    relay: Relay,
    commands: mpsc::UnboundedReceiver<MediaCommand>,
    reports: ReportSender,
    /// The caller's playback in progress, reported when it finishes.
    playback: Option<u64>,
    inactivity: Duration,
}

impl Worker {
    async fn run(mut self) {
        let mut caller_buffer = [0u8; 2048];
        let mut carrier_buffer = [0u8; 2048];
        let mut outbound = [0u8; 2048];
        // One timer for the task's life. The relay's deadline moves with every packet (the
        // inactivity deadline), so it is only moved earlier, never later: a timer that fires
        // early costs one `handle_timeout` that finds nothing due, far less than re-arming the
        // timer wheel per packet.
        let timer = tokio::time::sleep_until(tokio::time::Instant::now() + IDLE);
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        loop {
            self.transmit(&mut outbound).await;
            if !self.report_events().await {
                return;
            }
            if let Some(wake) = self.relay.poll_timeout()
                && armed.is_none_or(|at| wake < at)
            {
                timer.as_mut().reset(wake.into());
                armed = Some(wake);
            }
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.apply(command),
                    None => return,
                },
                received = self.sockets[0].recv_from(&mut caller_buffer) => {
                    self.relay_received(Side::A, received, &mut caller_buffer).await;
                }
                received = self.sockets[1].recv_from(&mut carrier_buffer) => {
                    self.relay_received(Side::B, received, &mut carrier_buffer).await;
                }
                _ = &mut timer, if armed.is_some() => {
                    armed = None;
                    self.relay.handle_timeout(Instant::now());
                }
            }
        }
    }

    async fn relay_received(
        &mut self,
        side: Side,
        received: std::io::Result<(usize, SocketAddr)>,
        buffer: &mut [u8],
    ) {
        let Ok((length, from)) = received else {
            return;
        };
        // A packet that became readable together with a SetLeg or Bridge must see it applied.
        while let Ok(command) = self.commands.try_recv() {
            self.apply(command);
        }
        self.forward(side, from, &mut buffer[..length]).await;
    }

    async fn forward(&mut self, side: Side, from: SocketAddr, packet: &mut [u8]) {
        let action = self.relay.handle_rtp(side, from, packet, Instant::now());
        tracing::trace!(call = self.call, ?side, %from, ?action, "rtp");
        if let RtpAction::Forward { side, destination } = action {
            let socket = &self.sockets[index(side)];
            if socket.try_send_to(packet, destination).is_err() {
                let _ = socket.send_to(packet, destination).await;
            }
        }
    }

    fn apply(&mut self, command: MediaCommand) {
        let now = Instant::now();
        match command {
            MediaCommand::SetLeg(side, config) => self.relay.set_leg(side, config, now),
            MediaCommand::Play {
                playback,
                items,
                barge_in,
            } => {
                self.playback = None;
                match self.relay.play(Side::A, items, barge_in, now) {
                    Ok(()) => self.playback = Some(playback),
                    Err(error) => debug!(call = self.call, %error, "cannot play"),
                }
            }
            MediaCommand::Stop => {
                self.playback = None;
                self.relay.stop_playback(Side::A);
            }
            MediaCommand::Bridge(bridged) => self.relay.set_bridged(bridged),
        }
    }

    async fn transmit(&mut self, buffer: &mut [u8]) {
        let now = Instant::now();
        while let Some(transmit) = self.relay.poll_transmit(now, buffer) {
            let socket = &self.sockets[index(transmit.side)];
            let _ = socket
                .send_to(&buffer[..transmit.length], transmit.destination)
                .await;
        }
    }

    /// Passes relay events on; false once the core is gone.
    async fn report_events(&mut self) -> bool {
        while let Some(event) = self.relay.poll_event() {
            let Some(report) = self.report_for(event) else {
                continue;
            };
            if self.reports.send((self.call, report)).await.is_err() {
                return false;
            }
        }
        true
    }

    fn report_for(&mut self, event: MediaEvent) -> Option<MediaReport> {
        tracing::trace!(call = self.call, ?event, "media event");
        match event {
            MediaEvent::Dtmf {
                side: Side::A,
                event,
            } => Some(MediaReport::Digit(event.digit)),
            MediaEvent::PlaybackFinished {
                side: Side::A,
                interrupted,
            } => {
                let playback = self.playback.take()?;
                (!interrupted).then_some(MediaReport::PlaybackFinished(playback))
            }
            MediaEvent::Inactive { side } => Some(MediaReport::Inactive {
                side,
                last_packet: Instant::now()
                    .checked_sub(self.inactivity)
                    .unwrap_or_else(Instant::now),
            }),
            _ => None,
        }
    }
}

/// How far ahead the task's timer sits while nothing is due.
const IDLE: Duration = Duration::from_secs(3600);

/// No RTP for this long on a leg ends an answered call (billed to the last packet), unless
/// the configuration says otherwise (`[rtp] inactivity_timeout_ms`).
pub const INACTIVITY_TIMEOUT: Duration = Duration::from_secs(30);

fn index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}
