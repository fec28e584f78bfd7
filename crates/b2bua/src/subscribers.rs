//! SIP subscribers (issue 16): phones that REGISTER with digest authentication and call
//! without the IVR, billed to their account. Sans-IO like the rest: nonces come from the
//! switch's randomness, the subscriber's HA1 and account from a ledger request, and the
//! request waits in its server transaction (which absorbs retransmissions) meanwhile.
//!
//! Nonces live `[subscribers] nonce_lifetime_s`; an expired one is answered with a fresh
//! challenge marked `stale=true`. Each nonce remembers the highest nonce count (`nc`) used
//! with it, so a request replayed with the same nonce and count is refused (403) before its
//! password is even checked; a wrong password uses the nonce up. Requests with credentials
//! pass the source's admission bucket (each costs a ledger read).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use talktime_pii::Pii;
use talktime_sip::auth::{Credentials, DigestChallenge};
use talktime_sip::transaction::{Peer, TransactionId};
use talktime_sip::{Method, Request, Response};
use tracing::{debug, info};

use crate::config::AccessNumber;
use crate::ledger::{LedgerReply, LedgerRequest, SubscriberAuth};
use crate::switch::Switch;

/// Nonces kept at most; past it the oldest are forgotten (their phones are challenged again).
const MAX_NONCES: usize = 100_000;
/// Requests waiting for their subscriber's record, at most.
const MAX_PENDING: usize = 4_096;

/// Nonces by value, shared by the core threads (crate::shard): a phone that reuses the nonce
/// of its REGISTER on a call with another Call-ID (another core) is not challenged again, and
/// a nonce count used on one core is used on all.
pub(crate) type Nonces = HashMap<String, NonceUse>;

#[derive(Debug, Default)]
pub(crate) struct Subscribers {
    pending: HashMap<u64, Pending>,
    /// Registered contacts by username (this node's).
    bindings: HashMap<String, Binding>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct NonceUse {
    issued: Instant,
    highest_count: u32,
}

#[derive(Debug)]
struct Pending {
    transaction: TransactionId,
    request: Request,
    source: Peer,
    credentials: Credentials,
}

#[derive(Debug)]
struct Binding {
    expires: Instant,
}

impl Subscribers {
    /// Requests waiting for their subscriber's record (none on an idle switch; nonces and
    /// registrations are bounded and expire).
    pub(crate) fn waiting(&self) -> usize {
        self.pending.len()
    }
}

/// Why a request's credentials are not checked against a password.
enum Screened {
    /// None, or for another realm, or unreadable: challenge.
    Challenge {
        stale: bool,
    },
    /// The nonce and count were used before.
    Replayed,
    Ready(Box<Credentials>),
}

fn credentials_header(method: &Method) -> (&'static str, &'static str, u16, &'static str) {
    if *method == Method::Register {
        ("Authorization", "WWW-Authenticate", 401, "Unauthorized")
    } else {
        (
            "Proxy-Authorization",
            "Proxy-Authenticate",
            407,
            "Proxy Authentication Required",
        )
    }
}

impl Switch {
    /// A REGISTER, or an INVITE to a number that is not an access number: a subscriber's,
    /// once its digest is checked (`None` while it waits for the ledger). With subscribers
    /// off, what a switch without them answers.
    pub(crate) fn subscriber_request(
        &mut self,
        transaction: TransactionId,
        request: &Request,
        source: Peer,
    ) -> Option<Response> {
        if !self.config.subscribers.enabled {
            let (status, reason) = if request.method == Method::Register {
                (405, "Method Not Allowed")
            } else {
                (404, "Not Found")
            };
            return Some(Response::for_request(request, status, reason));
        }
        self.authenticate(transaction, request, source)
    }

