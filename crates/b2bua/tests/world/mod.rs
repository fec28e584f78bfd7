//! A whole call world on a virtual clock, in the style of quinn-proto's `Pair`: the sans-IO
//! [`Switch`], a caller (a SIP phone keying digits at a human pace), carriers that behave as
//! told (answer, ring, refuse, stay silent, challenge, send early media), a ledger that rates
//! with the billing crate's one rating function, and media that reports playbacks and digits.
//! Every message crosses a network with loss, duplication and delay rules. Nothing sleeps:
//! the clock jumps to the next event or the switch's next timeout.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    dead_code,
    unreachable_pub
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use talktime_b2bua::config::Config;
use talktime_b2bua::{
    Input, LedgerReply, LedgerRequest, Listening, MediaCommand, MediaReport, Now, Output, Rated,
    Services, Switch,
};
use talktime_billing::{
    CallFacts, Cdr, Currency, LocalStart, Money, Rate, RatingContext, TariffSettings,
    max_talk_time, rate_call,
};
use talktime_engine::{
    AccountId, AccountInfo, Authorization, CallerIdLookup, CardId, DisconnectCause,
    Input as CallInput, PinLookup, Refusal,
};
use talktime_media::PromptCache;
use talktime_routing::Router;
use talktime_sip::transaction::{Peer, RandomSource, SplitMix64};
use talktime_sip::{Message, Method, Request, Response, Transport};

pub const SWITCH: &str = "127.0.0.1:5060";
pub const CALLER: &str = "127.0.0.1:40000";
pub const PIN: &str = "1234567890";
/// A US number the test tariff rates at $0.60 a minute, per second.
pub const DESTINATION: &str = "12125550100";

pub fn address(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// What a carrier does with an INVITE.
#[derive(Debug, Clone)]
pub enum Carrier {
    /// 100, 180, then 200 after `ring`.
    Answers { ring: Duration },
    /// 100, 183 with SDP at once, 200 after `ring`.
    EarlyMediaThenAnswers { ring: Duration },
    /// 100, then this final status.
    Refuses { status: u16 },
    /// Nothing at all.
    Silent,
    /// 407 with a digest challenge; answers an INVITE that carries credentials.
    Challenges { ring: Duration },
    /// Refuses the first INVITE with `status`, answers later ones.
    RefusesFirst { status: u16, ring: Duration },
}

/// How the network treats a message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Network {
    /// One-way delay.
    pub delay: Duration,
    /// Percent of messages lost (seeded, reproducible).
    pub loss_percent: u64,
    /// Every message delivered twice.
    pub duplicate: bool,
}

/// What happens next in the world.
#[derive(Debug)]
enum Event {
    /// A message arrives at the switch.
    ToSwitch(Input),
    /// A message from the switch arrives at a peer.
    ToPeer(SocketAddr, Vec<u8>),
    /// The caller does something.
    Caller(CallerAction),
    /// A carrier sends a response it scheduled (to the INVITE of `branch`).
    CarrierSends {
        index: usize,
        bytes: Vec<u8>,
        branch: String,
    },
    /// The phone sends a request again unless it was answered (RFC 3261 timers A and E).
    PhoneRetransmit {
        bytes: Vec<u8>,
        cseq: u32,
        interval: Duration,
    },
    /// A carrier sends its 2xx again until the ACK comes (RFC 3261 §13.3.1.4).
    CarrierRetransmits2xx {
        index: usize,
        bytes: Vec<u8>,
        interval: Duration,
    },
}

/// RFC 3261's T1 and T2.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

#[derive(Debug, Clone)]
pub enum CallerAction {
    Key(char),
    HangUp,
    /// A re-INVITE (hold: `a=sendonly`).
    ReInvite {
        hold: bool,
    },
}

/// What the ledger knows: one card.
#[derive(Debug)]
pub struct Ledger {
    pub pin: String,
    pub balance_micros: i64,
    pub rate: Rate,
    /// Reply delay.
    pub delay: Duration,
    pub authorizations: Vec<(String, Authorization)>,
    /// Settled reservations and what each was charged.
    pub settled: Vec<(String, u64, i64, Vec<Cdr>)>,
    pub pin_failures: usize,
    /// Caller IDs registered to the card's account (pinless).
    pub caller_ids: Vec<String>,
}

