//! The transaction layer: owns every transaction, matches messages to them, and queues
//! transmits, events and timers for the shell.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use super::TransactionError;
use super::build;
use super::client::{InviteClient, InviteClientState, NonInviteClient, NonInviteClientState};
use super::effects::{Armed, Effects, TimeoutKind};
use super::key::{ClientKey, ServerKey};
use super::random::{RandomSource, new_branch, new_tag};
use super::server::{
    Absorbed, InviteServer, InviteServerState, NonInviteServer, NonInviteServerState,
};
use super::timer::{Durations, Timer, TimerConfig};
use crate::{Message, Method, Request, Response, Transport};

/// The other end of a transaction: where requests go, or where a request came from (and
/// where its responses go back to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub address: SocketAddr,
}

impl Peer {
    pub fn new(transport: Transport, address: SocketAddr) -> Peer {
        Peer { transport, address }
    }

    /// §17: everything but UDP is reliable, so retransmit timers are off and absorb
    /// timers are zero.
    pub fn is_reliable(&self) -> bool {
        !matches!(self.transport, Transport::Udp)
    }
}

/// Identifies one transaction for the lifetime of the layer (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(u64);

impl TransactionId {
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// A message the shell must put on the wire.
#[derive(Debug, Clone)]
pub struct Transmit {
    pub destination: Peer,
    pub message: Message,
    /// The transaction that sent it; `None` for stateless sends (ACK for 2xx, 2xx
    /// retransmissions, automatic 481s). The shell reports send failures with this id.
    pub transaction: Option<TransactionId>,
}

/// Something the TU (dialog layer, call engine) must hear about.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new request opened a server transaction; answer it with `send_response`.
    Request {
        transaction: TransactionId,
        request: Request,
        source: Peer,
    },
    /// A response for one of our client transactions (each distinct provisional once,
    /// the final response, and in the INVITE Accepted state every further 2xx).
    Response {
        transaction: TransactionId,
        response: Response,
    },
    /// An ACK that belongs to no transaction: the ACK for a 2xx (§17.2.3, RFC 6026).
    /// `transaction` is set when it matched an INVITE server transaction in Accepted.
    Ack {
        request: Request,
        source: Peer,
        transaction: Option<TransactionId>,
    },
    /// A CANCEL matched an INVITE server transaction that has not answered yet. The TU
    /// answers 200 to `cancel` and 487 to `invite` (or calls `answer_cancel`).
    CancelReceived {
        cancel: TransactionId,
        invite: TransactionId,
        request: Request,
    },
    /// Timer B/F (no response), H (no ACK) or the §9.1 CANCEL guard expired.
    Timeout {
        transaction: TransactionId,
        kind: TimeoutKind,
    },
    /// The shell reported that a message of this transaction could not be sent.
    TransportError { transaction: TransactionId },
    /// The transaction is gone; its id will not appear again.
    Terminated { transaction: TransactionId },
}

/// The state of one live transaction, for the TU and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    InviteClient(InviteClientState),
    NonInviteClient(NonInviteClientState),
    InviteServer(InviteServerState),
    NonInviteServer(NonInviteServerState),
}

#[derive(Debug)]
enum Kind {
    InviteClient(InviteClient),
    NonInviteClient(NonInviteClient),
    InviteServer(InviteServer),
    NonInviteServer(NonInviteServer),
}

impl Kind {
    fn timers(&mut self) -> &mut Armed {
        match self {
            Kind::InviteClient(t) => &mut t.timers,
            Kind::NonInviteClient(t) => &mut t.timers,
            Kind::InviteServer(t) => &mut t.timers,
            Kind::NonInviteServer(t) => &mut t.timers,
        }
    }

    fn on_timer(&mut self, timer: Timer, now: Instant, fx: &mut Effects) {
        match self {
            Kind::InviteClient(t) => t.on_timer(timer, now, fx),
            Kind::NonInviteClient(t) => t.on_timer(timer, now, fx),
            Kind::InviteServer(t) => t.on_timer(timer, now, fx),
            Kind::NonInviteServer(t) => t.on_timer(timer, fx),
        }
    }

