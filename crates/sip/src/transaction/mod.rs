//! Transactions (RFC 3261 §17, RFC 6026): client and server, INVITE and non-INVITE.
//!
//! Sans-IO, in the style of quinn-proto: [`TransactionLayer`] owns every transaction, never
//! touches a socket or a clock, and is driven by its shell:
//!
//! ```text
//! let mut layer = TransactionLayer::new(TimerConfig::default(), Box::new(SystemRandom));
//! let mut dialogs = DialogTable::new(TimerConfig::default());
//! loop {
//!     let now = Instant::now();                  // read once per wake-up
//!     select! {
//!         (bytes, peer) = socket.recv()  => layer.handle_message(Message::parse(&bytes)?, peer, now)?,
//!         TU wants a request             => id = layer.send_request(request, destination, now)?,
//!         TU answers a request           => layer.send_response(id, response, now)?,
//!         TU cancels an INVITE           => cancel_id = layer.send_cancel(invite_id, now)?,
//!         a send failed                  => layer.handle_transport_error(id),
//!         sleep_until(deadline)          => { layer.handle_timeout(now); dialogs.handle_timeout(now) }
//!     }
//!     while let Some(t) = layer.poll_transmit().or_else(|| dialogs.poll_transmit()) {
//!         socket.send_to(&t.message.to_bytes(), t.destination)   // on error: handle_transport_error
//!     }
//!     while let Some(event) = layer.poll_event() { /* to the TU, see below */ }
//!     while let Some(event) = dialogs.poll_event() { /* AckTimeout => send BYE */ }
//!     deadline = min(layer.poll_timeout(), dialogs.poll_timeout());
//! }
//! ```
//!
//! The TU's side of the events:
//! - `Event::Request`: a new server transaction. Requests with a To tag go through
//!   `DialogTable::route_request` first (481/500 answers come back from it); the TU
//!   answers with `send_response` (the 100 Trying for INVITE is automatic after 200 ms).
//!   After sending a 2xx to an INVITE, the TU creates `Dialog::uas` and calls
//!   `DialogTable::start_2xx_retransmission`.
//! - `Event::Response`: for our client transactions. For a 101-299 to an INVITE,
//!   `DialogTable::handle_invite_response` creates or updates the dialog; every 2xx copy is
//!   answered with `Dialog::ack` sent through `send_stateless`. Non-2xx finals are ACKed
//!   by the transaction itself.
//! - `Event::Ack`: the ACK for a 2xx; pass it to `DialogTable::route_request`.
//! - `Event::CancelReceived`: answer with `answer_cancel` (200 to the CANCEL, 487 to the
//!   INVITE).
//! - `Event::Timeout`, `Event::TransportError`, `Event::Terminated`: clean up the call leg.
//!
//! The layer sends responses to the address a request came from (the shell should apply
//! `received`/`rport` handling when it parses incoming requests). ACKs for 2xx responses
//! and 2xx retransmissions are not part of any transaction (§13.2.2.4, §13.3.1.4): the
//! dialog layer ([`crate::dialog`]) builds them; the ACK goes out through
//! [`TransactionLayer::send_stateless`], the 2xx copies through
//! [`crate::dialog::DialogTable::poll_transmit`].

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
pub use random::{MAGIC_COOKIE, RandomSource, SplitMix64, SystemRandom, new_branch, new_tag};
pub use server::{InviteServerState, NonInviteServerState};
pub use timer::{Durations, Timer, TimerConfig};

/// Errors the layer returns to its caller (the TU or the shell). Network input that cannot
/// be matched is reported here too, so the shell can log it; nothing panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("no such transaction: {0:?}")]
    UnknownTransaction(TransactionId),
    #[error("the transaction table is full; answered 503")]
    Full,
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
