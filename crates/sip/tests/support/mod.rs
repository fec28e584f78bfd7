//! Test harness in the spirit of quinn-proto's `Pair`: two endpoints (a UAC and a UAS),
//! each a `TransactionLayer` plus a `DialogTable`, joined by an in-memory link with a
//! virtual clock that always jumps to the earliest pending deadline. The link can drop,
//! duplicate or delay chosen messages in each direction. Every message crosses the link
//! as bytes (`to_bytes` then `Message::parse`), so what the layers build must parse.
#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use talktime_sip::dialog::{Dialog, DialogEvent, DialogTable, Routing};
use talktime_sip::transaction::{
    Event, Peer, SplitMix64, TimeoutKind, TimerConfig, TransactionId, TransactionLayer,
};
use talktime_sip::{Message, Method, Request, Response, Transport, Uri};

pub const UAC_ADDRESS: &str = "192.0.2.1:5060";
pub const UAS_ADDRESS: &str = "192.0.2.2:5060";

pub fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value)
}

pub fn millis(value: u64) -> Duration {
    Duration::from_millis(value)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ToUas,
    ToUac,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Drop,
    Duplicate,
    Delay(Duration),
}

type Matcher = Box<dyn Fn(&Message) -> bool>;

struct Rule {
    direction: Direction,
    /// 1-based position among messages sent in `direction`, or any position.
    nth: Option<usize>,
    matcher: Option<Matcher>,
    action: Action,
    /// How many more messages it applies to (`usize::MAX` for all).
    remaining: usize,
}

impl Rule {
    fn applies(&self, direction: Direction, index: usize, message: &Message) -> bool {
        self.remaining > 0
            && self.direction == direction
            && self.nth.is_none_or(|nth| nth == index)
            && self.matcher.as_ref().is_none_or(|matches| matches(message))
    }
}

struct InFlight {
    at: Instant,
    order: u64,
    direction: Direction,
    bytes: Vec<u8>,
}

/// A record of something a side saw, stamped with the virtual time since the start.
#[derive(Debug, Clone)]
pub struct Stamped<T> {
    pub at: Duration,
    pub value: T,
}

/// One endpoint: the layers under test plus a scripted TU.
pub struct Side {
    pub name: &'static str,
    pub layer: TransactionLayer,
    pub dialogs: DialogTable,
    pub address: SocketAddr,
    pub transport: Transport,
    /// Every message this side put on the wire (including ones the link then dropped).
    pub sent: Vec<Stamped<Message>>,
    /// Every message delivered to this side.
    pub received: Vec<Stamped<Message>>,
    pub events: Vec<Stamped<Event>>,
    pub dialog_events: Vec<Stamped<DialogEvent>>,
    /// UAC TU: build the dialog and ACK every 2xx to an INVITE (§13.2.2.4).
    pub auto_ack: bool,
    /// UAS TU: answer `CancelReceived` with 200 + 487.
    pub auto_answer_cancel: bool,
    /// UAS TU: answer in-dialog requests (200, or the table's 481/500), ending the dialog
    /// on BYE.
    pub auto_answer_in_dialog: bool,
    /// UAS TU: send BYE when the 2xx was never ACKed (§13.3.1.4).
    pub bye_on_ack_timeout: bool,
    /// Our To tag per server transaction, so 1xx and 2xx carry the same one.
    tags: HashMap<TransactionId, String>,
    /// Requests we sent, by client transaction (needed after the transaction is gone).
    pub requests: HashMap<TransactionId, Request>,
    /// Requests received, by server transaction.
    pub incoming: HashMap<TransactionId, Request>,
}