    fn terminate(&mut self, fx: &mut Effects) {
        match self {
            Kind::InviteClient(t) => t.terminate(fx),
            Kind::NonInviteClient(t) => t.terminate(fx),
            Kind::InviteServer(t) => t.terminate(fx),
            Kind::NonInviteServer(t) => t.terminate(fx),
        }
    }

    fn state(&self) -> State {
        match self {
            Kind::InviteClient(t) => State::InviteClient(t.state),
            Kind::NonInviteClient(t) => State::NonInviteClient(t.state),
            Kind::InviteServer(t) => State::InviteServer(t.state),
            Kind::NonInviteServer(t) => State::NonInviteServer(t.state),
        }
    }
}

/// Our CANCEL for an INVITE client transaction.
#[derive(Debug)]
enum OurCancel {
    /// §9.1: no provisional response yet, so the CANCEL waits for one.
    Waiting {
        id: TransactionId,
        request: Box<Request>,
    },
    Sent(TransactionId),
}

#[derive(Debug)]
struct Entry {
    peer: Peer,
    kind: Kind,
    client_key: Option<ClientKey>,
    server_key: Option<ServerKey>,
    /// INVITE client transactions: the CANCEL we sent or will send.
    our_cancel: Option<OurCancel>,
    /// CANCEL server transactions: the INVITE server transaction it cancels.
    cancels: Option<TransactionId>,
}

/// All transactions of one SIP endpoint. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TimerConfig,
    random: Box<dyn RandomSource>,
    next_id: u64,
    /// Ids go up by this, from the offset `set_id_space` gave (1 and 0 alone).
    id_step: u64,
    /// Boxed: the table grows by doubling, and a slot is a pointer, not a whole transaction.
    entries: HashMap<TransactionId, Box<Entry>>,
    clients: HashMap<ClientKey, TransactionId>,
    servers: HashMap<ServerKey, TransactionId>,
    timers: BinaryHeap<Reverse<(Instant, TransactionId, Timer)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stray_responses: u64,
    /// Server transactions kept at most; a new request beyond gets a stateless 503.
    max_server_transactions: usize,
    refused_when_full: u64,
    retransmissions: u64,
}

/// What a full layer tells a new request's sender to wait, in seconds.
const FULL_RETRY_AFTER_S: &str = "5";

