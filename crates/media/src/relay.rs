//! The sans-IO media session of one call: two legs, relaying, prompts, DTMF and timers.
//!
//! The shell feeds in every datagram that arrives on a leg's RTP or RTCP port with its source
//! address and the current time, sends what [`Relay::handle_rtp`] and [`Relay::poll_transmit`]
//! give back, drains [`Relay::poll_event`], and wakes the relay at [`Relay::poll_timeout`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dtmf::{DtmfEvent, DtmfSendError, Rfc4733Receiver, Rfc4733Sender};
use crate::g711::Law;
use crate::inband::InbandDetector;
use crate::latch::{Latch, LatchDecision};
use crate::prompt::{FRAME_SAMPLES, PlayItem, PromptPlayer};
use crate::rewrite::{OutgoingStream, SourceId};
use crate::rtp::{self, RtpError, RtpHeader};

/// One of the two legs of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller.
    A,
    /// The carrier.
    B,
}

impl Side {
    pub const fn other(self) -> Self {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    const fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// What negotiation decided for a leg, plus the relay's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegConfig {
    /// The audio payload type on this leg.
    pub audio_payload_type: u8,
    /// G.711 law of the audio, `None` for pass-through codecs (G.729): no prompts, no in-band
    /// detection.
    pub law: Option<Law>,
    pub send_telephone_event: Option<u8>,
    pub receive_telephone_event: Option<u8>,
    /// The address from SDP, used until a packet arrives (symmetric RTP).
    pub remote: Option<SocketAddr>,
    /// Our outgoing SSRC, first sequence number and timestamp towards this leg (the shell draws
    /// them at random, RFC 3550 §5.1).
    pub ssrc: u32,
    pub first_sequence: u16,
    pub first_timestamp: u32,
    /// Run the Goertzel detector on this leg's audio (until RFC 4733 events are seen).
    pub inband_dtmf: bool,
    /// No RTP for this long raises [`MediaEvent::Inactive`]; `Duration::MAX` disables it.
    pub inactivity_timeout: Duration,
    pub relatch_after: Duration,
    /// Hosts this leg's RTP and RTCP may come from (the SDP's and the SIP peer's); empty
    /// accepts any host (plain symmetric RTP).
    pub allowed_sources: Vec<std::net::IpAddr>,
    /// Prompts toward this leg wait until its first RTP packet is accepted, or this long
    /// after the leg was set (zero: at once). A spoofed INVITE naming a third party's
    /// address then gets it nothing until the wait; a real phone, which sends from answer,
    /// starts its prompts at once.
    pub prompt_wait: Duration,
}

impl LegConfig {
    /// A G.711 leg with defaults: 30 s inactivity, in-band detection on, 1 s re-latch.
    pub fn g711(law: Law, remote: Option<SocketAddr>, ssrc: u32) -> Self {
        Self {
            audio_payload_type: match law {
                Law::MuLaw => 0,
                Law::ALaw => 8,
            },
            law: Some(law),
            send_telephone_event: None,
            receive_telephone_event: None,
            remote,
            ssrc,
            first_sequence: (ssrc >> 16) as u16,
            first_timestamp: ssrc.rotate_left(7),
            inband_dtmf: true,
            inactivity_timeout: Duration::from_secs(30),
            relatch_after: Latch::DEFAULT_RELATCH_AFTER,
            allowed_sources: Vec::new(),
            prompt_wait: Duration::ZERO,
        }
    }

    pub fn with_telephone_event(mut self, payload_type: u8) -> Self {
        self.send_telephone_event = Some(payload_type);
        self.receive_telephone_event = Some(payload_type);
        self
    }
}

/// What happens to RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpMode {
    /// Dropped here (reports about rewritten streams would mislead both ends).
    Terminate,
    /// Passed to the other leg while bridged, with SSRCs rewritten.
    Relay,
}

/// Something the call engine should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    Dtmf {
        side: Side,
        event: DtmfEvent,
    },
    /// Media from this leg now comes from (and goes to) a new address.
    Latched {
        side: Side,
        address: SocketAddr,
    },
    /// No RTP for the configured time (dead call); raised once per silence.
    Inactive {
        side: Side,
    },
    PlaybackFinished {
        side: Side,
        interrupted: bool,
    },
}

