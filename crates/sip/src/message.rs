//! Requests, responses, typed accessors and serialization.

use std::fmt;
use std::io::Write as _;

use crate::error::ParseError;
use crate::headers::{Headers, canonical_of, id};
use crate::method::Method;
use crate::parser::{parse_datagram, trim_lws};
use crate::types::{CSeq, MediaType, NameAddr, Reason, RetryAfter, SessionExpires, Via};
use crate::uri::Uri;

/// A SIP request. Its `Debug` hides the Request-URI's user part (a dialled number) and the
/// values of identity headers (see `Headers`' `Debug`), and gives the body's length only.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A SIP response. Its `Debug` hides identity header values and gives the body's length.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = match self.uri.user() {
            Some(_) => format!("{}:<redacted>@{}", self.uri.scheme(), self.uri.host()),
            None => self.uri.to_string(),
        };
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("uri", &uri)
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Either kind of SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// Typed accessors shared by requests and responses; parsed on each call from the raw
/// header text, so a message nobody inspects costs nothing beyond its framing.
impl Headers {
    /// Every Via hop, top first.
    pub fn via(&self) -> Result<Vec<Via>, ParseError> {
        self.get_all_known(id::VIA).map(Via::parse).collect()
    }

    pub fn top_via(&self) -> Result<Via, ParseError> {
        let first = self
            .get_all_known(id::VIA)
            .next()
            .ok_or(ParseError::MissingHeader("Via"))?;
        Via::parse(first)
    }

    pub fn call_id(&self) -> Result<&str, ParseError> {
        let value = self.single(id::CALL_ID)?;
        if value.is_empty() || value.bytes().any(|b| b == b' ' || b == b'\t') {
            return Err(ParseError::bad("Call-ID", "malformed value"));
        }
        Ok(value)
    }

    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(self.single(id::CSEQ)?)
    }

    pub fn from(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse_in(self.single(id::FROM)?, "From")
    }

    pub fn to(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse_in(self.single(id::TO)?, "To")
    }

    /// Contact values; empty if absent. A `*` (REGISTER wildcard) is reported by
    /// [`Headers::contact_is_wildcard`] and yields an empty list here.
    pub fn contact(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs(id::CONTACT, true)
    }

    pub fn contact_is_wildcard(&self) -> bool {
        self.get_all_known(id::CONTACT).any(|value| value == "*")
    }

    pub fn route(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs(id::ROUTE, false)
    }

    pub fn record_route(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs(id::RECORD_ROUTE, false)
    }

    pub fn p_asserted_identity(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs(id::P_ASSERTED_IDENTITY, false)
    }

    pub fn remote_party_id(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs(id::REMOTE_PARTY_ID, false)
    }

    pub fn diversion(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.name_addrs(id::DIVERSION, false)
    }

    /// `None` if absent; values above 255 are rejected (RFC 3261 §20.22 allows 0-255).
    pub fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
        match self.single_opt(id::MAX_FORWARDS)? {
            None => Ok(None),
            Some(value) => parse_small_number(value, 255, "Max-Forwards").map(Some),
        }
    }

    pub fn content_type(&self) -> Result<Option<MediaType>, ParseError> {
        self.single_opt(id::CONTENT_TYPE)?
            .map(MediaType::parse)
            .transpose()
    }

    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        match self.single_opt(id::CONTENT_LENGTH)? {
            None => Ok(None),
            Some(value) => parse_small_number(value, 999_999_999, "Content-Length")
                .map(|length| Some(length as usize)),
        }
    }

    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        match self.single_opt(id::EXPIRES)? {
            None => Ok(None),
            Some(value) => parse_small_number(value, u32::MAX, "Expires").map(Some),
        }
    }

    pub fn require(&self) -> Vec<String> {
        self.option_tags(id::REQUIRE)
    }

    pub fn proxy_require(&self) -> Vec<String> {
        self.option_tags(id::PROXY_REQUIRE)
    }

    pub fn supported(&self) -> Vec<String> {
        self.option_tags(id::SUPPORTED)
    }

    pub fn unsupported(&self) -> Vec<String> {
        self.option_tags(id::UNSUPPORTED)
    }

    /// Methods listed in Allow (unparseable tokens are skipped).
    pub fn allow(&self) -> Vec<Method> {
        self.get_all_known(id::ALLOW)
            .filter_map(|value| Method::parse(value).ok())
            .collect()
    }

    pub fn session_expires(&self) -> Result<Option<SessionExpires>, ParseError> {
        self.single_opt(id::SESSION_EXPIRES)?
            .map(SessionExpires::parse)
            .transpose()
    }

    pub fn min_se(&self) -> Result<Option<u32>, ParseError> {
        match self.single_opt(id::MIN_SE)? {
            None => Ok(None),
            Some(value) => {
                let delta = value.split(';').next().unwrap_or("");
                parse_small_number(delta, u32::MAX, "Min-SE").map(Some)
            }
        }
    }

    pub fn reason(&self) -> Result<Vec<Reason>, ParseError> {
        self.get_all_known(id::REASON).map(Reason::parse).collect()
    }

    pub fn retry_after(&self) -> Result<Option<RetryAfter>, ParseError> {
        self.single_opt(id::RETRY_AFTER)?
            .map(RetryAfter::parse)
            .transpose()
    }

    /// Raw Authorization values (parse with [`crate::auth::Credentials::parse`]).
    pub fn authorization(&self) -> impl Iterator<Item = &str> {
        self.get_all_known(id::AUTHORIZATION)
    }

    pub fn proxy_authorization(&self) -> impl Iterator<Item = &str> {
        self.get_all_known(id::PROXY_AUTHORIZATION)
    }

    /// Raw WWW-Authenticate values (parse with [`crate::auth::Challenge::parse`]).
    pub fn www_authenticate(&self) -> impl Iterator<Item = &str> {
        self.get_all_known(id::WWW_AUTHENTICATE)
    }

    pub fn proxy_authenticate(&self) -> impl Iterator<Item = &str> {
        self.get_all_known(id::PROXY_AUTHENTICATE)
    }

    fn single_opt(&self, known: u8) -> Result<Option<&str>, ParseError> {
        let mut values = self.get_all_known(known);
        let first = values.next();
        if first.is_some() && values.next().is_some() {
            return Err(ParseError::DuplicateHeader(canonical_of(known)));
        }
        Ok(first)
    }

    fn single(&self, known: u8) -> Result<&str, ParseError> {
        self.single_opt(known)?
            .ok_or(ParseError::MissingHeader(canonical_of(known)))
    }

    fn name_addrs(&self, known: u8, allow_star: bool) -> Result<Vec<NameAddr>, ParseError> {
        self.get_all_known(known)
            .filter(|value| !(allow_star && *value == "*"))
            .map(|value| NameAddr::parse_in(value, canonical_of(known)))
            .collect()
    }

    fn option_tags(&self, known: u8) -> Vec<String> {
        self.get_all_known(known)
            .map(trim_lws)
            .filter(|tag| !tag.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

fn parse_small_number(value: &str, max: u32, name: &'static str) -> Result<u32, ParseError> {
    let value = trim_lws(value);
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::bad(name, "not a number"));
    }
    value
        .parse::<u64>()
        .ok()
        .filter(|number| *number <= u64::from(max))
        .map(|number| number as u32)
        .ok_or(ParseError::bad(name, "value too large"))
}

