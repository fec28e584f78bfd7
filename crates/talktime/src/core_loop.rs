//! The core loop: the one thread that owns the sans-IO [`Switch`].
//!
//! It runs on a thread of its own with a one-thread tokio runtime, and receives the SIP
//! datagrams itself: the UDP sockets (duplicates of the transport's) are registered with this
//! runtime, so a datagram wakes this thread and no other, and a wake-up takes every datagram
//! that has arrived (up to [`DATAGRAMS_A_TURN`] a socket) before the outputs are carried out.
//! Everything else reaches it over channels: framed TCP/TLS messages, ledger answers, media
//! reports, failed deliveries, the operator's inputs. Work it starts elsewhere (a TCP
//! connect, a mail) is spawned on the shell's runtime (`main`), never on this thread; the
//! ledger's requests of one turn go to the ledger's thread together.
//!
//! Before this, datagrams were received by a task on the shell's runtime and passed over a
//! channel: a worker thread woke for the socket, then woke the core (issue 19: about 13
//! context switches a call over all threads at 1,500 calls/s, each dear on this machine).
//!
//! With `[sip] core_threads = N` there are N such threads, each with a switch of its own
//! (`talktime_b2bua::shard`). Each receives on the same sockets (duplicated descriptors;
//! whichever thread is free takes the datagrams waiting) and passes a datagram whose
//! Call-ID belongs to another core to that core's queue: one hop for those, none for its own.
//! Core 0 also takes the stream messages and failed deliveries and passes them on alike.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use talktime_b2bua::{Input, Output, Switch};
use talktime_sip::Transport as SipTransport;
use talktime_sip::transaction::{Peer, TransactionId};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::ledger_tasks::LedgerTasks;
use crate::media_session::MediaCalls;
use crate::server::{Handoff, now};
use crate::transport::{Inbound, MAX_MESSAGE_BYTES, Outbound, Protocol, Transport, UdpReceiver};

/// The thread's name (in `top -H`, `perf`, and the load script's per-thread figures).
pub const CORE_THREAD: &str = "core";

/// Datagrams taken from one socket in one turn before the outputs are carried out: enough
/// to amortise a wake-up under load, few enough that answers leave within a millisecond.
const DATAGRAMS_A_TURN: usize = 64;
/// Channel inputs taken in one turn besides the one that woke the loop.
const INPUTS_A_TURN: usize = 256;

/// How often the core loop copies its numbers out for `/metrics` (at most; when idle, the
/// copy waits for the next wake-up).
const METRICS_EVERY: Duration = Duration::from_millis(200);

/// The shell's side of a running switch: where its outputs go.
#[derive(Debug)]
pub struct Shell {
    pub transport: Transport,
    pub media: MediaCalls,
    pub ledger: LedgerTasks,
    pub notifications: talktime_b2bua::config::NotificationsConfig,
    /// The shell's runtime: what an output starts (a TCP connect, a mail) runs there.
    pub main: tokio::runtime::Handle,
}

impl Shell {
    /// Carries out everything the switch has asked for; never waits.
    pub fn carry_out(&mut self, switch: &mut Switch) {
        let _on_main = self.main.enter();
        while let Some(output) = switch.poll_output() {
            match output {
                Output::Transmit {
                    destination,
                    bytes,
                    transaction,
                } => self.transmit(destination, bytes, transaction),
                Output::Media { call, command } => self.media.execute(call, command),
                Output::Ledger { call, request } => self.ledger.queue(call, request),
                Output::CarrierHealth { carrier, up: false } => {
                    crate::notify::carrier_down(&self.notifications, self.ledger.store(), &carrier)
                }
                Output::CarrierHealth { up: true, .. } => {}
                other => warn!(?other, "an output this shell does not know"),
            }
        }
        self.ledger.hand_over();
    }

    fn transmit(&self, destination: Peer, bytes: Vec<u8>, transaction: Option<TransactionId>) {
        let protocol = match destination.transport {
            SipTransport::Udp => Protocol::Udp,
            SipTransport::Tls => Protocol::Tls,
            _ => Protocol::Tcp,
        };
        self.transport.send(Outbound {
            bytes,
            destination: destination.address,
            protocol,
            transaction,
        });
    }
}

/// Everything that feeds the core besides its sockets.
#[derive(Debug)]
pub struct Channels {
    /// Messages framed from streams and failed deliveries: core 0's (it passes them on).
    pub stream_inbound: Option<mpsc::Receiver<Inbound>>,
    pub failures: Option<mpsc::UnboundedReceiver<TransactionId>>,
    pub core_messages: mpsc::Receiver<Input>,
    pub media_reports: mpsc::UnboundedReceiver<(u64, talktime_b2bua::MediaReport)>,
    /// Every core's queue, for inputs that belong to another core.
    pub cores: crate::server::CoreSender,
}

