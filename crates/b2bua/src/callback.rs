//! Callback (issue 21): a caller rings a callback access number and is refused unanswered
//! (480, so their call costs them nothing); the switch calls them back through a carrier, like
//! any destination, and the answered leg runs the access number's IVR as an authenticated
//! caller. A web callback (API, console) starts at the call back, with the account known and
//! optionally a second number to connect at once.
//!
//! Money: the leg to the caller is attempt 0 of the call, rated by its own destination. It is
//! authorized before it is placed (an account that cannot pay for it is not called back), and
//! every called leg's authorization is made beside it (`LedgerRequest::Authorize::beside`): the
//! limit is what the credit pays for both legs together, and the caller leg's hold is resized
//! in the same transaction to cover it up to that limit. The switch cuts the call when the
//! caller leg runs past what its hold covers; at the end the caller leg is settled on its own
//! key with its own CDR row (attempt 0).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use talktime_billing::Cdr;
use talktime_engine::{
    AccountInfo, AttemptId, Call, CallId, CallSetup, CallbackStart, CallerIdLookup,
    DisconnectCause, Input,
};
use talktime_media::relay::Side;
use talktime_pii::Pii;
use talktime_sdp::{Codec, SessionDescription};
use talktime_sip::dialog::Dialog;
use talktime_sip::transaction::TransactionId;
use talktime_sip::{Request, Response};
use tracing::{debug, info, warn};

use crate::calls::{CallerLeg, Session, law_of, leg_config, media_sources, ssrc_for};
use crate::config::AccessNumber;
use crate::ledger::{CallbackLeg, LedgerReply, LedgerRequest, Rated};
use crate::media::{MediaCommand, MediaPorts};
use crate::routing::CarrierTarget;
use crate::switch::Switch;

/// The caller leg's attempt number: called legs count from 1.
pub const CALLER_LEG: AttemptId = AttemptId(0);

/// A web callback, checked by the shell: the account is known, so no caller-ID lookup.
#[derive(Debug, Clone)]
pub struct WebCallback {
    /// The call's id (made by the shell, so the API can answer with it).
    pub call_id: String,
    pub account: AccountInfo,
    /// The number to call first (the caller).
    pub number: Pii<String>,
    /// The number to connect them to; `None` gives them the IVR's destination prompt.
    pub destination: Option<Pii<String>>,
}

/// A callback not yet answered.
#[derive(Debug)]
pub(crate) struct Callback {
    call_id: String,
    number: Pii<String>,
    /// `number` as a destination: a caller ID's E.164 digits with their `+`, a web
    /// callback's number as given.
    dial: Pii<String>,
    access: AccessNumber,
    requested_ms: i64,
    /// Not called back before this (the caller's phone must be free again).
    due: Instant,
    destination: Option<Pii<String>>,
    account: Option<AccountInfo>,
    rated: Option<Box<Rated>>,
    ringing: Option<Ringing>,
}

/// The call back's INVITE.
#[derive(Debug)]
struct Ringing {
    target: CarrierTarget,
    remaining: VecDeque<CarrierTarget>,
    invite: Request,
    offer: SessionDescription,
    transaction: TransactionId,
    media: Option<MediaPorts>,
    give_up_at: Instant,
    /// Sent again with the carrier's credentials: a second challenge is a failure.
    authenticated: bool,
}

/// The bill of a callback's leg to the caller, kept in its session.
#[derive(Debug)]
pub(crate) struct CallerLegBill {
    reservation: String,
    rated: Box<Rated>,
    answered_at: Instant,
    answered_ms: i64,
    requested_ms: i64,
    /// The caller leg is paid for until then (its hold); the call is cut there.
    covered_until: Instant,
    /// A called leg's authorization in flight and the caller leg's time it was asked with.
    pending: Option<(AttemptId, u64)>,
    carrier: String,
    buy_per_minute: Option<Decimal>,
}

