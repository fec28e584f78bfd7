//! The plain data that crosses the engine boundary: inputs from the shell, outputs to it,
//! and the settlement and CDR records.

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use talktime_pii::Pii;

use crate::cause::{DisconnectCause, Party, Release};
use crate::config::Language;

/// The caller leg's SIP Call-ID (or any id unique per call); settlement is idempotent by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub String);

impl fmt::Display for CallId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// One destination dialled within a call: 1, 2, 3... The shell may try several carriers
/// for one attempt (failover); they are listed in the attempt's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttemptId(pub u32);

/// Names one `Play` or `PlayTone` so its end can be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlaybackId(pub u64);

/// The ledger's account id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub i64);

/// The ledger's card id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CardId(pub i64);

/// An account (and the card used to reach it) as a lookup returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub account: AccountId,
    pub card: Option<CardId>,
    /// Spendable balance in micro-units.
    pub balance_micros: i64,
    /// Caller-ID recognition needs at least this balance (seed 002); below it the PIN is asked.
    pub minimum_micros: i64,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
    /// The account holder's preferred language, used when the caller did not choose one.
    pub language: Option<Language>,
    /// The account's preset DID-forwarding destination (seed 003), as stored: an access number
    /// with `IvrConfig::forwarding` connects a caller-ID-recognised caller straight to it.
    /// Ignored for PIN callers and on other access numbers.
    pub forward_destination: Option<Pii<String>>,
}

/// An account's last answered call, for a balance line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCall {
    /// What it cost, in micro-units of the account's currency.
    pub cost_micros: i64,
    /// How long it lasted (answer to hang-up).
    pub talk_ms: u64,
}

/// Answer to [`Output::LookupByCallerId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerIdLookup {
    Found(AccountInfo),
    NotRegistered,
    /// Not registered, but this caller ID chose `0` on an earlier call: with
    /// `IvrConfig::remember_language` the language menu is skipped.
    Remembered(Language),
}

/// Answer to [`Output::RedeemVoucher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoucherOutcome {
    /// The voucher's value was added; the balance is now `balance_micros`.
    Credited {
        amount_micros: i64,
        balance_micros: i64,
    },
    /// No such code: counted as a guess, like a wrong PIN.
    Unknown,
    AlreadyUsed,
    /// Expired, disabled, or in another currency than the account.
    NotUsable,
    /// A disposable card is never recharged.
    NotRefillable,
    /// The ledger could not answer.
    Unavailable,
}

/// Answer to [`Output::RetailRecharge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetailOutcome {
    /// Moved (now or by an earlier request with the same key); the customer's balance.
    Done { customer_balance_micros: i64 },
    /// The number is not a customer of the agent's reseller.
    UnknownCustomer,
    /// The reseller's free credit is short.
    CreditShort,
    /// The ledger could not answer.
    Unavailable,
}

/// Answer to [`Output::ChangePin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinChangeOutcome {
    Changed,
    /// Another card has this PIN: "choose another", counted as a PIN guess.
    Taken,
    NotRefillable,
    Unavailable,
}

/// Answer to [`Output::LookupByPin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinLookup {
    Found(AccountInfo),
    /// No such PIN. The engine counts it as a failed try.
    Rejected,
    /// The caller ID is locked out after too many failures.
    LockedOut,
    CardInUse,
    CardExpired,
    /// The ledger could not answer (database down): the call ends with "call failed", never
    /// "wrong PIN", and no failed try is counted.
    Unavailable,
}

/// A granted authorization: credit is reserved for this attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The credit timer: the call is cut exactly here after answer.
    pub limit_ms: u64,
    /// What the caller is told ("you can talk for 34 minutes"), after minute shrinking.
    pub announced_limit_ms: u64,
    /// Reserved amount in micro-units.
    pub reserved_micros: i64,
    /// Why the call ends at `limit_ms`: the credit ran out, or a cap (cost per call, spend
    /// per day) was reached first.
    pub limit_cause: crate::DisconnectCause,
}

/// Why an authorization was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    NoCredit,
    UnknownDestination,
    BlockedDestination,
    CardInUse,
    /// The ledger could not answer (a database error): nothing is known of the caller's
    /// money, so the caller hears that the call failed, not that the credit is short.
    Unavailable,
}

impl Refusal {
    pub fn cause(self) -> DisconnectCause {
        match self {
            Refusal::NoCredit => DisconnectCause::NoCredit,
            Refusal::UnknownDestination => DisconnectCause::UnknownDestination,
            Refusal::BlockedDestination => DisconnectCause::BlockedDestination,
            Refusal::CardInUse => DisconnectCause::CardInUse,
            Refusal::Unavailable => DisconnectCause::SystemError,
        }
    }
}