/// The caller's phone.
#[derive(Debug, Default)]
pub struct Phone {
    /// The number in From (`anonymous` when none).
    pub number: Option<String>,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    cseq: u32,
    pub answered_at: Option<Duration>,
    pub bye_received_at: Option<Duration>,
    pub final_status: Option<u16>,
    pub responses: Vec<(Duration, u16, Method)>,
    /// Keys to press once answered: (after answer, key).
    script: Vec<(Duration, CallerAction)>,
    pub session_expires: Option<u32>,
    /// The port of the `m=audio` line of the switch's 200 to the INVITE.
    pub answer_port: Option<u16>,
    /// CSeqs whose request got a final response (an INVITE: any response).
    answered: std::collections::HashSet<u32>,
}

/// One carrier's view: what it received.
#[derive(Debug)]
pub struct CarrierPeer {
    pub name: String,
    pub address: SocketAddr,
    pub behaviour: Carrier,
    pub invites: Vec<(Duration, Request)>,
    pub answered_at: Option<Duration>,
    pub bye_received_at: Option<Duration>,
    pub cancels: usize,
    pub acks: usize,
    pub registers: Vec<(Duration, Request)>,
    to_tag: String,
    /// The last response sent for each INVITE branch, sent again for a retransmission.
    last_sent: HashMap<String, Vec<u8>>,
}

pub struct World {
    pub switch: Switch,
    start: Instant,
    pub now: Instant,
    epoch_ms0: i64,
    events: BTreeMap<(Instant, u64), Event>,
    sequence: u64,
    pub network: Network,
    random: SplitMix64,
    pub phone: Phone,
    pub carriers: Vec<CarrierPeer>,
    pub ledger: Ledger,
    /// Media commands by call, in order.
    pub media: HashMap<u64, Vec<String>>,
    /// The same with when each was given.
    pub media_times: Vec<(Duration, String)>,
    /// How long every playback takes.
    pub prompt_length: Duration,
    /// RTP ports another program holds: an `Open` naming one fails, as the shell's bind would.
    pub busy_ports: HashSet<u16>,
    /// The ports of every `Open`, in order.
    pub opened_ports: Vec<[u16; 2]>,
    /// Messages the switch sent: (time, destination, first line).
    pub wire: Vec<(Duration, SocketAddr, String)>,
    /// Carrier health changes the switch reported: (carrier, up).
    pub health: Vec<(String, bool)>,
}

/// The switch's configuration for the world: access number 100 (English only, so no
/// language menu), the carriers in order on one route.
pub fn config(carriers: &[(&str, SocketAddr, &str)], extra: &str) -> Config {
    let mut text = String::from(
        "[[access_numbers]]\nnumber = \"100\"\nlanguages = [\"en\"]\ndial_plan = \"world\"\n\n",
    );
    for (name, address, options) in carriers {
        text.push_str(&format!(
            "[[carriers]]\nname = \"{name}\"\nhost = \"{}\"\nport = {}\n\
             options_interval_ms = 0\ninvite_timeout_ms = 2000\n{options}\n\n",
            address.ip(),
            address.port()
        ));
    }
    let names: Vec<String> = carriers
        .iter()
        .enumerate()
        .map(|(index, (name, _, _))| format!("{{ name = \"{name}\", priority = {index} }}"))
        .collect();
    text.push_str(&format!(
        "[[dial_plans]]\nname = \"world\"\n\n[[dial_plans.routes]]\nprefix = \"\"\n\
         mode = \"priority\"\ncarriers = [{}]\n\n{extra}",
        names.join(", ")
    ));
    Config::from_file_text(&text, Path::new("world.toml")).unwrap()
}

impl World {
    /// A world with one card holding `balance_micros` and carriers that behave as given.
    pub fn new(carriers: &[(&str, Carrier)], balance_micros: i64, extra_config: &str) -> World {
        let listed: Vec<(String, SocketAddr)> = carriers
            .iter()
            .enumerate()
            .map(|(index, (name, _))| {
                (
                    (*name).to_owned(),
                    address(&format!("127.0.0.{}:5070", index + 2)),
                )
            })
            .collect();
        let options: Vec<(&str, SocketAddr, &str)> = carriers
            .iter()
            .zip(&listed)
            .map(|((name, behaviour), (_, address))| {
                let options = match behaviour {
                    Carrier::Challenges { .. } => "username = \"talktime\"\npassword = \"secret\"",
                    _ => "",
                };
                (*name, *address, options)
            })
            .collect();
        let config = config(&options, extra_config);
        World::with_config(config, carriers, &listed, balance_micros)
    }

