//! The switch: one sans-IO state machine for every call. It owns the transaction layer, the
//! dialogs, the router, the carrier registrations and every call's engine; it takes inputs
//! (a datagram, a framed message, a ledger reply, a media report, a signal, the time) and
//! returns outputs (bytes to send, media commands, ledger requests) and the next time it
//! must be woken. It reads no clock and opens no socket: the tokio shell
//! (`crates/talktime/src/server.rs`) does, and drives it like quinn-proto's `Connection`.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use talktime_engine::Input as CallInput;
use talktime_media::{PortAllocator, Prompt, PromptCache};
use talktime_routing::Router;
use talktime_sip::dialog::{DialogEvent, DialogId, DialogTable, Routing};
use talktime_sip::transaction::{
    Event, Peer, RandomSource, SplitMix64, TimerConfig, TransactionId, TransactionLayer,
};
use talktime_sip::{Message, Method, Request, Response, Transport as SipTransport, Via};
use tracing::{debug, info, warn};

use crate::Deadlines;
use crate::calls::Session;
use crate::config::Config;
use crate::ledger::{LedgerReply, LedgerRequest};
use crate::media::{MediaCommand, MediaPorts, MediaReport};
use crate::recovery::LegBye;
use crate::tone::ToneCall;

/// How long an ended call's RTP ports rest before reuse.
const PORT_REST: Duration = Duration::from_millis(500);
/// How long RTP ports another program held are left alone before a call may try them again.
const PORTS_SET_ASIDE: Duration = Duration::from_secs(300);

pub(crate) const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";

/// The time, as the shell read it once for this wake-up: the monotonic clock for timers and
/// the wall clock (epoch ms) for CDRs, rating and the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub instant: Instant,
    pub epoch_ms: i64,
}

/// What happens to the switch.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input {
    /// A UDP datagram (parsed here; one that does not parse is dropped).
    Datagram { bytes: Vec<u8>, source: Peer },
    /// A message framed from a TCP stream.
    Message { message: Box<Message>, source: Peer },
    /// A message of this client transaction could not be delivered (a refused or timed-out
    /// TCP connect, a peer that stopped reading).
    DeliveryFailed(TransactionId),
    /// The ledger's answer to a [`Output::Ledger`] request of `call`.
    Ledger { call: u64, reply: LedgerReply },
    /// Something a call's media noticed.
    Media { call: u64, report: MediaReport },
    /// A prompt uploaded through the admin API, decoded, for the cache ("en/welcome").
    PromptUploaded { name: String, prompt: Prompt },
    /// Legs of calls a dead node left up, already billed by recovery: send their BYEs.
    RecoveredByes(Vec<LegBye>),
    /// SIGTERM or SIGINT: the first drains, the second ends every call now.
    Stop,
    /// An operator drains this node: new calls are refused, it stops when its calls end.
    Drain,
    /// Whether this node's heartbeat in the shared ledger is current. While it is not
    /// (`false`: the last write is older than half the lease), new calls and OPTIONS get 503:
    /// past the lease another node takes this node for dead and bills its calls.
    Lease { current: bool },
    /// An operator hangs up a call from the console (`by`: the user, for the log).
    OperatorHangup { call: u64, by: String },
    /// An operator hangs up every call of an account.
    OperatorHangupAccount { account: i64, by: String },
    /// Call a customer back (and connect them to a number, or give them the IVR).
    Callback(crate::callback::WebCallback),
    /// Carriers and dial plans changed (edited live): calls in progress keep their carrier,
    /// new calls route with these.
    RoutingChanged(Box<crate::routing::RoutingUpdate>),
}

/// What the switch asks the shell to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Bytes for the network. A failed delivery of a client transaction's message comes
    /// back as [`Input::DeliveryFailed`].
    Transmit {
        destination: Peer,
        bytes: Vec<u8>,
        transaction: Option<TransactionId>,
    },
    /// A command for one call's media.
    Media { call: u64, command: MediaCommand },
    /// A request for the ledger; every one is answered with an [`Input::Ledger`].
    Ledger { call: u64, request: LedgerRequest },
    /// A carrier stopped answering OPTIONS pings, or answers again (for the operator's mail).
    CarrierHealth { carrier: String, up: bool },
}

/// Where the shell listens: what goes into Via and Contact.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listening {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
}

/// What the switch needs besides its configuration, prepared by the shell before it starts.
pub struct Services {
    pub prompts: PromptCache,
    pub router: Router,
    /// Every carrier's address, resolved once at start-up (the switch does no DNS).
    pub carrier_addresses: HashMap<String, SocketAddr>,
    pub listening: Listening,
    /// Randomness for branches, tags, Call-IDs, RTP ports and SSRCs (the OS in production, a
    /// seed in tests).
    pub random: Box<dyn RandomSource>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Services")
            .field("prompts", &self.prompts.len())
            .finish_non_exhaustive()
    }
}

/// A test-number call's media, by dialog.
#[derive(Debug)]
struct ActiveTone {
    call: ToneCall,
    /// Where in-dialog requests go (the caller's transport and address).
    peer: Peer,
}

