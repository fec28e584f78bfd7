//! The two-leg relay: payload integrity, one continuous stream across prompt → bridge, event
//! payload type mapping, DTMF, latching, inactivity and RTCP.

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use talktime_media::dtmf::TelephoneEvent;
use talktime_media::rtp::{self, rtcp_type};
use talktime_media::{
    DropReason, DtmfSendError, DtmfSource, Law, LegConfig, MediaEvent, PlayError, PlayItem, Prompt,
    Relay, RtcpMode, RtpAction, RtpHeader, Side, Tone,
};

const CALLER_SIGNALLED: &str = "192.168.1.20:7078";
const CALLER_REAL: &str = "198.51.100.7:61000";
const CARRIER: &str = "203.0.113.50:20000";
const CALLER_SSRC: u32 = 0x0A0A_0A0A;
const CARRIER_SSRC: u32 = 0x0B0B_0B0B;
const TOWARDS_CALLER_SSRC: u32 = 0x1111_1111;
const TOWARDS_CARRIER_SSRC: u32 = 0x2222_2222;

fn address(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Caller: PCMU with telephone-event 101; carrier: PCMU with telephone-event 96.
fn relay(now: Instant, rtcp: RtcpMode) -> Relay {
    let mut relay = Relay::new(rtcp);
    let caller = LegConfig::g711(
        Law::MuLaw,
        Some(address(CALLER_SIGNALLED)),
        TOWARDS_CALLER_SSRC,
    )
    .with_telephone_event(101);
    let carrier = LegConfig::g711(Law::MuLaw, Some(address(CARRIER)), TOWARDS_CARRIER_SSRC)
        .with_telephone_event(96);
    relay.set_leg(Side::A, caller, now);
    relay.set_leg(Side::B, carrier, now);
    relay
}

fn packet(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut buffer = vec![0u8; 12 + payload.len()];
    let header = RtpHeader {
        marker: false,
        payload_type,
        sequence,
        timestamp,
        ssrc,
    };
    rtp::write(&mut buffer, &header, payload).unwrap();
    buffer
}

fn events(relay: &mut Relay) -> Vec<MediaEvent> {
    std::iter::from_fn(|| relay.poll_event()).collect()
}

/// Runs the relay's local output until `until`, collecting what goes to `side`.
fn drain_local(
    relay: &mut Relay,
    from: Instant,
    until: Instant,
    side: Side,
) -> Vec<(Instant, Vec<u8>)> {
    let mut sent = Vec::new();
    let mut now = from;
    let mut buffer = [0u8; 1500];
    while now <= until {
        while let Some(transmit) = relay.poll_transmit(now, &mut buffer) {
            if transmit.side == side {
                sent.push((now, buffer[..transmit.length].to_vec()));
            }
        }
        now += Duration::from_millis(5);
    }
    sent
}

fn payload_bytes(seed: u16) -> Vec<u8> {
    (0..160u16)
        .map(|i| (i.wrapping_mul(31) ^ seed.wrapping_mul(7)) as u8)
        .collect()
}

#[test]
fn prompt_then_bridge_is_one_continuous_stream_with_payloads_untouched() {
    let start = Instant::now();
    let mut relay = relay(start, RtcpMode::Terminate);
    let prompt = Arc::new(Prompt::from_samples(vec![1000; 160 * 25])); // 0.5 s
    relay
        .play(Side::A, [PlayItem::Prompt(prompt)], false, start)
        .unwrap();
    let prompt_end = start + Duration::from_millis(600);
    let mut to_caller = drain_local(&mut relay, start, prompt_end, Side::A);
    assert_eq!(to_caller.len(), 25);
    assert!(events(&mut relay).contains(&MediaEvent::PlaybackFinished {
        side: Side::A,
        interrupted: false
    }));

    relay.set_bridged(true);
    let mut now = prompt_end;
    for n in 0..100u16 {
        now += Duration::from_millis(20);
        let payload = payload_bytes(n);
        let mut datagram = packet(
            0,
            30_000 + n,
            777_000 + u32::from(n) * 160,
            CARRIER_SSRC,
            &payload,
        );
        let action = relay.handle_rtp(Side::B, address(CARRIER), &mut datagram, now);
        assert_eq!(
            action,
            RtpAction::Forward {
                side: Side::A,
                destination: address(CALLER_SIGNALLED)
            }
        );
        assert_eq!(
            rtp::payload(&datagram).unwrap(),
            &payload[..],
            "payload {n} changed"
        );
        to_caller.push((now, datagram));
    }

    let headers: Vec<RtpHeader> = to_caller
        .iter()
        .map(|(_, p)| RtpHeader::parse(p).unwrap())
        .collect();
    for (index, pair) in headers.windows(2).enumerate() {
        assert_eq!(pair[1].ssrc, TOWARDS_CALLER_SSRC);
        assert_eq!(
            pair[1].sequence,
            pair[0].sequence.wrapping_add(1),
            "sequence gap after {index}"
        );
        assert_eq!(pair[1].payload_type, 0);
    }
    // At the switch: marker set and the timestamp advanced by the wall time between packets.
    let switch = 25;
    assert!(headers[0].marker && headers[switch].marker);
    assert_eq!(headers.iter().filter(|h| h.marker).count(), 2);
    let gap = to_caller[switch].0 - to_caller[switch - 1].0;
    let samples = (gap.as_micros() * 8 / 1000) as u32;
    assert_eq!(
        headers[switch]
            .timestamp
            .wrapping_sub(headers[switch - 1].timestamp),
        samples
    );
    for pair in headers[switch..].windows(2) {
        assert_eq!(pair[1].timestamp.wrapping_sub(pair[0].timestamp), 160);
    }
}

#[test]
fn telephone_events_are_mapped_between_legs_and_reported_once() {
    let start = Instant::now();
    let mut relay = relay(start, RtcpMode::Terminate);
    relay.set_bridged(true);
    let mut now = start;
    let mut forwarded = Vec::new();
    for (n, end) in [(0u16, false), (1, false), (2, true), (3, true), (4, true)] {
        now += Duration::from_millis(20);
        let event = TelephoneEvent {
            event: 9,
            end,
            volume: 10,
            duration: (n + 1) * 160,
        }
        .to_bytes();
        let mut datagram = packet(101, 100 + n, 4000, CALLER_SSRC, &event);
        let action = relay.handle_rtp(Side::A, address(CALLER_REAL), &mut datagram, now);
        assert_eq!(
            action,
            RtpAction::Forward {
                side: Side::B,
                destination: address(CARRIER)
            }
        );
        let header = RtpHeader::parse(&datagram).unwrap();
        assert_eq!(header.payload_type, 96);
        assert_eq!(header.ssrc, TOWARDS_CARRIER_SSRC);
        assert_eq!(rtp::payload(&datagram).unwrap(), &event[..]);
        forwarded.push(header);
    }
    // All packets of one event keep one timestamp on the far side too.
    assert!(
        forwarded
            .iter()
            .all(|h| h.timestamp == forwarded[0].timestamp)
    );
    let digits: Vec<_> = events(&mut relay)
        .into_iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf { side, event } => Some((side, event.digit, event.source)),
            _ => None,
        })
        .collect();
    assert_eq!(digits, vec![(Side::A, '9', DtmfSource::Rfc4733)]);
}

