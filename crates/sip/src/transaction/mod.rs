//! Transactions (RFC 3261 §17, RFC 6026): client and server, INVITE and non-INVITE.
//!
//! Sans-IO, in the style of quinn-proto: [`TransactionLayer`] owns every transaction, never
//! touches a socket or a clock, and is driven by its shell:
//!
//! ```text
//! loop {
//!     select! {
//!         datagram from peer   => layer.handle_message(Message::parse(&bytes)?, peer, now),
//!         TU wants a request   => id = layer.send_request(request, destination, now)?,
//!         TU answers a request => layer.send_response(id, response, now)?,
//!         send failed          => layer.handle_transport_error(id, now),
//!         sleep_until(deadline) => layer.handle_timeout(now),
//!     }
//!     while let Some(t) = layer.poll_transmit() { socket.send_to(t.message.to_bytes(), t.destination) }
//!     while let Some(e) = layer.poll_event()    { hand e to the TU (dialogs, call engine) }
//!     deadline = layer.poll_timeout();           // re-arm one timer for the earliest deadline
//! }
//! ```
//!
//! `now` is read once per wake-up and passed in; tests pass a virtual clock instead. The
//! layer sends responses to the address a request came from (the shell should apply
//! `received`/`rport` handling when it parses incoming requests). ACKs for 2xx responses
//! and 2xx retransmissions are not part of any transaction (§13.2.2.4, §13.3.1.4): the
//! dialog layer ([`crate::dialog`]) builds them and sends them through
//! [`TransactionLayer::send_stateless`].

mod build;
mod client;
mod effects;
mod key;
mod layer;
mod random;
mod server;
mod timer;

pub use build::{ack_for_non_2xx, cancel_for};
pub use client::{InviteClientState, NonInviteClientState};
pub use effects::TimeoutKind;
pub use layer::{Event, Peer, State, TransactionId, TransactionLayer, Transmit};
pub use random::{MAGIC_COOKIE, RandomSource, SplitMix64, new_branch, new_tag};
pub use server::{InviteServerState, NonInviteServerState};
pub use timer::{Durations, Timer, TimerConfig};

/// Errors the layer returns to its caller (the TU or the shell). Network input that cannot
/// be matched is reported here too, so the shell can log it; nothing panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("no such transaction: {0:?}")]
    UnknownTransaction(TransactionId),
    #[error("message has no usable {0} header")]
    MissingHeader(&'static str),
    #[error("cannot send a {status} response in state {state}")]
    InvalidState { status: u16, state: String },
    #[error("ACK is never sent in a transaction; use send_stateless")]
    AckIsNotATransaction,
    #[error("{0:?} is a client transaction and cannot send responses")]
    NotAServerTransaction(TransactionId),
    #[error("{0:?} is not an INVITE client transaction that can still be cancelled")]
    NotCancellable(TransactionId),
}
