//! RTP through the shell's per-call media tasks over 127.0.0.1, at phone pacing.
//!
//! `cargo bench -p talktime --bench relay_loopback` (add `-- --quick` for a short run).
//!
//! Relay runs: N bridged calls of [`MediaCalls`] on the shell's media threads ([`MediaWorkers`], one
//! per core unless `--relay-threads` says otherwise, named `media-N`). A generator on its own
//! thread (named `generator`) plays a caller and a carrier for every call: each endpoint sends
//! one 20 ms G.711 packet every 20 ms (50 packets/s per direction, 100 per call), spread over
//! the 20 ms in ten slices as unsynchronised phones would be, and receives what the relay
//! forwards. All phones share one generator socket and all carriers another, with
//! `sendmmsg`/`recvmmsg`, so the generator takes as little of the shared cores as it can. The
//! first 8 payload bytes carry the send time, so the receiver measures the one-way time
//! through the relay.
//!
//! Prompt runs: N sessions each play a long prompt (or a generated tone) to a caller endpoint;
//! the generator only receives and measures the gaps between packets of each stream.
//!
//! Both sides share the machine's cores. CPU is read per thread from
//! `/proc/self/task/*/schedstat` (nanoseconds on CPU), so the relay threads and the generator
//! are counted apart; the whole machine's busy time (from `/proc/stat`, which also holds the
//! softirq time of loopback delivery and any other process) is shown next to it.
//!
//! Options after `--`: `--quick` (3 s windows, fewer sizes), `--seconds S`,
//! `--relay-threads T`, `--batch-us U`, `--sizes 100,500`, `--prompt-sizes 1000`.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg, setsockopt, sockopt,
};
use talktime::media_session::MediaCalls;
use talktime::media_workers::MediaWorkers;
use talktime_b2bua::{MediaCommand, MediaReport};
use talktime_media::relay::{LegConfig, Side};
use talktime_media::{Law, PlayItem, PortAllocator, Prompt, PromptCache, Tone};
use tokio::sync::mpsc;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Relay RTP ports: below the kernel's ephemeral range (32768+) where the generator binds.
const RTP_FIRST_PORT: u16 = 16_000;
const RTP_LAST_PORT: u16 = 31_999;
const FRAME: Duration = Duration::from_millis(20);
/// The generator spreads each 20 ms of sends over this many ticks.
const SLICES: usize = 10;
const PAYLOAD_BYTES: usize = 160;
const WARM_UP: Duration = Duration::from_secs(1);
/// After the window, how long the generator keeps receiving (stragglers are not loss).
const DRAIN: Duration = Duration::from_millis(300);

#[derive(Debug, Clone)]
struct Options {
    window: Duration,
    relay_threads: usize,
    /// The media threads' rest between rounds (`[rtp] batch_interval_us`).
    batch_interval: Duration,
    sizes: Vec<usize>,
    prompt_sizes: Vec<usize>,
    /// Extra relay runs with in-band DTMF detection switched off on both legs.
    no_inband_sizes: Vec<usize>,
}

impl Options {
    fn from_args() -> Options {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut options = Options {
            window: Duration::from_secs(10),
            relay_threads: cores,
            batch_interval: Duration::from_micros(500),
            sizes: vec![100, 500, 1000, 1500, 2000],
            prompt_sizes: vec![1000, 2000],
            no_inband_sizes: vec![1000, 1500, 2000],
        };
        let arguments: Vec<String> = std::env::args().skip(1).collect();
        let mut index = 0;
        while index < arguments.len() {
            let value = arguments.get(index + 1).cloned().unwrap_or_default();
            match arguments[index].as_str() {
                "--quick" => {
                    options.window = Duration::from_secs(3);
                    options.sizes = vec![100, 2000];
                    options.prompt_sizes = vec![1000];
                    options.no_inband_sizes = vec![2000];
                }
                "--seconds" => {
                    options.window = Duration::from_secs_f64(value.parse().unwrap());
                    index += 1;
                }
                "--relay-threads" => {
                    options.relay_threads = value.parse().unwrap();
                    index += 1;
                }
                "--batch-us" => {
                    options.batch_interval = Duration::from_micros(value.parse().unwrap());
                    index += 1;
                }
                "--sizes" => {
                    options.sizes = parse_list(&value);
                    index += 1;
                }
                "--prompt-sizes" => {
                    options.prompt_sizes = parse_list(&value);
                    index += 1;
                }
                "--no-inband-sizes" => {
                    options.no_inband_sizes = parse_list(&value);
                    index += 1;
                }
                // `cargo bench` passes --bench; anything else is ignored too.
                _ => {}
            }
            index += 1;
        }
        options
    }
}

