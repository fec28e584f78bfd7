//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966); any other scheme is kept opaque.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;
use crate::params::Params;

/// The URI scheme. Other schemes (`http:`, `mailto:`, `urn:` ...) keep their name as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other(String),
}

impl Scheme {
    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(name) => name,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A URI. For sip/sips every part is available; for tel the number is `user()` and
/// the host is empty; other schemes keep everything after `scheme:` in `opaque()`.
/// User, password, parameters and headers are stored as written (still %-escaped) so
/// that Display reproduces the input; use [`Uri::user_unescaped`] or
/// [`Uri::equivalent`] for comparisons.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uri {
    scheme: Scheme,
    user: Option<String>,
    password: Option<String>,
    /// Host as written; IPv6 references keep their brackets.
    host: String,
    port: Option<u16>,
    params: Params,
    headers: Vec<(String, String)>,
    /// Everything after `scheme:` for schemes this stack does not interpret.
    opaque: String,
}

impl Uri {
    /// `sip:user@host:port` (user and port optional).
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        Uri::new(Scheme::Sip, user, host, port)
    }

    /// `sips:user@host:port`.
    pub fn sips(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        Uri::new(Scheme::Sips, user, host, port)
    }

    /// `tel:number`.
    pub fn tel(number: &str) -> Uri {
        Uri::new(Scheme::Tel, Some(number), "", None)
    }

    fn new(scheme: Scheme, user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        Uri {
            scheme,
            user: user.map(str::to_owned),
            password: None,
            host: host.to_owned(),
            port,
            params: Params::new(),
            headers: Vec::new(),
            opaque: String::new(),
        }
    }

    /// Parses a URI (no surrounding `<>`, no whitespace).
    pub fn parse(text: &str) -> Result<Uri, ParseError> {
        let colon = text.find(':').ok_or(ParseError::Uri("missing scheme"))?;
        let scheme_text = &text[..colon];
        let rest = &text[colon + 1..];
        if !valid_scheme(scheme_text) {
            return Err(ParseError::Uri("malformed scheme"));
        }
        if text.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(ParseError::Uri("whitespace or control character"));
        }
        if scheme_text.eq_ignore_ascii_case("sip") {
            parse_sip(Scheme::Sip, rest)
        } else if scheme_text.eq_ignore_ascii_case("sips") {
            parse_sip(Scheme::Sips, rest)
        } else if scheme_text.eq_ignore_ascii_case("tel") {
            parse_tel(rest)
        } else {
            if rest.is_empty() {
                return Err(ParseError::Uri("empty opaque part"));
            }
            let mut uri = Uri::new(Scheme::Other(scheme_text.to_owned()), None, "", None);
            uri.opaque = rest.to_owned();
            Ok(uri)
        }
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// The user part as written (still escaped); for tel URIs, the number.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The user part with `%XX` escapes decoded (lossy if the result is not UTF-8).
    pub fn user_unescaped(&self) -> Option<String> {
        self.user
            .as_deref()
            .map(|user| String::from_utf8_lossy(&unescape(user, |_| true)).into_owned())
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The host as written; IPv6 references include their brackets. Empty for tel/opaque.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// A URI parameter: `Some("")` for flags like `lr`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    /// URI headers (`?name=value&...`), still escaped.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Everything after `scheme:` for schemes other than sip, sips and tel.
    pub fn opaque(&self) -> Option<&str> {
        match self.scheme {
            Scheme::Other(_) => Some(&self.opaque),
            _ => None,
        }
    }

    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    pub fn set_user(&mut self, user: Option<&str>) {
        self.user = user.map(str::to_owned);
    }

    pub fn set_password(&mut self, password: Option<&str>) {
        self.password = password.map(str::to_owned);
    }

    pub fn set_host(&mut self, host: &str) {
        self.host = host.to_owned();
    }

    pub fn set_port(&mut self, port: Option<u16>) {
        self.port = port;
    }

    pub fn set_scheme(&mut self, scheme: Scheme) {
        self.scheme = scheme;
    }

    /// Sets (or adds) a URI parameter; `None` makes a flag.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        self.params.set(name, value);
    }

    pub fn remove_param(&mut self, name: &str) -> bool {
        self.params.remove(name)
    }

    pub fn clear_headers(&mut self) {
        self.headers.clear();
    }

    pub fn push_header(&mut self, name: &str, value: &str) {
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    /// RFC 3261 §19.1.4 comparison: scheme, user and password case-sensitive after decoding
    /// unreserved escapes; host case-insensitive; ports must match (absent is not 5060);
    /// `user`, `ttl`, `method`, `maddr` and `transport` must match if either side has them;
    /// other parameters must match only when both have them; headers must all match.
    pub fn equivalent(&self, other: &Uri) -> bool {
        match (&self.scheme, &other.scheme) {
            (Scheme::Sip, Scheme::Sip) | (Scheme::Sips, Scheme::Sips) => self.sip_equivalent(other),
            (Scheme::Tel, Scheme::Tel) => self.tel_equivalent(other),
            (Scheme::Other(left), Scheme::Other(right)) => {
                left.eq_ignore_ascii_case(right) && self.opaque == other.opaque
            }
            _ => false,
        }
    }

    fn sip_equivalent(&self, other: &Uri) -> bool {
        if self.user.as_deref().map(normalize) != other.user.as_deref().map(normalize)
            || self.password.as_deref().map(normalize) != other.password.as_deref().map(normalize)
            || !self.host.eq_ignore_ascii_case(&other.host)
            || self.port != other.port
        {
            return false;
        }
        let mine = normalized_params(&self.params);
        let theirs = normalized_params(&other.params);
        let find = |list: &[(Vec<u16>, Vec<u16>)], name: &[u16]| {
            list.iter()
                .find(|(key, _)| key.as_slice() == name)
                .map(|(_, value)| value.clone())
        };
        const MUST_MATCH: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];
        for name in MUST_MATCH {
            let name = normalize(name);
            if find(&mine, &name) != find(&theirs, &name) {
                return false;
            }
        }
        let conflicting = mine.iter().any(|(name, value)| {
            find(&theirs, name).is_some_and(|their_value| &their_value != value)
        });
        !conflicting && self.headers_equivalent(other) && other.headers_equivalent(self)
    }

    fn headers_equivalent(&self, other: &Uri) -> bool {
        self.headers.iter().all(|(name, value)| {
            other.headers.iter().any(|(their_name, their_value)| {
                lowercase(normalize(name)) == lowercase(normalize(their_name))
                    && normalize(value) == normalize(their_value)
            })
        })
    }

    fn tel_equivalent(&self, other: &Uri) -> bool {
        let digits = |uri: &Uri| -> String {
            uri.user
                .as_deref()
                .unwrap_or("")
                .chars()
                .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        if digits(self) != digits(other) || self.params.len() != other.params.len() {
            return false;
        }
        self.params.iter().all(|(name, value)| {
            other
                .params
                .get(name)
                .is_some_and(|theirs| param_equal(value.unwrap_or(""), theirs))
        })
    }
}

