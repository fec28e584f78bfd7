//! A call's media task over real 127.0.0.1 sockets: a test caller and a test carrier on each
//! side of a call's media ([`MediaCalls`]), checking what each end really receives (payload bytes, one
//! continuous RTP stream across prompt → bridge, pacing) and what the core hears (digits).

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use talktime::media_session::MediaCalls;
use talktime::media_workers::MediaWorkers;
use talktime_b2bua::{MediaCommand, MediaReport};
use talktime_media::relay::{LegConfig, Side};
use talktime_media::{Law, PlayItem, PortAllocator, Prompt, PromptCache};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const CALL: u64 = 7;
const CALLER_SSRC: u32 = 0x1111_2222;
const CARRIER_SSRC: u32 = 0x3333_4444;
const PCMU: u8 = 0;
/// How long any single expected datagram or report may take before the test fails.
const WAIT: Duration = Duration::from_secs(3);

/// The fields a receiver checks, read straight from the bytes (not through the media crate).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Received {
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: Vec<u8>,
    at: Instant,
}

fn parse(datagram: &[u8], at: Instant) -> Received {
    assert!(
        datagram.len() >= 12,
        "short datagram: {} bytes",
        datagram.len()
    );
    assert_eq!(datagram[0] >> 6, 2, "RTP version");
    assert_eq!(
        datagram[0] & 0x3F,
        0,
        "no padding, extension or CSRCs expected"
    );
    Received {
        marker: datagram[1] & 0x80 != 0,
        payload_type: datagram[1] & 0x7F,
        sequence: u16::from_be_bytes([datagram[2], datagram[3]]),
        timestamp: u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]),
        ssrc: u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]),
        payload: datagram[12..].to_vec(),
        at,
    }
}

fn rtp(payload_type: u8, marker: bool, sequence: u16, timestamp: u32, ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, (u8::from(marker) << 7) | payload_type];
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet
}

/// One call's media with a caller socket on leg A and a carrier socket on leg B, opened
/// and commanded the way the shell carries out the switch's media commands.
struct Call {
    media: MediaCalls,
    ports: [u16; 2],
    caller: UdpSocket,
    carrier: UdpSocket,
    reports: mpsc::UnboundedReceiver<(u64, MediaReport)>,
}

impl Call {
    /// Opens a call on a port range of its own (retrying past ports other processes hold),
    /// on one media thread, as in a switch on one core.
    async fn open(first_port: u16) -> Call {
        let mut allocator = PortAllocator::new(first_port, first_port + 199).unwrap();
        let (sender, reports) = mpsc::unbounded_channel();
        let workers = MediaWorkers::start(1, std::time::Duration::from_micros(500)).unwrap();
        let mut media = MediaCalls::new(workers, sender);
        let mut attempt = 0;
        let ports = loop {
            let ports = [
                allocator.allocate().unwrap().rtp,
                allocator.allocate().unwrap().rtp,
            ];
            match media.open(CALL, LOOPBACK, ports, Duration::from_secs(30)) {
                Ok(()) => break ports,
                Err((port, error)) if attempt < 20 => {
                    attempt += 1;
                    eprintln!("retrying open: port {port}: {error}");
                }
                Err((port, error)) => panic!("cannot open a call's media: port {port}: {error}"),
            }
        };
        let caller = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
        let carrier = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
        Call {
            media,
            ports,
            caller,
            carrier,
            reports,
        }
    }

    fn send(&mut self, command: MediaCommand) {
        self.media.execute(CALL, command);
    }

    fn port(&self, side: Side) -> u16 {
        match side {
            Side::A => self.ports[0],
            Side::B => self.ports[1],
        }
    }

    fn relay_address(&self, side: Side) -> SocketAddr {
        SocketAddr::new(LOOPBACK, self.port(side))
    }

    /// Both legs as the shell sets them up: G.711 µ-law, signalled addresses = our sockets.
    fn set_legs(&mut self, caller_event: Option<u8>, carrier_event: Option<u8>) {
        let mut caller = LegConfig::g711(
            Law::MuLaw,
            Some(self.caller.local_addr().unwrap()),
            CALLER_SSRC,
        );
        caller.send_telephone_event = caller_event;
        caller.receive_telephone_event = caller_event;
        let mut carrier = LegConfig::g711(
            Law::MuLaw,
            Some(self.carrier.local_addr().unwrap()),
            CARRIER_SSRC,
        );
        carrier.send_telephone_event = carrier_event;
        carrier.receive_telephone_event = carrier_event;
        self.send(MediaCommand::SetLeg(Side::A, caller));
        self.send(MediaCommand::SetLeg(Side::B, carrier));
    }

