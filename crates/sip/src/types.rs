//! Typed header values: name-addr, Via, CSeq, media types and the B2BUA's extension headers.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;
use crate::method::Method;
use crate::params::{Params, unquote};
use crate::parser::{is_lws, is_token, is_token_char, quoted_string_end, trim_lws};
use crate::uri::{Uri, parse_port, valid_host};

/// `"Display Name" <uri>;params` or `uri;params` (From, To, Contact, Route, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Without quotes and with `\` escapes undone.
    pub display_name: Option<String>,
    pub uri: Uri,
    /// Header parameters (after the `>`, or after an addr-spec).
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag")
    }

    pub fn set_tag(&mut self, tag: &str) {
        self.params.set("tag", Some(tag));
    }

    /// Parses one name-addr or addr-spec. `context` names the header for errors.
    pub fn parse_in(text: &str, context: &'static str) -> Result<NameAddr, ParseError> {
        let text = trim_lws(text);
        if text.is_empty() {
            return Err(ParseError::bad(context, "empty value"));
        }
        let (display_name, after_display) = if text.starts_with('"') {
            let end = quoted_string_end(text)
                .ok_or(ParseError::bad(context, "unterminated quoted display name"))?;
            let rest = trim_lws(&text[end..]);
            if !rest.starts_with('<') {
                return Err(ParseError::bad(
                    context,
                    "quoted display name without <URI>",
                ));
            }
            (Some(unquote(&text[..end])), rest)
        } else if let Some(open) = text.find('<') {
            let display = trim_lws(&text[..open]);
            if display.is_empty() {
                (None, &text[open..])
            } else {
                let tokens_only = display
                    .split([' ', '\t', '\r', '\n'])
                    .filter(|word| !word.is_empty())
                    .all(is_token);
                if !tokens_only {
                    return Err(ParseError::bad(context, "display name is not tokens"));
                }
                (Some(display.to_owned()), &text[open..])
            }
        } else {
            // addr-spec: the URI ends at the first ';' (its parameters belong to the header).
            let (uri_text, params_text) = match text.find(';') {
                Some(semi) => (&text[..semi], &text[semi..]),
                None => (text, ""),
            };
            let uri_text = trim_lws(uri_text);
            if uri_text.contains('<') || uri_text.contains('>') {
                return Err(ParseError::bad(context, "unbalanced <>"));
            }
            let uri =
                Uri::parse(uri_text).map_err(|_| ParseError::bad(context, "malformed URI"))?;
            // RFC 3261 §20: a URI with headers (or ';', ',', '?') must be inside <>.
            if !uri.headers().is_empty() {
                return Err(ParseError::bad(context, "URI with headers outside <>"));
            }
            let params = Params::parse_header(params_text, context)?;
            return Ok(NameAddr {
                display_name: None,
                uri,
                params,
            });
        };
        let inner = &after_display[1..];
        let close = inner
            .find('>')
            .ok_or(ParseError::bad(context, "missing >"))?;
        let uri =
            Uri::parse(&inner[..close]).map_err(|_| ParseError::bad(context, "malformed URI"))?;
        let params = Params::parse_header(&inner[close + 1..], context)?;
        Ok(NameAddr {
            display_name,
            uri,
            params,
        })
    }
}

