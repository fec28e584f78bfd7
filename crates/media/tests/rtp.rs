//! RTP/RTCP parsing and writing, stream rewriting, ports and latching.

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use talktime_media::rtp::{self, rewrite_rtcp_ssrcs, rtcp_packets, rtcp_type};
use talktime_media::{
    Latch, LatchDecision, OutgoingStream, PortAllocator, PortError, RtpError, RtpHeader, SourceId,
};

fn header(sequence: u16, timestamp: u32, ssrc: u32) -> RtpHeader {
    RtpHeader {
        marker: false,
        payload_type: 0,
        sequence,
        timestamp,
        ssrc,
    }
}

#[test]
fn write_parse_rewrite_round_trip() {
    let mut buffer = [0u8; 200];
    let written = RtpHeader {
        marker: true,
        payload_type: 8,
        sequence: 65535,
        timestamp: 0xDEAD_BEEF,
        ssrc: 42,
    };
    let payload: Vec<u8> = (0..160).map(|i| i as u8).collect();
    let length = rtp::write(&mut buffer, &written, &payload).unwrap();
    assert_eq!(length, 172);
    let packet = &mut buffer[..length];
    assert_eq!(RtpHeader::parse(packet).unwrap(), written);
    assert_eq!(rtp::payload(packet).unwrap(), &payload[..]);

    let rewritten = RtpHeader {
        marker: false,
        payload_type: 96,
        sequence: 7,
        timestamp: 9,
        ssrc: 1,
    };
    rtp::rewrite(packet, &rewritten).unwrap();
    assert_eq!(RtpHeader::parse(packet).unwrap(), rewritten);
    assert_eq!(rtp::payload(packet).unwrap(), &payload[..]);

    assert_eq!(
        rtp::write(&mut [0u8; 20], &written, &payload).unwrap_err(),
        RtpError::BufferTooSmall {
            needed: 172,
            available: 20
        }
    );
}

#[test]
fn csrc_extension_and_padding_are_skipped_to_the_payload() {
    // V=2, P=1, X=1, CC=1; one CSRC; extension of one word; 3 payload bytes; 2 padding bytes.
    let packet = [
        0xB1, 0x00, 0x00, 0x01, 0, 0, 0, 5, 0, 0, 0, 9, // fixed header
        0, 0, 0, 7, // CSRC
        0xBE, 0xDE, 0x00, 0x01, 1, 2, 3, 4, // extension
        0xAA, 0xBB, 0xCC, // payload
        0x00, 0x02, // padding, last byte = count
    ];
    assert_eq!(rtp::payload(&packet).unwrap(), &[0xAA, 0xBB, 0xCC]);
}

#[test]
fn malformed_rtp_is_refused() {
    assert!(RtpHeader::parse(&[0x80, 0, 0]).is_err());
    let mut wrong_version = [0u8; 12];
    wrong_version[0] = 0x40;
    assert!(RtpHeader::parse(&wrong_version).is_err());
    let mut too_many_csrcs = [0u8; 16];
    too_many_csrcs[0] = 0x8F;
    assert!(RtpHeader::parse(&too_many_csrcs).is_err());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut copy = bytes.clone();
        let _ = RtpHeader::parse(&bytes);
        let _ = rtp::payload(&bytes);
        let _ = rtp::rewrite(&mut copy, &header(1, 2, 3));
        let _ = rtcp_packets(&bytes);
        let _ = rewrite_rtcp_ssrcs(&mut copy, 1, 2);
    }
}

fn receiver_report(sender: u32, reported: u32) -> Vec<u8> {
    let mut packet = vec![0x81, rtcp_type::RECEIVER_REPORT, 0, 7];
    packet.extend(sender.to_be_bytes());
    packet.extend(reported.to_be_bytes());
    packet.extend([0u8; 20]);
    packet
}

#[test]
fn rtcp_compound_packets_are_walked_and_ssrcs_rewritten() {
    let mut compound = receiver_report(0x1111, 0x2222);
    // SDES with one chunk: SSRC + CNAME "ab" + end, padded to a word.
    compound.extend([
        0x81,
        rtcp_type::SOURCE_DESCRIPTION,
        0,
        2,
        0,
        0,
        0x11,
        0x11,
        1,
        2,
        b'a',
        b'b',
    ]);
    let packets = rtcp_packets(&compound).unwrap();
    assert_eq!(packets.len(), 2);
    assert_eq!(
        (packets[0].packet_type, packets[0].count, packets[0].length),
        (201, 1, 32)
    );
    assert_eq!(
        (packets[1].packet_type, packets[1].offset, packets[1].length),
        (202, 32, 12)
    );

    rewrite_rtcp_ssrcs(&mut compound, 0xAAAA, 0xBBBB).unwrap();
    assert_eq!(&compound[4..8], &0xAAAAu32.to_be_bytes());
    assert_eq!(&compound[8..12], &0xBBBBu32.to_be_bytes());
    assert_eq!(&compound[36..40], &0xAAAAu32.to_be_bytes());

    let mut cut = receiver_report(1, 2);
    cut.truncate(20);
    assert!(matches!(
        rtcp_packets(&cut),
        Err(RtpError::MalformedRtcp(_))
    ));
    let rtp_not_rtcp = [0x80u8, 0, 0, 1, 0, 0, 0, 0];
    assert!(rtcp_packets(&rtp_not_rtcp).is_err());
}

