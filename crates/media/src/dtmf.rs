//! DTMF: RFC 4733 telephone-events in and out, and the event type shared with the in-band
//! detector.

use std::time::{Duration, Instant};

use crate::rtp::RtpHeader;

/// Where a digit was heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Tones in the audio (Goertzel detector).
    Inband,
}

/// One key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// `0`-`9`, `*`, `#`, `A`-`D`.
    pub digit: char,
    pub source: DtmfSource,
    /// When it was recognised (the time value passed in with the packet).
    pub at: Instant,
}

const DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// RFC 4733 §3.2 event code to digit (events 0-15); other events (flash, ...) are `None`.
pub fn digit_for_event(event: u8) -> Option<char> {
    DIGITS.get(usize::from(event)).copied()
}

/// Digit to RFC 4733 event code.
pub fn event_for_digit(digit: char) -> Option<u8> {
    let upper = digit.to_ascii_uppercase();
    DIGITS
        .iter()
        .position(|d| *d == upper)
        .and_then(|p| u8::try_from(p).ok())
}

/// A decoded telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

impl TelephoneEvent {
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let bytes = payload.get(..4)?;
        Some(Self {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let duration = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            duration[0],
            duration[1],
        ]
    }
}

/// Turns a stream of telephone-event packets into one report per key press.
///
/// An event is identified by (SSRC, RTP timestamp): every packet of one press (start, updates,
/// the three end packets, retransmissions) carries the event's start timestamp, and a new press
/// of the same key gets a new timestamp. The digit is reported on the first packet seen of an
/// event, whichever it is, so loss of the start or of all end packets does not lose the digit,
/// and duplicates or late (reordered) packets of a reported event are ignored. Events longer
/// than the 16-bit duration (about 8 s, RFC 4733 §2.5.1.3) would be reported again; no key is
/// held that long in an IVR.
#[derive(Debug, Clone)]
pub struct Rfc4733Receiver {
    recent: [Option<(u32, u32)>; 32],
    next_slot: usize,
}

impl Default for Rfc4733Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl Rfc4733Receiver {
    pub fn new() -> Self {
        Self {
            recent: [None; 32],
            next_slot: 0,
        }
    }

    /// Feeds a packet already known to carry the telephone-event payload type.
    pub fn on_packet(
        &mut self,
        header: &RtpHeader,
        payload: &[u8],
        now: Instant,
    ) -> Option<DtmfEvent> {
        let event = TelephoneEvent::parse(payload)?;
        let digit = digit_for_event(event.event)?;
        let key = (header.ssrc, header.timestamp);
        if self.recent.contains(&Some(key)) {
            return None;
        }
        self.recent[self.next_slot] = Some(key);
        self.next_slot = (self.next_slot + 1) % self.recent.len();
        Some(DtmfEvent {
            digit,
            source: DtmfSource::Rfc4733,
            at: now,
        })
    }
}

/// Why a digit cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfSendError {
    #[error("{0:?} is not a DTMF digit")]
    NotADigit(char),
    #[error("the leg did not negotiate telephone-event")]
    NotNegotiated,
}

/// A telephone-event packet to send; sequence and timestamp are in the sender's own numbering
/// (the leg's outgoing stream maps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub payload: [u8; 4],
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
}

/// Generates RFC 4733 packets for one digit: a start packet (marker set), an update every
/// 20 ms with the growing duration, then the end packet three times (§2.5.1.4), paced from the
/// start instant like the prompt player.
#[derive(Debug, Clone)]
pub struct Rfc4733Sender {
    event: u8,
    start: Instant,
    length_samples: u32,
    packets_sent: u32,
    end_packets_sent: u32,
    sequence: u16,
}

const SAMPLES_PER_PACKET: u32 = 160;
const VOLUME: u8 = 10; // -10 dBm0

impl Rfc4733Sender {
    pub fn new(digit: char, length: Duration, start: Instant) -> Result<Self, DtmfSendError> {
        let event = event_for_digit(digit).ok_or(DtmfSendError::NotADigit(digit))?;
        let samples = length.as_millis().clamp(40, 5000) as u32 * 8;
        Ok(Self {
            event,
            start,
            length_samples: samples.div_ceil(SAMPLES_PER_PACKET) * SAMPLES_PER_PACKET,
            packets_sent: 0,
            end_packets_sent: 0,
            sequence: 0,
        })
    }

    pub fn is_finished(&self) -> bool {
        self.end_packets_sent >= 3
    }

    /// When the next packet is due; `None` once finished.
    pub fn next_due(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        // The three end packets keep the 20 ms spacing (RFC 4733 §2.5.1.4).
        Some(self.start + Duration::from_millis(20) * self.packets_sent)
    }

    /// The next packet if it is due at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<EventPacket> {
        if now < self.next_due()? {
            return None;
        }
        let updates = self.length_samples / SAMPLES_PER_PACKET;
        let (duration, end) = if self.packets_sent < updates {
            ((self.packets_sent + 1) * SAMPLES_PER_PACKET, false)
        } else {
            self.end_packets_sent += 1;
            (self.length_samples, true)
        };
        let packet = EventPacket {
            payload: TelephoneEvent {
                event: self.event,
                end,
                volume: VOLUME,
                duration: u16::try_from(duration).unwrap_or(u16::MAX),
            }
            .to_bytes(),
            marker: self.packets_sent == 0,
            sequence: self.sequence,
            timestamp: 0,
        };
        self.packets_sent += 1;
        self.sequence = self.sequence.wrapping_add(1);
        Some(packet)
    }
}
