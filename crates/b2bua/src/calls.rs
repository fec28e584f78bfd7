//! Prepaid calls in the core: one sans-IO [`talktime_engine::Call`] per caller, its caller
//! leg (A, our UAS dialog), its carrier leg (B, our UAC dialog), its media task and its
//! ledger requests. The engine decides; this module turns its outputs into SIP messages,
//! media commands and ledger tasks, and SIP/media/ledger events back into engine inputs.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use talktime_billing::Cdr;
use talktime_engine::{
    AccountId, AttemptId, AttemptRecord, Call, CallId, CallRecord, CallSetup, Input, Output,
    PlaybackId, Prompt, Settlement, Tone,
};
use talktime_media::relay::{LegConfig, Side};
use talktime_media::{Law, PlayItem};
use talktime_pii::Pii;
use talktime_sdp::{
    Codec, Direction, LocalAudio, NegotiatedAudio, SessionDescription, SessionOrigin,
};
use talktime_sip::dialog::{Dialog, DialogId};
use talktime_sip::transaction::{Peer, TransactionId};
use talktime_sip::{Method, Request, Response, Uri};
use tracing::{debug, info, warn};

use crate::config::AccessNumber;
use crate::ledger::{LedgerReply, LedgerRequest, Rated};
use crate::media::{MediaCommand, MediaPorts, MediaReport};
use crate::recovery::{Checkpoint, LegBye};
use crate::routing::CarrierTarget;
use crate::switch::{ALLOW, Switch};

/// Ports for a new call are tried this many times (each pair another program holds is set
/// aside) before the call is ended.
const OPEN_TRIES: u8 = 3;

/// CSeq numbers a checkpointed BYE skips, so it stays above the requests (re-INVITEs, INFO)
/// the call sends after the checkpoint.
const RECOVERY_CSEQ_GAP: u32 = 1000;

/// Wrong PINs from a source address are counted under this prefix and the address.
pub const SOURCE_KEY: &str = "source:";

/// Telephone-event payload type in our SDP.
const TELEPHONE_EVENT: u8 = 101;
/// Ringback plays until stopped; this only bounds a call whose engine forgot to stop it.
const RINGBACK_LENGTH: Duration = Duration::from_secs(600);

/// A caller authenticated before the call starts (a SIP subscriber): its account, the number
/// it dialled and the caller ID its calls present.
#[derive(Debug)]
pub(crate) struct KnownCaller {
    pub(crate) account: talktime_engine::AccountInfo,
    pub(crate) destination: Pii<String>,
    pub(crate) caller_id: Option<Pii<String>>,
}

/// The caller's side of a call.
#[derive(Debug)]
pub(crate) struct CallerLeg {
    pub(crate) invite: Request,
    pub(crate) transaction: TransactionId,
    pub(crate) peer: Peer,
    pub(crate) local_tag: String,
    /// Our SDP for the 200 that answers the caller (emptied once it is sent).
    pub(crate) answer: Vec<u8>,
    pub(crate) dialog: Option<DialogId>,
    /// Delayed offer (an INVITE without SDP, as H.323 gateways send): our offer went in the
    /// 200 and the caller's answer comes in the ACK.
    /// Boxed: rare, and a description inline is 200 bytes of every live call.
    pub(crate) awaiting_answer: Option<Box<SessionDescription>>,
    /// 183 sent and no final response yet (a forwarding number waiting for the carrier): a
    /// hang-up is a final error response to the INVITE, not a BYE.
    pub(crate) ringing: bool,
}

/// One carrier INVITE.
#[derive(Debug)]
struct Outgoing {
    target: CarrierTarget,
    invite: Request,
    /// Our offer, until the carrier's answer is applied (then `None`: not kept for the call).
    offer: Option<SessionDescription>,
    transaction: TransactionId,
    dialog: Option<DialogId>,
    /// No provisional response by then: give up on this carrier and fail over.
    trying_deadline: Option<Instant>,
    /// The INVITE was re-sent with credentials; a second challenge is a failure.
    authenticated: bool,
    /// CANCEL sent (or the attempt abandoned): a late 200 is ACKed and hung up.
    abandoned: bool,
    /// Delayed offer: the INVITE went without SDP; the carrier's 2xx offers and `ack_body`
    /// (our answer) goes in the ACK.
    delayed: bool,
    ack_body: Option<Vec<u8>>,
}

/// The carrier side of one attempt.
#[derive(Debug)]
struct CarrierLeg {
    attempt: AttemptId,
    remaining: VecDeque<CarrierTarget>,
    current: Option<Outgoing>,
}

/// Everything the core keeps for one prepaid call.
#[derive(Debug)]
pub struct Session {
    engine: Call,
    call_id: String,
    started_ms: i64,
    access: AccessNumber,
    caller_id: Option<Pii<String>>,
    caller: CallerLeg,
    media: Option<MediaPorts>,
    law: Law,
    /// The caller's codec: its G.711 law, or G.729 relayed untouched end to end (DID
    /// forwarding only: no prompt can be played in it).
    codec: Codec,
    rated: Option<(AttemptId, Rated)>,
    settlement: Option<Settlement>,
    carrier: Option<CarrierLeg>,
    /// Our SDP origin towards the caller (its version grows when a re-INVITE changes it).
    caller_origin: SessionOrigin,
    /// RFC 4028: the caller refreshes the session this often, or the call is ended.
    session_timer: Option<SessionTimer>,
    /// Attempts already settled: an authorization that arrives for one is released.
    settled: std::collections::HashSet<AttemptId>,
    /// Buy rates of the carriers offered for the current attempt (CDR buy cost).
    buy_rates: std::collections::HashMap<String, rust_decimal::Decimal>,
    /// What the caller's source may do (`[[peers]]`), decided once at the INVITE.
    trust: crate::config::PeerTrust,
    /// The Q.850 cause of the BYE that ended the call from the caller's or the carrier's
    /// side (RFC 3326 Reason), kept in the CDR in place of ours.
    peer_q850: Option<(talktime_engine::Party, u8)>,
    /// When the carrier answered (epoch ms), for the live-calls view.
    answered_ms: Option<i64>,
    /// A callback's leg to the caller (placed by us): what it costs and until when it is paid.
    /// Boxed: rare (callbacks), 150 bytes inline.
    pub(crate) callback: Option<Box<crate::callback::CallerLegBill>>,
    /// `Some(tries)` until the shell has bound the call's ports: the engine's first outputs
    /// wait (see [`MediaReport::Opened`]).
    opening: Option<u8>,
}

/// The Q.850 cause of a request's or response's Reason header, if it carries one.
fn q850_of(reasons: Result<Vec<talktime_sip::Reason>, talktime_sip::ParseError>) -> Option<u8> {
    reasons
        .ok()?
        .into_iter()
        .find(|reason| reason.protocol.eq_ignore_ascii_case("Q.850"))
        .and_then(|reason| reason.cause)
        .and_then(|cause| u8::try_from(cause).ok())
        .filter(|cause| (1..=127).contains(cause))
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        engine: Call,
        started_ms: i64,
        access: AccessNumber,
        caller_id: Option<Pii<String>>,
        caller: CallerLeg,
        media: MediaPorts,
        (law, codec): (Law, Codec),
        caller_origin: SessionOrigin,
        trust: crate::config::PeerTrust,
    ) -> Session {
        Session {
            call_id: engine.call_id().0.clone(),
            engine,
            started_ms,
            access,
            caller_id,
            caller,
            media: Some(media),
            law,
            codec,
            rated: None,
            settlement: None,
            carrier: None,
            caller_origin,
            session_timer: None,
            settled: std::collections::HashSet::new(),
            buy_rates: std::collections::HashMap::new(),
            trust,
            peer_q850: None,
            answered_ms: None,
            callback: None,
            opening: None,
        }
    }

    /// The call as the live-calls view shows it (numbers masked).
    pub(crate) fn live(&self, key: u64, now_ms: i64) -> crate::monitor::LiveCall {
        let carrier = self
            .carrier
            .as_ref()
            .and_then(|leg| leg.current.as_ref())
            .map(|outgoing| outgoing.target.carrier.clone());
        let rated = self.rated.as_ref().map(|(_, rated)| rated);
        crate::monitor::LiveCall {
            key,
            call_id: self.call_id.clone(),
            account: self.account(),
            access_number: self.access.number.clone(),
            caller_id: self
                .caller_id
                .as_ref()
                .map(|number| crate::monitor::mask(number.expose())),
            destination: rated.map(|rated| crate::monitor::mask(&rated.number)),
            phase: format!("{:?}", self.engine.phase()),
            carrier,
            started_ms: self.started_ms,
            answered_ms: self.answered_ms,
            limit_ms: rated.map(|rated| rated.authorization.limit_ms),
            codec: format!("{:?}", self.codec),
            description: rated.map(|rated| rated.context.description.clone()),
            rate_per_minute: rated
                .and_then(|rated| rated.context.steps.first())
                .map(|step| step.per_minute.normalize().to_string()),
            // The same rating function the bill comes from, on the talk time so far.
            cost_so_far: match (rated, self.answered_ms) {
                (Some(rated), Some(answered)) => {
                    let talked = u64::try_from(now_ms - answered).unwrap_or(0);
                    Some(
                        talktime_billing::rate_call(&rated.context, talked)
                            .total
                            .to_string(),
                    )
                }
                _ => None,
            },
        }
    }

    /// The paying account, once rated.
    /// The caller's number (a callback's: the number called back).
    pub(crate) fn caller_number(&self) -> Option<&Pii<String>> {
        self.caller_id.as_ref()
    }

    pub(crate) fn caller_dialog(&self) -> Option<DialogId> {
        self.caller.dialog.clone()
    }

    pub(crate) fn caller_peer(&self) -> Peer {
        self.caller.peer
    }

    pub(crate) fn access_number(&self) -> &str {
        &self.access.number
    }

    pub(crate) fn account(&self) -> Option<i64> {
        self.rated.as_ref().map(|(_, rated)| rated.account.0)
    }

    /// Still in the IVR: no carrier leg answered yet.
    pub(crate) fn in_ivr(&self) -> bool {
        self.settlement.is_none()
            && self
                .carrier
                .as_ref()
                .and_then(|leg| leg.current.as_ref())
                .is_none_or(|outgoing| outgoing.dialog.is_none())
    }

    /// The earliest of everything this call waits for: the engine's deadline (IVR entry,
    /// no answer, credit warning and limit, farewell), the carrier's 100 Trying deadline and
    /// the caller's session-timer refresh. The shell arms exactly this, after every input.
    fn next_deadline(&self) -> Option<Instant> {
        let trying = self
            .carrier
            .as_ref()
            .and_then(|leg| leg.current.as_ref())
            .and_then(|outgoing| outgoing.trying_deadline);
        let refresh = self.session_timer.map(|timer| timer.deadline);
        let caller_leg_paid = self.callback.as_ref().map(|bill| bill.deadline());
        [self.engine.poll_timeout(), trying, refresh, caller_leg_paid]
            .into_iter()
            .flatten()
            .min()
    }
}

