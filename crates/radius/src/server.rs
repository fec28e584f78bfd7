//! The RADIUS server's state, without sockets or clock: which clients are known, which
//! requests are being answered, and the answers kept for duplicates (RFC 5080 §2.2.2). The
//! shell reads a datagram, feeds it here, gets a [`Request`] (or an answer to send again, or a
//! reason it was dropped), asks the ledger, and turns the [`Reply`] into octets with
//! [`Server::respond`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Deserialize;
use talktime_pii::Pii;

use crate::crypto;
use crate::dictionary::*;
use crate::packet::{Code, Packet};

/// How long an answer is kept to be sent again for a duplicate.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(30);
/// Requests being answered at once, and answers kept, at most (memory stays bounded).
pub const MAX_PENDING: usize = 10_000;
pub const MAX_KEPT_ANSWERS: usize = 50_000;

/// How a gateway writes h323 values: `h323-credit-time=120` (Cisco) or `120` (Quintum,
/// AudioCodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    #[default]
    Cisco,
    Bare,
}

/// One `[[radius.clients]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// An address or a prefix (`192.0.2.0/24`).
    pub address: String,
    pub secret: String,
    #[serde(default)]
    pub style: Style,
    /// A name for CDRs and logs; empty uses the address.
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("radius client address {0:?} is not an address or prefix")]
    Address(String),
    #[error("radius client {0}: the secret must not be empty")]
    EmptySecret(String),
}

#[derive(Debug, Clone)]
struct Client {
    network: IpAddr,
    prefix: u8,
    secret: Vec<u8>,
    style: Style,
    name: String,
}

impl Client {
    fn from_config(config: &ClientConfig) -> Result<Client, ConfigError> {
        let bad = || ConfigError::Address(config.address.clone());
        let (address, prefix) = match config.address.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (config.address.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let full = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(full);
        if prefix > full {
            return Err(bad());
        }
        if config.secret.is_empty() {
            return Err(ConfigError::EmptySecret(config.address.clone()));
        }
        let name = if config.name.trim().is_empty() {
            config.address.trim().to_owned()
        } else {
            config.name.trim().to_owned()
        };
        Ok(Client {
            network,
            prefix,
            secret: config.secret.as_bytes().to_vec(),
            style: config.style,
            name,
        })
    }

    fn matches(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// A request being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle(u64);

/// Who the caller says they are.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user_name: Pii<String>,
    /// User-Password in clear (PAP), when sent.
    pub password: Option<Pii<String>>,
    /// Calling-Station-Id: the caller's number.
    pub calling: Option<Pii<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountingStatus {
    Start,
    Interim,
    Stop,
    /// Accounting-On/Off: the gateway (re)started or stops; its sessions are over.
    On,
    Off,
    Other(u32),
}

/// One accounting record.
#[derive(Debug, Clone)]
pub struct AccountingRecord {
    pub status: AccountingStatus,
    /// h323-conf-id, else Acct-Session-Id: the key of the call's reservation.
    pub session: Option<String>,
    pub session_time_s: Option<u32>,
    pub disconnect_cause: Option<String>,
    pub destination: Option<Pii<String>>,
}

/// What a request asks.
#[derive(Debug, Clone)]
pub enum Action {
    /// Is this card (or caller) good, and what is its balance?
    Authenticate(Credentials),
    /// May this card call this number, and for how long? `session` keys the reservation.
    Authorize {
        credentials: Credentials,
        destination: Pii<String>,
        session: String,
    },
    Accounting(AccountingRecord),
    /// Status-Server: answered with an Access-Accept.
    Status,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub handle: Handle,
    /// The client's name.
    pub nas: String,
    pub action: Action,
}

/// The answer the shell decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Accept {
        /// Decimal text in the account's currency.
        credit_amount: Option<String>,
        currency: Option<String>,
        credit_time_s: Option<u64>,
        language: Option<String>,
    },
    Reject(ReturnCode),
    AccountingResponse,
}

/// Why a datagram got no request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    UnknownClient,
    Malformed,
    BadAuthenticator,
    MissingMessageAuthenticator,
    /// A duplicate of a request still being answered.
    InProgress,
    Unsupported,
    Overloaded,
}

/// What a datagram became.
#[derive(Debug, Clone)]
pub enum Received {
    Request(Request),
    /// A duplicate of an answered request: these octets again, to this address.
    Again(Vec<u8>, SocketAddr),
    Dropped(Dropped),
}

/// Datagrams dropped, by reason, and duplicates answered again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub unknown_client: u64,
    pub malformed: u64,
    pub bad_authenticator: u64,
    pub missing_message_authenticator: u64,
    pub in_progress: u64,
    pub unsupported: u64,
    pub overloaded: u64,
    pub duplicates_answered: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct RequestKey {
    source: SocketAddr,
    identifier: u8,
    authenticator: [u8; 16],
}

#[derive(Debug)]
struct Pending {
    key: RequestKey,
    code: Code,
    client: usize,
}

