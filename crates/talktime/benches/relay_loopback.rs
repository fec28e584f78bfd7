//! RTP through the shell's per-call media tasks over 127.0.0.1, at phone pacing.
//!
//! `cargo bench -p talktime --bench relay_loopback` (add `-- --quick` for a short run).
//!
//! Relay runs: N bridged [`MediaSession`]s on a tokio runtime built like the shell's (multi
//! thread, one worker per core, threads named `relay`). A generator on its own thread (a
//! current-thread runtime, named `generator`) plays a caller and a carrier for every call: each
//! endpoint sends one 20 ms G.711 packet every 20 ms (50 packets/s per direction, 100 per call),
//! spread over the 20 ms in ten slices as unsynchronised phones would be, and receives what the
//! relay forwards. The first 8 payload bytes carry the send time, so the receiver measures the
//! one-way time through the relay.
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
//! `--relay-threads T`, `--sizes 100,500`, `--prompt-sizes 1000`.

#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use talktime::media_session::{MediaCommand, MediaSession};
use talktime_media::relay::{LegConfig, Side};
use talktime_media::{Law, PlayItem, PortAllocator, Prompt, PromptCache, Tone};
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;
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
            if name.starts_with("relay") {
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
// Statistics kept by the generator (one thread, so plain RefCell).

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

/// One test endpoint: a socket and the relay port it talks to.
#[derive(Debug)]
struct Endpoint {
    socket: std::net::UdpSocket,
    relay: SocketAddr,
}

fn bind_endpoint() -> std::net::UdpSocket {
    let socket = std::net::UdpSocket::bind((LOOPBACK, 0)).unwrap();
    socket.set_nonblocking(true).unwrap();
    socket
}

/// Runs the generator on its own named thread; `send` false only receives (prompt runs).
fn spawn_generator(
    endpoints: Vec<Endpoint>,
    schedule: Schedule,
    send: bool,
) -> std::thread::JoinHandle<Stats> {
    std::thread::Builder::new()
        .name("generator".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, generate(endpoints, schedule, send))
        })
        .unwrap()
}

async fn generate(endpoints: Vec<Endpoint>, schedule: Schedule, send: bool) -> Stats {
    let stats = Rc::new(RefCell::new(Stats::new()));
    let mut senders = Vec::with_capacity(endpoints.len());
    for (index, endpoint) in endpoints.into_iter().enumerate() {
        let socket = Rc::new(UdpSocket::from_std(endpoint.socket).unwrap());
        tokio::task::spawn_local(receive_loop(socket.clone(), schedule, stats.clone()));
        senders.push(Sender::new(socket, endpoint.relay, index as u32));
    }
    if send {
        send_loop(&mut senders, schedule, &stats).await;
    } else {
        tokio::time::sleep_until(schedule.window_end.into()).await;
    }
    tokio::time::sleep(DRAIN).await;
    // The receivers still hold clones; take the numbers out.
    stats.replace(Stats::new())
}

