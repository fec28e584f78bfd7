//! The threads that carry RTP. Each media thread owns the sockets of many calls in one
//! level-triggered epoll set and runs their sans-IO [`Relay`]s itself: a relayed packet costs
//! one `recvfrom` and one `sendto`, with `epoll_wait` shared by every socket that is ready.
//! (A tokio task per call cost a wake-up, a second `recvfrom` that found the socket empty and
//! a timer per packet; see docs/PERFORMANCE.md.)
//!
//! The switch's media commands reach a call's thread through
//! [`crate::media_session::MediaCalls`], which queues [`Control`]s for it and rings its eventfd.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use talktime_media::relay::{MediaEvent, Relay, RtcpMode, RtpAction, Side};
use tracing::{debug, warn};

use talktime_b2bua::{MediaCommand, MediaReport};

use crate::media_session::ReportSender;

/// What a media thread is asked to do.
#[derive(Debug)]
pub(crate) enum Control {
    Open(Box<NewCall>),
    Command(u64, MediaCommand),
    Close(u64),
    Shutdown,
}

/// A call's media handed to a thread: its sockets, already bound.
#[derive(Debug)]
pub(crate) struct NewCall {
    pub(crate) id: u64,
    pub(crate) call: u64,
    pub(crate) sockets: [UdpSocket; 2],
    pub(crate) reports: ReportSender,
    pub(crate) inactivity: Duration,
}

/// The way to one media thread.
#[derive(Debug, Clone)]
pub(crate) struct WorkerHandle {
    control: mpsc::Sender<Control>,
    wake: Arc<EventFd>,
    rung: Arc<AtomicBool>,
}

impl WorkerHandle {
    pub(crate) fn send(&self, control: Control) {
        // A thread that has stopped (shutdown) has nothing left to act on.
        if self.control.send(control).is_ok() {
            // One ring until the thread takes its controls: the commands of a burst (a call's
            // set-up, many calls' in one core turn) cost one eventfd write, not one each.
            if !self.rung.swap(true, Ordering::AcqRel) {
                let _ = self.wake.write(1);
            }
        }
    }
}

/// What one media thread counted (for `/metrics`); each thread has its own, so counting
/// costs no shared cache line.
#[derive(Debug, Default)]
pub struct MediaStats {
    /// RTP packets relayed from one leg to the other.
    pub relayed: AtomicU64,
    /// RTP packets dropped (a stranger's, malformed, before the bridge, ...).
    pub dropped: AtomicU64,
    /// Packets the switch made itself (prompt frames, tones, DTMF events).
    pub generated: AtomicU64,
    /// Microseconds the thread spent working (not waiting for sockets, not resting): its
    /// load is the rate of this over wall time.
    pub busy_micros: AtomicU64,
}

/// The media threads of a switch; dropping it stops them.
#[derive(Debug)]
pub struct MediaWorkers {
    stats: Vec<Arc<MediaStats>>,
    handles: Vec<WorkerHandle>,
    threads: Vec<JoinHandle<()>>,
    next_thread: AtomicUsize,
    next_id: AtomicU64,
}

impl MediaWorkers {
    /// Starts `threads` media threads (0: one per core). After each round of work a thread
    /// rests `batch_interval` before it looks at its sockets again, so that one
    /// `epoll_wait` (and one wake-up) serves many packets under load; packets wait at most
    /// that long. Zero turns the rest off.
    pub fn start(threads: usize, batch_interval: Duration) -> std::io::Result<MediaWorkers> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            threads => threads,
        };
        let mut handles = Vec::new();
        let mut joins = Vec::new();
        let mut stats = Vec::new();
        for index in 0..threads {
            let (handle, mut worker) = Worker::new(batch_interval)?;
            stats.push(worker.stats.clone());
            worker.stats = stats[index].clone();
            let thread = std::thread::Builder::new()
                .name(format!("media-{index}"))
                .spawn(move || worker.run())?;
            handles.push(handle);
            joins.push(thread);
        }
        Ok(MediaWorkers {
            stats,
            handles,
            threads: joins,
            next_thread: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        })
    }

    /// Every thread's counters.
    pub fn stats(&self) -> Vec<Arc<MediaStats>> {
        self.stats.clone()
    }

    /// The thread for a new call (round robin) and the call's id on it.
    pub(crate) fn assign(&self) -> (WorkerHandle, u64) {
        let index = self.next_thread.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        (self.handles[index].clone(), id)
    }
}