impl CallerLegBill {
    pub(crate) fn deadline(&self) -> Instant {
        self.covered_until
    }
}

/// Why a callback was not made (for the log and the counters).
fn give_up_label(status: Option<u16>) -> &'static str {
    match status {
        Some(486 | 600) => "busy",
        Some(_) => "failed",
        None => "no_answer",
    }
}

impl Switch {
    /// An INVITE to a callback line: refused at once with 480; a caller ID we can trust is
    /// looked up and, if registered, called back.
    pub(crate) fn request_callback(
        &mut self,
        request: &Request,
        access: AccessNumber,
        trust: &crate::config::PeerTrust,
    ) -> Response {
        let refuse = Response::for_request(request, 480, "Temporarily Unavailable");
        let Some(number) = crate::calls::caller_id_of(request).filter(|_| trust.trusted_caller_id)
        else {
            info!("callback asked without a caller ID we trust; not called back");
            return refuse;
        };
        if self.callback_pending_for(&number) {
            debug!("callback already pending for this caller");
            return refuse;
        }
        if self.callbacks.len() >= self.config.callback.max_pending {
            warn!("too many callbacks pending; refused");
            crate::counters::Counters::add(&mut self.counters.calls_refused, "callbacks_full");
            let mut busy = Response::for_request(request, 503, "Service Unavailable");
            busy.headers
                .push("Retry-After", &crate::stop::RETRY_AFTER_S.to_string());
            return busy;
        }
        let key = self.next_call_key();
        let call_id = self.new_call_id("cb-", &self.advertised.to_string());
        let due = self.now.instant + Duration::from_millis(self.config.callback.delay_ms);
        info!(call = key, %call_id, access = %access.number, "callback requested");
        self.callbacks.insert(
            key,
            Callback {
                call_id,
                dial: Pii::new(format!("+{}", number.expose())),
                number: number.clone(),
                access,
                requested_ms: self.now.epoch_ms,
                due,
                destination: None,
                account: None,
                rated: None,
                ringing: None,
            },
        );
        let lookup = LedgerRequest::LookupCallerId {
            caller_id: number,
            remembered_language: false,
        };
        self.ledger_request(key, lookup);
        refuse
    }

    /// A web callback from the operator's side: called back at once.
    pub(crate) fn web_callback(&mut self, request: WebCallback) {
        let Some(access) = self.config.callback_access().cloned() else {
            warn!(call_id = %request.call_id, "web callback without a callback access number");
            return;
        };
        if self.is_stopping() || self.callbacks.len() >= self.config.callback.max_pending {
            warn!(call_id = %request.call_id, "web callback refused: stopping or too many pending");
            return;
        }
        let key = self.next_call_key();
        info!(call = key, call_id = %request.call_id, "web callback requested");
        let account = request.account.clone();
        self.callbacks.insert(
            key,
            Callback {
                call_id: request.call_id,
                dial: request.number.clone(),
                number: request.number,
                access,
                requested_ms: self.now.epoch_ms,
                due: self.now.instant,
                destination: request.destination,
                account: None,
                rated: None,
                ringing: None,
            },
        );
        self.callback_account_found(key, account);
    }

    /// A callback to this number is waiting, ringing or up (a caller ID's digits and a web
    /// callback's `+` form are the same number).
    fn callback_pending_for(&self, number: &Pii<String>) -> bool {
        let same = |other: &Pii<String>| {
            other.expose().trim_start_matches('+') == number.expose().trim_start_matches('+')
        };
        self.callbacks
            .values()
            .any(|callback| same(&callback.number))
            || self.sessions.values().any(|session| {
                session.callback.is_some() && session.caller_number().is_some_and(same)
            })
    }