#[test]
fn events_to_a_leg_without_telephone_event_are_dropped_not_forwarded() {
    let start = Instant::now();
    let mut relay = relay(start, RtcpMode::Terminate);
    let plain = LegConfig::g711(Law::MuLaw, Some(address(CARRIER)), TOWARDS_CARRIER_SSRC);
    relay.set_leg(Side::B, plain, start);
    relay.set_bridged(true);
    let event = TelephoneEvent {
        event: 1,
        end: false,
        volume: 10,
        duration: 160,
    }
    .to_bytes();
    let mut datagram = packet(101, 1, 1, CALLER_SSRC, &event);
    assert_eq!(
        relay.handle_rtp(Side::A, address(CALLER_REAL), &mut datagram, start),
        RtpAction::Drop(DropReason::UnmappedPayloadType(101))
    );
    // The digit was still heard by the IVR.
    assert!(
        events(&mut relay)
            .iter()
            .any(|e| matches!(e, MediaEvent::Dtmf { .. }))
    );
    let mut unknown = packet(13, 2, 2, CALLER_SSRC, &[0x40]);
    assert_eq!(
        relay.handle_rtp(Side::A, address(CALLER_REAL), &mut unknown, start),
        RtpAction::Drop(DropReason::UnmappedPayloadType(13))
    );
}