/// Why a received packet is not forwarded. Most are normal (not bridged yet, DTMF consumed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Malformed(RtpError),
    NoSuchLeg,
    /// From an address other than the latched one while that one is active.
    NotLatchedSource,
    /// From a host the leg does not accept media from.
    ForeignSource,
    NotBridged,
    /// The other leg has no address to send to yet.
    NoDestination,
    /// A payload type this leg did not negotiate, or telephone-event the other did not.
    UnmappedPayloadType(u8),
    /// A prompt or digit is being sent on the other leg; its audio wins.
    LocalMediaActive,
    RtcpTerminated,
}

/// What to do with a received datagram (rewritten in place when forwarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpAction {
    Forward { side: Side, destination: SocketAddr },
    Drop(DropReason),
}

/// A locally generated packet written into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub side: Side,
    pub destination: SocketAddr,
    pub length: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlayError {
    #[error("no such leg")]
    NoSuchLeg,
    #[error("the leg's codec is not G.711, prompts cannot be played without transcoding")]
    NotG711,
}

#[derive(Debug)]
struct LegState {
    config: LegConfig,
    latch: Latch,
    rtcp_latch: Latch,
    outgoing: OutgoingStream,
    events_in: Rfc4733Receiver,
    inband: Option<InbandDetector>,
    last_incoming_ssrc: Option<u32>,
    last_activity: Instant,
    inactive_reported: bool,
    player: Option<(PromptPlayer, u32)>,
    digit_out: Option<(Rfc4733Sender, u32)>,
    /// A packet from the leg was accepted; until then prompts wait (up to `prompts_from`).
    heard: bool,
    prompts_from: Instant,
}

impl LegState {
    fn new(config: LegConfig, now: Instant) -> Self {
        let inband = (config.inband_dtmf && config.law.is_some()).then(InbandDetector::default);
        let mut state = Self {
            latch: Latch::new(config.remote, config.relatch_after),
            rtcp_latch: Latch::new(
                config
                    .remote
                    .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1))),
                config.relatch_after,
            ),
            outgoing: OutgoingStream::new(
                config.ssrc,
                config.first_sequence,
                config.first_timestamp,
            ),
            events_in: Rfc4733Receiver::new(),
            inband,
            last_incoming_ssrc: None,
            last_activity: now,
            inactive_reported: false,
            player: None,
            digit_out: None,
            heard: false,
            prompts_from: now.checked_add(config.prompt_wait).unwrap_or(now),
            config,
        };
        state.latch.allow_only(&state.config.allowed_sources);
        state.rtcp_latch.allow_only(&state.config.allowed_sources);
        state
    }

    /// `None` when the timeout is too large to matter (`Duration::MAX` disables it, e.g. while
    /// the far end holds the call and legitimately sends nothing).
    fn inactivity_deadline(&self) -> Option<Instant> {
        self.last_activity
            .checked_add(self.config.inactivity_timeout)
    }

    fn local_media_active(&self) -> bool {
        self.player.is_some() || self.digit_out.is_some()
    }
}

/// The media of one call.
#[derive(Debug)]
pub struct Relay {
    legs: [Option<LegState>; 2],
    bridged: bool,
    rtcp: RtcpMode,
    events: VecDeque<MediaEvent>,
    generation: u32,
    decode_buffer: Vec<i16>,
}

impl Relay {
    pub fn new(rtcp: RtcpMode) -> Self {
        Self {
            legs: [None, None],
            bridged: false,
            rtcp,
            events: VecDeque::new(),
            generation: 0,
            decode_buffer: Vec::with_capacity(FRAME_SAMPLES),
        }
    }