/// RFC 4028 session timer on the caller's dialog, refreshed by the caller (refresher=uac).
#[derive(Debug, Clone, Copy)]
struct SessionTimer {
    interval: Duration,
    deadline: Instant,
}

/// Why a caller's INVITE cannot start a call (an access number's or the test number's);
/// each maps onto a response.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the INVITE has no SDP offer")]
    NoOffer,
    #[error("the SDP offer is malformed: {0}")]
    BadOffer(talktime_sdp::ParseError),
    #[error("no acceptable audio in the offer: {0}")]
    Negotiation(talktime_sdp::NegotiationError),
    #[error("the offered codec is not G.711: the IVR cannot play prompts")]
    NotG711,
    #[error("no RTP port free: {0}")]
    Ports(#[from] talktime_media::PortError),
    #[error("invalid IVR configuration: {0}")]
    Config(#[from] talktime_engine::ConfigError),
    #[error("the ledger is overloaded ({backlog} requests waiting)")]
    Overloaded { backlog: usize },
}

impl StartError {
    pub fn response(&self, request: &Request) -> Response {
        match self {
            StartError::BadOffer(_) => {
                Response::for_request(request, 400, "Bad Request (malformed SDP)")
            }
            StartError::NoOffer | StartError::Negotiation(_) | StartError::NotG711 => {
                Response::for_request(request, 488, "Not Acceptable Here")
            }
            StartError::Ports(_) | StartError::Config(_) => {
                Response::for_request(request, 503, "Service Unavailable")
            }
            StartError::Overloaded { .. } => {
                let mut response = Response::for_request(request, 503, "Service Unavailable");
                response.headers.push("Retry-After", "1");
                response
            }
        }
    }
}

/// Why an INVITE to a carrier could not be sent (the next carrier is tried).
#[derive(Debug, thiserror::Error)]
pub(crate) enum InviteError {
    #[error("the call ended meanwhile")]
    CallGone,
    #[error("the carrier's Request-URI is not valid: {0}")]
    Uri(talktime_sip::ParseError),
    #[error(transparent)]
    Send(#[from] talktime_sip::transaction::TransactionError),
}

/// A session timer when the caller asks for one and supports `timer` (we never impose one);
/// a shorter interval than `minimum` seconds (`[sip] min_session_expires_s`, 90 by RFC 4028
/// §4) is raised to it.
fn session_timer(invite: &Request, minimum: u32, now: Instant) -> Option<SessionTimer> {
    let supported = invite
        .supported()
        .iter()
        .any(|option| option.eq_ignore_ascii_case("timer"));
    let requested = invite.session_expires().ok().flatten()?;
    if !supported {
        return None;
    }
    let interval = Duration::from_secs(u64::from(requested.delta.max(minimum)));
    Some(SessionTimer {
        interval,
        deadline: now + interval,
    })
}

/// RFC 4028 §9: the granted interval, refreshed by the caller, in a 2xx to the caller.
fn add_session_timer(response: &mut Response, timer: Option<SessionTimer>) {
    if let Some(timer) = timer {
        let seconds = timer.interval.as_secs();
        response
            .headers
            .push("Session-Expires", &format!("{seconds};refresher=uac"));
        response.headers.push("Require", "timer");
    }
}

/// The caller's number: P-Asserted-Identity, else Remote-Party-ID (what H.323 and ISDN
/// gateways send: its `party=calling` entry, or one without `party`), else From. Anonymous, or
/// a Remote-Party-ID with `privacy=full`, is no caller ID.
pub(crate) fn caller_id_of(request: &Request) -> Option<Pii<String>> {
    let asserted = request
        .p_asserted_identity()
        .ok()
        .and_then(|identities| identities.into_iter().next());
    let remote_party = || {
        request.remote_party_id().ok().and_then(|identities| {
            identities.into_iter().find(|identity| {
                identity
                    .params
                    .get("party")
                    .is_none_or(|party| party.eq_ignore_ascii_case("calling"))
            })
        })
    };
    let identity = asserted
        .or_else(remote_party)
        .or_else(|| request.from().ok())?;
    if identity
        .params
        .get("privacy")
        .is_some_and(|privacy| privacy.eq_ignore_ascii_case("full"))
    {
        return None;
    }
    let user = identity.uri.user_unescaped()?;
    let digits: String = user
        .trim_start_matches('+')
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    (!digits.is_empty() && !user.eq_ignore_ascii_case("anonymous")).then(|| Pii::new(digits))
}

/// The names of prompts for the log: a portal login code's digits are a secret, kept out.
fn loggable_names(prompts: &[Prompt]) -> Vec<&'static str> {
    let secret = prompts.iter().any(|prompt| prompt.name == "portal_code");
    prompts
        .iter()
        .map(|prompt| match prompt.name {
            name if secret && name.starts_with("num_") => "num_?",
            name => name,
        })
        .collect()
}

/// The caller's codecs: the IVR needs G.711; a forwarding number, which needs no IVR, takes
/// G.729 too (last: G.711 is still preferred, for the warning beep).
fn caller_codecs(access: &AccessNumber, config: &crate::config::Config) -> Vec<Codec> {
    let mut codecs = vec![Codec::Pcmu, Codec::Pcma];
    // (What `ivr_for` would say, without copying the IVR settings for it.)
    if access.forwarding.unwrap_or(config.ivr.forwarding) {
        codecs.push(Codec::G729);
    }
    codecs
}

/// Our answer to the caller's offer, or our offer when the INVITE had none (a delayed offer:
/// kept until the ACK answers it); the audio as negotiated so far.
fn negotiate_with_caller(
    offer: Option<&SessionDescription>,
    local: &LocalAudio,
    origin: &mut SessionOrigin,
) -> Result<
    (
        SessionDescription,
        NegotiatedAudio,
        Option<Box<SessionDescription>>,
    ),
    talktime_sdp::NegotiationError,
> {
    match offer {
        Some(offer) => {
            let (answer, audio) = talktime_sdp::answer(offer, local, origin)?;
            Ok((answer, audio, None))
        }
        None => {
            let ours = talktime_sdp::offer(local, origin);
            Ok((ours.clone(), until_answered(), Some(Box::new(ours))))
        }
    }
}

/// The caller leg's media while a delayed offer waits for its answer: PCMU, no address yet
/// (nothing is sent until the ACK's answer names one, or the caller's first packet latches).
fn until_answered() -> NegotiatedAudio {
    NegotiatedAudio {
        media_index: 0,
        codec: Codec::Pcmu,
        payload_type: 0,
        send_telephone_event: None,
        receive_telephone_event: Some(TELEPHONE_EVENT),
        ptime: 20,
        remote: None,
        direction: talktime_sdp::Direction::SendRecv,
    }
}

pub(crate) fn law_of(audio: &NegotiatedAudio) -> Option<Law> {
    match audio.codec {
        Codec::Pcmu => Some(Law::MuLaw),
        Codec::Pcma => Some(Law::ALaw),
        _ => None,
    }
}

/// The hosts a leg's media may come from: the one its SDP names and its SIP peer's (behind
/// NAT the media comes from the signalling host); none listed (any host) when
/// `[rtp] strict_media_sources` is off.
pub(crate) fn media_sources(strict: bool, audio: &NegotiatedAudio, peer: &Peer) -> Vec<IpAddr> {
    if !strict {
        return Vec::new();
    }
    let mut hosts = vec![peer.address.ip()];
    if let Some(remote) = audio.remote
        && !hosts.contains(&remote.ip())
    {
        hosts.push(remote.ip());
    }
    hosts
}

/// A leg's relay settings from what its SDP negotiated.
pub(crate) fn leg_config(
    law: Law,
    audio: &NegotiatedAudio,
    ssrc: u32,
    inactivity: Duration,
    detect_inband: bool,
    sources: Vec<IpAddr>,
) -> LegConfig {
    let mut config = LegConfig::g711(law, audio.remote, ssrc);
    // A codec we relay without decoding (G.729): no prompts, no in-band detection on it.
    config.law = law_of(audio);
    config.allowed_sources = sources;
    config.audio_payload_type = audio.payload_type;
    config.send_telephone_event = audio.send_telephone_event;
    config.receive_telephone_event = audio.receive_telephone_event;
    config.inactivity_timeout = inactivity;
    // The Goertzel detector is a third of the relay's CPU: run it only where digits matter
    // (the caller) and only when the caller cannot send RFC 4733 events.
    config.inband_dtmf = detect_inband && audio.receive_telephone_event.is_none();
    config
}

/// An SSRC that differs between calls and legs; unique, not secret (RFC 3550 §8.1).
pub(crate) fn ssrc_for(key: u64, side: Side, random: u64) -> u32 {
    let mixed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(random);
    let value = (mixed >> 16) as u32;
    match side {
        Side::A => value,
        Side::B => value.rotate_left(13) ^ 0x5A5A_5A5A,
    }
}

impl Switch {
    /// Answers an INVITE to an access number with the IVR: negotiates media, opens the
    /// media task and starts the engine (whose first output answers the call).
    pub(crate) fn start_call(
        &mut self,
        transaction: TransactionId,
        request: &Request,
        source: Peer,
        access: AccessNumber,
        trust: crate::config::PeerTrust,
        known: Option<KnownCaller>,
    ) -> Result<(), StartError> {
        if let Some(backlog) = self.ledger_pace.overloaded(self.now.instant) {
            return Err(StartError::Overloaded { backlog });
        }
        let offer = if request.body.is_empty() {
            None
        } else {
            Some(SessionDescription::parse(&request.body).map_err(StartError::BadOffer)?)
        };
        let key = self.next_call_key();
        let random = self.random_u64();
        let media = self.allocate_ports(random)?;
        let codecs = caller_codecs(&access, &self.config);
        let local = self.local_audio(media.port(Side::A), codecs);
        let mut origin = SessionOrigin::new(u64::from(media.port(Side::A)), self.advertised);
        let (answer, audio, awaiting_answer) =
            match negotiate_with_caller(offer.as_ref(), &local, &mut origin) {
                Ok(negotiated) => negotiated,
                Err(error) => {
                    media.release(&mut self.ports);
                    return Err(StartError::Negotiation(error));
                }
            };
        let law = match (law_of(&audio), audio.codec) {
            (Some(law), _) => law,
            // Relayed as is; prompts and beeps are skipped on it.
            (None, Codec::G729) => Law::MuLaw,
            (None, _) => {
                media.release(&mut self.ports);
                return Err(StartError::NotG711);
            }
        };
        let codec = audio.codec;
        let mut caller_id = caller_id_of(request);
        let call_id = request.call_id().unwrap_or_default().to_owned();
        let engine = match known {
            Some(known) => {
                let mut ivr = self.config.ivr_for(&access);
                ivr.announce_balance = false;
                ivr.announce_talk_time = false;
                caller_id = known.caller_id.clone();
                Call::subscriber(
                    CallSetup {
                        call_id: CallId(call_id.clone()),
                        caller_id: known.caller_id,
                        access_number: access.number.clone(),
                        ivr,
                        languages: self.config.languages.clone(),
                        now: self.now.instant,
                    },
                    known.account,
                    known.destination,
                )
            }
            None => {
                // A caller ID authenticates only from a peer trusted for it; from anyone else
                // it is kept for the CDR and the PIN is asked (issue 20).
                let trusted_caller_id = caller_id.clone().filter(|_| trust.trusted_caller_id);
                Call::new(CallSetup {
                    call_id: CallId(call_id.clone()),
                    caller_id: trusted_caller_id,
                    access_number: access.number.clone(),
                    ivr: self.config.ivr_for(&access),
                    languages: self.config.languages.clone(),
                    now: self.now.instant,
                })
            }
        };
        let engine = match engine {
            Ok(engine) => engine,
            Err(error) => {
                media.release(&mut self.ports);
                return Err(error.into());
            }
        };
        let caller_leg = self.caller_leg(key, law, &audio, &source, random);
        self.open_caller_media(key, media, caller_leg);
        let local_tag = self.layer.new_tag();
        info!(call = key, %call_id, access = %access.number, source = %source.address, "call started");
        let mut session = Session::new(
            engine,
            self.now.epoch_ms,
            access,
            caller_id,
            CallerLeg {
                invite: request.clone(),
                transaction,
                peer: source,
                local_tag,
                answer: answer.to_bytes(),
                dialog: None,
                awaiting_answer,
                ringing: false,
            },
            media,
            (law, codec),
            origin,
            trust,
        );
        session.session_timer = session_timer(
            request,
            self.config.sip.min_session_expires_s,
            self.now.instant,
        );
        // The engine's first outputs (the answer among them, whose SDP names the ports) wait
        // for the shell's word that the ports are bound: `MediaReport::Opened`.
        session.opening = Some(1);
        self.sessions.insert(key, Box::new(session));
        self.by_transaction.insert(transaction, key);
        self.admission().call_started(source.address.ip());
        Ok(())
    }

    /// The caller's leg of the media relay.
    fn caller_leg(
        &self,
        key: u64,
        law: Law,
        audio: &NegotiatedAudio,
        source: &Peer,
        random: u64,
    ) -> LegConfig {
        let mut caller_leg = leg_config(
            law,
            audio,
            ssrc_for(key, Side::A, random),
            self.inactivity(),
            true,
            media_sources(self.config.rtp.strict_media_sources, audio, source),
        );
        caller_leg.prompt_wait = Duration::from_millis(self.config.rtp.prompt_wait_ms);
        caller_leg
    }

    /// The shell bound a call's ports: a new call's engine goes on (its answer can name them).
    fn media_opened(&mut self, key: u64) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        if session.opening.take().is_some() {
            self.run_outputs(key);
        }
    }

    /// A new call's port `busy` is held by another program: it is set aside for a while and
    /// the call, not answered yet, moves to other ports (its answer is made again for them).
    /// False when the call was answered already, or has had its tries.
    fn reopen_media(&mut self, key: u64, busy: u16) -> bool {
        let Some(session) = self.sessions.get(&key) else {
            return false;
        };
        let Some(tries) = session.opening.filter(|tries| *tries < OPEN_TRIES) else {
            return false;
        };
        // The INVITE's offer parsed when the call began; it is kept until the answer.
        let offer = Some(&session.caller.invite.body)
            .filter(|body| !body.is_empty())
            .and_then(|body| SessionDescription::parse(body).ok());
        let codecs = caller_codecs(&session.access, &self.config);
        let (law, source) = (session.law, session.caller.peer);
        // The tried ports first: the busy one aside, the other pair free for the next draw.
        let tried = self
            .sessions
            .get_mut(&key)
            .and_then(|session| session.media.take());
        if let Some(tried) = tried {
            warn!(
                call = key,
                port = busy,
                "an RTP port is held by another program: set aside, the call takes others"
            );
            if tried.keep_only(busy, &mut self.ports) {
                self.set_port_aside(busy);
            } else {
                tried.release(&mut self.ports);
            }
        }
        let random = self.random_u64();
        let Ok(media) = self.allocate_ports(random) else {
            return false;
        };
        let local = self.local_audio(media.port(Side::A), codecs);
        let mut origin = SessionOrigin::new(u64::from(media.port(Side::A)), self.advertised);
        let Ok((answer, audio, awaiting_answer)) =
            negotiate_with_caller(offer.as_ref(), &local, &mut origin)
        else {
            media.release(&mut self.ports);
            return false;
        };
        let caller_leg = self.caller_leg(key, law, &audio, &source, random);
        let Some(session) = self.sessions.get_mut(&key) else {
            media.release(&mut self.ports);
            return false;
        };
        session.media = Some(media);
        session.opening = Some(tries + 1);
        session.caller_origin = origin;
        session.caller.answer = answer.to_bytes();
        session.caller.awaiting_answer = awaiting_answer;
        self.open_caller_media(key, media, caller_leg);
        true
    }

    /// Asks the shell to bind a call's ports and set up its caller leg.
    fn open_caller_media(&mut self, key: u64, media: MediaPorts, caller_leg: LegConfig) {
        self.media_command(
            key,
            MediaCommand::Open {
                address: self.advertised,
                ports: media.numbers(),
                inactivity: self.inactivity(),
            },
        );
        self.media_command(key, MediaCommand::SetLeg(Side::A, caller_leg));
    }

    fn inactivity(&self) -> Duration {
        Duration::from_millis(self.config.rtp.inactivity_timeout_ms)
    }

    pub(crate) fn local_audio(&self, port: u16, codecs: Vec<Codec>) -> LocalAudio {
        LocalAudio {
            address: self.advertised,
            port,
            codecs,
            telephone_event: Some(TELEPHONE_EVENT),
            ptime: 20,
            direction: Direction::SendRecv,
        }
    }

    /// Feeds one input to a call and acts on everything it outputs.
    pub(crate) fn feed(&mut self, key: u64, input: Input) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        session.engine.handle_input(input, self.now.instant);
        self.run_outputs(key);
    }

    /// Calls whose deadline came: each is handled, then armed with its next deadline.
    pub(crate) fn call_timeouts(&mut self, now: Instant) {
        while let Some(key) = self.call_deadlines.pop_due(now) {
            let Some(session) = self.sessions.get_mut(&key) else {
                continue;
            };
            if session.engine.poll_timeout().is_some_and(|due| due <= now) {
                session.engine.handle_timeout(now);
                self.run_outputs(key);
            }
            self.check_trying_deadline(key, now);
            self.check_session_timer(key, now);
            self.check_caller_leg_cover(key, now);
            self.arm_timer(key);
        }
    }

    /// A carrier that has not even said 100 Trying in time is treated as not answering.
    fn check_trying_deadline(&mut self, key: u64, now: Instant) {
        let Some(outgoing) = self.current_outgoing_mut(key) else {
            return;
        };
        if outgoing
            .trying_deadline
            .is_none_or(|deadline| deadline > now)
        {
            return;
        }
        outgoing.trying_deadline = None;
        info!(call = key, carrier = %outgoing.target.carrier, "no provisional response in time");
        let (transaction, peer) = (outgoing.transaction, outgoing.target.peer);
        // A CANCEL waits in the layer for a provisional response; a late 2xx is hung up.
        let _ = self.layer.send_cancel(transaction, now);
        self.abandoned_peers.insert(transaction, peer);
        self.carrier_failed(key, None);
    }

    pub(crate) fn run_outputs(&mut self, key: u64) {
        loop {
            let Some(session) = self.sessions.get_mut(&key) else {
                return;
            };
            let Some(output) = session.engine.poll_output() else {
                break;
            };
            self.act(key, output);
        }
        self.arm_timer(key);
    }

    /// Arms the call's next deadline in place of whatever was armed (an ended call: none).
    fn arm_timer(&mut self, key: u64) {
        let due = self
            .sessions
            .get(&key)
            .and_then(|session| session.next_deadline());
        self.call_deadlines.set(key, due);
    }

    fn act(&mut self, key: u64, output: Output) {
        match output {
            Output::AnswerCaller => self.answer_caller(key),
            Output::RingCaller => self.ring_caller(key),
            Output::Play {
                playback,
                prompts,
                barge_in,
            } => self.play(key, playback, &prompts, barge_in),
            Output::PlayTone { playback, tone } => self.play_tone(key, playback, tone),
            Output::StopPlayback { .. } => self.media(key, MediaCommand::Stop),
            Output::LookupByCallerId {
                caller_id,
                remembered_language,
            } => {
                let request = LedgerRequest::LookupCallerId {
                    caller_id,
                    remembered_language,
                };
                self.ledger_request(key, request)
            }
            Output::LookupByPin { pin } => self.lookup_pin(key, pin, false),
            Output::LookupAgentByPin { pin } => self.lookup_pin(key, pin, true),
            Output::RetailRecharge {
                agent,
                number,
                amount_micros,
                sequence,
            } => self.retail_recharge(key, agent, number, amount_micros, sequence),
            Output::LookupLastCall { account } => {
                self.ledger_request(key, LedgerRequest::LastCall { account })
            }
            Output::PinFailed { .. } => self.pin_failed(key),
            Output::LookupStoredNumber { account, slot } => {
                self.ledger_request(key, LedgerRequest::StoredNumber { account, slot })
            }
            Output::StoreSpeedDial {
                account,
                slot,
                number,
            } => {
                let now_ms = self.now.epoch_ms;
                let request = LedgerRequest::StoreSpeedDial {
                    account,
                    slot,
                    number,
                    now_ms,
                };
                self.ledger_request(key, request)
            }
            Output::RedeemVoucher { account, code } => self.redeem_voucher(key, account, code),
            Output::IssuePortalCode { account, caller_id } => {
                let now_ms = self.now.epoch_ms;
                let minutes = self.config.portal.claim_minutes.clamp(1, 24 * 60);
                let lifetime_ms = i64::try_from(minutes * 60_000).unwrap_or(i64::MAX);
                let request = LedgerRequest::PortalCode {
                    account,
                    caller_id,
                    expires_at_ms: now_ms.saturating_add(lifetime_ms),
                    now_ms,
                };
                self.ledger_request(key, request)
            }
            Output::ChangePin { card, new_pin } => {
                self.ledger_request(key, LedgerRequest::ChangePin { card, new_pin })
            }
            Output::RememberLanguage {
                account,
                caller_id,
                language,
            } => {
                let now_ms = self.now.epoch_ms;
                let request = LedgerRequest::RememberLanguage {
                    account,
                    caller_id,
                    language,
                    now_ms,
                };
                self.ledger_request(self.no_call_key(), request)
            }
            Output::Authorize {
                attempt,
                account,
                card,
                destination,
            } => self.authorize(key, attempt, account, card, destination),
            // Routed by the E.164 number the attempt was rated with.
            Output::PlaceCall { attempt, .. } => self.place_call(key, attempt),
            Output::CancelCarrier { release, .. } => {
                self.cancel_carrier(key, &release.reason_header)
            }
            Output::HangUpCarrier { release, .. } => {
                self.hang_up_carrier(key, &release.reason_header)
            }
            Output::Bridge { mode, .. } => {
                self.media(key, MediaCommand::Bridge(true));
                debug!(call = key, ?mode, "bridged");
            }
            Output::Unbridge { .. } => self.media(key, MediaCommand::Bridge(false)),
            Output::HangUpCaller { release } => self.hang_up_caller(key, &release),
            Output::Settle(settlement) => {
                if let Some(session) = self.sessions.get_mut(&key) {
                    session.settlement = Some(settlement);
                }
            }
            Output::AttemptRecord(record) => self.settle(key, record),
            Output::CallRecord(record) => self.finish(key, &record),
        }
    }

    fn media(&mut self, key: u64, command: MediaCommand) {
        if self.sessions.get(&key).is_some_and(|s| s.media.is_some()) {
            self.media_command(key, command);
        }
    }

    /// 183 with our SDP: the caller hears prompts and ringback as early media and is not
    /// answered yet. A caller that sent no offer (delayed offer) cannot get our SDP in an
    /// unreliable 183 (RFC 3261 §13.2.1): it is answered at once, as every caller was before.
    fn ring_caller(&mut self, key: u64) {
        let Some(session) = self.sessions.get(&key) else {
            return;
        };
        if session.callback.is_some() || session.caller.dialog.is_some() {
            return;
        }
        if session.caller.awaiting_answer.is_some() {
            self.answer_caller(key);
            return;
        }
        let caller = &session.caller;
        let mut response = Response::for_request(&caller.invite, 183, "Session Progress");
        response.set_to_tag(&caller.local_tag);
        response
            .headers
            .push("Contact", &self.contact(caller.peer.transport));
        response.headers.push("Allow", ALLOW);
        response.headers.push("Content-Type", "application/sdp");
        response.body = caller.answer.clone();
        let transaction = caller.transaction;
        if let Some(session) = self.sessions.get_mut(&key) {
            session.caller.ringing = true;
        }
        self.respond(transaction, response);
    }

    fn answer_caller(&mut self, key: u64) {
        if let Some(session) = self.sessions.get_mut(&key) {
            session.caller.ringing = false;
        }
        let Some(session) = self.sessions.get(&key) else {
            return;
        };
        if session.callback.is_some() || session.caller.dialog.is_some() {
            // We placed this leg, or it was answered already.
            return;
        }
        let caller = &session.caller;
        let mut response = Response::for_request(&caller.invite, 200, "OK");
        response.set_to_tag(&caller.local_tag);
        response
            .headers
            .push("Contact", &self.contact(caller.peer.transport));
        response.headers.push("Allow", ALLOW);
        add_session_timer(&mut response, session.session_timer);
        response.headers.push("Content-Type", "application/sdp");
        response.body = caller.answer.clone();
        let (transaction, peer) = (caller.transaction, caller.peer);
        let dialog = match Dialog::uas(&caller.invite, &response) {
            Ok(dialog) => dialog,
            Err(error) => {
                warn!(call = key, %error, "cannot create the caller's dialog");
                self.respond(
                    transaction,
                    Response::for_request(&caller.invite, 400, "Bad Request"),
                );
                self.feed(key, Input::CallerHungUp);
                return;
            }
        };
        let id = self.dialogs.insert(dialog);
        let _ =
            self.dialogs
                .start_2xx_retransmission(&id, response.clone(), peer, self.now.instant);
        self.respond(transaction, response);
        self.by_dialog.insert(id.clone(), key);
        if let Some(session) = self.sessions.get_mut(&key) {
            session.caller.dialog = Some(id);
            // Answered: every later request and response of the caller's leg is built from
            // the dialog. The INVITE's headers and SDP would be kept for the whole call for
            // nothing (issue 19: memory a live call); its request line stays.
            session.caller.invite.headers = talktime_sip::Headers::new();
            session.caller.invite.body = Vec::new();
            session.caller.answer = Vec::new();
        }
    }

    /// Whether the caller's codec can carry our audio (G.711); prompts and tones to a G.729
    /// caller finish at once, unheard.
    fn caller_hears_prompts(&mut self, key: u64, playback: PlaybackId) -> bool {
        let g711 = self
            .sessions
            .get(&key)
            .is_none_or(|session| session.codec != Codec::G729);
        if !g711 {
            self.deferred
                .push_back((key, Input::PlaybackFinished { playback }));
        }
        g711
    }

    fn play(&mut self, key: u64, playback: PlaybackId, prompts: &[Prompt], barge_in: bool) {
        if !self.caller_hears_prompts(key, playback) {
            return;
        }
        // Prompt names only (amounts and durations, never a PIN, a number or a code).
        debug!(call = key, language = prompts.first().map_or("", |p| p.language.code()), prompts = ?loggable_names(prompts), "playing");
        let items: Vec<PlayItem> = prompts
            .iter()
            .filter_map(|prompt| {
                let name = format!("{}/{}", prompt.language.code(), prompt.name);
                let found = self.prompts.get(&name);
                if found.is_none() {
                    warn!(prompt = %name, "prompt missing; skipped");
                }
                found.map(PlayItem::Prompt)
            })
            .collect();
        if items.is_empty() {
            self.deferred
                .push_back((key, Input::PlaybackFinished { playback }));
            return;
        }
        self.media(
            key,
            MediaCommand::Play {
                playback: playback.0,
                items,
                barge_in,
            },
        );
    }

    fn play_tone(&mut self, key: u64, playback: PlaybackId, tone: Tone) {
        if !self.caller_hears_prompts(key, playback) {
            return;
        }
        let item = match tone {
            Tone::Ringback => talktime_media::Tone::ringback_us(RINGBACK_LENGTH),
            Tone::WarningBeep => {
                info!(call = key, "credit warning played");
                talktime_media::Tone::warning_beep()
            }
        };
        self.media(
            key,
            MediaCommand::Play {
                playback: playback.0,
                items: vec![PlayItem::Tone(item)],
                barge_in: false,
            },
        );
    }

    pub(crate) fn handle_media_report(&mut self, key: u64, report: MediaReport) {
        if self.tone_report(key, report) {
            return;
        }
        let input = match report {
            MediaReport::Opened => {
                self.media_opened(key);
                return;
            }
            MediaReport::OpenFailed { busy } => {
                if busy.is_some_and(|busy| self.reopen_media(key, busy)) {
                    return;
                }
                // No ports to be had: the engine goes on as if they were, and is ended at
                // once (answered, then hung up, billed nothing, its CDR says why).
                self.media_opened(key);
                warn!(
                    call = key,
                    "the call's RTP ports could not be opened; ending it"
                );
                Input::Abort {
                    cause: talktime_engine::DisconnectCause::SystemError,
                }
            }
            MediaReport::Digit(digit) => {
                // Which key, never: the digits of a call are its PIN and its number.
                tracing::trace!(call = key, "digit");
                Input::Digit(digit)
            }
            MediaReport::PlaybackFinished(playback) => Input::PlaybackFinished {
                playback: PlaybackId(playback),
            },
            MediaReport::Inactive { last_packet, side } => {
                let bridged = self
                    .current_outgoing(key)
                    .is_some_and(|outgoing| outgoing.dialog.is_some());
                // Silence while the IVR waits is the IVR's business (its own timeouts).
                if !bridged {
                    return;
                }
                debug!(call = key, ?side, "media inactive");
                Input::MediaInactive { last_packet }
            }
        };
        self.feed(key, input);
    }

    pub(crate) fn handle_ledger_reply(&mut self, key: u64, reply: LedgerReply) {
        if self.subscriber_reply(key, &reply) {
            return;
        }
        if self.callbacks.contains_key(&key) {
            self.callback_ledger_reply(key, reply);
            return;
        }
        match reply {
            LedgerReply::Done | LedgerReply::Subscriber(_) => {}
            // A voucher code is guessed like a PIN: its answers wait alike under the alarm.
            LedgerReply::Input(
                input @ (Input::PinLookup(_) | Input::VoucherRedeemed(_) | Input::PinChanged(_)),
            ) => self.pin_answered(key, input),
            LedgerReply::Input(input) => self.feed(key, input),
            LedgerReply::Authorized {
                attempt,
                rated,
                reservation,
            } => {
                let live = self
                    .sessions
                    .get(&key)
                    .is_some_and(|session| !session.settled.contains(&attempt));
                if !live {
                    // The call or the attempt ended while the credit was being reserved: the
                    // attempt was settled without it, so give the hold back now.
                    self.release_late_reservation(reservation);
                    return;
                }
                let authorization = rated.authorization.clone();
                info!(
                    call = key,
                    limit_ms = authorization.limit_ms,
                    announced_ms = authorization.announced_limit_ms,
                    reserved_micros = authorization.reserved_micros,
                    limit_cause = authorization.limit_cause.as_str(),
                    "authorized"
                );
                self.caller_leg_covered(key, attempt, authorization.limit_ms);
                if let Some(session) = self.sessions.get_mut(&key) {
                    session.rated = Some((attempt, *rated));
                }
                self.feed(
                    key,
                    Input::Authorized {
                        attempt,
                        authorization,
                    },
                );
            }
        }
    }

    fn release_late_reservation(&mut self, reservation: String) {
        let now_ms = self.now.epoch_ms;
        self.ledger_request(
            self.no_call_key(),
            LedgerRequest::Release {
                reservation,
                now_ms,
            },
        );
    }

    /// The keys wrong PINs are counted under: the caller ID, if any, and the source address
    /// unless it is a gateway trusted for caller IDs that sent one (an anonymous or rotating
    /// caller ID cannot guess PINs without limit; a busy gateway is not locked out for one
    /// customer's typos).
    fn pin_guess_keys(&self, key: u64) -> Vec<Pii<String>> {
        let Some(session) = self.sessions.get(&key) else {
            return Vec::new();
        };
        let address = session.caller.peer.address.ip();
        let vouched = session.caller_id.is_some() && session.trust.trusted_caller_id;
        let source = (!vouched).then(|| Pii::new(format!("{SOURCE_KEY}{address}")));
        session.caller_id.iter().cloned().chain(source).collect()
    }

    fn lookup_pin(&mut self, key: u64, pin: Pii<String>, agent: bool) {
        let guess_keys = self.pin_guess_keys(key);
        let caller_id = self
            .sessions
            .get(&key)
            .and_then(|session| session.caller_id.clone());
        let now_ms = self.now.epoch_ms;
        self.ledger_request(
            key,
            LedgerRequest::LookupPin {
                pin,
                caller_id,
                guess_keys,
                now_ms,
                agent,
            },
        );
    }

    /// A retail recharge, keyed by the call and its sequence in the call: the ledger moves
    /// each once, however often it is asked.
    fn retail_recharge(
        &mut self,
        key: u64,
        agent: AccountId,
        number: Pii<String>,
        amount_micros: i64,
        sequence: u32,
    ) {
        let Some(call_id) = self.sessions.get(&key).map(|s| s.call_id.clone()) else {
            return;
        };
        let now_ms = self.now.epoch_ms;
        let request = LedgerRequest::RetailRecharge {
            agent,
            number,
            amount_micros,
            key: format!("retail:{call_id}#{sequence}"),
            now_ms,
        };
        self.ledger_request(key, request);
    }

    fn redeem_voucher(&mut self, key: u64, account: AccountId, code: Pii<String>) {
        let Some(call_id) = self.sessions.get(&key).map(|s| s.call_id.clone()) else {
            return;
        };
        let now_ms = self.now.epoch_ms;
        let request = LedgerRequest::RedeemVoucher {
            account,
            code,
            call_id,
            now_ms,
        };
        self.ledger_request(key, request);
    }

    fn pin_failed(&mut self, key: u64) {
        self.counters.pin_failures += 1;
        self.alarms().pin_failed(self.now.instant);
        let guess_keys = self.pin_guess_keys(key);
        let now_ms = self.now.epoch_ms;
        self.ledger_request(
            self.no_call_key(),
            LedgerRequest::PinFailed { guess_keys, now_ms },
        );
    }

    /// A PIN's answer, held back while the PIN alarm is on (see crate::alarms).
    fn pin_answered(&mut self, key: u64, input: Input) {
        let delay = self.alarms().pin_answer_delay(self.now.instant);
        if delay.is_zero() {
            self.feed(key, input);
        } else {
            self.counters.pin_answers_delayed += 1;
            let due = self.now.instant + delay;
            self.held_pin_answers.push_back((due, key, input));
        }
    }

    /// Gives the calls the PIN answers whose wait is over.
    pub(crate) fn release_pin_answers(&mut self, now: Instant) {
        while let Some((due, _, _)) = self.held_pin_answers.front() {
            if *due > now {
                break;
            }
            if let Some((_, key, input)) = self.held_pin_answers.pop_front() {
                self.feed(key, input);
            }
        }
    }

    fn authorize(
        &mut self,
        key: u64,
        attempt: AttemptId,
        account: talktime_engine::AccountId,
        card: Option<talktime_engine::CardId>,
        destination: Pii<String>,
    ) {
        let Some(session) = self.sessions.get(&key) else {
            return;
        };
        let number = match self.check_destination(&session.access, destination.expose()) {
            Ok(number) => number,
            Err(refusal) => {
                self.deferred
                    .push_back((key, Input::AuthorizationRefused { attempt, refusal }));
                return;
            }
        };
        let reservation = reservation_key(&session.call_id, attempt);
        let toll_free = session.access.toll_free;
        let now_ms = self.now.epoch_ms;
        let beside = self.beside_caller_leg(key, attempt);
        self.ledger_request(
            key,
            LedgerRequest::Authorize {
                attempt,
                reservation,
                account,
                card,
                number,
                toll_free,
                now_ms,
                beside,
            },
        );
    }

    fn place_call(&mut self, key: u64, attempt: AttemptId) {
        let Some(session) = self.sessions.get(&key) else {
            return;
        };
        let rated = session
            .rated
            .as_ref()
            .filter(|(rated_attempt, _)| *rated_attempt == attempt)
            .map(|(_, rated)| rated);
        let sell = rated.and_then(|rated| rated.context.steps.first().map(|step| step.per_minute));
        let plan = rated
            .and_then(|rated| rated.dial_plan.clone())
            .unwrap_or_else(|| session.access.dial_plan.clone());
        let refuse_loss = rated.is_some_and(|rated| rated.refuse_loss)
            || self.config.billing.refuse_loss_making_routes;
        // The E.164 form authorization rated (an unrated attempt has no route).
        let number = rated.map(|rated| rated.number.clone()).unwrap_or_default();
        let targets = self.carrier_targets(&plan, &number, sell, refuse_loss);
        if let Some(session) = self.sessions.get_mut(&key) {
            session.buy_rates = targets
                .iter()
                .filter_map(|t| Some((t.carrier.clone(), t.buy_per_minute?)))
                .collect();
            session.carrier = Some(CarrierLeg {
                attempt,
                remaining: targets.into(),
                current: None,
            });
        }
        self.try_next_carrier(key, None);
    }

    /// Sends the INVITE to the next carrier of the route; with none left, reports the
    /// attempt failed with `last_status`.
    fn try_next_carrier(&mut self, key: u64, last_status: Option<u16>) {
        loop {
            let Some(session) = self.sessions.get_mut(&key) else {
                return;
            };
            let Some(leg) = session.carrier.as_mut() else {
                return;
            };
            let attempt = leg.attempt;
            let Some(target) = leg.remaining.pop_front() else {
                let sip_status = last_status.unwrap_or(503);
                self.feed(
                    key,
                    Input::CarrierFailed {
                        attempt,
                        sip_status,
                        failover: false,
                    },
                );
                return;
            };
            // Capacity is taken before the INVITE, so failover cannot exceed a carrier's
            // max_calls or calls_per_second.
            if !self.carrier_started(&target.carrier) {
                continue;
            }
            match self.invite_carrier(key, &target) {
                Ok(outgoing) => {
                    let carrier = outgoing.target.carrier.clone();
                    self.by_transaction.insert(outgoing.transaction, key);
                    if let Some(leg) = self.sessions.get_mut(&key).and_then(|s| s.carrier.as_mut())
                    {
                        leg.current = Some(outgoing);
                    }
                    self.feed(key, Input::CarrierTrying { attempt, carrier });
                    return;
                }
                Err(error) => {
                    self.carrier_ended(&target.carrier);
                    warn!(call = key, carrier = %target.carrier, %error, "cannot INVITE the carrier")
                }
            }
        }
    }

    fn invite_carrier(
        &mut self,
        key: u64,
        target: &CarrierTarget,
    ) -> Result<Outgoing, InviteError> {
        let session = self.sessions.get(&key).ok_or(InviteError::CallGone)?;
        let port = session
            .media
            .as_ref()
            .ok_or(InviteError::CallGone)?
            .port(Side::B);
        let codecs = vec![session.codec];
        let caller = target
            .caller_id
            .clone()
            .or_else(|| session.caller_id.as_ref().map(|c| c.expose().clone()))
            .unwrap_or_else(|| "anonymous".into());
        let delayed = self
            .config
            .carriers
            .iter()
            .any(|carrier| carrier.name == target.carrier && carrier.delayed_offer);
        let (invite, offer) = self.carrier_invite(target, port, codecs, &caller, !delayed)?;
        let (transaction, peer, invite) = self
            .send_request(invite, target.peer)
            .map_err(InviteError::Send)?;
        debug!(call = key, carrier = %target.carrier, transport = %peer.transport, "INVITE sent");
        crate::counters::Counters::add(&mut self.counters.carrier_attempts, target.carrier.clone());
        let trying_deadline = Some(self.now.instant + target.invite_timeout);
        let mut target = target.clone();
        target.peer = peer;
        Ok(Outgoing {
            target,
            invite,
            offer: Some(offer),
            transaction,
            dialog: None,
            trying_deadline,
            authenticated: false,
            abandoned: false,
            delayed,
            ack_body: None,
        })
    }

    /// An INVITE to a carrier target from `caller` with our offer on RTP `port` (in the body
    /// unless the carrier wants a delayed offer).
    pub(crate) fn carrier_invite(
        &mut self,
        target: &CarrierTarget,
        port: u16,
        codecs: Vec<Codec>,
        caller: &str,
        offer_in_body: bool,
    ) -> Result<(Request, SessionDescription), InviteError> {
        let mut origin = SessionOrigin::new(u64::from(port), self.advertised);
        let offer = talktime_sdp::offer(&self.local_audio(port, codecs), &mut origin);
        let uri_text = format!("sip:{}@{}", target.request_user, target.uri_host);
        let uri = Uri::parse(&uri_text).map_err(InviteError::Uri)?;
        let mut invite = Request::new(Method::Invite, uri);
        let local_host = self.sent_by(target.peer.transport);
        invite
            .headers
            .push("Via", &self.via_for(target.peer.transport));
        invite.headers.push("Max-Forwards", "70");
        let tag = self.layer.new_tag();
        invite
            .headers
            .push("From", &format!("<sip:{caller}@{local_host}>;tag={tag}"));
        invite.headers.push("To", &format!("<{uri_text}>"));
        let call_id = self.new_call_id("", &local_host);
        invite.headers.push("Call-ID", &call_id);
        invite.headers.push("CSeq", "1 INVITE");
        invite
            .headers
            .push("Contact", &self.contact(target.peer.transport));
        invite.headers.push("Allow", ALLOW);
        invite
            .headers
            .push("User-Agent", &self.config.sip.user_agent);
        if offer_in_body {
            invite.headers.push("Content-Type", "application/sdp");
            invite.body = offer.to_bytes();
        }
        Ok((invite, offer))
    }

    /// A response on a client transaction of a call (the carrier INVITE, BYE or CANCEL).
    pub(crate) fn carrier_response(
        &mut self,
        key: u64,
        transaction: TransactionId,
        response: Response,
    ) {
        let is_invite = response
            .cseq()
            .is_ok_and(|cseq| cseq.method == Method::Invite);
        if !is_invite {
            return;
        }
        if self.callback_response(key, transaction, &response) {
            return;
        }
        if let Some(session) = self.sessions.get(&key)
            && session.callback.is_some()
            && session.caller.transaction == transaction
        {
            // The caller leg's 2xx again (our ACK was lost): ACK it again.
            self.acknowledge_caller_leg(key, &response);
            return;
        }
        let current = self
            .current_outgoing(key)
            .filter(|outgoing| outgoing.transaction == transaction)
            .map(|outgoing| (outgoing.abandoned, outgoing.dialog.is_some()));
        let Some((abandoned, answered)) = current else {
            // A stray 2xx for an INVITE we gave up on: ACK and hang it up.
            if (200..300).contains(&response.status) {
                self.late_answer(transaction, &response);
            }
            return;
        };
        if response.status < 200
            && let Some(outgoing) = self.current_outgoing_mut(key)
        {
            outgoing.trying_deadline = None;
        }
        match response.status {
            100 => {}
            101..=199 if !abandoned => self.carrier_progress(key, &response),
            200..=299 if answered => self.acknowledge(key, &response),
            200..=299 if abandoned => self.late_answer(transaction, &response),
            200..=299 => self.carrier_answered(key, &response),
            401 | 407 if !abandoned && self.answer_challenge(key, &response) => {}
            status if status >= 300 => self.carrier_failed(key, Some(status)),
            _ => {}
        }
    }

    /// Re-sends the carrier INVITE with digest credentials (RFC 3261 §22.2); false when the
    /// carrier has none, this is a second challenge, or the challenge is unusable.
    fn answer_challenge(&mut self, key: u64, response: &Response) -> bool {
        let Some(outgoing) = self.current_outgoing(key) else {
            return false;
        };
        let Some(credentials) = outgoing.target.credentials.clone() else {
            return false;
        };
        if outgoing.authenticated {
            return false;
        }
        let (invite, peer) = (outgoing.invite.clone(), outgoing.target.peer);
        let Some((transaction, invite)) =
            self.invite_with_credentials(&invite, peer, &credentials, response)
        else {
            return false;
        };
        self.by_transaction.insert(transaction, key);
        let previous = self.current_outgoing_mut(key).map(|outgoing| {
            outgoing.invite = invite;
            outgoing.authenticated = true;
            std::mem::replace(&mut outgoing.transaction, transaction)
        });
        if let Some(previous) = previous {
            self.by_transaction.remove(&previous);
        }
        debug!(
            call = key,
            "carrier challenged; INVITE sent with credentials"
        );
        true
    }

    /// Sends `invite` again, its CSeq one up, answering `response`'s digest challenge with
    /// the carrier's credentials (RFC 3261 §22.2); the new transaction and request.
    pub(crate) fn invite_with_credentials(
        &mut self,
        invite: &Request,
        peer: Peer,
        (username, password): &(String, Pii<String>),
        response: &Response,
    ) -> Option<(TransactionId, Request)> {
        let mut invite = invite.clone();
        let uri = invite.uri.to_string();
        let cnonce = self.layer.new_tag();
        let (header, value) = crate::registration::digest_authorization(
            response,
            username,
            password.expose(),
            "INVITE",
            &uri,
            &cnonce,
        )?;
        let sequence = invite.cseq().map_or(1, |cseq| cseq.sequence) + 1;
        invite.headers.set("CSeq", &format!("{sequence} INVITE"));
        invite.headers.set(header, &value);
        invite.headers.set("Via", &self.via_for(peer.transport));
        let (transaction, _, invite) = self.send_request(invite, peer).ok()?;
        Some((transaction, invite))
    }

    fn carrier_progress(&mut self, key: u64, response: &Response) {
        let early_media = response.status == 183 && self.apply_carrier_sdp(key, response);
        let Some(attempt) = self.current_attempt(key) else {
            return;
        };
        self.feed(
            key,
            Input::CarrierProgress {
                attempt,
                early_media,
            },
        );
    }

    /// Points leg B's media at the carrier's SDP; false if it carried none we can use.
    fn apply_carrier_sdp(&mut self, key: u64, response: &Response) -> bool {
        if response.body.is_empty() {
            return false;
        }
        let Some(session) = self.sessions.get(&key) else {
            return false;
        };
        let Some(outgoing) = session
            .carrier
            .as_ref()
            .and_then(|leg| leg.current.as_ref())
        else {
            return false;
        };
        let Some(offer) = outgoing.offer.as_ref() else {
            return false;
        };
        let answer = match SessionDescription::parse(&response.body) {
            Ok(answer) => answer,
            Err(error) => {
                debug!(call = key, %error, "carrier SDP malformed");
                return false;
            }
        };
        let (audio, ack_body) = if outgoing.delayed {
            // Their SDP is the offer (only a 2xx's counts: an offer in a provisional needs
            // PRACK, which is not done).
            if response.status < 200 {
                return false;
            }
            let port = offer.media.first().map_or(0, |media| media.port);
            let codecs = vec![session.codec];
            let mut origin = SessionOrigin::new(u64::from(port), self.advertised);
            match talktime_sdp::answer(&answer, &self.local_audio(port, codecs), &mut origin) {
                Ok((ours, audio)) => (audio, Some(ours.to_bytes())),
                Err(error) => {
                    debug!(call = key, %error, "carrier's delayed offer not acceptable");
                    return false;
                }
            }
        } else {
            match talktime_sdp::process_answer(offer, &answer) {
                Ok(audio) => (audio, None),
                Err(error) => {
                    debug!(call = key, %error, "carrier SDP not acceptable");
                    return false;
                }
            }
        };
        let law = law_of(&audio).unwrap_or(session.law);
        let sources = media_sources(
            self.config.rtp.strict_media_sources,
            &audio,
            &outgoing.target.peer,
        );
        let random = self.random_u64();
        self.media(
            key,
            MediaCommand::SetLeg(
                Side::B,
                leg_config(
                    law,
                    &audio,
                    ssrc_for(key, Side::B, random),
                    self.inactivity(),
                    false,
                    sources,
                ),
            ),
        );
        if let Some(body) = ack_body
            && let Some(outgoing) = self.current_outgoing_mut(key)
        {
            outgoing.ack_body = Some(body);
        }
        true
    }

    fn carrier_answered(&mut self, key: u64, response: &Response) {
        self.apply_carrier_sdp(key, response);
        let Some(session) = self.sessions.get(&key) else {
            return;
        };
        let Some(outgoing) = session
            .carrier
            .as_ref()
            .and_then(|leg| leg.current.as_ref())
        else {
            return;
        };
        let dialog = match Dialog::uac(&outgoing.invite, response) {
            Ok(dialog) => dialog,
            Err(error) => {
                warn!(call = key, %error, "cannot create the carrier dialog");
                return;
            }
        };
        let carrier = outgoing.target.carrier.clone();
        let id = self.dialogs.insert(dialog);
        self.by_dialog.insert(id.clone(), key);
        if let Some(outgoing) = self.current_outgoing_mut(key) {
            outgoing.dialog = Some(id);
            // The carrier's leg goes on in its dialog (a late 2xx's is built from the client
            // transaction's copy): the INVITE's headers and SDP are not kept for the call.
            outgoing.invite.headers = talktime_sip::Headers::new();
            outgoing.invite.body = Vec::new();
            outgoing.offer = None;
        }
        crate::counters::Counters::add(&mut self.counters.carrier_answers, carrier);
        let answered_at = self.now.epoch_ms;
        if let Some(session) = self.sessions.get_mut(&key) {
            session.answered_ms.get_or_insert(answered_at);
        }
        self.acknowledge(key, response);
        if let Some(attempt) = self.current_attempt(key) {
            self.feed(key, Input::CarrierAnswered { attempt });
            self.checkpoint_answer(key);
        }
    }

    /// Writes on the reservation what a restart needs to bill this answered call and end both
    /// legs if this process dies (crate::recovery).
    fn checkpoint_answer(&mut self, key: u64) {
        let answered_at_ms = self.now.epoch_ms;
        let Some(session) = self.sessions.get(&key) else {
            return;
        };
        let (Some((attempt, rated)), Some(outgoing)) =
            (session.rated.as_ref(), self.current_outgoing(key))
        else {
            return;
        };
        let legs = [
            (session.caller.dialog.clone(), session.caller.peer),
            (outgoing.dialog.clone(), outgoing.target.peer),
        ];
        let byes = self.recovery_byes(&legs);
        let checkpoint = Checkpoint {
            account: rated.account.0,
            card: rated.card.map(|card| card.0),
            destination: rated.number.clone(),
            toll_free: rated.toll_free,
            rated_at_ms: rated.rated_at_ms,
            caller_id: session.caller_id.as_ref().map(|id| id.expose().clone()),
            access_number: session.access.number.clone(),
            carrier: outgoing.target.carrier.clone(),
            started_ms: session.started_ms,
            buy_per_minute: session
                .buy_rates
                .get(&outgoing.target.carrier)
                .map(ToString::to_string),
            byes,
        };
        let reservation = reservation_key(&session.call_id, *attempt);
        self.write_checkpoint(reservation, answered_at_ms, &checkpoint);
    }

    /// Writes on a reservation what a restart needs to bill its answered leg.
    pub(crate) fn write_checkpoint(
        &mut self,
        reservation: String,
        answered_at_ms: i64,
        checkpoint: &Checkpoint,
    ) {
        let Ok(checkpoint) = serde_json::to_string(checkpoint) else {
            return;
        };
        self.ledger_request(
            self.no_call_key(),
            LedgerRequest::Checkpoint {
                reservation,
                answered_at_ms,
                checkpoint,
            },
        );
    }

    /// A ready BYE for each leg, its CSeq well ahead, for recovery to send if we die.
    pub(crate) fn recovery_byes(&self, legs: &[(Option<DialogId>, Peer)]) -> Vec<LegBye> {
        let reason = talktime_engine::DisconnectCause::NodeLost.reason_header();
        let mut byes = Vec::with_capacity(legs.len());
        for (id, peer) in legs {
            let Some(mut dialog) = id.as_ref().and_then(|id| self.dialogs.get(id)).cloned() else {
                continue;
            };
            dialog.skip_local_sequence(RECOVERY_CSEQ_GAP);
            let mut bye = dialog.new_request(Method::Bye, &self.via_for(peer.transport));
            bye.headers.push("Reason", &reason);
            byes.push(LegBye::new(&bye, *peer));
        }
        byes
    }

    /// ACKs the carrier's 2xx (again, for a retransmission).
    fn acknowledge(&mut self, key: u64, response: &Response) {
        let Some(outgoing) = self.current_outgoing(key) else {
            return;
        };
        let (Some(id), peer) = (outgoing.dialog.clone(), outgoing.target.peer) else {
            return;
        };
        let outgoing_ack_body = outgoing.ack_body.clone();
        let via = self.via_for(peer.transport);
        let Some(dialog) = self.dialogs.get_mut(&id) else {
            return;
        };
        if let Ok(mut ack) = dialog.ack(response, &via) {
            if let Some(body) = &outgoing_ack_body {
                ack.headers.push("Content-Type", "application/sdp");
                ack.body = body.clone();
            }
            let _ = self
                .layer
                .send_stateless(talktime_sip::Message::Request(ack), peer);
        }
    }

    /// ACKs a callback's caller leg 2xx again.
    pub(crate) fn acknowledge_caller_leg(&mut self, key: u64, response: &Response) {
        let Some(session) = self.sessions.get(&key) else {
            return;
        };
        let (Some(id), peer) = (session.caller.dialog.clone(), session.caller.peer) else {
            return;
        };
        let via = self.via_for(peer.transport);
        if let Some(dialog) = self.dialogs.get_mut(&id)
            && let Ok(ack) = dialog.ack(response, &via)
        {
            let _ = self
                .layer
                .send_stateless(talktime_sip::Message::Request(ack), peer);
        }
    }

    /// A 2xx we no longer want (it crossed our CANCEL): ACK it and send BYE at once.
    pub(crate) fn late_answer(&mut self, transaction: TransactionId, response: &Response) {
        let Some(invite) = self.layer.request(transaction).cloned() else {
            return;
        };
        let Some(peer) = self.carrier_peer_of(transaction) else {
            return;
        };
        let Ok(mut dialog) = Dialog::uac(&invite, response) else {
            return;
        };
        let via = self.via_for(peer.transport);
        if let Ok(ack) = dialog.ack(response, &via) {
            let _ = self
                .layer
                .send_stateless(talktime_sip::Message::Request(ack), peer);
        }
        let bye = dialog.new_request(Method::Bye, &via);
        let _ = self.send_request(bye, peer);
    }

    fn carrier_peer_of(&self, transaction: TransactionId) -> Option<Peer> {
        self.abandoned_peers.get(&transaction).copied()
    }

    fn carrier_failed(&mut self, key: u64, status: Option<u16>) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let Some(leg) = session.carrier.as_mut() else {
            return;
        };
        let Some(outgoing) = leg.current.take() else {
            return;
        };
        let attempt = leg.attempt;
        let more = !leg.remaining.is_empty();
        self.by_transaction.remove(&outgoing.transaction);
        self.carrier_ended(&outgoing.target.carrier);
        if outgoing.abandoned {
            return;
        }
        let failover = more && self.fails_over(&outgoing.target.carrier, status);
        info!(call = key, carrier = %outgoing.target.carrier, ?status, failover, "carrier attempt failed");
        self.feed(
            key,
            Input::CarrierFailed {
                attempt,
                sip_status: status.unwrap_or(408),
                failover,
            },
        );
        if failover {
            self.try_next_carrier(key, status);
        } else if let Some(leg) = self.sessions.get_mut(&key).and_then(|s| s.carrier.as_mut()) {
            leg.remaining.clear();
        }
    }

    /// A carrier INVITE got no final response (Timer B) or could not be sent.
    pub(crate) fn carrier_timeout(&mut self, key: u64, transaction: TransactionId) {
        if self.callback_transaction_failed(key) {
            return;
        }
        let is_current = self.current_outgoing(key).is_some_and(|outgoing| {
            outgoing.transaction == transaction && outgoing.dialog.is_none()
        });
        if is_current {
            self.carrier_failed(key, None);
        }
    }

    /// Points everything that knew `old` at `new` (the same request resent over UDP).
    pub(crate) fn remap_transaction(&mut self, old: TransactionId, new: TransactionId, peer: Peer) {
        if let Some(carrier) = self.health_checks.remove(&old) {
            self.health_checks.insert(new, carrier);
        }
        self.registrations.remap(old, new);
        if let Some(abandoned) = self.abandoned_peers.remove(&old) {
            self.abandoned_peers.insert(new, abandoned);
        }
        let Some(key) = self.by_transaction.remove(&old) else {
            return;
        };
        self.by_transaction.insert(new, key);
        if let Some(outgoing) = self.current_outgoing_mut(key)
            && outgoing.transaction == old
        {
            outgoing.transaction = new;
            outgoing.target.peer = peer;
        }
    }

    /// The carrier INVITE in progress (or answered) for a call.
    fn current_outgoing(&self, key: u64) -> Option<&Outgoing> {
        self.sessions.get(&key)?.carrier.as_ref()?.current.as_ref()
    }

    fn current_outgoing_mut(&mut self, key: u64) -> Option<&mut Outgoing> {
        self.sessions
            .get_mut(&key)?
            .carrier
            .as_mut()?
            .current
            .as_mut()
    }

    fn current_attempt(&self, key: u64) -> Option<AttemptId> {
        self.sessions
            .get(&key)?
            .carrier
            .as_ref()
            .map(|leg| leg.attempt)
    }

    fn cancel_carrier(&mut self, key: u64, reason: &str) {
        let Some(outgoing) = self
            .sessions
            .get_mut(&key)
            .and_then(|s| s.carrier.as_mut())
            .and_then(|leg| {
                leg.remaining.clear();
                leg.current.as_mut()
            })
        else {
            return;
        };
        if outgoing.dialog.is_some() {
            self.hang_up_carrier(key, reason);
            return;
        }
        outgoing.abandoned = true;
        let (transaction, peer, carrier) = (
            outgoing.transaction,
            outgoing.target.peer,
            outgoing.target.carrier.clone(),
        );
        self.abandoned_peers.insert(transaction, peer);
        if let Err(error) = self.layer.send_cancel(transaction, self.now.instant) {
            debug!(call = key, %error, "cannot CANCEL");
        }
        self.carrier_ended(&carrier);
        if let Some(leg) = self.sessions.get_mut(&key).and_then(|s| s.carrier.as_mut()) {
            leg.current = None;
        }
    }

    fn hang_up_carrier(&mut self, key: u64, reason: &str) {
        let Some(outgoing) = self
            .sessions
            .get_mut(&key)
            .and_then(|s| s.carrier.as_mut())
            .and_then(|leg| leg.current.take())
        else {
            return;
        };
        self.by_transaction.remove(&outgoing.transaction);
        self.carrier_ended(&outgoing.target.carrier);
        if let Some(id) = outgoing.dialog {
            self.send_bye(&id, outgoing.target.peer, reason);
        }
        self.media(key, MediaCommand::Bridge(false));
    }

    fn hang_up_caller(&mut self, key: u64, release: &talktime_engine::Release) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let peer = session.caller.peer;
        if std::mem::take(&mut session.caller.ringing) {
            // Never answered: the INVITE gets its final answer, and the caller's own carrier
            // bills nothing.
            let (status, text) = release.cause.unanswered_status();
            let mut response = Response::for_request(&session.caller.invite, status, text);
            response.set_to_tag(&session.caller.local_tag);
            response.headers.push("Reason", &release.reason_header);
            let transaction = session.caller.transaction;
            self.respond(transaction, response);
        } else if let Some(id) = session.caller.dialog.take() {
            self.send_bye(&id, peer, &release.reason_header);
        }
    }

    /// BYE in a dialog with a Reason header, and forget the dialog.
    fn send_bye(&mut self, id: &DialogId, peer: Peer, reason: &str) {
        let via = self.via_for(peer.transport);
        self.by_dialog.remove(id);
        let Some(dialog) = self.dialogs.get_mut(id) else {
            return;
        };
        let mut bye = dialog.new_request(Method::Bye, &via);
        bye.headers.push("Reason", reason);
        self.dialogs.remove(id);
        if let Err(error) = self.send_request(bye, peer) {
            warn!(%error, "cannot send BYE");
        }
    }

    /// A request inside one of a call's dialogs.
    pub(crate) fn call_request(
        &mut self,
        key: u64,
        transaction: TransactionId,
        request: Request,
        id: &DialogId,
    ) {
        let Some(session) = self.sessions.get(&key) else {
            return;
        };
        let from_caller = session.caller.dialog.as_ref() == Some(id);
        match request.method {
            Method::Bye => {
                self.respond(transaction, Response::for_request(&request, 200, "OK"));
                self.by_dialog.remove(id);
                self.dialogs.remove(id);
                if let (Some(cause), Some(session)) = (
                    q850_of(request.reason_header()),
                    self.sessions.get_mut(&key),
                ) {
                    let party = if from_caller {
                        talktime_engine::Party::Caller
                    } else {
                        talktime_engine::Party::Carrier
                    };
                    session.peer_q850 = Some((party, cause));
                }
                if from_caller {
                    if let Some(session) = self.sessions.get_mut(&key) {
                        session.caller.dialog = None;
                    }
                    self.feed(key, Input::CallerHungUp);
                } else {
                    self.carrier_hung_up(key);
                }
            }
            Method::Invite => self.reinvite(key, transaction, &request, id, from_caller),
            Method::Info => {
                self.respond(transaction, Response::for_request(&request, 200, "OK"));
                if from_caller && let Some(digit) = dtmf_relay_digit(&request.body) {
                    self.feed(key, Input::Digit(digit));
                }
            }
            Method::Ack => self.caller_acked(key, &request, id),
            Method::Update => {
                if from_caller {
                    self.refresh_session_timer(key);
                }
                self.respond(transaction, Response::for_request(&request, 200, "OK"));
            }
            Method::Options => {
                self.respond(transaction, Response::for_request(&request, 200, "OK"));
            }
            _ => self.respond(
                transaction,
                Response::for_request(&request, 405, "Method Not Allowed"),
            ),
        }
    }

    /// A re-INVITE on either leg (hold, resume, a new address): answer it from our side of
    /// the leg, point that leg's media at the new address, and pause dead-media detection
    /// while the far end holds the call (it may legitimately send nothing).
    fn reinvite(
        &mut self,
        key: u64,
        transaction: TransactionId,
        request: &Request,
        id: &DialogId,
        from_caller: bool,
    ) {
        if from_caller {
            self.refresh_session_timer(key);
        }
        let side = if from_caller { Side::A } else { Side::B };
        let Some(session) = self.sessions.get(&key) else {
            return;
        };
        let peer = if from_caller {
            session.caller.peer
        } else {
            request_peer(session)
        };
        let (law, codec) = (session.law, session.codec);
        let Some(port) = session.media.as_ref().map(|media| media.port(side)) else {
            return;
        };
        let offer = match SessionDescription::parse(&request.body) {
            Ok(offer) if !request.body.is_empty() => offer,
            _ => {
                let response = Response::for_request(request, 488, "Not Acceptable Here");
                self.respond(transaction, response);
                return;
            }
        };
        let local = self.local_audio(port, vec![codec]);
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let mut fallback_origin = SessionOrigin::new(u64::from(port), self.advertised);
        let origin = if from_caller {
            &mut session.caller_origin
        } else {
            &mut fallback_origin
        };
        let (answer, audio) = match talktime_sdp::answer(&offer, &local, origin) {
            Ok(result) => result,
            Err(error) => {
                debug!(call = key, %error, "re-INVITE not acceptable");
                let response = Response::for_request(request, 488, "Not Acceptable Here");
                self.respond(transaction, response);
                return;
            }
        };
        let held = audio.remote.is_none()
            || matches!(audio.direction, Direction::RecvOnly | Direction::Inactive);
        let inactivity = if held {
            Duration::MAX
        } else {
            self.inactivity()
        };
        let random = self.random_u64();
        let sources = media_sources(self.config.rtp.strict_media_sources, &audio, &peer);
        let config = leg_config(
            law,
            &audio,
            ssrc_for(key, side, random),
            inactivity,
            from_caller,
            sources,
        );
        self.media(key, MediaCommand::SetLeg(side, config));
        debug!(call = key, ?side, held, "re-INVITE answered");
        let body = answer.to_bytes();
        let mut response = Response::for_request(request, 200, "OK");
        response
            .headers
            .push("Contact", &self.contact(peer.transport));
        if from_caller {
            add_session_timer(
                &mut response,
                self.sessions.get(&key).and_then(|s| s.session_timer),
            );
        }
        response.headers.push("Content-Type", "application/sdp");
        response.body = body;
        let _ = self
            .dialogs
            .start_2xx_retransmission(id, response.clone(), peer, self.now.instant);
        self.respond(transaction, response);
    }

    /// The caller refreshed the session (re-INVITE or UPDATE): restart its timer.
    fn refresh_session_timer(&mut self, key: u64) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let Some(timer) = session.session_timer.as_mut() else {
            return;
        };
        timer.deadline = self.now.instant + timer.interval;
        self.arm_timer(key);
    }

    /// No refresh within the session interval: the caller is gone (RFC 4028 §10).
    fn check_session_timer(&mut self, key: u64, now: Instant) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        if session
            .session_timer
            .is_none_or(|timer| timer.deadline > now)
        {
            return;
        }
        session.session_timer = None;
        let peer = session.caller.peer;
        info!(call = key, "session timer expired");
        let cause = talktime_engine::DisconnectCause::SessionExpired;
        if let Some(dialog) = session.caller.dialog.take() {
            self.send_bye(&dialog, peer, &cause.reason_header());
        }
        self.feed(key, Input::Abort { cause });
    }

    fn carrier_hung_up(&mut self, key: u64) {
        let Some(leg) = self.sessions.get_mut(&key).and_then(|s| s.carrier.as_mut()) else {
            return;
        };
        let attempt = leg.attempt;
        if let Some(outgoing) = leg.current.take() {
            self.by_transaction.remove(&outgoing.transaction);
            self.carrier_ended(&outgoing.target.carrier);
        }
        self.media(key, MediaCommand::Bridge(false));
        self.feed(key, Input::CarrierHungUp { attempt });
    }

    /// The caller's ACK: for a delayed offer it carries the answer to ours, which sets the
    /// caller leg's media; an ACK without one, or one we cannot use, ends the call.
    pub(crate) fn caller_acked(&mut self, key: u64, ack: &Request, dialog: &DialogId) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        if session.caller.dialog.as_ref() != Some(dialog) {
            return;
        }
        let Some(offer) = session.caller.awaiting_answer.take() else {
            return;
        };
        let audio = SessionDescription::parse(&ack.body)
            .map_err(|error| error.to_string())
            .and_then(|answer| {
                talktime_sdp::process_answer(&offer, &answer).map_err(|error| error.to_string())
            });
        let audio = match audio {
            Ok(audio) if law_of(&audio).is_some() => audio,
            outcome => {
                warn!(
                    call = key,
                    ?outcome,
                    "the caller's ACK has no usable answer to our offer"
                );
                let release = talktime_engine::Release {
                    cause: talktime_engine::DisconnectCause::Failed,
                    q850: 88,
                    reason_header: "Q.850;cause=88;text=\"incompatible media\"".into(),
                };
                self.hang_up_caller(key, &release);
                self.feed(key, Input::CallerHungUp);
                return;
            }
        };
        let law = law_of(&audio).unwrap_or(session.law);
        session.law = law;
        let sources = media_sources(
            self.config.rtp.strict_media_sources,
            &audio,
            &session.caller.peer,
        );
        let random = self.random_u64();
        let mut leg = leg_config(
            law,
            &audio,
            ssrc_for(key, Side::A, random),
            self.inactivity(),
            true,
            sources,
        );
        leg.prompt_wait = Duration::from_millis(self.config.rtp.prompt_wait_ms);
        debug!(call = key, "delayed offer answered in the ACK");
        self.media(key, MediaCommand::SetLeg(Side::A, leg));
    }

    /// Our 200 to the caller was never ACKed (RFC 3261 §13.3.1.4): end the dialog with BYE
    /// and the call as if the caller had left.
    pub(crate) fn caller_never_acked(&mut self, key: u64, dialog: &DialogId) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let peer = session.caller.peer;
        session.caller.dialog = None;
        self.send_bye(
            dialog,
            peer,
            &talktime_engine::DisconnectCause::Normal.reason_header(),
        );
        self.feed(key, Input::CallerHungUp);
    }

    /// CANCEL of the caller's INVITE (before we answered).
    pub(crate) fn caller_cancelled(&mut self, key: u64) {
        // The transaction layer has answered the INVITE with 487.
        if let Some(session) = self.sessions.get_mut(&key) {
            session.caller.ringing = false;
        }
        self.feed(key, Input::CallerHungUp);
    }

    fn settle(&mut self, key: u64, record: AttemptRecord) {
        let Some(session) = self.sessions.get_mut(&key) else {
            return;
        };
        let settlement = session.settlement.take();
        session.settled.insert(record.attempt);
        let rated = session
            .rated
            .take_if(|(attempt, _)| *attempt == record.attempt)
            .map(|(_, rated)| rated);
        let reservation = reservation_key(&session.call_id, record.attempt);
        let mut cdrs = attempt_cdrs(&reservation, session.started_ms, &record);
        if let Some((party, cause)) = session.peer_q850
            && party == record.hung_up_by
            && let Some(last) = cdrs.last_mut()
        {
            last.q850_cause = Some(i64::from(cause));
        }
        let answered_ms = settlement.map_or(0, |settlement| settlement.answered_ms);
        if answered_ms > 0 {
            self.counters.answered_calls += 1;
            self.counters.billed_ms += answered_ms;
        }
        let buy_per_minute = record
            .carrier
            .as_ref()
            .and_then(|carrier| session.buy_rates.get(carrier).copied());
        if let Some(rated) = &rated {
            let charge = talktime_billing::rate_call(&rated.context, answered_ms);
            let charged_micros = charge.total.to_micros().unwrap_or(i64::MAX);
            self.alarms().call_settled(
                self.now.instant,
                rated.account.0,
                &rated.number,
                answered_ms,
                charged_micros,
            );
        }
        self.ledger_request(
            key,
            LedgerRequest::Settle {
                reservation,
                rated: rated.map(Box::new),
                answered_ms,
                buy_per_minute,
                cdrs,
            },
        );
    }

    fn finish(&mut self, key: u64, record: &CallRecord) {
        let Some(mut session) = self.sessions.remove(&key) else {
            return;
        };
        self.call_deadlines.remove(key);
        self.admission()
            .call_ended(session.caller.peer.address.ip());
        crate::counters::Counters::add(&mut self.counters.calls_ended, record.cause.as_str());
        info!(
            call = key,
            call_id = %record.call_id,
            cause = record.cause.as_str(),
            billed_ms = record.billed_ms,
            attempts = record.attempts,
            "call ended"
        );
        if let Some(media) = session.media.take() {
            self.media_command(key, MediaCommand::Close);
            self.retire_ports(media);
        }
        self.by_transaction.remove(&session.caller.transaction);
        if let Some(id) = session.caller.dialog.take() {
            // The engine ended without BYE (it only does so after the caller left).
            self.by_dialog.remove(&id);
            self.dialogs.remove(&id);
        }
        if let Some(bill) = session.callback.take() {
            self.settle_caller_leg(*bill, &session.access.number, record);
        }
    }

    /// Ends every call with BYE on both legs; each is billed and recorded as usual.
    pub(crate) fn abort_all(&mut self, cause: talktime_engine::DisconnectCause) {
        let keys: Vec<u64> = self.sessions.keys().copied().collect();
        for key in keys {
            self.feed(key, Input::Abort { cause });
        }
    }
}