#[test]
fn digit_barges_in_on_a_menu_and_ivr_audio_is_not_forwarded_before_bridging() {
    let start = Instant::now();
    let mut relay = relay(start, RtcpMode::Terminate);
    let prompt = Arc::new(Prompt::from_samples(vec![500; 160 * 100]));
    relay
        .play(Side::A, [PlayItem::Prompt(prompt)], true, start)
        .unwrap();
    drain_local(
        &mut relay,
        start,
        start + Duration::from_millis(100),
        Side::A,
    );
    assert!(relay.is_playing(Side::A));
    let mut audio = packet(0, 1, 160, CALLER_SSRC, &[0xFF; 160]);
    assert_eq!(
        relay.handle_rtp(
            Side::A,
            address(CALLER_REAL),
            &mut audio,
            start + Duration::from_millis(100)
        ),
        RtpAction::Drop(DropReason::NotBridged)
    );
    let event = TelephoneEvent {
        event: 3,
        end: false,
        volume: 10,
        duration: 160,
    }
    .to_bytes();
    let mut datagram = packet(101, 2, 320, CALLER_SSRC, &event);
    relay.handle_rtp(
        Side::A,
        address(CALLER_REAL),
        &mut datagram,
        start + Duration::from_millis(110),
    );
    assert!(!relay.is_playing(Side::A));
    let seen = events(&mut relay);
    assert!(seen.contains(&MediaEvent::Latched {
        side: Side::A,
        address: address(CALLER_REAL)
    }));
    assert!(seen.contains(&MediaEvent::PlaybackFinished {
        side: Side::A,
        interrupted: true
    }));
    assert!(
        seen.iter()
            .any(|e| matches!(e, MediaEvent::Dtmf { event, .. } if event.digit == '3'))
    );
    // Frames now go to the latched address.
    assert_eq!(relay.destination(Side::A), Some(address(CALLER_REAL)));
}

#[test]
fn inband_tones_in_the_callers_audio_become_digits() {
    let start = Instant::now();
    let mut relay = Relay::new(RtcpMode::Terminate);
    relay.set_leg(Side::A, LegConfig::g711(Law::ALaw, None, 1), start);
    let samples: Vec<i16> = (0..160 * 6)
        .map(|n| {
            let t = f64::from(n) / 8000.0;
            let value = (2.0 * std::f64::consts::PI * 941.0 * t).sin()
                + (2.0 * std::f64::consts::PI * 1477.0 * t).sin();
            (value * 8000.0) as i16
        })
        .chain(std::iter::repeat_n(0, 160 * 4))
        .collect();
    for (n, frame) in samples.chunks(160).enumerate() {
        let codes: Vec<u8> = frame.iter().map(|s| Law::ALaw.encode(*s)).collect();
        let mut datagram = packet(8, n as u16, n as u32 * 160, CALLER_SSRC, &codes);
        relay.handle_rtp(
            Side::A,
            address(CALLER_REAL),
            &mut datagram,
            start + Duration::from_millis(20 * n as u64),
        );
    }
    let digits: Vec<_> = events(&mut relay)
        .into_iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf { event, .. } => Some((event.digit, event.source)),
            _ => None,
        })
        .collect();
    assert_eq!(digits, vec![('#', DtmfSource::Inband)]);
}