/// The server. See the module documentation.
#[derive(Debug)]
pub struct Server {
    clients: Vec<Client>,
    pending: HashMap<Handle, Pending>,
    in_progress: HashSet<RequestKey>,
    answers: HashMap<RequestKey, Vec<u8>>,
    answered_at: VecDeque<(Instant, RequestKey)>,
    next_handle: u64,
    counters: Counters,
}

impl Server {
    pub fn new(clients: &[ClientConfig]) -> Result<Server, ConfigError> {
        Ok(Server {
            clients: clients
                .iter()
                .map(Client::from_config)
                .collect::<Result<_, _>>()?,
            pending: HashMap::new(),
            in_progress: HashSet::new(),
            answers: HashMap::new(),
            answered_at: VecDeque::new(),
            next_handle: 0,
            counters: Counters::default(),
        })
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// One datagram from `source`.
    pub fn handle_datagram(&mut self, bytes: &[u8], source: SocketAddr, now: Instant) -> Received {
        self.forget_old_answers(now);
        match self.read(bytes, source) {
            Ok(received) => received,
            Err(reason) => {
                self.count(reason);
                Received::Dropped(reason)
            }
        }
    }

    fn count(&mut self, reason: Dropped) {
        let counter = match reason {
            Dropped::UnknownClient => &mut self.counters.unknown_client,
            Dropped::Malformed => &mut self.counters.malformed,
            Dropped::BadAuthenticator => &mut self.counters.bad_authenticator,
            Dropped::MissingMessageAuthenticator => {
                &mut self.counters.missing_message_authenticator
            }
            Dropped::InProgress => &mut self.counters.in_progress,
            Dropped::Unsupported => &mut self.counters.unsupported,
            Dropped::Overloaded => &mut self.counters.overloaded,
        };
        *counter += 1;
    }

    fn read(&mut self, bytes: &[u8], source: SocketAddr) -> Result<Received, Dropped> {
        // The most specific client entry wins.
        let client = self
            .clients
            .iter()
            .enumerate()
            .filter(|(_, client)| client.matches(source.ip()))
            .max_by_key(|(_, client)| client.prefix)
            .map(|(index, _)| index)
            .ok_or(Dropped::UnknownClient)?;
        let packet = Packet::decode(bytes).map_err(|_| Dropped::Malformed)?;
        let key = RequestKey {
            source,
            identifier: packet.identifier,
            authenticator: packet.authenticator,
        };
        if let Some(answer) = self.answers.get(&key) {
            self.counters.duplicates_answered += 1;
            return Ok(Received::Again(answer.clone(), source));
        }
        if self.in_progress.contains(&key) {
            return Err(Dropped::InProgress);
        }
        let secret = &self.clients[client].secret;
        match packet.code {
            Code::AccessRequest | Code::StatusServer => {
                if packet.get(crypto::MESSAGE_AUTHENTICATOR).is_none() {
                    return Err(Dropped::MissingMessageAuthenticator);
                }
                if !crypto::message_authenticator_valid(bytes, secret) {
                    return Err(Dropped::BadAuthenticator);
                }
            }
            Code::AccountingRequest => {
                if !crypto::accounting_request_valid(bytes, secret) {
                    return Err(Dropped::BadAuthenticator);
                }
            }
            _ => return Err(Dropped::Unsupported),
        }
        if self.pending.len() >= MAX_PENDING {
            return Err(Dropped::Overloaded);
        }
        let action = self.action(&packet, client)?;
        self.next_handle += 1;
        let handle = Handle(self.next_handle);
        self.in_progress.insert(key);
        self.pending.insert(
            handle,
            Pending {
                key,
                code: packet.code,
                client,
            },
        );
        Ok(Received::Request(Request {
            handle,
            nas: self.clients[client].name.clone(),
            action,
        }))
    }

    fn action(&self, packet: &Packet, client: usize) -> Result<Action, Dropped> {
        let style = self.clients[client].style;
        match packet.code {
            Code::StatusServer => Ok(Action::Status),
            Code::AccountingRequest => Ok(Action::Accounting(accounting(packet, style))),
            _ => {
                let user_name = packet.text(USER_NAME).ok_or(Dropped::Malformed)?;
                let password = match packet.get(USER_PASSWORD) {
                    Some(hidden) => {
                        let secret = &self.clients[client].secret;
                        let clear = crypto::reveal_password(hidden, secret, &packet.authenticator)
                            .ok_or(Dropped::Malformed)?;
                        Some(Pii::new(String::from_utf8_lossy(&clear).into_owned()))
                    }
                    None => None,
                };
                let credentials = Credentials {
                    user_name: Pii::new(user_name),
                    password,
                    calling: packet.text(CALLING_STATION_ID).map(Pii::new),
                };
                match packet.text(CALLED_STATION_ID) {
                    Some(destination) => Ok(Action::Authorize {
                        credentials,
                        destination: Pii::new(destination),
                        session: session_of(packet, style).ok_or(Dropped::Malformed)?,
                    }),
                    None => Ok(Action::Authenticate(credentials)),
                }
            }
        }
    }

    /// The octets answering `handle` and where they go; `None` for an unknown handle.
    pub fn respond(
        &mut self,
        handle: Handle,
        reply: Reply,
        now: Instant,
    ) -> Option<(Vec<u8>, SocketAddr)> {
        let pending = self.pending.remove(&handle)?;
        self.in_progress.remove(&pending.key);
        let client = &self.clients[pending.client];
        let mut response = Packet {
            code: Code::AccessAccept,
            identifier: pending.key.identifier,
            authenticator: [0; 16],
            attributes: Vec::new(),
        };
        match (&reply, pending.code) {
            (Reply::AccountingResponse, _) | (_, Code::AccountingRequest) => {
                response.code = Code::AccountingResponse;
            }
            (Reply::Accept { .. }, _) => fill_accept(&mut response, &reply, client.style),
            (Reply::Reject(code), _) => {
                response.code = Code::AccessReject;
                push_h323(
                    &mut response,
                    client.style,
                    H323_RETURN_CODE,
                    &code.value().to_string(),
                );
            }
        }
        let octets = crypto::sign_response(response, &pending.key.authenticator, &client.secret);
        self.keep_answer(pending.key, octets.clone(), now);
        Some((octets, pending.key.source))
    }

    /// Gives up on a request the shell will not answer (it is dropped; the gateway retries).
    pub fn abandon(&mut self, handle: Handle) {
        if let Some(pending) = self.pending.remove(&handle) {
            self.in_progress.remove(&pending.key);
        }
    }

    fn keep_answer(&mut self, key: RequestKey, octets: Vec<u8>, now: Instant) {
        if self.answers.len() >= MAX_KEPT_ANSWERS
            && let Some((_, oldest)) = self.answered_at.pop_front()
        {
            self.answers.remove(&oldest);
        }
        self.answers.insert(key, octets);
        self.answered_at.push_back((now, key));
    }

    fn forget_old_answers(&mut self, now: Instant) {
        while let Some((at, key)) = self.answered_at.front().copied() {
            if now.saturating_duration_since(at) < DUPLICATE_WINDOW {
                break;
            }
            self.answered_at.pop_front();
            self.answers.remove(&key);
        }
    }
}

/// A Cisco h323 value without its `name=` prefix (bare gateways send the value alone).
fn h323_value(packet: &Packet, kind: u8) -> Option<String> {
    let (_, value) = packet
        .vendor_attributes(CISCO)
        .into_iter()
        .find(|(vendor_kind, _)| *vendor_kind == kind)?;
    let text = String::from_utf8_lossy(value).trim().to_owned();
    let name = cisco_name(kind);
    let value = match text.split_once('=') {
        Some((prefix, value)) if prefix.trim() == name => value.trim().to_owned(),
        _ => text,
    };
    (!value.is_empty()).then_some(value)
}

/// The call's key: h323-conf-id, else Acct-Session-Id.
fn session_of(packet: &Packet, _style: Style) -> Option<String> {
    h323_value(packet, H323_CONF_ID).or_else(|| packet.text(ACCT_SESSION_ID))
}

fn accounting(packet: &Packet, style: Style) -> AccountingRecord {
    let status = match packet.integer(ACCT_STATUS_TYPE) {
        Some(STATUS_START) => AccountingStatus::Start,
        Some(STATUS_STOP) => AccountingStatus::Stop,
        Some(STATUS_INTERIM) => AccountingStatus::Interim,
        Some(STATUS_ACCOUNTING_ON) => AccountingStatus::On,
        Some(STATUS_ACCOUNTING_OFF) => AccountingStatus::Off,
        Some(other) => AccountingStatus::Other(other),
        None => AccountingStatus::Other(0),
    };
    AccountingRecord {
        status,
        session: session_of(packet, style),
        session_time_s: packet.integer(ACCT_SESSION_TIME),
        disconnect_cause: h323_value(packet, H323_DISCONNECT_CAUSE),
        destination: packet.text(CALLED_STATION_ID).map(Pii::new),
    }
}

fn push_h323(packet: &mut Packet, style: Style, kind: u8, value: &str) {
    let text = match style {
        Style::Cisco => format!("{}={value}", cisco_name(kind)),
        Style::Bare => value.to_owned(),
    };
    packet.push_vendor(CISCO, kind, text.as_bytes());
}

fn fill_accept(response: &mut Packet, reply: &Reply, style: Style) {
    let Reply::Accept {
        credit_amount,
        currency,
        credit_time_s,
        language,
    } = reply
    else {
        return;
    };
    push_h323(response, style, H323_RETURN_CODE, "0");
    if let Some(amount) = credit_amount {
        push_h323(response, style, H323_CREDIT_AMOUNT, amount);
    }
    if let Some(currency) = currency {
        push_h323(response, style, H323_CURRENCY, currency);
    }
    if let Some(seconds) = credit_time_s {
        push_h323(response, style, H323_CREDIT_TIME, &seconds.to_string());
        // Gateways that ignore the VSA still end the call at Session-Timeout.
        let timeout = u32::try_from(*seconds).unwrap_or(u32::MAX);
        response.push(SESSION_TIMEOUT, &timeout.to_be_bytes());
    }
    if let Some(language) = language {
        push_h323(response, style, H323_PREFERRED_LANG, language);
    }
}