/// Everything the shell tells a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// BYE or CANCEL from the caller.
    CallerHungUp,
    /// A key from RFC 4733, in-band detection or SIP INFO (one stream). `0-9`, `*`, `#`;
    /// anything else is ignored.
    Digit(char),
    /// A `Play` or `PlayTone` ran to its end (not sent for a stopped playback).
    PlaybackFinished {
        playback: PlaybackId,
    },
    CallerIdLookup(CallerIdLookup),
    /// Answer to [`Output::LookupLastCall`]: the account's last answered call, if any.
    LastCall(Option<LastCall>),
    PinLookup(PinLookup),
    /// Answer to [`Output::LookupStoredNumber`]: the number, or `None` when nothing is stored.
    StoredNumber(Option<Pii<String>>),
    /// Answer to [`Output::StoreSpeedDial`]: whether a number was stored.
    SpeedDialStored(bool),
    /// Answer to [`Output::IssuePortalCode`]: the code to read out, or `None` when none was
    /// issued (no caller ID, the ledger down).
    PortalCodeIssued(Option<Pii<String>>),
    VoucherRedeemed(VoucherOutcome),
    PinChanged(PinChangeOutcome),
    RetailRecharged(RetailOutcome),
    Authorized {
        attempt: AttemptId,
        authorization: Authorization,
    },
    AuthorizationRefused {
        attempt: AttemptId,
        refusal: Refusal,
    },
    /// The shell sent an INVITE to this carrier (the first, or the next after failover).
    CarrierTrying {
        attempt: AttemptId,
        carrier: String,
    },
    /// 180 or 183; `early_media` when it carries SDP the caller should hear.
    CarrierProgress {
        attempt: AttemptId,
        early_media: bool,
    },
    CarrierAnswered {
        attempt: AttemptId,
    },
    /// A final failure from a carrier. `failover` when the shell is trying the next carrier of
    /// the route; otherwise this is the outcome of the attempt.
    CarrierFailed {
        attempt: AttemptId,
        sip_status: u16,
        failover: bool,
    },
    /// BYE from the carrier on an answered call.
    CarrierHungUp {
        attempt: AttemptId,
    },
    /// No RTP for too long. An answered call is billed from its answer to now, when the
    /// switch ends it (the carrier bills until our BYE); `last_packet` is for the log.
    MediaInactive {
        last_packet: Instant,
    },
    /// The shell ends the call (shutdown, fatal error) with this cause.
    Abort {
        cause: DisconnectCause,
    },
}

/// One prompt file: `prompts/<language>/<name>.wav`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prompt {
    pub language: Language,
    pub name: &'static str,
}

/// Generated tones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// Repeats until stopped.
    Ringback,
    /// A short beep over the conversation: the credit is about to run out.
    WarningBeep,
}

/// What media flows between the legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BridgeMode {
    /// Carrier to caller only: early media (183 with SDP) before answer.
    EarlyMedia,
    /// Both ways: the call is answered.
    Full,
}