impl FromStr for NameAddr {
    type Err = ParseError;
    fn from_str(text: &str) -> Result<NameAddr, ParseError> {
        NameAddr::parse_in(text, "name-addr")
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            f.write_str("\"")?;
            for c in name.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// A transport protocol as carried in Via.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// Whether messages on it are framed by Content-Length over a byte stream.
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// 5061 for TLS-based transports, else 5060.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls | Transport::Wss => 5061,
            _ => 5060,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = ParseError;
    fn from_str(text: &str) -> Result<Transport, ParseError> {
        let known = [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Sctp,
            Transport::Ws,
            Transport::Wss,
        ];
        known
            .into_iter()
            .find(|transport| transport.as_str().eq_ignore_ascii_case(text))
            .ok_or(ParseError::bad("Via", "unknown transport"))
    }
}

/// One Via hop: `SIP/2.0/<transport> host[:port];params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// As written (`UDP`, `TCP`, or an unknown token such as `FOO`).
    pub transport: String,
    /// Host as written; IPv6 references keep their brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn new(transport: Transport, host: &str, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::new();
        params.set("branch", Some(branch));
        Via {
            transport: transport.as_str().to_owned(),
            host: host.to_owned(),
            port,
            params,
        }
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch")
    }

    pub fn received(&self) -> Option<&str> {
        self.params.get("received")
    }

    pub fn maddr(&self) -> Option<&str> {
        self.params.get("maddr")
    }

    /// `None` if absent, `Some(None)` for a bare `;rport`, `Some(Some(port))` if filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .entry("rport")
            .map(|value| value.and_then(parse_port))
    }

    /// The transport if it is one this stack knows.
    pub fn transport_type(&self) -> Option<Transport> {
        self.transport.parse().ok()
    }

    /// The port, or the transport's default (5060, 5061 for TLS).
    pub fn port_or_default(&self) -> u16 {
        self.port
            .unwrap_or_else(|| self.transport_type().map_or(5060, Transport::default_port))
    }

    /// Whether the branch carries the RFC 3261 magic cookie.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|branch| branch.starts_with("z9hG4bK"))
    }

    /// Parses one Via element (a comma list must be split first).
    pub fn parse(text: &str) -> Result<Via, ParseError> {
        let bad = |detail| ParseError::bad("Via", detail);
        let mut rest = trim_lws(text);
        let mut protocol = [""; 3];
        for (index, slot) in protocol.iter_mut().enumerate() {
            let end = rest
                .bytes()
                .position(|b| !is_token_char(b))
                .unwrap_or(rest.len());
            if end == 0 {
                return Err(bad("malformed sent-protocol"));
            }
            *slot = &rest[..end];
            rest = trim_lws(&rest[end..]);
            if index < 2 {
                rest = trim_lws(
                    rest.strip_prefix('/')
                        .ok_or(bad("malformed sent-protocol"))?,
                );
            }
        }
        if !protocol[0].eq_ignore_ascii_case("SIP") || protocol[1] != "2.0" {
            return Err(bad("not SIP/2.0"));
        }
        let (host, after_host) = if rest.starts_with('[') {
            let close = rest.find(']').ok_or(bad("unterminated IPv6 reference"))?;
            (&rest[..=close], &rest[close + 1..])
        } else {
            let end = rest
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if !valid_host(host) {
            return Err(bad("malformed sent-by host"));
        }
        let mut after = trim_lws(after_host);
        let mut port = None;
        if let Some(port_text) = after.strip_prefix(':') {
            let port_text = trim_lws(port_text);
            let end = port_text
                .bytes()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(port_text.len());
            port = Some(parse_port(&port_text[..end]).ok_or(bad("malformed port"))?);
            after = trim_lws(&port_text[end..]);
        }
        // RFC 2543 allowed a trailing comment; drop it.
        if let Some(open) = after.rfind('(')
            && after.ends_with(')')
            && !after[..open].contains('"')
        {
            after = trim_lws(&after[..open]);
        }
        let params = Params::parse_header(after, "Via")?;
        Ok(Via {
            transport: protocol[2].to_owned(),
            host: host.to_owned(),
            port,
            params,
        })
    }
}

impl FromStr for Via {
    type Err = ParseError;
    fn from_str(text: &str) -> Result<Via, ParseError> {
        Via::parse(text)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// `CSeq: <sequence> <method>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CSeq {
    pub sequence: u32,
    pub method: Method,
}

impl CSeq {
    pub fn new(sequence: u32, method: Method) -> CSeq {
        CSeq { sequence, method }
    }

    /// The sequence number must be below 2^31 (RFC 3261 §8.1.1.5).
    pub fn parse(text: &str) -> Result<CSeq, ParseError> {
        let text = trim_lws(text);
        let digits_end = text
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(text.len());
        let digits = &text[..digits_end];
        if digits.is_empty() {
            return Err(ParseError::bad("CSeq", "malformed sequence number"));
        }
        let sequence: u32 = Some(digits)
            .filter(|digits| digits.len() <= 10)
            .and_then(|digits| digits.parse().ok())
            .filter(|number| *number < 1 << 31)
            .ok_or(ParseError::bad("CSeq", "sequence number too large"))?;
        let rest = &text[digits_end..];
        if !rest.starts_with(is_lws_char) {
            return Err(ParseError::bad("CSeq", "missing method"));
        }
        let method = Method::parse(trim_lws(rest))
            .map_err(|_| ParseError::bad("CSeq", "malformed method"))?;
        Ok(CSeq { sequence, method })
    }
}

fn is_lws_char(c: char) -> bool {
    c.is_ascii() && is_lws(c as u8)
}

impl FromStr for CSeq {
    type Err = ParseError;
    fn from_str(text: &str) -> Result<CSeq, ParseError> {
        CSeq::parse(text)
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.sequence, self.method)
    }
}

