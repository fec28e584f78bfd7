//! The test number: answer, play a tone to the caller, then hang up. It exercises the whole
//! path (SIP, SDP offer/answer, the media threads, RTP pacing) before any IVR is configured,
//! through the same media commands as a prepaid call.

use std::time::Duration;

use talktime_media::relay::{LegConfig, Side};
use talktime_media::{Law, PlayItem, Tone};
use talktime_sdp::{Codec, SessionDescription, SessionOrigin};
use talktime_sip::{Request, Response};
use thiserror::Error;

use crate::media::{MediaCommand, MediaPorts, MediaReport};
use crate::switch::Switch;

/// Why a test call could not be answered; each maps onto a SIP response.
#[derive(Debug, Error)]
pub enum ToneError {
    #[error("the INVITE has no SDP offer")]
    NoOffer,
    #[error("the SDP offer is malformed: {0}")]
    BadOffer(talktime_sdp::ParseError),
    #[error("no acceptable audio in the offer: {0}")]
    Negotiation(talktime_sdp::NegotiationError),
    #[error("the offered codec is not G.711, so no tone can be played")]
    NotG711,
    #[error("no RTP port free: {0}")]
    Ports(#[from] talktime_media::PortError),
}

impl ToneError {
    pub fn response(&self, request: &Request) -> Response {
        match self {
            ToneError::BadOffer(_) => {
                Response::for_request(request, 400, "Bad Request (malformed SDP)")
            }
            ToneError::NoOffer | ToneError::Negotiation(_) | ToneError::NotG711 => {
                Response::for_request(request, 488, "Not Acceptable Here")
            }
            ToneError::Ports(_) => Response::for_request(request, 503, "Service Unavailable"),
        }
    }
}

/// A test call's media.
#[derive(Debug)]
pub(crate) struct ToneCall {
    key: u64,
    ports: MediaPorts,
}

/// The playback id of the tone (one per call).
const TONE_PLAYBACK: u64 = 1;

impl ToneCall {
    /// Negotiates the offer, opens the media and starts the tone. Returns the call and our
    /// SDP answer.
    pub(crate) fn start(
        switch: &mut Switch,
        key: u64,
        invite: &Request,
        caller: &talktime_sip::transaction::Peer,
        length: Duration,
    ) -> Result<(ToneCall, Vec<u8>), ToneError> {
        if invite.body.is_empty() {
            return Err(ToneError::NoOffer);
        }
        let offer = SessionDescription::parse(&invite.body).map_err(ToneError::BadOffer)?;
        let random = switch.random_u64();
        let ports = switch.allocate_ports(random)?;
        let port = ports.port(Side::A);
        let local = switch.local_audio(port, vec![Codec::Pcmu, Codec::Pcma]);
        let mut origin = SessionOrigin::new(u64::from(port), switch.advertised);
        let refuse = |switch: &mut Switch, error: ToneError| {
            ports.release(&mut switch.ports);
            Err(error)
        };
        let (answer, audio) = match talktime_sdp::answer(&offer, &local, &mut origin) {
            Ok(result) => result,
            Err(error) => return refuse(switch, ToneError::Negotiation(error)),
        };
        let law = match audio.codec {
            Codec::Pcmu => Law::MuLaw,
            Codec::Pcma => Law::ALaw,
            _ => return refuse(switch, ToneError::NotG711),
        };
        let inactivity = Duration::from_millis(switch.config.rtp.inactivity_timeout_ms);
        let address = switch.advertised;
        switch.media_command(
            key,
            MediaCommand::Open {
                address,
                ports: ports.numbers(),
                inactivity,
            },
        );
        let ssrc = crate::calls::ssrc_for(key, Side::A, random);
        let mut leg = LegConfig::g711(law, audio.remote, ssrc);
        leg.allowed_sources =
            crate::calls::media_sources(switch.config.rtp.strict_media_sources, &audio, caller);
        switch.media_command(key, MediaCommand::SetLeg(Side::A, leg));
        let tone = Tone::cadence(&[1000.0], length, Duration::ZERO, length);
        switch.media_command(
            key,
            MediaCommand::Play {
                playback: TONE_PLAYBACK,
                items: vec![PlayItem::Tone(tone)],
                barge_in: false,
            },
        );
        Ok((ToneCall { key, ports }, answer.to_bytes()))
    }

    pub(crate) fn key(&self) -> u64 {
        self.key
    }

    /// Ends the media and returns the ports.
    pub(crate) fn stop(self, switch: &mut Switch) {
        switch.media_command(self.key, MediaCommand::Close);
        switch.retire_ports(self.ports);
    }
}

impl Switch {
    /// A report from a test call's media: the tone's end (or media that never opened) hangs
    /// up. False when `call` is not a test call.
    pub(crate) fn tone_report(&mut self, call: u64, report: MediaReport) -> bool {
        let Some(dialog) = self.tone_dialogs.get(&call).cloned() else {
            return false;
        };
        if matches!(
            report,
            MediaReport::PlaybackFinished(_) | MediaReport::OpenFailed
        ) {
            self.hang_up_tone(&dialog);
        }
        true
    }
}
