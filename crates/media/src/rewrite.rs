//! One outgoing RTP stream towards a leg: a fixed SSRC, a continuous sequence, and timestamps
//! that stay consistent when the source changes (prompt → bridged call → prompt).

use std::time::Instant;

use crate::rtp::RtpHeader;

/// Who produced a packet that goes out on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceId {
    /// Relayed from the other leg, by that leg's incoming SSRC.
    Relayed(u32),
    /// Generated here (a prompt sequence, a tone, a DTMF digit), by a generation number.
    Local(u32),
}

/// Rewrites headers so the far end sees one SSRC with continuous sequence numbers.
///
/// Within one source, offsets are kept, so the source's own gaps (loss) and timing are passed
/// on. At a source switch, the sequence continues at last + 1, the timestamp jumps by the wall
/// time elapsed since the last packet we sent (at least one sample), and the marker bit is set.
#[derive(Debug, Clone)]
pub struct OutgoingStream {
    ssrc: u32,
    samples_per_second: u32,
    source: Option<SourceId>,
    sequence_offset: u16,
    timestamp_offset: u32,
    last_sequence: u16,
    last_timestamp: u32,
    last_sent: Option<Instant>,
    pub packets: u64,
    pub octets: u64,
}

impl OutgoingStream {
    pub fn new(ssrc: u32, first_sequence: u16, first_timestamp: u32) -> Self {
        Self {
            ssrc,
            samples_per_second: 8000,
            source: None,
            sequence_offset: 0,
            timestamp_offset: 0,
            last_sequence: first_sequence.wrapping_sub(1),
            last_timestamp: first_timestamp,
            last_sent: None,
            packets: 0,
            octets: 0,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The RTP timestamp that corresponds to `now` on this stream's clock (for sender reports).
    pub fn timestamp_at(&self, now: Instant) -> u32 {
        match self.last_sent {
            Some(last) => {
                let samples = now.saturating_duration_since(last).as_micros()
                    * u128::from(self.samples_per_second)
                    / 1_000_000;
                self.last_timestamp.wrapping_add(samples as u32)
            }
            None => self.last_timestamp,
        }
    }

    /// The header to send for `incoming` from `source` at `now`.
    pub fn map(&mut self, source: SourceId, incoming: &RtpHeader, now: Instant) -> RtpHeader {
        let mut marker = incoming.marker;
        if self.source != Some(source) {
            let first_sequence = self.last_sequence.wrapping_add(1);
            let first_timestamp = match self.last_sent {
                Some(last) => {
                    let elapsed = now.saturating_duration_since(last);
                    let samples =
                        elapsed.as_micros() * u128::from(self.samples_per_second) / 1_000_000;
                    // RTP timestamps wrap modulo 2^32 by design.
                    self.last_timestamp.wrapping_add((samples as u32).max(1))
                }
                None => self.last_timestamp,
            };
            self.sequence_offset = first_sequence.wrapping_sub(incoming.sequence);
            self.timestamp_offset = first_timestamp.wrapping_sub(incoming.timestamp);
            self.source = Some(source);
            marker = true;
        }
        let sequence = incoming.sequence.wrapping_add(self.sequence_offset);
        let timestamp = incoming.timestamp.wrapping_add(self.timestamp_offset);
        // Track the newest packet only, so a late (reordered) packet does not pull us back.
        if sequence.wrapping_sub(self.last_sequence) < 0x8000 || self.last_sent.is_none() {
            self.last_sequence = sequence;
            self.last_timestamp = timestamp;
            // The timestamp jump at the next switch counts from the newest packet's send time.
            self.last_sent = Some(now);
        }
        self.packets += 1;
        RtpHeader {
            marker,
            payload_type: incoming.payload_type,
            sequence,
            timestamp,
            ssrc: self.ssrc,
        }
    }
}