/// `Content-Type: type/subtype;params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub mtype: String,
    pub subtype: String,
    pub params: Params,
}

impl MediaType {
    pub fn parse(text: &str) -> Result<MediaType, ParseError> {
        let bad = |detail| ParseError::bad("Content-Type", detail);
        let text = trim_lws(text);
        let slash = text.find('/').ok_or(bad("missing /"))?;
        let mtype = trim_lws(&text[..slash]);
        let rest = trim_lws(&text[slash + 1..]);
        let end = rest.find(';').unwrap_or(rest.len());
        let subtype = trim_lws(&rest[..end]);
        if !is_token(mtype) || !is_token(subtype) {
            return Err(bad("malformed media type"));
        }
        Ok(MediaType {
            mtype: mtype.to_owned(),
            subtype: subtype.to_owned(),
            params: Params::parse_header(&rest[end..], "Content-Type")?,
        })
    }

    /// Case-insensitive comparison with `type/subtype`, ignoring parameters.
    pub fn is(&self, essence: &str) -> bool {
        essence.split_once('/').is_some_and(|(mtype, subtype)| {
            self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
        })
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.mtype, self.subtype, self.params)
    }
}

/// Who refreshes a session timer (RFC 4028).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

/// `Session-Expires: <delta>;refresher=uac|uas` (RFC 4028).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionExpires {
    pub delta: u32,
    pub refresher: Option<Refresher>,
    pub params: Params,
}

impl SessionExpires {
    pub fn parse(text: &str) -> Result<SessionExpires, ParseError> {
        let (delta, params) = parse_delta_with_params(text, "Session-Expires")?;
        let refresher = match params.get("refresher") {
            None => None,
            Some(value) if value.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(value) if value.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            Some(_) => return Err(ParseError::bad("Session-Expires", "unknown refresher")),
        };
        Ok(SessionExpires {
            delta,
            refresher,
            params,
        })
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        let mut params = self.params.clone();
        match self.refresher {
            Some(Refresher::Uac) => params.set("refresher", Some("uac")),
            Some(Refresher::Uas) => params.set("refresher", Some("uas")),
            None => {
                params.remove("refresher");
            }
        }
        write!(f, "{params}")
    }
}

/// `Reason: Q.850;cause=16;text="Normal call clearing"` (RFC 3326).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub protocol: String,
    pub cause: Option<u16>,
    pub text: Option<String>,
    pub params: Params,
}

impl Reason {
    pub fn parse(text: &str) -> Result<Reason, ParseError> {
        let text = trim_lws(text);
        let end = text.find(';').unwrap_or(text.len());
        let protocol = trim_lws(&text[..end]);
        if !is_token(protocol) {
            return Err(ParseError::bad("Reason", "malformed protocol"));
        }
        let params = Params::parse_header(&text[end..], "Reason")?;
        let cause = match params.get("cause") {
            Some(cause) => Some(
                cause
                    .parse()
                    .map_err(|_| ParseError::bad("Reason", "malformed cause"))?,
            ),
            None => None,
        };
        Ok(Reason {
            protocol: protocol.to_owned(),
            cause,
            text: params.get_unquoted("text"),
            params,
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.protocol, self.params)
    }
}

/// `Retry-After: 120 (comment);duration=3600`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryAfter {
    pub seconds: u32,
    pub comment: Option<String>,
    pub duration: Option<u32>,
    pub params: Params,
}

impl RetryAfter {
    pub fn parse(text: &str) -> Result<RetryAfter, ParseError> {
        let text = trim_lws(text);
        let mut comment = None;
        let mut remaining = text.to_owned();
        if let Some(open) = text.find('(') {
            let close = text
                .rfind(')')
                .filter(|close| *close > open)
                .ok_or(ParseError::bad("Retry-After", "unterminated comment"))?;
            comment = Some(text[open + 1..close].to_owned());
            remaining = format!("{}{}", &text[..open], &text[close + 1..]);
        }
        let (seconds, params) = parse_delta_with_params(&remaining, "Retry-After")?;
        let duration = match params.get("duration") {
            Some(value) => Some(
                value
                    .parse()
                    .map_err(|_| ParseError::bad("Retry-After", "malformed duration"))?,
            ),
            None => None,
        };
        Ok(RetryAfter {
            seconds,
            comment,
            duration,
            params,
        })
    }
}

