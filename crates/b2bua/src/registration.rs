//! Registration with carriers that require it (`register_expires_s` > 0): REGISTER with the
//! carrier's credentials, answer its digest challenge once, refresh at half the granted
//! time, retry after failures.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use talktime_pii::Pii;
use talktime_sip::auth::{Challenge, Credentials};
use talktime_sip::transaction::{Peer, TransactionId};
use talktime_sip::{Method, Request, Response, Transport as SipTransport, Uri};
use tracing::{info, warn};

use crate::switch::Switch;

/// After a failure (no answer, a refusal), try again this much later.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// One carrier's registration.
#[derive(Debug)]
pub struct Registration {
    carrier: String,
    peer: Peer,
    host: String,
    username: String,
    password: Pii<String>,
    expires: u32,
    call_id: String,
    from_tag: String,
    sequence: u32,
    next_at: Instant,
    pending: Option<TransactionId>,
    /// The last REGISTER sent carried credentials (a second challenge is a refusal).
    answered_challenge: bool,
}

/// Registrations by carrier, and which transaction belongs to which.
#[derive(Debug, Default)]
pub struct Registrations {
    by_carrier: HashMap<String, Registration>,
    by_transaction: HashMap<TransactionId, String>,
}

impl Registrations {
    /// The REGISTER of `old` was sent again as `new`.
    pub fn remap(&mut self, old: TransactionId, new: TransactionId) {
        let Some(carrier) = self.by_transaction.remove(&old) else {
            return;
        };
        if let Some(registration) = self.by_carrier.get_mut(&carrier) {
            registration.pending = Some(new);
        }
        self.by_transaction.insert(new, carrier);
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.by_carrier
            .values()
            .filter(|registration| registration.pending.is_none())
            .map(|registration| registration.next_at)
            .min()
    }
}

impl Switch {
    /// Sets up a registration for every carrier that asks for one; the first REGISTER goes
    /// out at once.
    pub(crate) fn prepare_registrations(&mut self) {
        // Core 0 registers for the node (crate::shard).
        if self.shard.index != 0 {
            return;
        }
        let now = self.now.instant;
        for carrier in self.config.carriers.clone() {
            if self.registrations.by_carrier.contains_key(&carrier.name) {
                continue;
            }
            let (Some(username), Some(password)) = (carrier.username, carrier.password) else {
                continue;
            };
            if carrier.register_expires_s == 0 || !carrier.enabled {
                continue;
            }
            let Some(&address) = self.carrier_addresses.get(&carrier.name) else {
                continue;
            };
            let transport = match carrier.transport {
                talktime_routing::Transport::Udp => SipTransport::Udp,
                talktime_routing::Transport::Tcp => SipTransport::Tcp,
                talktime_routing::Transport::Tls => SipTransport::Tls,
            };
            let sent_by = self.sent_by(transport);
            let call_id = self.new_call_id("", &sent_by);
            let registration = Registration {
                peer: Peer { transport, address },
                host: format!("{}:{}", carrier.host, carrier.port),
                username,
                password: Pii::new(password),
                expires: carrier.register_expires_s,
                call_id,
                from_tag: self.layer.new_tag(),
                sequence: 0,
                next_at: now,
                pending: None,
                answered_challenge: false,
                carrier: carrier.name.clone(),
            };
            self.registrations
                .by_carrier
                .insert(carrier.name, registration);
        }
    }

    /// After the carriers changed: drops the registrations of carriers that are gone or
    /// registered differently now (an answer to their REGISTER in flight is then ignored),
    /// and starts those that are new.
    pub(crate) fn refresh_registrations(&mut self) {
        let stale: Vec<String> = self
            .registrations
            .by_carrier
            .values()
            .filter(|registration| !self.registration_still_wanted(registration))
            .map(|registration| registration.carrier.clone())
            .collect();
        for carrier in stale {
            info!(%carrier, "registration dropped: the carrier changed");
            self.registrations.by_carrier.remove(&carrier);
            self.registrations
                .by_transaction
                .retain(|_, registered| *registered != carrier);
        }
        self.prepare_registrations();
    }

    fn registration_still_wanted(&self, registration: &Registration) -> bool {
        let Some(carrier) = self
            .config
            .carriers
            .iter()
            .find(|carrier| carrier.name == registration.carrier)
        else {
            return false;
        };
        carrier.enabled
            && carrier.register_expires_s == registration.expires
            && format!("{}:{}", carrier.host, carrier.port) == registration.host
            && carrier.username.as_deref() == Some(registration.username.as_str())
            && carrier.password.as_deref() == Some(registration.password.expose().as_str())
            && crate::routing::sip_transport(carrier.transport) == registration.peer.transport
            && self.carrier_addresses.get(&carrier.name) == Some(&registration.peer.address)
    }

    /// Sends the REGISTERs that are due.
    pub(crate) fn register_due(&mut self, now: Instant) {
        let due: Vec<String> = self
            .registrations
            .by_carrier
            .values()
            .filter(|registration| registration.pending.is_none() && registration.next_at <= now)
            .map(|registration| registration.carrier.clone())
            .collect();
        for carrier in due {
            self.send_register(&carrier, None);
        }
    }