/// Why the switch cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("invalid RTP port range: {0}")]
    Ports(#[from] talktime_media::PortError),
    #[error("cannot spread the calls over core threads: {0}")]
    Cores(String),
}

/// The switch. See the module documentation.
pub struct Switch {
    pub(crate) config: Config,
    pub(crate) layer: TransactionLayer,
    pub(crate) dialogs: DialogTable,
    pub(crate) ports: PortAllocator,
    /// Ports of ended calls, resting until the time given before they are handed out again.
    resting_ports: VecDeque<(Instant, MediaPorts)>,
    /// RTP ports another program held when a call tried them, left alone until then.
    ports_set_aside: VecDeque<(Instant, u16)>,
    /// Test-number calls by dialog, and their dialogs by call key (media reports).
    tones: HashMap<DialogId, ActiveTone>,
    pub(crate) tone_dialogs: HashMap<u64, DialogId>,
    /// Our address as written in Via, Contact and SDP.
    pub(crate) advertised: IpAddr,
    listening: Listening,
    pub(crate) prompts: PromptCache,
    /// This switch's core thread among the node's, and what the cores share (the router,
    /// per-source admission, the alarms): see crate::shard.
    pub(crate) shard: crate::shard::Shard,
    pub(crate) carrier_addresses: HashMap<String, SocketAddr>,
    /// Prepaid calls by key, and the indexes that find them. Boxed: the table grows by
    /// doubling, and a slot is a pointer, not a whole call (measured in docs/PERFORMANCE.md).
    pub(crate) sessions: HashMap<u64, Box<Session>>,
    /// SIP subscribers' nonces, requests waiting for their record, and registrations.
    pub(crate) subscribers: crate::subscribers::Subscribers,
    /// Callbacks not yet answered, and the earliest of their deadlines.
    pub(crate) callbacks: HashMap<u64, crate::callback::Callback>,
    pub(crate) callback_deadline: Option<Instant>,
    pub(crate) by_transaction: HashMap<TransactionId, u64>,
    pub(crate) by_dialog: HashMap<DialogId, u64>,
    pub(crate) call_deadlines: Deadlines<u64, Instant>,
    /// Inputs produced while acting on outputs, fed after the current call's outputs.
    pub(crate) deferred: VecDeque<(u64, CallInput)>,
    pub(crate) health_checks: HashMap<TransactionId, String>,
    /// Carrier INVITEs we cancelled, so a 2xx that crosses the CANCEL can be hung up.
    pub(crate) abandoned_peers: HashMap<TransactionId, Peer>,
    pub(crate) registrations: crate::registration::Registrations,
    /// Requests moved from UDP to TCP for their size, as first built, for the UDP retry.
    pub(crate) moved_to_tcp: HashMap<TransactionId, (Request, Peer)>,
    /// Ledger requests not yet answered and how fast answers come (overload control; a stop
    /// waits for the requests).
    pub(crate) ledger_pace: crate::admission::LedgerPace,
    /// Calls refused by admission control on this core (for the log's summary).
    pub(crate) admission_refused: u64,
    pub(crate) counters: crate::counters::Counters,
    /// PIN answers held back while the PIN alarm is on, in the order they are due.
    pub(crate) held_pin_answers: VecDeque<(Instant, u64, CallInput)>,
    /// A graceful stop in progress.
    pub(crate) stopping: Option<crate::stop::Stopping>,
    /// The heartbeat is late (see [`Input::Lease`]): no new call until it is written again.
    pub(crate) lease_late: bool,
    /// Randomness of the switch's own (RTP ports, SSRCs); the layer has its own source.
    pub(crate) random: SplitMix64,
    /// The time of the input being handled.
    pub(crate) now: Now,
    outputs: VecDeque<Output>,
    next_key: u64,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Switch")
            .field("calls", &self.sessions.len())
            .field("tones", &self.tones.len())
            .finish_non_exhaustive()
    }
}

impl Switch {
    /// A switch with no call up. Carriers that register send their first REGISTER at once
    /// (the first [`Switch::poll_output`]s).
    pub fn new(config: Config, services: Services, now: Now) -> Result<Switch, SwitchError> {
        let mut switches = Switch::sharded(config, services, Vec::new(), now)?;
        Ok(switches.remove(0))
    }