    /// A ledger answer for a callback not yet answered; false when `key` is not one.
    pub(crate) fn callback_ledger_reply(&mut self, key: u64, reply: LedgerReply) -> bool {
        if !self.callbacks.contains_key(&key) {
            return false;
        }
        match reply {
            LedgerReply::Input(Input::CallerIdLookup(CallerIdLookup::Found(account))) => {
                self.callback_account_found(key, account);
            }
            LedgerReply::Input(Input::CallerIdLookup(_)) => {
                info!(
                    call = key,
                    "callback asked by a caller ID that is not registered"
                );
                self.drop_callback(key, "not_registered");
            }
            LedgerReply::Authorized { rated, .. } => {
                info!(
                    call = key,
                    limit_ms = rated.authorization.limit_ms,
                    "callback authorized"
                );
                if let Some(callback) = self.callbacks.get_mut(&key) {
                    callback.rated = Some(rated);
                }
                self.arm_callbacks();
            }
            LedgerReply::Input(Input::AuthorizationRefused { refusal, .. }) => {
                info!(call = key, ?refusal, "callback refused by the ledger");
                self.drop_callback(key, "refused");
            }
            LedgerReply::Input(_) | LedgerReply::Done | LedgerReply::Subscriber(_) => {}
        }
        true
    }

    /// The caller is known: authorize the leg to them (rated by its own destination).
    fn callback_account_found(&mut self, key: u64, account: AccountInfo) {
        let Some(callback) = self.callbacks.get(&key) else {
            return;
        };
        let number = match self.check_destination(&callback.access, callback.dial.expose()) {
            Ok(number) => number,
            Err(refusal) => {
                info!(
                    call = key,
                    ?refusal,
                    "the caller's number cannot be called back"
                );
                self.drop_callback(key, "unroutable");
                return;
            }
        };
        let request = LedgerRequest::Authorize {
            attempt: CALLER_LEG,
            reservation: format!("{}#{}", callback.call_id, CALLER_LEG.0),
            account: account.account,
            card: account.card,
            number,
            toll_free: false,
            now_ms: self.now.epoch_ms,
            beside: None,
        };
        if let Some(callback) = self.callbacks.get_mut(&key) {
            callback.account = Some(account);
        }
        self.ledger_request(key, request);
    }

    /// The earliest deadline of the callbacks: one to place, or one ringing too long.
    pub(crate) fn callbacks_timeout(&self) -> Option<Instant> {
        self.callback_deadline
    }

    fn arm_callbacks(&mut self) {
        self.callback_deadline = self
            .callbacks
            .values()
            .filter_map(|callback| match &callback.ringing {
                Some(ringing) => Some(ringing.give_up_at),
                None => callback.rated.as_ref().map(|_| callback.due),
            })
            .min();
    }

    /// Places the callbacks that are due and gives up those that rang too long.
    pub(crate) fn callback_timers(&mut self, now: Instant) {
        if self.callback_deadline.is_none_or(|deadline| deadline > now) {
            return;
        }
        let due: Vec<(u64, bool)> = self
            .callbacks
            .iter()
            .filter_map(|(key, callback)| match &callback.ringing {
                Some(ringing) => (ringing.give_up_at <= now).then_some((*key, true)),
                None => (callback.rated.is_some() && callback.due <= now).then_some((*key, false)),
            })
            .collect();
        for (key, ringing) in due {
            if ringing {
                info!(call = key, "callback not answered in time");
                self.cancel_callback_invite(key);
                self.callback_failed(key, None);
            } else {
                self.place_callback(key);
            }
        }
        self.arm_callbacks();
    }

