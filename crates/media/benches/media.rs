//! Relay and prompt-player throughput. Run: `cargo bench -p talktime-media`.

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(clippy::unwrap_used)] // benches may unwrap

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use talktime_media::rtp;
use talktime_media::{
    InbandDetector, Law, LegConfig, PlayItem, Prompt, PromptPlayer, Relay, RtcpMode, RtpHeader,
    Side, Tone,
};

fn bridged_relay(inband: bool, now: Instant) -> Relay {
    let caller: SocketAddr = "198.51.100.7:61000".parse().unwrap();
    let carrier: SocketAddr = "203.0.113.50:20000".parse().unwrap();
    let mut a = LegConfig::g711(Law::MuLaw, Some(caller), 1).with_telephone_event(101);
    let mut b = LegConfig::g711(Law::MuLaw, Some(carrier), 2).with_telephone_event(96);
    a.inband_dtmf = inband;
    b.inband_dtmf = inband;
    let mut relay = Relay::new(RtcpMode::Terminate);
    relay.set_leg(Side::A, a, now);
    relay.set_leg(Side::B, b, now);
    relay.set_bridged(true);
    relay
}

fn relay_packets(c: &mut Criterion) {
    let mut group = c.benchmark_group("relay");
    group.throughput(Throughput::Elements(1));
    let carrier: SocketAddr = "203.0.113.50:20000".parse().unwrap();
    for (name, inband) in [
        ("rtp_forward", false),
        ("rtp_forward_with_inband_dtmf", true),
    ] {
        let start = Instant::now();
        let mut relay = bridged_relay(inband, start);
        let mut template = vec![0u8; 172];
        let header = RtpHeader {
            marker: false,
            payload_type: 0,
            sequence: 0,
            timestamp: 0,
            ssrc: 0xB,
        };
        let payload: Vec<u8> = (0..160)
            .map(|i| Law::MuLaw.encode((i * 97 % 2000) as i16))
            .collect();
        rtp::write(&mut template, &header, &payload).unwrap();
        let mut packet = template.clone();
        let mut n: u32 = 0;
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                n = n.wrapping_add(1);
                packet.copy_from_slice(&template);
                packet[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                packet[4..8].copy_from_slice(&(n.wrapping_mul(160)).to_be_bytes());
                let now = start + Duration::from_micros(u64::from(n) * 20);
                black_box(relay.handle_rtp(Side::B, carrier, black_box(&mut packet), now))
            })
        });
    }
    group.finish();
}

fn prompt_frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("prompt");
    group.throughput(Throughput::Elements(1));
    let prompt = Arc::new(Prompt::from_samples(
        (0..8000 * 60).map(|i| ((i * 37) % 4000) as i16).collect(),
    ));

    group.bench_function("player_frame", |bencher| {
        let start = Instant::now();
        let mut player = PromptPlayer::new(Law::MuLaw, [], start);
        let mut slot = 0u32;
        bencher.iter(|| {
            if player.is_finished() {
                player =
                    PromptPlayer::new(Law::MuLaw, [PlayItem::Prompt(Arc::clone(&prompt))], start);
                slot = 0;
            }
            let now = start + Duration::from_millis(20) * slot;
            slot += 1;
            black_box(player.poll(now).map(|f| f.payload.len()))
        })
    });

    group.bench_function("tone_frame", |bencher| {
        let start = Instant::now();
        let mut player = PromptPlayer::new(Law::MuLaw, [], start);
        let mut slot = 0u32;
        bencher.iter(|| {
            if player.is_finished() {
                let tone = Tone::cadence(
                    &[440.0, 480.0],
                    Duration::from_secs(60),
                    Duration::ZERO,
                    Duration::from_secs(60),
                );
                player = PromptPlayer::new(Law::MuLaw, [PlayItem::Tone(tone)], start);
                slot = 0;
            }
            let now = start + Duration::from_millis(20) * slot;
            slot += 1;
            black_box(player.poll(now).map(|f| f.payload.len()))
        })
    });

    // The whole local path the shell drives: player frame + stream rewrite + RTP write.
    group.bench_function("relay_poll_transmit_frame", |bencher| {
        let start = Instant::now();
        let mut relay = bridged_relay(false, start);
        let mut buffer = [0u8; 1500];
        let mut slot = 0u32;
        bencher.iter(|| {
            if !relay.is_playing(Side::A) {
                relay
                    .play(
                        Side::A,
                        [PlayItem::Prompt(Arc::clone(&prompt))],
                        false,
                        start + Duration::from_millis(20) * slot,
                    )
                    .unwrap();
            }
            let now = start + Duration::from_millis(20) * slot;
            slot += 1;
            black_box(relay.poll_transmit(now, &mut buffer).map(|t| t.length))
        })
    });
    group.finish();
}

fn inband_detector(c: &mut Criterion) {
    let mut group = c.benchmark_group("dtmf");
    group.throughput(Throughput::Elements(1));
    let frame: Vec<i16> = (0..160).map(|i| ((i * 131) % 3000) as i16 - 1500).collect();
    let mut detector = InbandDetector::default();
    let now = Instant::now();
    group.bench_function("inband_20ms_frame", |bencher| {
        bencher.iter(|| {
            let mut heard = 0;
            detector.process(black_box(&frame), now, |_| heard += 1);
            heard
        })
    });
    group.finish();
}

criterion_group!(benches, relay_packets, prompt_frames, inband_detector);
criterion_main!(benches);