    pub fn with_config(
        config: Config,
        carriers: &[(&str, Carrier)],
        listed: &[(String, SocketAddr)],
        balance_micros: i64,
    ) -> World {
        let start = Instant::now();
        let router = Router::new(
            config.carriers.clone(),
            config.dial_plans.clone(),
            HashMap::new(),
            start,
        )
        .unwrap();
        let services = Services {
            prompts: PromptCache::new(),
            router,
            carrier_addresses: listed.iter().cloned().collect(),
            listening: Listening {
                udp: Some(address(SWITCH)),
                tcp: None,
                tls: None,
            },
            random: Box::new(SplitMix64::new(7)),
        };
        // 2026-12-02 12:00 UTC, a Wednesday.
        let epoch_ms0 = 1_796_212_800_000;
        let now = Now {
            instant: start,
            epoch_ms: epoch_ms0,
        };
        let switch = Switch::new(config, services, now).unwrap();
        let carriers = carriers
            .iter()
            .zip(listed)
            .enumerate()
            .map(|(index, ((name, behaviour), (_, address)))| CarrierPeer {
                name: (*name).to_owned(),
                address: *address,
                behaviour: behaviour.clone(),
                invites: Vec::new(),
                answered_at: None,
                bye_received_at: None,
                cancels: 0,
                acks: 0,
                registers: Vec::new(),
                to_tag: format!("carrier{index}"),
                last_sent: HashMap::new(),
            })
            .collect();
        let mut world = World {
            switch,
            start,
            now: start,
            epoch_ms0,
            events: BTreeMap::new(),
            sequence: 0,
            network: Network::default(),
            random: SplitMix64::new(42),
            phone: Phone::default(),
            carriers,
            ledger: Ledger {
                pin: PIN.into(),
                balance_micros,
                // $0.60 a minute, per second.
                rate: Rate::new("1", Decimal::new(60, 2), 1, 1),
                delay: Duration::from_millis(5),
                authorizations: Vec::new(),
                settled: Vec::new(),
                pin_failures: 0,
                caller_ids: Vec::new(),
            },
            media: HashMap::new(),
            media_times: Vec::new(),
            prompt_length: Duration::from_millis(1500),
            busy_ports: HashSet::new(),
            opened_ports: Vec::new(),
            wire: Vec::new(),
            health: Vec::new(),
        };
        world.carry_out();
        world
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Gives the switch a short prompt under `name` ("en/enter_destination"), so its playing
    /// shows among the media commands.
    pub fn upload_prompt(&mut self, name: &str) {
        let prompt = talktime_media::Prompt::from_samples(vec![0; 160]);
        let input = Input::PromptUploaded {
            name: name.to_owned(),
            prompt,
        };
        let now = self.clock();
        self.switch.handle_input(input, now);
    }

    fn clock(&self) -> Now {
        let since = i64::try_from((self.now - self.start).as_millis()).unwrap();
        Now {
            instant: self.now,
            epoch_ms: self.epoch_ms0 + since,
        }
    }

    fn schedule(&mut self, after: Duration, event: Event) {
        self.sequence += 1;
        self.events.insert((self.now + after, self.sequence), event);
    }

    /// The caller dials access number 100 with a PIN call script: each action `after` the
    /// previous one, starting once the IVR has answered.
    pub fn call(&mut self, script: &[(Duration, CallerAction)]) {
        self.call_with(script, None);
    }

    pub fn call_with(&mut self, script: &[(Duration, CallerAction)], session_expires: Option<u32>) {
        self.phone.call_id = "world-call-1@127.0.0.1".into();
        self.phone.local_tag = "phone".into();
        self.phone.cseq = 1;
        self.phone.script = script.to_vec();
        self.phone.session_expires = session_expires;
        let mut headers = String::new();
        if let Some(seconds) = session_expires {
            headers.push_str(&format!(
                "Supported: timer\r\nSession-Expires: {seconds}\r\n"
            ));
        }
        let invite = sip_request(
            "INVITE",
            "sip:100@127.0.0.1:5060",
            &self.phone,
            1,
            "z9hG4bKinvite1",
            &headers,
            &sdp(40002, "sendrecv"),
        );
        self.phone_sends(invite, 1);
    }

    /// A request from the phone, sent again until answered.
    fn phone_sends(&mut self, bytes: Vec<u8>, cseq: u32) {
        self.send_from_caller(bytes.clone());
        self.schedule(
            T1,
            Event::PhoneRetransmit {
                bytes,
                cseq,
                interval: T1,
            },
        );
    }

    /// Keys typed at a human pace: `gap` between keys.
    pub fn keys(text: &str, first: Duration, gap: Duration) -> Vec<(Duration, CallerAction)> {
        text.chars()
            .enumerate()
            .map(|(index, key)| (if index == 0 { first } else { gap }, CallerAction::Key(key)))
            .collect()
    }

    fn send_from_caller(&mut self, bytes: Vec<u8>) {
        let source = Peer::new(Transport::Udp, address(CALLER));
        self.deliver_to_switch(source, bytes);
    }

    /// Puts a message on the network toward the switch, under the network's rules.
    fn deliver_to_switch(&mut self, source: Peer, bytes: Vec<u8>) {
        if self.lost() {
            return;
        }
        let copies = if self.network.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            let input = Input::Datagram {
                bytes: bytes.clone(),
                source,
            };
            self.schedule(self.network.delay, Event::ToSwitch(input));
        }
    }