struct Sender {
    socket: Rc<UdpSocket>,
    relay: SocketAddr,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl Sender {
    fn new(socket: Rc<UdpSocket>, relay: SocketAddr, index: u32) -> Sender {
        Sender {
            socket,
            relay,
            ssrc: 0x5EED_0000 ^ index,
            sequence: index as u16,
            timestamp: index.wrapping_mul(7919),
        }
    }

    /// Writes the next packet: RTP header, then the send time, then G.711 audio.
    fn packet(&mut self, buffer: &mut [u8; 12 + PAYLOAD_BYTES], audio: &[u8], sent_at: u64) {
        buffer[0] = 0x80;
        buffer[1] = 0; // PCMU
        buffer[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        buffer[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buffer[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        buffer[12..20].copy_from_slice(&sent_at.to_be_bytes());
        buffer[20..].copy_from_slice(&audio[8..]);
    }

    fn advance(&mut self) {
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(PAYLOAD_BYTES as u32);
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

async fn send_loop(senders: &mut [Sender], schedule: Schedule, stats: &Rc<RefCell<Stats>>) {
    let audio = audio_frame();
    let mut buffer = [0u8; 12 + PAYLOAD_BYTES];
    let mut tick = tokio::time::interval(FRAME / SLICES as u32);
    // Late ticks are caught up, so the average rate stays 50 packets/s per endpoint.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut slice = 0usize;
    loop {
        let at = tick.tick().await;
        if Instant::from(at) >= schedule.window_end {
            return;
        }
        let mut sent = 0;
        let mut failures = 0;
        for sender in senders.iter_mut().skip(slice).step_by(SLICES) {
            let sent_at = schedule.origin.elapsed().as_nanos() as u64;
            sender.packet(&mut buffer, &audio, sent_at);
            // A socket's first send can be refused before the runtime has seen it writable
            // (start-up); such a packet is not counted and its number is reused.
            match sender.socket.try_send_to(&buffer, sender.relay) {
                Ok(_) => {
                    sender.advance();
                    sent += 1;
                }
                Err(_) if schedule.in_window(Instant::from(at)) => failures += 1,
                Err(_) => {}
            }
        }
        let mut stats = stats.borrow_mut();
        stats.sent += sent;
        stats.send_failures += failures;
        slice = (slice + 1) % SLICES;
    }
}

async fn receive_loop(socket: Rc<UdpSocket>, schedule: Schedule, stats: Rc<RefCell<Stats>>) {
    let mut buffer = [0u8; 2048];
    let mut last: Option<(u16, Instant)> = None;
    loop {
        let Ok(length) = socket.recv(&mut buffer).await else {
            continue;
        };
        let now = Instant::now();
        if length < 20 {
            continue;
        }
        let sequence = u16::from_be_bytes([buffer[2], buffer[3]]);
        let mut stats = stats.borrow_mut();
        stats.received += 1;
        if let Some((previous, _)) = last
            && sequence != previous.wrapping_add(1)
        {
            stats.sequence_breaks += 1;
        }
        if schedule.in_window(now) {
            stats.received_in_window += 1;
            let sent_at = u64::from_be_bytes(buffer[12..20].try_into().unwrap());
            let arrived = now.duration_since(schedule.origin).as_nanos() as u64;
            stats.latency.record(arrived.saturating_sub(sent_at) / 1000);
            if let Some((_, previous_at)) = last {
                let gap = now.duration_since(previous_at).as_micros() as i64;
                stats.pacing_error.record((gap - 20_000).unsigned_abs());
            }
        }
        last = Some((sequence, now));
    }
}

// ---------------------------------------------------------------------------------------------
// The relay side: the shell's media sessions on a runtime like the shell's.

fn relay_runtime(threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("relay")
        .enable_all()
        .build()
        .unwrap()
}

struct Sessions {
    sessions: Vec<MediaSession>,
    ports: PortAllocator,
}

impl Sessions {
    /// Opens `count` sessions (retrying past ports that other processes hold).
    fn open(runtime: &Runtime, count: usize) -> Sessions {
        let _context = runtime.enter();
        let mut ports = PortAllocator::new(RTP_FIRST_PORT, RTP_LAST_PORT).unwrap();
        let (reports, mut heard) = mpsc::channel(4096);
        // Nothing should be reported in a run; drain anyway so no session ever waits.
        runtime.spawn(async move { while heard.recv().await.is_some() {} });
        let mut sessions = Vec::with_capacity(count);
        let mut failures = 0;
        while sessions.len() < count {
            match MediaSession::open(sessions.len() as u64, LOOPBACK, &mut ports, reports.clone()) {
                Ok(session) => sessions.push(session),
                Err(error) => {
                    failures += 1;
                    assert!(failures < 500, "cannot open media sessions: {error}");
                }
            }
        }
        Sessions { sessions, ports }
    }

    fn close(mut self) {
        for session in self.sessions.drain(..) {
            session.close(&mut self.ports);
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
fn measure(endpoints: Vec<Endpoint>, window: Duration, send: bool) -> Measured {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let schedule = Schedule::new(window);
    let generator = spawn_generator(endpoints, schedule, send);
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
    let runtime = relay_runtime(options.relay_threads);
    let sessions = Sessions::open(&runtime, calls);
    let mut endpoints = Vec::with_capacity(2 * calls);
    for (index, session) in sessions.sessions.iter().enumerate() {
        let caller = bind_endpoint();
        let carrier = bind_endpoint();
        let ssrc = 0x7000_0000 | (index as u32) << 1;
        session.send(MediaCommand::SetLeg(
            Side::A,
            leg(caller.local_addr().unwrap(), ssrc, inband),
        ));
        session.send(MediaCommand::SetLeg(
            Side::B,
            leg(carrier.local_addr().unwrap(), ssrc | 1, inband),
        ));
        session.send(MediaCommand::Bridge(true));
        endpoints.push(Endpoint {
            socket: caller,
            relay: SocketAddr::new(LOOPBACK, session.port(Side::A)),
        });
        endpoints.push(Endpoint {
            socket: carrier,
            relay: SocketAddr::new(LOOPBACK, session.port(Side::B)),
        });
    }
    // Let the tasks apply their commands before the first packet.
    std::thread::sleep(Duration::from_millis(200));
    let measured = measure(endpoints, options.window, true);
    sessions.close();
    runtime.shutdown_timeout(Duration::from_secs(2));
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
    let runtime = relay_runtime(options.relay_threads);
    let sessions = Sessions::open(&runtime, streams);
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
    let mut endpoints = Vec::with_capacity(streams);
    for (index, session) in sessions.sessions.iter().enumerate() {
        let caller = bind_endpoint();
        session.send(MediaCommand::SetLeg(
            Side::A,
            leg(
                caller.local_addr().unwrap(),
                0x6000_0000 | index as u32,
                true,
            ),
        ));
        session.send(MediaCommand::Play {
            playback: index as u64,
            items: items.clone(),
            barge_in: false,
        });
        endpoints.push(Endpoint {
            socket: caller,
            relay: SocketAddr::new(LOOPBACK, session.port(Side::A)),
        });
    }
    let measured = measure(endpoints, options.window, false);
    sessions.close();
    runtime.shutdown_timeout(Duration::from_secs(2));
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
        "\nRelay: bridged calls, 50 packets/s each way per call; relay runtime {} worker \
         threads, generator 1 thread, window {:.0} s",
        options.relay_threads,
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
        "\nPrompts: one stream per session to a caller endpoint; relay runtime {} worker \
         threads, generator 1 thread (receive only), window {:.0} s",
        options.relay_threads,
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

fn main() {
    let options = Options::from_args();
    println!(
        "relay_loopback: {} cores, load average before: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
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
