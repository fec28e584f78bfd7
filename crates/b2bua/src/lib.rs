//! The back-to-back user agent, sans-IO: [`Switch`] holds every call of a Talktime switch
//! (its SIP legs and transactions, its IVR engine, its carrier attempts and failover, its
//! ledger requests and media commands) and is driven by the tokio shell in
//! `crates/talktime`, which owns the sockets, the clock, the media threads and the database.
//! Inputs go in with the time; outputs come out of [`Switch::poll_output`]; the next
//! wake-up is [`Switch::poll_timeout`]. Tests drive it on a virtual clock.

mod admission;
pub mod alarms;
pub mod callback;
mod calls;
pub mod config;
pub mod counters;
pub mod deadlines;
pub mod ledger;
pub mod media;
pub mod monitor;
pub mod recovery;
mod registration;
mod routing;
pub mod shard;
mod stop;
mod subscribers;
mod switch;
mod tone;

pub use calls::{SOURCE_KEY, StartError};
pub use deadlines::Deadlines;
pub use ledger::{LedgerReply, LedgerRequest, Rated};
pub use media::{INACTIVITY_TIMEOUT, MediaCommand, MediaReport};
pub use routing::{CarrierTarget, RoutingUpdate};
pub use shard::{Shard, Shared};
pub use switch::{Input, Listening, Now, Output, Services, Switch, SwitchError};