#[test]
fn hijack_attempts_are_dropped_while_the_caller_talks() {
    let start = Instant::now();
    let mut relay = relay(start, RtcpMode::Terminate);
    relay.set_bridged(true);
    let attacker = address("203.0.113.66:5555");
    let mut now = start;
    for n in 0..10u16 {
        now += Duration::from_millis(20);
        let mut good = packet(0, n, u32::from(n) * 160, CALLER_SSRC, &[0xFF; 160]);
        assert!(matches!(
            relay.handle_rtp(Side::A, address(CALLER_REAL), &mut good, now),
            RtpAction::Forward { .. }
        ));
        let mut bad = packet(0, n, u32::from(n) * 160, 0x6666, &[0x00; 160]);
        assert_eq!(
            relay.handle_rtp(Side::A, attacker, &mut bad, now),
            RtpAction::Drop(DropReason::NotLatchedSource)
        );
    }
    assert_eq!(relay.destination(Side::A), Some(address(CALLER_REAL)));
    let mut junk = vec![0x12, 0x34];
    assert!(matches!(
        relay.handle_rtp(Side::A, address(CALLER_REAL), &mut junk, now),
        RtpAction::Drop(DropReason::Malformed(_))
    ));
}

#[test]
fn inactivity_is_reported_once_per_silence() {
    let start = Instant::now();
    let mut relay = relay(start, RtcpMode::Terminate);
    assert_eq!(relay.poll_timeout(), Some(start + Duration::from_secs(30)));
    let mut audio = packet(0, 1, 160, CARRIER_SSRC, &[0xFF; 160]);
    relay.handle_rtp(
        Side::B,
        address(CARRIER),
        &mut audio,
        start + Duration::from_secs(10),
    );
    relay.handle_timeout(start + Duration::from_secs(30));
    let seen = events(&mut relay);
    assert!(seen.contains(&MediaEvent::Inactive { side: Side::A }));
    assert!(!seen.contains(&MediaEvent::Inactive { side: Side::B }));
    assert_eq!(relay.poll_timeout(), Some(start + Duration::from_secs(40)));
    relay.handle_timeout(start + Duration::from_secs(40));
    relay.handle_timeout(start + Duration::from_secs(50));
    let later = events(&mut relay);
    assert_eq!(later, vec![MediaEvent::Inactive { side: Side::B }]);
    assert_eq!(relay.poll_timeout(), None);
}

#[test]
fn rtcp_is_terminated_or_relayed_with_rewritten_ssrcs() {
    let start = Instant::now();
    let mut report = vec![0x81, rtcp_type::RECEIVER_REPORT, 0, 7];
    report.extend(CALLER_SSRC.to_be_bytes());
    report.extend(TOWARDS_CALLER_SSRC.to_be_bytes());
    report.extend([0u8; 20]);
    let caller_rtcp = address("198.51.100.7:61001");

    let mut terminating = relay(start, RtcpMode::Terminate);
    terminating.set_bridged(true);
    let mut copy = report.clone();
    assert_eq!(
        terminating.handle_rtcp(Side::A, caller_rtcp, &mut copy, start),
        RtpAction::Drop(DropReason::RtcpTerminated)
    );

    let mut relaying = relay(start, RtcpMode::Relay);
    relaying.set_bridged(true);
    let mut audio = packet(0, 1, 160, CARRIER_SSRC, &[0xFF; 160]);
    relaying.handle_rtp(Side::B, address(CARRIER), &mut audio, start);
    let action = relaying.handle_rtcp(Side::A, caller_rtcp, &mut report, start);
    assert_eq!(
        action,
        RtpAction::Forward {
            side: Side::B,
            destination: address("203.0.113.50:20001")
        }
    );
    assert_eq!(&report[4..8], &TOWARDS_CARRIER_SSRC.to_be_bytes());
    assert_eq!(&report[8..12], &CARRIER_SSRC.to_be_bytes());
}