/// Starts the core's thread; the receiver answers once the switch has stopped, with the
/// shell: the ledger's thread must outlive the caller's last writes (a PostgreSQL connection
/// the ledger's runtime opened is dead once that runtime is shut down).
pub fn start(
    switch: Switch,
    shell: Shell,
    receivers: Vec<UdpReceiver>,
    channels: Channels,
    metrics: Arc<crate::metrics::Metrics>,
) -> std::io::Result<tokio::sync::oneshot::Receiver<anyhow::Result<Shell>>> {
    let (done, finished) = tokio::sync::oneshot::channel();
    let name = match switch.core() {
        0 => CORE_THREAD.to_owned(),
        core => format!("{CORE_THREAD}-{core}"),
    };
    std::thread::Builder::new().name(name).spawn(move || {
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(run(switch, shell, receivers, channels, metrics)));
        let _ = done.send(result);
    })?;
    Ok(finished)
}

/// The loop: one wake-up, every input that is ready, the outputs carried out; the shell back
/// once the switch has stopped.
async fn run(
    mut switch: Switch,
    mut shell: Shell,
    receivers: Vec<UdpReceiver>,
    mut channels: Channels,
    metrics: Arc<crate::metrics::Metrics>,
) -> anyhow::Result<Shell> {
    let sockets = receivers
        .into_iter()
        .map(|receiver| Ok((UdpSocket::from_std(receiver.socket)?, receiver.local)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut buffer = vec![0u8; MAX_MESSAGE_BYTES];
    let mut publisher = Publisher::default();
    // An idle switch still publishes its last numbers.
    let mut metrics_tick = tokio::time::interval(METRICS_EVERY * 5);
    metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut alarm = Alarm::new();
    shell.carry_out(&mut switch);
    if switch.core() == 0 {
        info!(core_threads = channels.cores.cores(), "Talktime ready");
    }
    loop {
        alarm.set(switch.poll_timeout());
        tokio::select! {
            ready = readable(&sockets) => {
                receive_datagrams(&mut switch, &sockets[ready], &mut buffer, &channels.cores);
            }
            received = next_or_never(&mut channels.stream_inbound) => {
                pass_on(&mut switch, inbound_input(received), &channels.cores);
            }
            message = channels.core_messages.recv() => {
                let Some(input) = message else { return Ok(shell) };
                switch.handle_input(input, now());
            }
            failed = next_or_never_unbounded(&mut channels.failures) => {
                pass_on(&mut switch, Input::DeliveryFailed(failed), &channels.cores);
            }
            report = channels.media_reports.recv() => {
                if let Some((call, report)) = report {
                    switch.handle_input(Input::Media { call, report }, now());
                }
            }
            _ = alarm.wait() => switch.handle_timeout(now()),
            _ = metrics_tick.tick() => {}
        }
        take_ready_inputs(&mut switch, &mut channels);
        // A flood of inputs keeps the other branches ready: a deadline that fell due meanwhile
        // (a call's credit limit) is acted on in this turn, not when `select!` next picks it.
        if switch
            .poll_timeout()
            .is_some_and(|due| due <= Instant::now())
        {
            switch.handle_timeout(now());
        }
        shell.carry_out(&mut switch);
        publisher.publish(&switch, &metrics);
        if switch.stopped(Instant::now()) {
            info!(
                core = switch.core(),
                "stopped: every call ended, billed and recorded"
            );
            return Ok(shell);
        }
    }
}

/// The index of a socket with datagrams waiting (pending until one has).
async fn readable(sockets: &[(UdpSocket, std::net::SocketAddr)]) -> usize {
    std::future::poll_fn(|context: &mut TaskContext<'_>| {
        for (index, (socket, _)) in sockets.iter().enumerate() {
            if socket.poll_recv_ready(context).is_ready() {
                return Poll::Ready(index);
            }
        }
        Poll::Pending
    })
    .await
}

/// The next message of a channel only core 0 has (the others wait forever here).
async fn next_or_never<T>(receiver: &mut Option<mpsc::Receiver<T>>) -> T {
    match receiver {
        Some(receiver) => match receiver.recv().await {
            Some(value) => value,
            // The transport is gone: nothing more will come.
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn next_or_never_unbounded<T>(receiver: &mut Option<mpsc::UnboundedReceiver<T>>) -> T {
    match receiver {
        Some(receiver) => match receiver.recv().await {
            Some(value) => value,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Handles `input` here, or passes it to the core it belongs to (each, for a failed
/// delivery, whose transaction only its own core knows).
fn pass_on(switch: &mut Switch, input: Input, cores: &crate::server::CoreSender) {
    if cores.cores() == 1 {
        switch.handle_input(input, now());
        return;
    }
    for (core, input) in talktime_b2bua::shard::route(input, cores.cores()) {
        hand_to(switch, core, input, cores);
    }
}

/// Gives `input` to `core`: this switch, or another's queue (full: dropped, as a datagram
/// the socket could not take; that core stopped: handled here, where a new call gets 503).
fn hand_to(switch: &mut Switch, core: usize, input: Input, cores: &crate::server::CoreSender) {
    if core == switch.core() {
        switch.handle_input(input, now());
        return;
    }
    match cores.try_send_to(core, input) {
        Handoff::Taken => {}
        Handoff::Stopped(input) => switch.handle_input(input, now()),
        Handoff::Full => debug!(core, "a core's queue is full; a message for it dropped"),
    }
}

/// Hands the switch every datagram waiting on one socket, up to [`DATAGRAMS_A_TURN`];
/// a datagram of another core's call goes to that core.
fn receive_datagrams(
    switch: &mut Switch,
    (socket, local): &(UdpSocket, std::net::SocketAddr),
    buffer: &mut [u8],
    cores: &crate::server::CoreSender,
) {
    let count = cores.cores();
    for _ in 0..DATAGRAMS_A_TURN {
        match socket.try_recv_from(buffer) {
            Ok((length, source)) => {
                let source = Peer {
                    transport: SipTransport::Udp,
                    address: source,
                };
                let bytes = buffer[..length].to_vec();
                let core = talktime_b2bua::shard::shard_of_datagram(&bytes, count)
                    .unwrap_or(switch.core());
                hand_to(switch, core, Input::Datagram { bytes, source }, cores);
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return,
            // ICMP port unreachable surfaces here on some systems; keep receiving.
            Err(error) => debug!(%local, %error, "UDP receive error"),
        }
    }
}

/// The inputs already queued on the channels, up to [`INPUTS_A_TURN`], so that one turn's
/// outputs go out together.
fn take_ready_inputs(switch: &mut Switch, channels: &mut Channels) {
    for _ in 0..INPUTS_A_TURN {
        if let Ok(input) = channels.core_messages.try_recv() {
            switch.handle_input(input, now());
        } else if let Ok((call, report)) = channels.media_reports.try_recv() {
            switch.handle_input(Input::Media { call, report }, now());
        } else {
            return;
        }
    }
}

/// The switch's next deadline as one timer that is moved, not made anew each turn.
struct Alarm {
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
}

/// Far enough to mean never, near enough for the timer wheel.
const NEVER: Duration = Duration::from_secs(86_400 * 365);

impl Alarm {
    fn new() -> Alarm {
        Alarm {
            sleep: Box::pin(tokio::time::sleep(NEVER)),
            armed: None,
        }
    }

    fn set(&mut self, wake: Option<Instant>) {
        if wake == self.armed {
            return;
        }
        self.armed = wake;
        let at = wake.unwrap_or_else(|| Instant::now() + NEVER);
        self.sleep.as_mut().reset(at.into());
    }

    async fn wait(&mut self) {
        if self.armed.is_none() {
            std::future::pending::<()>().await;
        }
        self.sleep.as_mut().await;
        // Fired: the next `set` must re-arm even for the same instant.
        self.armed = None;
    }
}

/// Copies the switch's numbers to `/metrics` at most every [`METRICS_EVERY`].
struct Publisher {
    last: Instant,
    calls_published: bool,
}

impl Default for Publisher {
    fn default() -> Self {
        Publisher {
            last: Instant::now(),
            calls_published: false,
        }
    }
}

impl Publisher {
    fn publish(&mut self, switch: &Switch, metrics: &crate::metrics::Metrics) {
        if self.last.elapsed() < METRICS_EVERY {
            return;
        }
        let core = switch.core();
        metrics.publish_switch(core, &switch.counters(), switch.gauges());
        // The router is shared: one core's copy is every core's.
        if core == 0 {
            metrics.publish_carriers(switch.carrier_status());
        }
        // The live calls only while the console looks; when it stops, one empty copy, so
        // that the next first look shows no call that has long ended.
        if metrics.live_calls_wanted() {
            metrics.publish_calls(core, switch.live_calls());
            self.calls_published = true;
        } else if self.calls_published {
            metrics.publish_calls(core, Vec::new());
            self.calls_published = false;
        }
        self.last = Instant::now();
    }
}

/// A message framed from a TCP or TLS stream, as the switch takes it.
fn inbound_input(received: Inbound) -> Input {
    let transport = match received.protocol {
        Protocol::Udp => SipTransport::Udp,
        Protocol::Tcp => SipTransport::Tcp,
        Protocol::Tls => SipTransport::Tls,
    };
    let source = Peer {
        transport,
        address: received.source,
    };
    Input::Message {
        message: received.message,
        source,
    }
}