    /// One switch for each core thread (`[sip] core_threads`: one more than `randomness`,
    /// each core's own source), sharing the router, admission and alarms (crate::shard).
    pub fn sharded(
        config: Config,
        mut services: Services,
        randomness: Vec<Box<dyn RandomSource>>,
        now: Now,
    ) -> Result<Vec<Switch>, SwitchError> {
        let count = randomness.len() + 1;
        let port_ranges =
            crate::shard::port_ranges(config.rtp.port_min, config.rtp.port_max, count)
                .map_err(SwitchError::Cores)?;
        let router = std::mem::take(&mut services.router);
        let shared = std::sync::Arc::new(crate::shard::Shared::new(router, config.alarms.clone()));
        let mut randomness = randomness.into_iter();
        let mut switches = Vec::with_capacity(count);
        for (index, ports) in port_ranges.into_iter().enumerate() {
            let random = match index {
                0 => std::mem::replace(&mut services.random, Box::new(SplitMix64::new(0))),
                _ => randomness
                    .next()
                    .ok_or(SwitchError::Cores("randomness".into()))?,
            };
            let shard = crate::shard::Shard {
                index,
                count,
                shared: shared.clone(),
            };
            let core = Services {
                prompts: services.prompts.clone(),
                router: Router::default(),
                carrier_addresses: services.carrier_addresses.clone(),
                listening: services.listening,
                random,
            };
            switches.push(Switch::for_core(config.clone(), core, shard, ports, now)?);
        }
        Ok(switches)
    }

    fn for_core(
        config: Config,
        services: Services,
        shard: crate::shard::Shard,
        (port_min, port_max): (u16, u16),
        now: Now,
    ) -> Result<Switch, SwitchError> {
        let timers = TimerConfig {
            t1: Duration::from_millis(config.sip.t1_ms),
            t2: Duration::from_millis(config.sip.t2_ms),
            t4: Duration::from_millis(config.sip.t4_ms),
            ..TimerConfig::default()
        };
        let ports = PortAllocator::new(port_min, port_max)?;
        let mut services = services;
        let random = SplitMix64::new(services.random.next_u64());
        let mut layer = TransactionLayer::new(timers, services.random);
        layer.set_max_server_transactions(config.sip.max_transactions.div_ceil(shard.count).max(1));
        // A transaction's id names its core, as a call key does (a failed delivery finds it).
        layer.set_id_space(shard.index as u64, shard.count as u64);
        let mut switch = Switch {
            layer,
            dialogs: DialogTable::new(timers),
            ports,
            resting_ports: VecDeque::new(),
            ports_set_aside: VecDeque::new(),
            tones: HashMap::new(),
            tone_dialogs: HashMap::new(),
            advertised: advertised_address(&config),
            listening: services.listening,
            config,
            prompts: services.prompts,
            shard,
            carrier_addresses: services.carrier_addresses,
            sessions: HashMap::new(),
            callbacks: HashMap::new(),
            callback_deadline: None,
            subscribers: crate::subscribers::Subscribers::default(),
            by_transaction: HashMap::new(),
            by_dialog: HashMap::new(),
            call_deadlines: Deadlines::new(),
            deferred: VecDeque::new(),
            health_checks: HashMap::new(),
            abandoned_peers: HashMap::new(),
            registrations: crate::registration::Registrations::default(),
            ledger_pace: crate::admission::LedgerPace::default(),
            admission_refused: 0,
            counters: crate::counters::Counters::default(),
            held_pin_answers: VecDeque::new(),
            moved_to_tcp: HashMap::new(),
            stopping: None,
            lease_late: false,
            random,
            now,
            outputs: VecDeque::new(),
            next_key: 1,
        };
        switch.prepare_registrations();
        Ok(switch)
    }

    /// Handles one input at `now` and runs every state machine until it is quiet; the
    /// results wait in [`Switch::poll_output`].
    pub fn handle_input(&mut self, input: Input, now: Now) {
        self.now = now;
        match input {
            Input::Datagram { bytes, source } => match Message::parse(&bytes) {
                Ok(message) => self.handle_message(message, source),
                Err(error) => {
                    self.counters.unparseable += 1;
                    debug!(source = %source.address, %error, "dropping unparseable datagram");
                }
            },
            Input::Message { message, source } => self.handle_message(*message, source),
            Input::DeliveryFailed(transaction) => self.delivery_failed(transaction),
            Input::Ledger { call, reply } => {
                self.ledger_pace.answered(now.instant);
                self.handle_ledger_reply(call, reply);
            }
            Input::Media { call, report } => self.handle_media_report(call, report),
            Input::PromptUploaded { name, prompt } => {
                self.prompts.insert(&name, prompt);
            }
            Input::RecoveredByes(byes) => self.send_recovered_byes(&byes),
            Input::Stop => self.request_stop(now.instant),
            Input::Drain => self.request_drain(),
            Input::Lease { current } => self.lease_changed(current),
            Input::OperatorHangup { call, by } => {
                if self.hang_up_for_operator(call) {
                    info!(call, user = %by, "call hung up by an operator");
                }
            }
            Input::OperatorHangupAccount { account, by } => {
                let ended = self.hang_up_account_for_operator(account);
                info!(account, calls = ended, user = %by, "account's calls hung up by an operator");
            }
            Input::RoutingChanged(update) => self.apply_routing(*update, now.instant),
            Input::Callback(request) => self.web_callback(request),
        }
        self.drain();
    }

    /// Acts on every timer due at `now` (retransmissions, call deadlines, pings, refreshes).
    pub fn handle_timeout(&mut self, now: Now) {
        self.now = now;
        let instant = now.instant;
        self.layer.handle_timeout(instant);
        self.dialogs.handle_timeout(instant);
        self.call_timeouts(instant);
        self.callback_timers(instant);
        self.release_pin_answers(instant);
        if self.shard.index == 0 {
            self.ping_carriers(instant);
            self.register_due(instant);
        }
        self.stop_timers(instant);
        self.drain();
    }

