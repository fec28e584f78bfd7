//! The per-call state machine: IVR, carrier attempts, credit timer, settlement and CDRs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use talktime_pii::Pii;

use crate::cause::{DisconnectCause, Party, Release};
use crate::config::{ConfigError, IvrConfig, Language, WarningKind};
use crate::destination::normalize_destination;
use crate::entry::{Entry, EntryStep, deadline_after};
use crate::event::{
    AccountInfo, AttemptId, AttemptRecord, AuthMethod, Authorization, BridgeMode, CallId,
    CallRecord, CallerIdLookup, CarrierTry, Input, LastCall, Output, PinLookup, PlaybackId, Prompt,
    Refusal, Settlement, Tone,
};
use crate::speech::{self, Grammar, LanguageBook, SpeechError};
use services::NewPin;

mod retail;
mod services;

/// Everything needed to start a call.
#[derive(Debug, Clone)]
pub struct CallSetup {
    pub call_id: CallId,
    /// The caller's number from From / P-Asserted-Identity, if any.
    pub caller_id: Option<Pii<String>>,
    /// The number the caller dialled to reach the IVR.
    pub access_number: String,
    pub ivr: IvrConfig,
    /// The grammars of the languages the IVR speaks.
    pub languages: Arc<LanguageBook>,
    pub now: Instant,
}

/// How a callback's call starts: the caller was recognised (by caller ID, or by the operator
/// for a web callback) before the switch called them back, and the leg is already answered.
#[derive(Debug, Clone)]
pub struct CallbackStart {
    pub account: AccountInfo,
    /// A web callback's second number: connected at once, without the IVR. `None` asks the
    /// caller for a destination as usual.
    pub destination: Option<Pii<String>>,
}

/// How a call whose caller is known before it starts begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Greeting {
    /// A callback: the leg is answered already; the welcome plays.
    Welcome,
    /// A subscriber: answer, then straight to the number dialled.
    AnswerOnly,
}

/// Where a call is, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Welcome,
    /// DID forwarding: the balance is announced before the preset destination is authorized.
    AnnouncingBalance,
    ChoosingLanguage,
    EnteringPin,
    CheckingPin,
    EnteringDestination,
    /// A speed dial or the last number is being looked up or stored.
    StoredNumbers,
    /// A voucher code is asked or being redeemed.
    Recharging,
    /// A new PIN is asked, confirmed or being stored.
    ChangingPin,
    Authorizing,
    AnnouncingTalkTime,
    Connecting,
    Bridged,
    Farewell,
    Finished,
}

#[derive(Debug, Clone)]
enum CallerLookupState {
    NotAsked,
    Pending {
        deadline: Option<Instant>,
    },
    /// Registered and at or above the account minimum: no PIN needed.
    Accepted(AccountInfo),
    Declined,
}

#[derive(Debug)]
enum State {
    Welcome {
        playback: Option<PlaybackId>,
        caller_lookup: CallerLookupState,
    },
    /// A balance line: the last call is being looked up.
    CheckingLastCall,
    /// DID forwarding: "you have ..." plays; the forwarded attempt opens when it ends.
    AnnouncingBalance {
        playback: PlaybackId,
        destination: Pii<String>,
    },
    ChoosingLanguage(Entry),
    EnteringPin(Entry),
    CheckingPin {
        deadline: Option<Instant>,
    },
    EnteringDestination(Entry),
    /// `#` or a speed-dial key: the number is being looked up.
    LookingUpNumber {
        deadline: Option<Instant>,
    },
    /// `*N`: the last number is being stored under key `slot`.
    StoringSpeedDial {
        slot: u8,
        deadline: Option<Instant>,
    },
    /// `*01`: a portal login code is being issued.
    IssuingPortalCode {
        deadline: Option<Instant>,
    },
    EnteringVoucher(Entry),
    RedeemingVoucher {
        deadline: Option<Instant>,
    },
    EnteringNewPin(Entry),
    ConfirmingNewPin {
        entry: Entry,
        first: NewPin,
    },
    /// A retail line: the customer's number, then the amount, then 1 to confirm.
    EnteringCustomerNumber(Entry),
    EnteringAmount {
        entry: Entry,
        number: Pii<String>,
    },
    ConfirmingRecharge {
        entry: Entry,
        number: Pii<String>,
        amount_micros: i64,
    },
    RetailRecharging {
        deadline: Option<Instant>,
    },
    ChangingPin {
        deadline: Option<Instant>,
    },
    Authorizing {
        deadline: Option<Instant>,
    },
    AnnouncingTalkTime {
        playback: PlaybackId,
    },
    Connecting {
        ringback: Option<PlaybackId>,
        early_media: bool,
        deadline: Option<Instant>,
    },
    Bridged {
        warning_at: Option<Instant>,
        limit_at: Option<Instant>,
        warning_playback: Option<PlaybackId>,
        /// The last keys pressed, to spot `end_leg_digits`.
        keys: String,
    },
    Farewell {
        playback: PlaybackId,
        deadline: Option<Instant>,
        cause: DisconnectCause,
    },
    Finished,
}

/// The states that collect a digit entry, with its kind: the one list of them, for keys,
/// prompt ends, timers and timeouts alike. `$state` is `&State` or `&mut State`.
macro_rules! entry_of {
    ($state:expr) => {
        match $state {
            State::ChoosingLanguage(entry) => Some((EntryKind::Language, entry)),
            State::EnteringPin(entry) => Some((EntryKind::Pin, entry)),
            State::EnteringDestination(entry) => Some((EntryKind::Destination, entry)),
            State::EnteringVoucher(entry) => Some((EntryKind::Voucher, entry)),
            State::EnteringNewPin(entry) => Some((EntryKind::NewPin, entry)),
            State::ConfirmingNewPin { entry, .. } => Some((EntryKind::ConfirmPin, entry)),
            State::EnteringCustomerNumber(entry) => Some((EntryKind::CustomerNumber, entry)),
            State::EnteringAmount { entry, .. } => Some((EntryKind::Amount, entry)),
            State::ConfirmingRecharge { entry, .. } => Some((EntryKind::ConfirmRecharge, entry)),
            _ => None,
        }
    };
}

impl State {
    /// The digit entry this state collects, if it collects one.
    fn entry(&mut self) -> Option<(EntryKind, &mut Entry)> {
        entry_of!(self)
    }

    /// Its entry's timer, when the state collects one.
    fn entry_deadline(&self) -> Option<Option<Instant>> {
        entry_of!(self).map(|(_, entry)| entry.deadline())
    }
}

/// The attempt between `Authorize` and its `Settle`.
#[derive(Debug)]
struct OpenAttempt {
    id: AttemptId,
    account: AccountInfo,
    destination: Pii<String>,
    started: Instant,
    authorization: Option<Authorization>,
    carrier: Option<String>,
    /// The carrier being tried now and when its INVITE went out.
    current_try: Option<(String, Instant)>,
    tries: Vec<CarrierTry>,
    answered: Option<Instant>,
    sip_status: Option<u16>,
}