/// Everything a call asks the shell to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send 200 OK to the caller's INVITE (the IVR needs media). Repeated, it is a no-op.
    AnswerCaller,
    /// Send 183 Session Progress with our SDP: prompts and ringback reach the caller as early
    /// media, and the caller is not answered (nor charged by its own carrier) until
    /// [`Output::AnswerCaller`]. DID forwarding numbers start so; the carrier's answer, or
    /// the IVR's first question, answers.
    RingCaller,
    /// Play prompts in order. With `barge_in`, a digit stops it (the engine then sends
    /// `StopPlayback`) and counts as input.
    Play {
        playback: PlaybackId,
        prompts: Vec<Prompt>,
        barge_in: bool,
    },
    /// Play a tone to the caller; while bridged, mixed over the carrier's audio.
    PlayTone {
        playback: PlaybackId,
        tone: Tone,
    },
    StopPlayback {
        playback: PlaybackId,
    },
    /// Answered with [`Input::CallerIdLookup`]. With `remembered_language`, an unregistered
    /// caller ID's remembered language is wanted too (a menu could be skipped).
    LookupByCallerId {
        caller_id: Pii<String>,
        remembered_language: bool,
    },
    /// A balance line wants the account's last answered call (answered with
    /// [`Input::LastCall`]).
    LookupLastCall {
        account: AccountId,
    },
    LookupByPin {
        pin: Pii<String>,
    },
    /// A retail line's agent PIN (a reseller's, not a card's); answered with
    /// [`Input::PinLookup`], whose account is the reseller's own.
    LookupAgentByPin {
        pin: Pii<String>,
    },
    /// Move `amount_micros` from the agent's reseller to its customer `number`, once per
    /// call and `sequence` (the shell keys it so); answered with [`Input::RetailRecharged`].
    RetailRecharge {
        agent: AccountId,
        number: Pii<String>,
        amount_micros: i64,
        sequence: u32,
    },
    /// The number under speed-dial key `slot` (1-9), or with `slot` 0 the last number the
    /// account dialled; answered with [`Input::StoredNumber`].
    LookupStoredNumber {
        account: AccountId,
        slot: u8,
    },
    /// Store `number` (the last number dialled in this call) under `slot`, or when `None` the
    /// account's last number dialled; answered with [`Input::SpeedDialStored`].
    StoreSpeedDial {
        account: AccountId,
        slot: u8,
        number: Option<Pii<String>>,
    },
    /// A one-time code for the customer portal, bound to the account and the caller's number
    /// (`*01`); answered with [`Input::PortalCodeIssued`]. The shell draws the code: the engine
    /// has no randomness.
    IssuePortalCode {
        account: AccountId,
        caller_id: Option<Pii<String>>,
    },
    /// Add a voucher's value to the account, once; answered with [`Input::VoucherRedeemed`].
    RedeemVoucher {
        account: AccountId,
        code: Pii<String>,
    },
    /// Give the card a new PIN; answered with [`Input::PinChanged`].
    ChangePin {
        card: CardId,
        new_pin: Pii<String>,
    },
    /// Remember the caller's language for their next call (on the account and under the
    /// caller ID); nothing comes back.
    RememberLanguage {
        account: Option<AccountId>,
        caller_id: Option<Pii<String>>,
        language: Language,
    },
    /// A PIN try failed (wrong, too short or too long): the shell counts these per caller ID
    /// for lock-out. `failures` counts within this call.
    PinFailed {
        caller_id: Option<Pii<String>>,
        failures: u32,
    },
    /// Rate the destination and reserve credit; answer with `Authorized` or
    /// `AuthorizationRefused` for the same attempt.
    Authorize {
        attempt: AttemptId,
        account: AccountId,
        card: Option<CardId>,
        destination: Pii<String>,
    },
    /// Route and INVITE the carrier(s); `limit_ms` is the talk-time limit after answer.
    PlaceCall {
        attempt: AttemptId,
        destination: Pii<String>,
        limit_ms: u64,
    },
    /// CANCEL the unanswered carrier INVITE.
    CancelCarrier {
        attempt: AttemptId,
        release: Release,
    },
    /// BYE the answered carrier leg.
    HangUpCarrier {
        attempt: AttemptId,
        release: Release,
    },
    Bridge {
        attempt: AttemptId,
        mode: BridgeMode,
    },
    Unbridge {
        attempt: AttemptId,
    },
    /// BYE the caller. Never sent after the caller hung up, and at most once.
    HangUpCaller {
        release: Release,
    },
    /// Charge (or release, with 0 ms) the attempt's reservation. Sent exactly once for every
    /// attempt that was sent to `Authorize`, even if it was refused.
    Settle(Settlement),
    /// The CDR of one attempt, right after its `Settle`.
    AttemptRecord(AttemptRecord),
    /// The CDR of the call. Always the last output.
    CallRecord(CallRecord),
}

/// What to charge for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub call_id: CallId,
    pub attempt: AttemptId,
    pub account: AccountId,
    pub card: Option<CardId>,
    /// Billable talk time; 0 releases the reservation.
    pub answered_ms: u64,
    pub cause: DisconnectCause,
}

/// One carrier tried for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierTry {
    pub carrier: String,
    pub started_ms: u64,
    pub ended_ms: u64,
    /// The final SIP status (200 when answered); `None` when cancelled before a response.
    pub sip_status: Option<u16>,
}

/// How the caller was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    CallerId,
    Pin,
}

/// CDR of one attempt. Times are milliseconds since the call was set up
/// (`CallSetup::now`); the shell adds its wall-clock start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub call_id: CallId,
    pub attempt: AttemptId,
    pub account: AccountId,
    pub card: Option<CardId>,
    pub caller_id: Option<Pii<String>>,
    pub access_number: String,
    /// Normalized destination.
    pub destination: Pii<String>,
    /// The carrier that answered or was tried last.
    pub carrier: Option<String>,
    pub carrier_tries: Vec<CarrierTry>,
    pub started_ms: u64,
    pub answered_ms: Option<u64>,
    pub ended_ms: u64,
    /// Billed talk time (what was settled).
    pub duration_ms: u64,
    pub limit_ms: Option<u64>,
    pub reserved_micros: i64,
    /// The account's currency (ISO 4217), for `reserved_micros`.
    pub currency: String,
    /// The carrier's final SIP status for the attempt, if it got that far.
    pub sip_status: Option<u16>,
    pub q850: u8,
    pub hung_up_by: Party,
    pub cause: DisconnectCause,
}

/// CDR of the whole call (one per caller leg).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub call_id: CallId,
    pub account: Option<AccountId>,
    pub card: Option<CardId>,
    pub authenticated_by: Option<AuthMethod>,
    pub caller_id: Option<Pii<String>>,
    pub access_number: String,
    pub language: Language,
    pub ended_ms: u64,
    pub attempts: u32,
    pub answered_attempts: u32,
    /// Sum of the billed talk time of every attempt.
    pub billed_ms: u64,
    pub q850: u8,
    pub hung_up_by: Party,
    pub cause: DisconnectCause,
}