    fn place_callback(&mut self, key: u64) {
        let Some(callback) = self.callbacks.get(&key) else {
            return;
        };
        let Some(rated) = callback.rated.as_ref() else {
            return;
        };
        let sell = rated.context.steps.first().map(|step| step.per_minute);
        let plan = rated
            .dial_plan
            .clone()
            .unwrap_or_else(|| callback.access.dial_plan.clone());
        let refuse_loss = rated.refuse_loss || self.config.billing.refuse_loss_making_routes;
        let targets = self.carrier_targets(&plan, &rated.number, sell, refuse_loss);
        if targets.is_empty() {
            // What a proxy with no route answers: the CDR says the call back failed.
            warn!(
                call = key,
                "no carrier routes the caller's number; not called back"
            );
            self.callback_failed(key, Some(503));
            return;
        }
        let random = self.random_u64();
        let media = match self.allocate_ports(random) {
            Ok(media) => media,
            Err(error) => {
                warn!(call = key, %error, "no RTP ports for a callback");
                self.callback_failed(key, None);
                return;
            }
        };
        self.media_command(
            key,
            MediaCommand::Open {
                address: self.advertised,
                ports: media.numbers(),
                inactivity: Duration::from_millis(self.config.rtp.inactivity_timeout_ms),
            },
        );
        self.try_callback_carrier(key, targets.into(), Some(media), None);
    }

    /// INVITEs the caller through the next carrier; with none left the callback failed.
    fn try_callback_carrier(
        &mut self,
        key: u64,
        mut remaining: VecDeque<CarrierTarget>,
        mut media: Option<MediaPorts>,
        last_status: Option<u16>,
    ) {
        let Some(callback) = self.callbacks.get(&key) else {
            if let Some(media) = media {
                self.media_command(key, MediaCommand::Close);
                self.retire_ports(media);
            }
            return;
        };
        let call_id = callback.call_id.clone();
        let from = callback.access.number.clone();
        while let Some(target) = remaining.pop_front() {
            let Some(port) = media.as_ref().map(|media| media.port(Side::A)) else {
                break;
            };
            let caller = target.caller_id.clone().unwrap_or_else(|| from.clone());
            let codecs = vec![Codec::Pcmu, Codec::Pcma];
            let sent = self
                .carrier_invite(&target, port, codecs, &caller, true)
                .and_then(|(mut invite, offer)| {
                    invite.headers.set("Call-ID", &call_id);
                    let (transaction, peer, invite) = self.send_request(invite, target.peer)?;
                    Ok((transaction, peer, invite, offer))
                });
            match sent {
                Ok((transaction, peer, invite, offer)) => {
                    debug!(call = key, carrier = %target.carrier, "callback INVITE sent");
                    let mut target = target;
                    target.peer = peer;
                    self.by_transaction.insert(transaction, key);
                    let give_up_at =
                        self.now.instant + Duration::from_secs(self.config.callback.ring_s);
                    if let Some(callback) = self.callbacks.get_mut(&key) {
                        callback.ringing = Some(Ringing {
                            target,
                            remaining,
                            invite,
                            offer,
                            transaction,
                            media: media.take(),
                            give_up_at,
                            authenticated: false,
                        });
                    }
                    self.arm_callbacks();
                    return;
                }
                Err(error) => {
                    warn!(call = key, carrier = %target.carrier, %error, "cannot INVITE for a callback")
                }
            }
        }
        if let Some(media) = media {
            self.media_command(key, MediaCommand::Close);
            self.retire_ports(media);
        }
        self.callback_failed(key, last_status);
    }

    fn cancel_callback_invite(&mut self, key: u64) {
        let Some(ringing) = self
            .callbacks
            .get(&key)
            .and_then(|callback| callback.ringing.as_ref())
        else {
            return;
        };
        let (transaction, peer) = (ringing.transaction, ringing.target.peer);
        let _ = self.layer.send_cancel(transaction, self.now.instant);
        self.abandoned_peers.insert(transaction, peer);
    }

