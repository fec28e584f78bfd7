//! HTTP Digest authentication for SIP (RFC 2617, RFC 7616, RFC 3261 §22): MD5 and SHA-256,
//! their `-sess` variants, `qop=auth` and the legacy no-qop form. Server side builds challenges
//! and verifies credentials; client side answers a challenge. Nonces and cnonces are chosen by
//! the caller, who also tracks nonce counts (exposed by [`Credentials::nonce_count`]).

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::params::unquote;
use crate::parser::{is_token, split_unquoted, trim_lws};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("malformed authentication header: {0}")]
    Malformed(&'static str),
    #[error("not a Digest header")]
    NotDigest,
    #[error("missing {0} parameter")]
    Missing(&'static str),
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("unsupported qop {0}")]
    UnsupportedQop(String),
}

/// Digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    #[default]
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Parses an `algorithm=` value (case-insensitive); absent means MD5.
    pub fn parse(text: &str) -> Result<Algorithm, AuthError> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|algorithm| algorithm.as_str().eq_ignore_ascii_case(text))
        .ok_or_else(|| AuthError::UnsupportedAlgorithm(text.to_owned()))
    }

    fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Lower-case hex digest of `data`.
    pub fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex::encode(Sha256::digest(data)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `H(username:realm:password)`, the value a user store can keep instead of the password.
pub fn compute_ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash(format!("{username}:{realm}:{password}").as_bytes())
}

/// Inputs of a digest response computation.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    pub algorithm: Algorithm,
    /// `H(username:realm:password)` in hex (before any `-sess` step).
    pub ha1: &'a str,
    pub nonce: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    /// `Some((cnonce, nc))` with qop=auth; `None` for the RFC 2069 no-qop form.
    pub qop_auth: Option<(&'a str, u32)>,
}

/// The `response=` value for these inputs (RFC 7616 §3.4.1).
pub fn compute_response(input: &DigestInput<'_>) -> String {
    let algorithm = input.algorithm;
    let ha1 = match (algorithm.is_session(), input.qop_auth) {
        (true, Some((cnonce, _))) => {
            algorithm.hash(format!("{}:{}:{}", input.ha1, input.nonce, cnonce).as_bytes())
        }
        _ => input.ha1.to_owned(),
    };
    let ha2 = algorithm.hash(format!("{}:{}", input.method, input.uri).as_bytes());
    match input.qop_auth {
        Some((cnonce, nc)) => {
            algorithm.hash(format!("{ha1}:{}:{nc:08x}:{cnonce}:auth:{ha2}", input.nonce).as_bytes())
        }
        None => algorithm.hash(format!("{ha1}:{}:{ha2}", input.nonce).as_bytes()),
    }
}

/// Compares secrets without an early exit on the first differing byte.
pub fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Parsed `scheme name=value, ...` (WWW-Authenticate, Authorization and their Proxy- forms).
/// Values are stored unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthParams {
    scheme: String,
    params: Vec<(String, String)>,
}

impl AuthParams {
    fn parse(value: &str) -> Result<AuthParams, AuthError> {
        let value = trim_lws(value);
        let scheme_end = value.find([' ', '\t', '\r', '\n']).unwrap_or(value.len());
        let scheme = &value[..scheme_end];
        if !is_token(scheme) {
            return Err(AuthError::Malformed("scheme"));
        }
        let mut params = Vec::new();
        let rest = trim_lws(&value[scheme_end..]);
        if !rest.is_empty() {
            for piece in split_unquoted(rest, b',') {
                let piece = trim_lws(piece);
                if piece.is_empty() {
                    continue;
                }
                let (name, raw) = piece
                    .split_once('=')
                    .ok_or(AuthError::Malformed("parameter without ="))?;
                let name = trim_lws(name);
                let raw = trim_lws(raw);
                if !is_token(name) || raw.is_empty() {
                    return Err(AuthError::Malformed("parameter"));
                }
                if raw.starts_with('"') && crate::parser::quoted_string_end(raw) != Some(raw.len())
                {
                    return Err(AuthError::Malformed("unterminated quoted value"));
                }
                params.push((name.to_owned(), unquote(raw)));
            }
        }
        Ok(AuthParams {
            scheme: scheme.to_owned(),
            params,
        })
    }
}

