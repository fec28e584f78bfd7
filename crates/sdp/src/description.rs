//! The SDP data model, parser and writer.

use std::fmt;
use std::net::IpAddr;

/// Why an SDP body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("SDP body is not UTF-8")]
    NotUtf8,
    #[error("SDP body is empty")]
    Empty,
    #[error("line {line}: expected `<letter>=<value>`, found {text:?}")]
    MalformedLine { line: usize, text: String },
    #[error("SDP must start with v=0, found {0:?}")]
    BadVersion(String),
    #[error("missing o= (origin) line")]
    MissingOrigin,
    #[error("line {line}: malformed o= line {text:?}")]
    BadOrigin { line: usize, text: String },
    #[error("line {line}: malformed c= line {text:?}")]
    BadConnection { line: usize, text: String },
    #[error("line {line}: malformed m= line {text:?}")]
    BadMedia { line: usize, text: String },
}

/// The `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    /// Kept as text: some agents send ids longer than 64 bits.
    pub session_id: String,
    pub session_version: u64,
    pub network_type: String,
    pub address_type: String,
    pub address: String,
}

/// A `c=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub network_type: String,
    pub address_type: String,
    /// As written, possibly with a `/ttl` suffix for multicast.
    pub address: String,
}

impl Connection {
    /// A unicast `c=IN IP4|IP6 <address>` line.
    pub fn new(address: IpAddr) -> Self {
        let address_type = if address.is_ipv4() { "IP4" } else { "IP6" };
        Self {
            network_type: "IN".into(),
            address_type: address_type.into(),
            address: address.to_string(),
        }
    }

    /// The address as an IP, without a multicast `/ttl` suffix; `None` for FQDNs.
    pub fn ip(&self) -> Option<IpAddr> {
        let bare = self.address.split('/').next().unwrap_or_default();
        bare.parse().ok()
    }

    /// RFC 2543 hold: `c=IN IP4 0.0.0.0` (or the IPv6 unspecified address).
    pub fn is_hold(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// An `a=` line: `a=name` or `a=name:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

impl Attribute {
    pub fn flag(name: &str) -> Self {
        Self {
            name: name.into(),
            value: None,
        }
    }

    pub fn with_value(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// One line of a session or media section, in the order it appeared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Connection(Connection),
    Attribute(Attribute),
    /// Any other line (`i=`, `b=`, `t=`, `k=`, ...), kept verbatim.
    Other {
        kind: char,
        value: String,
    },
}

/// An `a=rtpmap:<pt> <name>/<rate>[/<channels>]` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

impl RtpMap {
    fn parse(value: &str) -> Option<Self> {
        let (payload_type, rest) = value.trim().split_once(' ')?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next()?.to_string();
        let clock_rate = parts.next()?.trim().parse().ok()?;
        let channels = parts.next().and_then(|c| c.trim().parse().ok());
        Some(Self {
            payload_type: payload_type.trim().parse().ok()?,
            encoding,
            clock_rate,
            channels,
        })
    }
}

/// An `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `image`, ...
    pub kind: String,
    pub port: u16,
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `udptl`, ...
    pub protocol: String,
    /// Payload types for RTP, format names otherwise (`t38`).
    pub formats: Vec<String>,
    pub lines: Vec<Line>,
}

impl Media {
    pub fn connection(&self) -> Option<&Connection> {
        self.lines.iter().find_map(|line| match line {
            Line::Connection(connection) => Some(connection),
            _ => None,
        })
    }

    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.lines.iter().filter_map(|line| match line {
            Line::Attribute(attribute) => Some(attribute),
            _ => None,
        })
    }

    /// The value of the first attribute with this name (`Some("")` for a flag).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_deref().unwrap_or(""))
    }

    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap> + '_ {
        self.attributes()
            .filter(|a| a.name.eq_ignore_ascii_case("rtpmap"))
            .filter_map(|a| a.value.as_deref().and_then(RtpMap::parse))
    }

    pub fn rtpmap(&self, payload_type: u8) -> Option<RtpMap> {
        self.rtpmaps().find(|m| m.payload_type == payload_type)
    }

    /// The `a=fmtp:<pt> ...` parameters for a payload type.
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes()
            .filter(|a| a.name.eq_ignore_ascii_case("fmtp"))
            .filter_map(|a| a.value.as_deref())
            .find_map(|value| {
                let (pt, params) = value.split_once(' ')?;
                (pt.trim().parse::<u8>().ok()? == payload_type).then_some(params.trim())
            })
    }

    /// Payload types as numbers (RTP media only; non-numeric formats are skipped).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    pub fn is_rtp(&self) -> bool {
        self.protocol.to_ascii_uppercase().starts_with("RTP/")
    }
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    /// The `s=` text; may be empty or a single space.
    pub session_name: String,
    /// Session-level lines after `s=` (`c=`, `t=`, `a=`, ...), in order.
    pub lines: Vec<Line>,
    pub media: Vec<Media>,
}

