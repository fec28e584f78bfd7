//! RTP captures for SIPp's `play_pcap_audio`: a caller's media with RFC 4733 key presses.
//!
//! SIPp 3.6 reads classic libpcap files with Ethernet (or Linux cooked) framing only — raw IP
//! is refused ("Unsupported link-type") — and sends each packet's UDP payload to the peer's
//! SDP address at the capture's pace, swapping the ports and addresses. It does not touch the
//! RTP headers, so every sequence number and timestamp below reaches the switch as written.
//!
//! The stream sends one packet every 20 ms from t = 0 to the end: PCMU silence, or, while a
//! key is pressed, telephone-events in its place (as phones do). Each key press gets its own
//! RTP timestamp, so "11" is two presses and not a retransmission of one (Debian's shipped
//! `dtmf_2833_*.pcap` files get this wrong).

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

pub const AUDIO_PAYLOAD_TYPE: u8 = 0;
pub const DEFAULT_EVENT_PAYLOAD_TYPE: u8 = 101;
/// Packetisation time of both audio and events.
pub const PACKET_INTERVAL: Duration = Duration::from_millis(20);
/// RTP clock ticks per packet (8 kHz).
pub const SAMPLES_PER_PACKET: u32 = 160;
pub const SSRC: u32 = 0x5441_4C4B;
/// Near the top so streams longer than about 5 s also exercise sequence wrap-around.
pub const FIRST_SEQUENCE: u16 = 0xFF00;
pub const FIRST_TIMESTAMP: u32 = 0x0001_0000;
/// Event packets with a growing duration, before the end packets.
const EVENT_UPDATE_PACKETS: u32 = 4;
/// The end packet is sent three times (RFC 4733 §2.5.1.4).
const EVENT_END_PACKETS: u32 = 3;
/// Audio packets between the last end packet of a digit and the start of the next.
const GAP_PACKETS: u32 = 5;
/// A press lasts 100 ms (the duration the end packets report).
pub const DIGIT_LENGTH: Duration = Duration::from_millis(100);
/// From the start of one digit of a string to the start of the next: 7 event packets
/// (140 ms) and a 120 ms gap from the last end packet to the next start.
pub const DIGIT_SLOT: Duration = Duration::from_millis(240);
/// Event volume field: -10 dBm0.
const EVENT_VOLUME: u8 = 10;
const PCMU_SILENCE: u8 = 0xFF;

/// One RTP packet and when it leaves, counted from the start of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    pub at: Duration,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

impl RtpPacket {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(12 + self.payload.len());
        bytes.push(0x80); // version 2, no padding, extension or CSRCs
        bytes.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7F));
        bytes.extend_from_slice(&self.sequence.to_be_bytes());
        bytes.extend_from_slice(&self.timestamp.to_be_bytes());
        bytes.extend_from_slice(&self.ssrc.to_be_bytes());
        bytes.extend_from_slice(&self.payload);
        bytes
    }

    /// Reads a plain RTP packet (no CSRCs, extension or padding, as written here).
    pub fn parse(at: Duration, bytes: &[u8]) -> Option<RtpPacket> {
        if bytes.len() < 12 || bytes[0] != 0x80 {
            return None;
        }
        Some(RtpPacket {
            at,
            marker: bytes[1] & 0x80 != 0,
            payload_type: bytes[1] & 0x7F,
            sequence: u16::from_be_bytes([bytes[2], bytes[3]]),
            timestamp: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            ssrc: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
            payload: bytes[12..].to_vec(),
        })
    }
}

/// A decoded RFC 4733 §2.3 telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

impl TelephoneEvent {
    pub fn to_bytes(self) -> [u8; 4] {
        let duration = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            duration[0],
            duration[1],
        ]
    }

    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let bytes = payload.get(..4)?;
        Some(TelephoneEvent {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }
}

/// RFC 4733 §3.2 event code of a keypad digit (`0`-`9`, `*`, `#`, `A`-`D`).
pub fn event_code(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit.to_ascii_uppercase() as u8 - b'A' + 12),
        _ => None,
    }
}

/// The digit of an event code, the inverse of [`event_code`].
pub fn digit_of(event: u8) -> Option<char> {
    "0123456789*#ABCD".chars().nth(usize::from(event))
}

/// How long a digit string takes from its first start packet to its last end packet.
pub fn digits_length(digits: &str) -> Duration {
    let count = u32::try_from(digits.chars().count()).unwrap_or(u32::MAX);
    if count == 0 {
        return Duration::ZERO;
    }
    DIGIT_SLOT * (count - 1) + PACKET_INTERVAL * (EVENT_UPDATE_PACKETS + EVENT_END_PACKETS)
}