    /// A response to a callback's INVITE; false when `key` is not a ringing callback.
    pub(crate) fn callback_response(
        &mut self,
        key: u64,
        transaction: TransactionId,
        response: &Response,
    ) -> bool {
        let Some(ringing) = self
            .callbacks
            .get(&key)
            .and_then(|callback| callback.ringing.as_ref())
        else {
            return false;
        };
        if ringing.transaction != transaction {
            return true;
        }
        match response.status {
            100..=199 => {}
            200..=299 => self.callback_answered(key, response),
            401 | 407 if self.answer_callback_challenge(key, response) => {}
            status => self.callback_try_failed(key, Some(status)),
        }
        true
    }

    /// A carrier that challenges the call back gets it again with its credentials, once.
    fn answer_callback_challenge(&mut self, key: u64, response: &Response) -> bool {
        let Some(ringing) = self
            .callbacks
            .get(&key)
            .and_then(|callback| callback.ringing.as_ref())
            .filter(|ringing| !ringing.authenticated)
        else {
            return false;
        };
        let Some(credentials) = ringing.target.credentials.clone() else {
            return false;
        };
        let (invite, peer, previous) = (
            ringing.invite.clone(),
            ringing.target.peer,
            ringing.transaction,
        );
        let Some((transaction, invite)) =
            self.invite_with_credentials(&invite, peer, &credentials, response)
        else {
            return false;
        };
        self.by_transaction.remove(&previous);
        self.by_transaction.insert(transaction, key);
        if let Some(ringing) = self
            .callbacks
            .get_mut(&key)
            .and_then(|callback| callback.ringing.as_mut())
        {
            ringing.invite = invite;
            ringing.transaction = transaction;
            ringing.authenticated = true;
        }
        debug!(
            call = key,
            "callback challenged; INVITE sent with credentials"
        );
        true
    }

    /// A callback INVITE's transaction failed (timeout, transport); false when not one.
    pub(crate) fn callback_transaction_failed(&mut self, key: u64) -> bool {
        if !self.callbacks.contains_key(&key) {
            return false;
        }
        self.callback_try_failed(key, None);
        true
    }

    fn callback_try_failed(&mut self, key: u64, status: Option<u16>) {
        let Some(ringing) = self
            .callbacks
            .get_mut(&key)
            .and_then(|callback| callback.ringing.take())
        else {
            return;
        };
        self.by_transaction.remove(&ringing.transaction);
        // Busy or declined: the caller is there and said no; no other carrier is tried.
        let final_answer = matches!(status, Some(486 | 600 | 603));
        let remaining = if final_answer {
            VecDeque::new()
        } else {
            ringing.remaining
        };
        self.try_callback_carrier(key, remaining, ringing.media, status);
    }

    /// The callback was not made: its hold is settled at nothing with a CDR row saying why.
    fn callback_failed(&mut self, key: u64, status: Option<u16>) {
        let Some(mut callback) = self.callbacks.remove(&key) else {
            return;
        };
        let label = give_up_label(status);
        crate::counters::Counters::add(&mut self.counters.callbacks, label);
        info!(call = key, outcome = label, "callback not connected");
        if let Some(ringing) = callback.ringing.take() {
            self.by_transaction.remove(&ringing.transaction);
            if let Some(media) = ringing.media {
                self.media_command(key, MediaCommand::Close);
                self.retire_ports(media);
            }
        }
        let Some(rated) = callback.rated.take() else {
            return;
        };
        let reservation = format!("{}#{}", callback.call_id, CALLER_LEG.0);
        let now_ms = self.now.epoch_ms;
        let cause = match status {
            Some(486 | 600) => DisconnectCause::Busy,
            Some(_) => DisconnectCause::Failed,
            None => DisconnectCause::NoAnswer,
        };
        let cdr = caller_leg_cdr(
            &reservation,
            &rated,
            &callback.access.number,
            CallerLegTimes {
                start_ms: callback.requested_ms,
                answer_ms: None,
                end_ms: now_ms,
            },
            None,
            status,
            (cause, "switch"),
        );
        self.ledger_request(
            self.no_call_key(),
            LedgerRequest::Settle {
                reservation,
                rated: Some(rated),
                answered_ms: 0,
                buy_per_minute: None,
                cdrs: vec![cdr],
            },
        );
    }