#[test]
fn outgoing_stream_keeps_one_ssrc_and_continuous_sequence_across_sources() {
    let start = Instant::now();
    let mut stream = OutgoingStream::new(0xCAFE, 1000, 50_000);
    let prompt = SourceId::Local(1);
    let mut last = None;
    for n in 0..10u16 {
        let at = start + Duration::from_millis(20) * u32::from(n);
        let out = stream.map(prompt, &header(n, u32::from(n) * 160, 0), at);
        assert_eq!(out.ssrc, 0xCAFE);
        assert_eq!(out.sequence, 1000 + n);
        assert_eq!(out.timestamp, 50_000 + u32::from(n) * 160);
        assert_eq!(out.marker, n == 0);
        last = Some(out);
    }
    let last = last.unwrap();
    // The far end's stream starts at arbitrary numbers, 35 ms after our last prompt frame.
    let bridged = SourceId::Relayed(0x5555);
    let at = start + Duration::from_millis(180 + 35);
    let first = stream.map(bridged, &header(40_000, 9_000_000, 0x5555), at);
    assert_eq!(first.sequence, last.sequence + 1);
    assert_eq!(first.timestamp, last.timestamp + 35 * 8);
    assert!(first.marker);
    // Loss in the relayed stream stays visible; a late packet maps back into place.
    let after_gap = stream.map(
        bridged,
        &header(40_003, 9_000_480, 0x5555),
        at + Duration::from_millis(60),
    );
    assert_eq!(after_gap.sequence, first.sequence + 3);
    assert_eq!(after_gap.timestamp, first.timestamp + 480);
    let late = stream.map(
        bridged,
        &header(40_001, 9_000_160, 0x5555),
        at + Duration::from_millis(61),
    );
    assert_eq!(late.sequence, first.sequence + 1);
    // Switching back continues after the newest packet, not the late one.
    let back = stream.map(
        SourceId::Local(2),
        &header(0, 0, 0),
        at + Duration::from_millis(80),
    );
    assert_eq!(back.sequence, after_gap.sequence + 1);
    assert_eq!(back.timestamp, after_gap.timestamp + 20 * 8);
}

#[test]
fn sequence_and_timestamp_wrap() {
    let now = Instant::now();
    let mut stream = OutgoingStream::new(1, 65534, u32::MAX - 100);
    let source = SourceId::Relayed(2);
    let a = stream.map(source, &header(10, 0, 2), now);
    let b = stream.map(source, &header(11, 160, 2), now);
    let c = stream.map(source, &header(12, 320, 2), now);
    assert_eq!((a.sequence, b.sequence, c.sequence), (65534, 65535, 0));
    assert_eq!(c.timestamp, (u32::MAX - 100).wrapping_add(320));
}

#[test]
fn port_allocator_hands_out_even_pairs_round_robin() {
    let mut ports = PortAllocator::new(10001, 10010).unwrap();
    assert_eq!(ports.capacity(), 4); // 10002, 10004, 10006, 10008 (10010 has no room for RTCP)
    let first = ports.allocate().unwrap();
    assert_eq!((first.rtp, first.rtcp), (10002, 10003));
    let taken: Vec<u16> = (0..3).map(|_| ports.allocate().unwrap().rtp).collect();
    assert_eq!(taken, vec![10004, 10006, 10008]);
    assert_eq!(ports.allocate().unwrap_err(), PortError::Exhausted(4));
    ports.release(10004).unwrap();
    assert_eq!(
        ports.release(10004).unwrap_err(),
        PortError::NotAllocated(10004)
    );
    assert_eq!(
        ports.release(10005).unwrap_err(),
        PortError::NotAllocated(10005)
    );
    assert_eq!(
        ports.release(9000).unwrap_err(),
        PortError::NotAllocated(9000)
    );
    assert_eq!(ports.allocate().unwrap().rtp, 10004);
    assert_eq!(ports.in_use(), 4);
    assert!(matches!(
        PortAllocator::new(5000, 5000),
        Err(PortError::EmptyRange { .. })
    ));
}