/// Writes a capture for `play_pcap_audio`: `total` of PCMU silence with the scripted digit
/// strings pressed at their offsets (rounded up to the 20 ms grid; digits of one string are
/// [`DIGIT_SLOT`] apart). Fails with `InvalidInput` on an unknown digit, strings that overlap
/// (each needs [`digits_length`] plus a 100 ms gap), or a script running past `total`.
pub fn dtmf_pcap(
    path: &Path,
    script: &[(Duration, &str)],
    total: Duration,
    event_payload_type: u8,
) -> io::Result<()> {
    let packets = dtmf_stream(script, total, event_payload_type)?;
    write_pcap(path, &packets)
}

/// The packets [`dtmf_pcap`] writes, in sending order.
pub fn dtmf_stream(
    script: &[(Duration, &str)],
    total: Duration,
    event_payload_type: u8,
) -> io::Result<Vec<RtpPacket>> {
    let ticks = ticks_in(total);
    let events = schedule(script, ticks)?;
    let mut packets = Vec::with_capacity(ticks as usize);
    let mut events = events.into_iter().peekable();
    for tick in 0..ticks {
        let sequence = FIRST_SEQUENCE.wrapping_add(tick as u16);
        let packet = match events.next_if(|(at, _)| *at == tick) {
            Some((_, event)) => RtpPacket {
                at: PACKET_INTERVAL * tick,
                marker: event.first,
                payload_type: event_payload_type,
                sequence,
                timestamp: FIRST_TIMESTAMP.wrapping_add(event.start_tick * SAMPLES_PER_PACKET),
                ssrc: SSRC,
                payload: event.payload.to_bytes().to_vec(),
            },
            None => RtpPacket {
                at: PACKET_INTERVAL * tick,
                marker: false,
                payload_type: AUDIO_PAYLOAD_TYPE,
                sequence,
                timestamp: FIRST_TIMESTAMP.wrapping_add(tick * SAMPLES_PER_PACKET),
                ssrc: SSRC,
                payload: vec![PCMU_SILENCE; SAMPLES_PER_PACKET as usize],
            },
        };
        packets.push(packet);
    }
    Ok(packets)
}

/// One scheduled telephone-event packet.
struct EventPacket {
    start_tick: u32,
    first: bool,
    payload: TelephoneEvent,
}

fn ticks_in(length: Duration) -> u32 {
    u32::try_from(length.as_millis() / PACKET_INTERVAL.as_millis()).unwrap_or(u32::MAX)
}