/// A challenge received by a client (WWW-Authenticate / Proxy-Authenticate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    pub fn parse(value: &str) -> Result<Challenge, AuthError> {
        let parsed = AuthParams::parse(value)?;
        Ok(Challenge {
            scheme: parsed.scheme,
            params: parsed.params,
        })
    }

    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }

    /// A parameter value, unquoted.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn realm(&self) -> Option<&str> {
        self.param("realm")
    }

    pub fn nonce(&self) -> Option<&str> {
        self.param("nonce")
    }

    pub fn opaque(&self) -> Option<&str> {
        self.param("opaque")
    }

    pub fn algorithm(&self) -> Result<Algorithm, AuthError> {
        self.param("algorithm")
            .map_or(Ok(Algorithm::Md5), Algorithm::parse)
    }

    /// Whether the server offers qop=auth.
    pub fn offers_qop_auth(&self) -> bool {
        self.param("qop").is_some_and(|qop| {
            qop.split(',')
                .any(|option| trim_lws(option).eq_ignore_ascii_case("auth"))
        })
    }

    pub fn stale(&self) -> bool {
        self.param("stale")
            .is_some_and(|stale| stale.eq_ignore_ascii_case("true"))
    }
}

/// Server side: builds a Digest challenge. The nonce comes from the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Offer qop="auth" (on by default; off gives the RFC 2069 form).
    pub qop_auth: bool,
    pub stale: bool,
}

impl DigestChallenge {
    pub fn new(realm: &str, nonce: &str) -> DigestChallenge {
        DigestChallenge {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop_auth: true,
            stale: false,
        }
    }

    pub fn algorithm(mut self, algorithm: Algorithm) -> DigestChallenge {
        self.algorithm = algorithm;
        self
    }

    pub fn opaque(mut self, opaque: &str) -> DigestChallenge {
        self.opaque = Some(opaque.to_owned());
        self
    }

    pub fn qop_auth(mut self, offer: bool) -> DigestChallenge {
        self.qop_auth = offer;
        self
    }

    pub fn stale(mut self, stale: bool) -> DigestChallenge {
        self.stale = stale;
        self
    }

    /// The WWW-Authenticate / Proxy-Authenticate header value.
    pub fn header_value(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DigestChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm={}, nonce={}",
            quote(&self.realm),
            quote(&self.nonce)
        )?;
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque={}", quote(opaque))?;
        }
        write!(f, ", algorithm={}", self.algorithm)?;
        if self.qop_auth {
            f.write_str(", qop=\"auth\"")?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Credentials (Authorization / Proxy-Authorization), received by a server or built by a
/// client with [`Credentials::answer`]. Display writes the header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub scheme: String,
    params: Vec<(String, String)>,
}

