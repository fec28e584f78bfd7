//! RTP (RFC 3550) parsing and writing on top of `rtp-types` (zero-copy parse, in-place edits),
//! and a small RTCP compound-packet walker of our own (rtp-types has no RTCP).

use rtp_types::{RtpPacket, RtpPacketMut};

/// Length of a fixed RTP header without CSRCs or extensions.
pub const RTP_HEADER_LEN: usize = 12;

/// Why a packet was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("not an RTP packet: {0}")]
    Malformed(&'static str),
    #[error("not an RTCP packet: {0}")]
    MalformedRtcp(&'static str),
    #[error("output buffer of {available} bytes is too small for {needed}")]
    BufferTooSmall { needed: usize, available: usize },
}

/// The header fields the switch reads and rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl RtpHeader {
    /// Reads the header of an RTP packet; checks version, lengths, CSRC count and padding.
    pub fn parse(packet: &[u8]) -> Result<Self, RtpError> {
        let parsed = RtpPacket::parse(packet).map_err(|_| RtpError::Malformed("bad header"))?;
        Ok(Self {
            marker: parsed.marker_bit(),
            payload_type: parsed.payload_type(),
            sequence: parsed.sequence_number(),
            timestamp: parsed.timestamp(),
            ssrc: parsed.ssrc(),
        })
    }
}

/// The payload of a valid RTP packet (after CSRCs, extension; before padding).
pub fn payload(packet: &[u8]) -> Result<&[u8], RtpError> {
    let parsed = RtpPacket::parse(packet).map_err(|_| RtpError::Malformed("bad header"))?;
    let offset = parsed.payload_offset();
    let length = parsed.payload_len();
    packet
        .get(offset..offset + length)
        .ok_or(RtpError::Malformed("payload out of bounds"))
}

/// Overwrites header fields in place; the payload is not touched.
pub fn rewrite(packet: &mut [u8], header: &RtpHeader) -> Result<(), RtpError> {
    let mut editable =
        RtpPacketMut::parse(packet).map_err(|_| RtpError::Malformed("bad header"))?;
    editable.set_marker_bit(header.marker);
    editable
        .set_payload_type(header.payload_type)
        .map_err(|_| RtpError::Malformed("payload type above 127"))?;
    editable.set_sequence_number(header.sequence);
    editable.set_timestamp(header.timestamp);
    editable.set_ssrc(header.ssrc);
    Ok(())
}

/// Writes a plain RTP packet (no CSRC, no extension) into `out`; returns its length.
pub fn write(out: &mut [u8], header: &RtpHeader, payload: &[u8]) -> Result<usize, RtpError> {
    let needed = RTP_HEADER_LEN + payload.len();
    let available = out.len();
    let target = out
        .get_mut(..needed)
        .ok_or(RtpError::BufferTooSmall { needed, available })?;
    target[0] = 0x80;
    target[1] = (u8::from(header.marker) << 7) | (header.payload_type & 0x7F);
    target[2..4].copy_from_slice(&header.sequence.to_be_bytes());
    target[4..8].copy_from_slice(&header.timestamp.to_be_bytes());
    target[8..12].copy_from_slice(&header.ssrc.to_be_bytes());
    target[RTP_HEADER_LEN..].copy_from_slice(payload);
    Ok(needed)
}

/// RTCP packet types (RFC 3550 §12.1).
pub mod rtcp_type {
    pub const SENDER_REPORT: u8 = 200;
    pub const RECEIVER_REPORT: u8 = 201;
    pub const SOURCE_DESCRIPTION: u8 = 202;
    pub const GOODBYE: u8 = 203;
    pub const APPLICATION: u8 = 204;
}

/// One packet inside an RTCP compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpPacketInfo {
    pub packet_type: u8,
    /// Report count / source count / subtype (the 5-bit field).
    pub count: u8,
    /// Byte range of this packet within the compound packet.
    pub offset: usize,
    pub length: usize,
}