fn valid_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn param_equal(left: &str, right: &str) -> bool {
    lowercase(normalize(left)) == lowercase(normalize(right))
}

/// Parameters with names and values normalized and case-folded (parameter comparison in
/// RFC 3261 §19.1.4 is case-insensitive).
fn normalized_params(params: &Params) -> Vec<(Vec<u16>, Vec<u16>)> {
    params
        .iter()
        .map(|(name, value)| {
            (
                lowercase(normalize(name)),
                lowercase(normalize(value.unwrap_or(""))),
            )
        })
        .collect()
}

fn lowercase(mut units: Vec<u16>) -> Vec<u16> {
    for unit in &mut units {
        if let Ok(byte) = u8::try_from(*unit) {
            *unit = u16::from(byte.to_ascii_lowercase());
        }
    }
    units
}

/// Decodes escapes once (never recursively). Characters outside RFC 2396's reserved set are
/// equivalent to their encoding; an escaped reserved character is not equivalent to the
/// character itself, so it is kept apart (marked with bit 8).
fn normalize(text: &str) -> Vec<u16> {
    const RESERVED: &[u8] = b";/?:@&=+$,";
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = match (bytes.get(index + 1), bytes.get(index + 2)) {
            (Some(high), Some(low)) if bytes[index] == b'%' => {
                hex_value(*high).zip(hex_value(*low))
            }
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                let decoded = high * 16 + low;
                let marker = if RESERVED.contains(&decoded) {
                    0x100
                } else {
                    0
                };
                out.push(u16::from(decoded) | marker);
                index += 3;
            }
            None => {
                out.push(u16::from(bytes[index]));
                index += 1;
            }
        }
    }
    out
}