    fn send_register(&mut self, carrier: &str, challenge: Option<&Response>) {
        let Some(request) = self.register_request(carrier, challenge) else {
            return;
        };
        let Some(registration) = self.registrations.by_carrier.get(carrier) else {
            return;
        };
        let peer = registration.peer;
        match self.send_request(request, peer) {
            Ok((transaction, _, _)) => {
                self.registrations
                    .by_transaction
                    .insert(transaction, carrier.to_owned());
                if let Some(registration) = self.registrations.by_carrier.get_mut(carrier) {
                    registration.pending = Some(transaction);
                    registration.answered_challenge = challenge.is_some();
                }
            }
            Err(error) => {
                warn!(%carrier, %error, "cannot send REGISTER");
                self.retry_registration(carrier);
            }
        }
    }

    fn register_request(&mut self, carrier: &str, challenge: Option<&Response>) -> Option<Request> {
        let contact_host = {
            let registration = self.registrations.by_carrier.get(carrier)?;
            self.sent_by(registration.peer.transport)
        };
        let via = {
            let registration = self.registrations.by_carrier.get(carrier)?;
            self.via_for(registration.peer.transport)
        };
        let cnonce = self.layer.new_tag();
        let registration = self.registrations.by_carrier.get_mut(carrier)?;
        registration.sequence += 1;
        let uri_text = format!("sip:{}", registration.host);
        let uri = Uri::parse(&uri_text).ok()?;
        let mut request = Request::new(Method::Register, uri);
        let aor = format!("<sip:{}@{}>", registration.username, registration.host);
        request.headers.push("Via", &via);
        request.headers.push("Max-Forwards", "70");
        request
            .headers
            .push("From", &format!("{aor};tag={}", registration.from_tag));
        request.headers.push("To", &aor);
        request.headers.push("Call-ID", &registration.call_id);
        request
            .headers
            .push("CSeq", &format!("{} REGISTER", registration.sequence));
        request.headers.push(
            "Contact",
            &format!("<sip:{}@{contact_host}>", registration.username),
        );
        request
            .headers
            .push("Expires", &registration.expires.to_string());
        if let Some(response) = challenge {
            let (header, value) = digest_authorization(
                response,
                &registration.username,
                registration.password.expose(),
                "REGISTER",
                &uri_text,
                &cnonce,
            )?;
            request.headers.push(header, &value);
        }
        Some(request)
    }

    /// A response to one of our REGISTERs; false when the transaction is not one.
    pub(crate) fn registration_response(
        &mut self,
        transaction: TransactionId,
        response: &Response,
    ) -> bool {
        let Some(carrier) = self.registrations.by_transaction.get(&transaction).cloned() else {
            return false;
        };
        if response.status < 200 {
            return true;
        }
        self.registrations.by_transaction.remove(&transaction);
        let Some(registration) = self.registrations.by_carrier.get_mut(&carrier) else {
            return true;
        };
        registration.pending = None;
        match response.status {
            200..=299 => {
                let granted = granted_expires(response).unwrap_or(registration.expires);
                registration.next_at =
                    self.now.instant + Duration::from_secs(u64::from(granted.max(2) / 2));
                info!(%carrier, expires = granted, "registered with the carrier");
            }
            401 | 407 if !registration.answered_challenge => {
                self.send_register(&carrier, Some(response));
            }
            status => {
                warn!(%carrier, status, "carrier refused our registration");
                self.retry_registration(&carrier);
            }
        }
        true
    }

    /// A REGISTER that timed out or could not be sent; false when the transaction is not one.
    pub(crate) fn registration_failed(&mut self, transaction: TransactionId) -> bool {
        let Some(carrier) = self.registrations.by_transaction.remove(&transaction) else {
            return false;
        };
        warn!(%carrier, "no answer to REGISTER");
        self.retry_registration(&carrier);
        true
    }

    fn retry_registration(&mut self, carrier: &str) {
        if let Some(registration) = self.registrations.by_carrier.get_mut(carrier) {
            registration.pending = None;
            registration.next_at = self.now.instant + RETRY_AFTER;
        }
    }
}

/// Answers the digest challenge of a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate):
/// the header to add to the retried request and its value; `None` if the challenge is
/// missing or unusable.
pub(crate) fn digest_authorization(
    response: &Response,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> Option<(&'static str, String)> {
    let (challenge_header, answer_header) = if response.status == 407 {
        ("Proxy-Authenticate", "Proxy-Authorization")
    } else {
        ("WWW-Authenticate", "Authorization")
    };
    let challenge = Challenge::parse(response.headers.get(challenge_header)?).ok()?;
    let credentials =
        Credentials::answer(&challenge, username, password, method, uri, cnonce, 1).ok()?;
    Some((answer_header, credentials.header_value()))
}

/// The expiry the registrar granted: the Contact's `expires` parameter, else `Expires`.
fn granted_expires(response: &Response) -> Option<u32> {
    let from_contact = response.contact().ok().and_then(|contacts| {
        contacts
            .iter()
            .find_map(|contact| contact.params.get("expires")?.parse().ok())
    });
    from_contact.or_else(|| response.headers.expires().ok().flatten())
}