/// Which digit entry a state is collecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Language,
    Pin,
    Destination,
    Voucher,
    NewPin,
    ConfirmPin,
    CustomerNumber,
    Amount,
    ConfirmRecharge,
}

/// One call, from the caller's INVITE to the last CDR. Driven like quinn-proto: feed
/// [`Call::handle_input`] and [`Call::handle_timeout`], then drain [`Call::poll_output`] and
/// re-arm a timer at [`Call::poll_timeout`].
#[derive(Debug)]
pub struct Call {
    call_id: CallId,
    caller_id: Option<Pii<String>>,
    access_number: String,
    config: IvrConfig,
    book: Arc<LanguageBook>,
    started: Instant,
    language: Language,
    account: Option<AccountInfo>,
    authenticated_by: Option<AuthMethod>,
    state: State,
    outputs: VecDeque<Output>,
    attempt: Option<OpenAttempt>,
    next_playback: u64,
    attempts_opened: u32,
    answered_attempts: u32,
    billed_ms: u64,
    pin_failures: u32,
    no_input: u32,
    destination_failures: u32,
    /// The welcome was skipped (forwarding without `forwarding_welcome`) and still has to be
    /// played in front of the first IVR prompt if the caller falls back to the IVR.
    welcome_owed: bool,
    /// The call goes to the account's forward destination: it ends with the carrier leg.
    forwarded: bool,
    /// The last destination dialled in this call, for `#` (redial) and `*N` (store).
    last_destination: Option<Pii<String>>,
    /// The language this caller ID chose before (with `remember_language`).
    remembered_language: Option<Language>,
    /// The caller picked the language in the menu during this call.
    language_from_menu: bool,
    /// Voucher codes refused in this call, and new PINs refused.
    voucher_failures: u32,
    pin_change_failures: u32,
    /// Retail recharges confirmed in this call (each keys its own transfer), and the
    /// agent's mistakes (unknown numbers, bad amounts) towards the end of the call.
    retail_sequence: u32,
    retail_failures: u32,
    /// A web callback's destination, called as soon as the welcome has played.
    preset_destination: Option<Pii<String>>,
    /// The caller's INVITE has had its 200 (or is a leg we placed): false only while a
    /// forwarding number rings the caller with early media.
    caller_answered: bool,
}

/// Deadlines that come due together are handled in one `handle_timeout`; this bounds the loop.
const MAX_TIMERS_PER_WAKE: usize = 16;