/// Splits an RTCP compound packet; rejects anything with a wrong version or a length that
/// runs past the datagram.
pub fn rtcp_packets(compound: &[u8]) -> Result<Vec<RtcpPacketInfo>, RtpError> {
    let mut packets = Vec::with_capacity(2);
    let mut offset = 0;
    while offset < compound.len() {
        let header = compound
            .get(offset..offset + 4)
            .ok_or(RtpError::MalformedRtcp("truncated header"))?;
        if header[0] >> 6 != 2 {
            return Err(RtpError::MalformedRtcp("version is not 2"));
        }
        let packet_type = header[1];
        if !(192..=223).contains(&packet_type) {
            return Err(RtpError::MalformedRtcp("packet type outside 192..=223"));
        }
        let length = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
        if offset + length > compound.len() {
            return Err(RtpError::MalformedRtcp("length runs past the datagram"));
        }
        packets.push(RtcpPacketInfo {
            packet_type,
            count: header[0] & 0x1F,
            offset,
            length,
        });
        offset += length;
    }
    if packets.is_empty() {
        return Err(RtpError::MalformedRtcp("empty"));
    }
    Ok(packets)
}

/// Rewrites SSRCs in an RTCP compound packet being relayed: the sender SSRC of SR/RR/SDES/BYE
/// becomes `sender` (our outgoing SSRC towards the receiver) and the SSRC in each SR/RR report
/// block becomes `reported` (the SSRC the receiver sends us), so the far end sees reports about
/// streams it knows.
pub fn rewrite_rtcp_ssrcs(compound: &mut [u8], sender: u32, reported: u32) -> Result<(), RtpError> {
    for info in rtcp_packets(compound)? {
        let packet = &mut compound[info.offset..info.offset + info.length];
        let blocks_at = match info.packet_type {
            rtcp_type::SENDER_REPORT => Some(28),
            rtcp_type::RECEIVER_REPORT => Some(8),
            _ => None,
        };
        let has_sender = match info.packet_type {
            rtcp_type::SENDER_REPORT | rtcp_type::RECEIVER_REPORT | rtcp_type::APPLICATION => true,
            rtcp_type::SOURCE_DESCRIPTION | rtcp_type::GOODBYE => info.count > 0,
            _ => false,
        };
        if has_sender && let Some(field) = packet.get_mut(4..8) {
            field.copy_from_slice(&sender.to_be_bytes());
        }
        if let Some(start) = blocks_at {
            for block in 0..usize::from(info.count) {
                let at = start + block * 24;
                if let Some(field) = packet.get_mut(at..at + 4) {
                    field.copy_from_slice(&reported.to_be_bytes());
                }
            }
        }
    }
    Ok(())
}

/// Writes an RTCP sender report without report blocks (RFC 3550 §6.4.1), for a relay that
/// terminates RTCP and reports on the streams it sends itself. Returns the length (28).
pub fn write_sender_report(
    out: &mut [u8],
    ssrc: u32,
    ntp_timestamp: u64,
    rtp_timestamp: u32,
    packets: u32,
    octets: u32,
) -> Result<usize, RtpError> {
    const LENGTH: usize = 28;
    let available = out.len();
    let target = out.get_mut(..LENGTH).ok_or(RtpError::BufferTooSmall {
        needed: LENGTH,
        available,
    })?;
    target[0] = 0x80;
    target[1] = rtcp_type::SENDER_REPORT;
    target[2..4].copy_from_slice(&6u16.to_be_bytes()); // length in words minus one
    target[4..8].copy_from_slice(&ssrc.to_be_bytes());
    target[8..16].copy_from_slice(&ntp_timestamp.to_be_bytes());
    target[16..20].copy_from_slice(&rtp_timestamp.to_be_bytes());
    target[20..24].copy_from_slice(&packets.to_be_bytes());
    target[24..28].copy_from_slice(&octets.to_be_bytes());
    Ok(LENGTH)
}
