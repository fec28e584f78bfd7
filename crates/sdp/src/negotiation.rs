//! RFC 3264 offer/answer for one anchored audio stream per leg.
//!
//! The switch never transcodes: the call engine lists the codecs a leg may use (G.711 when the
//! IVR must play prompts; G.729 only when both legs carry it end to end) and these functions pick
//! from them. Every other media stream (video, T.38 image, a second audio stream) is declined with
//! port 0, as RFC 3264 §6 requires.

use std::net::{IpAddr, SocketAddr};

use crate::description::{Attribute, Connection, Line, Media, Origin, SessionDescription};

/// Audio codecs the switch relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// G.729, static payload type 18; relayed untouched, never decoded.
    G729,
}

impl Codec {
    pub const fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G729 => 18,
        }
    }

    pub const fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G729 => "G729",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Codec::Pcmu, Codec::Pcma, Codec::G729]
            .into_iter()
            .find(|codec| codec.encoding_name().eq_ignore_ascii_case(name))
    }

    fn from_static(payload_type: u8) -> Option<Self> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            18 => Some(Codec::G729),
            _ => None,
        }
    }

    /// What a payload type of this media section means: its rtpmap when present (RFC 8866 lets
    /// static types omit it), else the static assignment.
    fn for_payload_type(media: &Media, payload_type: u8) -> Option<Self> {
        match media.rtpmap(payload_type) {
            Some(map) if map.clock_rate == 8000 => Self::from_name(&map.encoding),
            Some(_) => None,
            None => Self::from_static(payload_type),
        }
    }
}

/// Media direction (RFC 3264 §5.1), always from the point of view of the description's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub const fn attribute_name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub const fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub const fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    const fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The direction seen from the other end (sendonly ↔ recvonly).
    pub const fn reversed(self) -> Self {
        Self::from_flags(self.receives(), self.sends())
    }

    /// Both allow it.
    pub const fn intersect(self, other: Self) -> Self {
        Self::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The direction a media section declares (media level, then session level, default
    /// sendrecv). The RFC 2543 hold `c=0.0.0.0` means "do not send to me", so it removes the
    /// receive half.
    fn of(description: &SessionDescription, index: usize) -> Self {
        let named = |name: &str| {
            [
                Direction::SendRecv,
                Direction::SendOnly,
                Direction::RecvOnly,
                Direction::Inactive,
            ]
            .into_iter()
            .find(|d| d.attribute_name().eq_ignore_ascii_case(name))
        };
        let media_level = description.media.get(index).and_then(|media| {
            media
                .attributes()
                .find_map(|a| a.value.is_none().then(|| named(&a.name)).flatten())
        });
        let session_level = || {
            description.lines.iter().find_map(|line| match line {
                Line::Attribute(a) if a.value.is_none() => named(&a.name),
                _ => None,
            })
        };
        let declared = media_level
            .or_else(session_level)
            .unwrap_or(Direction::SendRecv);
        let held = description
            .media_connection(index)
            .is_some_and(Connection::is_hold);
        if held {
            Direction::from_flags(declared.sends(), false)
        } else {
            declared
        }
    }
}

/// What the switch offers or accepts on one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAudio {
    /// The switch's media address for this leg (media is anchored).
    pub address: IpAddr,
    /// The RTP port allocated for this leg (RTCP is port + 1).
    pub port: u16,
    /// Allowed codecs in our order of preference.
    pub codecs: Vec<Codec>,
    /// Payload type for telephone-event in our offers; `None` to not offer or accept RFC 4733.
    pub telephone_event: Option<u8>,
    /// Packetization time in ms we ask for.
    pub ptime: u32,
    /// What we want: `SendRecv` normally, `SendOnly` to put the leg on hold.
    pub direction: Direction,
}

/// The result of negotiation on a leg: everything the media relay needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedAudio {
    /// Index of the accepted m= line.
    pub media_index: usize,
    pub codec: Codec,
    /// Payload type of the codec on this leg.
    pub payload_type: u8,
    /// Payload type the far end wants telephone-events sent with (`None`: not negotiated).
    pub send_telephone_event: Option<u8>,
    /// Payload type the far end sends telephone-events with.
    pub receive_telephone_event: Option<u8>,
    pub ptime: u32,
    /// Where to send RTP; `None` while the far end is on hold with 0.0.0.0 or gave an FQDN.
    pub remote: Option<SocketAddr>,
    /// Our direction on this leg after negotiation.
    pub direction: Direction,
}

/// Why negotiation failed (the shell answers 488 Not Acceptable Here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("the description has no usable RTP audio stream")]
    NoAudio,
    #[error("no offered audio codec is allowed on this leg (offered: {offered})")]
    NoCommonCodec { offered: String },
    #[error("the answer rejected the audio stream (port 0)")]
    AudioRejected,
    #[error("the answer chose payload type {0}, which was not offered")]
    AnswerNotInOffer(u8),
}

