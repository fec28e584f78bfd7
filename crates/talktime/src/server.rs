//! The running switch: binds the transports and runs the SIP core loop.
//!
//! One task (the core) owns the sans-IO transaction layer, the dialog table, the router and
//! every call's engine; the transports feed it parsed messages and it hands bytes back.
//! Media runs in one task per call ([`crate::media_session`]), ledger requests in short
//! tasks whose answers come back as [`CoreMessage`]s, so nothing in the core waits on IO.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use talktime_b2bua::Deadlines;
use talktime_engine::Input;
use talktime_media::{PortAllocator, PromptCache};
use talktime_routing::Router;
use talktime_sip::dialog::{Dialog, DialogEvent, DialogId, DialogTable, Routing};
use talktime_sip::transaction::{
    Event, Peer, SystemRandom, TimerConfig, TransactionId, TransactionLayer,
};
use talktime_sip::{Message, Method, Request, Response, Transport as SipTransport, Via};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::calls::{LedgerReply, Session};
use crate::config::Config;
use crate::ledger::Ledger;
use crate::media_session::{MediaReport, ReportSender};
use crate::media_workers::MediaWorkers;
use crate::test_call::{self, TestCall};
use crate::transport::{Inbound, Outbound, Payload, Protocol, Transport};

pub(crate) const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";

/// Messages from per-call tasks back to the core.
#[derive(Debug)]
pub enum CoreMessage {
    /// The test call's tone finished: hang up.
    TestCallFinished(DialogId),
    /// A ledger task answered for a call.
    Ledger(u64, LedgerReply),
    /// A prompt uploaded through the admin API, decoded, for the cache ("en/welcome").
    PromptUploaded(String, talktime_media::Prompt),
    /// A ledger task with no answer (a settle, a release) is done: a stopping core checks
    /// whether it may exit.
    LedgerDone,
    /// Legs of calls a dead node left up, billed by this node's recovery: send their BYEs.
    RecoveredByes(Vec<crate::recovery::LegBye>),
}

/// The wall clock in epoch milliseconds (CDR times and the ledger's `now_ms`).
pub fn wall_clock_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// What the core needs besides its configuration, prepared before the sockets open.
pub struct Services {
    pub ledger: Arc<Ledger>,
    pub prompts: PromptCache,
    pub router: Router,
    /// BYEs for the legs of calls a previous run left up (sent once the sockets are open).
    pub recovered_byes: Vec<crate::recovery::LegBye>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Services")
            .field("prompts", &self.prompts.len())
            .finish_non_exhaustive()
    }
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let services = crate::startup::prepare(&config).await?;
    serve(config, services).await
}

