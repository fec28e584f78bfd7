//! Sans-IO per-call engine for Talktime: the IVR (welcome, language, PIN or caller-ID
//! authentication, balance, destination), carrier attempts, the credit timer, settlement and
//! CDR building.
//!
//! One [`Call`] per caller leg, driven like quinn-proto: the shell feeds [`Input`]s and
//! timeouts with the current [`std::time::Instant`], then drains [`Output`]s and sleeps until
//! [`Call::poll_timeout`]. The engine knows nothing of SIP, RTP or the ledger: money crosses
//! the boundary as integer micro-units, durations as milliseconds.
//!
//! # Driving a call (the shell's loop)
//!
//! 1. On the caller's INVITE: [`Call::new`] with the access number's [`IvrConfig`].
//! 2. After every [`Call::handle_input`] or [`Call::handle_timeout`], drain
//!    [`Call::poll_output`] until `None` and act on each output in order, then re-arm one timer
//!    at [`Call::poll_timeout`] (`None`: no timer).
//! 3. Answer requests with the matching input: `LookupByCallerId` → [`Input::CallerIdLookup`],
//!    `LookupByPin` → [`Input::PinLookup`], `Authorize` → [`Input::Authorized`] or
//!    [`Input::AuthorizationRefused`] (same attempt), `Play` → [`Input::PlaybackFinished`]
//!    (not for a playback the engine stopped), `PlaceCall` → `CarrierTrying` per carrier
//!    INVITE, then `CarrierProgress` / `CarrierAnswered` / `CarrierFailed` (with `failover`
//!    while the route has more carriers) and later `CarrierHungUp`.
//! 4. `Settle` comes exactly once for every `Authorize` (0 ms releases the reservation), then
//!    that attempt's `AttemptRecord`. `CallRecord` is always the last output; after it
//!    [`Call::is_finished`] is true and the call can be dropped.
//!
//! # DID forwarding (seed 003)
//! With [`IvrConfig::forwarding`] an access number connects a caller recognised by caller ID
//! (registered, balance at or above the account minimum) whose [`AccountInfo`] carries a
//! `forward_destination` straight to that destination: no welcome (unless
//! `forwarding_welcome`), no PIN, no destination entry; the balance and talk time are
//! announced when `announce_balance` / `announce_talk_time` are on. The attempt is authorized,
//! placed, timed and settled like any other, and when it ends (carrier hang-up, busy, refusal)
//! the caller hears the outcome and goodbye instead of being asked for another destination;
//! `end_leg_digits` are not watched on such a call. Every other caller gets the normal IVR:
//! unregistered, below the minimum or unanswered lookups are asked for the PIN, and a
//! recognised caller without (a valid) forward destination is asked for the destination, with
//! the skipped welcome played once in front of that first prompt. PIN callers are never
//! forwarded.
//!
//! Late or foreign inputs (an answer for an attempt already cancelled, a 200 OK crossing our
//! CANCEL) are ignored: the shell must still BYE a carrier leg that answers after
//! `CancelCarrier`. The engine's own timers: first-digit and inter-digit timeouts, lookup and
//! authorization timeouts (`request_timeout_ms`), no answer (`no_answer_timeout_ms`, restarted
//! on failover), the credit warning and limit, and a guard on the goodbye prompt.
//!
//! ```
//! use std::time::Instant;
//! use talktime_engine::{Call, CallId, CallSetup, Input, IvrConfig, LanguageBook, Output};
//!
//! let now = Instant::now();
//! let mut call = Call::new(CallSetup {
//!     call_id: CallId("a84b4c76e66710".into()),
//!     caller_id: None,
//!     access_number: "18005550100".into(),
//!     ivr: IvrConfig::default(),
//!     languages: LanguageBook::builtin(),
//!     now,
//! })
//! .expect("the default IVR configuration is valid");
//! assert_eq!(call.poll_output(), Some(Output::AnswerCaller));
//! let Some(Output::Play { playback, .. }) = call.poll_output() else { unreachable!() };
//! call.handle_input(Input::PlaybackFinished { playback }, now);
//! // The PIN prompt follows the welcome.
//! assert!(matches!(call.poll_output(), Some(Output::Play { .. })));
//! call.handle_input(Input::CallerHungUp, now);
//! assert!(matches!(call.poll_output(), Some(Output::CallRecord(_))));
//! assert!(call.is_finished());
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod call;
pub mod cause;
pub mod config;
pub mod destination;
mod entry;
pub mod event;
pub mod speech;

pub use call::{Call, CallSetup, CallbackStart, Phase};
pub use cause::{DisconnectCause, Party, Release};
pub use config::{ConfigError, IvrConfig, Language, WarningKind};
pub use destination::{DestinationError, normalize_destination};
pub use event::{
    AccountId, AccountInfo, AttemptId, AttemptRecord, AuthMethod, Authorization, BridgeMode,
    CallId, CallRecord, CallerIdLookup, CardId, CarrierTry, Input, LastCall, Output,
    PinChangeOutcome, PinLookup, PlaybackId, Prompt, Refusal, RetailOutcome, Settlement, Tone,
    VoucherOutcome,
};
pub use speech::{Grammar, GrammarError, LanguageBook};