#[test]
fn latching_follows_the_first_source_and_resists_hijacking() {
    let signalled: SocketAddr = "192.0.2.10:4000".parse().unwrap();
    let nat: SocketAddr = "198.51.100.7:61000".parse().unwrap();
    let attacker: SocketAddr = "203.0.113.66:5555".parse().unwrap();
    let start = Instant::now();
    let mut latch = Latch::new(Some(signalled), Duration::from_secs(1));
    assert_eq!(latch.destination(), Some(signalled));
    assert_eq!(latch.on_packet(nat, start), LatchDecision::Latched(nat));
    assert_eq!(latch.destination(), Some(nat));
    let mut now = start;
    for _ in 0..50 {
        now += Duration::from_millis(20);
        assert_eq!(latch.on_packet(nat, now), LatchDecision::Accept);
        assert_eq!(latch.on_packet(attacker, now), LatchDecision::Reject);
    }
    assert_eq!(latch.destination(), Some(nat));
    // After a second of silence from the latched source a new one may take over (NAT rebinding).
    now += Duration::from_millis(999);
    assert_eq!(latch.on_packet(attacker, now), LatchDecision::Reject);
    now += Duration::from_millis(1);
    let rebound: SocketAddr = "198.51.100.7:61002".parse().unwrap();
    assert_eq!(
        latch.on_packet(rebound, now),
        LatchDecision::Latched(rebound)
    );
    // A re-INVITE allows the next source to latch immediately.
    latch.renegotiated(Some(signalled));
    assert_eq!(
        latch.on_packet(signalled, now),
        LatchDecision::Latched(signalled)
    );
}

#[test]
fn a_leg_limited_to_its_hosts_never_latches_a_stranger_even_first() {
    let signalled: SocketAddr = "192.0.2.10:4000".parse().unwrap();
    let sip_peer: std::net::IpAddr = "198.51.100.7".parse().unwrap();
    let attacker: SocketAddr = "203.0.113.66:5555".parse().unwrap();
    let start = Instant::now();
    let mut latch = Latch::new(Some(signalled), Duration::from_secs(1));
    latch.allow_only(&[signalled.ip(), sip_peer]);
    // The stranger sends before the caller: dropped, and media still goes to the SDP address.
    assert_eq!(latch.on_packet(attacker, start), LatchDecision::Foreign);
    assert_eq!(latch.destination(), Some(signalled));
    // The caller behind NAT: the SIP peer's host on another port latches.
    let nat: SocketAddr = SocketAddr::new(sip_peer, 61000);
    assert_eq!(latch.on_packet(nat, start), LatchDecision::Latched(nat));
    // Long silence does not open the door to a stranger either.
    let later = start + Duration::from_secs(10);
    assert_eq!(latch.on_packet(attacker, later), LatchDecision::Foreign);
    // IPv4-mapped IPv6 is the same host.
    let mapped: SocketAddr = "[::ffff:192.0.2.10]:4000".parse().unwrap();
    assert_eq!(
        latch.on_packet(mapped, later),
        LatchDecision::Latched(mapped)
    );
}

proptest! {
    /// However sources alternate (prompt, far end, a new far-end SSRC after a re-INVITE), each
    /// with its own random numbering, a 20 ms paced output is perfectly continuous: one SSRC,
    /// sequence +1, timestamp +160, and the marker exactly at each switch.
    #[test]
    fn switching_sources_keeps_the_output_continuous(
        spurts in proptest::collection::vec((0u32..3, 1usize..40, any::<u16>(), any::<u32>()), 1..20),
        first_sequence in any::<u16>(),
        first_timestamp in any::<u32>(),
    ) {
        let start = Instant::now();
        let mut stream = OutgoingStream::new(77, first_sequence, first_timestamp);
        let mut previous: Option<(RtpHeader, SourceId)> = None;
        let mut slot = 0u32;
        let mut last_incoming: Option<(SourceId, RtpHeader)> = None;
        for (source_index, count, mut sequence, mut timestamp) in spurts {
            let source = match source_index {
                0 => SourceId::Local(1),
                1 => SourceId::Relayed(0xAAAA),
                _ => SourceId::Relayed(0xBBBB),
            };
            // The same source again just continues its own numbering.
            if let Some((last_source, last)) = last_incoming
                && last_source == source
            {
                sequence = last.sequence.wrapping_add(1);
                timestamp = last.timestamp.wrapping_add(160);
            }
            for n in 0..count {
                let incoming = header(
                    sequence.wrapping_add(n as u16),
                    timestamp.wrapping_add(n as u32 * 160),
                    0,
                );
                last_incoming = Some((source, incoming));
                let out = stream.map(source, &incoming, start + Duration::from_millis(20) * slot);
                slot += 1;
                prop_assert_eq!(out.ssrc, 77);
                match previous {
                    None => {
                        prop_assert_eq!(out.sequence, first_sequence);
                        prop_assert_eq!(out.timestamp, first_timestamp);
                    }
                    Some((last, last_source)) => {
                        prop_assert_eq!(out.sequence, last.sequence.wrapping_add(1));
                        prop_assert_eq!(out.timestamp, last.timestamp.wrapping_add(160));
                        prop_assert_eq!(out.marker, last_source != source);
                    }
                }
                previous = Some((out, source));
            }
        }
    }
}
