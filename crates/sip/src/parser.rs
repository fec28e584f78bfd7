//! Lexical helpers and the message parser (RFC 3261 §7, §25).

use crate::error::ParseError;
use crate::headers::{Headers, id};
use crate::message::{Message, Request, Response};
use crate::method::Method;
use crate::uri::Uri;

/// RFC 3261 token characters.
pub(crate) fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_token_char)
}

pub(crate) fn is_lws(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn trim_lws(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8))
}

/// Given text starting with `"`, the index just past the closing quote (honouring `\`).
pub(crate) fn quoted_string_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut index = 1;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 2,
            b'"' => return Some(index + 1),
            _ => index += 1,
        }
    }
    None
}

/// Splits at `separator` bytes that are outside quoted strings and `<...>`.
pub(crate) fn split_unquoted(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut index = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut done = false;
    let bytes = text.as_bytes();
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while index < bytes.len() {
            let byte = bytes[index];
            index += 1;
            if in_quotes {
                match byte {
                    b'\\' => index += 1,
                    b'"' => in_quotes = false,
                    _ => {}
                }
            } else if byte == b'"' {
                in_quotes = true;
            } else if byte == b'<' {
                in_angle = true;
            } else if byte == b'>' {
                in_angle = false;
            } else if byte == separator && !in_angle {
                let piece = &text[start..index - 1];
                start = index;
                return Some(piece);
            }
        }
        done = true;
        Some(text.get(start..).unwrap_or(""))
    })
}

/// Where the header section ends: (end of the last header line, start of the body).
/// Accepts CRLF and, leniently, bare LF line endings.
pub(crate) fn find_head_end(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut index = from.min(data.len());
    while let Some(offset) = data[index..].iter().position(|&b| b == b'\n') {
        let newline = index + offset;
        match data.get(newline + 1) {
            Some(b'\n') => return Some((newline + 1, newline + 2)),
            Some(b'\r') if data.get(newline + 2) == Some(&b'\n') => {
                return Some((newline + 1, newline + 3));
            }
            _ => index = newline + 1,
        }
    }
    None
}

/// Skips CRLFs sent before a start line (RFC 3261 §7.5) or as keep-alives (RFC 5626).
pub(crate) fn leading_blank_len(data: &[u8]) -> usize {
    data.iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(data.len())
}

/// The parsed head of a message plus where its body sits in the input.
pub(crate) struct Head {
    pub(crate) start: StartLine,
    pub(crate) headers: Headers,
    pub(crate) body_start: usize,
    pub(crate) content_length: Option<usize>,
}

pub(crate) enum StartLine {
    Request(Method, Uri),
    Response(u16, String),
}

/// Parses the start line and headers; `data` must already have leading CRLFs removed.
/// Returns `Ok(None)` if the header section is not yet complete.
pub(crate) fn parse_head(data: &[u8]) -> Result<Option<Head>, ParseError> {
    let Some((head_end, body_start)) = find_head_end(data, 0) else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&data[..head_end]).map_err(|_| ParseError::Utf8)?;
    let mut lines = head.split('\n');
    let start_line = lines.next().ok_or(ParseError::Empty)?;
    let start_line = start_line.strip_suffix('\r').unwrap_or(start_line);
    let start = parse_start_line(start_line)?;

    let mut headers = Headers::with_text(head.to_owned(), 16);
    let mut current: Option<(usize, usize, usize, bool)> = None; // name start, name end, value start, folded
    let mut value_end = 0;
    let mut offset =
        start_line.len() + 1 + usize::from(head.as_bytes().get(start_line.len()) == Some(&b'\r'));
    let mut folded_entries = Vec::new();
    for raw_line in lines {
        let line_start = offset;
        offset += raw_line.len() + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Continuation line (LWS folding): extends the current value.
            let Some(current) = current.as_mut() else {
                return Err(ParseError::HeaderLine);
            };
            if !trim_lws(line).is_empty() {
                value_end = line_start + line.trim_end_matches([' ', '\t']).len();
                current.3 = true;
            }
            continue;
        }
        if let Some(done) = current.take() {
            finish_header(&mut headers, &mut folded_entries, done, value_end);
        }
        let colon = line.find(':').ok_or(ParseError::HeaderLine)?;
        let name = line[..colon].trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(ParseError::HeaderLine);
        }
        let value_part = &line[colon + 1..];
        let leading = value_part.len() - value_part.trim_start_matches([' ', '\t']).len();
        let value_start = line_start + colon + 1 + leading;
        value_end = (line_start + line.trim_end_matches([' ', '\t']).len()).max(value_start);
        current = Some((line_start, line_start + name.len(), value_start, false));
    }
    if let Some(done) = current.take() {
        finish_header(&mut headers, &mut folded_entries, done, value_end);
    }
    for (index, range) in folded_entries {
        let unfolded = unfold(&headers.text()[range]);
        let new_range = headers.append_text(trim_lws(&unfolded));
        headers.set_value_range(index, new_range);
    }
    let content_length = content_length(&headers)?;
    Ok(Some(Head {
        start,
        headers,
        body_start,
        content_length,
    }))
}