/// Our `o=` line state for one leg: a fixed session id and a version that grows whenever the
/// description we send changes (RFC 3264 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOrigin {
    pub username: String,
    pub session_id: u64,
    pub version: u64,
    pub address: IpAddr,
    last_body: Option<String>,
}

impl SessionOrigin {
    pub fn new(session_id: u64, address: IpAddr) -> Self {
        Self {
            username: "talktime".into(),
            session_id,
            version: session_id,
            address,
            last_body: None,
        }
    }

    /// Sets `description.origin`; the version is incremented when anything else changed since
    /// the last description stamped.
    pub fn stamp(&mut self, description: &mut SessionDescription) {
        let connection = Connection::new(self.address);
        description.origin = Origin {
            username: self.username.clone(),
            session_id: self.session_id.to_string(),
            session_version: 0,
            network_type: connection.network_type,
            address_type: connection.address_type,
            address: connection.address,
        };
        let body = description.to_string();
        if self.last_body.as_ref() != Some(&body) {
            if self.last_body.is_some() {
                self.version = self.version.wrapping_add(1);
            }
            self.last_body = Some(body);
        }
        description.origin.session_version = self.version;
    }
}

/// Builds the switch's offer for a leg.
pub fn offer(local: &LocalAudio, origin: &mut SessionOrigin) -> SessionDescription {
    let mut formats: Vec<String> = local
        .codecs
        .iter()
        .map(|c| c.static_payload_type().to_string())
        .collect();
    let mut lines: Vec<Line> = local
        .codecs
        .iter()
        .map(|c| rtpmap_line(c.static_payload_type(), c.encoding_name()))
        .collect();
    if let Some(event) = local.telephone_event {
        formats.push(event.to_string());
        lines.push(rtpmap_line(event, "telephone-event"));
        lines.push(attribute_line("fmtp", format!("{event} 0-16")));
    }
    lines.push(attribute_line("ptime", local.ptime.to_string()));
    lines.push(Line::Attribute(Attribute::flag(
        local.direction.attribute_name(),
    )));
    let media = Media {
        kind: "audio".into(),
        port: local.port,
        port_count: None,
        protocol: "RTP/AVP".into(),
        formats,
        lines,
    };
    build(local, origin, vec![media])
}

/// Answers a remote offer: accepts the first RTP audio stream with an allowed codec, declines
/// every other stream.
pub fn answer(
    remote_offer: &SessionDescription,
    local: &LocalAudio,
    origin: &mut SessionOrigin,
) -> Result<(SessionDescription, NegotiatedAudio), NegotiationError> {
    let mut accepted: Option<NegotiatedAudio> = None;
    let mut first_error = NegotiationError::NoAudio;
    let mut media_out = Vec::with_capacity(remote_offer.media.len());
    for (index, offered) in remote_offer.media.iter().enumerate() {
        let usable = accepted.is_none()
            && offered.kind.eq_ignore_ascii_case("audio")
            && offered.port != 0
            && is_plain_rtp(&offered.protocol);
        let chosen = if usable {
            match choose_codec(offered, &local.codecs) {
                Some(choice) => Some(choice),
                None => {
                    if first_error == NegotiationError::NoAudio {
                        first_error = NegotiationError::NoCommonCodec {
                            offered: offered.formats.join(" "),
                        };
                    }
                    None
                }
            }
        } else {
            None
        };
        let Some((codec, payload_type)) = chosen else {
            media_out.push(declined(offered));
            continue;
        };
        let event = local
            .telephone_event
            .and(telephone_event_payload_type(offered));
        let ptime = offered
            .attribute("ptime")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(local.ptime);
        let direction = Direction::of(remote_offer, index)
            .reversed()
            .intersect(local.direction);
        let mut formats = vec![payload_type.to_string()];
        let mut lines = vec![rtpmap_line(payload_type, codec.encoding_name())];
        if let Some(params) = offered.fmtp(payload_type) {
            lines.push(attribute_line("fmtp", format!("{payload_type} {params}")));
        }
        if let Some(event) = event {
            formats.push(event.to_string());
            lines.push(rtpmap_line(event, "telephone-event"));
            let events = offered.fmtp(event).unwrap_or("0-15");
            lines.push(attribute_line("fmtp", format!("{event} {events}")));
        }
        lines.push(attribute_line("ptime", ptime.to_string()));
        lines.push(Line::Attribute(Attribute::flag(direction.attribute_name())));
        media_out.push(Media {
            kind: offered.kind.clone(),
            port: local.port,
            port_count: None,
            protocol: offered.protocol.clone(),
            formats,
            lines,
        });
        accepted = Some(NegotiatedAudio {
            media_index: index,
            codec,
            payload_type,
            send_telephone_event: event,
            receive_telephone_event: event,
            ptime,
            remote: remote_address(remote_offer, index),
            direction,
        });
    }
    let negotiated = accepted.ok_or(first_error)?;
    Ok((build(local, origin, media_out), negotiated))
}