    /// A callback given up before it was authorized or placed (nothing held yet, or the
    /// hold given back).
    fn drop_callback(&mut self, key: u64, outcome: &'static str) {
        crate::counters::Counters::add(&mut self.counters.callbacks, outcome);
        let Some(callback) = self.callbacks.remove(&key) else {
            return;
        };
        if callback.rated.is_some() {
            let reservation = format!("{}#{}", callback.call_id, CALLER_LEG.0);
            let now_ms = self.now.epoch_ms;
            self.ledger_request(
                self.no_call_key(),
                LedgerRequest::Release {
                    reservation,
                    now_ms,
                },
            );
        }
        self.arm_callbacks();
    }

    /// A stop: callbacks not yet answered are not made.
    pub(crate) fn stop_callbacks(&mut self) {
        let keys: Vec<u64> = self.callbacks.keys().copied().collect();
        for key in keys {
            if self
                .callbacks
                .get(&key)
                .is_some_and(|callback| callback.ringing.is_some())
            {
                self.cancel_callback_invite(key);
                self.callback_failed(key, None);
            } else {
                self.drop_callback(key, "stopping");
            }
        }
    }

    /// The caller answered the call back: the dialog, the media and the engine, already
    /// authenticated.
    fn callback_answered(&mut self, key: u64, response: &Response) {
        let Some(mut callback) = self.callbacks.remove(&key) else {
            return;
        };
        self.arm_callbacks();
        let (Some(ringing), Some(account), Some(rated)) = (
            callback.ringing.take(),
            callback.account.take(),
            callback.rated.take(),
        ) else {
            return;
        };
        let Some(media) = ringing.media else {
            return;
        };
        let peer = ringing.target.peer;
        let audio = SessionDescription::parse(&response.body)
            .map_err(|error| error.to_string())
            .and_then(|answer| {
                talktime_sdp::process_answer(&ringing.offer, &answer)
                    .map_err(|error| error.to_string())
            });
        let dialog = Dialog::uac(&ringing.invite, response);
        let (audio, dialog) = match (audio, dialog) {
            (Ok(audio), Ok(dialog)) if law_of(&audio).is_some() => (audio, dialog),
            (audio, dialog) => {
                warn!(
                    call = key,
                    ?audio,
                    dialog_ok = dialog.is_ok(),
                    "callback answer unusable; hung up"
                );
                self.abandoned_peers.insert(ringing.transaction, peer);
                self.late_answer(ringing.transaction, response);
                self.media_command(key, MediaCommand::Close);
                self.retire_ports(media);
                callback.rated = Some(rated);
                self.callbacks.insert(key, callback);
                self.callback_failed(key, Some(488));
                return;
            }
        };
        let local_tag = dialog.id().local_tag().to_owned();
        let id = self.dialogs.insert(dialog);
        self.by_dialog.insert(id.clone(), key);
        let law = law_of(&audio).unwrap_or(talktime_media::Law::MuLaw);
        let random = self.random_u64();
        let mut leg = leg_config(
            law,
            &audio,
            ssrc_for(key, Side::A, random),
            Duration::from_millis(self.config.rtp.inactivity_timeout_ms),
            true,
            media_sources(self.config.rtp.strict_media_sources, &audio, &peer),
        );
        leg.prompt_wait = Duration::from_millis(self.config.rtp.prompt_wait_ms);
        self.media_command(key, MediaCommand::SetLeg(Side::A, leg));
        let setup = CallSetup {
            call_id: CallId(callback.call_id.clone()),
            caller_id: Some(callback.number.clone()),
            access_number: callback.access.number.clone(),
            ivr: self.config.ivr_for(&callback.access),
            languages: self.config.languages.clone(),
            now: self.now.instant,
        };
        let start = CallbackStart {
            account,
            destination: callback.destination.clone(),
        };
        let engine = match Call::callback(setup, start) {
            Ok(engine) => engine,
            Err(error) => {
                warn!(call = key, %error, "cannot start the callback's IVR");
                return;
            }
        };
        let trust = self.config.peer_trust(peer.address.ip());
        let origin =
            talktime_sdp::SessionOrigin::new(u64::from(media.port(Side::A)), self.advertised);
        let caller = CallerLeg {
            transaction: ringing.transaction,
            peer,
            local_tag,
            answer: ringing.offer.to_bytes(),
            dialog: Some(id),
            awaiting_answer: None,
            invite: ringing.invite,
            ringing: false,
        };
        let mut session = Session::new(
            engine,
            callback.requested_ms,
            callback.access,
            Some(callback.number),
            caller,
            media,
            (law, audio.codec),
            origin,
            trust,
        );
        let covered = Duration::from_millis(rated.authorization.limit_ms);
        session.callback = Some(Box::new(CallerLegBill {
            reservation: format!("{}#{}", callback.call_id, CALLER_LEG.0),
            answered_at: self.now.instant,
            answered_ms: self.now.epoch_ms,
            requested_ms: callback.requested_ms,
            covered_until: self.now.instant + covered,
            pending: None,
            carrier: ringing.target.carrier.clone(),
            buy_per_minute: ringing.target.buy_per_minute,
            rated,
        }));
        crate::counters::Counters::add(&mut self.counters.callbacks, "answered");
        info!(call = key, carrier = %ringing.target.carrier, "callback answered");
        self.sessions.insert(key, Box::new(session));
        self.acknowledge_caller_leg(key, response);
        self.admission().call_started(peer.address.ip());
        self.checkpoint_caller_leg(key);
        self.run_outputs(key);
    }