fn parse_list(text: &str) -> Vec<usize> {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| part.trim().parse().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (no libc).

/// Nanoseconds on CPU per thread group: relay workers, the generator, everything else.
#[derive(Debug, Clone, Copy, Default)]
struct ThreadTimes {
    relay: u64,
    generator: u64,
    other: u64,
}

impl ThreadTimes {
    fn read() -> ThreadTimes {
        let mut times = ThreadTimes::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return times;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let schedstat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
            let on_cpu: u64 = schedstat
                .split_whitespace()
                .next()
                .and_then(|field| field.parse().ok())
                .unwrap_or(0);
            if name.starts_with("media") {
                times.relay += on_cpu;
            } else if name.starts_with("generator") {
                times.generator += on_cpu;
            } else {
                times.other += on_cpu;
            }
        }
        times
    }

    fn since(self, earlier: ThreadTimes) -> ThreadTimes {
        ThreadTimes {
            relay: self.relay.saturating_sub(earlier.relay),
            generator: self.generator.saturating_sub(earlier.generator),
            other: self.other.saturating_sub(earlier.other),
        }
    }
}

/// The machine's CPU time counters (all cores) from the first line of /proc/stat.
#[derive(Debug, Clone, Copy, Default)]
struct MachineTimes {
    busy: u64,
    softirq: u64,
    total: u64,
}

impl MachineTimes {
    fn read() -> MachineTimes {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|field| field.parse().ok())
            .collect();
        let field = |index: usize| fields.get(index).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let idle = field(3) + field(4);
        let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
        MachineTimes {
            busy,
            softirq: field(6),
            total: busy + idle,
        }
    }

    /// Busy cores and the softirq share of them over the interval.
    fn busy_cores_since(self, earlier: MachineTimes, cores: usize) -> (f64, f64) {
        let total = self.total.saturating_sub(earlier.total).max(1) as f64;
        let busy = self.busy.saturating_sub(earlier.busy) as f64;
        let softirq = self.softirq.saturating_sub(earlier.softirq) as f64;
        (busy / total * cores as f64, softirq / total * cores as f64)
    }
}

/// The kernel's UDP counters (whole machine) from /proc/net/snmp.
#[derive(Debug, Clone, Copy, Default)]
struct UdpCounters {
    delivered: u64,
    receive_buffer_drops: u64,
    send_buffer_drops: u64,
}

impl UdpCounters {
    fn read() -> UdpCounters {
        let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
        let mut lines = snmp.lines().filter(|line| line.starts_with("Udp:"));
        let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
            return UdpCounters::default();
        };
        let value = |wanted: &str| {
            names
                .split_whitespace()
                .zip(values.split_whitespace())
                .find(|(name, _)| *name == wanted)
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(0)
        };
        UdpCounters {
            delivered: value("InDatagrams"),
            receive_buffer_drops: value("RcvbufErrors"),
            send_buffer_drops: value("SndbufErrors"),
        }
    }

    fn since(self, earlier: UdpCounters) -> UdpCounters {
        UdpCounters {
            delivered: self.delivered.saturating_sub(earlier.delivered),
            receive_buffer_drops: self
                .receive_buffer_drops
                .saturating_sub(earlier.receive_buffer_drops),
            send_buffer_drops: self
                .send_buffer_drops
                .saturating_sub(earlier.send_buffer_drops),
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Statistics kept by the generator (one thread).

/// A histogram of microseconds in 10 µs buckets up to 2 s, one overflow bucket.
#[derive(Debug)]
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

impl Histogram {
    const BUCKET_MICROS: u64 = 10;
    const LIMIT: usize = 200_000;

    fn new() -> Histogram {
        Histogram {
            buckets: vec![0; Self::LIMIT + 1],
            count: 0,
            max: 0,
        }
    }

    fn record(&mut self, micros: u64) {
        let index = ((micros / Self::BUCKET_MICROS) as usize).min(Self::LIMIT);
        self.buckets[index] += 1;
        self.count += 1;
        self.max = self.max.max(micros);
    }

    /// The upper edge of the bucket holding the given fraction of the samples.
    fn percentile(&self, fraction: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((self.count as f64) * fraction).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return (index as u64 + 1) * Self::BUCKET_MICROS;
            }
        }
        self.max
    }
}