#[test]
fn digits_sent_to_the_carrier_use_its_event_payload_type() {
    let start = Instant::now();
    let mut relay = relay(start, RtcpMode::Terminate);
    relay
        .send_digit(Side::B, '7', Duration::from_millis(100), start)
        .unwrap();
    let sent = drain_local(
        &mut relay,
        start,
        start + Duration::from_millis(300),
        Side::B,
    );
    assert_eq!(sent.len(), 8);
    let headers: Vec<RtpHeader> = sent
        .iter()
        .map(|(_, p)| RtpHeader::parse(p).unwrap())
        .collect();
    assert!(
        headers
            .iter()
            .all(|h| h.payload_type == 96 && h.ssrc == TOWARDS_CARRIER_SSRC)
    );
    assert!(headers.iter().all(|h| h.timestamp == headers[0].timestamp));
    assert!(headers[0].marker && headers[1..].iter().all(|h| !h.marker));
    let last = TelephoneEvent::parse(rtp::payload(&sent[7].1).unwrap()).unwrap();
    assert!(last.end && last.event == 7);

    let plain = LegConfig::g711(Law::MuLaw, Some(address(CARRIER)), 5);
    relay.set_leg(Side::B, plain, start);
    assert_eq!(
        relay.send_digit(Side::B, '7', Duration::from_millis(100), start),
        Err(DtmfSendError::NotNegotiated)
    );
}

#[test]
fn prompts_need_g711_and_an_existing_leg() {
    let start = Instant::now();
    let mut relay = Relay::new(RtcpMode::Terminate);
    let tone = || [PlayItem::Tone(Tone::warning_beep())];
    assert_eq!(
        relay.play(Side::A, tone(), false, start),
        Err(PlayError::NoSuchLeg)
    );
    let mut g729 = LegConfig::g711(Law::MuLaw, None, 1);
    g729.law = None;
    g729.audio_payload_type = 18;
    relay.set_leg(Side::A, g729, start);
    assert_eq!(
        relay.play(Side::A, tone(), false, start),
        Err(PlayError::NotG711)
    );
}

#[test]
fn warning_beep_during_the_call_wins_over_relayed_audio_then_the_call_resumes() {
    let start = Instant::now();
    let mut relay = relay(start, RtcpMode::Terminate);
    relay.set_bridged(true);
    let mut now = start;
    let mut to_caller: Vec<RtpHeader> = Vec::new();
    let mut buffer = [0u8; 1500];
    for sequence in 0..60u16 {
        now += Duration::from_millis(20);
        if sequence == 20 {
            relay
                .play(Side::A, [PlayItem::Tone(Tone::warning_beep())], false, now)
                .unwrap();
        }
        while let Some(transmit) = relay.poll_transmit(now, &mut buffer) {
            to_caller.push(RtpHeader::parse(&buffer[..transmit.length]).unwrap());
        }
        let mut datagram = packet(
            0,
            sequence,
            u32::from(sequence) * 160,
            CARRIER_SSRC,
            &[0xFF; 160],
        );
        if let RtpAction::Forward { .. } =
            relay.handle_rtp(Side::B, address(CARRIER), &mut datagram, now)
        {
            to_caller.push(RtpHeader::parse(&datagram).unwrap());
        }
    }
    for pair in to_caller.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        assert_eq!(pair[1].ssrc, TOWARDS_CALLER_SSRC);
    }
    // The beep is 15 frames; the call resumes with the marker set.
    assert_eq!(to_caller.len(), 60);
    assert_eq!(to_caller.iter().filter(|h| h.marker).count(), 3);
}

