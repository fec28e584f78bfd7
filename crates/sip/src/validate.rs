//! Checks a UAS runs on a received request, each mapping to the response it deserves.

use thiserror::Error;

use crate::error::{ParseError, SipError};
use crate::message::{Message, Request, Response};
use crate::method::Method;
use crate::uri::Scheme;

/// Option tags from Require that this element does not support (→ 420 Bad Extension).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unsupported option tags: {}", .tags.join(", "))]
pub struct Unsupported {
    pub tags: Vec<String>,
}

impl Unsupported {
    /// The value of the Unsupported header for the 420 response.
    pub fn header_value(&self) -> String {
        self.tags.join(", ")
    }

    /// The 420 Bad Extension response to `request`, listing the unsupported tags.
    pub fn response(&self, request: &Request) -> Response {
        let mut response = Response::for_request(request, 420, "Bad Extension");
        response.headers.push("Unsupported", &self.header_value());
        response
    }
}

/// RFC 3261 §8.2.2.3: every Require tag must be in `supported`. Require is ignored on
/// ACK and CANCEL, which cannot be rejected.
pub fn check_require(request: &Request, supported: &[&str]) -> Result<(), Unsupported> {
    if matches!(request.method, Method::Ack | Method::Cancel) {
        return Ok(());
    }
    let tags: Vec<String> = request
        .require()
        .into_iter()
        .filter(|tag| {
            !supported
                .iter()
                .any(|known| known.eq_ignore_ascii_case(tag))
        })
        .collect();
    if tags.is_empty() {
        Ok(())
    } else {
        Err(Unsupported { tags })
    }
}

/// For a request about to be forwarded: Max-Forwards 0 → 483 Too Many Hops (RFC 3261
/// §16.3 step 3). A missing header is accepted (the forwarder inserts 70).
pub fn check_max_forwards(request: &Request) -> Result<(), SipError> {
    match request.max_forwards()? {
        Some(0) => Err(SipError::TooManyHops),
        _ => Ok(()),
    }
}

impl Request {
    /// Syntax checks a UAS makes before processing (RFC 3261 §8.2): the mandatory headers
    /// (Via, From, To, Call-ID, CSeq) are present, unique where required and parse; the CSeq
    /// method matches the request method; Max-Forwards, Content-Length, Content-Type,
    /// Contact, Route and Record-Route parse when present.
    pub fn validate(&self) -> Result<(), ParseError> {
        if self.via()?.is_empty() {
            return Err(ParseError::MissingHeader("Via"));
        }
        self.from()?;
        self.to()?;
        self.call_id()?;
        let cseq = self.cseq()?;
        if cseq.method != self.method {
            return Err(ParseError::CSeqMethodMismatch);
        }
        self.max_forwards()?;
        self.headers.content_length()?;
        self.content_type()?;
        let contacts = self.contact()?;
        // RFC 3261 §20.10: "*" stands alone.
        if self.headers.contact_is_wildcard() && !contacts.is_empty() {
            return Err(ParseError::bad_header("Contact", "* mixed with addresses"));
        }
        self.route()?;
        self.record_route()?;
        Ok(())
    }

    /// For a request about to be forwarded: decrements Max-Forwards (inserting 70 if it is
    /// absent, RFC 3261 §16.6 step 3) and returns the new value; 0 on arrival → 483.
    pub fn decrement_max_forwards(&mut self) -> Result<u32, SipError> {
        let next = match self.max_forwards()? {
            Some(0) => return Err(SipError::TooManyHops),
            Some(hops) => hops - 1,
            None => 70,
        };
        self.headers.set("Max-Forwards", &next.to_string());
        Ok(next)
    }

    /// A Request-URI scheme this stack cannot route → 416 Unsupported URI Scheme.
    pub fn check_uri_scheme(&self) -> Result<(), ParseError> {
        match self.uri.scheme() {
            Scheme::Other(name) => Err(ParseError::UnsupportedScheme(name.clone())),
            _ => Ok(()),
        }
    }
}

impl Response {
    /// Syntax checks a UAC makes on a received response: Via, From, To, Call-ID, CSeq.
    pub fn validate(&self) -> Result<(), ParseError> {
        if self.via()?.is_empty() {
            return Err(ParseError::MissingHeader("Via"));
        }
        self.from()?;
        self.to()?;
        self.call_id()?;
        self.cseq()?;
        self.headers.content_length()?;
        self.contact()?;
        self.record_route()?;
        Ok(())
    }
}

impl Message {
    pub fn validate(&self) -> Result<(), ParseError> {
        match self {
            Message::Request(request) => request.validate(),
            Message::Response(response) => response.validate(),
        }
    }
}
