//! Sans-IO per-call engine for Talktime: the IVR (welcome, language, PIN or caller-ID
//! authentication, balance, destination), carrier attempts, the credit timer, settlement and
//! CDR building.
//!
//! One [`Call`] per caller leg, driven like quinn-proto: the shell feeds [`Input`]s and
//! timeouts with the current [`std::time::Instant`], then drains [`Output`]s and sleeps until
//! [`Call::poll_timeout`]. The engine knows nothing of SIP, RTP or the ledger: money crosses
//! the boundary as integer micro-units, durations as milliseconds.
//!
//! ```
//! use std::time::Instant;
//! use talktime_engine::{Call, CallId, CallSetup, IvrConfig, Output};
//!
//! let now = Instant::now();
//! let mut call = Call::new(CallSetup {
//!     call_id: CallId("a84b4c76e66710".into()),
//!     caller_id: None,
//!     access_number: "18005550100".into(),
//!     ivr: IvrConfig::default(),
//!     now,
//! })
//! .expect("the default IVR configuration is valid");
//! assert_eq!(call.poll_output(), Some(Output::AnswerCaller));
//! assert!(matches!(call.poll_output(), Some(Output::Play { .. })));
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod call;
pub mod cause;
pub mod config;
pub mod destination;
mod entry;
pub mod event;
pub mod speech;

pub use call::{Call, CallSetup, Phase};
pub use cause::{DisconnectCause, Party, Release};
pub use config::{ConfigError, IvrConfig, Language, WarningKind};
pub use destination::{DestinationError, normalize_destination};
pub use event::{
    AccountId, AccountInfo, AttemptId, AttemptRecord, AuthMethod, Authorization, BridgeMode,
    CallId, CallRecord, CallerIdLookup, CardId, CarrierTry, Input, Output, PinLookup, PlaybackId,
    Prompt, Refusal, Settlement, Tone,
};