fn parse_delta_with_params(text: &str, context: &'static str) -> Result<(u32, Params), ParseError> {
    let text = trim_lws(text);
    let end = text.find(';').unwrap_or(text.len());
    let delta = trim_lws(&text[..end]);
    if delta.is_empty() || delta.len() > 10 || !delta.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::bad(context, "malformed delta-seconds"));
    }
    let delta = delta
        .parse()
        .map_err(|_| ParseError::bad(context, "delta-seconds too large"))?;
    Ok((delta, Params::parse_header(&text[end..], context)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms() {
        let quoted = NameAddr::parse_in(
            "\"Bob \\\"B\\\" Smith\" <sip:bob@biloxi.com>;tag=a6c85cf",
            "To",
        )
        .unwrap();
        assert_eq!(quoted.display_name.as_deref(), Some("Bob \"B\" Smith"));
        assert_eq!(quoted.uri.user(), Some("bob"));
        assert_eq!(quoted.tag(), Some("a6c85cf"));
        let tokens = NameAddr::parse_in("Bob  Smith<sip:bob@biloxi.com>", "To").unwrap();
        assert_eq!(tokens.display_name.as_deref(), Some("Bob  Smith"));
        let bare = NameAddr::parse_in("sip:bob@biloxi.com;tag=x;lr", "To").unwrap();
        assert_eq!(bare.uri.to_string(), "sip:bob@biloxi.com");
        assert_eq!(bare.tag(), Some("x"));
        assert!(bare.params.contains("lr"));
        let angle = NameAddr::parse_in("<sip:proxy.example.com;lr>", "Route").unwrap();
        assert_eq!(angle.uri.param("lr"), Some(""));
        assert!(angle.params.is_empty());
        assert_eq!(
            quoted.to_string(),
            "\"Bob \\\"B\\\" Smith\" <sip:bob@biloxi.com>;tag=a6c85cf"
        );
        assert!(NameAddr::parse_in("\"unterminated <sip:a@b>", "From").is_err());
        assert!(NameAddr::parse_in("Bell, Alexander <sip:a@b>", "From").is_err());
        assert!(NameAddr::parse_in("<sip:a@b", "From").is_err());
    }

    #[test]
    fn via_with_whitespace_ipv6_and_params() {
        let via = Via::parse("SIP  /  2.0 / tcp  [2001:db8::9]  :  5062 ; branch = z9hG4bK77 ;rport;received=192.0.2.1").unwrap();
        assert_eq!(via.transport, "tcp");
        assert_eq!(via.transport_type(), Some(Transport::Tcp));
        assert_eq!(via.host, "[2001:db8::9]");
        assert_eq!(via.port, Some(5062));
        assert_eq!(via.branch(), Some("z9hG4bK77"));
        assert_eq!(via.rport(), Some(None));
        assert_eq!(via.received(), Some("192.0.2.1"));
        assert_eq!(
            via.to_string(),
            "SIP/2.0/tcp [2001:db8::9]:5062;branch=z9hG4bK77;rport;received=192.0.2.1"
        );
        let filled = Via::parse("SIP/2.0/UDP host;rport=5070").unwrap();
        assert_eq!(filled.rport(), Some(Some(5070)));
        assert_eq!(filled.port_or_default(), 5060);
        assert!(Via::parse("SIP/3.0/UDP host").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0/UDP host;;branch=1").is_err());
    }

    #[test]
    fn cseq_limits() {
        assert_eq!(
            CSeq::parse("  4711   INVITE ").unwrap(),
            CSeq::new(4711, Method::Invite)
        );
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("2147483647 INVITE").is_ok());
        assert!(CSeq::parse("-1 INVITE").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
    }

    #[test]
    fn extension_headers() {
        let se = SessionExpires::parse("1800 ; refresher=uac").unwrap();
        assert_eq!(se.delta, 1800);
        assert_eq!(se.refresher, Some(Refresher::Uac));
        assert_eq!(se.to_string(), "1800;refresher=uac");
        let reason = Reason::parse("Q.850;cause=16;text=\"Normal call clearing\"").unwrap();
        assert_eq!(reason.protocol, "Q.850");
        assert_eq!(reason.cause, Some(16));
        assert_eq!(reason.text.as_deref(), Some("Normal call clearing"));
        let retry = RetryAfter::parse("18000 (back soon);duration=3600").unwrap();
        assert_eq!(retry.seconds, 18000);
        assert_eq!(retry.comment.as_deref(), Some("back soon"));
        assert_eq!(retry.duration, Some(3600));
        let media = MediaType::parse("Application/SDP ; charset=utf-8").unwrap();
        assert!(media.is("application/sdp"));
        assert_eq!(media.params.get("charset"), Some("utf-8"));
        assert!(MediaType::parse("sdp").is_err());
    }
}