impl Credentials {
    pub fn parse(value: &str) -> Result<Credentials, AuthError> {
        let parsed = AuthParams::parse(value)?;
        Ok(Credentials {
            scheme: parsed.scheme,
            params: parsed.params,
        })
    }

    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }

    /// A parameter value, unquoted.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn username(&self) -> Option<&str> {
        self.param("username")
    }

    pub fn realm(&self) -> Option<&str> {
        self.param("realm")
    }

    pub fn nonce(&self) -> Option<&str> {
        self.param("nonce")
    }

    pub fn uri(&self) -> Option<&str> {
        self.param("uri")
    }

    pub fn response(&self) -> Option<&str> {
        self.param("response")
    }

    pub fn cnonce(&self) -> Option<&str> {
        self.param("cnonce")
    }

    pub fn opaque(&self) -> Option<&str> {
        self.param("opaque")
    }

    pub fn algorithm(&self) -> Result<Algorithm, AuthError> {
        self.param("algorithm")
            .map_or(Ok(Algorithm::Md5), Algorithm::parse)
    }

    /// The nonce count (`nc=`, 8 hex digits) for replay tracking by the caller.
    pub fn nonce_count(&self) -> Option<u32> {
        self.param("nc")
            .filter(|nc| nc.len() == 8)
            .and_then(|nc| u32::from_str_radix(nc, 16).ok())
    }

    /// Verifies the response against the user's password.
    pub fn verify_password(&self, method: &str, password: &str) -> Result<bool, AuthError> {
        if !self.is_digest() {
            return Err(AuthError::NotDigest);
        }
        let algorithm = self.algorithm()?;
        let username = self.username().ok_or(AuthError::Missing("username"))?;
        let realm = self.realm().ok_or(AuthError::Missing("realm"))?;
        let ha1 = compute_ha1(algorithm, username, realm, password);
        self.verify_ha1(method, &ha1)
    }

    /// Verifies the response against a stored `H(username:realm:password)`.
    /// The comparison is constant-time. Checking the nonce's freshness and the nonce count
    /// is the caller's job.
    pub fn verify_ha1(&self, method: &str, ha1: &str) -> Result<bool, AuthError> {
        if !self.is_digest() {
            return Err(AuthError::NotDigest);
        }
        let given = self.response().ok_or(AuthError::Missing("response"))?;
        let expected = self.expected_response(method, ha1)?;
        Ok(constant_time_eq(
            expected.as_bytes(),
            given.to_ascii_lowercase().as_bytes(),
        ))
    }

    fn expected_response(&self, method: &str, ha1: &str) -> Result<String, AuthError> {
        let qop_auth = match self.param("qop") {
            None => None,
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let cnonce = self.cnonce().ok_or(AuthError::Missing("cnonce"))?;
                let nc = self.nonce_count().ok_or(AuthError::Missing("nc"))?;
                Some((cnonce, nc))
            }
            Some(other) => return Err(AuthError::UnsupportedQop(other.to_owned())),
        };
        Ok(compute_response(&DigestInput {
            algorithm: self.algorithm()?,
            ha1,
            nonce: self.nonce().ok_or(AuthError::Missing("nonce"))?,
            method,
            uri: self.uri().ok_or(AuthError::Missing("uri"))?,
            qop_auth,
        }))
    }

    /// Client side: answers a Digest challenge. `cnonce` and `nc` are used only when the
    /// challenge offers qop=auth.
    pub fn answer(
        challenge: &Challenge,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> Result<Credentials, AuthError> {
        if !challenge.is_digest() {
            return Err(AuthError::NotDigest);
        }
        let algorithm = challenge.algorithm()?;
        let realm = challenge.realm().ok_or(AuthError::Missing("realm"))?;
        let nonce = challenge.nonce().ok_or(AuthError::Missing("nonce"))?;
        let qop_auth = challenge.offers_qop_auth().then_some((cnonce, nc));
        let ha1 = compute_ha1(algorithm, username, realm, password);
        let response = compute_response(&DigestInput {
            algorithm,
            ha1: &ha1,
            nonce,
            method,
            uri,
            qop_auth,
        });
        let mut params = vec![
            ("username".to_owned(), username.to_owned()),
            ("realm".to_owned(), realm.to_owned()),
            ("nonce".to_owned(), nonce.to_owned()),
            ("uri".to_owned(), uri.to_owned()),
            ("response".to_owned(), response),
            ("algorithm".to_owned(), algorithm.as_str().to_owned()),
        ];
        if let Some((cnonce, nc)) = qop_auth {
            params.push(("cnonce".to_owned(), cnonce.to_owned()));
            params.push(("qop".to_owned(), "auth".to_owned()));
            params.push(("nc".to_owned(), format!("{nc:08x}")));
        }
        if let Some(opaque) = challenge.opaque() {
            params.push(("opaque".to_owned(), opaque.to_owned()));
        }
        Ok(Credentials {
            scheme: "Digest".to_owned(),
            params,
        })
    }

    /// The header value.
    pub fn header_value(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        for (index, (name, value)) in self.params.iter().enumerate() {
            let separator = if index == 0 { " " } else { ", " };
            // algorithm, qop and nc are tokens; everything else is a quoted string.
            let bare = matches!(name.as_str(), "algorithm" | "qop" | "nc")
                && value.bytes().all(crate::parser::is_token_char);
            if bare {
                write!(f, "{separator}{name}={value}")?;
            } else {
                write!(f, "{separator}{name}={}", quote(value))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5.
    #[test]
    fn rfc2617_worked_example() {
        let header = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let credentials = Credentials::parse(header).unwrap();
        assert!(credentials.is_digest());
        assert_eq!(credentials.username(), Some("Mufasa"));
        assert_eq!(credentials.nonce_count(), Some(1));
        assert!(
            credentials
                .verify_password("GET", "Circle Of Life")
                .unwrap()
        );
        assert!(
            !credentials
                .verify_password("GET", "Circle of Life")
                .unwrap()
        );
        assert!(
            !credentials
                .verify_password("POST", "Circle Of Life")
                .unwrap()
        );
        let ha1 = compute_ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert!(credentials.verify_ha1("GET", &ha1).unwrap());

        let challenge = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let answer = Credentials::answer(
            &challenge,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
        )
        .unwrap();
        assert_eq!(answer.response(), Some("6629fae49393a05397450978507c4ef1"));
        let reparsed = Credentials::parse(&answer.header_value()).unwrap();
        assert_eq!(reparsed, answer);
        assert!(reparsed.header_value().contains("nc=00000001"));
        assert!(reparsed.verify_password("GET", "Circle Of Life").unwrap());
    }

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

    fn rfc7616_answer(algorithm: Algorithm) -> Credentials {
        let challenge = DigestChallenge::new("http-auth@example.org", RFC7616_NONCE)
            .algorithm(algorithm)
            .opaque(RFC7616_OPAQUE);
        let parsed = Challenge::parse(&challenge.header_value()).unwrap();
        assert_eq!(parsed.algorithm().unwrap(), algorithm);
        assert!(parsed.offers_qop_auth());
        assert_eq!(parsed.opaque(), Some(RFC7616_OPAQUE));
        Credentials::answer(
            &parsed,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            RFC7616_CNONCE,
            1,
        )
        .unwrap()
    }

    /// RFC 7616 §3.9.1, MD5.
    #[test]
    fn rfc7616_md5_example() {
        let answer = rfc7616_answer(Algorithm::Md5);
        assert_eq!(answer.response(), Some("8ca523f5e9506fed4657c9700eebdbec"));
        assert!(answer.verify_password("GET", "Circle of Life").unwrap());
    }

    /// RFC 7616 §3.9.1, SHA-256.
    #[test]
    fn rfc7616_sha256_example() {
        let answer = rfc7616_answer(Algorithm::Sha256);
        assert_eq!(
            answer.response(),
            Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
        );
        assert!(answer.verify_password("GET", "Circle of Life").unwrap());
        assert!(!answer.verify_password("GET", "circle of life").unwrap());
    }

    #[test]
    fn session_variants_and_legacy_no_qop_round_trip() {
        for algorithm in [Algorithm::Md5Sess, Algorithm::Sha256Sess, Algorithm::Md5] {
            for qop in [true, false] {
                let challenge = DigestChallenge::new("talktime", "abc123")
                    .algorithm(algorithm)
                    .qop_auth(qop);
                let parsed = Challenge::parse(&challenge.to_string()).unwrap();
                let answer = Credentials::answer(
                    &parsed,
                    "alice",
                    "secret",
                    "INVITE",
                    "sip:bob@example.com",
                    "xyz",
                    7,
                )
                .unwrap();
                let received = Credentials::parse(&answer.to_string()).unwrap();
                assert_eq!(received.nonce_count(), qop.then_some(7));
                assert!(received.verify_password("INVITE", "secret").unwrap());
                assert!(!received.verify_password("INVITE", "wrong").unwrap());
            }
        }
        // RFC 2069 form: response = H(HA1:nonce:HA2).
        let ha1 = compute_ha1(Algorithm::Md5, "u", "r", "p");
        let ha2 = Algorithm::Md5.hash(b"BYE:sip:x");
        let expected = Algorithm::Md5.hash(format!("{ha1}:n:{ha2}").as_bytes());
        let input = DigestInput {
            algorithm: Algorithm::Md5,
            ha1: &ha1,
            nonce: "n",
            method: "BYE",
            uri: "sip:x",
            qop_auth: None,
        };
        assert_eq!(compute_response(&input), expected);
    }

    #[test]
    fn stale_and_errors() {
        let challenge = DigestChallenge::new("r", "n").stale(true);
        assert!(Challenge::parse(&challenge.to_string()).unwrap().stale());
        assert_eq!(
            Challenge::parse("Digest realm=\"r\", algorithm=SHA-512")
                .unwrap()
                .algorithm(),
            Err(AuthError::UnsupportedAlgorithm("SHA-512".into()))
        );
        assert!(Credentials::parse("Digest username=\"open").is_err());
        assert!(Credentials::parse("Digest username").is_err());
        let basic = Credentials::parse("Basic realm=\"x\"").unwrap();
        assert_eq!(basic.verify_password("GET", "p"), Err(AuthError::NotDigest));
        let missing = Credentials::parse("Digest username=\"a\", realm=\"r\"").unwrap();
        assert_eq!(
            missing.verify_password("GET", "p"),
            Err(AuthError::Missing("response"))
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