/// Runs the switch with prepared services until the process ends.
pub async fn serve(config: Config, mut services: Services) -> anyhow::Result<()> {
    let (inbound_sender, mut inbound) = mpsc::channel::<Inbound>(4096);
    let (failure_sender, mut failures) = mpsc::unbounded_channel::<TransactionId>();
    let transport = Transport::bind(
        &config.sip.udp,
        &config.sip.tcp,
        inbound_sender,
        failure_sender,
    )
    .await
    .context("cannot bind SIP listen addresses")?;
    let (core_sender, mut core_messages) = mpsc::channel::<CoreMessage>(4096);
    let (media_sender, mut media_reports) = mpsc::unbounded_channel::<(u64, MediaReport)>();
    if let Some(listen) = config.admin.address()? {
        let token = crate::admin_http::admin_token(&config.admin.token, &config.paths.data_dir)
            .context("cannot read or make the admin API token")?;
        crate::admin_http::start(
            listen,
            token,
            services.ledger.store().clone(),
            config.paths.prompts_dir.clone(),
            core_sender.clone(),
        )
        .await
        .with_context(|| format!("cannot listen for the admin API on {listen}"))?;
    }
    crate::recovery::spawn_cluster_tasks(&config, services.ledger.clone(), core_sender.clone());
    crate::plans::spawn_maintenance(
        services.ledger.clone(),
        Duration::from_millis(config.billing.maintenance_check_ms.max(100)),
    );
    let recovered_byes = std::mem::take(&mut services.recovered_byes);
    let mut core = Core::new(config, transport, core_sender, media_sender, services)?;
    core.prepare_registrations();
    core.send_recovered_byes(&recovered_byes);
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    info!("Talktime ready");
    loop {
        let wake = core.next_timeout();
        tokio::select! {
            received = inbound.recv() => {
                let Some(received) = received else { return Ok(()) };
                core.handle_inbound(received);
            }
            message = core_messages.recv() => {
                if let Some(message) = message {
                    core.handle_core_message(message);
                }
            }
            failed = failures.recv() => {
                if let Some(transaction) = failed {
                    core.delivery_failed(transaction);
                }
            }
            report = media_reports.recv() => {
                if let Some((call, report)) = report {
                    core.handle_media_report(call, report);
                }
            }
            _ = sleep_until(wake) => core.handle_timeout(Instant::now()),
            _ = terminate.recv() => core.request_stop(Instant::now()),
            _ = interrupt.recv() => core.request_stop(Instant::now()),
        }
        core.drain();
        if core.stopped(Instant::now()) {
            info!("stopped: every call ended, billed and recorded");
            return Ok(());
        }
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// What the core remembers of an answered test call.
#[derive(Debug)]
struct ActiveCall {
    media: TestCall,
    /// Where in-dialog requests go (the caller's transport and address).
    peer: Peer,
}

pub(crate) struct Core {
    pub(crate) config: Config,
    transport: Transport,
    pub(crate) layer: TransactionLayer,
    pub(crate) dialogs: DialogTable,
    pub(crate) ports: PortAllocator,
    /// Test calls by dialog.
    calls: HashMap<DialogId, ActiveCall>,
    pub(crate) core_sender: mpsc::Sender<CoreMessage>,
    pub(crate) media_reports: ReportSender,
    /// The threads that carry RTP.
    pub(crate) media_workers: MediaWorkers,
    /// Our address as written in Via, Contact and SDP.
    pub(crate) advertised: IpAddr,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) prompts: PromptCache,
    pub(crate) router: Router,
    pub(crate) carrier_addresses: HashMap<String, SocketAddr>,
    /// Prepaid calls by key, and the indexes that find them.
    pub(crate) sessions: HashMap<u64, Session>,
    pub(crate) by_transaction: HashMap<TransactionId, u64>,
    pub(crate) by_dialog: HashMap<DialogId, u64>,
    pub(crate) call_deadlines: Deadlines<u64, Instant>,
    /// Inputs produced while acting on outputs, fed after the current call's outputs.
    pub(crate) deferred: VecDeque<(u64, Input)>,
    pub(crate) health_checks: HashMap<TransactionId, String>,
    /// Carrier INVITEs we cancelled, so a 2xx that crosses the CANCEL can be hung up.
    pub(crate) abandoned_peers: HashMap<TransactionId, Peer>,
    pub(crate) registrations: crate::registration::Registrations,
    /// Requests moved from UDP to TCP for their size, as first built, for the UDP retry.
    pub(crate) moved_to_tcp: HashMap<TransactionId, (Request, Peer)>,
    /// Ledger tasks in flight (overload control).
    pub(crate) ledger_backlog: Arc<std::sync::atomic::AtomicUsize>,
    /// A graceful stop in progress.
    pub(crate) stopping: Option<crate::shutdown::Stopping>,
    /// Settlements the database refused for now, being retried.
    pub(crate) settlements_waiting: Arc<std::sync::atomic::AtomicUsize>,
    next_key: u64,
}

impl Core {
    fn new(
        config: Config,
        transport: Transport,
        core_sender: mpsc::Sender<CoreMessage>,
        media_reports: ReportSender,
        services: Services,
    ) -> anyhow::Result<Core> {
        let timers = TimerConfig {
            t1: Duration::from_millis(config.sip.t1_ms),
            t2: Duration::from_millis(config.sip.t2_ms),
            t4: Duration::from_millis(config.sip.t4_ms),
            ..TimerConfig::default()
        };
        let ports = PortAllocator::new(config.rtp.port_min, config.rtp.port_max)
            .context("invalid RTP port range")?;
        let carrier_addresses = crate::routing::resolve_carriers(&config.carriers);
        let media_workers = MediaWorkers::start(
            config.rtp.media_threads,
            Duration::from_micros(config.rtp.batch_interval_us),
        )
        .context("cannot start the media threads")?;
        Ok(Core {
            media_workers,
            layer: TransactionLayer::new(timers, Box::new(SystemRandom)),
            dialogs: DialogTable::new(timers),
            ports,
            calls: HashMap::new(),
            advertised: advertised_address(&config),
            config,
            transport,
            core_sender,
            media_reports,
            ledger: services.ledger,
            prompts: services.prompts,
            router: services.router,
            carrier_addresses,
            sessions: HashMap::new(),
            by_transaction: HashMap::new(),
            by_dialog: HashMap::new(),
            call_deadlines: Deadlines::new(),
            deferred: VecDeque::new(),
            health_checks: HashMap::new(),
            abandoned_peers: HashMap::new(),
            registrations: crate::registration::Registrations::default(),
            ledger_backlog: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            moved_to_tcp: HashMap::new(),
            stopping: None,
            settlements_waiting: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            next_key: 1,
        })
    }

    pub(crate) fn next_call_key(&mut self) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        key
    }

    fn next_timeout(&mut self) -> Option<Instant> {
        [
            self.layer.poll_timeout(),
            self.dialogs.poll_timeout(),
            self.next_call_timeout(),
            self.router.poll_timeout(),
            self.registrations.next_timeout(),
            self.stop_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.dialogs.handle_timeout(now);
        self.call_timeouts(now);
        self.ping_carriers(now);
        self.register_due(now);
        self.stop_timers(now);
    }

    fn handle_inbound(&mut self, received: Inbound) {
        let message = match received.payload {
            Payload::Framed(message) => *message,
            Payload::Datagram(bytes) => match Message::parse(&bytes) {
                Ok(message) => message,
                Err(error) => {
                    debug!(source = %received.source, %error, "dropping unparseable datagram");
                    return;
                }
            },
        };
        let source = peer(received.protocol, received.source);
        let message = match message {
            Message::Request(mut request) => {
                stamp_via(&mut request, received.source);
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
        if let Err(error) = self.layer.handle_message(message, source, Instant::now()) {
            debug!(source = %received.source, %error, "message refused by the transaction layer");
        }
    }
}

impl Core {
    fn handle_core_message(&mut self, message: CoreMessage) {
        match message {
            CoreMessage::TestCallFinished(dialog) => self.hang_up(&dialog),
            CoreMessage::Ledger(call, reply) => self.handle_ledger_reply(call, reply),
            CoreMessage::PromptUploaded(name, prompt) => {
                self.prompts.insert(&name, prompt);
            }
            CoreMessage::LedgerDone => {}
            CoreMessage::RecoveredByes(byes) => self.send_recovered_byes(&byes),
        }
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

    /// Sends BYE in the dialog and forgets the call.
    fn hang_up(&mut self, id: &DialogId) {
        let Some(call) = self.calls.remove(id) else {
            return;
        };
        call.media.stop(&mut self.ports);
        let via = self.via_for(call.peer.transport);
        let Some(dialog) = self.dialogs.get_mut(id) else {
            return;
        };
        let bye = dialog.new_request(Method::Bye, &via);
        self.dialogs.remove(id);
        if let Err(error) = self.layer.send_request(bye, call.peer, Instant::now()) {
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
            self.transport.tcp_address().is_some(),
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
            .send_request(request.clone(), peer, Instant::now())?;
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
        match self.layer.send_request(request, peer, Instant::now()) {
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
            SipTransport::Udp => self.transport.udp_addresses().first().map(|a| a.port()),
            _ => self.transport.tcp_address().map(|a| a.port()),
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
            _ => format!("<sip:talktime@{sent_by};transport=tcp>"),
        }
    }

    /// Processes everything the sans-IO layers produced, then sends what they queued.
    /// Runs every state machine until it is quiet and hands the messages to the transport;
    /// never waits (the core loop must not, issue 12).
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
                        None => self.hang_up(&dialog),
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
            let protocol = match transmit.destination.transport {
                SipTransport::Udp => Protocol::Udp,
                _ => Protocol::Tcp,
            };
            self.transport.send(Outbound {
                bytes: transmit.message.to_bytes(),
                destination: transmit.destination.address,
                protocol,
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
                let _ = self.dialogs.route_request(&request);
            }
            Event::CancelReceived { cancel, invite, .. } => {
                let _ = self.layer.answer_cancel(cancel, Instant::now());
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
                if let Some(call) = self.calls.remove(&id) {
                    call.media.stop(&mut self.ports);
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
            Method::Options => {
                let mut response = Response::for_request(&request, 200, "OK");
                response.headers.push("Allow", ALLOW);
                response.headers.push("Accept", "application/sdp");
                response
            }
            Method::Invite if self.is_stopping() => {
                let mut response = Response::for_request(&request, 503, "Service Unavailable");
                response
                    .headers
                    .push("Retry-After", &crate::shutdown::RETRY_AFTER_S.to_string());
                response
            }
            Method::Invite => match self.answer_invite(transaction, &request, source) {
                Ok(()) => return,
                Err(response) => *response,
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
            let Some(access) = self.config.access_number(user).cloned() else {
                return Err(Box::new(Response::for_request(request, 404, "Not Found")));
            };
            let trust = self.config.peer_trust(source.address.ip());
            if !trust.access {
                info!(source = %source.address, "access number call from an untrusted peer refused");
                return Err(Box::new(Response::for_request(request, 403, "Forbidden")));
            }
            return self
                .start_call(transaction, request, source, access, trust)
                .map_err(|error| {
                    info!(%error, "call refused");
                    Box::new(error.response(request))
                });
        }
        let tone = Duration::from_millis(self.config.sip.test_call_ms);
        let started = test_call::start(
            request,
            self.advertised,
            &mut self.ports,
            tone,
            self.core_sender.clone(),
        );
        let (mut media, sdp) = match started {
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
        let dialog = match Dialog::uas(request, &response) {
            Ok(dialog) => dialog,
            Err(error) => {
                media.stop(&mut self.ports);
                debug!(%error, "cannot create dialog");
                return Err(Box::new(Response::for_request(request, 400, "Bad Request")));
            }
        };
        let id = self.dialogs.insert(dialog);
        let now = Instant::now();
        let _ = self
            .dialogs
            .start_2xx_retransmission(&id, response.clone(), source, now);
        self.respond(transaction, response);
        media.begin(id.clone());
        self.calls.insert(
            id,
            ActiveCall {
                media,
                peer: source,
            },
        );
        Ok(())
    }

    pub(crate) fn respond(&mut self, transaction: TransactionId, mut response: Response) {
        response.headers.push("Server", &self.config.sip.user_agent);
        if let Err(error) = self
            .layer
            .send_response(transaction, response, Instant::now())
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

fn peer(protocol: Protocol, address: SocketAddr) -> Peer {
    let transport = match protocol {
        Protocol::Udp => SipTransport::Udp,
        Protocol::Tcp => SipTransport::Tcp,
    };
    Peer { transport, address }
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