#[test]
fn g729_is_passed_through_untouched() {
    let start = Instant::now();
    let mut relay = Relay::new(RtcpMode::Terminate);
    for (side, remote, ssrc) in [(Side::A, CALLER_SIGNALLED, 1), (Side::B, CARRIER, 2)] {
        let mut leg = LegConfig::g711(Law::MuLaw, Some(address(remote)), ssrc);
        leg.law = None;
        leg.audio_payload_type = 18;
        relay.set_leg(side, leg, start);
    }
    relay.set_bridged(true);
    // Two 10-byte G.729 frames per 20 ms packet.
    let frames: Vec<u8> = (0..20).map(|i| i * 13).collect();
    let mut datagram = packet(18, 9, 160, CALLER_SSRC, &frames);
    let action = relay.handle_rtp(Side::A, address(CALLER_REAL), &mut datagram, start);
    assert_eq!(
        action,
        RtpAction::Forward {
            side: Side::B,
            destination: address(CARRIER)
        }
    );
    assert_eq!(rtp::payload(&datagram).unwrap(), &frames[..]);
    assert_eq!(RtpHeader::parse(&datagram).unwrap().payload_type, 18);
}

#[test]
fn sender_reports_describe_what_we_sent() {
    let start = Instant::now();
    let mut relay = relay(start, RtcpMode::Terminate);
    let prompt = Arc::new(Prompt::from_samples(vec![0; 160 * 10]));
    relay
        .play(Side::A, [PlayItem::Prompt(prompt)], false, start)
        .unwrap();
    let sent = drain_local(
        &mut relay,
        start,
        start + Duration::from_millis(300),
        Side::A,
    );
    let last = RtpHeader::parse(&sent.last().unwrap().1).unwrap();
    let mut buffer = [0u8; 64];
    let at = start + Duration::from_millis(400);
    let transmit = relay
        .sender_report(Side::A, 0x0102_0304_0506_0708, at, &mut buffer)
        .unwrap();
    assert_eq!(transmit.destination, address("192.168.1.20:7079"));
    let report = &buffer[..transmit.length];
    let packets = talktime_media::rtp::rtcp_packets(report).unwrap();
    assert_eq!(
        (packets.len(), packets[0].packet_type),
        (1, rtcp_type::SENDER_REPORT)
    );
    let word = |at: usize| u32::from_be_bytes(report[at..at + 4].try_into().unwrap());
    assert_eq!(word(4), TOWARDS_CALLER_SSRC);
    assert_eq!(&report[8..16], &0x0102_0304_0506_0708u64.to_be_bytes());
    // The last frame went out at 180 ms; 220 ms later the RTP clock is 1760 samples on.
    assert_eq!(word(16), last.timestamp.wrapping_add(1760));
    assert_eq!(word(20), 10);
    assert_eq!(word(24), 1600);
}

#[test]
fn inactivity_can_be_disabled_while_on_hold() {
    let start = Instant::now();
    let mut relay = relay(start, RtcpMode::Terminate);
    let mut held = LegConfig::g711(Law::MuLaw, None, TOWARDS_CALLER_SSRC);
    held.inactivity_timeout = Duration::MAX;
    relay.set_leg(Side::A, held, start);
    assert_eq!(relay.poll_timeout(), Some(start + Duration::from_secs(30)));
    relay.handle_timeout(start + Duration::from_secs(3600));
    assert_eq!(
        events(&mut relay),
        vec![MediaEvent::Inactive { side: Side::B }]
    );
}