#[derive(Debug)]
struct Stats {
    sent: u64,
    send_failures: u64,
    received: u64,
    /// Packets whose arrival fell in the measuring window.
    received_in_window: u64,
    /// Sequence numbers that did not follow the previous one of the same stream.
    sequence_breaks: u64,
    /// One-way time sender → relay → receiver (relay runs).
    latency: Histogram,
    /// |gap − 20 ms| between consecutive packets of one stream (prompt runs).
    pacing_error: Histogram,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            sent: 0,
            send_failures: 0,
            received: 0,
            received_in_window: 0,
            sequence_breaks: 0,
            latency: Histogram::new(),
            pacing_error: Histogram::new(),
        }
    }
}

/// The instants every part of a run agrees on.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    origin: Instant,
    window_start: Instant,
    window_end: Instant,
}

impl Schedule {
    fn new(window: Duration) -> Schedule {
        let origin = Instant::now();
        let window_start = origin + WARM_UP;
        Schedule {
            origin,
            window_start,
            window_end: window_start + window,
        }
    }

    fn in_window(&self, at: Instant) -> bool {
        at >= self.window_start && at < self.window_end
    }
}

// ---------------------------------------------------------------------------------------------
// The generator: phones and carriers.
//
// It is kept cheap so the relay has the cores: every phone shares one socket and every carrier
// another (the relay latches each leg to the address its packets come from, so many legs may
// share one), packets go out with `sendmmsg` and come in with `recvmmsg`, and received packets
// are told apart by the SSRC the relay gives each leg.

