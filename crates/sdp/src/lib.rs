//! Sans-IO SDP (RFC 8866, formerly RFC 4566) parsing and writing, and RFC 3264 offer/answer
//! for the audio leg of a media-anchoring B2BUA.
//!
//! The parser keeps every line it does not interpret verbatim and in place, so a description
//! written back differs from the one read only where we changed it. Typed views
//! (connection, rtpmap, direction, ptime) are computed on demand.

mod description;
mod negotiation;

pub use description::{
    Attribute, Connection, Line, Media, Origin, ParseError, RtpMap, SessionDescription,
};
pub use negotiation::{
    Codec, Direction, LocalAudio, NegotiatedAudio, NegotiationError, SessionOrigin, answer, offer,
    process_answer,
};