#[test]
fn a_shell_driven_by_poll_timeout_sends_a_minute_of_prompts_every_20ms() {
    let start = Instant::now();
    let mut relay = relay(start, RtcpMode::Terminate);
    let samples: Vec<i16> = (0..8000 * 61i64)
        .map(|n| ((n * 7919) % 20000 - 10000) as i16)
        .collect();
    let prompt = Arc::new(Prompt::from_samples(samples.clone()));
    relay
        .play(Side::A, [PlayItem::Prompt(prompt)], false, start)
        .unwrap();
    let mut buffer = [0u8; 1500];
    let mut received: Vec<(Instant, RtpHeader, Vec<u8>)> = Vec::new();
    let mut finished = false;
    // The shell sleeps until poll_timeout, then polls; no other clock.
    while let Some(wake) = relay.poll_timeout() {
        if finished {
            break;
        }
        relay.handle_timeout(wake);
        while let Some(transmit) = relay.poll_transmit(wake, &mut buffer) {
            let datagram = &buffer[..transmit.length];
            received.push((
                wake,
                RtpHeader::parse(datagram).unwrap(),
                rtp::payload(datagram).unwrap().to_vec(),
            ));
        }
        finished = events(&mut relay).contains(&MediaEvent::PlaybackFinished {
            side: Side::A,
            interrupted: false,
        });
    }
    assert!(finished);
    assert_eq!(received.len(), 61 * 50);
    for (index, (at, header, _)) in received.iter().enumerate() {
        assert_eq!(
            *at,
            start + Duration::from_millis(20) * index as u32,
            "packet {index} time"
        );
        assert_eq!(header.ssrc, TOWARDS_CALLER_SSRC);
        if index > 0 {
            let previous = &received[index - 1].1;
            assert_eq!(header.sequence, previous.sequence.wrapping_add(1));
            assert_eq!(header.timestamp, previous.timestamp.wrapping_add(160));
        }
    }
    let decoded: Vec<i16> = received
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|c| Law::MuLaw.decode(*c)))
        .collect();
    let expected: Vec<i16> = samples
        .iter()
        .map(|s| Law::MuLaw.decode(Law::MuLaw.encode(*s)))
        .collect();
    assert_eq!(decoded, expected);
}

/// Prompts toward a leg with a prompt wait (issue 20) start when its first packet is accepted,
/// or when the wait runs out if none comes.
#[test]
fn prompts_wait_for_the_callers_first_packet_or_the_wait() {
    let prompt = Arc::new(Prompt::from_samples(vec![1000; 160 * 50]));
    let start = Instant::now();
    let caller = |wait_ms: u64| {
        let mut leg = LegConfig::g711(Law::MuLaw, Some(address(CALLER_SIGNALLED)), 7);
        leg.prompt_wait = Duration::from_millis(wait_ms);
        leg
    };
    let first_frame = |relay: &mut Relay| {
        drain_local(relay, start, start + Duration::from_secs(3), Side::A)
            .first()
            .map(|(at, _)| *at - start)
    };

    // Heard after 300 ms: prompts start then.
    let mut heard = Relay::new(RtcpMode::Terminate);
    heard.set_leg(Side::A, caller(1000), start);
    heard
        .play(Side::A, [PlayItem::Prompt(prompt.clone())], false, start)
        .unwrap();
    let mut buffer = [0u8; 1500];
    assert!(heard.poll_transmit(start, &mut buffer).is_none());
    let mut audio = packet(0, 1, 160, CALLER_SSRC, &[0xFF; 160]);
    let at = start + Duration::from_millis(300);
    heard.handle_rtp(Side::A, address(CALLER_SIGNALLED), &mut audio, at);
    let frame = heard.poll_transmit(at, &mut buffer);
    assert!(
        frame.is_some(),
        "the prompt starts on the caller's first packet"
    );

    // Never heard: after the wait.
    let mut silent = Relay::new(RtcpMode::Terminate);
    silent.set_leg(Side::A, caller(1000), start);
    silent
        .play(Side::A, [PlayItem::Prompt(prompt.clone())], false, start)
        .unwrap();
    assert_eq!(first_frame(&mut silent), Some(Duration::from_millis(1000)));

    // No wait: at once.
    let mut eager = Relay::new(RtcpMode::Terminate);
    eager.set_leg(Side::A, caller(0), start);
    eager
        .play(Side::A, [PlayItem::Prompt(prompt)], false, start)
        .unwrap();
    assert_eq!(first_frame(&mut eager), Some(Duration::ZERO));
}
