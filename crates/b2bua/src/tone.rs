//! The test number: answer, play a tone to the caller, then hang up. It exercises the whole
//! path (SIP, SDP offer/answer, the media threads, RTP pacing) before any IVR is configured,
//! through the same media commands as a prepaid call.

use std::time::Duration;

use talktime_media::relay::{LegConfig, Side};
use talktime_media::{PlayItem, Tone};
use talktime_sdp::{Codec, SessionDescription, SessionOrigin};
use talktime_sip::Request;

use crate::calls::{StartError, law_of};
use crate::media::{MediaCommand, MediaPorts, MediaReport};
use crate::switch::Switch;

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
    ) -> Result<(ToneCall, Vec<u8>), StartError> {
        if invite.body.is_empty() {
            return Err(StartError::NoOffer);
        }
        let offer = SessionDescription::parse(&invite.body).map_err(StartError::BadOffer)?;
        let random = switch.random_u64();
        let ports = switch.allocate_ports(random)?;
        let port = ports.port(Side::A);
        let local = switch.local_audio(port, vec![Codec::Pcmu, Codec::Pcma]);
        let mut origin = SessionOrigin::new(u64::from(port), switch.advertised);
        let refuse = |switch: &mut Switch, error: StartError| {
            ports.release(&mut switch.ports);
            Err(error)
        };
        let (answer, audio) = match talktime_sdp::answer(&offer, &local, &mut origin) {
            Ok(result) => result,
            Err(error) => return refuse(switch, StartError::Negotiation(error)),
        };
        let Some(law) = law_of(&audio) else {
            return refuse(switch, StartError::NotG711);
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
        leg.prompt_wait = std::time::Duration::from_millis(switch.config.rtp.prompt_wait_ms);
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
    /// up; the rest is taken and ignored. False when `call` is not a test call.
    pub(crate) fn tone_report(&mut self, call: u64, report: MediaReport) -> bool {
        let Some(dialog) = self.tone_dialogs.get(&call).cloned() else {
            return false;
        };
        if matches!(
            report,
            MediaReport::PlaybackFinished(_) | MediaReport::OpenFailed { .. }
        ) {
            self.hang_up_tone(&dialog);
        }
        true
    }
}