/// Delegates the typed accessors from a message type to its headers.
macro_rules! header_accessors {
    ($type:ty) => {
        impl $type {
            pub fn via(&self) -> Result<Vec<Via>, ParseError> {
                self.headers().via()
            }
            pub fn top_via(&self) -> Result<Via, ParseError> {
                self.headers().top_via()
            }
            pub fn call_id(&self) -> Result<&str, ParseError> {
                self.headers().call_id()
            }
            pub fn cseq(&self) -> Result<CSeq, ParseError> {
                self.headers().cseq()
            }
            pub fn from(&self) -> Result<NameAddr, ParseError> {
                self.headers().from()
            }
            pub fn to(&self) -> Result<NameAddr, ParseError> {
                self.headers().to()
            }
            pub fn contact(&self) -> Result<Vec<NameAddr>, ParseError> {
                self.headers().contact()
            }
            pub fn route(&self) -> Result<Vec<NameAddr>, ParseError> {
                self.headers().route()
            }
            pub fn record_route(&self) -> Result<Vec<NameAddr>, ParseError> {
                self.headers().record_route()
            }
            pub fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
                self.headers().max_forwards()
            }
            pub fn content_type(&self) -> Result<Option<MediaType>, ParseError> {
                self.headers().content_type()
            }
            pub fn require(&self) -> Vec<String> {
                self.headers().require()
            }
            pub fn supported(&self) -> Vec<String> {
                self.headers().supported()
            }
            pub fn allow(&self) -> Vec<Method> {
                self.headers().allow()
            }
            pub fn session_expires(&self) -> Result<Option<SessionExpires>, ParseError> {
                self.headers().session_expires()
            }
            pub fn reason_header(&self) -> Result<Vec<Reason>, ParseError> {
                self.headers().reason()
            }
            pub fn p_asserted_identity(&self) -> Result<Vec<NameAddr>, ParseError> {
                self.headers().p_asserted_identity()
            }
            pub fn remote_party_id(&self) -> Result<Vec<NameAddr>, ParseError> {
                self.headers().remote_party_id()
            }
            pub fn diversion(&self) -> Result<Vec<NameAddr>, ParseError> {
                self.headers().diversion()
            }
            pub fn retry_after(&self) -> Result<Option<RetryAfter>, ParseError> {
                self.headers().retry_after()
            }
        }
    };
}

