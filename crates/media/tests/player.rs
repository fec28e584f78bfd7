//! The prompt player on a virtual clock.

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use talktime_media::prompt::FRAME_SAMPLES;
use talktime_media::{Law, PlayItem, Prompt, PromptCache, PromptPlayer, Tone};

fn shipped(names: &[&str]) -> Vec<Arc<Prompt>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prompts/en");
    let mut cache = PromptCache::new();
    names
        .iter()
        .map(|name| {
            let bytes = std::fs::read(root.join(format!("{name}.wav"))).unwrap();
            cache.load(name, &bytes).unwrap()
        })
        .collect()
}

/// What a receiver saw: (arrival time, due time, sequence, timestamp, marker, payload).
type ReceivedFrame = (Instant, Instant, u16, u32, bool, Vec<u8>);
type Received = Vec<ReceivedFrame>;

/// Polls every `step` until the player is done.
fn run(player: &mut PromptPlayer, start: Instant, step: Duration) -> Received {
    let mut received = Vec::new();
    let mut now = start;
    while !player.is_finished() {
        while let Some(frame) = player.poll(now) {
            received.push((
                now,
                frame.due,
                frame.sequence,
                frame.timestamp,
                frame.marker,
                frame.payload.to_vec(),
            ));
        }
        now += step;
        assert!(
            now < start + Duration::from_secs(600),
            "player never finished"
        );
    }
    received
}

#[test]
fn a_minute_of_prompts_is_paced_exactly_and_sounds_like_the_prompts() {
    let sentence = shipped(&["you_have", "num_12", "dollars", "and", "num_50", "cents"]);
    let mut items = Vec::new();
    let mut expected_samples: Vec<i16> = Vec::new();
    while expected_samples.len() < 60 * 8000 {
        for prompt in &sentence {
            items.push(PlayItem::Prompt(Arc::clone(prompt)));
            expected_samples.extend(
                prompt
                    .samples()
                    .iter()
                    .map(|s| Law::MuLaw.decode(Law::MuLaw.encode(*s))),
            );
        }
    }
    let start = Instant::now();
    let mut player = PromptPlayer::new(Law::MuLaw, items, start);
    // An irregular poll interval, as a real timer would give.
    let received = run(&mut player, start, Duration::from_millis(7));

    assert_eq!(received.len() * FRAME_SAMPLES, expected_samples.len());
    assert!(received.len() >= 3000, "only {} frames", received.len());
    for (index, (arrival, due, sequence, timestamp, marker, _)) in received.iter().enumerate() {
        assert_eq!(
            *due,
            start + Duration::from_millis(20) * index as u32,
            "frame {index} due"
        );
        assert!(
            *arrival >= *due && *arrival - *due < Duration::from_millis(7),
            "frame {index} late"
        );
        assert_eq!(*sequence, index as u16);
        assert_eq!(*timestamp, index as u32 * 160);
        assert_eq!(*marker, index == 0, "marker on frame {index}");
    }
    let decoded: Vec<i16> = received
        .iter()
        .flat_map(|(.., payload)| payload.iter().map(|c| Law::MuLaw.decode(*c)))
        .collect();
    assert_eq!(decoded, expected_samples);
}

#[test]
fn late_polling_catches_up_on_the_same_grid() {
    let prompt = shipped(&["welcome"]).remove(0);
    let start = Instant::now();
    let mut player = PromptPlayer::new(Law::ALaw, [PlayItem::Prompt(prompt)], start);
    let late = start + Duration::from_millis(1010);
    let mut dues = Vec::new();
    while let Some(frame) = player.poll(late) {
        dues.push(frame.due);
    }
    assert_eq!(dues.len(), 51);
    assert_eq!(*dues.last().unwrap(), start + Duration::from_millis(1000));
    assert_eq!(player.next_due(), Some(start + Duration::from_millis(1020)));
}