/// Reads the far end's answer to an offer we made.
pub fn process_answer(
    our_offer: &SessionDescription,
    remote_answer: &SessionDescription,
) -> Result<NegotiatedAudio, NegotiationError> {
    let index = our_offer
        .media
        .iter()
        .position(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)
        .ok_or(NegotiationError::NoAudio)?;
    let offered = &our_offer.media[index];
    let answered = remote_answer
        .media
        .get(index)
        .ok_or(NegotiationError::NoAudio)?;
    if answered.port == 0 {
        return Err(NegotiationError::AudioRejected);
    }
    let offered_event = telephone_event_payload_type(offered);
    let answered_event = telephone_event_payload_type(answered);
    let (codec, payload_type) = answered
        .payload_types()
        .filter(|pt| Some(*pt) != answered_event)
        .find_map(|pt| Codec::for_payload_type(answered, pt).map(|codec| (codec, pt)))
        .ok_or(NegotiationError::NoAudio)?;
    let codec_was_offered = offered
        .payload_types()
        .any(|pt| Codec::for_payload_type(offered, pt) == Some(codec));
    if !codec_was_offered {
        return Err(NegotiationError::AnswerNotInOffer(payload_type));
    }
    let ptime = answered
        .attribute("ptime")
        .and_then(|p| p.trim().parse().ok())
        .or_else(|| {
            offered
                .attribute("ptime")
                .and_then(|p| p.trim().parse().ok())
        })
        .unwrap_or(20);
    let ours = Direction::of(our_offer, index);
    Ok(NegotiatedAudio {
        media_index: index,
        codec,
        payload_type,
        send_telephone_event: offered_event.and(answered_event),
        // Accept events on our own payload type; RFC 3264 lets the answerer send with it.
        receive_telephone_event: answered_event.and(offered_event),
        ptime,
        remote: remote_address(remote_answer, index),
        direction: Direction::of(remote_answer, index)
            .reversed()
            .intersect(ours),
    })
}

/// RTP without SRTP: we cannot answer RTP/SAVP(F) (no keys), so such streams are declined.
fn is_plain_rtp(protocol: &str) -> bool {
    protocol.eq_ignore_ascii_case("RTP/AVP") || protocol.eq_ignore_ascii_case("RTP/AVPF")
}

fn choose_codec(offered: &Media, allowed: &[Codec]) -> Option<(Codec, u8)> {
    // The offerer's order wins among the codecs we allow (RFC 3264 §6.1 lets us pick; keeping
    // its order avoids surprising carriers).
    offered.payload_types().find_map(|pt| {
        let codec = Codec::for_payload_type(offered, pt)?;
        allowed.contains(&codec).then_some((codec, pt))
    })
}

fn telephone_event_payload_type(media: &Media) -> Option<u8> {
    media
        .rtpmaps()
        .find(|m| m.encoding.eq_ignore_ascii_case("telephone-event") && m.clock_rate == 8000)
        .map(|m| m.payload_type)
        .filter(|pt| media.payload_types().any(|listed| listed == *pt))
}

fn remote_address(description: &SessionDescription, index: usize) -> Option<SocketAddr> {
    let media = description.media.get(index)?;
    let connection = description.media_connection(index)?;
    let ip = connection.ip()?;
    (!ip.is_unspecified() && media.port != 0).then(|| SocketAddr::new(ip, media.port))
}

fn declined(offered: &Media) -> Media {
    Media {
        kind: offered.kind.clone(),
        port: 0,
        port_count: None,
        protocol: offered.protocol.clone(),
        formats: offered.formats.clone(),
        lines: Vec::new(),
    }
}

fn rtpmap_line(payload_type: u8, encoding: &str) -> Line {
    attribute_line("rtpmap", format!("{payload_type} {encoding}/8000"))
}

fn attribute_line(name: &str, value: String) -> Line {
    Line::Attribute(Attribute::with_value(name, value))
}

fn build(local: &LocalAudio, origin: &mut SessionOrigin, media: Vec<Media>) -> SessionDescription {
    let mut description = SessionDescription {
        origin: Origin {
            username: String::new(),
            session_id: String::new(),
            session_version: 0,
            network_type: String::new(),
            address_type: String::new(),
            address: String::new(),
        },
        session_name: "talktime".into(),
        lines: vec![
            Line::Connection(Connection::new(local.address)),
            Line::Other {
                kind: 't',
                value: "0 0".into(),
            },
        ],
        media,
    };
    origin.stamp(&mut description);
    description
}