header_accessors!(Request);
header_accessors!(Response);
header_accessors!(Message);

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Serializes, writing Content-Length from the body (replacing any stated value).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.headers.text().len() + self.body.len() + 64);
        let _ = write!(out, "{} {} SIP/2.0\r\n", self.method, self.uri);
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }
}

impl Response {
    /// A response with no headers and no body.
    pub fn new(status: u16, reason: &str) -> Response {
        Response {
            status,
            reason: reason.to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A response to `request` copying Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6),
    /// plus Timestamp for 100 Trying (§8.2.6.1). The caller adds the To tag if needed.
    pub fn for_request(request: &Request, status: u16, reason: &str) -> Response {
        let mut response = Response::new(status, reason);
        // A response that makes a dialog carries the request's Record-Route, in order
        // (RFC 3261 §12.1.1): the caller's ACK and BYE then go through the proxies.
        let makes_dialog = request.method == Method::Invite && (101..300).contains(&status);
        for (known, name, value) in request.headers.iter_known() {
            let copy = matches!(known, id::VIA | id::FROM | id::TO | id::CALL_ID | id::CSEQ)
                || (known == id::TIMESTAMP && status == 100)
                || (known == id::RECORD_ROUTE && makes_dialog);
            if copy {
                response.headers.push(name, value);
            }
        }
        response
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Adds `;tag=` to To unless it already has one; returns false if To is missing or broken.
    pub fn set_to_tag(&mut self, tag: &str) -> bool {
        let Ok(mut to) = self.headers.to() else {
            return false;
        };
        if to.tag().is_none() {
            to.set_tag(tag);
            let name = self
                .headers
                .iter_known()
                .find(|(known, _, _)| *known == id::TO)
                .map(|(_, name, _)| name.to_owned())
                .unwrap_or_else(|| "To".to_owned());
            self.headers.set(&name, &to.to_string());
        }
        true
    }

    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Serializes, writing Content-Length from the body (replacing any stated value).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.headers.text().len() + self.body.len() + 64);
        let _ = write!(out, "SIP/2.0 {} {}\r\n", self.status, self.reason);
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out
    }
}

fn write_headers_and_body(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    let mut wrote_length = false;
    for (known, name, value) in headers.iter_known() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        if known == id::CONTENT_LENGTH {
            // One Content-Length only, always matching the body.
            if wrote_length {
                out.truncate(out.len() - name.len() - 2);
                continue;
            }
            let _ = write!(out, "{}", body.len());
            wrote_length = true;
        } else {
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    if !wrote_length {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

impl Message {
    /// Parses one datagram (UDP). Use [`crate::StreamFramer`] for TCP/TLS byte streams.
    pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
        parse_datagram(data)
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(request) => &request.headers,
            Message::Response(response) => &response.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(request) => &mut request.headers,
            Message::Response(response) => &mut response.headers,
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(request) => &request.body,
            Message::Response(response) => &response.body,
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self, Message::Request(_))
    }

    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(request) => Some(request),
            Message::Response(_) => None,
        }
    }

    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Request(_) => None,
            Message::Response(response) => Some(response),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(request) => request.to_bytes(),
            Message::Response(response) => response.to_bytes(),
        }
    }
}

impl From<Request> for Message {
    fn from(request: Request) -> Message {
        Message::Request(request)
    }
}

impl From<Response> for Message {
    fn from(response: Response) -> Message {
        Message::Response(response)
    }
}

impl fmt::Display for Request {
    /// The wire form (bodies that are not UTF-8 are shown lossily).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Request(request) => fmt::Display::fmt(request, f),
            Message::Response(response) => fmt::Display::fmt(response, f),
        }
    }
}

/// The Call-ID of a message still in bytes, found without parsing it (the header, long or
/// compact form, value trimmed); `None` when there is none before the blank line. For
/// steering a datagram to the thread that owns its call before anyone parses it.
pub fn peek_call_id(bytes: &[u8]) -> Option<&str> {
    let mut lines = bytes.split(|byte| *byte == b'\n').skip(1);
    lines.find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            // The end of the headers: stop looking.
            return Some(None);
        }
        let colon = line.iter().position(|byte| *byte == b':')?;
        let name = line[..colon].trim_ascii();
        if !name.eq_ignore_ascii_case(b"call-id") && !name.eq_ignore_ascii_case(b"i") {
            return None;
        }
        Some(std::str::from_utf8(line[colon + 1..].trim_ascii()).ok())
    })?
}
