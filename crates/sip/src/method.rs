//! SIP request methods (RFC 3261 §7.1 plus the common extensions).

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;
use crate::parser::is_token;

/// A SIP method. Methods are case-sensitive; anything unknown but well-formed is `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Other(String),
}

impl Method {
    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Other(name) => name,
            known => known.standard_name().unwrap_or_default(),
        }
    }

    /// The name of a method this crate knows; `None` for an extension method (a name a peer
    /// chose, which must not become, say, a metrics label of its own).
    pub fn standard_name(&self) -> Option<&'static str> {
        Some(match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Other(_) => return None,
        })
    }

    /// Parses a method token. Known names map to their variant; other tokens to `Other`.
    pub fn parse(text: &str) -> Result<Method, ParseError> {
        let method = match text {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            other if is_token(other) => Method::Other(other.to_owned()),
            _ => return Err(ParseError::Method),
        };
        Ok(method)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = ParseError;
    fn from_str(text: &str) -> Result<Method, ParseError> {
        Method::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_other_methods_round_trip() {
        for name in ["INVITE", "ACK", "PRACK", "MESSAGE", "PUBLISH", "NEWMETHOD"] {
            let method: Method = name.parse().unwrap();
            assert_eq!(method.to_string(), name);
        }
        assert_eq!(Method::parse("BYE").unwrap(), Method::Bye);
        assert_eq!(
            Method::parse("invite").unwrap(),
            Method::Other("invite".into())
        );
        assert!(Method::parse("IN VITE").is_err());
        assert!(Method::parse("").is_err());
    }
}