    /// The next thing for the shell to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Switch::handle_timeout`] must next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        [
            self.layer.poll_timeout(),
            self.dialogs.poll_timeout(),
            self.call_deadlines.next(),
            self.callbacks_timeout(),
            self.held_pin_answers.front().map(|(due, _, _)| *due),
            self.pings_timeout(),
            self.registrations.next_timeout(),
            self.stop_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The size of every table the switch keeps, by name: what a soak or a test watches for
    /// growth (an idle switch holds none but resting ports and carriers' health).
    pub fn table_sizes(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("sessions", self.sessions.len()),
            ("tones", self.tones.len()),
            ("tone_dialogs", self.tone_dialogs.len()),
            ("by_transaction", self.by_transaction.len()),
            ("by_dialog", self.by_dialog.len()),
            ("call_deadlines", self.call_deadlines.len()),
            ("deferred", self.deferred.len()),
            ("health_checks", self.health_checks.len()),
            ("abandoned_peers", self.abandoned_peers.len()),
            ("moved_to_tcp", self.moved_to_tcp.len()),
            ("held_pin_answers", self.held_pin_answers.len()),
            ("transactions", self.layer.len()),
            ("dialogs", self.dialogs.len()),
            ("outputs", self.outputs.len()),
            ("callbacks", self.callbacks.len()),
            ("subscriber_requests", self.subscribers.waiting()),
        ]
    }

    /// What the switch counted since start (for `/metrics`).
    pub fn counters(&self) -> crate::counters::Counters {
        let mut counters = self.counters.clone();
        // The alarms are the node's: core 0 counts them for all.
        if self.shard.index == 0 {
            counters.alarms_raised.clone_from(&self.alarms().raised);
        }
        counters
    }

    /// The gauges of the moment (for `/metrics`).
    pub fn gauges(&self) -> crate::counters::Gauges {
        crate::counters::Gauges {
            calls_up: self.calls_up(),
            ivr_sessions: self
                .sessions
                .values()
                .filter(|session| session.in_ivr())
                .count(),
            ledger_in_flight: self.ledger_pace.in_flight,
            transactions: self.layer.len(),
            dialogs: self.dialogs.len(),
            transactions_refused_full: self.layer.refused_when_full(),
            stray_responses: self.layer.stray_responses(),
            retransmissions: self.layer.retransmissions(),
        }
    }

    /// Every carrier's health and calls in progress, in configuration order.
    pub fn carrier_status(&self) -> Vec<talktime_routing::CarrierStatus> {
        self.router().carrier_status()
    }

    /// This switch's core thread (0 with one core).
    pub fn core(&self) -> usize {
        self.shard.index
    }

    /// The router the cores share (crate::shard).
    pub(crate) fn router(&self) -> std::sync::MutexGuard<'_, Router> {
        crate::shard::hold(&self.shard.shared.router)
    }

    pub(crate) fn admission(&self) -> std::sync::MutexGuard<'_, crate::admission::Admission> {
        crate::shard::hold(&self.shard.shared.admission)
    }

    pub(crate) fn alarms(&self) -> std::sync::MutexGuard<'_, crate::alarms::Alarms> {
        crate::shard::hold(&self.shard.shared.alarms)
    }

    pub(crate) fn nonces(&self) -> std::sync::MutexGuard<'_, crate::subscribers::Nonces> {
        crate::shard::hold(&self.shard.shared.nonces)
    }

    /// The next carrier ping, on the core that pings.
    fn pings_timeout(&self) -> Option<Instant> {
        (self.shard.index == 0)
            .then(|| self.router().poll_timeout())
            .flatten()
    }

    /// The key of ledger requests of no call (their answers are only counted): this core's
    /// index, which no call's key is (those start at `index + count`).
    pub(crate) fn no_call_key(&self) -> u64 {
        self.shard.index as u64
    }

    /// A Call-ID of our own that hashes to this core, so its answers come back here.
    pub(crate) fn new_call_id(&mut self, prefix: &str, host: &str) -> String {
        loop {
            let call_id = format!("{prefix}{}@{host}", self.layer.new_tag());
            if crate::shard::shard_of_call_id(&call_id, self.shard.count) == self.shard.index {
                return call_id;
            }
        }
    }

    /// Calls up (prepaid and test-number).
    pub fn calls_up(&self) -> usize {
        self.sessions.len() + self.tones.len()
    }

    /// Two port pairs for a new call, after taking back those that have rested long enough.
    pub(crate) fn allocate_ports(
        &mut self,
        random: u64,
    ) -> Result<MediaPorts, talktime_media::PortError> {
        while let Some((until, ports)) = self.resting_ports.front().copied() {
            if until > self.now.instant {
                break;
            }
            self.resting_ports.pop_front();
            ports.release(&mut self.ports);
        }
        while let Some((until, port)) = self.ports_set_aside.front().copied() {
            if until > self.now.instant {
                break;
            }
            self.ports_set_aside.pop_front();
            let _ = self.ports.release(port);
        }
        MediaPorts::allocate(&mut self.ports, random)
    }

    /// An RTP port another program holds stays allocated (no call draws its pair) for
    /// `PORTS_SET_ASIDE`, then is tried again.
    pub(crate) fn set_port_aside(&mut self, port: u16) {
        self.ports_set_aside
            .push_back((self.now.instant + PORTS_SET_ASIDE, port));
    }

    /// An ended call's ports rest `PORT_REST` before another call gets them: the media thread
    /// closes the sockets a moment after the command (a new call binding them sooner would
    /// fail), and late packets of the old call must not reach the new one.
    pub(crate) fn retire_ports(&mut self, ports: MediaPorts) {
        self.resting_ports
            .push_back((self.now.instant + PORT_REST, ports));
    }

    pub(crate) fn random_u64(&mut self) -> u64 {
        self.random.next_u64()
    }

    pub(crate) fn media_command(&mut self, call: u64, command: MediaCommand) {
        self.outputs.push_back(Output::Media { call, command });
    }

    pub(crate) fn report_carrier_health(&mut self, carrier: String, up: bool) {
        self.outputs
            .push_back(Output::CarrierHealth { carrier, up });
    }

    pub(crate) fn ledger_request(&mut self, call: u64, request: LedgerRequest) {
        self.ledger_pace.sent();
        self.outputs.push_back(Output::Ledger { call, request });
    }

    fn handle_message(&mut self, message: Message, source: Peer) {
        let message = match message {
            Message::Request(mut request) => {
                stamp_via(&mut request, source.address);
                if let Err(response) = screen(&request) {
                    let _ = self
                        .layer
                        .send_stateless(Message::Response(*response), source);
                    return;
                }
                Message::Request(request)
            }
            response => response,
        };
        if let Err(error) = self.layer.handle_message(message, source, self.now.instant) {
            debug!(source = %source.address, %error, "message refused by the transaction layer");
        }
    }

    /// Keys are `index + count × n` (n from 1): a key names its core (crate::shard).
    pub(crate) fn next_call_key(&mut self) -> u64 {
        let key = self.next_key * self.shard.count as u64 + self.shard.index as u64;
        self.next_key += 1;
        key
    }

    /// BYE on each leg of calls a dead node left up (already billed).
    pub(crate) fn send_recovered_byes(&mut self, byes: &[crate::recovery::LegBye]) {
        for bye in byes {
            let Some((request, peer)) = bye.to_request() else {
                warn!(destination = %bye.address, "a recovered BYE no longer parses");
                continue;
            };
            if let Err(error) = self.send_request(request, peer) {
                warn!(%error, "cannot send a recovered BYE");
            }
        }
        if !byes.is_empty() {
            info!(legs = byes.len(), "BYE sent on the legs of recovered calls");
        }
    }

    /// Sends BYE in a test call's dialog and forgets the call.
    pub(crate) fn hang_up_tone(&mut self, id: &DialogId) {
        let Some(tone) = self.tones.remove(id) else {
            return;
        };
        self.tone_dialogs.remove(&tone.call.key());
        tone.call.stop(self);
        let via = self.via_for(tone.peer.transport);
        let Some(dialog) = self.dialogs.get_mut(id) else {
            return;
        };
        let bye = dialog.new_request(Method::Bye, &via);
        self.dialogs.remove(id);
        if let Err(error) = self.layer.send_request(bye, tone.peer, self.now.instant) {
            warn!(%error, "cannot send BYE");
        }
    }

    /// Starts a client transaction. A UDP request larger than `udp_mtu` goes over TCP
    /// instead (RFC 3261 §18.1.1), with Via and Contact rewritten to match. Returns the
    /// transaction, the peer actually used and the request as sent.
    pub(crate) fn send_request(
        &mut self,
        mut request: Request,
        mut peer: Peer,
    ) -> Result<(TransactionId, Peer, Request), talktime_sip::transaction::TransactionError> {
        let original = (request.clone(), peer);
        let moved = needs_tcp(
            &request,
            peer,
            self.config.sip.udp_mtu,
            self.listening.tcp.is_some(),
        );
        if moved {
            peer.transport = SipTransport::Tcp;
            request.headers.set("Via", &self.via_for(SipTransport::Tcp));
            if request.headers.get("Contact").is_some() {
                request
                    .headers
                    .set("Contact", &self.contact(SipTransport::Tcp));
            }
        }
        let transaction = self
            .layer
            .send_request(request.clone(), peer, self.now.instant)?;
        if moved {
            self.moved_to_tcp.insert(transaction, original);
        }
        Ok((transaction, peer, request))
    }

    /// A message of `transaction` could not be delivered. A request we moved to TCP for its
    /// size goes again over UDP (RFC 3261 §18.1.1: the peer may not do TCP); anything else
    /// fails its transaction.
    pub(crate) fn delivery_failed(&mut self, transaction: TransactionId) {
        let Some((request, peer)) = self.moved_to_tcp.remove(&transaction) else {
            self.layer.handle_transport_error(transaction);
            return;
        };
        match self.layer.send_request(request, peer, self.now.instant) {
            Ok(retry) => {
                info!(destination = %peer.address, "TCP refused; request sent again over UDP");
                self.remap_transaction(transaction, retry, peer);
                // The TCP attempt ends without its failure reaching anyone: it was remapped.
                self.layer.handle_transport_error(transaction);
            }
            Err(error) => {
                warn!(%error, "cannot resend over UDP");
                self.layer.handle_transport_error(transaction);
            }
        }
    }

    /// Our `host:port` for a transport.
    pub(crate) fn sent_by(&self, transport: SipTransport) -> String {
        let port = match transport {
            SipTransport::Udp => self.listening.udp.map(|a| a.port()),
            SipTransport::Tls => self.listening.tls.map(|a| a.port()),
            _ => self.listening.tcp.map(|a| a.port()),
        };
        format!("{}:{}", host_text(self.advertised), port.unwrap_or(5060))
    }

    pub(crate) fn via_for(&self, transport: SipTransport) -> String {
        format!("SIP/2.0/{transport} {};rport", self.sent_by(transport))
    }

    pub(crate) fn contact(&self, transport: SipTransport) -> String {
        let sent_by = self.sent_by(transport);
        match transport {
            SipTransport::Udp => format!("<sip:talktime@{sent_by}>"),
            // RFC 5630: a TLS hop is asked for with transport=tls on a sip: URI (sips: would
            // promise TLS on every hop beyond us, which a B2BUA cannot).
            SipTransport::Tls => format!("<sip:talktime@{sent_by};transport=tls>"),
            _ => format!("<sip:talktime@{sent_by};transport=tcp>"),
        }
    }

    /// Runs every state machine until it is quiet, then queues the messages they produced.
    fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some((call, input)) = self.deferred.pop_front() {
                progressed = true;
                self.feed(call, input);
            }
            while let Some(event) = self.layer.poll_event() {
                progressed = true;
                self.handle_event(event);
            }
            while let Some(event) = self.dialogs.poll_event() {
                progressed = true;
                if let DialogEvent::AckTimeout { dialog } = event {
                    match self.by_dialog.get(&dialog) {
                        Some(&call) => self.caller_never_acked(call, &dialog),
                        None => self.hang_up_tone(&dialog),
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        let mut transmits = Vec::new();
        while let Some(transmit) = self.layer.poll_transmit() {
            transmits.push(transmit);
        }
        while let Some(transmit) = self.dialogs.poll_transmit() {
            transmits.push(transmit);
        }
        for transmit in transmits {
            self.outputs.push_back(Output::Transmit {
                destination: transmit.destination,
                bytes: transmit.message.to_bytes(),
                transaction: transmit.transaction,
            });
        }
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Request {
                transaction,
                request,
                source,
            } => self.handle_request(transaction, request, source),
            Event::Ack { request, .. } => {
                // An ACK for our 2xx: it may carry the answer to a delayed offer.
                if let Routing::InDialog(id) = self.dialogs.route_request(&request)
                    && let Some(&call) = self.by_dialog.get(&id)
                {
                    self.caller_acked(call, &request, &id);
                }
            }
            Event::CancelReceived { cancel, invite, .. } => {
                let _ = self.layer.answer_cancel(cancel, self.now.instant);
                if let Some(&call) = self.by_transaction.get(&invite) {
                    self.caller_cancelled(call);
                }
            }
            Event::Response {
                transaction,
                response,
            } => {
                if self.health_answer(transaction, true)
                    || self.registration_response(transaction, &response)
                {
                    return;
                }
                if let Some(&call) = self.by_transaction.get(&transaction) {
                    self.carrier_response(call, transaction, response);
                } else if (200..300).contains(&response.status) {
                    self.late_answer(transaction, &response);
                }
            }
            Event::Timeout { transaction, kind } => {
                debug!(?transaction, ?kind, "transaction timed out");
                self.transaction_failed(transaction);
            }
            Event::TransportError { transaction } => self.transaction_failed(transaction),
            Event::Terminated { transaction } => {
                self.moved_to_tcp.remove(&transaction);
                self.by_transaction.remove(&transaction);
                self.abandoned_peers.remove(&transaction);
                self.health_checks.remove(&transaction);
            }
        }
    }

    fn transaction_failed(&mut self, transaction: TransactionId) {
        if self.health_answer(transaction, false) || self.registration_failed(transaction) {
            return;
        }
        if let Some(&call) = self.by_transaction.get(&transaction) {
            self.carrier_timeout(call, transaction);
        }
    }

    fn handle_request(&mut self, transaction: TransactionId, request: Request, source: Peer) {
        crate::counters::Counters::add(
            &mut self.counters.requests_received,
            crate::counters::Counters::method_label(&request.method),
        );
        match self.dialogs.route_request(&request) {
            Routing::Reject(response) => self.respond(transaction, response),
            Routing::Drop => {}
            Routing::InDialog(id) => match self.by_dialog.get(&id) {
                Some(&call) => self.call_request(call, transaction, request, &id),
                None => self.handle_in_dialog(transaction, request, id),
            },
            Routing::OutOfDialog => self.handle_out_of_dialog(transaction, request, source),
        }
    }

    fn handle_in_dialog(&mut self, transaction: TransactionId, request: Request, id: DialogId) {
        let response = match request.method {
            Method::Bye => {
                if let Some(tone) = self.tones.remove(&id) {
                    self.tone_dialogs.remove(&tone.call.key());
                    tone.call.stop(self);
                }
                self.dialogs.remove(&id);
                Response::for_request(&request, 200, "OK")
            }
            Method::Options | Method::Info | Method::Update => {
                Response::for_request(&request, 200, "OK")
            }
            Method::Ack => return,
            // Hold and codec changes need the call engine; refuse without ending the call.
            Method::Invite => Response::for_request(&request, 488, "Not Acceptable Here"),
            _ => Response::for_request(&request, 405, "Method Not Allowed"),
        };
        self.respond(transaction, response);
    }

    fn handle_out_of_dialog(&mut self, transaction: TransactionId, request: Request, source: Peer) {
        let response = match request.method {
            // A stopping node says so to a proxy's probe, which then sends its calls elsewhere;
            // so does a node whose heartbeat is late.
            Method::Options if self.is_stopping() || self.lease_late => {
                self.stopping_refusal(&request)
            }
            Method::Options => {
                let mut response = Response::for_request(&request, 200, "OK");
                response.headers.push("Allow", ALLOW);
                response.headers.push("Accept", "application/sdp");
                response
            }
            Method::Invite if self.is_stopping() => {
                crate::counters::Counters::add(&mut self.counters.calls_refused, "stopping");
                self.stopping_refusal(&request)
            }
            Method::Invite if self.lease_late => {
                crate::counters::Counters::add(&mut self.counters.calls_refused, "lease");
                self.stopping_refusal(&request)
            }
            Method::Invite => match self.answer_invite(transaction, &request, source) {
                Ok(()) => return,
                Err(response) => *response,
            },
            Method::Register => match self.subscriber_request(transaction, &request, source) {
                None => return,
                Some(response) => response,
            },
            Method::Ack => return,
            Method::Bye => Response::for_request(&request, 481, "Call/Transaction Does Not Exist"),
            _ => Response::for_request(&request, 405, "Method Not Allowed"),
        };
        self.respond(transaction, response);
    }

    /// Answers an INVITE: the test number with a tone, an access number with the IVR.
    fn answer_invite(
        &mut self,
        transaction: TransactionId,
        request: &Request,
        source: Peer,
    ) -> Result<(), Box<Response>> {
        let test_number = &self.config.sip.test_number;
        let user = request.uri.user().unwrap_or_default();
        if test_number.is_empty() || user != test_number.as_str() {
            let refused = |switch: &mut Switch, reason: &'static str| {
                crate::counters::Counters::add(&mut switch.counters.calls_refused, reason);
            };
            let Some(access) = self.config.access_number(user).cloned() else {
                // Not an access number: a subscriber's call (admitted once its credentials
                // are there), or nothing.
                return match self.subscriber_request(transaction, request, source) {
                    None => Ok(()),
                    Some(response) => {
                        refused(self, "not_found");
                        Err(Box::new(response))
                    }
                };
            };
            let trust = self.config.peer_trust(source.address.ip());
            if !trust.access {
                refused(self, "untrusted");
                info!(source = %source.address, "access number call from an untrusted peer refused");
                return Err(Box::new(Response::for_request(request, 403, "Forbidden")));
            }
            if let Err(response) = self.admit(request, source, &trust) {
                refused(self, "admission");
                return Err(response);
            }
            if access.callback {
                crate::counters::Counters::add(&mut self.counters.calls_refused, "callback");
                return Err(Box::new(self.request_callback(request, access, &trust)));
            }
            let number = access.number.clone();
            return match self.start_call(transaction, request, source, access, trust, None) {
                Ok(()) => {
                    crate::counters::Counters::add(&mut self.counters.calls_started, number);
                    Ok(())
                }
                Err(error) => {
                    refused(self, "start_error");
                    info!(%error, "call refused");
                    Err(Box::new(error.response(request)))
                }
            };
        }
        self.answer_tone(transaction, request, source)
    }

    /// Admission control: 503 + Retry-After for a source over its limits or a full switch.
    pub(crate) fn admit(
        &mut self,
        request: &Request,
        source: Peer,
        trust: &crate::config::PeerTrust,
    ) -> Result<(), Box<Response>> {
        let calls_up = self.calls_up();
        let admitted = self.admission().admit(
            &self.config.admission,
            self.shard.count,
            trust,
            source.address.ip(),
            calls_up,
            self.now.instant,
        );
        let Err(refusal) = admitted else {
            return Ok(());
        };
        self.admission_refused += 1;
        debug!(source = %source.address, limit = refusal.as_str(), "call refused by admission control");
        // A flood is summed up, not logged call by call.
        if self.admission_refused.is_power_of_two() {
            warn!(
                refused = self.admission_refused,
                limit = refusal.as_str(),
                "calls refused by admission control so far"
            );
        }
        let mut response = Response::for_request(request, 503, "Service Unavailable");
        response
            .headers
            .push("Retry-After", &refusal.retry_after_s().to_string());
        Err(Box::new(response))
    }

    /// Answers the test number: a tone of `[sip] test_call_ms`, then BYE.
    fn answer_tone(
        &mut self,
        transaction: TransactionId,
        request: &Request,
        source: Peer,
    ) -> Result<(), Box<Response>> {
        let key = self.next_call_key();
        let tone = Duration::from_millis(self.config.sip.test_call_ms);
        let (call, sdp) = match ToneCall::start(self, key, request, &source, tone) {
            Ok(started) => started,
            Err(error) => {
                debug!(%error, "test call refused");
                return Err(Box::new(error.response(request)));
            }
        };
        let mut response = Response::for_request(request, 200, "OK");
        let tag = self.layer.new_tag();
        response.set_to_tag(&tag);
        response
            .headers
            .push("Contact", &self.contact(source.transport));
        response.headers.push("Allow", ALLOW);
        response.headers.push("Content-Type", "application/sdp");
        response.body = sdp;
        let dialog = match talktime_sip::dialog::Dialog::uas(request, &response) {
            Ok(dialog) => dialog,
            Err(error) => {
                call.stop(self);
                debug!(%error, "cannot create dialog");
                return Err(Box::new(Response::for_request(request, 400, "Bad Request")));
            }
        };
        let id = self.dialogs.insert(dialog);
        let _ =
            self.dialogs
                .start_2xx_retransmission(&id, response.clone(), source, self.now.instant);
        self.respond(transaction, response);
        self.tone_dialogs.insert(key, id.clone());
        self.tones.insert(id, ActiveTone { call, peer: source });
        Ok(())
    }

    pub(crate) fn respond(&mut self, transaction: TransactionId, mut response: Response) {
        crate::counters::Counters::add(
            &mut self.counters.responses_sent,
            crate::counters::Counters::status_class(response.status),
        );
        response.headers.push("Server", &self.config.sip.user_agent);
        if let Err(error) = self
            .layer
            .send_response(transaction, response, self.now.instant)
        {
            debug!(%error, "cannot send response");
        }
    }
}

