//! What the switch asks of the ledger (the database, behind the shell) and what comes back.
//! The shell runs each request as its own task and answers every one with a
//! [`LedgerReply`], so the switch counts what is in flight (its measure of ledger overload,
//! and what a stop waits for) without a shared counter.

use rust_decimal::Decimal;
use talktime_billing::{Cdr, RatingContext};
use talktime_engine::{AccountId, Authorization, CardId, Input};
use talktime_pii::Pii;

/// An authorization with the rating it was computed from; settlement rates with the same.
#[derive(Debug, Clone)]
pub struct Rated {
    pub authorization: Authorization,
    pub context: RatingContext,
    /// The tariff's dial plan, when it names one (it beats the access number's).
    pub dial_plan: Option<String>,
    /// The tariff refuses carriers whose buy rate is above its sell rate.
    pub refuse_loss: bool,
    /// The destination as rated: E.164 digits, which routing uses too.
    pub number: String,
    /// When it was rated (the rating's start, epoch ms) and whether through a toll-free
    /// access number: with `number`, what a restart needs to rate the call again.
    pub rated_at_ms: i64,
    pub toll_free: bool,
    /// Who pays.
    pub account: AccountId,
    pub card: Option<CardId>,
    /// The card's activation fee included in `context` (0 when none is due).
    pub activation_fee_micros: i64,
    /// The card's first use was on record when the call was authorized: the settle has no
    /// first use to record (one statement less a call).
    pub card_first_used: bool,
    /// The same rating without the activation fee, for a settle that finds the card already
    /// activated by another call.
    /// Boxed: most calls have none, and a rating inline is 300 bytes of every live call.
    pub without_activation: Option<Box<RatingContext>>,
    /// The resellers above the payer, its own first, each with the rating it pays by.
    pub levels: Vec<LevelPrice>,
}

/// A reseller level of a call (issue 16) and the rating it pays by: its own tariff's, or
/// `None` for the price of the level below.
#[derive(Debug, Clone)]
pub struct LevelPrice {
    /// 1 = the payer's own reseller.
    pub depth: i64,
    pub reseller_id: i64,
    pub context: Option<RatingContext>,
}

/// A callback's leg to the caller, paid beside the called leg from the same credit.
#[derive(Debug, Clone)]
pub struct CallbackLeg {
    /// Its own hold (attempt 0 of the call), resized by each called leg's authorization.
    pub reservation: String,
    /// Its rating (by the caller's number).
    pub context: RatingContext,
    /// How long it will have run when the called leg answers at the latest (its time so
    /// far plus the called leg's ringing allowance).
    pub elapsed_ms: u64,
    /// Its reseller levels and their ratings (its own authorization's): each level pays for
    /// both legs, and its hold there is resized with the customer's.
    pub levels: Vec<LevelPrice>,
}