    /// Challenges, refuses, or asks the ledger for the subscriber (the answer then comes from
    /// [`Switch::subscriber_found`]); `None` while the request waits.
    fn authenticate(
        &mut self,
        transaction: TransactionId,
        request: &Request,
        source: Peer,
    ) -> Option<Response> {
        let credentials = match self.screen_credentials(request) {
            Screened::Challenge { stale } => return Some(self.challenge(request, stale)),
            Screened::Replayed => {
                info!(source = %source.address, "a digest nonce and count used again; refused");
                return Some(Response::for_request(request, 403, "Forbidden"));
            }
            Screened::Ready(credentials) => credentials,
        };
        // Every checked password costs a ledger read: a source sends them no faster than it
        // may start calls.
        let trust = self.config.peer_trust(source.address.ip());
        if let Err(refused) = self.admit(request, source, &trust) {
            return Some(*refused);
        }
        if self.subscribers.pending.len() >= MAX_PENDING {
            let mut busy = Response::for_request(request, 503, "Service Unavailable");
            busy.headers.push("Retry-After", "5");
            return Some(busy);
        }
        let username = credentials.username().unwrap_or_default().to_owned();
        let key = self.next_call_key();
        self.subscribers.pending.insert(
            key,
            Pending {
                transaction,
                request: request.clone(),
                source,
                credentials: *credentials,
            },
        );
        self.ledger_request(key, LedgerRequest::LookupSubscriber { username });
        None
    }

    fn screen_credentials(&mut self, request: &Request) -> Screened {
        let (header, ..) = credentials_header(&request.method);
        let Some(credentials) = request
            .headers
            .get(header)
            .and_then(|value| Credentials::parse(value).ok())
            .filter(Credentials::is_digest)
        else {
            return Screened::Challenge { stale: false };
        };
        let realm_matches = credentials.realm() == Some(self.config.subscribers.realm.as_str());
        let (Some(nonce), Some(count), true, Some(_)) = (
            credentials.nonce().map(str::to_owned),
            credentials.nonce_count(),
            realm_matches,
            credentials.username(),
        ) else {
            return Screened::Challenge { stale: false };
        };
        let lifetime = Duration::from_secs(self.config.subscribers.nonce_lifetime_s);
        let now = self.now.instant;
        let mut nonces = self.nonces();
        let Some(used) = nonces.get_mut(&nonce) else {
            // Not ours, or forgotten: answer with a fresh one.
            return Screened::Challenge { stale: true };
        };
        if now.saturating_duration_since(used.issued) > lifetime {
            nonces.remove(&nonce);
            return Screened::Challenge { stale: true };
        }
        if count <= used.highest_count {
            return Screened::Replayed;
        }
        used.highest_count = count;
        Screened::Ready(Box::new(credentials))
    }

    /// 401 (REGISTER) or 407 (INVITE) with a fresh nonce.
    fn challenge(&mut self, request: &Request, stale: bool) -> Response {
        let nonce = format!("{:016x}{:016x}", self.random_u64(), self.random_u64());
        self.remember_nonce(&nonce);
        let (_, header, status, reason) = credentials_header(&request.method);
        let challenge = DigestChallenge::new(&self.config.subscribers.realm, &nonce)
            .qop_auth(true)
            .stale(stale);
        let mut response = Response::for_request(request, status, reason);
        response.headers.push(header, &challenge.header_value());
        response
    }

    fn remember_nonce(&mut self, nonce: &str) {
        let now = self.now.instant;
        let lifetime = Duration::from_secs(self.config.subscribers.nonce_lifetime_s);
        let mut nonces = self.nonces();
        if nonces.len() >= MAX_NONCES {
            nonces.retain(|_, used| now.saturating_duration_since(used.issued) <= lifetime);
        }
        if nonces.len() >= MAX_NONCES
            && let Some(oldest) = nonces
                .iter()
                .min_by_key(|(_, used)| used.issued)
                .map(|(nonce, _)| nonce.clone())
        {
            nonces.remove(&oldest);
        }
        nonces.insert(
            nonce.to_owned(),
            NonceUse {
                issued: now,
                highest_count: 0,
            },
        );
    }

    /// The ledger's answer for a request waiting on its subscriber; false when `key` is not
    /// one.
    pub(crate) fn subscriber_reply(&mut self, key: u64, reply: &LedgerReply) -> bool {
        let Some(pending) = self.subscribers.pending.remove(&key) else {
            return false;
        };
        let subscriber = match reply {
            LedgerReply::Subscriber(found) => found.clone(),
            _ => None,
        };
        self.subscriber_found(key, pending, subscriber);
        true
    }