/// Decodes `%XX` escapes for which `decode(byte)` is true; others are kept (hex upper-cased).
fn unescape(text: &str, decode: impl Fn(u8) -> bool) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(index + 1).and_then(|b| hex_value(*b)),
                bytes.get(index + 2).and_then(|b| hex_value(*b)),
            )
        {
            let decoded = high * 16 + low;
            if decode(decoded) {
                out.push(decoded);
            } else {
                out.push(b'%');
                out.push(bytes[index + 1].to_ascii_uppercase());
                out.push(bytes[index + 2].to_ascii_uppercase());
            }
            index += 3;
            continue;
        }
        out.push(byte);
        index += 1;
    }
    out
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Checks `%XX` escapes are complete and every other byte is allowed by `allowed`.
fn valid_escaped(text: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let complete = bytes.get(index + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(index + 2).is_some_and(u8::is_ascii_hexdigit);
            if !complete {
                return false;
            }
            index += 3;
        } else if allowed(byte) || byte >= 0x80 {
            index += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

fn is_user_char(byte: u8) -> bool {
    is_unreserved(byte) || matches!(byte, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

fn is_password_char(byte: u8) -> bool {
    is_unreserved(byte) || matches!(byte, b'&' | b'=' | b'+' | b'$' | b',')
}

fn is_param_char(byte: u8) -> bool {
    is_unreserved(byte) || matches!(byte, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

fn is_header_char(byte: u8) -> bool {
    is_unreserved(byte) || matches!(byte, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

fn parse_sip(scheme: Scheme, rest: &str) -> Result<Uri, ParseError> {
    // The user part may contain ';', '?' and '/', so the userinfo ends at the first '@'.
    let (userinfo, hostpart) = match rest.find('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut uri = Uri::new(scheme, None, "", None);
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.find(':') {
            Some(colon) => (&userinfo[..colon], Some(&userinfo[colon + 1..])),
            None => (userinfo, None),
        };
        if user.is_empty() || !valid_escaped(user, is_user_char) {
            return Err(ParseError::Uri("malformed user part"));
        }
        if let Some(password) = password
            && !valid_escaped(password, is_password_char)
        {
            return Err(ParseError::Uri("malformed password"));
        }
        uri.user = Some(user.to_owned());
        uri.password = password.map(str::to_owned);
    }
    let (hostport, tail) = split_host_tail(hostpart)?;
    let (host, port) = split_host_port(hostport)?;
    uri.host = host.to_owned();
    uri.port = port;
    let (params_text, headers_text) = match tail.find('?') {
        Some(question) => (&tail[..question], Some(&tail[question + 1..])),
        None => (tail, None),
    };
    if let Some(params_text) = params_text.strip_prefix(';') {
        parse_uri_params(&mut uri.params, params_text)?;
    } else if !params_text.is_empty() {
        return Err(ParseError::Uri("junk after host"));
    }
    if let Some(headers_text) = headers_text {
        for header in headers_text.split('&') {
            let (name, value) = header
                .split_once('=')
                .ok_or(ParseError::Uri("malformed URI header"))?;
            if name.is_empty()
                || !valid_escaped(name, is_header_char)
                || !valid_escaped(value, is_header_char)
            {
                return Err(ParseError::Uri("malformed URI header"));
            }
            uri.headers.push((name.to_owned(), value.to_owned()));
        }
    }
    Ok(uri)
}

/// Splits `host[:port]` from what follows (`;params?headers`).
fn split_host_tail(hostpart: &str) -> Result<(&str, &str), ParseError> {
    let search_from = if hostpart.starts_with('[') {
        hostpart
            .find(']')
            .ok_or(ParseError::Uri("unterminated IPv6 reference"))?
    } else {
        0
    };
    let end = hostpart[search_from..]
        .find([';', '?'])
        .map_or(hostpart.len(), |at| at + search_from);
    Ok((&hostpart[..end], &hostpart[end..]))
}

fn split_host_port(hostport: &str) -> Result<(&str, Option<u16>), ParseError> {
    let (host, port_text) = if hostport.starts_with('[') {
        let close = hostport
            .find(']')
            .ok_or(ParseError::Uri("unterminated IPv6 reference"))?;
        let after = &hostport[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(ParseError::Uri("junk after IPv6 reference")),
        };
        (&hostport[..=close], port)
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if !valid_host(host) {
        return Err(ParseError::Uri("malformed host"));
    }
    let port = match port_text {
        Some(text) => Some(parse_port(text).ok_or(ParseError::Uri("malformed port"))?),
        None => None,
    };
    Ok((host, port))
}

pub(crate) fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A hostname, IPv4 address or bracketed IPv6 reference.
pub(crate) fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn parse_uri_params(params: &mut Params, text: &str) -> Result<(), ParseError> {
    for piece in text.split(';') {
        let (name, value) = match piece.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (piece, None),
        };
        if name.is_empty() || !valid_escaped(name, is_param_char) {
            return Err(ParseError::Uri("malformed parameter"));
        }
        if let Some(value) = value
            && (value.is_empty() || !valid_escaped(value, is_param_char))
        {
            return Err(ParseError::Uri("malformed parameter value"));
        }
        params.push_raw(name, value);
    }
    Ok(())
}

fn parse_tel(rest: &str) -> Result<Uri, ParseError> {
    let (number, params_text) = match rest.find(';') {
        Some(semi) => (&rest[..semi], Some(&rest[semi + 1..])),
        None => (rest, None),
    };
    let valid_number = !number.is_empty()
        && number.bytes().enumerate().all(|(index, b)| {
            b.is_ascii_hexdigit()
                || matches!(b, b'-' | b'.' | b'(' | b')' | b'*' | b'#')
                || (b == b'+' && index == 0)
        });
    if !valid_number {
        return Err(ParseError::Uri("malformed telephone number"));
    }
    let mut uri = Uri::tel(number);
    if let Some(params_text) = params_text {
        parse_uri_params(&mut uri.params, params_text)?;
    }
    Ok(uri)
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Scheme::Other(_) = self.scheme {
            return f.write_str(&self.opaque);
        }
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(password) = &self.password {
                write!(f, ":{password}")?;
            }
            if self.scheme != Scheme::Tel {
                f.write_str("@")?;
            }
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)?;
        for (index, (name, value)) in self.headers.iter().enumerate() {
            let separator = if index == 0 { '?' } else { '&' };
            write!(f, "{separator}{name}={value}")?;
        }
        Ok(())
    }
}

impl FromStr for Uri {
    type Err = ParseError;
    fn from_str(text: &str) -> Result<Uri, ParseError> {
        Uri::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_sip_uri() {
        let uri = Uri::parse(
            "sips:alice:secret@Atlanta.example.com:5061;transport=tcp;lr?subject=hi&x=y",
        )
        .unwrap();
        assert_eq!(uri.scheme(), &Scheme::Sips);
        assert_eq!(uri.user(), Some("alice"));
        assert_eq!(uri.password(), Some("secret"));
        assert_eq!(uri.host(), "Atlanta.example.com");
        assert_eq!(uri.port(), Some(5061));
        assert_eq!(uri.param("transport"), Some("tcp"));
        assert_eq!(uri.param("lr"), Some(""));
        assert_eq!(uri.headers().len(), 2);
        assert_eq!(
            uri.to_string(),
            "sips:alice:secret@Atlanta.example.com:5061;transport=tcp;lr?subject=hi&x=y"
        );
    }

    #[test]
    fn ipv6_hosts() {
        let uri = Uri::parse("sip:[2001:db8::10]:5070;maddr=[2001:db8::1]").unwrap();
        assert_eq!(uri.host(), "[2001:db8::10]");
        assert_eq!(uri.port(), Some(5070));
        assert_eq!(uri.param("maddr"), Some("[2001:db8::1]"));
        let bare = Uri::parse("sip:user@[::1]").unwrap();
        assert_eq!(bare.host(), "[::1]");
        assert_eq!(bare.port(), None);
        assert!(Uri::parse("sip:[::1").is_err());
        assert!(Uri::parse("sip:[::1]x").is_err());
    }

    #[test]
    fn tel_uris() {
        let uri = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(uri.scheme(), &Scheme::Tel);
        assert_eq!(uri.user(), Some("+1-201-555-0123"));
        assert_eq!(uri.param("phone-context"), Some("example.com"));
        assert_eq!(
            uri.to_string(),
            "tel:+1-201-555-0123;phone-context=example.com"
        );
        assert!(uri.equivalent(&Uri::parse("TEL:+12015550123;Phone-Context=EXAMPLE.com").unwrap()));
        assert!(Uri::parse("tel:").is_err());
        assert!(Uri::parse("tel:12+3").is_err());
    }

    #[test]
    fn unknown_scheme_is_opaque() {
        let uri = Uri::parse("http://www.example.com/path?q=1").unwrap();
        assert_eq!(uri.scheme(), &Scheme::Other("http".into()));
        assert_eq!(uri.opaque(), Some("//www.example.com/path?q=1"));
        assert_eq!(uri.to_string(), "http://www.example.com/path?q=1");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "sip:",
            "sip:@host",
            "sip:user@",
            "sip:host:99999",
            "sip:host:",
            "sip:ho st",
            "sip:host;;a",
            "<sip:host>",
            "1sip:host",
            "sip:us%2er%@host",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc3261_equivalence_examples() {
        let equal = [
            (
                "sip:%61lice@atlanta.com;transport=TCP",
                "sip:alice@AtLanTa.CoM;Transport=tcp",
            ),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
            (
                "sip:carol@chicago.com;newparam=5",
                "sip:carol@chicago.com;security=on",
            ),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
        ];
        for (left, right) in equal {
            let left = Uri::parse(left).unwrap();
            let right = Uri::parse(right).unwrap();
            assert!(left.equivalent(&right), "{left} == {right}");
            assert!(right.equivalent(&left), "{right} == {left}");
        }
        let different = [
            (
                "SIP:ALICE@AtLanTa.CoM;Transport=udp",
                "sip:alice@AtLanTa.CoM;Transport=UDP",
            ),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            (
                "sip:bob@biloxi.com",
                "sip:bob@biloxi.com:6000;transport=tcp",
            ),
            (
                "sip:carol@chicago.com",
                "sip:carol@chicago.com?Subject=next%20meeting",
            ),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            (
                "sip:carol@chicago.com;security=on",
                "sip:carol@chicago.com;security=off",
            ),
            ("sip:a@b", "sips:a@b"),
            ("sip:a%3Bb@c", "sip:a;b@c"),
        ];
        for (left, right) in different {
            let left = Uri::parse(left).unwrap();
            let right = Uri::parse(right).unwrap();
            assert!(!left.equivalent(&right), "{left} != {right}");
            assert!(!right.equivalent(&left), "{right} != {left}");
        }
    }

    #[test]
    fn escaped_user_decodes() {
        let uri = Uri::parse("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(uri.user(), Some("sips%3Auser%40example.com"));
        assert_eq!(
            uri.user_unescaped().as_deref(),
            Some("sips:user@example.com")
        );
        assert_eq!(uri.host(), "example.net");
    }
}