    /// Commands reach the media task through a channel it polls alongside the sockets, so a
    /// datagram sent right after a command may be handled first (and dropped as "no such leg").
    /// Like the SIP side (the answer goes out after `SetLeg`), give the task a moment.
    async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    async fn send_from(&self, side: Side, packet: &[u8]) {
        let (socket, to) = match side {
            Side::A => (&self.caller, self.relay_address(Side::A)),
            Side::B => (&self.carrier, self.relay_address(Side::B)),
        };
        socket.send_to(packet, to).await.unwrap();
    }

    async fn next_report(&mut self) -> MediaReport {
        let (call, report) = timeout(WAIT, self.reports.recv())
            .await
            .expect("a media report in time")
            .expect("the report channel open");
        assert_eq!(call, CALL, "reports carry the call key");
        report
    }

    fn close(mut self) {
        self.send(MediaCommand::Close);
    }
}

async fn receive(socket: &UdpSocket, from: SocketAddr) -> Received {
    let mut buffer = [0u8; 2048];
    let (length, source) = timeout(WAIT, socket.recv_from(&mut buffer))
        .await
        .expect("a datagram in time")
        .unwrap();
    assert_eq!(
        source, from,
        "media comes from the relay port of the leg (symmetric RTP)"
    );
    parse(&buffer[..length], Instant::now())
}

/// The payload a test endpoint puts in its packet `index`: no two packets alike.
fn payload_for(side: Side, index: usize) -> Vec<u8> {
    let salt = match side {
        Side::A => 17usize,
        Side::B => 101,
    };
    (0..160)
        .map(|byte| ((index * 31 + byte * salt + byte * byte) % 251) as u8)
        .collect()
}

/// Checks one received stream: one SSRC, sequence numbers +1 each packet (wrapping), RTP
/// timestamps +160 each packet, the marker only on the first packet.
fn assert_continuous(stream: &[Received], ssrc: u32, first_sequence: u16) {
    assert_eq!(
        stream[0].sequence, first_sequence,
        "the leg's first sequence number"
    );
    assert!(
        stream[0].marker,
        "the first packet of a new source has the marker bit"
    );
    for pair in stream.windows(2) {
        assert_eq!(pair[1].ssrc, ssrc);
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(160));
        assert!(!pair[1].marker, "no marker inside one talk spurt");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridged_g711_reaches_both_ends_unchanged_and_continuous() {
    let mut call = Call::open(31_000).await;
    call.set_legs(None, None);
    call.send(MediaCommand::Bridge(true));
    call.settle().await;
    let caller_relay = call.relay_address(Side::A);
    let carrier_relay = call.relay_address(Side::B);

    const PACKETS: usize = 500;
    const BATCH: usize = 10;
    // Both senders start near the 16-bit / 32-bit wrap so the rewriting crosses it.
    let first_sequence = 65_300u16;
    let first_timestamp = u32::MAX - 160 * 100;
    let mut at_carrier = Vec::with_capacity(PACKETS);
    let mut at_caller = Vec::with_capacity(PACKETS);
    for batch in 0..PACKETS / BATCH {
        for index in batch * BATCH..(batch + 1) * BATCH {
            let sequence = first_sequence.wrapping_add(index as u16);
            let timestamp = first_timestamp.wrapping_add(160 * index as u32);
            let mut packet = rtp(PCMU, false, sequence, timestamp, 0xCA11_E700);
            packet.extend(payload_for(Side::A, index));
            call.send_from(Side::A, &packet).await;
            let mut packet = rtp(PCMU, false, sequence, timestamp, 0xCA88_1E80);
            packet.extend(payload_for(Side::B, index));
            call.send_from(Side::B, &packet).await;
        }
        for _ in 0..BATCH {
            at_carrier.push(receive(&call.carrier, carrier_relay).await);
            at_caller.push(receive(&call.caller, caller_relay).await);
        }
    }

    for (index, packet) in at_carrier.iter().enumerate() {
        assert_eq!(
            packet.payload,
            payload_for(Side::A, index),
            "caller packet {index}"
        );
        assert_eq!(packet.payload_type, PCMU);
    }
    for (index, packet) in at_caller.iter().enumerate() {
        assert_eq!(
            packet.payload,
            payload_for(Side::B, index),
            "carrier packet {index}"
        );
        assert_eq!(packet.payload_type, PCMU);
    }
    // LegConfig::g711 draws the first sequence number from the SSRC's upper half.
    assert_continuous(&at_carrier, CARRIER_SSRC, (CARRIER_SSRC >> 16) as u16);
    assert_continuous(&at_caller, CALLER_SSRC, (CALLER_SSRC >> 16) as u16);
    assert_ne!(
        at_caller[0].ssrc, 0xCA88_1E80,
        "the carrier's SSRC is hidden from the caller"
    );
    call.close();
}

fn welcome_prompt() -> Arc<Prompt> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../prompts/en/welcome.wav");
    let bytes = std::fs::read(path).unwrap();
    PromptCache::new().load("welcome", &bytes).unwrap()
}