/// RFC 3261 §18.1.1: a UDP request too large for the path (`udp_mtu`, 1300 by default as
/// the RFC suggests when the MTU is unknown) moves to TCP when we listen on TCP.
fn needs_tcp(request: &Request, peer: Peer, udp_mtu: usize, tcp_available: bool) -> bool {
    peer.transport == SipTransport::Udp && tcp_available && request.to_bytes().len() > udp_mtu
}

/// The address peers should reach us at: the configured one, else the first concrete
/// listen address, else loopback.
fn advertised_address(config: &Config) -> IpAddr {
    if let Ok(address) = config.sip.advertised_address.parse() {
        return address;
    }
    config
        .sip
        .udp
        .iter()
        .chain(&config.sip.tcp)
        .map(|a| a.ip())
        .find(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn host_text(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// RFC 3261 §18.2.1 and RFC 3581: note where the request really came from in its top Via.
fn stamp_via(request: &mut Request, source: SocketAddr) {
    let Ok(mut vias) = request.via() else {
        return;
    };
    let Some(top) = vias.first_mut() else {
        return;
    };
    let source_ip = source.ip().to_string();
    let wants_rport = top.rport().is_some();
    if top.host.trim_matches(|c| c == '[' || c == ']') != source_ip || wants_rport {
        top.params.set("received", Some(&source_ip));
    }
    if wants_rport {
        top.params.set("rport", Some(&source.port().to_string()));
    }
    let joined = vias
        .iter()
        .map(Via::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    request.headers.set("Via", &joined);
}

/// Checks a request before it opens a transaction; `Err` is the response to send at once.
fn screen(request: &Request) -> Result<(), Box<Response>> {
    if request.method == Method::Ack {
        return Ok(());
    }
    if let Err(error) = request.validate() {
        return Err(Box::new(Response::for_request(
            request,
            error.status(),
            &error.reason(),
        )));
    }
    if let Err(error) = request.check_uri_scheme() {
        return Err(Box::new(Response::for_request(
            request,
            error.status(),
            &error.reason(),
        )));
    }
    if let Err(unsupported) = talktime_sip::check_require(request, &["timer"]) {
        return Err(Box::new(unsupported.response(request)));
    }
    // We are a UA, but a B2BUA forwards: a request with no hops left ends here.
    if request.method != Method::Options && matches!(request.max_forwards(), Ok(Some(0))) {
        return Err(Box::new(Response::for_request(
            request,
            483,
            "Too Many Hops",
        )));
    }
    Ok(())
}
