//! The core's use of the router: carrier targets for a call, capacity counters, failover
//! classification and OPTIONS health pings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use talktime_billing::LocalStart;
use talktime_engine::Refusal;
use talktime_pii::Pii;
use talktime_routing::{CallerIdRule, RouteError, RouteRequest, Transport as CarrierTransport};
use talktime_sip::transaction::{Peer, TransactionId};
use talktime_sip::{Method, Request, Transport as SipTransport, Uri};
use tracing::{info, warn};

use crate::config::AccessNumber;
use crate::switch::Switch;

/// One carrier INVITE to send, resolved to an address.
#[derive(Debug, Clone)]
pub struct CarrierTarget {
    pub carrier: String,
    pub peer: Peer,
    /// Host part of the Request-URI (`host:port`).
    pub uri_host: String,
    pub request_user: String,
    /// `None` passes the caller's number through.
    pub caller_id: Option<String>,
    /// No provisional response within this: try the next carrier.
    pub invite_timeout: Duration,
    /// This carrier's buy rate for the number, when it has a buy-rate deck.
    pub buy_per_minute: Option<Decimal>,
    /// Digest credentials for a carrier that challenges (401/407).
    pub credentials: Option<(String, Pii<String>)>,
}

/// New carriers and dial plans for the running switch, prepared by the shell (addresses
/// resolved, buy-rate decks loaded): the core does no DNS and no database read.
#[derive(Debug, Clone)]
pub struct RoutingUpdate {
    /// The routing version these come from (for the log).
    pub version: i64,
    pub carriers: Vec<talktime_routing::CarrierConfig>,
    pub dial_plans: Vec<talktime_routing::DialPlanConfig>,
    pub buy_rates: HashMap<String, Arc<talktime_billing::RateDeck>>,
    pub carrier_addresses: HashMap<String, std::net::SocketAddr>,
}

pub(crate) fn sip_transport(transport: CarrierTransport) -> SipTransport {
    match transport {
        CarrierTransport::Udp => SipTransport::Udp,
        CarrierTransport::Tcp => SipTransport::Tcp,
        CarrierTransport::Tls => SipTransport::Tls,
    }
}

impl Switch {
    /// Routes new calls with `update`; calls in progress keep their carrier and are counted
    /// against it while it keeps its name. An update the router refuses changes nothing.
    pub(crate) fn apply_routing(&mut self, update: RoutingUpdate, now: Instant) {
        let RoutingUpdate {
            version,
            carriers,
            dial_plans,
            buy_rates,
            carrier_addresses,
        } = update;
        if let Err(errors) =
            self.router()
                .reload(carriers.clone(), dial_plans.clone(), buy_rates, now)
        {
            warn!(version, %errors, "routing change refused; the previous routing stays");
            return;
        }
        self.config.carriers = carriers;
        self.config.dial_plans = dial_plans;
        self.carrier_addresses = carrier_addresses;
        self.refresh_registrations();
        info!(
            version,
            carriers = self.config.carriers.len(),
            dial_plans = self.config.dial_plans.len(),
            "routing changed"
        );
    }

    fn local_start(&self) -> Option<LocalStart> {
        LocalStart::from_unix_ms(self.now.epoch_ms, self.config.billing.utc_offset_minutes)
    }

    /// The destination as E.164 digits under the access number's rules, refused when the
    /// number rules or the dial plan block it (before any credit is reserved).
    pub(crate) fn check_destination(
        &self,
        access: &AccessNumber,
        destination: &str,
    ) -> Result<String, Refusal> {
        let rules = self.config.number_rules_for(access);
        let number =
            talktime_routing::normalize(destination, &rules).map_err(|error| match error {
                talktime_routing::NormalizeError::BlockedPrefix { .. } => {
                    Refusal::BlockedDestination
                }
                _ => Refusal::UnknownDestination,
            })?;
        let start = self.local_start().ok_or(Refusal::UnknownDestination)?;
        let request = RouteRequest::new(&access.dial_plan, &number, start);
        match self.router().route(&request, self.now.instant) {
            Err(RouteError::Blocked { .. }) => Err(Refusal::BlockedDestination),
            Err(RouteError::NoRoute { .. } | RouteError::UnknownDialPlan(_)) => {
                Err(Refusal::UnknownDestination)
            }
            _ => Ok(number),
        }
    }

