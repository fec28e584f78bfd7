//! Errors of the message layer, each mapped to the SIP response it deserves.

use thiserror::Error;

use crate::validate::Unsupported;

/// What was wrong with a message or one of its headers.
///
/// [`ParseError::status`] and [`ParseError::reason`] give the response a UAS should send back
/// (400 for nearly everything, 505 for an unknown SIP version, 416 for an unknown URI scheme,
/// 513 for an oversized message).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("header section not terminated")]
    Incomplete,
    #[error("malformed start line")]
    StartLine,
    #[error("malformed method")]
    Method,
    #[error("unsupported SIP version {0}")]
    Version(String),
    #[error("malformed Request-URI")]
    RequestUri,
    #[error("unsupported URI scheme {0}")]
    UnsupportedScheme(String),
    #[error("malformed status code")]
    StatusCode,
    #[error("malformed header line")]
    HeaderLine,
    #[error("header section is not UTF-8")]
    Utf8,
    #[error("missing {0}")]
    MissingHeader(&'static str),
    #[error("multiple {0}")]
    DuplicateHeader(&'static str),
    #[error("malformed {name}: {detail}")]
    BadHeader {
        name: &'static str,
        detail: &'static str,
    },
    #[error("malformed URI: {0}")]
    Uri(&'static str),
    #[error("malformed Content-Length")]
    ContentLength,
    #[error("body shorter than Content-Length")]
    Truncated,
    #[error("missing Content-Length on a stream")]
    StreamContentLength,
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
}

impl ParseError {
    /// The status code of the response this error deserves.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::Version(_) => 505,
            ParseError::UnsupportedScheme(_) => 416,
            ParseError::TooLarge(_) => 513,
            _ => 400,
        }
    }

    /// The reason phrase for that response, saying what was wrong,
    /// e.g. `Bad Request (missing Call-ID)`.
    pub fn reason(&self) -> String {
        let base = match self.status() {
            505 => "Version Not Supported",
            416 => "Unsupported URI Scheme",
            513 => "Message Too Large",
            _ => "Bad Request",
        };
        format!("{base} ({self})")
    }

    /// A malformed header error (public so callers and tests can build the same value).
    pub fn bad_header(name: &'static str, detail: &'static str) -> ParseError {
        ParseError::BadHeader { name, detail }
    }

    pub(crate) fn bad(name: &'static str, detail: &'static str) -> ParseError {
        ParseError::bad_header(name, detail)
    }
}

/// Any failure the message layer reports to a UAS, with the response it maps to.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SipError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("unsupported extensions: {}", .0.tags.join(", "))]
    Unsupported(#[from] Unsupported),
    #[error("Max-Forwards exhausted")]
    TooManyHops,
}

impl SipError {
    /// The status code of the response this error deserves.
    pub fn status(&self) -> u16 {
        match self {
            SipError::Parse(error) => error.status(),
            SipError::Unsupported(_) => 420,
            SipError::TooManyHops => 483,
        }
    }

    /// The reason phrase for that response.
    pub fn reason(&self) -> String {
        match self {
            SipError::Parse(error) => error.reason(),
            SipError::Unsupported(_) => "Bad Extension".to_owned(),
            SipError::TooManyHops => "Too Many Hops".to_owned(),
        }
    }
}