#[test]
fn silence_gap_sends_nothing_and_marks_the_next_talk_spurt() {
    let words = shipped(&["you_have", "num_12"]);
    let start = Instant::now();
    let items = [
        PlayItem::Prompt(Arc::clone(&words[0])),
        PlayItem::Silence(Duration::from_millis(300)),
        PlayItem::Prompt(Arc::clone(&words[1])),
    ];
    let mut player = PromptPlayer::new(Law::MuLaw, items, start);
    let received = run(&mut player, start, Duration::from_millis(5));
    let first_len = words[0].frame_count();
    assert_eq!(received.len(), first_len + words[1].frame_count());
    let (_, due_before, sequence_before, timestamp_before, ..) = &received[first_len - 1];
    let (_, due_after, sequence_after, timestamp_after, marker_after, _) = &received[first_len];
    assert_eq!(*sequence_after, sequence_before + 1);
    assert_eq!(*timestamp_after - timestamp_before, 160 * 16);
    assert_eq!(*due_after - *due_before, Duration::from_millis(320));
    assert!(*marker_after);
    assert_eq!(received.iter().filter(|r| r.4).count(), 2);
}

#[test]
fn barge_in_stops_only_interruptible_playback() {
    let prompt = shipped(&["enter_pin"]).remove(0);
    let start = Instant::now();
    let mut menu = PromptPlayer::new(Law::MuLaw, [PlayItem::Prompt(Arc::clone(&prompt))], start)
        .with_barge_in(true);
    assert!(menu.poll(start).is_some());
    assert!(menu.on_digit());
    assert!(menu.is_finished());
    assert!(menu.poll(start + Duration::from_secs(1)).is_none());

    let mut announcement = PromptPlayer::new(Law::MuLaw, [PlayItem::Prompt(prompt)], start);
    assert!(!announcement.on_digit());
    assert!(announcement.poll(start).is_some());
}

fn tone_frames(tone: Tone, law: Law) -> Received {
    let start = Instant::now();
    let mut player = PromptPlayer::new(law, [PlayItem::Tone(tone)], start);
    run(&mut player, start, Duration::from_millis(20))
}

fn decode_frames(frames: &[ReceivedFrame], law: Law) -> Vec<i16> {
    frames
        .iter()
        .flat_map(|f| f.5.iter().map(|c| law.decode(*c)))
        .collect()
}

#[test]
fn us_ringback_is_440_plus_480_two_seconds_on_four_off() {
    let frames = tone_frames(Tone::ringback_us(Duration::from_secs(12)), Law::MuLaw);
    // Two cadences: 2 × 100 frames on, nothing during the 4 s off.
    assert_eq!(frames.len(), 200);
    assert_eq!(frames.iter().filter(|f| f.4).count(), 2);
    assert_eq!(frames[100].3 - frames[99].3, 160 * 201);
    let samples = decode_frames(&frames[..100], Law::MuLaw);
    let power = |f| common::goertzel_power(&samples, 8000, f);
    for wanted in [440.0, 480.0] {
        for unwanted in [425.0, 400.0, 520.0, 1000.0] {
            assert!(
                power(wanted) > 100.0 * power(unwanted),
                "{wanted} vs {unwanted}"
            );
        }
    }
}

#[test]
fn eu_ringback_and_warning_beep() {
    let frames = tone_frames(Tone::ringback_eu(Duration::from_secs(5)), Law::ALaw);
    assert_eq!(frames.len(), 50);
    let samples = decode_frames(&frames, Law::ALaw);
    assert!((common::dominant_frequency(&samples, 8000) - 425.0).abs() <= 5.0);

    let beep = tone_frames(Tone::warning_beep(), Law::MuLaw);
    assert_eq!(beep.len(), 15);
    let samples = decode_frames(&beep, Law::MuLaw);
    assert!((common::dominant_frequency(&samples, 8000) - 1000.0).abs() <= 5.0);
}