impl Drop for MediaWorkers {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.send(Control::Shutdown);
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The epoll key of the eventfd; sockets use `slot * 2 + side`.
const WAKE_KEY: u64 = u64::MAX;
/// Events taken per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 512;
/// Large enough for any RTP packet we accept (and jumbo loopback datagrams are cut here).
const BUFFER_BYTES: usize = 2048;

struct Worker {
    epoll: Epoll,
    wake: Arc<EventFd>,
    /// Set by the first sender after the last take of the controls (see [`WorkerHandle::send`]).
    rung: Arc<AtomicBool>,
    control: mpsc::Receiver<Control>,
    /// Boxed: the slots grow by doubling, and a free or spare one is a pointer, not a call.
    calls: Vec<Option<Box<CallMedia>>>,
    free_slots: Vec<usize>,
    slot_of: HashMap<u64, usize>,
    /// Wake-ups by slot; an entry is current only while it equals the call's `armed`.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    received: [u8; BUFFER_BYTES],
    outbound: [u8; BUFFER_BYTES],
    batch_interval: Duration,
    stats: Arc<MediaStats>,
}

impl Worker {
    fn new(batch_interval: Duration) -> std::io::Result<(WorkerHandle, Worker)> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let wake = Arc::new(EventFd::from_flags(
            EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC,
        )?);
        epoll.add(&*wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE_KEY))?;
        let (sender, receiver) = mpsc::channel();
        let rung = Arc::new(AtomicBool::new(false));
        let handle = WorkerHandle {
            control: sender,
            wake: wake.clone(),
            rung: rung.clone(),
        };
        let worker = Worker {
            epoll,
            wake,
            rung,
            control: receiver,
            calls: Vec::new(),
            free_slots: Vec::new(),
            slot_of: HashMap::new(),
            timers: BinaryHeap::new(),
            received: [0; BUFFER_BYTES],
            outbound: [0; BUFFER_BYTES],
            batch_interval,
            stats: Arc::new(MediaStats::default()),
        };
        Ok((handle, worker))
    }

    fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); EVENTS_PER_WAIT];
        loop {
            let timeout = self.wait_timeout(Instant::now());
            let ready = match self.epoll.wait(&mut events, timeout) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => 0,
                Err(error) => {
                    warn!(%error, "media thread cannot wait for sockets; stopping");
                    return;
                }
            };
            // One clock read per batch: latching and inactivity need no finer time.
            let now = Instant::now();
            let events = &events[..ready];
            // Controls first: a packet that became readable together with a SetLeg or
            // Bridge must see it applied.
            if events.iter().any(|event| event.data() == WAKE_KEY) && !self.take_controls(now) {
                return;
            }
            for event in events {
                if event.data() != WAKE_KEY {
                    self.receive(event.data(), now);
                }
            }
            let done = Instant::now();
            self.fire_timers(done);
            let busy = u64::try_from(done.saturating_duration_since(now).as_micros()).unwrap_or(0);
            self.stats.busy_micros.fetch_add(busy, Ordering::Relaxed);
            if ready > 0 {
                self.rest();
            }
        }
    }

    /// Lets packets gather (never past the next wake-up).
    fn rest(&self) {
        if self.batch_interval.is_zero() {
            return;
        }
        let now = Instant::now();
        let until = match self.timers.peek() {
            Some(Reverse((at, _))) => (*at).min(now + self.batch_interval),
            None => now + self.batch_interval,
        };
        std::thread::sleep(until.saturating_duration_since(now));
    }

    /// Until the earliest wake-up, in whole milliseconds rounded up (epoll's resolution).
    fn wait_timeout(&self, now: Instant) -> EpollTimeout {
        let Some(Reverse((at, _))) = self.timers.peek() else {
            return EpollTimeout::NONE;
        };
        let micros = at.saturating_duration_since(now).as_micros();
        EpollTimeout::try_from(micros.div_ceil(1000)).unwrap_or(EpollTimeout::MAX)
    }

    /// Applies queued controls; false on shutdown.
    fn take_controls(&mut self, now: Instant) -> bool {
        // The ring is read, then cleared, then the queue drained, in that order: a sender
        // that finds it set queued before the clear, so the drain takes its control; one that
        // finds it clear rings again. (Cleared before the read, a ring written in between was
        // read here and the flag stayed set with nothing left to wake the thread.)
        let _ = self.wake.read();
        self.rung.swap(false, Ordering::AcqRel);
        while let Ok(control) = self.control.try_recv() {
            match control {
                Control::Open(call) => self.open(*call),
                Control::Command(id, command) => self.command(id, command, now),
                Control::Close(id) => self.close(id),
                Control::Shutdown => return false,
            }
        }
        true
    }

    fn open(&mut self, new: NewCall) {
        let slot = self.free_slots.pop().unwrap_or(self.calls.len());
        for (side, socket) in new.sockets.iter().enumerate() {
            let key = (slot as u64) << 1 | side as u64;
            if let Err(error) = self
                .epoll
                .add(socket, EpollEvent::new(EpollFlags::EPOLLIN, key))
            {
                warn!(call = new.call, %error, "cannot watch an RTP socket");
            }
        }
        let media = Box::new(CallMedia {
            call: new.call,
            sockets: new.sockets,
            relay: Relay::new(RtcpMode::Terminate),
            reports: new.reports,
            playback: None,
            inactivity: new.inactivity,
            armed: None,
        });
        if slot == self.calls.len() {
            self.calls.push(Some(media));
        } else {
            self.calls[slot] = Some(media);
        }
        self.slot_of.insert(new.id, slot);
    }

    fn command(&mut self, id: u64, command: MediaCommand, now: Instant) {
        let Some(&slot) = self.slot_of.get(&id) else {
            return;
        };
        if let Some(Some(media)) = self.calls.get_mut(slot) {
            media.apply(command, now);
            if let Some(at) = media.flush(now, &mut self.outbound, &self.stats) {
                self.timers.push(Reverse((at, slot)));
            }
        }
    }

    fn close(&mut self, id: u64) {
        let Some(slot) = self.slot_of.remove(&id) else {
            return;
        };
        if let Some(media) = self.calls.get_mut(slot).and_then(Option::take) {
            for socket in &media.sockets {
                let _ = self.epoll.delete(socket);
            }
            self.free_slots.push(slot);
        }
    }

    fn receive(&mut self, key: u64, now: Instant) {
        let slot = (key >> 1) as usize;
        let side = if key & 1 == 0 { Side::A } else { Side::B };
        let Some(Some(media)) = self.calls.get_mut(slot) else {
            return;
        };
        media.receive(side, &mut self.received, &self.stats, now);
        if let Some(at) = media.flush(now, &mut self.outbound, &self.stats) {
            self.timers.push(Reverse((at, slot)));
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, slot))) = self.timers.peek() {
            if at > now {
                return;
            }
            self.timers.pop();
            let Some(Some(media)) = self.calls.get_mut(slot) else {
                continue;
            };
            // Entries left behind when a call's wake-up moved earlier are not current.
            if media.armed != Some(at) {
                continue;
            }
            media.armed = None;
            media.relay.handle_timeout(now);
            if let Some(at) = media.flush(now, &mut self.outbound, &self.stats) {
                self.timers.push(Reverse((at, slot)));
            }
        }
    }
}