    fn subscriber_found(&mut self, key: u64, pending: Pending, found: Option<Box<SubscriberAuth>>) {
        let Pending {
            transaction,
            request,
            source,
            credentials,
        } = pending;
        let verified = found.filter(|subscriber| {
            subscriber.realm == self.config.subscribers.realm
                && credentials.username() == Some(subscriber.username.as_str())
                && credentials
                    .verify_ha1(request.method.as_str(), subscriber.ha1.expose())
                    .unwrap_or(false)
        });
        let Some(subscriber) = verified else {
            // A wrong answer uses its nonce up: the next guess needs a new challenge.
            if let Some(nonce) = credentials.nonce() {
                self.nonces().remove(nonce);
            }
            crate::counters::Counters::add(&mut self.counters.calls_refused, "subscriber_auth");
            info!(source = %source.address, method = request.method.as_str(), "subscriber authentication failed");
            self.respond(
                transaction,
                Response::for_request(&request, 403, "Forbidden"),
            );
            return;
        };
        if request.method == Method::Register {
            let response = self.bind(&request, &subscriber.username);
            self.respond(transaction, response);
            return;
        }
        self.start_subscriber_call(key, transaction, &request, source, *subscriber);
    }

    /// Keeps (or, with expires 0, drops) the subscriber's contact and answers 200.
    fn bind(&mut self, request: &Request, username: &str) -> Response {
        let contact = request
            .headers
            .get("Contact")
            .unwrap_or_default()
            .to_owned();
        let asked = contact
            .split(';')
            .find_map(|param| param.trim().strip_prefix("expires="))
            .or_else(|| request.headers.get("Expires"))
            .and_then(|value| value.trim().parse::<u32>().ok())
            .unwrap_or(self.config.subscribers.max_expires_s);
        let expires = asked.min(self.config.subscribers.max_expires_s);
        let now = self.now.instant;
        self.subscribers
            .bindings
            .retain(|_, binding| binding.expires > now);
        let mut response = Response::for_request(request, 200, "OK");
        if expires == 0 || contact.is_empty() {
            self.subscribers.bindings.remove(username);
            debug!(username, "subscriber unregistered");
            return response;
        }
        let address = contact
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        info!(username, expires, "subscriber registered");
        self.subscribers.bindings.insert(
            username.to_owned(),
            Binding {
                expires: self.now.instant + Duration::from_secs(u64::from(expires)),
            },
        );
        response
            .headers
            .push("Contact", &format!("{address};expires={expires}"));
        response.headers.push("Expires", &expires.to_string());
        response
    }

    fn start_subscriber_call(
        &mut self,
        key: u64,
        transaction: TransactionId,
        request: &Request,
        source: Peer,
        subscriber: SubscriberAuth,
    ) {
        let dialled = request.uri.user().unwrap_or_default().to_owned();
        let access = AccessNumber {
            number: format!("sip:{}", subscriber.username),
            languages: Vec::new(),
            dial_plan: self.config.subscribers.dial_plan.clone(),
            toll_free: false,
            forwarding: Some(true),
            balance_only: false,
            recharge_only: false,
            retail: false,
            callback: false,
            forwarding_welcome: Some(false),
            country_code: None,
            national_prefix: None,
        };
        let trust = self.config.peer_trust(source.address.ip());
        let known = crate::calls::KnownCaller {
            account: subscriber.account,
            destination: Pii::new(dialled),
            caller_id: subscriber.caller_id,
        };
        debug!(call = key, "subscriber authenticated");
        match self.start_call(transaction, request, source, access, trust, Some(known)) {
            Ok(()) => {
                crate::counters::Counters::add(
                    &mut self.counters.calls_started,
                    "subscribers".to_owned(),
                );
            }
            Err(error) => {
                info!(%error, "subscriber call refused");
                self.respond(transaction, error.response(request));
            }
        }
    }
}