fn ticks_rounded_up(offset: Duration) -> u32 {
    let interval = PACKET_INTERVAL.as_millis();
    u32::try_from(offset.as_millis().div_ceil(interval)).unwrap_or(u32::MAX)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// The event packets of the script, by tick, in order.
fn schedule(script: &[(Duration, &str)], ticks: u32) -> io::Result<Vec<(u32, EventPacket)>> {
    let mut ordered: Vec<&(Duration, &str)> = script.iter().collect();
    ordered.sort_by_key(|(offset, _)| *offset);
    let slot = ticks_in(DIGIT_SLOT);
    let mut packets = Vec::new();
    let mut next_free_tick = 0;
    for (offset, digits) in ordered {
        let first_tick = ticks_rounded_up(*offset);
        if first_tick < next_free_tick {
            return Err(invalid(format!(
                "digits {digits:?} at {offset:?} start before the previous ones are over"
            )));
        }
        for (index, digit) in (0u32..).zip(digits.chars()) {
            let code = event_code(digit)
                .ok_or_else(|| invalid(format!("{digit:?} is not a keypad digit")))?;
            let start_tick = first_tick + index * slot;
            packets.extend(press(code, start_tick));
            next_free_tick = start_tick + EVENT_UPDATE_PACKETS + EVENT_END_PACKETS + GAP_PACKETS;
        }
    }
    if let Some((last, _)) = packets.last()
        && *last >= ticks
    {
        return Err(invalid(format!(
            "the script runs to {:?}, past the stream's end",
            PACKET_INTERVAL * (last + 1)
        )));
    }
    Ok(packets)
}

/// One key press: start packet with the marker, duration updates, three end packets.
fn press(code: u8, start_tick: u32) -> Vec<(u32, EventPacket)> {
    let event = |count: u32, end: bool| TelephoneEvent {
        event: code,
        end,
        volume: EVENT_VOLUME,
        duration: (count * SAMPLES_PER_PACKET) as u16,
    };
    let updates = (0..EVENT_UPDATE_PACKETS).map(|index| {
        let packet = EventPacket {
            start_tick,
            first: index == 0,
            payload: event(index + 1, false),
        };
        (start_tick + index, packet)
    });
    let ends = (0..EVENT_END_PACKETS).map(|index| {
        let packet = EventPacket {
            start_tick,
            first: false,
            payload: event(EVENT_UPDATE_PACKETS + 1, true),
        };
        (start_tick + EVENT_UPDATE_PACKETS + index, packet)
    });
    updates.chain(ends).collect()
}

// Classic libpcap framing: microsecond timestamps, Ethernet II + IPv4 + UDP around each packet.
const PCAP_MAGIC: u32 = 0xA1B2_C3D4;
const LINKTYPE_ETHERNET: u32 = 1;
const ETHERNET_HEADER: usize = 14;
const IPV4_HEADER: usize = 20;
const UDP_HEADER: usize = 8;
/// Capture time of the first packet (only the differences matter to SIPp).
const CAPTURE_START_SECONDS: u64 = 1_700_000_000;
// Documentation addresses (RFC 5737); SIPp replaces addresses and ports when it sends.
const SOURCE: ([u8; 4], u16) = ([192, 0, 2, 1], 40_000);
const DESTINATION: ([u8; 4], u16) = ([192, 0, 2, 2], 40_002);

/// Writes RTP packets as a capture SIPp 3.6 can play.
pub fn write_pcap(path: &Path, packets: &[RtpPacket]) -> io::Result<()> {
    let mut out = Vec::new();
    out.extend_from_slice(&PCAP_MAGIC.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // GMT offset
    out.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snapshot length
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for (index, packet) in packets.iter().enumerate() {
        let frame = ethernet_frame(&packet.to_bytes(), index as u16)?;
        let length = u32::try_from(frame.len()).map_err(|_| invalid("frame too long".into()))?;
        let seconds = CAPTURE_START_SECONDS + packet.at.as_secs();
        out.extend_from_slice(&(seconds as u32).to_le_bytes());
        out.extend_from_slice(&packet.at.subsec_micros().to_le_bytes());
        out.extend_from_slice(&length.to_le_bytes()); // captured length
        out.extend_from_slice(&length.to_le_bytes()); // original length: never truncated
        out.extend_from_slice(&frame);
    }
    let mut file = std::fs::File::create(path)?;
    file.write_all(&out)?;
    file.sync_all()
}

fn ethernet_frame(rtp: &[u8], identification: u16) -> io::Result<Vec<u8>> {
    let udp_length =
        u16::try_from(UDP_HEADER + rtp.len()).map_err(|_| invalid("RTP packet too long".into()))?;
    let ip_length = udp_length + IPV4_HEADER as u16;
    let mut frame = Vec::with_capacity(ETHERNET_HEADER + usize::from(ip_length));
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // destination MAC (locally administered)
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // source MAC
    frame.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    let mut ip = [0u8; IPV4_HEADER];
    ip[0] = 0x45; // version 4, 5 words
    ip[2..4].copy_from_slice(&ip_length.to_be_bytes());
    ip[4..6].copy_from_slice(&identification.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&SOURCE.0);
    ip[16..20].copy_from_slice(&DESTINATION.0);
    let checksum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&SOURCE.1.to_be_bytes());
    frame.extend_from_slice(&DESTINATION.1.to_be_bytes());
    frame.extend_from_slice(&udp_length.to_be_bytes());
    frame.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum: SIPp computes its own
    frame.extend_from_slice(rtp);
    Ok(frame)
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// Reads back a capture written by [`write_pcap`] (little-endian, Ethernet, IPv4/UDP).
pub fn read_pcap(path: &Path) -> io::Result<Vec<RtpPacket>> {
    let bytes = std::fs::read(path)?;
    let malformed = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let u32_at = |offset: usize| -> io::Result<u32> {
        let field = bytes
            .get(offset..offset + 4)
            .ok_or_else(|| malformed("truncated"))?;
        Ok(u32::from_le_bytes([field[0], field[1], field[2], field[3]]))
    };
    if u32_at(0)? != PCAP_MAGIC || u32_at(20)? != LINKTYPE_ETHERNET {
        return Err(malformed("not a little-endian Ethernet pcap"));
    }
    let mut packets = Vec::new();
    let mut offset = 24;
    let mut first_capture: Option<Duration> = None;
    while offset < bytes.len() {
        let captured = Duration::from_secs(u64::from(u32_at(offset)?))
            + Duration::from_micros(u64::from(u32_at(offset + 4)?));
        let length = u32_at(offset + 8)? as usize;
        if u32_at(offset + 12)? as usize != length {
            return Err(malformed("truncated packet"));
        }
        let frame = bytes
            .get(offset + 16..offset + 16 + length)
            .ok_or_else(|| malformed("truncated record"))?;
        offset += 16 + length;
        let start = *first_capture.get_or_insert(captured);
        packets.push(rtp_of_frame(captured - start, frame).ok_or_else(|| malformed("frame"))?);
    }
    Ok(packets)
}

fn rtp_of_frame(at: Duration, frame: &[u8]) -> Option<RtpPacket> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(ETHERNET_HEADER..)?;
    let header_length = usize::from(ip.first()? & 0x0F) * 4;
    if ip.get(9)? != &17 || ipv4_checksum(ip.get(..header_length)?) != 0 {
        return None;
    }
    let udp = ip.get(header_length..)?;
    let udp_length = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    if udp_length != udp.len() {
        return None;
    }
    RtpPacket::parse(at, udp.get(UDP_HEADER..)?)
}