impl Side {
    fn new(
        name: &'static str,
        address: &str,
        transport: Transport,
        config: TimerConfig,
        seed: u64,
    ) -> Side {
        Side {
            name,
            layer: TransactionLayer::new(config, Box::new(SplitMix64::new(seed))),
            dialogs: DialogTable::new(config),
            address: address.parse().unwrap(),
            transport,
            sent: Vec::new(),
            received: Vec::new(),
            events: Vec::new(),
            dialog_events: Vec::new(),
            auto_ack: true,
            auto_answer_cancel: true,
            auto_answer_in_dialog: true,
            bye_on_ack_timeout: true,
            tags: HashMap::new(),
            requests: HashMap::new(),
            incoming: HashMap::new(),
        }
    }

    pub fn peer(&self) -> Peer {
        Peer::new(self.transport, self.address)
    }

    /// Our top Via without branch, as the TU writes it.
    pub fn via(&self) -> String {
        format!("SIP/2.0/{} {}", self.transport, self.address)
    }

    pub fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.name, self.address)
    }

    /// Times at which this side sent a message matching `matches`.
    pub fn sent_times(&self, matches: impl Fn(&Message) -> bool) -> Vec<Duration> {
        self.sent
            .iter()
            .filter(|sent| matches(&sent.value))
            .map(|sent| sent.at)
            .collect()
    }

    pub fn sent_count(&self, matches: impl Fn(&Message) -> bool) -> usize {
        self.sent.iter().filter(|sent| matches(&sent.value)).count()
    }

    pub fn received_count(&self, matches: impl Fn(&Message) -> bool) -> usize {
        self.received
            .iter()
            .filter(|received| matches(&received.value))
            .count()
    }

    /// Statuses delivered to the TU for a client transaction, in order.
    pub fn responses(&self, transaction: TransactionId) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|event| match &event.value {
                Event::Response {
                    transaction: id,
                    response,
                } if *id == transaction => Some(response.status),
                _ => None,
            })
            .collect()
    }

    pub fn timeouts(&self) -> Vec<(TransactionId, TimeoutKind, Duration)> {
        self.events
            .iter()
            .filter_map(|event| match &event.value {
                Event::Timeout { transaction, kind } => Some((*transaction, *kind, event.at)),
                _ => None,
            })
            .collect()
    }

    pub fn terminated_at(&self, transaction: TransactionId) -> Option<Duration> {
        self.events.iter().find_map(|event| match &event.value {
            Event::Terminated { transaction: id } if *id == transaction => Some(event.at),
            _ => None,
        })
    }

    /// The server transactions opened by requests of `method`, in arrival order.
    pub fn new_requests(&self, method: Method) -> Vec<TransactionId> {
        self.events
            .iter()
            .filter_map(|event| match &event.value {
                Event::Request {
                    transaction,
                    request,
                    ..
                } if request.method == method => Some(*transaction),
                _ => None,
            })
            .collect()
    }

    pub fn acks(&self) -> Vec<Stamped<Request>> {
        self.events
            .iter()
            .filter_map(|event| match &event.value {
                Event::Ack { request, .. } => Some(Stamped {
                    at: event.at,
                    value: request.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    pub fn cancels_received(&self) -> Vec<(TransactionId, TransactionId)> {
        self.events
            .iter()
            .filter_map(|event| match &event.value {
                Event::CancelReceived { cancel, invite, .. } => Some((*cancel, *invite)),
                _ => None,
            })
            .collect()
    }

    /// Builds our response to a server transaction (with our To tag and Contact).
    pub fn response_for(&mut self, transaction: TransactionId, status: u16) -> Response {
        let request = self.incoming[&transaction].clone();
        let mut response = Response::for_request(&request, status, reason(status));
        if status > 100 {
            let tag = match self.tags.get(&transaction) {
                Some(tag) => tag.clone(),
                None => {
                    let tag = self.layer.new_tag();
                    self.tags.insert(transaction, tag.clone());
                    tag
                }
            };
            response.set_to_tag(&tag);
        }
        if (101..300).contains(&status) {
            response.headers.push("Contact", &self.contact());
        }
        response
    }

    /// The TU answers a server transaction; a 2xx to INVITE also creates the UAS dialog
    /// and starts the core's 2xx retransmission.
    pub fn respond(&mut self, transaction: TransactionId, status: u16, now: Instant) -> Response {
        let response = self.response_for(transaction, status);
        self.layer
            .send_response(transaction, response.clone(), now)
            .unwrap();
        let request = self.incoming[&transaction].clone();
        if request.method == Method::Invite && (101..300).contains(&status) {
            let mut dialog = Dialog::uas(&request, &response).unwrap();
            if status >= 200 {
                dialog.confirm();
            }
            let id = self.dialogs.insert(dialog);
            if status >= 200 {
                let destination = self.incoming_peer(transaction);
                self.dialogs
                    .start_2xx_retransmission(&id, response.clone(), destination, now)
                    .unwrap();
            }
        }
        response
    }

    fn incoming_peer(&self, transaction: TransactionId) -> Peer {
        self.events
            .iter()
            .find_map(|event| match &event.value {
                Event::Request {
                    transaction: id,
                    source,
                    ..
                } if *id == transaction => Some(*source),
                _ => None,
            })
            .unwrap()
    }

    /// A request outside any dialog, from this side to `to` (Via without branch).
    pub fn new_request(&mut self, method: Method, to: &Side, cseq: u32, call_id: &str) -> Request {
        let uri: Uri = format!("sip:{}@{}", to.name, to.address).parse().unwrap();
        let mut request = Request::new(method.clone(), uri);
        let from_tag = format!("{}-tag", self.name);
        request.headers.push("Via", &self.via());
        request.headers.push("Max-Forwards", "70");
        request.headers.push(
            "From",
            &format!("<sip:{}@example.com>;tag={from_tag}", self.name),
        );
        request
            .headers
            .push("To", &format!("<sip:{}@example.com>", to.name));
        request.headers.push("Call-ID", call_id);
        request.headers.push("CSeq", &format!("{cseq} {method}"));
        request.headers.push("Contact", &self.contact());
        request
    }

    pub fn send(&mut self, request: Request, destination: Peer, now: Instant) -> TransactionId {
        let id = self.layer.send_request(request, destination, now).unwrap();
        let sent = self.layer.request(id).unwrap().clone();
        self.requests.insert(id, sent);
        id
    }

    /// Drains the layer's events (and the dialog table's), playing the scripted TU.
    fn pump(&mut self, now: Instant, start: Instant) {
        let at = now - start;
        loop {
            let mut progressed = false;
            while let Some(event) = self.layer.poll_event() {
                progressed = true;
                self.react(&event, now);
                self.events.push(Stamped { at, value: event });
            }
            while let Some(event) = self.dialogs.poll_event() {
                progressed = true;
                self.react_dialog(&event, now);
                self.dialog_events.push(Stamped { at, value: event });
            }
            if !progressed {
                break;
            }
        }
    }

    fn react(&mut self, event: &Event, now: Instant) {
        match event {
            Event::Request {
                transaction,
                request,
                ..
            } => {
                self.incoming.insert(*transaction, request.clone());
                if self.auto_answer_in_dialog && has_to_tag(request) {
                    self.answer_in_dialog(*transaction, request, now);
                }
            }
            Event::Response {
                transaction,
                response,
            } if self.auto_ack && response.is_success() => {
                let Some(invite) = self.requests.get(transaction).cloned() else {
                    return;
                };
                if invite.method != Method::Invite {
                    return;
                }
                let Ok(Some(id)) = self.dialogs.handle_invite_response(&invite, response) else {
                    return;
                };
                let via = self.via();
                let ack = self.dialogs.get(&id).unwrap().ack(response, &via).unwrap();
                let destination = self.requests_peer(*transaction);
                self.layer
                    .send_stateless(Message::Request(ack), destination)
                    .unwrap();
            }
            Event::Response {
                transaction,
                response,
            } if response.status > 100 && response.status < 200 => {
                if let Some(invite) = self.requests.get(transaction).cloned()
                    && invite.method == Method::Invite
                {
                    let _ = self.dialogs.handle_invite_response(&invite, response);
                }
            }
            Event::Ack { request, .. } => {
                let _ = self.dialogs.route_request(request);
            }
            Event::CancelReceived {
                cancel, request, ..
            } => {
                self.incoming.insert(*cancel, request.clone());
                if self.auto_answer_cancel {
                    self.layer.answer_cancel(*cancel, now).unwrap();
                }
            }
            _ => {}
        }
    }

    fn requests_peer(&self, _transaction: TransactionId) -> Peer {
        // Both sides of a Pair talk only to each other.
        Peer::new(self.transport, other_address(self.address))
    }

    fn answer_in_dialog(&mut self, transaction: TransactionId, request: &Request, now: Instant) {
        match self.dialogs.route_request(request) {
            Routing::InDialog(id) => {
                let response = Response::for_request(request, 200, "OK");
                self.layer
                    .send_response(transaction, response, now)
                    .unwrap();
                if request.method == Method::Bye {
                    self.dialogs.remove(&id);
                }
            }
            Routing::Reject(response) => {
                self.layer
                    .send_response(transaction, response, now)
                    .unwrap();
            }
            Routing::OutOfDialog | Routing::Drop => {}
        }
    }

    fn react_dialog(&mut self, event: &DialogEvent, now: Instant) {
        if let DialogEvent::AckTimeout { dialog } = event
            && self.bye_on_ack_timeout
        {
            let via = self.via();
            let Some(bye) = self
                .dialogs
                .get_mut(dialog)
                .map(|dialog| dialog.new_request(Method::Bye, &via))
            else {
                return;
            };
            self.dialogs.remove(dialog);
            let destination = Peer::new(self.transport, other_address(self.address));
            self.send(bye, destination, now);
        }
    }
}

fn other_address(address: SocketAddr) -> SocketAddr {
    let uac: SocketAddr = UAC_ADDRESS.parse().unwrap();
    if address == uac {
        UAS_ADDRESS.parse().unwrap()
    } else {
        uac
    }
}

fn has_to_tag(request: &Request) -> bool {
    request.to().is_ok_and(|to| to.tag().is_some())
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        404 => "Not Found",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        487 => "Request Terminated",
        _ => "Whatever",
    }
}

/// The two endpoints, the link and the virtual clock.
pub struct Pair {
    pub start: Instant,
    pub now: Instant,
    pub uac: Side,
    pub uas: Side,
    /// One-way delay of every message.
    pub latency: Duration,
    rules: Vec<Rule>,
    counts: HashMap<Direction, usize>,
    in_flight: Vec<InFlight>,
    order: u64,
}

impl Pair {
    pub fn new(transport: Transport) -> Pair {
        Pair::with_config(transport, TimerConfig::default())
    }

    pub fn udp() -> Pair {
        Pair::new(Transport::Udp)
    }

    pub fn tcp() -> Pair {
        Pair::new(Transport::Tcp)
    }

    pub fn with_config(transport: Transport, config: TimerConfig) -> Pair {
        let start = Instant::now();
        Pair {
            start,
            now: start,
            uac: Side::new("uac", UAC_ADDRESS, transport, config, 1),
            uas: Side::new("uas", UAS_ADDRESS, transport, config, 2),
            latency: Duration::ZERO,
            rules: Vec::new(),
            counts: HashMap::new(),
            in_flight: Vec::new(),
            order: 0,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn rule(
        &mut self,
        direction: Direction,
        nth: Option<usize>,
        matcher: Option<Matcher>,
        action: Action,
        remaining: usize,
    ) {
        self.rules.push(Rule {
            direction,
            nth,
            matcher,
            action,
            remaining,
        });
    }

    /// Drops the `n`th message (1-based) sent in `direction`.
    pub fn drop_nth(&mut self, direction: Direction, n: usize) {
        self.rule(direction, Some(n), None, Action::Drop, 1);
    }

    /// Drops the first `count` messages in `direction` that match.
    pub fn drop_matching(
        &mut self,
        direction: Direction,
        count: usize,
        matcher: impl Fn(&Message) -> bool + 'static,
    ) {
        self.rule(
            direction,
            None,
            Some(Box::new(matcher)),
            Action::Drop,
            count,
        );
    }

    /// Drops every message in `direction` that matches.
    pub fn drop_all(&mut self, direction: Direction, matcher: impl Fn(&Message) -> bool + 'static) {
        self.drop_matching(direction, usize::MAX, matcher);
    }

    /// Delivers the first matching message in `direction` twice.
    pub fn duplicate_first(
        &mut self,
        direction: Direction,
        matcher: impl Fn(&Message) -> bool + 'static,
    ) {
        self.rule(
            direction,
            None,
            Some(Box::new(matcher)),
            Action::Duplicate,
            1,
        );
    }

    /// Holds the first matching message in `direction` back by `by`.
    pub fn delay_first(
        &mut self,
        direction: Direction,
        by: Duration,
        matcher: impl Fn(&Message) -> bool + 'static,
    ) {
        self.rule(
            direction,
            None,
            Some(Box::new(matcher)),
            Action::Delay(by),
            1,
        );
    }

    /// Sends a new INVITE from the UAC.
    pub fn invite(&mut self) -> TransactionId {
        self.uac_request(Method::Invite, 1)
    }

    /// Sends a new out-of-dialog request of `method` from the UAC.
    pub fn uac_request(&mut self, method: Method, cseq: u32) -> TransactionId {
        let request = self
            .uac
            .new_request(method, &self.uas, cseq, "call-1@192.0.2.1");
        let destination = self.uas.peer();
        let id = self.uac.send(request, destination, self.now);
        self.drive();
        id
    }

    /// The UAS's server transaction for the first request of `method`.
    pub fn uas_transaction(&self, method: Method) -> TransactionId {
        *self
            .uas
            .new_requests(method)
            .first()
            .expect("the UAS saw no such request")
    }

    /// The UAS TU answers a transaction now.
    pub fn uas_respond(&mut self, transaction: TransactionId, status: u16) -> Response {
        let response = self.uas.respond(transaction, status, self.now);
        self.drive();
        response
    }

    /// The UAC TU cancels an INVITE client transaction now.
    pub fn uac_cancel(&mut self, invite: TransactionId) -> TransactionId {
        let cancel = self.uac.layer.send_cancel(invite, self.now).unwrap();
        self.drive();
        cancel
    }

    /// Exchanges everything due at the current instant until nothing moves.
    pub fn drive(&mut self) {
        for _ in 0..10_000 {
            self.uac.pump(self.now, self.start);
            self.uas.pump(self.now, self.start);
            let mut moved = self.collect_transmits();
            moved |= self.deliver_due();
            if !moved {
                return;
            }
        }
        panic!("the pair did not settle");
    }

    /// The earliest deadline of either side or of the link.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        [
            self.uac.layer.poll_timeout(),
            self.uas.layer.poll_timeout(),
            self.uac.dialogs.poll_timeout(),
            self.uas.dialogs.poll_timeout(),
            self.in_flight.iter().map(|m| m.at).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Jumps the clock to the earliest deadline and processes it. False when idle.
    pub fn step(&mut self) -> bool {
        let Some(next) = self.next_deadline() else {
            return false;
        };
        self.advance_to(next.max(self.now));
        true
    }

    fn advance_to(&mut self, at: Instant) {
        self.now = at;
        self.uac.layer.handle_timeout(at);
        self.uas.layer.handle_timeout(at);
        self.uac.dialogs.handle_timeout(at);
        self.uas.dialogs.handle_timeout(at);
        self.drive();
    }

    /// Processes every deadline up to `at` (since the start), then sets the clock there.
    pub fn run_until(&mut self, at: Duration) {
        let target = self.start + at;
        while let Some(next) = self.next_deadline() {
            if next > target {
                break;
            }
            self.advance_to(next.max(self.now));
        }
        if target > self.now {
            self.advance_to(target);
        }
    }

    /// Runs until nothing is pending anywhere.
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the pair never went idle");
    }

    fn collect_transmits(&mut self) -> bool {
        let mut moved = false;
        loop {
            let next = self
                .uac
                .layer
                .poll_transmit()
                .or_else(|| self.uac.dialogs.poll_transmit())
                .map(|t| (Direction::ToUas, t));
            let next = next.or_else(|| {
                self.uas
                    .layer
                    .poll_transmit()
                    .or_else(|| self.uas.dialogs.poll_transmit())
                    .map(|t| (Direction::ToUac, t))
            });
            let Some((direction, transmit)) = next else {
                return moved;
            };
            moved = true;
            let (sender, receiver) = match direction {
                Direction::ToUas => (&mut self.uac, &self.uas),
                Direction::ToUac => (&mut self.uas, &self.uac),
            };
            assert_eq!(
                transmit.destination.address, receiver.address,
                "{} sent to the wrong address",
                sender.name
            );
            let at = self.now - self.start;
            sender.sent.push(Stamped {
                at,
                value: transmit.message.clone(),
            });
            self.transmit(direction, transmit.message);
        }
    }

    fn transmit(&mut self, direction: Direction, message: Message) {
        let count = self.counts.entry(direction).or_insert(0);
        *count += 1;
        let index = *count;
        let mut copies = 1;
        let mut delay = self.latency;
        for rule in &mut self.rules {
            if rule.applies(direction, index, &message) {
                rule.remaining -= 1;
                match rule.action {
                    Action::Drop => copies = 0,
                    Action::Duplicate => copies = 2,
                    Action::Delay(by) => delay += by,
                }
                break;
            }
        }
        let bytes = message.to_bytes();
        for _ in 0..copies {
            self.order += 1;
            self.in_flight.push(InFlight {
                at: self.now + delay,
                order: self.order,
                direction,
                bytes: bytes.clone(),
            });
        }
    }

    fn deliver_due(&mut self) -> bool {
        let mut due: Vec<InFlight> = Vec::new();
        let mut index = 0;
        while index < self.in_flight.len() {
            if self.in_flight[index].at <= self.now {
                due.push(self.in_flight.remove(index));
            } else {
                index += 1;
            }
        }
        due.sort_by_key(|m| (m.at, m.order));
        let moved = !due.is_empty();
        for message in due {
            let parsed = Message::parse(&message.bytes).unwrap_or_else(|error| {
                panic!(
                    "unparsable message on the link ({error}):\n{}",
                    String::from_utf8_lossy(&message.bytes)
                )
            });
            let (receiver, source) = match message.direction {
                Direction::ToUas => (&mut self.uas, self.uac.peer()),
                Direction::ToUac => (&mut self.uac, self.uas.peer()),
            };
            receiver.received.push(Stamped {
                at: self.now - self.start,
                value: parsed.clone(),
            });
            receiver
                .layer
                .handle_message(parsed, source, self.now)
                .unwrap();
        }
        moved
    }
}

/// Message predicates for rules and log queries.
pub fn is_request(method: Method) -> impl Fn(&Message) -> bool {
    move |message| matches!(message, Message::Request(r) if r.method == method)
}

pub fn is_response(status: u16) -> impl Fn(&Message) -> bool {
    move |message| matches!(message, Message::Response(r) if r.status == status)
}

/// A response with `status` to a request of `method` (CSeq method).
pub fn is_response_to(status: u16, method: Method) -> impl Fn(&Message) -> bool {
    move |message| {
        matches!(message, Message::Response(r)
            if r.status == status && r.cseq().is_ok_and(|c| c.method == method))
    }
}

pub fn seconds(times: &[Duration]) -> Vec<f64> {
    times.iter().map(|t| t.as_secs_f64()).collect()
}
