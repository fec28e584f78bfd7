//! Ordered `;name[=value]` parameter lists, as carried by URIs and header values.

use std::fmt;

use crate::error::ParseError;
use crate::parser::{is_token, quoted_string_end, split_unquoted, trim_lws};

/// Ordered parameters. Names compare case-insensitively; values are kept as written
/// (quoted values keep their quotes) so that Display writes them back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Params {
    items: Vec<(String, Option<String>)>,
}

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    /// The value of `name`: `Some("")` for a flag parameter such as `lr`, `None` if absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_deref().unwrap_or(""))
    }

    /// The raw entry: `Some(None)` for a flag, `Some(Some(v))` for a valued parameter.
    pub fn entry(&self, name: &str) -> Option<Option<&str>> {
        self.items
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_deref())
    }

    /// The value of `name` with surrounding double quotes removed (and `\` escapes undone).
    pub fn get_unquoted(&self, name: &str) -> Option<String> {
        self.get(name).map(unquote)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.items
            .iter()
            .any(|(key, _)| key.eq_ignore_ascii_case(name))
    }

    /// Sets `name` (replacing an existing one in place, else appending). `None` makes a flag.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self
            .items
            .iter_mut()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
        {
            Some(entry) => entry.1 = value,
            None => self.items.push((name.to_owned(), value)),
        }
    }

    /// Removes every parameter called `name`; returns whether any was present.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.items.len();
        self.items
            .retain(|(key, _)| !key.eq_ignore_ascii_case(name));
        before != self.items.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.items
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_deref()))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Parses header parameters: `;a=b ; c;d="x y"`. Linear whitespace around `;` and `=`
    /// is allowed (RFC 3261 SEMI and EQUAL). `context` names the header for error messages.
    pub(crate) fn parse_header(text: &str, context: &'static str) -> Result<Params, ParseError> {
        let mut params = Params::new();
        let text = trim_lws(text);
        if text.is_empty() {
            return Ok(params);
        }
        let Some(rest) = text.strip_prefix(';') else {
            return Err(ParseError::bad(context, "junk before parameters"));
        };
        for piece in split_unquoted(rest, b';') {
            let piece = trim_lws(piece);
            let (name, value) = match piece.find('=') {
                Some(at) => (trim_lws(&piece[..at]), Some(trim_lws(&piece[at + 1..]))),
                None => (piece, None),
            };
            if !is_token(name) {
                return Err(ParseError::bad(context, "malformed parameter name"));
            }
            if let Some(value) = value
                && !valid_param_value(value)
            {
                return Err(ParseError::bad(context, "malformed parameter value"));
            }
            params
                .items
                .push((name.to_owned(), value.map(str::to_owned)));
        }
        Ok(params)
    }

    /// Appends without validation; used by the URI parser, which checks its own grammar.
    pub(crate) fn push_raw(&mut self, name: &str, value: Option<&str>) {
        self.items.push((name.to_owned(), value.map(str::to_owned)));
    }
}

/// A header parameter value: a token, a quoted string, or an IPv6 reference.
fn valid_param_value(value: &str) -> bool {
    if value.starts_with('"') {
        return quoted_string_end(value) == Some(value.len());
    }
    if value.starts_with('[') {
        return value.ends_with(']') && value.len() > 2;
    }
    // Tokens, plus the ':' and '/' that real-world values (received=, maddr=) carry.
    !value.is_empty()
        && value
            .bytes()
            .all(|b| crate::parser::is_token_char(b) || b == b':' || b == b'/')
}

/// Removes surrounding double quotes and undoes `\x` escapes; other text is returned as is.
pub(crate) fn unquote(value: &str) -> String {
    let Some(inner) = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.items {
            match value {
                Some(value) => write!(f, ";{name}={value}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_values_quotes_and_whitespace() {
        let params = Params::parse_header(
            " ; tag = abc ;lr; x=\"a;b\" ;received=[2001:db8::1]",
            "Test",
        )
        .unwrap();
        assert_eq!(params.get("TAG"), Some("abc"));
        assert_eq!(params.get("lr"), Some(""));
        assert_eq!(params.entry("lr"), Some(None));
        assert_eq!(params.get("x"), Some("\"a;b\""));
        assert_eq!(params.get_unquoted("x").as_deref(), Some("a;b"));
        assert_eq!(params.get("received"), Some("[2001:db8::1]"));
        assert_eq!(params.get("missing"), None);
        assert_eq!(
            params.to_string(),
            ";tag=abc;lr;x=\"a;b\";received=[2001:db8::1]"
        );
    }

    #[test]
    fn rejects_empty_and_malformed_parameters() {
        assert!(Params::parse_header(";;a", "Test").is_err());
        assert!(Params::parse_header(";a=", "Test").is_err());
        assert!(Params::parse_header("x;a", "Test").is_err());
        assert!(Params::parse_header(";a=\"open", "Test").is_err());
    }

    #[test]
    fn set_and_remove() {
        let mut params = Params::new();
        params.set("branch", Some("z9hG4bK1"));
        params.set("rport", None);
        params.set("Branch", Some("z9hG4bK2"));
        assert_eq!(params.to_string(), ";branch=z9hG4bK2;rport");
        assert!(params.remove("RPORT"));
        assert!(!params.contains("rport"));
        assert_eq!(params.len(), 1);
    }
}