    /// The called leg's authorization, made beside the caller leg of a callback.
    pub(crate) fn beside_caller_leg(
        &mut self,
        key: u64,
        attempt: AttemptId,
    ) -> Option<Box<CallbackLeg>> {
        let allowance = Duration::from_secs(self.config.callback.ring_allowance_s);
        let now = self.now.instant;
        let bill = self.sessions.get_mut(&key)?.callback.as_mut()?;
        let elapsed = now.saturating_duration_since(bill.answered_at) + allowance;
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        bill.pending = Some((attempt, elapsed_ms));
        Some(Box::new(CallbackLeg {
            reservation: bill.reservation.clone(),
            context: bill.rated.context.clone(),
            elapsed_ms,
            levels: bill.rated.levels.clone(),
        }))
    }

    /// A called leg was authorized beside the caller leg: the caller leg's hold now covers it
    /// up to the called leg's limit.
    pub(crate) fn caller_leg_covered(&mut self, key: u64, attempt: AttemptId, limit_ms: u64) {
        let Some(bill) = self
            .sessions
            .get_mut(&key)
            .and_then(|session| session.callback.as_mut())
        else {
            return;
        };
        let Some((pending, elapsed_ms)) = bill.pending.take() else {
            return;
        };
        if pending != attempt {
            return;
        }
        let until = bill.answered_at + Duration::from_millis(elapsed_ms.saturating_add(limit_ms));
        bill.covered_until = bill.covered_until.max(until);
    }

    /// The caller leg ran past what its hold covers: the call ends as out of credit.
    pub(crate) fn check_caller_leg_cover(&mut self, key: u64, now: Instant) {
        let over = self
            .sessions
            .get(&key)
            .and_then(|session| session.callback.as_ref())
            .is_some_and(|bill| bill.covered_until <= now);
        if !over {
            return;
        }
        if let Some(bill) = self
            .sessions
            .get_mut(&key)
            .and_then(|session| session.callback.as_mut())
        {
            // Once: the abort ends the call.
            bill.covered_until = now + Duration::from_secs(3600);
        }
        info!(
            call = key,
            "the callback's leg to the caller reached its credit"
        );
        self.feed(
            key,
            Input::Abort {
                cause: DisconnectCause::CreditExhausted,
            },
        );
    }