fn request_peer(session: &Session) -> Peer {
    session
        .carrier
        .as_ref()
        .and_then(|leg| leg.current.as_ref())
        .map_or(session.caller.peer, |outgoing| outgoing.target.peer)
}

/// The ledger reservation of one attempt of a call.
fn reservation_key(call_id: &str, attempt: AttemptId) -> String {
    format!("{call_id}#{}", attempt.0)
}

/// `Signal=5` from an `application/dtmf-relay` INFO body.
fn dtmf_relay_digit(body: &[u8]) -> Option<char> {
    let text = std::str::from_utf8(body).ok()?;
    text.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("signal") {
            return None;
        }
        value
            .trim()
            .chars()
            .next()
            .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#'))
    })
}

/// One CDR row per carrier tried (or one row for an attempt that never reached a carrier).
fn attempt_cdrs(reservation: &str, call_start_ms: i64, record: &AttemptRecord) -> Vec<Cdr> {
    let at = |ms: u64| call_start_ms.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
    let base = Cdr {
        call_id: reservation.to_owned(),
        attempt: 1,
        account_id: Some(record.account.0),
        card_id: record.card.map(|card| card.0),
        caller_id: record.caller_id.clone(),
        access_number: Some(record.access_number.clone()),
        destination: record.destination.clone(),
        carrier: record.carrier.clone(),
        start_ms: at(record.started_ms),
        answer_ms: record.answered_ms.map(at),
        end_ms: at(record.ended_ms),
        billed_seconds: 0,
        fees_json: "{}".into(),
        taxes_json: "[]".into(),
        tax_micros: 0,
        total_micros: 0,
        buy_cost_micros: 0,
        sip_code: record.sip_status.map(i64::from),
        q850_cause: Some(i64::from(record.q850)),
        hangup_by: Some(party_name(record.hung_up_by).into()),
        disconnect_cause: Some(record.cause.as_str().into()),
    };
    if record.carrier_tries.is_empty() {
        return vec![base];
    }
    let last = record.carrier_tries.len() - 1;
    record
        .carrier_tries
        .iter()
        .enumerate()
        .map(|(index, carrier_try)| {
            let final_try = index == last;
            let answered = final_try && record.answered_ms.is_some();
            Cdr {
                attempt: i64::try_from(index + 1).unwrap_or(i64::MAX),
                carrier: Some(carrier_try.carrier.clone()),
                start_ms: at(carrier_try.started_ms),
                answer_ms: if answered { base.answer_ms } else { None },
                end_ms: at(carrier_try.ended_ms),
                sip_code: match carrier_try.sip_status {
                    Some(status) => Some(i64::from(status)),
                    None if answered => Some(200),
                    None => None,
                },
                hangup_by: if final_try {
                    base.hangup_by.clone()
                } else {
                    Some("switch".into())
                },
                disconnect_cause: if final_try {
                    base.disconnect_cause.clone()
                } else {
                    Some("failover".into())
                },
                ..base.clone()
            }
        })
        .collect()
}