fn finish_header(
    headers: &mut Headers,
    folded: &mut Vec<(usize, std::ops::Range<usize>)>,
    (name_start, name_end, value_start, is_folded): (usize, usize, usize, bool),
    value_end: usize,
) {
    if is_folded {
        folded.push((headers.len(), value_start..value_end));
    }
    headers.push_range(
        name_start..name_end,
        value_start..value_end.max(value_start),
    );
}

/// Replaces each run of linear whitespace containing a line break by one space.
fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut pending_space = false;
    let mut run_has_break = false;
    let mut run = String::new();
    for c in value.chars() {
        if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
            pending_space = true;
            run_has_break |= c == '\n';
            run.push(c);
            continue;
        }
        if pending_space {
            if run_has_break {
                out.push(' ');
            } else {
                out.push_str(&run);
            }
        }
        pending_space = false;
        run_has_break = false;
        run.clear();
        out.push(c);
    }
    out
}

/// The declared Content-Length, rejecting malformed or conflicting values.
fn content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    let mut found: Option<usize> = None;
    for value in headers.get_all_known(id::CONTENT_LENGTH) {
        let value = trim_lws(value);
        if value.is_empty() || value.len() > 9 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::ContentLength);
        }
        let length: usize = value.parse().map_err(|_| ParseError::ContentLength)?;
        if found.is_some_and(|previous| previous != length) {
            return Err(ParseError::ContentLength);
        }
        found = Some(length);
    }
    Ok(found)
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if starts_with_sip_slash(line) {
        return parse_status_line(line);
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::StartLine);
    };
    check_version(version)?;
    let method = Method::parse(method)?;
    if uri.is_empty() {
        return Err(ParseError::RequestUri);
    }
    let uri = Uri::parse(uri).map_err(|_| ParseError::RequestUri)?;
    // Headers are not allowed in a Request-URI (RFC 3261 §19.1.5 table).
    if !uri.headers().is_empty() {
        return Err(ParseError::RequestUri);
    }
    Ok(StartLine::Request(method, uri))
}

fn parse_status_line(line: &str) -> Result<StartLine, ParseError> {
    let (version, rest) = line.split_once(' ').ok_or(ParseError::StartLine)?;
    check_version(version)?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::StatusCode);
    }
    let status: u16 = code.parse().map_err(|_| ParseError::StatusCode)?;
    if !(100..=699).contains(&status) {
        return Err(ParseError::StatusCode);
    }
    Ok(StartLine::Response(status, reason.to_owned()))
}

/// Byte-wise so that a multi-byte character at offset 3 cannot split a slice.
fn starts_with_sip_slash(text: &str) -> bool {
    text.as_bytes()
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"SIP/"))
}

/// `SIP/2.0` (case-insensitive); another well-formed version is a 505, anything else a 400.
fn check_version(version: &str) -> Result<(), ParseError> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let well_formed = starts_with_sip_slash(version)
        && version
            .get(4..)
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(major, minor)| {
                !major.is_empty()
                    && !minor.is_empty()
                    && major.bytes().all(|b| b.is_ascii_digit())
                    && minor.bytes().all(|b| b.is_ascii_digit())
            });
    if well_formed {
        Err(ParseError::Version(version.to_owned()))
    } else {
        Err(ParseError::StartLine)
    }
}

/// Builds the message from a parsed head and its body bytes.
pub(crate) fn assemble(head: Head, body: &[u8]) -> Message {
    match head.start {
        StartLine::Request(method, uri) => Message::Request(Request {
            method,
            uri,
            headers: head.headers,
            body: body.to_vec(),
        }),
        StartLine::Response(status, reason) => Message::Response(Response {
            status,
            reason,
            headers: head.headers,
            body: body.to_vec(),
        }),
    }
}

/// Parses one datagram. Bytes past Content-Length are ignored (RFC 3261 §18.3); without
/// Content-Length the body runs to the end of the datagram.
pub(crate) fn parse_datagram(data: &[u8]) -> Result<Message, ParseError> {
    let skipped = leading_blank_len(data);
    let data = &data[skipped..];
    if data.is_empty() {
        return Err(ParseError::Empty);
    }
    let head = parse_head(data)?.ok_or(ParseError::Incomplete)?;
    let available = &data[head.body_start..];
    let body = match head.content_length {
        Some(length) => available.get(..length).ok_or(ParseError::Truncated)?,
        None => available,
    };
    Ok(assemble(head, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_respect_quotes_and_angles() {
        let parts: Vec<&str> = split_unquoted("a,\"b,c\",<d,e>,f", b',').collect();
        assert_eq!(parts, vec!["a", "\"b,c\"", "<d,e>", "f"]);
        let parts: Vec<&str> = split_unquoted("", b',').collect();
        assert_eq!(parts, vec![""]);
    }

    #[test]
    fn unfolds_continuations() {
        assert_eq!(unfold("a,\r\n  b"), "a, b");
        assert_eq!(unfold("a  b"), "a  b");
        assert_eq!(unfold("a \r\n\tb \r\n c"), "a b c");
    }

    #[test]
    fn quoted_ends() {
        assert_eq!(quoted_string_end("\"ab\" x"), Some(4));
        assert_eq!(quoted_string_end("\"a\\\"b\""), Some(6));
        assert_eq!(quoted_string_end("\"open"), None);
    }
}