    /// Adds a leg, or updates it after a re-INVITE (the outgoing stream and SSRC are kept).
    pub fn set_leg(&mut self, side: Side, config: LegConfig, now: Instant) {
        match &mut self.legs[side.index()] {
            Some(leg) => {
                leg.latch.renegotiated(config.remote);
                leg.rtcp_latch.renegotiated(
                    config
                        .remote
                        .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1))),
                );
                leg.latch.allow_only(&config.allowed_sources);
                leg.rtcp_latch.allow_only(&config.allowed_sources);
                if config.law.is_none() || !config.inband_dtmf {
                    leg.inband = None;
                }
                leg.config = config;
            }
            slot @ None => *slot = Some(LegState::new(config, now)),
        }
    }

    /// Switches the Goertzel detector on or off for a leg (for example off once the IVR is
    /// done and only RFC 4733 digits matter; it costs about 2 µs per packet).
    pub fn set_inband_detection(&mut self, side: Side, enabled: bool) {
        if let Some(leg) = self.legs[side.index()].as_mut() {
            leg.inband = (enabled && leg.config.law.is_some()).then(InbandDetector::default);
        }
    }

    pub fn remove_leg(&mut self, side: Side) {
        self.legs[side.index()] = None;
    }

    /// Relay audio between the legs (after the B leg answers) or not (IVR phase).
    pub fn set_bridged(&mut self, bridged: bool) {
        self.bridged = bridged;
    }

    pub fn is_bridged(&self) -> bool {
        self.bridged
    }

    /// Where media for a leg goes now (latched or signalled address).
    pub fn destination(&self, side: Side) -> Option<SocketAddr> {
        self.legs[side.index()]
            .as_ref()
            .and_then(|l| l.latch.destination())
    }

    /// An RTP datagram arrived on `side`'s port. When the answer is `Forward`, `packet` has
    /// been rewritten in place and goes out of the other leg's socket.
    pub fn handle_rtp(
        &mut self,
        side: Side,
        from: SocketAddr,
        packet: &mut [u8],
        now: Instant,
    ) -> RtpAction {
        match self.receive(side, from, packet, now) {
            Ok(action) => action,
            Err(reason) => RtpAction::Drop(reason),
        }
    }

    fn receive(
        &mut self,
        side: Side,
        from: SocketAddr,
        packet: &mut [u8],
        now: Instant,
    ) -> Result<RtpAction, DropReason> {
        let header = RtpHeader::parse(packet).map_err(DropReason::Malformed)?;
        let leg = self.legs[side.index()]
            .as_mut()
            .ok_or(DropReason::NoSuchLeg)?;
        match leg.latch.on_packet(from, now) {
            LatchDecision::Reject => return Err(DropReason::NotLatchedSource),
            LatchDecision::Foreign => return Err(DropReason::ForeignSource),
            LatchDecision::Latched(address) => {
                self.events.push_back(MediaEvent::Latched { side, address });
            }
            LatchDecision::Accept => {}
        }
        leg.last_activity = now;
        leg.inactive_reported = false;
        leg.last_incoming_ssrc = Some(header.ssrc);
        if !leg.heard {
            leg.heard = true;
            if let Some((player, _)) = leg.player.as_mut() {
                player.start_by(now);
            }
        }

        let is_event = Some(header.payload_type) == leg.config.receive_telephone_event;
        if is_event {
            let payload = rtp::payload(packet).map_err(DropReason::Malformed)?;
            if let Some(event) = leg.events_in.on_packet(&header, payload, now) {
                // Gateways that send both would otherwise report every digit twice.
                leg.inband = None;
                self.digit_heard(side, event);
            }
        } else if header.payload_type == leg.config.audio_payload_type {
            if let (Some(detector), Some(law)) = (leg.inband.as_mut(), leg.config.law) {
                let payload = rtp::payload(packet).map_err(DropReason::Malformed)?;
                self.decode_buffer.resize(payload.len(), 0);
                law.decode_into(payload, &mut self.decode_buffer);
                let mut heard = Vec::new();
                detector.process(&self.decode_buffer, now, |event| heard.push(event));
                for event in heard {
                    self.digit_heard(side, event);
                }
            }
        } else {
            return Err(DropReason::UnmappedPayloadType(header.payload_type));
        }

        if !self.bridged {
            return Err(DropReason::NotBridged);
        }
        let target = self.legs[side.other().index()]
            .as_mut()
            .ok_or(DropReason::NoSuchLeg)?;
        if target.local_media_active() {
            return Err(DropReason::LocalMediaActive);
        }
        let payload_type = if is_event {
            target.config.send_telephone_event
        } else {
            Some(target.config.audio_payload_type)
        }
        .ok_or(DropReason::UnmappedPayloadType(header.payload_type))?;
        let destination = target
            .latch
            .destination()
            .ok_or(DropReason::NoDestination)?;
        let incoming = RtpHeader {
            payload_type,
            ..header
        };
        let outgoing = target
            .outgoing
            .map(SourceId::Relayed(header.ssrc), &incoming, now);
        rtp::rewrite(packet, &outgoing).map_err(DropReason::Malformed)?;
        target.outgoing.octets += rtp::payload(packet).map_or(0, |p| p.len() as u64);
        Ok(RtpAction::Forward {
            side: side.other(),
            destination,
        })
    }

    fn digit_heard(&mut self, side: Side, event: DtmfEvent) {
        self.events.push_back(MediaEvent::Dtmf { side, event });
        if let Some(leg) = self.legs[side.index()].as_mut()
            && let Some((player, _)) = leg.player.as_mut()
            && player.on_digit()
        {
            leg.player = None;
            self.events.push_back(MediaEvent::PlaybackFinished {
                side,
                interrupted: true,
            });
        }
    }

    /// An RTCP datagram arrived on `side`'s RTCP port.
    pub fn handle_rtcp(
        &mut self,
        side: Side,
        from: SocketAddr,
        packet: &mut [u8],
        now: Instant,
    ) -> RtpAction {
        if let Err(error) = rtp::rtcp_packets(packet) {
            return RtpAction::Drop(DropReason::Malformed(error));
        }
        let Some(leg) = self.legs[side.index()].as_mut() else {
            return RtpAction::Drop(DropReason::NoSuchLeg);
        };
        if matches!(
            leg.rtcp_latch.on_packet(from, now),
            LatchDecision::Reject | LatchDecision::Foreign
        ) {
            return RtpAction::Drop(DropReason::NotLatchedSource);
        }
        if self.rtcp == RtcpMode::Terminate {
            return RtpAction::Drop(DropReason::RtcpTerminated);
        }
        if !self.bridged {
            return RtpAction::Drop(DropReason::NotBridged);
        }
        let Some(target) = self.legs[side.other().index()].as_ref() else {
            return RtpAction::Drop(DropReason::NoSuchLeg);
        };
        let Some(destination) = target.rtcp_latch.destination() else {
            return RtpAction::Drop(DropReason::NoDestination);
        };
        let reported = target.last_incoming_ssrc.unwrap_or(0);
        if let Err(error) = rtp::rewrite_rtcp_ssrcs(packet, target.outgoing.ssrc(), reported) {
            return RtpAction::Drop(DropReason::Malformed(error));
        }
        RtpAction::Forward {
            side: side.other(),
            destination,
        }
    }

    /// Starts playing on a leg, replacing whatever was playing there.
    pub fn play(
        &mut self,
        side: Side,
        items: impl IntoIterator<Item = PlayItem>,
        barge_in: bool,
        now: Instant,
    ) -> Result<(), PlayError> {
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let leg = self.legs[side.index()]
            .as_mut()
            .ok_or(PlayError::NoSuchLeg)?;
        let law = leg.config.law.ok_or(PlayError::NotG711)?;
        let start = if leg.heard {
            now
        } else {
            now.max(leg.prompts_from)
        };
        let player = PromptPlayer::new(law, items, start).with_barge_in(barge_in);
        if leg.player.replace((player, generation)).is_some() {
            self.events.push_back(MediaEvent::PlaybackFinished {
                side,
                interrupted: true,
            });
        }
        Ok(())
    }

    /// Appends to what is playing on a leg (or starts playing).
    pub fn enqueue(
        &mut self,
        side: Side,
        items: impl IntoIterator<Item = PlayItem>,
        now: Instant,
    ) -> Result<(), PlayError> {
        let leg = self.legs[side.index()]
            .as_mut()
            .ok_or(PlayError::NoSuchLeg)?;
        match leg.player.as_mut() {
            Some((player, _)) => {
                player.enqueue(items);
                Ok(())
            }
            None => self.play(side, items, false, now),
        }
    }

    pub fn stop_playback(&mut self, side: Side) {
        if let Some(leg) = self.legs[side.index()].as_mut()
            && leg.player.take().is_some()
        {
            self.events.push_back(MediaEvent::PlaybackFinished {
                side,
                interrupted: true,
            });
        }
    }

    pub fn is_playing(&self, side: Side) -> bool {
        self.legs[side.index()]
            .as_ref()
            .is_some_and(|l| l.player.is_some())
    }

    /// Sends a digit as RFC 4733 events on a leg that negotiated telephone-event.
    pub fn send_digit(
        &mut self,
        side: Side,
        digit: char,
        length: Duration,
        now: Instant,
    ) -> Result<(), DtmfSendError> {
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let leg = self.legs[side.index()]
            .as_mut()
            .ok_or(DtmfSendError::NotNegotiated)?;
        if leg.config.send_telephone_event.is_none() {
            return Err(DtmfSendError::NotNegotiated);
        }
        leg.digit_out = Some((Rfc4733Sender::new(digit, length, now)?, generation));
        Ok(())
    }

    /// The next locally generated packet (prompt frame or DTMF event) that is due, written into
    /// `buffer` (at least 172 bytes). Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant, buffer: &mut [u8]) -> Option<Transmit> {
        for side in [Side::A, Side::B] {
            if let Some(transmit) = self.transmit_on(side, now, buffer) {
                return Some(transmit);
            }
        }
        None
    }

    fn transmit_on(&mut self, side: Side, now: Instant, buffer: &mut [u8]) -> Option<Transmit> {
        let leg = self.legs[side.index()].as_mut()?;
        let destination = leg.latch.destination();
        if let Some((sender, generation)) = leg.digit_out.as_mut() {
            let generation = *generation;
            match sender.poll(now) {
                Some(packet) => {
                    let header = RtpHeader {
                        marker: packet.marker,
                        payload_type: leg.config.send_telephone_event.unwrap_or(101),
                        sequence: packet.sequence,
                        timestamp: packet.timestamp,
                        ssrc: 0,
                    };
                    let out = leg.outgoing.map(SourceId::Local(generation), &header, now);
                    let length = rtp::write(buffer, &out, &packet.payload).ok()?;
                    return destination.map(|destination| Transmit {
                        side,
                        destination,
                        length,
                    });
                }
                None if sender.is_finished() => leg.digit_out = None,
                None => {}
            }
        }
        let (player, generation) = leg.player.as_mut()?;
        let generation = *generation;
        if let Some(frame) = player.poll(now) {
            let header = RtpHeader {
                marker: frame.marker,
                payload_type: leg.config.audio_payload_type,
                sequence: frame.sequence,
                timestamp: frame.timestamp,
                ssrc: 0,
            };
            let out = leg.outgoing.map(SourceId::Local(generation), &header, now);
            let length = rtp::write(buffer, &out, frame.payload).ok()?;
            leg.outgoing.octets += frame.payload.len() as u64;
            // Without an address yet the frame is dropped, keeping the pacing.
            return destination.map(|destination| Transmit {
                side,
                destination,
                length,
            });
        }
        if player.is_finished() {
            leg.player = None;
            self.events.push_back(MediaEvent::PlaybackFinished {
                side,
                interrupted: false,
            });
        }
        None
    }

    /// An RTCP sender report about what we send towards `side`, written into `buffer`, for the
    /// shell to send to the leg's RTCP address about every 5 s when RTCP is terminated here.
    /// `ntp_timestamp` is the wall clock in NTP format (the shell reads the clock).
    pub fn sender_report(
        &self,
        side: Side,
        ntp_timestamp: u64,
        now: Instant,
        buffer: &mut [u8],
    ) -> Option<Transmit> {
        let leg = self.legs[side.index()].as_ref()?;
        let destination = leg.rtcp_latch.destination()?;
        let stream = &leg.outgoing;
        // The report's counters are 32-bit and wrap (RFC 3550 §6.4.1).
        let length = rtp::write_sender_report(
            buffer,
            stream.ssrc(),
            ntp_timestamp,
            stream.timestamp_at(now),
            stream.packets as u32,
            stream.octets as u32,
        )
        .ok()?;
        Some(Transmit {
            side,
            destination,
            length,
        })
    }

    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// The earliest instant at which the relay needs `handle_timeout` / `poll_transmit`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.legs
            .iter()
            .flatten()
            .flat_map(|leg| {
                let inactivity = (!leg.inactive_reported)
                    .then(|| leg.inactivity_deadline())
                    .flatten();
                let frame = leg.player.as_ref().and_then(|(p, _)| {
                    // A finished player still needs one poll to report the end.
                    p.next_due().or(Some(p.start()))
                });
                let digit = leg.digit_out.as_ref().and_then(|(d, _)| d.next_due());
                [inactivity, frame, digit]
            })
            .flatten()
            .min()
    }

    /// Raises inactivity events that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for side in [Side::A, Side::B] {
            if let Some(leg) = self.legs[side.index()].as_mut()
                && !leg.inactive_reported
                && leg
                    .inactivity_deadline()
                    .is_some_and(|deadline| now >= deadline)
            {
                leg.inactive_reported = true;
                self.events.push_back(MediaEvent::Inactive { side });
            }
        }
    }
}