/// One call's media on its thread.
struct CallMedia {
    call: u64,
    sockets: [UdpSocket; 2],
    relay: Relay,
    reports: ReportSender,
    /// The caller's playback in progress, reported when it finishes.
    playback: Option<u64>,
    inactivity: Duration,
    /// The wake-up the thread holds for this call. The relay's deadline moves later with
    /// every packet (inactivity), so the held one is only moved earlier: a wake-up that comes
    /// early costs one `handle_timeout` that finds nothing due, far less than re-filing it
    /// per packet.
    armed: Option<Instant>,
}

impl CallMedia {
    /// Reads one datagram (level-triggered epoll reports the socket again if more wait).
    fn receive(&mut self, side: Side, buffer: &mut [u8], stats: &MediaStats, now: Instant) {
        let Ok((length, from)) = self.sockets[index(side)].recv_from(buffer) else {
            // Empty, or an ICMP error for an earlier send (reading it clears it).
            return;
        };
        let Some(packet) = buffer.get_mut(..length) else {
            return;
        };
        self.forward(side, from, packet, stats, now);
    }

    fn forward(
        &mut self,
        side: Side,
        from: SocketAddr,
        packet: &mut [u8],
        stats: &MediaStats,
        now: Instant,
    ) {
        let action = self.relay.handle_rtp(side, from, packet, now);
        tracing::trace!(call = self.call, ?side, %from, ?action, "rtp");
        match action {
            RtpAction::Forward { side, destination } => {
                stats.relayed.fetch_add(1, Ordering::Relaxed);
                // A full send buffer drops the packet, as the network would: RTP copes.
                let _ = self.sockets[index(side)].send_to(packet, destination);
            }
            RtpAction::Drop(_) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn apply(&mut self, command: MediaCommand, now: Instant) {
        match command {
            MediaCommand::SetLeg(side, config) => self.relay.set_leg(side, config, now),
            MediaCommand::Play {
                playback,
                items,
                barge_in,
            } => {
                self.playback = None;
                match self.relay.play(Side::A, items, barge_in, now) {
                    Ok(()) => self.playback = Some(playback),
                    Err(error) => debug!(call = self.call, %error, "cannot play"),
                }
            }
            MediaCommand::Stop => {
                self.playback = None;
                self.relay.stop_playback(Side::A);
            }
            MediaCommand::Bridge(bridged) => self.relay.set_bridged(bridged),
            // Open and Close are the shell's (media_session.rs), never sent to a thread.
            _ => {}
        }
    }

    /// Sends what the relay has due, passes its events on, and returns a wake-up to file
    /// when the relay's next deadline is earlier than the one held.
    fn flush(&mut self, now: Instant, outbound: &mut [u8], stats: &MediaStats) -> Option<Instant> {
        while let Some(transmit) = self.relay.poll_transmit(now, outbound) {
            stats.generated.fetch_add(1, Ordering::Relaxed);
            if let Some(packet) = outbound.get(..transmit.length) {
                let _ = self.sockets[index(transmit.side)].send_to(packet, transmit.destination);
            }
        }
        while let Some(event) = self.relay.poll_event() {
            if let Some(report) = self.report_for(event) {
                // The core gone means the switch is stopping.
                let _ = self.reports.send((self.call, report));
            }
        }
        let wake = self.relay.poll_timeout()?;
        if self.armed.is_some_and(|armed| armed <= wake) {
            return None;
        }
        self.armed = Some(wake);
        Some(wake)
    }

    fn report_for(&mut self, event: MediaEvent) -> Option<MediaReport> {
        // A DTMF event is logged without its digit (the caller's PIN, key by key).
        match &event {
            MediaEvent::Dtmf { side, .. } => tracing::trace!(call = self.call, ?side, "dtmf"),
            other => tracing::trace!(call = self.call, event = ?other, "media event"),
        }
        match event {
            MediaEvent::Dtmf {
                side: Side::A,
                event,
            } => Some(MediaReport::Digit(event.digit)),
            MediaEvent::PlaybackFinished {
                side: Side::A,
                interrupted,
            } => {
                let playback = self.playback.take()?;
                (!interrupted).then_some(MediaReport::PlaybackFinished(playback))
            }
            MediaEvent::Inactive { side } => Some(MediaReport::Inactive {
                side,
                last_packet: now_minus(self.inactivity),
            }),
            _ => None,
        }
    }
}

fn now_minus(elapsed: Duration) -> Instant {
    let now = Instant::now();
    now.checked_sub(elapsed).unwrap_or(now)
}

fn index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    /// Threads send one media thread controls as fast as they can for a while, pausing now
    /// and then so that the thread catches up and sleeps; then the switch's stop (a Shutdown
    /// and a join) must still reach it. A lost wake-up leaves the thread asleep with its ring
    /// flag set, and the stop hangs.
    #[test]
    fn controls_from_many_threads_never_lose_the_wake_up() {
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            let workers = MediaWorkers::start(1, Duration::ZERO).unwrap();
            let (handle, _) = workers.assign();
            let senders: Vec<_> = (0..4)
                .map(|_| {
                    let handle = handle.clone();
                    std::thread::spawn(move || {
                        for id in 0..2_000 {
                            handle.send(Control::Close(id));
                            if id % 64 == 0 {
                                std::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            for sender in senders {
                sender.join().unwrap();
            }
            let (done, stopped) = mpsc::channel();
            std::thread::spawn(move || {
                drop(workers);
                let _ = done.send(());
            });
            assert!(
                stopped.recv_timeout(Duration::from_secs(10)).is_ok(),
                "the media thread missed its wake-up"
            );
        }
    }
}