/// One request to the ledger. Times are the wall clock (epoch ms) at the moment the switch
/// made the request.
#[derive(Debug)]
#[non_exhaustive]
pub enum LedgerRequest {
    /// Answered with [`LedgerReply::Input`] (`Input::CallerIdLookup`).
    /// With `remembered_language`, an unregistered caller ID's remembered language too.
    LookupCallerId {
        caller_id: Pii<String>,
        remembered_language: bool,
    },
    /// A balance line's last call of `account`; answered with [`LedgerReply::Input`]
    /// (`Input::LastCall`).
    LastCall { account: AccountId },
    /// A SIP subscriber by username; answered with [`LedgerReply::Subscriber`].
    LookupSubscriber { username: String },
    /// Answered with [`LedgerReply::Input`] (`Input::PinLookup`); wrong PINs are counted
    /// under each of `guess_keys`.
    LookupPin {
        pin: Pii<String>,
        /// The caller's number: digits keyed here may confirm a caller ID the customer
        /// registered in the portal.
        caller_id: Option<Pii<String>>,
        guess_keys: Vec<Pii<String>>,
        now_ms: i64,
        /// A retail line's agent PIN (a reseller's), not a card's.
        agent: bool,
    },
    /// Move `amount_micros` from the reseller whose own account is `agent` to its customer
    /// `number`, once per `key`; answered with `Input::RetailRecharged`.
    RetailRecharge {
        agent: AccountId,
        number: Pii<String>,
        amount_micros: i64,
        key: String,
        now_ms: i64,
    },
    /// A speed dial (1-9) or, with `slot` 0, the account's last number dialled; answered
    /// with `Input::StoredNumber`.
    StoredNumber { account: AccountId, slot: u8 },
    /// Store `number` (or the account's last number dialled) under `slot`; answered with
    /// `Input::SpeedDialStored`.
    StoreSpeedDial {
        account: AccountId,
        slot: u8,
        number: Option<Pii<String>>,
        now_ms: i64,
    },
    /// Draw a one-time portal login code for `account` on calls from `caller_id`, kept until
    /// `expires_at_ms`; answered with `Input::PortalCodeIssued` (`None` without a caller ID).
    PortalCode {
        account: AccountId,
        caller_id: Option<Pii<String>>,
        expires_at_ms: i64,
        now_ms: i64,
    },
    /// Add a voucher's value to the account once; answered with `Input::VoucherRedeemed`.
    RedeemVoucher {
        account: AccountId,
        code: Pii<String>,
        call_id: String,
        now_ms: i64,
    },
    /// A refillable card's new PIN; answered with `Input::PinChanged`.
    ChangePin { card: CardId, new_pin: Pii<String> },
    /// Remember a caller's IVR language; answered with [`LedgerReply::Done`].
    RememberLanguage {
        account: Option<AccountId>,
        caller_id: Option<Pii<String>>,
        language: talktime_engine::Language,
        now_ms: i64,
    },
    /// A wrong PIN, counted under each key. Answered with [`LedgerReply::Done`].
    PinFailed {
        guess_keys: Vec<Pii<String>>,
        now_ms: i64,
    },
    /// Reserve credit for an attempt; answered with [`LedgerReply::Authorized`] or an
    /// `Input::AuthorizationRefused`.
    Authorize {
        attempt: talktime_engine::AttemptId,
        reservation: String,
        account: AccountId,
        card: Option<CardId>,
        /// E.164 digits.
        number: String,
        toll_free: bool,
        now_ms: i64,
        /// A callback's leg to the caller, paid from the same credit.
        beside: Option<Box<CallbackLeg>>,
    },
    /// Charge an attempt (with the rating it was authorized with) and write its CDR rows,
    /// once, keyed by the reservation; retried by the shell while the database refuses.
    Settle {
        reservation: String,
        rated: Option<Box<Rated>>,
        answered_ms: u64,
        buy_per_minute: Option<Decimal>,
        cdrs: Vec<Cdr>,
    },
    /// Give back a hold nobody will settle (the attempt ended while it was being made).
    Release { reservation: String, now_ms: i64 },
    /// What a restart needs to bill an answered call (crate::recovery::Checkpoint as JSON).
    Checkpoint {
        reservation: String,
        answered_at_ms: i64,
        checkpoint: String,
    },
}

/// The ledger's answer to one request.
#[derive(Debug)]
#[non_exhaustive]
pub enum LedgerReply {
    /// An input for the call's engine.
    Input(Input),
    Authorized {
        attempt: talktime_engine::AttemptId,
        rated: Box<Rated>,
        /// The reservation's key, released if the attempt ended while it was being made.
        reservation: String,
    },
    /// A request with no answer for the call is done (a settle, a release, a checkpoint).
    Done,
    /// The subscriber asked for, if it exists and it and its account are active.
    Subscriber(Option<Box<SubscriberAuth>>),
}

/// What the core needs to check a subscriber's digest and bill its calls.
#[derive(Debug, Clone)]
pub struct SubscriberAuth {
    pub username: String,
    pub realm: String,
    /// MD5(username:realm:password).
    pub ha1: talktime_pii::Pii<String>,
    pub account: talktime_engine::AccountInfo,
    pub caller_id: Option<talktime_pii::Pii<String>>,
}