fn milliseconds(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn earliest(first: Option<Instant>, second: Option<Instant>) -> Option<Instant> {
    match (first, second) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The prompt for the outcome of a carrier attempt that did not connect.
fn outcome_prompt(cause: DisconnectCause) -> &'static str {
    match cause {
        DisconnectCause::Busy => "busy",
        DisconnectCause::NoAnswer => "no_answer",
        DisconnectCause::UnknownDestination => "invalid_destination",
        _ => "call_failed",
    }
}

impl Call {
    /// Starts a call: answers the caller, plays the welcome and, with ANI authentication,
    /// looks the caller ID up while the welcome plays. On a forwarding access number without
    /// `forwarding_welcome` nothing plays while the caller ID is looked up.
    pub fn new(setup: CallSetup) -> Result<Self, ConfigError> {
        Self::start(setup, None)
    }

    /// Starts a callback's call on the leg the switch placed to the caller, answered: no
    /// answer to send and no caller-ID lookup (the account is known); the welcome plays,
    /// then the language menu or the destination prompt, or the preset destination is called.
    pub fn callback(setup: CallSetup, start: CallbackStart) -> Result<Self, ConfigError> {
        Self::start(setup, Some((start, Greeting::Welcome)))
    }

    /// Starts a SIP subscriber's call (authenticated by digest, the account known): the
    /// caller is answered and the dialled number called at once, with no prompt.
    pub fn subscriber(
        setup: CallSetup,
        account: AccountInfo,
        destination: Pii<String>,
    ) -> Result<Self, ConfigError> {
        let start = CallbackStart {
            account,
            destination: Some(destination),
        };
        Self::start(setup, Some((start, Greeting::AnswerOnly)))
    }

    fn start(
        setup: CallSetup,
        known: Option<(CallbackStart, Greeting)>,
    ) -> Result<Self, ConfigError> {
        setup.ivr.validate()?;
        setup.ivr.check_languages(&setup.languages)?;
        let now = setup.now;
        let caller_id = setup
            .caller_id
            .filter(|caller_id| !caller_id.expose().trim().is_empty());
        let mut call = Call {
            call_id: setup.call_id,
            caller_id,
            access_number: setup.access_number,
            language: setup.ivr.default_language(),
            config: setup.ivr,
            book: setup.languages,
            started: now,
            account: None,
            authenticated_by: None,
            state: State::Finished,
            outputs: VecDeque::new(),
            attempt: None,
            next_playback: 1,
            attempts_opened: 0,
            answered_attempts: 0,
            billed_ms: 0,
            pin_failures: 0,
            no_input: 0,
            destination_failures: 0,
            welcome_owed: false,
            forwarded: false,
            last_destination: None,
            remembered_language: None,
            language_from_menu: false,
            voucher_failures: 0,
            pin_change_failures: 0,
            retail_sequence: 0,
            retail_failures: 0,
            preset_destination: None,
            caller_answered: true,
        };
        if let Some((start, greeting)) = known {
            call.preset_destination = start
                .destination
                .and_then(|number| normalize_destination(number.expose()).ok())
                .map(Pii::new);
            let playback = match greeting {
                Greeting::Welcome => {
                    let welcome = call.prompts(&["welcome"]);
                    Some(call.play(welcome, false))
                }
                Greeting::AnswerOnly => {
                    call.outputs.push_back(Output::AnswerCaller);
                    None
                }
            };
            call.state = State::Welcome {
                playback,
                caller_lookup: CallerLookupState::Accepted(start.account),
            };
            call.leave_welcome_when_ready(now);
            return Ok(call);
        }
        if call.config.forwarding {
            // Answered when the forwarded call is, or when the IVR asks the caller something.
            call.outputs.push_back(Output::RingCaller);
            call.caller_answered = false;
        } else {
            call.outputs.push_back(Output::AnswerCaller);
        }
        let playback = if call.config.forwarding && !call.config.forwarding_welcome {
            call.welcome_owed = true;
            None
        } else {
            let welcome = call.prompts(&["welcome"]);
            Some(call.play(welcome, false))
        };
        // The caller ID is looked up to recognise the caller, or to skip a language menu
        // they have answered before.
        let remembering = call.config.remember_language && call.config.languages.len() > 1;
        let caller_lookup = match (
            &call.caller_id,
            call.config.ani_authentication || remembering,
        ) {
            (Some(caller_id), true) => {
                call.outputs.push_back(Output::LookupByCallerId {
                    caller_id: caller_id.clone(),
                    remembered_language: remembering,
                });
                CallerLookupState::Pending {
                    deadline: call.request_deadline(now),
                }
            }
            _ => CallerLookupState::NotAsked,
        };
        call.state = State::Welcome {
            playback,
            caller_lookup,
        };
        // Without a welcome and without a lookup there is nothing to wait for.
        call.leave_welcome_when_ready(now);
        Ok(call)
    }

    /// The next thing for the shell to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        let output = self.outputs.pop_front();
        if output.is_none() && self.outputs.capacity() > 0 {
            // Drained: a call spends most of its life talking with nothing to say, and the
            // queue's buffer (four outputs, about 1 KB) would stay with it (issue 19).
            self.outputs = VecDeque::new();
        }
        output
    }

    /// When [`Call::handle_timeout`] must next be called; `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(deadline) = self.state.entry_deadline() {
            return deadline;
        }
        match &self.state {
            State::Welcome {
                caller_lookup: CallerLookupState::Pending { deadline },
                ..
            } => *deadline,
            State::CheckingPin { deadline }
            | State::RetailRecharging { deadline }
            | State::LookingUpNumber { deadline }
            | State::StoringSpeedDial { deadline, .. }
            | State::IssuingPortalCode { deadline }
            | State::RedeemingVoucher { deadline }
            | State::ChangingPin { deadline }
            | State::Authorizing { deadline }
            | State::Connecting { deadline, .. }
            | State::Farewell { deadline, .. } => *deadline,
            State::Bridged {
                warning_at,
                limit_at,
                ..
            } => earliest(*warning_at, *limit_at),
            _ => None,
        }
    }

    /// Whether the call has ended (its `CallRecord` has been queued).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    pub fn call_id(&self) -> &CallId {
        &self.call_id
    }

    /// The language prompts are played in now.
    pub fn language(&self) -> Language {
        self.language
    }

    pub fn phase(&self) -> Phase {
        match self.state {
            State::Welcome { .. } => Phase::Welcome,
            State::AnnouncingBalance { .. } | State::CheckingLastCall => Phase::AnnouncingBalance,
            State::ChoosingLanguage(_) => Phase::ChoosingLanguage,
            State::EnteringPin(_) => Phase::EnteringPin,
            State::CheckingPin { .. } => Phase::CheckingPin,
            State::EnteringDestination(_) => Phase::EnteringDestination,
            State::LookingUpNumber { .. }
            | State::StoringSpeedDial { .. }
            | State::IssuingPortalCode { .. } => Phase::StoredNumbers,
            State::EnteringVoucher(_)
            | State::RedeemingVoucher { .. }
            | State::EnteringCustomerNumber(_)
            | State::EnteringAmount { .. }
            | State::ConfirmingRecharge { .. }
            | State::RetailRecharging { .. } => Phase::Recharging,
            State::EnteringNewPin(_)
            | State::ConfirmingNewPin { .. }
            | State::ChangingPin { .. } => Phase::ChangingPin,
            State::Authorizing { .. } => Phase::Authorizing,
            State::AnnouncingTalkTime { .. } => Phase::AnnouncingTalkTime,
            State::Connecting { .. } => Phase::Connecting,
            State::Bridged { .. } => Phase::Bridged,
            State::Farewell { .. } => Phase::Farewell,
            State::Finished => Phase::Finished,
        }
    }

    /// Feeds one event. Events that do not fit the current phase (late answers, another
    /// attempt's carrier events, digits while connecting) are ignored.
    pub fn handle_input(&mut self, input: Input, now: Instant) {
        if self.is_finished() {
            return;
        }
        match input {
            Input::CallerHungUp => self.caller_hung_up(now),
            Input::Abort { cause } => self.end_call(cause, Party::Switch, now, now, true),
            // The carrier bills us until our BYE, so an answered call is billed to the moment
            // the switch ends it, not to the caller's last packet (issue 12).
            Input::MediaInactive { .. } => {
                let billed_until = now;
                self.end_call(
                    DisconnectCause::MediaTimeout,
                    Party::Switch,
                    now,
                    billed_until,
                    true,
                );
            }
            Input::Digit(digit) if matches!(digit, '0'..='9' | '*' | '#') => self.digit(digit, now),
            Input::Digit(_) => {}
            Input::PlaybackFinished { playback } => self.playback_finished(playback, now),
            Input::CallerIdLookup(answer) => self.caller_id_looked_up(answer, now),
            Input::PinLookup(answer) => self.pin_looked_up(answer, now),
            Input::LastCall(last) if matches!(self.state, State::CheckingLastCall) => {
                self.announce_account(last, now)
            }
            Input::LastCall(_) => {}
            Input::StoredNumber(number) => self.stored_number(number, now),
            Input::SpeedDialStored(stored) => self.speed_dial_stored(stored),
            Input::PortalCodeIssued(code) => self.portal_code_issued(code),
            Input::VoucherRedeemed(outcome) => self.voucher_redeemed(outcome, now),
            Input::PinChanged(outcome) => self.pin_changed(outcome, now),
            Input::RetailRecharged(outcome) => self.retail_recharged(outcome, now),
            Input::Authorized {
                attempt,
                authorization,
            } if self.is_current(attempt, Phase::Authorizing) => {
                self.authorized(authorization, now)
            }
            Input::AuthorizationRefused { attempt, refusal }
                if self.is_current(attempt, Phase::Authorizing) =>
            {
                self.refused(refusal, now)
            }
            Input::CarrierTrying { attempt, carrier }
                if self.is_current(attempt, Phase::Connecting) =>
            {
                self.carrier_trying(carrier, now)
            }
            Input::CarrierProgress {
                attempt,
                early_media,
            } if self.is_current(attempt, Phase::Connecting) => self.carrier_progress(early_media),
            Input::CarrierAnswered { attempt } if self.is_current(attempt, Phase::Connecting) => {
                self.carrier_answered(now)
            }
            Input::CarrierFailed {
                attempt,
                sip_status,
                failover,
            } if self.is_current(attempt, Phase::Connecting) => {
                self.carrier_failed(sip_status, failover, now)
            }
            Input::CarrierHungUp { attempt } if self.is_current(attempt, Phase::Bridged) => {
                self.carrier_hung_up(now)
            }
            Input::Authorized { .. }
            | Input::AuthorizationRefused { .. }
            | Input::CarrierTrying { .. }
            | Input::CarrierProgress { .. }
            | Input::CarrierAnswered { .. }
            | Input::CarrierFailed { .. }
            | Input::CarrierHungUp { .. } => {}
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..MAX_TIMERS_PER_WAKE {
            match self.poll_timeout() {
                Some(deadline) if deadline <= now => self.fire_timer(now),
                _ => return,
            }
        }
    }

    // ----- helpers -----

    fn is_current(&self, attempt: AttemptId, phase: Phase) -> bool {
        self.phase() == phase && self.attempt.as_ref().map(|open| open.id) == Some(attempt)
    }

    fn since_start(&self, instant: Instant) -> u64 {
        milliseconds(instant.saturating_duration_since(self.started))
    }

    fn request_deadline(&self, now: Instant) -> Option<Instant> {
        deadline_after(now, Duration::from_millis(self.config.request_timeout_ms))
    }

    /// Words in the call's language, or `None` when they cannot be said (the caller hears
    /// the rest of the prompt without them).
    fn speak(
        &self,
        say: impl FnOnce(&Grammar) -> Result<Vec<&'static str>, SpeechError>,
    ) -> Option<Vec<&'static str>> {
        self.book
            .grammar(self.language)
            .and_then(|grammar| say(grammar).ok())
    }

    fn prompts(&self, names: &[&'static str]) -> Vec<Prompt> {
        names
            .iter()
            .map(|&name| Prompt {
                language: self.language,
                name,
            })
            .collect()
    }

    fn next_playback_id(&mut self) -> PlaybackId {
        let id = PlaybackId(self.next_playback);
        self.next_playback += 1;
        id
    }

    fn play(&mut self, prompts: Vec<Prompt>, barge_in: bool) -> PlaybackId {
        let playback = self.next_playback_id();
        self.outputs.push_back(Output::Play {
            playback,
            prompts,
            barge_in,
        });
        playback
    }

    fn play_tone(&mut self, tone: Tone) -> PlaybackId {
        let playback = self.next_playback_id();
        self.outputs.push_back(Output::PlayTone { playback, tone });
        playback
    }

    fn stop(&mut self, playback: Option<PlaybackId>) {
        if let Some(playback) = playback {
            self.outputs.push_back(Output::StopPlayback { playback });
        }
    }

    // ----- IVR -----

    fn playback_finished(&mut self, finished: PlaybackId, now: Instant) {
        let (first_digit, inter_digit) = (
            self.config.first_digit_timeout(),
            self.config.inter_digit_timeout(),
        );
        if let Some((_, entry)) = self.state.entry() {
            entry.prompt_finished(finished, now, first_digit, inter_digit);
            return;
        }
        match &mut self.state {
            State::Welcome { playback, .. } if *playback == Some(finished) => {
                *playback = None;
                self.leave_welcome_when_ready(now);
            }
            State::AnnouncingBalance {
                playback,
                destination,
            } if *playback == finished => {
                let destination = std::mem::take(destination);
                self.open_attempt(destination, now);
            }
            State::AnnouncingTalkTime { playback } if *playback == finished => self.place_call(now),
            State::Bridged {
                warning_playback, ..
            } if *warning_playback == Some(finished) => *warning_playback = None,
            State::Farewell {
                playback, cause, ..
            } if *playback == finished => {
                let cause = *cause;
                self.hang_up_after_farewell(cause, now);
            }
            _ => {}
        }
    }

    fn caller_id_looked_up(&mut self, answer: CallerIdLookup, now: Instant) {
        let State::Welcome { caller_lookup, .. } = &mut self.state else {
            return;
        };
        if !matches!(caller_lookup, CallerLookupState::Pending { .. }) {
            return;
        }
        *caller_lookup = match answer {
            // Seed 002: below the account's minimum, caller-ID recognition is disabled.
            CallerIdLookup::Found(account)
                if self.config.ani_authentication
                    && account.balance_micros >= account.minimum_micros =>
            {
                CallerLookupState::Accepted(account)
            }
            CallerIdLookup::Found(account) => {
                self.remembered_language = account.language;
                CallerLookupState::Declined
            }
            CallerIdLookup::Remembered(language) => {
                self.remembered_language = Some(language);
                CallerLookupState::Declined
            }
            CallerIdLookup::NotRegistered => CallerLookupState::Declined,
        };
        self.leave_welcome_when_ready(now);
    }

    /// After the welcome has played and the caller-ID lookup has answered.
    fn leave_welcome_when_ready(&mut self, now: Instant) {
        let State::Welcome {
            playback: None,
            caller_lookup,
        } = &self.state
        else {
            return;
        };
        match caller_lookup {
            CallerLookupState::Pending { .. } => {}
            CallerLookupState::Accepted(account) => {
                let account = account.clone();
                let preferred = account
                    .language
                    .filter(|_| self.config.remember_language)
                    .filter(|language| self.config.languages.contains(language));
                if let Some(language) = preferred {
                    self.language = language;
                }
                let forward_to = self
                    .preset_destination
                    .take()
                    .or_else(|| self.forward_destination(&account));
                self.account = Some(account);
                self.authenticated_by = Some(AuthMethod::CallerId);
                if let Some(destination) = forward_to {
                    self.forward(destination, now);
                } else if preferred.is_none() && self.config.languages.len() > 1 {
                    self.offer_languages();
                } else {
                    self.after_authentication();
                }
            }
            CallerLookupState::NotAsked | CallerLookupState::Declined => {
                let remembered = self
                    .remembered_language
                    .filter(|_| self.config.remember_language)
                    .filter(|language| self.config.languages.contains(language));
                if let Some(language) = remembered {
                    self.language = language;
                    self.ask_pin(&[]);
                } else if self.config.languages.len() > 1 {
                    self.offer_languages();
                } else {
                    self.ask_pin(&[]);
                }
            }
        }
    }

    /// Where a recognised caller is forwarded: the account's destination, normalized, on a
    /// forwarding access number. `None` (the caller gets the normal IVR, i.e. destination
    /// entry) when the number does not forward, the account has no destination or the
    /// stored one is not a valid number.
    fn forward_destination(&self, account: &AccountInfo) -> Option<Pii<String>> {
        if !self.config.forwarding {
            return None;
        }
        let stored = account.forward_destination.as_ref()?;
        normalize_destination(stored.expose()).ok().map(Pii::new)
    }

    /// DID forwarding: no PIN, no destination entry; the balance is announced if configured,
    /// then the preset destination is authorized.
    fn forward(&mut self, destination: Pii<String>, now: Instant) {
        self.forwarded = true;
        self.welcome_owed = false;
        let balance = self.balance_words();
        if balance.is_empty() {
            self.open_attempt(destination, now);
            return;
        }
        let prompts = self.prompts(&balance);
        let playback = self.play(prompts, true);
        self.state = State::AnnouncingBalance {
            playback,
            destination,
        };
    }

    /// The skipped welcome, once, in front of the first IVR prompt.
    fn owed_welcome(&mut self) -> Vec<&'static str> {
        if std::mem::take(&mut self.welcome_owed) {
            vec!["welcome"]
        } else {
            Vec::new()
        }
    }

    /// Answers a caller still ringing (a forwarding number's): before a question, or when
    /// the carrier answers.
    fn answer_caller(&mut self) {
        if !std::mem::replace(&mut self.caller_answered, true) {
            self.outputs.push_back(Output::AnswerCaller);
        }
    }

    /// Each language's `choose_language` prompt, spoken in that language.
    fn offer_languages(&mut self) {
        self.answer_caller();
        let owed = self.owed_welcome();
        let welcome = self.prompts(&owed);
        let menu = welcome
            .into_iter()
            .chain(self.config.languages.iter().map(|&language| Prompt {
                language,
                name: "choose_language",
            }))
            .collect();
        let playback = self.play(menu, true);
        self.state = State::ChoosingLanguage(Entry::new(playback, 1));
    }

    fn language_chosen(&mut self, language: Language) {
        self.language = language;
        self.language_from_menu = true;
        if self.account.is_some() {
            self.after_authentication();
        } else {
            self.ask_pin(&[]);
        }
    }

    fn ask_pin(&mut self, before: &[&'static str]) {
        self.answer_caller();
        let mut names = self.owed_welcome();
        names.extend_from_slice(before);
        names.push("enter_pin");
        let prompts = self.prompts(&names);
        let playback = self.play(prompts, true);
        self.state = State::EnteringPin(Entry::new(playback, self.config.pin_max_length));
    }

    fn after_authentication(&mut self) {
        self.answer_caller();
        self.remember_language();
        if self.config.recharge_only {
            self.ask_voucher(&[]);
            return;
        }
        if self.config.retail {
            self.ask_customer_number(&[]);
            return;
        }
        if self.config.balance_only
            && let Some(account) = &self.account
        {
            let account = account.account;
            self.outputs.push_back(Output::LookupLastCall { account });
            self.state = State::CheckingLastCall;
            return;
        }
        let before = self.balance_words();
        self.ask_destination(&before);
    }

    /// A balance line: "you have ..., your last call cost ... and lasted ...", goodbye.
    fn announce_account(&mut self, last: Option<LastCall>, now: Instant) {
        let mut words = Vec::new();
        if let Some(account) = &self.account {
            if let Some(amount) = self
                .speak(|grammar| speech::amount(grammar, account.balance_micros, &account.currency))
            {
                words.push("you_have");
                words.extend(amount);
            }
            match last {
                Some(last) => {
                    if let Some(cost) = self.speak(|grammar| {
                        speech::amount(grammar, last.cost_micros, &account.currency)
                    }) {
                        words.push("last_call_cost");
                        words.extend(cost);
                    }
                    if let Some(length) =
                        self.speak(|grammar| speech::length(grammar, last.talk_ms))
                    {
                        words.push("last_call_lasted");
                        words.extend(length);
                    }
                }
                None => words.push("no_last_call"),
            }
        }
        self.farewell(&words, DisconnectCause::Normal, now);
    }

    /// "You have twelve dollars and fifty cents", when `announce_balance` is on and the
    /// amount can be spoken; otherwise nothing.
    fn balance_words(&self) -> Vec<&'static str> {
        let mut words = Vec::new();
        if self.config.announce_balance
            && let Some(account) = &self.account
            && let Some(amount) = self
                .speak(|grammar| speech::amount(grammar, account.balance_micros, &account.currency))
        {
            words.push("you_have");
            words.extend(amount);
        }
        words
    }

    fn ask_destination(&mut self, before: &[&'static str]) {
        let mut names = self.owed_welcome();
        names.extend_from_slice(before);
        names.push("enter_destination");
        let prompts = self.prompts(&names);
        let playback = self.play(prompts, true);
        let codes =
            self.config.speed_dial || self.config.voucher_recharge || self.config.pin_change;
        let entry = Entry::new(playback, self.config.max_destination_length).with_codes(codes);
        self.state = State::EnteringDestination(entry);
    }

    fn digit(&mut self, digit: char, now: Instant) {
        let (first_digit, inter_digit) = (
            self.config.first_digit_timeout(),
            self.config.inter_digit_timeout(),
        );
        if let Some((kind, entry)) = self.state.entry() {
            let stop = entry.take_prompt();
            let step = entry.digit(digit, now, first_digit, inter_digit);
            if let Some(playback) = stop {
                self.outputs.push_back(Output::StopPlayback { playback });
            }
            self.entry_step(kind, step, now);
            return;
        }
        match &self.state {
            State::AnnouncingBalance {
                playback,
                destination,
            } => {
                // Barge-in skips the announcement.
                let playback = *playback;
                let destination = destination.clone();
                self.stop(Some(playback));
                self.open_attempt(destination, now);
            }
            State::AnnouncingTalkTime { playback } => {
                // Barge-in skips the announcement.
                let playback = *playback;
                self.stop(Some(playback));
                self.place_call(now);
            }
            State::Bridged { .. } => self.key_during_call(digit, now),
            _ => {}
        }
    }

    fn entry_step(&mut self, kind: EntryKind, step: EntryStep, now: Instant) {
        match step {
            EntryStep::Pending => {}
            EntryStep::NoInput => self.no_input(kind, now),
            EntryStep::Complete(digits) => {
                self.no_input = 0;
                match kind {
                    EntryKind::Language => {
                        let chosen = self.config.languages.iter().copied().find(|language| {
                            self.book
                                .grammar(*language)
                                .is_some_and(|grammar| digits.starts_with(grammar.menu_digit()))
                        });
                        match chosen {
                            Some(language) => self.language_chosen(language),
                            None => self.no_input(kind, now),
                        }
                    }
                    EntryKind::Pin => self.pin_entered(digits, now),
                    EntryKind::Destination => self.destination_entered(digits, now),
                    EntryKind::Voucher => self.voucher_entered(digits, now),
                    EntryKind::NewPin => self.new_pin_entered(digits, now),
                    EntryKind::ConfirmPin => self.new_pin_confirmed(digits, now),
                    EntryKind::CustomerNumber => self.customer_number_entered(digits, now),
                    EntryKind::Amount => self.amount_entered(digits, now),
                    EntryKind::ConfirmRecharge => self.recharge_confirmed(digits, now),
                }
            }
        }
    }

    /// Silence (or an unusable key): replay the prompt, up to `max_no_input` times.
    fn no_input(&mut self, kind: EntryKind, now: Instant) {
        self.no_input += 1;
        let exhausted = self.no_input >= self.config.max_no_input;
        match (kind, exhausted) {
            (EntryKind::Language, true) => {
                self.no_input = 0;
                let language = self.config.default_language();
                self.language_chosen(language);
            }
            (EntryKind::Language, false) => self.offer_languages(),
            (_, true) => self.farewell(&[], DisconnectCause::NoInput, now),
            (EntryKind::Pin, false) => self.ask_pin(&[]),
            (EntryKind::Destination, false) => self.ask_destination(&[]),
            (EntryKind::Voucher, false) => self.ask_voucher(&[]),
            (EntryKind::NewPin | EntryKind::ConfirmPin, false) => self.ask_new_pin(&[]),
            (EntryKind::CustomerNumber | EntryKind::Amount | EntryKind::ConfirmRecharge, false) => {
                self.ask_customer_number(&[])
            }
        }
    }

    fn pin_entered(&mut self, pin: String, now: Instant) {
        let length = pin.chars().count();
        if length < self.config.pin_min_length || length > self.config.pin_max_length {
            self.pin_failed(now);
            return;
        }
        let pin = Pii::new(pin);
        self.outputs.push_back(if self.config.retail {
            Output::LookupAgentByPin { pin }
        } else {
            Output::LookupByPin { pin }
        });
        self.state = State::CheckingPin {
            deadline: self.request_deadline(now),
        };
    }

    fn pin_failed(&mut self, now: Instant) {
        self.pin_failures += 1;
        self.outputs.push_back(Output::PinFailed {
            caller_id: self.caller_id.clone(),
            failures: self.pin_failures,
        });
        if self.pin_failures >= self.config.max_pin_tries {
            self.farewell(&["invalid_pin"], DisconnectCause::AuthenticationFailed, now);
        } else {
            self.ask_pin(&["invalid_pin"]);
        }
    }

    fn pin_looked_up(&mut self, answer: PinLookup, now: Instant) {
        if !matches!(self.state, State::CheckingPin { .. }) {
            return;
        }
        match answer {
            PinLookup::Found(account) => {
                self.account = Some(account);
                self.authenticated_by = Some(AuthMethod::Pin);
                self.after_authentication();
            }
            PinLookup::Rejected => self.pin_failed(now),
            PinLookup::LockedOut => self.farewell(&["locked_out"], DisconnectCause::LockedOut, now),
            // Unrevealed, an unusable card sounds exactly like a wrong PIN (issue 20).
            PinLookup::CardInUse | PinLookup::CardExpired if !self.config.reveal_card_state => {
                self.pin_failed(now)
            }
            PinLookup::CardInUse => {
                self.farewell(&["card_in_use"], DisconnectCause::CardInUse, now)
            }
            PinLookup::CardExpired => {
                self.farewell(&["card_expired"], DisconnectCause::CardExpired, now)
            }
            PinLookup::Unavailable => {
                self.farewell(&["call_failed"], DisconnectCause::SystemError, now)
            }
        }
    }

    fn destination_entered(&mut self, dialled: String, now: Instant) {
        if self.service_code(&dialled, now) {
            return;
        }
        let Ok(destination) = normalize_destination(&dialled) else {
            self.destination_refused(
                "invalid_destination",
                DisconnectCause::UnknownDestination,
                now,
            );
            return;
        };
        self.open_attempt(Pii::new(destination), now);
    }

    /// Sends a normalized destination to `Authorize` as a new attempt.
    fn open_attempt(&mut self, destination: Pii<String>, now: Instant) {
        let Some(account) = self.account.clone() else {
            // Unreachable by construction: an attempt follows authentication.
            self.farewell(&["call_failed"], DisconnectCause::SystemError, now);
            return;
        };
        self.attempts_opened += 1;
        self.last_destination = Some(destination.clone());
        let id = AttemptId(self.attempts_opened);
        self.outputs.push_back(Output::Authorize {
            attempt: id,
            account: account.account,
            card: account.card,
            destination: destination.clone(),
        });
        self.attempt = Some(OpenAttempt {
            id,
            account,
            destination,
            started: now,
            authorization: None,
            carrier: None,
            current_try: None,
            tries: Vec::new(),
            answered: None,
            sip_status: None,
        });
        self.state = State::Authorizing {
            deadline: self.request_deadline(now),
        };
    }

    /// A destination that cannot be called: say why and ask again, up to
    /// `max_destination_tries` in a row.
    fn destination_refused(&mut self, prompt: &'static str, cause: DisconnectCause, now: Instant) {
        if self.forwarded {
            self.farewell(&[prompt], cause, now);
            return;
        }
        self.destination_failures += 1;
        if self.destination_failures >= self.config.max_destination_tries {
            self.farewell(&[prompt], cause, now);
        } else {
            self.ask_destination(&[prompt]);
        }
    }

    fn authorized(&mut self, authorization: Authorization, now: Instant) {
        let announcement =
            self.speak(|grammar| speech::duration(grammar, authorization.announced_limit_ms));
        if let Some(attempt) = self.attempt.as_mut() {
            attempt.authorization = Some(authorization);
        }
        match announcement {
            Some(words) if self.config.announce_talk_time => {
                let mut names = vec!["you_can_talk"];
                names.extend(words);
                let prompts = self.prompts(&names);
                let playback = self.play(prompts, true);
                self.state = State::AnnouncingTalkTime { playback };
            }
            _ => self.place_call(now),
        }
    }

    fn refused(&mut self, refusal: Refusal, now: Instant) {
        let cause = refusal.cause();
        self.close_attempt(cause, Party::Switch, now, now);
        match refusal {
            Refusal::CardInUse => self.farewell(&["card_in_use"], cause, now),
            Refusal::NoCredit => self.destination_refused("no_credit", cause, now),
            Refusal::UnknownDestination => {
                self.destination_refused("invalid_destination", cause, now)
            }
            Refusal::BlockedDestination => {
                self.destination_refused("blocked_destination", cause, now)
            }
            Refusal::Unavailable => self.destination_refused("call_failed", cause, now),
        }
    }

    // ----- carrier leg -----

    fn place_call(&mut self, now: Instant) {
        let Some(attempt) = self.attempt.as_ref() else {
            return;
        };
        let limit_ms = attempt
            .authorization
            .as_ref()
            .map_or(0, |authorization| authorization.limit_ms);
        self.outputs.push_back(Output::PlaceCall {
            attempt: attempt.id,
            destination: attempt.destination.clone(),
            limit_ms,
        });
        let ringback = self.play_tone(Tone::Ringback);
        self.state = State::Connecting {
            ringback: Some(ringback),
            early_media: false,
            deadline: deadline_after(now, Duration::from_millis(self.config.no_answer_timeout_ms)),
        };
    }

    fn carrier_trying(&mut self, carrier: String, now: Instant) {
        self.end_carrier_try(None, now);
        if let Some(attempt) = self.attempt.as_mut() {
            attempt.carrier = Some(carrier.clone());
            attempt.current_try = Some((carrier, now));
        }
    }

    /// Closes the carrier try in progress, if any, into the attempt's list.
    fn end_carrier_try(&mut self, sip_status: Option<u16>, now: Instant) {
        let started_at = self.started;
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        if let Some((carrier, started)) = attempt.current_try.take() {
            attempt.tries.push(CarrierTry {
                carrier,
                started_ms: milliseconds(started.saturating_duration_since(started_at)),
                ended_ms: milliseconds(now.saturating_duration_since(started_at)),
                sip_status,
            });
        }
    }

    fn carrier_progress(&mut self, with_early_media: bool) {
        let Some(id) = self.attempt.as_ref().map(|attempt| attempt.id) else {
            return;
        };
        let State::Connecting {
            ringback,
            early_media,
            ..
        } = &mut self.state
        else {
            return;
        };
        if with_early_media && !*early_media {
            *early_media = true;
            if let Some(playback) = ringback.take() {
                self.outputs.push_back(Output::StopPlayback { playback });
            }
            self.outputs.push_back(Output::Bridge {
                attempt: id,
                mode: BridgeMode::EarlyMedia,
            });
        }
    }

    /// Leaves `Connecting` with the caller still there: stop ringback or early media.
    fn stop_connecting_media(&mut self) {
        let Some(id) = self.attempt.as_ref().map(|attempt| attempt.id) else {
            return;
        };
        if let State::Connecting {
            ringback,
            early_media,
            ..
        } = &mut self.state
        {
            if let Some(playback) = ringback.take() {
                self.outputs.push_back(Output::StopPlayback { playback });
            }
            if std::mem::take(early_media) {
                self.outputs.push_back(Output::Unbridge { attempt: id });
            }
        }
    }

    fn carrier_answered(&mut self, now: Instant) {
        self.answer_caller();
        self.stop_connecting_media();
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        attempt.answered = Some(now);
        attempt.sip_status = Some(200);
        let id = attempt.id;
        let limit = Duration::from_millis(
            attempt
                .authorization
                .as_ref()
                .map_or(0, |authorization| authorization.limit_ms),
        );
        let lead = Duration::from_millis(self.config.warning_lead_ms);
        let warning_at = if limit > lead {
            deadline_after(now, limit - lead)
        } else {
            None
        };
        self.outputs.push_back(Output::Bridge {
            attempt: id,
            mode: BridgeMode::Full,
        });
        self.destination_failures = 0;
        self.state = State::Bridged {
            warning_at,
            limit_at: deadline_after(now, limit),
            warning_playback: None,
            keys: String::new(),
        };
    }

    fn carrier_failed(&mut self, sip_status: u16, failover: bool, now: Instant) {
        self.end_carrier_try(Some(sip_status), now);
        if failover {
            // The shell tries the next carrier: back to ringback until it answers or fails.
            let id = self.attempt.as_ref().map(|attempt| attempt.id);
            let restart_ringback = match &mut self.state {
                State::Connecting {
                    early_media,
                    deadline,
                    ..
                } => {
                    *deadline = deadline_after(
                        now,
                        Duration::from_millis(self.config.no_answer_timeout_ms),
                    );
                    std::mem::take(early_media)
                }
                _ => false,
            };
            if restart_ringback && let Some(attempt) = id {
                self.outputs.push_back(Output::Unbridge { attempt });
                let playback = self.play_tone(Tone::Ringback);
                if let State::Connecting { ringback, .. } = &mut self.state {
                    *ringback = Some(playback);
                }
            }
            return;
        }
        if let Some(attempt) = self.attempt.as_mut() {
            attempt.sip_status = Some(sip_status);
        }
        let cause = DisconnectCause::from_sip_status(sip_status);
        self.stop_connecting_media();
        self.close_attempt(cause, Party::Carrier, now, now);
        self.after_attempt(&[outcome_prompt(cause)], cause, now);
    }

    /// After an attempt ended with the caller still on the line: another destination, or
    /// goodbye on a forwarded call (there is nothing else to call).
    fn after_attempt(&mut self, before: &[&'static str], cause: DisconnectCause, now: Instant) {
        if self.forwarded {
            self.farewell(before, cause, now);
        } else {
            self.ask_destination(before);
        }
    }

    fn no_answer(&mut self, now: Instant) {
        self.stop_connecting_media();
        self.release_carrier(DisconnectCause::NoAnswer);
        self.end_carrier_try(None, now);
        self.close_attempt(DisconnectCause::NoAnswer, Party::Switch, now, now);
        self.after_attempt(
            &[outcome_prompt(DisconnectCause::NoAnswer)],
            DisconnectCause::NoAnswer,
            now,
        );
    }

    fn carrier_hung_up(&mut self, now: Instant) {
        if let Some(attempt) = self.attempt.as_ref().map(|attempt| attempt.id) {
            self.outputs.push_back(Output::Unbridge { attempt });
        }
        self.leave_bridged(DisconnectCause::CarrierHungUp, Party::Carrier, now);
    }

    /// Seed 001: after a call the same card can place another until the caller hangs up
    /// (a forwarded call says goodbye instead).
    fn leave_bridged(&mut self, cause: DisconnectCause, by: Party, now: Instant) {
        if let State::Bridged {
            warning_playback, ..
        } = &mut self.state
            && let Some(playback) = warning_playback.take()
        {
            self.outputs.push_back(Output::StopPlayback { playback });
        }
        self.close_attempt(cause, by, now, now);
        self.after_attempt(&[], cause, now);
    }

    /// Watches for `end_leg_digits`: the caller ends this call but keeps the line. Not on a
    /// forwarded call, whose keys are meant for the far end (its voicemail, its menus).
    fn key_during_call(&mut self, digit: char, now: Instant) {
        if self.forwarded {
            return;
        }
        let Some(end_leg) = self.config.end_leg_digits.as_deref() else {
            return;
        };
        let State::Bridged { keys, .. } = &mut self.state else {
            return;
        };
        keys.push(digit);
        if keys.len() > end_leg.len() {
            keys.remove(0);
        }
        if keys != end_leg {
            return;
        }
        self.release_carrier(DisconnectCause::CallerHungUp);
        self.leave_bridged(DisconnectCause::CallerHungUp, Party::Caller, now);
    }

    fn warn(&mut self) {
        let warning = match self.config.warning {
            WarningKind::Beep => self.play_tone(Tone::WarningBeep),
            WarningKind::Prompt => {
                let prompts = self.prompts(&["credit_warning"]);
                self.play(prompts, false)
            }
        };
        if let State::Bridged {
            warning_playback, ..
        } = &mut self.state
        {
            *warning_playback = Some(warning);
        }
    }

    // ----- timers -----

    fn fire_timer(&mut self, now: Instant) {
        let due = |deadline: &Option<Instant>| deadline.is_some_and(|at| at <= now);
        if let Some((kind, entry)) = self.state.entry() {
            let step = entry.timeout(now);
            self.entry_step(kind, step, now);
            return;
        }
        match &mut self.state {
            State::Welcome { caller_lookup, .. } => {
                if let CallerLookupState::Pending { deadline } = caller_lookup
                    && due(deadline)
                {
                    // A slow ledger must not strand the caller: fall back to the PIN.
                    *caller_lookup = CallerLookupState::Declined;
                    self.leave_welcome_when_ready(now);
                }
            }
            State::RetailRecharging { deadline } if due(deadline) => {
                // The ledger may still move it: say nothing moved for sure, and end.
                self.farewell(&["call_failed"], DisconnectCause::SystemError, now)
            }
            State::LookingUpNumber { deadline }
            | State::StoringSpeedDial { deadline, .. }
            | State::IssuingPortalCode { deadline }
            | State::RedeemingVoucher { deadline }
            | State::ChangingPin { deadline }
                if due(deadline) =>
            {
                self.service_timed_out(now)
            }
            State::CheckingPin { deadline } if due(deadline) => {
                self.farewell(&["call_failed"], DisconnectCause::SystemError, now)
            }
            State::Authorizing { deadline } if due(deadline) => {
                self.close_attempt(DisconnectCause::SystemError, Party::Switch, now, now);
                self.destination_refused("call_failed", DisconnectCause::SystemError, now);
            }
            State::Connecting { deadline, .. } if due(deadline) => self.no_answer(now),
            State::Bridged {
                warning_at,
                limit_at,
                ..
            } => {
                let limit_due = due(limit_at);
                if due(warning_at) {
                    *warning_at = None;
                    if !limit_due {
                        self.warn();
                    }
                }
                if limit_due {
                    let cause = self
                        .attempt
                        .as_ref()
                        .and_then(|attempt| attempt.authorization.as_ref())
                        .map_or(DisconnectCause::CreditExhausted, |authorization| {
                            authorization.limit_cause
                        });
                    self.end_call(cause, Party::Switch, now, now, true);
                }
            }
            State::Farewell {
                deadline, cause, ..
            } if due(deadline) => {
                let cause = *cause;
                self.hang_up_after_farewell(cause, now);
            }
            _ => {}
        }
    }

    // ----- endings -----

    /// Plays the goodbye (after `before`) and hangs up when it ends.
    fn farewell(&mut self, before: &[&'static str], cause: DisconnectCause, now: Instant) {
        if self.attempt.is_some() {
            self.release_carrier(cause);
            self.close_attempt(cause, Party::Switch, now, now);
        }
        let mut names = before.to_vec();
        names.push("goodbye");
        let prompts = self.prompts(&names);
        let playback = self.play(prompts, false);
        self.state = State::Farewell {
            playback,
            deadline: deadline_after(now, Duration::from_millis(self.config.farewell_timeout_ms)),
            cause,
        };
    }

    fn hang_up_after_farewell(&mut self, cause: DisconnectCause, now: Instant) {
        self.outputs.push_back(Output::HangUpCaller {
            release: Release::from(cause),
        });
        self.finish(cause, Party::Switch, now);
    }

    fn caller_hung_up(&mut self, now: Instant) {
        if let State::Farewell { cause, .. } = self.state {
            self.finish(cause, Party::Caller, now);
            return;
        }
        self.end_call(
            DisconnectCause::CallerHungUp,
            Party::Caller,
            now,
            now,
            false,
        );
    }

    /// Tears everything down: the carrier leg, the caller (unless they already left), the
    /// open attempt's settlement, then the call record.
    fn end_call(
        &mut self,
        cause: DisconnectCause,
        by: Party,
        now: Instant,
        billed_until: Instant,
        hang_up_caller: bool,
    ) {
        self.release_carrier(cause);
        if hang_up_caller {
            self.outputs.push_back(Output::HangUpCaller {
                release: Release::from(cause),
            });
        }
        self.end_carrier_try(None, now);
        self.close_attempt(cause, by, now, billed_until);
        self.finish(cause, by, now);
    }

    /// CANCEL an unanswered carrier INVITE, or BYE an answered carrier leg.
    fn release_carrier(&mut self, cause: DisconnectCause) {
        let Some(attempt) = self.attempt.as_ref().map(|attempt| attempt.id) else {
            return;
        };
        match &self.state {
            State::Connecting { early_media, .. } => {
                if *early_media {
                    self.outputs.push_back(Output::Unbridge { attempt });
                }
                self.outputs.push_back(Output::CancelCarrier {
                    attempt,
                    release: Release::from(cause),
                });
            }
            State::Bridged { .. } => {
                self.outputs.push_back(Output::Unbridge { attempt });
                self.outputs.push_back(Output::HangUpCarrier {
                    attempt,
                    release: Release::from(cause),
                });
            }
            _ => {}
        }
    }

    /// Settles the open attempt (billing answered time up to `billed_until`, never past the
    /// limit) and writes its record.
    fn close_attempt(
        &mut self,
        cause: DisconnectCause,
        by: Party,
        now: Instant,
        billed_until: Instant,
    ) {
        let Some(attempt) = self.attempt.take() else {
            return;
        };
        let limit_ms = attempt
            .authorization
            .as_ref()
            .map(|authorization| authorization.limit_ms);
        let duration_ms = attempt.answered.map_or(0, |answered| {
            let talked = milliseconds(billed_until.saturating_duration_since(answered));
            limit_ms.map_or(talked, |limit| talked.min(limit))
        });
        if attempt.answered.is_some() {
            self.answered_attempts += 1;
        }
        self.billed_ms = self.billed_ms.saturating_add(duration_ms);
        self.outputs.push_back(Output::Settle(Settlement {
            call_id: self.call_id.clone(),
            attempt: attempt.id,
            account: attempt.account.account,
            card: attempt.account.card,
            answered_ms: duration_ms,
            cause,
        }));
        let mut tries = attempt.tries;
        if let Some((carrier, started)) = attempt.current_try {
            tries.push(CarrierTry {
                carrier,
                started_ms: self.since_start(started),
                ended_ms: self.since_start(now),
                sip_status: attempt.answered.map(|_| 200),
            });
        }
        self.outputs.push_back(Output::AttemptRecord(AttemptRecord {
            call_id: self.call_id.clone(),
            attempt: attempt.id,
            account: attempt.account.account,
            card: attempt.account.card,
            caller_id: self.caller_id.clone(),
            access_number: self.access_number.clone(),
            destination: attempt.destination,
            carrier: attempt.carrier,
            carrier_tries: tries,
            started_ms: self.since_start(attempt.started),
            answered_ms: attempt.answered.map(|answered| self.since_start(answered)),
            ended_ms: self.since_start(now),
            duration_ms,
            limit_ms,
            reserved_micros: attempt
                .authorization
                .as_ref()
                .map_or(0, |authorization| authorization.reserved_micros),
            currency: attempt.account.currency,
            sip_status: attempt.sip_status,
            q850: cause.q850(),
            hung_up_by: by,
            cause,
        }));
    }

    fn finish(&mut self, cause: DisconnectCause, by: Party, now: Instant) {
        let (account, card) = match &self.account {
            Some(account) => (Some(account.account), account.card),
            None => (None, None),
        };
        self.outputs.push_back(Output::CallRecord(CallRecord {
            call_id: self.call_id.clone(),
            account,
            card,
            authenticated_by: self.authenticated_by,
            caller_id: self.caller_id.clone(),
            access_number: self.access_number.clone(),
            language: self.language,
            ended_ms: self.since_start(now),
            attempts: self.attempts_opened,
            answered_attempts: self.answered_attempts,
            billed_ms: self.billed_ms,
            q850: cause.q850(),
            hung_up_by: by,
            cause,
        }));
        self.state = State::Finished;
    }
}