pub(crate) fn party_name(party: talktime_engine::Party) -> &'static str {
    match party {
        talktime_engine::Party::Caller => "caller",
        talktime_engine::Party::Carrier => "carrier",
        talktime_engine::Party::Switch => "switch",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_bodies_give_their_digit() {
        assert_eq!(dtmf_relay_digit(b"Signal=5\r\nDuration=160\r\n"), Some('5'));
        assert_eq!(dtmf_relay_digit(b"signal = #\nDuration=100"), Some('#'));
        assert_eq!(dtmf_relay_digit(b"Duration=100"), None);
        assert_eq!(dtmf_relay_digit(b"Signal=x"), None);
    }

    fn invite_with(headers: &str) -> Request {
        let text = format!(
            "INVITE sip:100@switch SIP/2.0\r\nVia: SIP/2.0/UDP gw;branch=z9hG4bK1\r\n\
             From: <sip:gateway@gw>;tag=1\r\nTo: <sip:100@switch>\r\nCall-ID: c\r\n\
             CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{headers}Content-Length: 0\r\n\r\n"
        );
        match talktime_sip::Message::parse(text.as_bytes()).unwrap() {
            talktime_sip::Message::Request(request) => request,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn caller_ids_come_from_pai_then_the_calling_rpid_then_from() {
        let number = |headers: &str| caller_id_of(&invite_with(headers)).map(Pii::into_inner);
        assert_eq!(
            number("Remote-Party-ID: <sip:+15551230000@gw>;party=calling;screen=yes\r\n"),
            Some("15551230000".into())
        );
        assert_eq!(
            number(
                "Remote-Party-ID: <sip:19995550000@gw>;party=called\r\n\
                 Remote-Party-ID: \"A\" <sip:15551230001@gw>\r\n"
            ),
            Some("15551230001".into())
        );
        assert_eq!(
            number(
                "P-Asserted-Identity: <sip:15551230002@gw>\r\n\
                 Remote-Party-ID: <sip:15551230003@gw>;party=calling\r\n"
            ),
            Some("15551230002".into())
        );
        assert_eq!(
            number("Remote-Party-ID: <sip:15551230004@gw>;party=calling;privacy=full\r\n"),
            None
        );
        assert_eq!(number(""), None, "From's user is not a number");
    }

    #[test]
    fn reservation_keys_differ_per_attempt() {
        assert_ne!(
            reservation_key("a@b", AttemptId(1)),
            reservation_key("a@b", AttemptId(2))
        );
    }
}