    /// The carriers to try, in order; empty when none is available.
    /// `number` is E.164 digits (see [`Core::check_destination`]).
    pub(crate) fn carrier_targets(
        &self,
        plan: &str,
        number: &str,
        sell_per_minute: Option<Decimal>,
        refuse_loss: bool,
    ) -> Vec<CarrierTarget> {
        let Some(start) = self.local_start() else {
            return Vec::new();
        };
        let mut request =
            RouteRequest::new(plan, number, start).with_seed(self.now.epoch_ms.unsigned_abs());
        if let Some(sell) = sell_per_minute {
            request = request.with_sell_rate(sell, refuse_loss);
        }
        let route = match self.router().route(&request, self.now.instant) {
            Ok(route) => route,
            Err(error) => {
                info!(%error, "no route");
                return Vec::new();
            }
        };
        for skipped in &route.skipped {
            info!(carrier = %skipped.carrier, reason = %skipped.reason, "carrier skipped");
        }
        route
            .targets
            .into_iter()
            .filter_map(|target| {
                let address = *self.carrier_addresses.get(&target.carrier)?;
                let transport = sip_transport(target.transport);
                Some(CarrierTarget {
                    uri_host: format!("{}:{}", target.host, target.port),
                    peer: Peer { transport, address },
                    request_user: target.request_user.expose().clone(),
                    caller_id: match &target.caller_id {
                        CallerIdRule::PassThrough => None,
                        other => Some(other.apply("").unwrap_or("anonymous").to_owned()),
                    },
                    invite_timeout: target.invite_timeout,
                    buy_per_minute: target.buy_per_minute,
                    credentials: target
                        .credentials
                        .map(|credentials| (credentials.username, credentials.password)),
                    carrier: target.carrier,
                })
            })
            .collect()
    }

    /// Takes a call slot on the carrier; false (and a log line) when it is at capacity.
    pub(crate) fn carrier_started(&mut self, carrier: &str) -> bool {
        match self.router().call_started(carrier, self.now.instant) {
            Ok(()) => true,
            Err(error) => {
                info!(%error, "carrier skipped at capacity");
                false
            }
        }
    }

    pub(crate) fn carrier_ended(&mut self, carrier: &str) {
        self.router().call_ended(carrier);
    }

    pub(crate) fn fails_over(&self, carrier: &str, status: Option<u16>) -> bool {
        self.router().failover(carrier, status)
    }

    /// Sends the OPTIONS pings that are due.
    pub(crate) fn ping_carriers(&mut self, now: Instant) {
        let due = self.router().health_due(now);
        for carrier in due {
            let Some(&address) = self.carrier_addresses.get(&carrier) else {
                self.router().health_result(&carrier, false, now);
                continue;
            };
            let transport = self
                .router()
                .carrier(&carrier)
                .map_or(SipTransport::Udp, |config| sip_transport(config.transport));
            let peer = Peer { transport, address };
            let Some(ping) = self.options_request(peer) else {
                continue;
            };
            match self.send_request(ping, peer) {
                Ok((transaction, _, _)) => {
                    self.health_checks.insert(transaction, carrier);
                }
                Err(error) => warn!(%carrier, %error, "cannot ping carrier"),
            }
        }
        loop {
            let Some(change) = self.router().poll_event() else {
                break;
            };
            info!(carrier = %change.carrier, up = change.up, "carrier health changed");
            self.report_carrier_health(change.carrier, change.up);
        }
    }

    fn options_request(&mut self, peer: Peer) -> Option<Request> {
        let uri = Uri::parse(&format!("sip:{}", peer.address)).ok()?;
        let mut request = Request::new(Method::Options, uri);
        let sent_by = self.sent_by(peer.transport);
        let tag = self.layer.new_tag();
        request.headers.push("Via", &self.via_for(peer.transport));
        request.headers.push("Max-Forwards", "70");
        request
            .headers
            .push("From", &format!("<sip:talktime@{sent_by}>;tag={tag}"));
        request
            .headers
            .push("To", &format!("<sip:{}>", peer.address));
        let call_id = self.new_call_id("", &sent_by);
        request.headers.push("Call-ID", &call_id);
        request.headers.push("CSeq", "1 OPTIONS");
        request
            .headers
            .push("User-Agent", &self.config.sip.user_agent);
        Some(request)
    }

    /// The answer (any response) or silence (timeout) to a health ping; true if it was one.
    pub(crate) fn health_answer(&mut self, transaction: TransactionId, answered: bool) -> bool {
        let Some(carrier) = self.health_checks.remove(&transaction) else {
            return false;
        };
        self.router()
            .health_result(&carrier, answered, self.now.instant);
        true
    }
}
