//! The Talktime tokio shell: sockets, timers, the database pool and the operator CLI around
//! the sans-IO crates (`talktime-sip`, `-sdp`, `-media`, `-engine`, `-billing`, `-routing`)
//! and the ledger (`talktime-store`). The `talktime` binary is a thin `main` over this library;
//! benchmarks and in-process tests use it directly.

pub mod admin;
pub mod admin_http;
mod calls;
pub mod config;
pub mod ledger;
pub mod media_session;
pub mod media_workers;
pub mod plans;
pub mod recovery;
mod registration;
mod routing;
pub mod server;
mod shutdown;
pub mod startup;
pub mod tariff_admin;
mod test_call;
pub mod transport;