    fn lost(&mut self) -> bool {
        self.network.loss_percent > 0 && self.random.next_u64() % 100 < self.network.loss_percent
    }

    /// Runs until nothing is left to happen or `limit` of virtual time has passed.
    pub fn run_for(&mut self, limit: Duration) {
        let end = self.now + limit;
        loop {
            let next_event = self.events.keys().next().map(|(at, _)| *at);
            let next_timer = self.switch.poll_timeout();
            let Some(next) = [next_event, next_timer].into_iter().flatten().min() else {
                return;
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            if next_event == Some(next) {
                let (_, event) = self.events.pop_first().unwrap();
                self.happen(event);
            } else {
                let now = self.clock();
                self.switch.handle_timeout(now);
            }
            self.carry_out();
        }
    }

    fn happen(&mut self, event: Event) {
        match event {
            Event::ToSwitch(input) => {
                let now = self.clock();
                self.switch.handle_input(input, now);
            }
            Event::ToPeer(destination, bytes) => self.peer_receives(destination, &bytes),
            Event::Caller(action) => self.caller_acts(action),
            Event::CarrierSends {
                index,
                bytes,
                branch,
            } => self.carrier_sends(index, bytes, branch),
            Event::PhoneRetransmit {
                bytes,
                cseq,
                interval,
            } => {
                if self.phone.answered.contains(&cseq) || interval > 16 * T1 {
                    return;
                }
                self.send_from_caller(bytes.clone());
                let interval = (interval * 2).min(T2);
                self.schedule(
                    interval,
                    Event::PhoneRetransmit {
                        bytes,
                        cseq,
                        interval,
                    },
                );
            }
            Event::CarrierRetransmits2xx {
                index,
                bytes,
                interval,
            } => {
                if self.carriers[index].answered_at.is_some() || interval > 32 * T1 {
                    return;
                }
                let from = self.carriers[index].address;
                self.deliver_to_switch(Peer::new(Transport::Udp, from), bytes.clone());
                let interval = (interval * 2).min(T2);
                self.schedule(
                    interval,
                    Event::CarrierRetransmits2xx {
                        index,
                        bytes,
                        interval,
                    },
                );
            }
        }
    }

    /// Carries out what the switch asked for.
    fn carry_out(&mut self) {
        while let Some(output) = self.switch.poll_output() {
            match output {
                Output::Transmit {
                    destination, bytes, ..
                } => {
                    let line = String::from_utf8_lossy(&bytes)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    self.wire.push((self.elapsed(), destination.address, line));
                    if self.lost() {
                        continue;
                    }
                    let copies = if self.network.duplicate { 2 } else { 1 };
                    for _ in 0..copies {
                        self.schedule(
                            self.network.delay,
                            Event::ToPeer(destination.address, bytes.clone()),
                        );
                    }
                }
                Output::Media { call, command } => self.media_command(call, command),
                Output::Ledger { call, request } => {
                    let reply = self.answer(request);
                    self.schedule(
                        self.ledger.delay,
                        Event::ToSwitch(Input::Ledger { call, reply }),
                    );
                }
                Output::CarrierHealth { carrier, up } => self.health.push((carrier, up)),
                other => panic!("unexpected output {other:?}"),
            }
        }
    }

    fn media_command(&mut self, call: u64, command: MediaCommand) {
        let name = match &command {
            MediaCommand::Open { .. } => "open",
            MediaCommand::SetLeg(..) => "set_leg",
            MediaCommand::Play { .. } => "play",
            MediaCommand::Stop => "stop",
            MediaCommand::Bridge(true) => "bridge",
            MediaCommand::Bridge(false) => "unbridge",
            MediaCommand::Close => "close",
            _ => "other",
        };
        self.media.entry(call).or_default().push(name.to_owned());
        self.media_times.push((self.elapsed(), name.to_owned()));
        if let MediaCommand::Open { ports, .. } = &command {
            self.opened_ports.push(*ports);
            let busy = ports
                .iter()
                .copied()
                .find(|port| self.busy_ports.contains(port));
            let report = match busy {
                Some(port) => MediaReport::OpenFailed { busy: Some(port) },
                None => MediaReport::Opened,
            };
            self.schedule(
                Duration::ZERO,
                Event::ToSwitch(Input::Media { call, report }),
            );
        }
        if let MediaCommand::Play { playback, .. } = command {
            let report = MediaReport::PlaybackFinished(playback);
            self.schedule(
                self.prompt_length,
                Event::ToSwitch(Input::Media { call, report }),
            );
        }
    }

    /// The ledger's answer, rated with the billing crate.
    fn answer(&mut self, request: LedgerRequest) -> LedgerReply {
        match request {
            LedgerRequest::LookupCallerId { caller_id, .. } => {
                let lookup = if self.ledger.caller_ids.contains(caller_id.expose()) {
                    CallerIdLookup::Found(self.account())
                } else {
                    CallerIdLookup::NotRegistered
                };
                LedgerReply::Input(CallInput::CallerIdLookup(lookup))
            }
            LedgerRequest::LookupPin { pin, .. } => {
                let lookup = if pin.expose() == &self.ledger.pin {
                    PinLookup::Found(self.account())
                } else {
                    PinLookup::Rejected
                };
                LedgerReply::Input(CallInput::PinLookup(lookup))
            }
            LedgerRequest::PinFailed { .. } => {
                self.ledger.pin_failures += 1;
                LedgerReply::Done
            }
            LedgerRequest::Authorize {
                attempt,
                reservation,
                number,
                now_ms,
                ..
            } => match self.rate(&number, now_ms) {
                Some(rated) => {
                    self.ledger
                        .authorizations
                        .push((reservation.clone(), rated.authorization.clone()));
                    LedgerReply::Authorized {
                        attempt,
                        rated: Box::new(rated),
                        reservation,
                    }
                }
                None => LedgerReply::Input(CallInput::AuthorizationRefused {
                    attempt,
                    refusal: Refusal::NoCredit,
                }),
            },
            LedgerRequest::Settle {
                reservation,
                rated,
                answered_ms,
                cdrs,
                ..
            } => {
                let charged = rated.map_or(0, |rated| {
                    rate_call(&rated.context, answered_ms)
                        .total_micros()
                        .unwrap()
                });
                assert!(
                    !self
                        .ledger
                        .settled
                        .iter()
                        .any(|(key, ..)| *key == reservation),
                    "{reservation} settled twice"
                );
                self.ledger.balance_micros -= charged;
                self.ledger
                    .settled
                    .push((reservation, answered_ms, charged, cdrs));
                LedgerReply::Done
            }
            _ => LedgerReply::Done,
        }
    }

    fn account(&self) -> AccountInfo {
        AccountInfo {
            account: AccountId(1),
            card: Some(CardId(1)),
            balance_micros: self.ledger.balance_micros,
            minimum_micros: 0,
            currency: "USD".into(),
            language: None,
            forward_destination: None,
        }
    }

    fn rate(&self, number: &str, now_ms: i64) -> Option<Rated> {
        let settings = TariffSettings {
            currency: Currency::new("USD").unwrap(),
            ..TariffSettings::default()
        };
        let start = LocalStart::from_unix_ms(now_ms, 0)?;
        let context =
            RatingContext::new(&settings, &self.ledger.rate, &CallFacts::new(start)).ok()?;
        let available = Money::from_micros(self.ledger.balance_micros, settings.currency);
        let talk = max_talk_time(&context, available).ok()?;
        let limit_ms = talk.limit_ms;
        if limit_ms == 0 {
            return None;
        }
        Some(Rated {
            authorization: Authorization {
                limit_ms,
                announced_limit_ms: talk.announced_ms,
                reserved_micros: self.ledger.balance_micros,
                limit_cause: DisconnectCause::CreditExhausted,
            },
            context,
            dial_plan: None,
            refuse_loss: false,
            number: number.to_owned(),
            rated_at_ms: now_ms,
            toll_free: false,
            account: AccountId(1),
            card: Some(CardId(1)),
            activation_fee_micros: 0,
            card_first_used: false,
            without_activation: None,
            levels: Vec::new(),
        })
    }

    fn carrier_sends(&mut self, index: usize, bytes: Vec<u8>, branch: String) {
        let from = self.carriers[index].address;
        let is_invite_2xx = bytes.starts_with(b"SIP/2.0 2")
            && Message::parse(&bytes).is_ok_and(|message| match message {
                Message::Response(response) => response
                    .cseq()
                    .is_ok_and(|cseq| cseq.method == Method::Invite),
                Message::Request(_) => false,
            });
        self.carriers[index].last_sent.insert(branch, bytes.clone());
        self.deliver_to_switch(Peer::new(Transport::Udp, from), bytes.clone());
        if is_invite_2xx {
            self.schedule(
                T1,
                Event::CarrierRetransmits2xx {
                    index,
                    bytes,
                    interval: T1,
                },
            );
        }
    }

    fn peer_receives(&mut self, destination: SocketAddr, bytes: &[u8]) {
        let message = Message::parse(bytes).expect("the switch sends parseable SIP");
        if destination == address(CALLER) {
            self.phone_receives(message);
            return;
        }
        let index = self
            .carriers
            .iter()
            .position(|carrier| carrier.address == destination)
            .unwrap_or_else(|| panic!("a message to an unknown peer {destination}"));
        self.carrier_receives(index, message);
    }

    fn phone_receives(&mut self, message: Message) {
        let elapsed = self.elapsed();
        match message {
            Message::Response(response) => {
                let cseq = response.cseq().unwrap();
                let method = cseq.method;
                if method == Method::Invite || response.status >= 200 {
                    self.phone.answered.insert(cseq.sequence);
                }
                self.phone
                    .responses
                    .push((elapsed, response.status, method.clone()));
                if method != Method::Invite || response.status < 200 {
                    return;
                }
                let first = self.phone.final_status.is_none();
                self.phone.final_status.get_or_insert(response.status);
                if (200..300).contains(&response.status) {
                    let to = response.to().unwrap();
                    self.phone.remote_tag = to.tag().map(str::to_owned);
                    let sequence = response.cseq().unwrap().sequence;
                    let ack = sip_request(
                        "ACK",
                        "sip:talktime@127.0.0.1:5060",
                        &self.phone,
                        sequence,
                        &format!("z9hG4bKack{sequence}"),
                        "",
                        b"",
                    );
                    self.send_from_caller(ack);
                    if first {
                        self.phone.answered_at = Some(elapsed);
                        self.phone.answer_port = audio_port(&response.body);
                        let mut at = Duration::ZERO;
                        for (after, action) in std::mem::take(&mut self.phone.script) {
                            at += after;
                            self.schedule(at, Event::Caller(action));
                        }
                    }
                }
            }
            Message::Request(request) => {
                let response = Response::for_request(&request, 200, "OK");
                if request.method == Method::Bye {
                    self.phone.bye_received_at.get_or_insert(elapsed);
                }
                if request.method != Method::Ack {
                    self.send_from_caller(response.to_bytes());
                }
            }
        }
    }

    fn caller_acts(&mut self, action: CallerAction) {
        match action {
            CallerAction::Key(key) => {
                let call = *self.media.keys().min().expect("a call with media");
                let now = self.clock();
                let report = MediaReport::Digit(key);
                self.switch.handle_input(Input::Media { call, report }, now);
            }
            CallerAction::HangUp => {
                if self.phone.bye_received_at.is_some() {
                    return;
                }
                self.phone.cseq += 1;
                let sequence = self.phone.cseq;
                let bye = sip_request(
                    "BYE",
                    "sip:talktime@127.0.0.1:5060",
                    &self.phone,
                    sequence,
                    &format!("z9hG4bKbye{sequence}"),
                    "",
                    b"",
                );
                self.phone_sends(bye, sequence);
            }
            CallerAction::ReInvite { hold } => {
                self.phone.cseq += 1;
                let sequence = self.phone.cseq;
                let direction = if hold { "sendonly" } else { "sendrecv" };
                let reinvite = sip_request(
                    "INVITE",
                    "sip:talktime@127.0.0.1:5060",
                    &self.phone,
                    sequence,
                    &format!("z9hG4bKreinvite{sequence}"),
                    "",
                    &sdp(40002, direction),
                );
                self.phone_sends(reinvite, sequence);
            }
        }
    }

    fn carrier_receives(&mut self, index: usize, message: Message) {
        let elapsed = self.elapsed();
        let Message::Request(request) = message else {
            return;
        };
        let branch = top_branch(&request);
        let reply = |world: &mut World, after: Duration, response: Response| {
            let event = Event::CarrierSends {
                index,
                bytes: response.to_bytes(),
                branch: branch.clone(),
            };
            world.schedule(after, event);
        };
        match request.method {
            Method::Invite => {
                // A retransmission gets the last response again (or nothing yet).
                let repeated = self.carriers[index]
                    .invites
                    .iter()
                    .any(|(_, earlier)| top_branch(earlier) == branch);
                if repeated {
                    if let Some(last) = self.carriers[index].last_sent.get(&branch).cloned() {
                        let from = self.carriers[index].address;
                        self.deliver_to_switch(Peer::new(Transport::Udp, from), last);
                    }
                    return;
                }
                self.carriers[index]
                    .invites
                    .push((elapsed, request.clone()));
                let count = self.carriers[index].invites.len();
                let tag = self.carriers[index].to_tag.clone();
                let behaviour = self.carriers[index].behaviour.clone();
                let trying = Response::for_request(&request, 100, "Trying");
                match behaviour {
                    Carrier::Silent => {}
                    Carrier::Answers { ring } => {
                        reply(self, Duration::ZERO, trying);
                        reply(self, Duration::ZERO, ringing(&request, &tag));
                        reply(self, ring, answer(&request, &tag, 40010 + index as u16));
                    }
                    Carrier::EarlyMediaThenAnswers { ring } => {
                        reply(self, Duration::ZERO, trying);
                        let mut progress = Response::for_request(&request, 183, "Session Progress");
                        progress.set_to_tag(&tag);
                        progress.headers.push("Content-Type", "application/sdp");
                        progress.body = sdp(40010 + index as u16, "sendrecv");
                        reply(self, Duration::ZERO, progress);
                        reply(self, ring, answer(&request, &tag, 40010 + index as u16));
                    }
                    Carrier::Refuses { status } => {
                        reply(self, Duration::ZERO, trying);
                        let mut refusal = Response::for_request(&request, status, "Refused");
                        refusal.set_to_tag(&tag);
                        reply(self, Duration::from_millis(50), refusal);
                    }
                    Carrier::RefusesFirst { status, ring } => {
                        reply(self, Duration::ZERO, trying);
                        if count == 1 {
                            let mut refusal = Response::for_request(&request, status, "Refused");
                            refusal.set_to_tag(&tag);
                            reply(self, Duration::from_millis(50), refusal);
                        } else {
                            reply(self, ring, answer(&request, &tag, 40010 + index as u16));
                        }
                    }
                    Carrier::Challenges { ring } => {
                        reply(self, Duration::ZERO, trying);
                        if request.headers.get("Proxy-Authorization").is_some() {
                            reply(self, ring, answer(&request, &tag, 40010 + index as u16));
                        } else {
                            let mut challenge = Response::for_request(
                                &request,
                                407,
                                "Proxy Authentication Required",
                            );
                            challenge.set_to_tag(&tag);
                            challenge.headers.push(
                                "Proxy-Authenticate",
                                "Digest realm=\"carrier\", nonce=\"abc123\", qop=\"auth\", algorithm=MD5",
                            );
                            reply(self, Duration::from_millis(20), challenge);
                        }
                    }
                }
            }
            Method::Ack => {
                self.carriers[index].acks += 1;
                if self.carriers[index].answered_at.is_none() {
                    // The ACK of a 2xx: the carrier's call is up.
                    let answered = self.carriers[index].invites.last().map(|_| elapsed);
                    self.carriers[index].answered_at = answered;
                }
            }
            Method::Bye => {
                self.carriers[index].bye_received_at.get_or_insert(elapsed);
                reply(
                    self,
                    Duration::ZERO,
                    Response::for_request(&request, 200, "OK"),
                );
            }
            Method::Cancel => {
                self.carriers[index].cancels += 1;
                reply(
                    self,
                    Duration::ZERO,
                    Response::for_request(&request, 200, "OK"),
                );
            }
            Method::Register => {
                self.carriers[index]
                    .registers
                    .push((elapsed, request.clone()));
                let mut ok = Response::for_request(&request, 200, "OK");
                ok.headers.push("Expires", "60");
                reply(self, Duration::ZERO, ok);
            }
            _ => reply(
                self,
                Duration::ZERO,
                Response::for_request(&request, 200, "OK"),
            ),
        }
    }

    /// The one settled attempt: (answered ms, charged micros).
    pub fn only_settlement(&self) -> (u64, i64) {
        assert_eq!(self.ledger.settled.len(), 1, "{:?}", self.ledger.settled);
        let (_, answered_ms, charged, _) = &self.ledger.settled[0];
        (*answered_ms, *charged)
    }

    /// The CDR rows of every settled attempt, in order.
    pub fn cdrs(&self) -> Vec<Cdr> {
        self.ledger
            .settled
            .iter()
            .flat_map(|(_, _, _, cdrs)| cdrs.clone())
            .collect()
    }

    /// Nothing of any call is left in the switch.
    /// No call up, and once every SIP timer has run out, every table of the switch empty.
    pub fn assert_idle(&mut self) {
        assert_eq!(self.switch.calls_up(), 0, "a call is still up");
        self.run_for(Duration::from_secs(60));
        let left: Vec<_> = self
            .switch
            .table_sizes()
            .into_iter()
            .filter(|(_, size)| *size > 0)
            .collect();
        assert!(left.is_empty(), "tables not emptied: {left:?}");
    }
}

fn top_branch(request: &Request) -> String {
    request
        .via()
        .ok()
        .and_then(|vias| vias.first().and_then(|via| via.branch().map(str::to_owned)))
        .unwrap_or_default()
}

fn ringing(request: &Request, tag: &str) -> Response {
    let mut ringing = Response::for_request(request, 180, "Ringing");
    ringing.set_to_tag(tag);
    ringing
}

fn answer(request: &Request, tag: &str, port: u16) -> Response {
    let mut ok = Response::for_request(request, 200, "OK");
    ok.set_to_tag(tag);
    ok.headers.push("Contact", "<sip:carrier@127.0.0.1>");
    ok.headers.push("Content-Type", "application/sdp");
    ok.body = sdp(port, "sendrecv");
    ok
}

/// The port of an SDP body's first `m=audio` line.
fn audio_port(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().find(|line| line.starts_with("m=audio "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn sdp(port: u16, direction: &str) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na={direction}\r\n"
    )
    .into_bytes()
}

/// A request from the caller's phone in its one dialog.
fn sip_request(
    method: &str,
    uri: &str,
    phone: &Phone,
    sequence: u32,
    branch: &str,
    headers: &str,
    body: &[u8],
) -> Vec<u8> {
    let to_tag = phone
        .remote_tag
        .as_ref()
        .map(|tag| format!(";tag={tag}"))
        .unwrap_or_default();
    let content_type = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".into()
    };
    let mut text = format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CALLER};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{}@127.0.0.1>;tag={}\r\n\
         To: <sip:100@127.0.0.1>{to_tag}\r\n\
         Call-ID: {}\r\n\
         CSeq: {sequence} {method}\r\n\
         Contact: <sip:phone@{CALLER}>\r\n\
         {headers}{content_type}Content-Length: {}\r\n\r\n",
        phone.number.as_deref().unwrap_or("anonymous"),
        phone.local_tag,
        phone.call_id,
        body.len()
    )
    .into_bytes();
    text.extend_from_slice(body);
    text
}
