//! Talktime's SIP stack, sans-IO: no sockets, no clock. Callers feed bytes, messages and
//! the current time in; the stack hands back messages to send, timers to arm and events.
//!
//! The message layer keeps every header verbatim (name and value as received, in order) and
//! parses typed values lazily through accessors such as [`Request::via`] or [`Request::cseq`].

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod dialog;
mod error;
mod headers;
mod message;
mod method;
mod params;
mod parser;
mod stream;
pub mod transaction;
mod types;
mod uri;
mod validate;

pub use error::{ParseError, SipError};
pub use headers::{HeaderValues, Headers, canonical_name, split_comma_list};
pub use message::{Message, Request, Response, peek_call_id};
pub use method::Method;
pub use params::Params;
pub use stream::{DEFAULT_MAX_MESSAGE_SIZE, StreamFramer};
pub use types::{
    CSeq, MediaType, NameAddr, Reason, Refresher, RetryAfter, SessionExpires, Transport, Via,
};
pub use uri::{Scheme, Uri};
pub use validate::{Unsupported, check_max_forwards, check_require};