impl TransactionLayer {
    /// `random` generates branches and tags: seed it from the OS in production and with a
    /// constant in tests.
    pub fn new(config: TimerConfig, random: Box<dyn RandomSource>) -> TransactionLayer {
        TransactionLayer {
            config,
            random,
            next_id: 0,
            id_step: 1,
            entries: HashMap::new(),
            clients: HashMap::new(),
            servers: HashMap::new(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stray_responses: 0,
            max_server_transactions: usize::MAX,
            refused_when_full: 0,
            retransmissions: 0,
        }
    }

    /// Bounds the server transactions kept at once (memory under a flood of new requests):
    /// beyond it a new request is answered 503 with Retry-After and not kept, while
    /// retransmissions of kept ones are still absorbed.
    pub fn set_max_server_transactions(&mut self, max: usize) {
        self.max_server_transactions = max;
    }

    /// Ids `offset + step × n` (n from 1), so that several layers of one process (one a
    /// core thread) never hand out the same id and an id names its layer (`id % step`).
    /// Call before the first transaction.
    pub fn set_id_space(&mut self, offset: u64, step: u64) {
        self.id_step = step.max(1);
        self.next_id = offset % self.id_step;
    }

    /// New requests answered 503 because the layer was full.
    pub fn refused_when_full(&self) -> u64 {
        self.refused_when_full
    }

    pub fn config(&self) -> &TimerConfig {
        &self.config
    }

    /// A fresh branch with the magic cookie.
    pub fn new_branch(&mut self) -> String {
        new_branch(self.random.as_mut())
    }

    /// A fresh From/To tag.
    pub fn new_tag(&mut self) -> String {
        new_tag(self.random.as_mut())
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Responses that matched no client transaction and were dropped (RFC 6026 §8.9).
    pub fn stray_responses(&self) -> u64 {
        self.stray_responses
    }

    pub fn state(&self, transaction: TransactionId) -> Option<State> {
        self.entries.get(&transaction).map(|e| e.kind.state())
    }

    /// The request that opened a transaction (ours for clients, the peer's for servers).
    pub fn request(&self, transaction: TransactionId) -> Option<&Request> {
        self.entries.get(&transaction).map(|e| match &e.kind {
            Kind::InviteClient(t) => &t.request,
            Kind::NonInviteClient(t) => &t.request,
            Kind::InviteServer(t) => &t.request,
            Kind::NonInviteServer(t) => &t.request,
        })
    }

    /// Starts a client transaction. The request must carry a top Via with our sent-by; a
    /// branch is generated when it has none (or one without the magic cookie).
    pub fn send_request(
        &mut self,
        mut request: Request,
        destination: Peer,
        now: Instant,
    ) -> Result<TransactionId, TransactionError> {
        if request.method == Method::Ack {
            return Err(TransactionError::AckIsNotATransaction);
        }
        request
            .cseq()
            .map_err(|_| TransactionError::MissingHeader("CSeq"))?;
        let branch = self.new_branch();
        build::ensure_branch(&mut request, &branch)?;
        let key = ClientKey::for_request(&request)?;
        let id = self.allocate();
        self.start_client(id, key, request, destination, now);
        Ok(id)
    }

    /// Sends a response on a server transaction (to the address the request came from).
    pub fn send_response(
        &mut self,
        transaction: TransactionId,
        response: Response,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let entry = self
            .entries
            .get_mut(&transaction)
            .ok_or(TransactionError::UnknownTransaction(transaction))?;
        let mut fx = Effects::default();
        match &mut entry.kind {
            Kind::InviteServer(server) => server.send_response(response, now, &mut fx)?,
            Kind::NonInviteServer(server) => server.send_response(response, now, &mut fx)?,
            _ => return Err(TransactionError::NotAServerTransaction(transaction)),
        }
        self.apply(transaction, fx);
        Ok(())
    }

    /// Sends a message outside any transaction: the ACK for a 2xx, a 2xx retransmitted by
    /// the UAS core. An ACK without a branch gets a fresh one (it is a new transaction
    /// in the §17 sense, even though nothing tracks it).
    pub fn send_stateless(
        &mut self,
        mut message: Message,
        destination: Peer,
    ) -> Result<(), TransactionError> {
        if let Message::Request(request) = &mut message {
            let branch = self.new_branch();
            build::ensure_branch(request, &branch)?;
        }
        self.transmits.push_back(Transmit {
            destination,
            message,
            transaction: None,
        });
        Ok(())
    }

    /// §9.1: cancels a pending INVITE client transaction. The CANCEL runs as its own
    /// non-INVITE client transaction, whose id is returned; if no provisional response has
    /// arrived yet it is held back until one does (and dropped if a final response comes
    /// first, with a `Terminated` event for its id). Calling it twice returns the same id.
    pub fn send_cancel(
        &mut self,
        invite: TransactionId,
        now: Instant,
    ) -> Result<TransactionId, TransactionError> {
        let entry = self
            .entries
            .get(&invite)
            .ok_or(TransactionError::UnknownTransaction(invite))?;
        let Kind::InviteClient(client) = &entry.kind else {
            return Err(TransactionError::NotCancellable(invite));
        };
        match &entry.our_cancel {
            Some(OurCancel::Waiting { id, .. }) | Some(OurCancel::Sent(id)) => return Ok(*id),
            None => {}
        }
        let state = client.state;
        let request = build::cancel_for(&client.request);
        let id = self.allocate();
        match state {
            InviteClientState::Calling => {
                if let Some(entry) = self.entries.get_mut(&invite) {
                    entry.our_cancel = Some(OurCancel::Waiting {
                        id,
                        request: Box::new(request),
                    });
                }
            }
            InviteClientState::Proceeding => self.start_cancel(invite, id, request, now),
            _ => return Err(TransactionError::NotCancellable(invite)),
        }
        Ok(id)
    }

    /// Convenience for the TU after `Event::CancelReceived`: 200 to the CANCEL and, if the
    /// INVITE is still unanswered, 487 to the INVITE. Both carry the To tag of any
    /// provisional response already sent, or one new tag (§9.2 wants them equal).
    pub fn answer_cancel(
        &mut self,
        cancel: TransactionId,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let entry = self
            .entries
            .get(&cancel)
            .ok_or(TransactionError::UnknownTransaction(cancel))?;
        let Kind::NonInviteServer(server) = &entry.kind else {
            return Err(TransactionError::NotAServerTransaction(cancel));
        };
        let mut ok = Response::for_request(&server.request, 200, "OK");
        let pending =
            entry
                .cancels
                .and_then(|invite| match self.entries.get(&invite).map(Box::as_ref) {
                    Some(Entry {
                        kind: Kind::InviteServer(server),
                        ..
                    }) if server.state == InviteServerState::Proceeding => {
                        let tag = server
                            .last_response
                            .as_ref()
                            .and_then(|r| r.to().ok())
                            .and_then(|to| to.tag().map(str::to_owned));
                        let terminated =
                            Response::for_request(&server.request, 487, "Request Terminated");
                        Some((invite, terminated, tag))
                    }
                    _ => None,
                });
        let Some((invite, mut terminated, tag)) = pending else {
            return self.send_response(cancel, ok, now);
        };
        let tag = match tag {
            Some(tag) => tag,
            None => self.new_tag(),
        };
        ok.set_to_tag(&tag);
        terminated.set_to_tag(&tag);
        self.send_response(cancel, ok, now)?;
        self.send_response(invite, terminated, now)
    }

    /// The shell could not deliver a message of `transaction` (§17.1.4, §17.2.4).
    pub fn handle_transport_error(&mut self, transaction: TransactionId) {
        let Some(entry) = self.entries.get_mut(&transaction) else {
            return;
        };
        let mut fx = Effects::default();
        entry.kind.terminate(&mut fx);
        self.events.push_back(Event::TransportError { transaction });
        self.apply(transaction, fx);
    }

    /// A message from the network. Errors mean it could not be matched or used (missing
    /// Via, CSeq, ...); the shell logs them and may answer 400 itself.
    pub fn handle_message(
        &mut self,
        message: Message,
        source: Peer,
        now: Instant,
    ) -> Result<(), TransactionError> {
        match message {
            Message::Response(response) => self.handle_response(response, now),
            Message::Request(request) => self.handle_request(request, source, now),
        }
    }

    /// Fires every timer due at or before `now`, earliest first.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            if !entry.kind.timers().take_if_due(timer, at) {
                continue;
            }
            let mut fx = Effects::default();
            entry.kind.on_timer(timer, now, &mut fx);
            if matches!(timer, Timer::A | Timer::E | Timer::G) {
                self.retransmissions += fx.send.len() as u64;
            }
            self.apply(id, fx);
        }
    }

    /// Requests and responses sent again by a timer (UDP loss seen from our side).
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant at which `handle_timeout` has work to do.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id, timer))) = self.timers.peek().copied() {
            let live = self
                .entries
                .get_mut(&id)
                .is_some_and(|entry| entry.kind.timers().deadline(timer) == Some(at));
            if live {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    fn allocate(&mut self) -> TransactionId {
        self.next_id += self.id_step;
        TransactionId(self.next_id)
    }

    fn start_client(
        &mut self,
        id: TransactionId,
        key: ClientKey,
        request: Request,
        destination: Peer,
        now: Instant,
    ) {
        let durations = Durations::new(self.config, destination.is_reliable());
        let mut fx = Effects::default();
        let kind = if request.method == Method::Invite {
            Kind::InviteClient(InviteClient::start(request, durations, now, &mut fx))
        } else {
            Kind::NonInviteClient(NonInviteClient::start(request, durations, now, &mut fx))
        };
        self.clients.insert(key.clone(), id);
        self.entries.insert(
            id,
            Box::new(Entry {
                peer: destination,
                kind,
                client_key: Some(key),
                server_key: None,
                our_cancel: None,
                cancels: None,
            }),
        );
        self.apply(id, fx);
    }

    fn start_cancel(
        &mut self,
        invite: TransactionId,
        cancel: TransactionId,
        request: Request,
        now: Instant,
    ) {
        let Some(entry) = self.entries.get_mut(&invite) else {
            return;
        };
        let peer = entry.peer;
        entry.our_cancel = Some(OurCancel::Sent(cancel));
        let mut fx = Effects::default();
        if let Kind::InviteClient(client) = &mut entry.kind {
            client.cancel_sent(now, &mut fx);
        }
        self.apply(invite, fx);
        match ClientKey::for_request(&request) {
            Ok(key) => self.start_client(cancel, key, request, peer, now),
            // The INVITE had a branch, so its CANCEL does too; report rather than panic.
            Err(_) => self.events.push_back(Event::Terminated {
                transaction: cancel,
            }),
        }
    }

    fn handle_response(
        &mut self,
        response: Response,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let key = ClientKey::for_response(&response)?;
        let Some(&id) = self.clients.get(&key) else {
            self.stray_responses += 1;
            return Ok(());
        };
        let Some(entry) = self.entries.get_mut(&id) else {
            return Ok(());
        };
        let mut fx = Effects::default();
        match &mut entry.kind {
            Kind::InviteClient(client) => client.on_response(response, now, &mut fx),
            Kind::NonInviteClient(client) => client.on_response(response, now, &mut fx),
            _ => {}
        }
        self.apply(id, fx);
        self.release_waiting_cancel(id, now);
        Ok(())
    }

    /// Sends a held-back CANCEL once its INVITE is Proceeding; drops it if the INVITE
    /// reached a final state first.
    fn release_waiting_cancel(&mut self, invite: TransactionId, now: Instant) {
        let state = match self.entries.get(&invite).map(Box::as_ref) {
            Some(Entry {
                kind: Kind::InviteClient(client),
                our_cancel: Some(OurCancel::Waiting { .. }),
                ..
            }) => client.state,
            _ => return,
        };
        if state == InviteClientState::Calling {
            return;
        }
        let Some(entry) = self.entries.get_mut(&invite) else {
            return;
        };
        let Some(OurCancel::Waiting { id, request }) = entry.our_cancel.take() else {
            return;
        };
        if state == InviteClientState::Proceeding {
            self.start_cancel(invite, id, *request, now);
        } else {
            self.events.push_back(Event::Terminated { transaction: id });
        }
    }

    fn handle_request(
        &mut self,
        request: Request,
        source: Peer,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let key = ServerKey::for_request(&request)?;
        if request.method == Method::Ack {
            return self.handle_ack(key, request, source, now);
        }
        if let Some(&id) = self.servers.get(&key) {
            let mut fx = Effects::default();
            if let Some(entry) = self.entries.get_mut(&id) {
                match &mut entry.kind {
                    Kind::InviteServer(server) => {
                        server.on_request(&request, now, &mut fx);
                    }
                    Kind::NonInviteServer(server) => server.on_request(&mut fx),
                    _ => {}
                }
            }
            self.apply(id, fx);
            return Ok(());
        }
        if self.servers.len() >= self.max_server_transactions {
            self.refused_when_full += 1;
            let mut response = Response::for_request(&request, 503, "Service Unavailable");
            response.headers.push("Retry-After", FULL_RETRY_AFTER_S);
            self.transmits.push_back(Transmit {
                destination: source,
                message: Message::Response(response),
                transaction: None,
            });
            return Err(TransactionError::Full);
        }
        let durations = Durations::new(self.config, source.is_reliable());
        let id = self.allocate();
        let mut fx = Effects::default();
        let kind = if request.method == Method::Invite {
            Kind::InviteServer(InviteServer::start(
                request.clone(),
                durations,
                now,
                &mut fx,
            ))
        } else {
            Kind::NonInviteServer(NonInviteServer::start(request.clone(), durations))
        };
        self.servers.insert(key.clone(), id);
        self.entries.insert(
            id,
            Box::new(Entry {
                peer: source,
                kind,
                client_key: None,
                server_key: Some(key.clone()),
                our_cancel: None,
                cancels: None,
            }),
        );
        self.apply(id, fx);
        if request.method == Method::Cancel {
            self.route_cancel(id, &key, request, now)
        } else {
            self.events.push_back(Event::Request {
                transaction: id,
                request,
                source,
            });
            Ok(())
        }
    }

    /// §9.2: a CANCEL is its own transaction; find the INVITE it targets.
    fn route_cancel(
        &mut self,
        cancel: TransactionId,
        key: &ServerKey,
        request: Request,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let invite = self.servers.get(&key.with_method(Method::Invite)).copied();
        let pending = invite.and_then(|invite| match self.entries.get(&invite).map(|e| &e.kind) {
            Some(Kind::InviteServer(server)) => Some((invite, server.state)),
            _ => None,
        });
        match pending {
            None => {
                let response =
                    Response::for_request(&request, 481, "Call/Transaction Does Not Exist");
                self.send_response(cancel, response, now)
            }
            Some((invite, InviteServerState::Proceeding)) => {
                if let Some(entry) = self.entries.get_mut(&cancel) {
                    entry.cancels = Some(invite);
                }
                self.events.push_back(Event::CancelReceived {
                    cancel,
                    invite,
                    request,
                });
                Ok(())
            }
            // The INVITE is already answered: the CANCEL matched, so it still gets 200.
            Some(_) => {
                let response = Response::for_request(&request, 200, "OK");
                self.send_response(cancel, response, now)
            }
        }
    }

    fn handle_ack(
        &mut self,
        key: ServerKey,
        request: Request,
        source: Peer,
        now: Instant,
    ) -> Result<(), TransactionError> {
        let id = match self.servers.get(&key) {
            Some(id) => Some(*id),
            // RFC 2543 ACK: the INVITE had no To tag; the ACK must carry the one we sent.
            None => key
                .without_to_tag()
                .and_then(|k| self.servers.get(&k).copied())
                .filter(|id| self.ack_tag_matches(*id, &request)),
        };
        let mut absorbed = None;
        let mut fx = Effects::default();
        if let Some(id) = id
            && let Some(Entry {
                kind: Kind::InviteServer(server),
                ..
            }) = self.entries.get_mut(&id).map(Box::as_mut)
        {
            absorbed = Some(server.on_request(&request, now, &mut fx));
        }
        if let Some(id) = id {
            self.apply(id, fx);
        }
        match absorbed {
            Some(Absorbed::Handled) => {}
            Some(Absorbed::PassAckToUser) => self.events.push_back(Event::Ack {
                request,
                source,
                transaction: id,
            }),
            None => self.events.push_back(Event::Ack {
                request,
                source,
                transaction: None,
            }),
        }
        Ok(())
    }

    /// Whether an ACK's To tag is the tag of the last response of INVITE server `id`.
    fn ack_tag_matches(&self, id: TransactionId, ack: &Request) -> bool {
        let Some(Entry {
            kind: Kind::InviteServer(server),
            ..
        }) = self.entries.get(&id).map(Box::as_ref)
        else {
            return false;
        };
        let ours = server
            .last_response
            .as_ref()
            .and_then(|response| response.to().ok())
            .and_then(|to| to.tag().map(str::to_owned));
        let theirs = ack.to().ok().and_then(|to| to.tag().map(str::to_owned));
        ours.is_some() && ours == theirs
    }

    /// Turns one transaction's effects into transmits, events and heap entries, and
    /// forgets the transaction once it terminated.
    fn apply(&mut self, id: TransactionId, fx: Effects) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let peer = entry.peer;
        for message in fx.send {
            self.transmits.push_back(Transmit {
                destination: peer,
                message,
                transaction: Some(id),
            });
        }
        for response in fx.deliver {
            self.events.push_back(Event::Response {
                transaction: id,
                response,
            });
        }
        for (timer, at) in fx.arm {
            self.timers.push(Reverse((at, id, timer)));
        }
        if let Some(kind) = fx.timeout {
            self.events.push_back(Event::Timeout {
                transaction: id,
                kind,
            });
        }
        if fx.terminated {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: TransactionId) {
        let Some(entry) = self.entries.remove(&id) else {
            return;
        };
        if let Some(key) = entry.client_key
            && self.clients.get(&key) == Some(&id)
        {
            self.clients.remove(&key);
        }
        if let Some(key) = entry.server_key
            && self.servers.get(&key) == Some(&id)
        {
            self.servers.remove(&key);
        }
        if let Some(OurCancel::Waiting { id: cancel, .. }) = entry.our_cancel {
            self.events.push_back(Event::Terminated {
                transaction: cancel,
            });
        }
        self.events.push_back(Event::Terminated { transaction: id });
    }
}