    /// Settles the caller leg of an ended callback on its own key, with its CDR row.
    pub(crate) fn settle_caller_leg(
        &mut self,
        bill: CallerLegBill,
        access_number: &str,
        record: &talktime_engine::CallRecord,
    ) {
        let now_ms = self.now.epoch_ms;
        let answered_ms = u64::try_from(now_ms.saturating_sub(bill.answered_ms)).unwrap_or(0);
        let cdr = caller_leg_cdr(
            &bill.reservation,
            &bill.rated,
            access_number,
            CallerLegTimes {
                start_ms: bill.requested_ms,
                answer_ms: Some(bill.answered_ms),
                end_ms: now_ms,
            },
            Some(bill.carrier.clone()),
            Some(200),
            (record.cause, crate::calls::party_name(record.hung_up_by)),
        );
        self.counters.billed_ms += answered_ms;
        self.ledger_request(
            self.no_call_key(),
            LedgerRequest::Settle {
                reservation: bill.reservation,
                rated: Some(bill.rated),
                answered_ms,
                buy_per_minute: bill.buy_per_minute,
                cdrs: vec![cdr],
            },
        );
    }

    /// What a restart needs to bill the caller leg if this process dies with it up.
    fn checkpoint_caller_leg(&mut self, key: u64) {
        let Some(session) = self.sessions.get(&key) else {
            return;
        };
        let Some(bill) = session.callback.as_ref() else {
            return;
        };
        let legs = [(session.caller_dialog(), session.caller_peer())];
        let byes = self.recovery_byes(&legs);
        let checkpoint = crate::recovery::Checkpoint {
            account: bill.rated.account.0,
            card: bill.rated.card.map(|card| card.0),
            destination: bill.rated.number.clone(),
            toll_free: false,
            rated_at_ms: bill.rated.rated_at_ms,
            caller_id: None,
            access_number: session.access_number().to_owned(),
            carrier: bill.carrier.clone(),
            started_ms: bill.requested_ms,
            buy_per_minute: bill.buy_per_minute.map(|rate| rate.to_string()),
            byes,
        };
        let reservation = bill.reservation.clone();
        let answered_at_ms = bill.answered_ms;
        self.write_checkpoint(reservation, answered_at_ms, &checkpoint);
    }
}

struct CallerLegTimes {
    start_ms: i64,
    answer_ms: Option<i64>,
    end_ms: i64,
}

/// The caller leg's CDR row: attempt 0, the caller's number as its destination.
fn caller_leg_cdr(
    reservation: &str,
    rated: &Rated,
    access_number: &str,
    times: CallerLegTimes,
    carrier: Option<String>,
    status: Option<u16>,
    (cause, hung_up_by): (DisconnectCause, &str),
) -> Cdr {
    Cdr {
        call_id: reservation.to_owned(),
        attempt: 0,
        account_id: Some(rated.account.0),
        card_id: rated.card.map(|card| card.0),
        caller_id: None,
        access_number: Some(access_number.to_owned()),
        // Written as the called legs' destinations are: E.164 with its `+`.
        destination: Pii::new(format!("+{}", rated.number.trim_start_matches('+'))),
        carrier,
        start_ms: times.start_ms,
        answer_ms: times.answer_ms,
        end_ms: times.end_ms,
        billed_seconds: 0,
        fees_json: "{}".into(),
        taxes_json: "[]".into(),
        tax_micros: 0,
        total_micros: 0,
        buy_cost_micros: 0,
        sip_code: status.map(i64::from),
        q850_cause: Some(i64::from(cause.q850())),
        hangup_by: Some(hung_up_by.into()),
        disconnect_cause: Some(cause.as_str().into()),
    }
}
