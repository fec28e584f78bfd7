//! Talktime's SIP stack, sans-IO: no sockets, no clock. Callers feed bytes, messages and
//! the current time in; the stack hands back messages to send, timers to arm and events.

pub mod dialog;
pub mod transaction;
