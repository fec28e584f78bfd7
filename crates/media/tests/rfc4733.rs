//! RFC 4733 telephone-event streams with loss, duplication and reordering.

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::{Duration, Instant};

use talktime_media::dtmf::{Rfc4733Receiver, Rfc4733Sender, TelephoneEvent};
use talktime_media::{DtmfSendError, DtmfSource, RtpHeader};

/// The packets a phone sends for one key press: start (marker), updates every 20 ms, and the
/// end packet three times; all with the event's start timestamp.
fn key_press(
    digit_event: u8,
    timestamp: u32,
    first_sequence: u16,
    updates: u16,
) -> Vec<(RtpHeader, [u8; 4])> {
    let mut packets = Vec::new();
    let mut sequence = first_sequence;
    for update in 0..updates {
        let payload = TelephoneEvent {
            event: digit_event,
            end: false,
            volume: 10,
            duration: (update + 1) * 160,
        }
        .to_bytes();
        packets.push((header(sequence, timestamp, update == 0), payload));
        sequence = sequence.wrapping_add(1);
    }
    for _ in 0..3 {
        let payload = TelephoneEvent {
            event: digit_event,
            end: true,
            volume: 10,
            duration: updates * 160,
        }
        .to_bytes();
        packets.push((header(sequence, timestamp, false), payload));
        sequence = sequence.wrapping_add(1);
    }
    packets
}

fn header(sequence: u16, timestamp: u32, marker: bool) -> RtpHeader {
    RtpHeader {
        marker,
        payload_type: 101,
        sequence,
        timestamp,
        ssrc: 0x1234_5678,
    }
}

fn digits_heard(packets: &[(RtpHeader, [u8; 4])]) -> String {
    let mut receiver = Rfc4733Receiver::new();
    let now = Instant::now();
    packets
        .iter()
        .filter_map(|(h, p)| receiver.on_packet(h, p, now))
        .inspect(|event| assert_eq!(event.source, DtmfSource::Rfc4733))
        .map(|event| event.digit)
        .collect()
}

/// "1 1 2 #" as four presses, 400 ms apart in RTP time.
fn presses() -> Vec<Vec<(RtpHeader, [u8; 4])>> {
    [1u8, 1, 2, 11]
        .iter()
        .enumerate()
        .map(|(i, event)| key_press(*event, 1000 + i as u32 * 3200, 500 + i as u16 * 10, 5))
        .collect()
}

#[test]
fn clean_stream_reports_each_press_once_and_repeated_digits_twice() {
    let packets: Vec<_> = presses().concat();
    assert_eq!(digits_heard(&packets), "112#");
}

#[test]
fn every_packet_duplicated() {
    let packets: Vec<_> = presses()
        .concat()
        .into_iter()
        .flat_map(|p| [p, p])
        .collect();
    assert_eq!(digits_heard(&packets), "112#");
}

#[test]
fn start_packets_lost() {
    let packets: Vec<_> = presses()
        .into_iter()
        .flat_map(|press| press.into_iter().skip(2))
        .collect();
    assert_eq!(digits_heard(&packets), "112#");
}

#[test]
fn all_but_one_end_packet_lost_and_updates_lost() {
    let packets: Vec<_> = presses()
        .into_iter()
        .flat_map(|press| {
            let end = press.len() - 1;
            press
                .into_iter()
                .enumerate()
                .filter(move |(i, _)| *i == end)
                .map(|(_, p)| p)
        })
        .collect();
    assert_eq!(digits_heard(&packets), "112#");
}

#[test]
fn reordered_within_and_across_presses() {
    let mut packets: Vec<_> = presses().concat();
    // Deterministic shuffle of neighbours: swap pairs, then move a late end packet of the
    // first press after the second press.
    for pair in packets.chunks_mut(2) {
        pair.reverse();
    }
    let late = packets.remove(6);
    packets.insert(12, late);
    let heard = digits_heard(&packets);
    let mut sorted: Vec<char> = heard.chars().collect();
    sorted.sort_unstable();
    assert_eq!(sorted, vec!['#', '1', '1', '2'], "heard {heard:?}");
}

#[test]
fn flash_and_unknown_events_are_ignored_and_short_payloads_too() {
    let mut receiver = Rfc4733Receiver::new();
    let now = Instant::now();
    let flash = TelephoneEvent {
        event: 16,
        end: false,
        volume: 10,
        duration: 160,
    }
    .to_bytes();
    assert_eq!(receiver.on_packet(&header(1, 10, true), &flash, now), None);
    assert_eq!(
        receiver.on_packet(&header(2, 20, true), &[1, 2, 3], now),
        None
    );
}

#[test]
fn a_different_ssrc_with_the_same_timestamp_is_a_new_press() {
    let mut receiver = Rfc4733Receiver::new();
    let now = Instant::now();
    let payload = TelephoneEvent {
        event: 5,
        end: false,
        volume: 10,
        duration: 160,
    }
    .to_bytes();
    let first = header(1, 777, true);
    let second = RtpHeader { ssrc: 99, ..first };
    assert!(receiver.on_packet(&first, &payload, now).is_some());
    assert!(receiver.on_packet(&first, &payload, now).is_none());
    assert!(receiver.on_packet(&second, &payload, now).is_some());
}

#[test]
fn sender_emits_start_updates_and_three_end_packets_paced_at_20ms() {
    let start = Instant::now();
    let mut sender = Rfc4733Sender::new('#', Duration::from_millis(100), start).unwrap();
    let mut sent = Vec::new();
    let mut now = start;
    while !sender.is_finished() {
        while let Some(packet) = sender.poll(now) {
            sent.push((now - start, packet));
        }
        now += Duration::from_millis(5);
    }
    assert_eq!(sent.len(), 5 + 3);
    for (index, (at, packet)) in sent.iter().enumerate() {
        assert_eq!(*at, Duration::from_millis(20 * index as u64));
        assert_eq!(packet.sequence, index as u16);
        assert_eq!(packet.marker, index == 0);
        let event = TelephoneEvent::parse(&packet.payload).unwrap();
        assert_eq!(event.event, 11);
        assert_eq!(event.end, index >= 5);
        let expected = if index >= 5 {
            800
        } else {
            (index as u16 + 1) * 160
        };
        assert_eq!(event.duration, expected);
    }
    // Our own packets are understood by our receiver as one '#'.
    let packets: Vec<_> = sent
        .iter()
        .map(|(_, p)| (header(p.sequence, 4242, p.marker), p.payload))
        .collect();
    assert_eq!(digits_heard(&packets), "#");
    assert_eq!(
        Rfc4733Sender::new('x', Duration::from_millis(100), start).unwrap_err(),
        DtmfSendError::NotADigit('x')
    );
}