/// One stream the generator sends: from one of its sockets to a relay port.
#[derive(Debug)]
struct Stream {
    socket: usize,
    relay: SocketAddrV4,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl Stream {
    fn new(socket: usize, relay: SocketAddrV4, index: u32) -> Stream {
        Stream {
            socket,
            relay,
            ssrc: 0x5EED_0000 ^ index,
            sequence: index as u16,
            timestamp: index.wrapping_mul(7919),
        }
    }

    /// Writes the next packet: RTP header, then the send time, then G.711 audio.
    fn packet(&mut self, buffer: &mut [u8; PACKET_BYTES], audio: &[u8], sent_at: u64) {
        buffer[0] = 0x80;
        buffer[1] = 0; // PCMU
        buffer[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        buffer[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buffer[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        buffer[12..20].copy_from_slice(&sent_at.to_be_bytes());
        buffer[20..].copy_from_slice(&audio[8..]);
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(PAYLOAD_BYTES as u32);
    }
}

const PACKET_BYTES: usize = 12 + PAYLOAD_BYTES;
/// Datagrams per `sendmmsg` / `recvmmsg`.
const BATCH: usize = 64;
/// The SSRCs the relay sends with carry the stream's index in their low bits.
const STREAM_INDEX_MASK: u32 = 0x00FF_FFFF;

/// The generator's sockets, with receive buffers deep enough for 100,000 packets/s each.
fn bind_generator_socket() -> std::net::UdpSocket {
    let socket = std::net::UdpSocket::bind((LOOPBACK, 0)).unwrap();
    socket.set_nonblocking(true).unwrap();
    // Root may go past net.core.rmem_max; otherwise the kernel caps it.
    if setsockopt(&socket, sockopt::RcvBufForce, &(16 << 20)).is_err() {
        let _ = setsockopt(&socket, sockopt::RcvBuf, &(16 << 20));
    }
    socket
}

/// Runs the generator on its own named thread; with no streams it only receives (prompts).
fn spawn_generator(
    sockets: Vec<std::net::UdpSocket>,
    streams: Vec<Stream>,
    schedule: Schedule,
) -> std::thread::JoinHandle<Stats> {
    std::thread::Builder::new()
        .name("generator".into())
        .spawn(move || Generator::new(sockets, streams, schedule).run())
        .unwrap()
}

struct Generator {
    sockets: Vec<std::net::UdpSocket>,
    streams: Vec<Stream>,
    schedule: Schedule,
    stats: Stats,
    audio: [u8; PAYLOAD_BYTES],
    /// Per received stream (by SSRC index): the last sequence number and arrival.
    last: Vec<Option<(u16, Instant)>>,
    packets: Vec<[u8; PACKET_BYTES]>,
    received: Vec<[u8; 2048]>,
}

impl Generator {
    fn new(
        sockets: Vec<std::net::UdpSocket>,
        streams: Vec<Stream>,
        schedule: Schedule,
    ) -> Generator {
        Generator {
            sockets,
            streams,
            schedule,
            stats: Stats::new(),
            audio: audio_frame(),
            last: Vec::new(),
            packets: vec![[0; PACKET_BYTES]; BATCH],
            received: vec![[0; 2048]; BATCH],
        }
    }

    fn run(mut self) -> Stats {
        let tick = FRAME / SLICES as u32;
        let mut next_tick = Instant::now();
        let mut slice = 0;
        let stop = self.schedule.window_end + DRAIN;
        loop {
            let now = Instant::now();
            if now >= stop {
                return self.stats;
            }
            // Late ticks are caught up, so the average rate stays 50 packets/s per stream.
            while next_tick <= now && next_tick < self.schedule.window_end {
                self.send_slice(slice, next_tick);
                slice = (slice + 1) % SLICES;
                next_tick += tick;
            }
            let wait = next_tick
                .min(stop)
                .saturating_duration_since(Instant::now());
            self.receive_ready(wait);
        }
    }

    /// Sends one packet on every stream of the slice, batched per socket.
    fn send_slice(&mut self, slice: usize, at: Instant) {
        for socket in 0..self.sockets.len() {
            let mut batch: Vec<usize> = Vec::with_capacity(BATCH);
            for index in (slice..self.streams.len()).step_by(SLICES) {
                if self.streams[index].socket != socket {
                    continue;
                }
                batch.push(index);
                if batch.len() == BATCH {
                    self.send_batch(socket, &batch, at);
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                self.send_batch(socket, &batch, at);
            }
        }
    }

    fn send_batch(&mut self, socket: usize, batch: &[usize], at: Instant) {
        let sent_at = self.schedule.origin.elapsed().as_nanos() as u64;
        let mut addresses = Vec::with_capacity(batch.len());
        for (buffer, &index) in self.packets.iter_mut().zip(batch) {
            let stream = &mut self.streams[index];
            stream.packet(buffer, &self.audio, sent_at);
            addresses.push(Some(SockaddrIn::from(stream.relay)));
        }
        let slices: Vec<[IoSlice; 1]> = self.packets[..batch.len()]
            .iter()
            .map(|packet| [IoSlice::new(packet)])
            .collect();
        let mut headers = MultiHeaders::<SockaddrIn>::preallocate(batch.len(), None);
        let no_control: [ControlMessage; 0] = [];
        let fd = self.sockets[socket].as_raw_fd();
        let sent = sendmmsg(
            fd,
            &mut headers,
            &slices,
            &addresses,
            no_control,
            MsgFlags::MSG_DONTWAIT,
        )
        .map_or(0, |results| results.count());
        self.stats.sent += sent as u64;
        if sent < batch.len() && self.schedule.in_window(at) {
            self.stats.send_failures += (batch.len() - sent) as u64;
        }
    }

    /// Waits up to `wait` for packets and takes every one that is queued.
    fn receive_ready(&mut self, wait: Duration) {
        let mut fds: Vec<PollFd> = self
            .sockets
            .iter()
            .map(|socket| PollFd::new(socket.as_fd(), PollFlags::POLLIN))
            .collect();
        // Rounded up: a zero timeout before a tick would spin.
        let timeout =
            PollTimeout::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX);
        if poll(&mut fds, timeout).unwrap_or(0) == 0 {
            return;
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|events| !events.is_empty()))
            .collect();
        drop(fds);
        for (socket, ready) in ready.into_iter().enumerate() {
            if ready {
                while self.receive_batch(socket) == BATCH {}
            }
        }
    }

    /// One `recvmmsg`; returns how many datagrams it brought.
    fn receive_batch(&mut self, socket: usize) -> usize {
        let fd = self.sockets[socket].as_raw_fd();
        let lengths: Vec<usize> = {
            let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
            let mut slices: Vec<[IoSliceMut; 1]> = self
                .received
                .iter_mut()
                .map(|buffer| [IoSliceMut::new(buffer)])
                .collect();
            match recvmmsg(
                fd,
                &mut headers,
                slices.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                Ok(results) => results.map(|message| message.bytes).collect(),
                Err(_) => return 0,
            }
        };
        let now = Instant::now();
        for (index, &length) in lengths.iter().enumerate() {
            if length >= 20 {
                let packet = self.received[index];
                self.record(&packet[..length], now);
            }
        }
        lengths.len()
    }

    fn record(&mut self, packet: &[u8], now: Instant) {
        let sequence = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes(packet[8..12].try_into().unwrap());
        let stream = (ssrc & STREAM_INDEX_MASK) as usize;
        if self.last.len() <= stream {
            self.last.resize(stream + 1, None);
        }
        let stats = &mut self.stats;
        stats.received += 1;
        let last = self.last[stream];
        if let Some((previous, _)) = last
            && sequence != previous.wrapping_add(1)
        {
            stats.sequence_breaks += 1;
        }
        if self.schedule.in_window(now) {
            stats.received_in_window += 1;
            let sent_at = u64::from_be_bytes(packet[12..20].try_into().unwrap());
            let arrived = now.duration_since(self.schedule.origin).as_nanos() as u64;
            stats.latency.record(arrived.saturating_sub(sent_at) / 1000);
            if let Some((_, previous_at)) = last {
                let gap = now.duration_since(previous_at).as_micros() as i64;
                stats.pacing_error.record((gap - 20_000).unsigned_abs());
            }
        }
        self.last[stream] = Some((sequence, now));
    }
}

/// A quiet 400 Hz µ-law frame, as a phone would send (the payload is relayed untouched).
fn audio_frame() -> [u8; PAYLOAD_BYTES] {
    let samples: Vec<i16> = (0..PAYLOAD_BYTES)
        .map(|n| (2000.0 * (2.0 * std::f64::consts::PI * 400.0 * n as f64 / 8000.0).sin()) as i16)
        .collect();
    let mut frame = [0u8; PAYLOAD_BYTES];
    Law::MuLaw.encode_into(&samples, &mut frame);
    frame
}

// ---------------------------------------------------------------------------------------------
// The relay side: the shell's media sessions on the shell's media threads.

struct Sessions {
    sessions: Vec<Session>,
    media: MediaCalls,
    /// Kept open so reports have somewhere to go (none are expected in a run).
    _reports: mpsc::UnboundedReceiver<(u64, MediaReport)>,
}

/// One call's media, as the switch would have opened it.
struct Session {
    call: u64,
    ports: [u16; 2],
}

impl Session {
    fn port(&self, side: Side) -> u16 {
        match side {
            Side::A => self.ports[0],
            Side::B => self.ports[1],
        }
    }
}

impl Sessions {
    /// Opens `count` sessions (retrying past ports that other processes hold).
    fn open(threads: usize, batch_interval: Duration, count: usize) -> Sessions {
        let workers = MediaWorkers::start(threads, batch_interval).unwrap();
        let mut ports = PortAllocator::new(RTP_FIRST_PORT, RTP_LAST_PORT).unwrap();
        let (reports, heard) = mpsc::unbounded_channel();
        let mut media = MediaCalls::new(workers, reports);
        let mut sessions = Vec::with_capacity(count);
        let mut failures = 0;
        while sessions.len() < count {
            let call = sessions.len() as u64;
            let pair = [ports.allocate().unwrap().rtp, ports.allocate().unwrap().rtp];
            match media.open(call, LOOPBACK, pair, Duration::from_secs(30)) {
                Ok(()) => sessions.push(Session { call, ports: pair }),
                Err((port, error)) => {
                    failures += 1;
                    assert!(
                        failures < 500,
                        "cannot open media sessions: port {port}: {error}"
                    );
                }
            }
        }
        Sessions {
            sessions,
            media,
            _reports: heard,
        }
    }

    fn send(&mut self, index: usize, command: MediaCommand) {
        let call = self.sessions[index].call;
        self.media.execute(call, command);
    }

    fn close(mut self) {
        for session in std::mem::take(&mut self.sessions) {
            self.media.execute(session.call, MediaCommand::Close);
        }
    }
}

fn leg(remote: SocketAddr, ssrc: u32, inband: bool) -> LegConfig {
    let mut config = LegConfig::g711(Law::MuLaw, Some(remote), ssrc).with_telephone_event(101);
    config.inband_dtmf = inband;
    config
}

// ---------------------------------------------------------------------------------------------
// Runs.

#[derive(Debug)]
struct Measured {
    stats: Stats,
    threads: ThreadTimes,
    machine_busy: f64,
    machine_softirq: f64,
    udp: UdpCounters,
    seconds: f64,
    load: String,
}

/// Starts the generator, measures CPU over the window, and waits for its numbers.
fn measure(sockets: Vec<std::net::UdpSocket>, streams: Vec<Stream>, window: Duration) -> Measured {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let schedule = Schedule::new(window);
    let generator = spawn_generator(sockets, streams, schedule);
    std::thread::sleep(
        schedule
            .window_start
            .saturating_duration_since(Instant::now()),
    );
    let threads_before = ThreadTimes::read();
    let machine_before = MachineTimes::read();
    let udp_before = UdpCounters::read();
    let started = Instant::now();
    std::thread::sleep(
        schedule
            .window_end
            .saturating_duration_since(Instant::now()),
    );
    let threads = ThreadTimes::read().since(threads_before);
    let (machine_busy, machine_softirq) =
        MachineTimes::read().busy_cores_since(machine_before, cores);
    let udp = UdpCounters::read().since(udp_before);
    let seconds = started.elapsed().as_secs_f64();
    let load = load_average();
    let stats = generator.join().unwrap();
    Measured {
        stats,
        threads,
        machine_busy,
        machine_softirq,
        udp,
        seconds,
        load,
    }
}

fn relay_run(options: &Options, calls: usize, inband: bool) -> Measured {
    let mut sessions = Sessions::open(options.relay_threads, options.batch_interval, calls);
    let phones = bind_generator_socket();
    let carriers = bind_generator_socket();
    let mut streams = Vec::with_capacity(2 * calls);
    for index in 0..sessions.sessions.len() {
        let ssrc = 0x7000_0000 | (index as u32) << 1;
        sessions.send(
            index,
            MediaCommand::SetLeg(Side::A, leg(phones.local_addr().unwrap(), ssrc, inband)),
        );
        sessions.send(
            index,
            MediaCommand::SetLeg(
                Side::B,
                leg(carriers.local_addr().unwrap(), ssrc | 1, inband),
            ),
        );
        sessions.send(index, MediaCommand::Bridge(true));
        let session = &sessions.sessions[index];
        let stream = streams.len() as u32;
        streams.push(Stream::new(
            0,
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, session.port(Side::A)),
            stream,
        ));
        streams.push(Stream::new(
            1,
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, session.port(Side::B)),
            stream + 1,
        ));
    }
    // Let the threads apply their commands before the first packet.
    std::thread::sleep(Duration::from_millis(200));
    let measured = measure(vec![phones, carriers], streams, options.window);
    sessions.close();
    measured
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PromptKind {
    /// A prompt from the cache (frames encoded once).
    Cached,
    /// A tone generated frame by frame.
    Tone,
}

fn welcome_prompt() -> Arc<Prompt> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../prompts/en/welcome.wav");
    let bytes = std::fs::read(path).unwrap();
    PromptCache::new().load("welcome", &bytes).unwrap()
}

fn prompt_run(options: &Options, streams: usize, kind: PromptKind) -> Measured {
    let mut sessions = Sessions::open(options.relay_threads, options.batch_interval, streams);
    let length = WARM_UP + options.window + Duration::from_secs(2);
    let items = match kind {
        PromptKind::Cached => {
            let prompt = welcome_prompt();
            let repeats = (length.as_secs_f64() / prompt.duration().as_secs_f64()).ceil() as usize;
            vec![PlayItem::Prompt(prompt); repeats]
        }
        PromptKind::Tone => vec![PlayItem::Tone(Tone::cadence(
            &[425.0],
            length,
            Duration::ZERO,
            length,
        ))],
    };
    let phones = bind_generator_socket();
    for index in 0..sessions.sessions.len() {
        let config = leg(
            phones.local_addr().unwrap(),
            0x6000_0000 | index as u32,
            true,
        );
        sessions.send(index, MediaCommand::SetLeg(Side::A, config));
        sessions.send(
            index,
            MediaCommand::Play {
                playback: index as u64,
                items: items.clone(),
                barge_in: false,
            },
        );
    }
    let measured = measure(vec![phones], Vec::new(), options.window);
    sessions.close();
    measured
}

// ---------------------------------------------------------------------------------------------
// Output.

fn cores(nanos: u64, seconds: f64) -> f64 {
    nanos as f64 / 1e9 / seconds
}

fn ms(micros: u64) -> String {
    if micros >= Histogram::BUCKET_MICROS * Histogram::LIMIT as u64 {
        return "> 2000".into();
    }
    format!("{:.2}", micros as f64 / 1000.0)
}

/// Kernel receive-buffer drops per second in the window (relay and generator sockets alike).
fn kernel_drops(measured: &Measured) -> String {
    let udp = measured.udp;
    format!(
        "{:.0}",
        (udp.receive_buffer_drops + udp.send_buffer_drops) as f64 / measured.seconds
    )
}

fn print_relay_header(options: &Options) {
    println!(
        "\nRelay: bridged calls, 50 packets/s each way per call; {} media \
         threads (rest {} µs), generator 1 thread, window {:.0} s",
        options.relay_threads,
        options.batch_interval.as_micros(),
        options.window.as_secs_f64()
    );
    println!(
        "| calls | in-band DTMF | offered pkt/s | relayed pkt/s | loss % | seq breaks | relay CPU (cores) | relay µs/pkt | generator CPU (cores) | machine busy (cores, softirq) | kernel drops/s | latency p50 / p99 / max ms | load avg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
}

fn print_relay_row(calls: usize, inband: bool, measured: &Measured) {
    let stats = &measured.stats;
    let relayed = stats.received_in_window as f64 / measured.seconds;
    let lost = stats.sent.saturating_sub(stats.received);
    let loss = 100.0 * lost as f64 / stats.sent.max(1) as f64;
    let relay_micros =
        measured.threads.relay as f64 / 1000.0 / stats.received_in_window.max(1) as f64;
    println!(
        "| {calls} | {} | {} | {:.0} | {:.3} | {} | {:.2} | {:.2} | {:.2} | {:.2} ({:.2}) | {} | {} / {} / {} | {} |",
        if inband { "on" } else { "off" },
        calls * 100,
        relayed,
        loss,
        stats.sequence_breaks,
        cores(measured.threads.relay, measured.seconds),
        relay_micros,
        cores(measured.threads.generator, measured.seconds),
        measured.machine_busy,
        measured.machine_softirq,
        kernel_drops(measured),
        ms(stats.latency.percentile(0.5)),
        ms(stats.latency.percentile(0.99)),
        ms(stats.latency.max),
        measured.load,
    );
    if stats.send_failures > 0 {
        println!(
            "  ({} sends refused by the generator's sockets in the window)",
            stats.send_failures
        );
    }
}

fn print_prompt_header(options: &Options) {
    println!(
        "\nPrompts: one stream per session to a caller endpoint; {} media \
         threads (rest {} µs), generator 1 thread (receive only), window {:.0} s",
        options.relay_threads,
        options.batch_interval.as_micros(),
        options.window.as_secs_f64()
    );
    println!(
        "| streams | source | expected pkt/s | received pkt/s | lost % | seq breaks | relay CPU (cores) | relay µs/pkt | generator CPU (cores) | machine busy (cores, softirq) | kernel drops/s | gap − 20 ms p50 / p99 / max ms | load avg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
}

fn print_prompt_row(streams: usize, kind: PromptKind, measured: &Measured) {
    let stats = &measured.stats;
    let expected = streams as f64 * 50.0;
    let received = stats.received_in_window as f64 / measured.seconds;
    let lost = 100.0 * (1.0 - received / expected).max(0.0);
    let relay_micros =
        measured.threads.relay as f64 / 1000.0 / stats.received_in_window.max(1) as f64;
    println!(
        "| {streams} | {} | {expected:.0} | {received:.0} | {lost:.2} | {} | {:.2} | {:.2} | {:.2} | {:.2} ({:.2}) | {} | {} / {} / {} | {} |",
        match kind {
            PromptKind::Cached => "prompt (cached)",
            PromptKind::Tone => "tone (generated)",
        },
        stats.sequence_breaks,
        cores(measured.threads.relay, measured.seconds),
        relay_micros,
        cores(measured.threads.generator, measured.seconds),
        measured.machine_busy,
        measured.machine_softirq,
        kernel_drops(measured),
        ms(stats.pacing_error.percentile(0.5)),
        ms(stats.pacing_error.percentile(0.99)),
        ms(stats.pacing_error.max),
        measured.load,
    );
}

/// What the kernel alone costs per packet on this machine: one thread sending 172-byte
/// datagrams over loopback to a socket of its own (the send includes the loopback delivery)
/// and reading them back. A relayed packet costs two of each (generator and relay).
fn print_kernel_floor() {
    const PACKETS: u32 = 100_000;
    let sender = std::net::UdpSocket::bind((LOOPBACK, 0)).unwrap();
    let receiver = std::net::UdpSocket::bind((LOOPBACK, 0)).unwrap();
    let destination = receiver.local_addr().unwrap();
    let packet = [0u8; PACKET_BYTES];
    let mut buffer = [0u8; 2048];
    let mut send = Duration::ZERO;
    let mut receive = Duration::ZERO;
    // Batches of 100 stay well inside the receive buffer.
    for _ in 0..PACKETS / 100 {
        let started = Instant::now();
        for _ in 0..100 {
            sender.send_to(&packet, destination).unwrap();
        }
        send += started.elapsed();
        let started = Instant::now();
        for _ in 0..100 {
            receiver.recv_from(&mut buffer).unwrap();
        }
        receive += started.elapsed();
    }
    let send = send.as_secs_f64() * 1e6 / f64::from(PACKETS);
    let receive = receive.as_secs_f64() * 1e6 / f64::from(PACKETS);
    println!(
        "kernel floor on loopback: sendto {send:.2} µs, recvfrom {receive:.2} µs a packet; a \
         relayed packet (generator and relay each send and receive once) {:.2} µs, so \
         200,000 packets/s need {:.2} cores of kernel time alone",
        2.0 * (send + receive),
        2.0 * (send + receive) * 0.2
    );
}

fn main() {
    let options = Options::from_args();
    println!(
        "relay_loopback: {} cores, load average before: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    print_kernel_floor();
    print_relay_header(&options);
    for &calls in &options.sizes {
        let measured = relay_run(&options, calls, true);
        print_relay_row(calls, true, &measured);
    }
    for &calls in &options.no_inband_sizes {
        let measured = relay_run(&options, calls, false);
        print_relay_row(calls, false, &measured);
    }
    print_prompt_header(&options);
    for &streams in &options.prompt_sizes {
        let measured = prompt_run(&options, streams, PromptKind::Cached);
        print_prompt_row(streams, PromptKind::Cached, &measured);
    }
    if let Some(&streams) = options.prompt_sizes.last() {
        let measured = prompt_run(&options, streams, PromptKind::Tone);
        print_prompt_row(streams, PromptKind::Tone, &measured);
    }
}