impl SessionDescription {
    /// Parses a body. Accepts CRLF or bare LF line ends and a missing `s=`.
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
        let mut raw_lines = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(index, l)| (index + 1, l));
        let (_, first) = raw_lines.next().ok_or(ParseError::Empty)?;
        if first.trim() != "v=0" {
            return Err(ParseError::BadVersion(first.to_string()));
        }
        let mut origin = None;
        let mut session_name = String::new();
        let mut lines = Vec::new();
        let mut media: Vec<Media> = Vec::new();
        for (number, raw) in raw_lines {
            let (kind, value) = split_line(number, raw)?;
            match kind {
                'o' if media.is_empty() && origin.is_none() => {
                    origin = Some(parse_origin(number, value)?)
                }
                's' if media.is_empty() => session_name = value.to_string(),
                'm' => media.push(parse_media(number, value)?),
                _ => {
                    let line = parse_line(number, kind, value)?;
                    match media.last_mut() {
                        Some(section) => section.lines.push(line),
                        None => lines.push(line),
                    }
                }
            }
        }
        Ok(Self {
            origin: origin.ok_or(ParseError::MissingOrigin)?,
            session_name,
            lines,
            media,
        })
    }

    pub fn connection(&self) -> Option<&Connection> {
        self.lines.iter().find_map(|line| match line {
            Line::Connection(connection) => Some(connection),
            _ => None,
        })
    }

    /// The connection that applies to a media section: its own, else the session's.
    pub fn media_connection(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(Media::connection)
            .or_else(|| self.connection())
    }

    /// Session-level attribute value (`Some("")` for a flag).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.lines.iter().find_map(|line| match line {
            Line::Attribute(a) if a.name.eq_ignore_ascii_case(name) => {
                Some(a.value.as_deref().unwrap_or(""))
            }
            _ => None,
        })
    }

    /// Writes the body with CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(f, "v=0\r\n")?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.network_type, o.address_type, o.address
        )?;
        let name = if self.session_name.is_empty() {
            "-"
        } else {
            &self.session_name
        };
        write!(f, "s={name}\r\n")?;
        for line in &self.lines {
            write!(f, "{line}")?;
        }
        for media in &self.media {
            write!(f, "m={} {}", media.kind, media.port)?;
            if let Some(count) = media.port_count {
                write!(f, "/{count}")?;
            }
            write!(f, " {}", media.protocol)?;
            for format in &media.formats {
                write!(f, " {format}")?;
            }
            write!(f, "\r\n")?;
            for line in &media.lines {
                write!(f, "{line}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Connection(c) => write!(
                f,
                "c={} {} {}\r\n",
                c.network_type, c.address_type, c.address
            ),
            Line::Attribute(Attribute { name, value: None }) => write!(f, "a={name}\r\n"),
            Line::Attribute(Attribute {
                name,
                value: Some(value),
            }) => write!(f, "a={name}:{value}\r\n"),
            Line::Other { kind, value } => write!(f, "{kind}={value}\r\n"),
        }
    }
}

fn split_line(number: usize, raw: &str) -> Result<(char, &str), ParseError> {
    let malformed = || ParseError::MalformedLine {
        line: number,
        text: raw.to_string(),
    };
    let mut chars = raw.chars();
    let kind = chars.next().ok_or_else(malformed)?;
    if !kind.is_ascii_alphabetic() || chars.next() != Some('=') {
        return Err(malformed());
    }
    Ok((kind, &raw[2..]))
}

fn parse_origin(number: usize, value: &str) -> Result<Origin, ParseError> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let bad = || ParseError::BadOrigin {
        line: number,
        text: value.to_string(),
    };
    let [
        username,
        session_id,
        version,
        network_type,
        address_type,
        address,
    ] = fields[..]
    else {
        return Err(bad());
    };
    Ok(Origin {
        username: username.into(),
        session_id: session_id.into(),
        // Some agents overflow u64 here; treat an unparsable version as 0 rather than refuse.
        session_version: version.parse().unwrap_or(0),
        network_type: network_type.into(),
        address_type: address_type.into(),
        address: address.into(),
    })
}

fn parse_line(number: usize, kind: char, value: &str) -> Result<Line, ParseError> {
    Ok(match kind {
        'c' => {
            let fields: Vec<&str> = value.split_whitespace().collect();
            let [network_type, address_type, address] = fields[..] else {
                return Err(ParseError::BadConnection {
                    line: number,
                    text: value.to_string(),
                });
            };
            Line::Connection(Connection {
                network_type: network_type.into(),
                address_type: address_type.into(),
                address: address.into(),
            })
        }
        'a' => match value.split_once(':') {
            Some((name, attribute_value)) => Line::Attribute(Attribute {
                name: name.to_string(),
                value: Some(attribute_value.to_string()),
            }),
            None => Line::Attribute(Attribute::flag(value)),
        },
        _ => Line::Other {
            kind,
            value: value.to_string(),
        },
    })
}

fn parse_media(number: usize, value: &str) -> Result<Media, ParseError> {
    let bad = || ParseError::BadMedia {
        line: number,
        text: value.to_string(),
    };
    let mut fields = value.split_whitespace();
    let kind = fields.next().ok_or_else(bad)?.to_string();
    let port_field = fields.next().ok_or_else(bad)?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((port, count)) => (port, Some(count.parse().map_err(|_| bad())?)),
        None => (port_field, None),
    };
    let protocol = fields.next().ok_or_else(bad)?.to_string();
    Ok(Media {
        kind,
        port: port.parse().map_err(|_| bad())?,
        port_count,
        protocol,
        formats: fields.map(str::to_string).collect(),
        lines: Vec::new(),
    })
}
