//! The test number: answer, play a tone over RTP, then let the core hang up. It exercises
//! the whole path (SIP, SDP offer/answer, RTP pacing) before any IVR is configured.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use talktime_media::relay::{LegConfig, MediaEvent, Relay, RtcpMode, Side};
use talktime_media::{Law, PlayItem, PortAllocator, PortError, Tone};
use talktime_sdp::{Codec, Direction, LocalAudio, SessionDescription, SessionOrigin};
use talktime_sip::dialog::DialogId;
use talktime_sip::{Request, Response};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::debug;

use crate::server::CoreMessage;

/// Why a test call could not be answered; each maps onto a SIP response.
#[derive(Debug, Error)]
pub enum TestCallError {
    #[error("the INVITE has no SDP offer")]
    NoOffer,
    #[error("the SDP offer is malformed: {0}")]
    BadOffer(talktime_sdp::ParseError),
    #[error("no acceptable audio in the offer: {0}")]
    Negotiation(talktime_sdp::NegotiationError),
    #[error("the offered codec is not G.711, so no tone can be played")]
    NotG711,
    #[error("no RTP port free: {0}")]
    Ports(PortError),
    #[error("cannot bind the RTP socket: {0}")]
    Bind(std::io::Error),
}

impl TestCallError {
    pub fn response(&self, request: &Request) -> Response {
        match self {
            TestCallError::BadOffer(_) => {
                Response::for_request(request, 400, "Bad Request (malformed SDP)")
            }
            TestCallError::NoOffer | TestCallError::Negotiation(_) | TestCallError::NotG711 => {
                Response::for_request(request, 488, "Not Acceptable Here")
            }
            TestCallError::Ports(_) | TestCallError::Bind(_) => {
                Response::for_request(request, 503, "Service Unavailable")
            }
        }
    }
}

/// A test call's media: set up by [`start`], running after [`TestCall::begin`].
#[derive(Debug)]
pub struct TestCall {
    port: u16,
    pending: Option<Pending>,
    task: Option<AbortHandle>,
}

#[derive(Debug)]
struct Pending {
    socket: UdpSocket,
    relay: Relay,
    core: mpsc::Sender<CoreMessage>,
}

/// Negotiates the offer, binds an RTP port and prepares the tone. Returns the call and our
/// SDP answer.
pub fn start(
    invite: &Request,
    address: IpAddr,
    ports: &mut PortAllocator,
    tone: Duration,
    core: mpsc::Sender<CoreMessage>,
) -> Result<(TestCall, Vec<u8>), TestCallError> {
    if invite.body.is_empty() {
        return Err(TestCallError::NoOffer);
    }
    let offer = SessionDescription::parse(&invite.body).map_err(TestCallError::BadOffer)?;
    let (port, socket) =
        crate::media_session::bind_leg(address, ports).map_err(|error| match error {
            crate::media_session::MediaError::Ports(error) => TestCallError::Ports(error),
            crate::media_session::MediaError::Bind(error) => TestCallError::Bind(error),
        })?;
    let socket = match UdpSocket::from_std(socket) {
        Ok(socket) => socket,
        Err(error) => {
            let _ = ports.release(port);
            return Err(TestCallError::Bind(error));
        }
    };
    let local = LocalAudio {
        address,
        port,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        telephone_event: Some(101),
        ptime: 20,
        direction: Direction::SendRecv,
    };
    let mut origin = SessionOrigin::new(u64::from(port), address);
    let negotiated = talktime_sdp::answer(&offer, &local, &mut origin);
    let (answer, audio) = match negotiated {
        Ok(result) => result,
        Err(error) => {
            let _ = ports.release(port);
            return Err(TestCallError::Negotiation(error));
        }
    };
    let law = match audio.codec {
        Codec::Pcmu => Law::MuLaw,
        Codec::Pcma => Law::ALaw,
        _ => {
            let _ = ports.release(port);
            return Err(TestCallError::NotG711);
        }
    };
    let now = Instant::now();
    let mut relay = Relay::new(RtcpMode::Terminate);
    relay.set_leg(
        Side::A,
        LegConfig::g711(law, audio.remote, rand_ssrc(port)),
        now,
    );
    let tone = Tone::cadence(&[1000.0], tone, Duration::ZERO, tone);
    if let Err(error) = relay.play(Side::A, [PlayItem::Tone(tone)], false, now) {
        debug!(%error, "cannot play the test tone");
    }
    let call = TestCall {
        port,
        pending: Some(Pending {
            socket,
            relay,
            core,
        }),
        task: None,
    };
    Ok((call, answer.to_bytes()))
}

impl TestCall {
    /// Starts sending the tone; the core hears `TestCallFinished(dialog)` when it ends.
    pub fn begin(&mut self, dialog: DialogId) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let task = tokio::spawn(play(pending.socket, pending.relay, dialog, pending.core));
        self.task = Some(task.abort_handle());
    }

    /// Stops the media and returns the port.
    pub fn stop(self, ports: &mut PortAllocator) {
        if let Some(task) = self.task {
            task.abort();
        }
        let _ = ports.release(self.port);
    }
}

/// An SSRC that differs between calls; it needs to be unique, not secret.
fn rand_ssrc(port: u16) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    nanos ^ (u32::from(port) << 16)
}

async fn play(
    socket: UdpSocket,
    mut relay: Relay,
    dialog: DialogId,
    core: mpsc::Sender<CoreMessage>,
) {
    let mut inbound = [0u8; 2048];
    let mut outbound = [0u8; 2048];
    loop {
        let now = Instant::now();
        while let Some(transmit) = relay.poll_transmit(now, &mut outbound) {
            let _ = socket
                .send_to(&outbound[..transmit.length], transmit.destination)
                .await;
        }
        while let Some(event) = relay.poll_event() {
            if let MediaEvent::PlaybackFinished { .. } = event {
                let _ = core.send(CoreMessage::TestCallFinished(dialog)).await;
                return;
            }
        }
        let wake = relay.poll_timeout();
        tokio::select! {
            received = socket.recv_from(&mut inbound) => {
                if let Ok((length, from)) = received {
                    let _ = relay.handle_rtp(Side::A, from, &mut inbound[..length], Instant::now());
                }
            }
            _ = sleep_until(wake) => relay.handle_timeout(Instant::now()),
        }
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