/// Sends carrier audio every 20 ms until told to stop; returns how many packets it sent.
fn spawn_carrier_audio(
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut sent = 0usize;
        loop {
            tokio::select! {
                _ = &mut stop => return sent,
                _ = tick.tick() => {
                    let mut packet = rtp(PCMU, sent == 0, 9_000 + sent as u16, 160 * sent as u32, 0xCA88_1E80);
                    packet.extend(payload_for(Side::B, sent));
                    socket.send_to(&packet, to).await.unwrap();
                    sent += 1;
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_then_bridge_is_one_paced_continuous_stream_to_the_caller() {
    let mut call = Call::open(31_200).await;
    let prompt = welcome_prompt();
    let frames = prompt.frame_count();
    assert!(frames > 50, "welcome.wav is over a second long");
    call.set_legs(None, None);
    // The carrier answers at once and talks during the prompt: the prompt must win until it
    // ends, then the carrier's audio follows on the same stream.
    call.send(MediaCommand::Play {
        playback: 42,
        items: vec![PlayItem::Prompt(prompt.clone())],
        barge_in: false,
    });
    call.send(MediaCommand::Bridge(true));
    let Call {
        mut media,
        ports,
        caller,
        carrier,
        mut reports,
    } = call;
    let carrier = Arc::new(carrier);
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let talker = spawn_carrier_audio(
        carrier.clone(),
        SocketAddr::new(LOOPBACK, ports[1]),
        stopped,
    );

    let caller_relay = SocketAddr::new(LOOPBACK, ports[0]);
    let mut stream = Vec::new();
    for _ in 0..frames + 25 {
        stream.push(receive(&caller, caller_relay).await);
    }
    let _ = stop.send(());
    let sent = talker.await.unwrap();
    let (call_key, report) = timeout(WAIT, reports.recv()).await.unwrap().unwrap();
    assert_eq!(
        (call_key, report),
        (CALL, MediaReport::PlaybackFinished(42))
    );

    // First the whole prompt, frame by frame, then only carrier audio.
    for (index, packet) in stream[..frames].iter().enumerate() {
        assert_eq!(
            Some(packet.payload.as_slice()),
            prompt.frame(Law::MuLaw, index),
            "prompt frame {index}"
        );
    }
    let carrier_payloads: Vec<Vec<u8>> = (0..sent).map(|i| payload_for(Side::B, i)).collect();
    let relayed: Vec<usize> = stream[frames..]
        .iter()
        .map(|packet| {
            carrier_payloads
                .iter()
                .position(|payload| *payload == packet.payload)
                .expect("only carrier audio after the prompt")
        })
        .collect();
    // The carrier's packets during the prompt were dropped, not queued for later.
    assert!(
        relayed[0] + 10 >= frames,
        "first relayed carrier packet is #{} of {sent}, the prompt had {frames} frames",
        relayed[0]
    );
    for pair in relayed.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "carrier audio relayed in order, none lost"
        );
    }

    // One stream: same SSRC, sequence +1 across the switch, timestamps moving forward.
    assert!(stream[0].marker);
    assert!(
        stream[frames].marker,
        "the switch to the carrier starts a talk spurt"
    );
    for (index, pair) in stream.windows(2).enumerate() {
        assert_eq!(pair[1].ssrc, CALLER_SSRC, "packet {}", index + 1);
        assert_eq!(
            pair[1].sequence,
            pair[0].sequence.wrapping_add(1),
            "packet {}",
            index + 1
        );
        let step = pair[1].timestamp.wrapping_sub(pair[0].timestamp);
        assert!(
            (1..=8000).contains(&step),
            "timestamp step {step} at packet {}",
            index + 1
        );
    }
    for pair in stream[..frames].windows(2) {
        assert_eq!(pair[1].timestamp.wrapping_sub(pair[0].timestamp), 160);
    }

    assert_paced(&stream[..frames]);
    media.execute(CALL, MediaCommand::Close);
}

/// 20 ms between prompt frames: each frame on a 20 ms schedule, within a few ms.
///
/// Measured as lateness against the schedule, not gap to gap: on a busy 2-core machine the
/// test reads a frame late now and then, which lengthens one gap and shortens the next (seen
/// in CI: 24.0 then 15.7 ms) although the switch sent both on time. Reading can only make a
/// frame late, never early, so the schedule is anchored at the earliest frame. A drift of
/// even 0.2 ms a frame puts a third of 64 frames more than 6 ms off; bursts put half.
fn assert_paced(frames: &[Received]) {
    let first = frames[0].at;
    let offsets: Vec<f64> = frames
        .iter()
        .enumerate()
        .map(|(index, frame)| (frame.at - first).as_secs_f64() * 1000.0 - 20.0 * index as f64)
        .collect();
    let anchor = offsets.iter().copied().fold(f64::INFINITY, f64::min);
    let lateness: Vec<f64> = offsets.iter().map(|offset| offset - anchor).collect();
    let off = lateness.iter().filter(|late| **late > 6.0).count();
    // The machine is shared with builds: allow one frame in twenty to be read late.
    assert!(
        off * 20 <= frames.len(),
        "{off} of {} frames more than 6 ms behind a 20 ms schedule: {lateness:.1?}",
        frames.len()
    );
    let worst = lateness.iter().copied().fold(0.0f64, f64::max);
    assert!(
        worst <= 40.0,
        "a frame {worst:.1} ms behind schedule: {lateness:.1?}"
    );
    eprintln!(
        "prompt pacing: {} frames, worst {worst:.2} ms behind a 20 ms schedule",
        frames.len()
    );
}

/// The packets of one RFC 4733 key press: three updates, then three end packets.
fn key_press(event: u8, sequence: u16, timestamp: u32, payload_type: u8) -> Vec<Vec<u8>> {
    (0..6u16)
        .map(|index| {
            let end = index >= 3;
            let duration = 400 + 400 * index.min(3);
            let mut packet = rtp(
                payload_type,
                index == 0,
                sequence.wrapping_add(index),
                timestamp,
                0xCA11_E700,
            );
            let [high, low] = duration.to_be_bytes();
            packet.extend([event, (u8::from(end) << 7) | 10, high, low]);
            packet
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4733_digits_from_the_caller_reach_the_core_once_and_the_carrier_mapped() {
    let mut call = Call::open(31_400).await;
    // The caller negotiated telephone-event 101, the carrier 96.
    call.set_legs(Some(101), Some(96));
    call.send(MediaCommand::Bridge(true));
    call.settle().await;
    let carrier_relay = call.relay_address(Side::B);

    let presses = [(5u8, '5'), (11, '#'), (5, '5')];
    let mut forwarded = Vec::new();
    for (press, (event, _)) in presses.iter().enumerate() {
        let sequence = 1_000 + 6 * press as u16;
        let timestamp = 80_000 + 8_000 * press as u32;
        for packet in key_press(*event, sequence, timestamp, 101) {
            call.send_from(Side::A, &packet).await;
            forwarded.push(receive(&call.carrier, carrier_relay).await);
        }
    }
    for (_, digit) in presses {
        assert_eq!(call.next_report().await, MediaReport::Digit(digit));
    }
    // Six packets per press, yet no further report.
    assert!(
        timeout(Duration::from_millis(300), call.reports.recv())
            .await
            .is_err(),
        "each key press is reported once"
    );

    assert_eq!(forwarded.len(), 18);
    for (index, packet) in forwarded.iter().enumerate() {
        assert_eq!(
            packet.payload_type, 96,
            "packet {index} mapped to the carrier's type"
        );
        assert_eq!(packet.ssrc, CARRIER_SSRC);
        let (event, _) = presses[index / 6];
        assert_eq!(packet.payload[0], event);
        assert_eq!(
            packet.payload[1] & 0x80 != 0,
            index % 6 >= 3,
            "end bit kept"
        );
    }
    for pair in forwarded.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
    }
    call.close();
}
