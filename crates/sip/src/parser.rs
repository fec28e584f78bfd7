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
    while let Some(offset) = find_byte(&data[index..], b'\n') {
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

/// One line of the header section: its bytes (without CR LF) and its first colon.
#[derive(Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    colon: Option<usize>,
}

/// Splits the header section into lines in a single pass over the bytes.
/// Returns the lines, where the head ends (start of the blank line) and where the body starts;
/// `None` if the blank line has not arrived yet.
fn scan_lines(data: &[u8]) -> Option<(Vec<Line>, usize, usize)> {
    let mut lines = Vec::with_capacity(24);
    let mut start = 0;
    loop {
        let newline = start + find_byte(data.get(start..)?, b'\n')?;
        let end = if newline > start && data[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        if end == start {
            return Some((lines, start, newline + 1));
        }
        // Only a header line's first colon matters; names are short, so this scan is too.
        let colon = if is_wsp(data[start]) {
            None
        } else {
            data[start..end]
                .iter()
                .position(|&byte| byte == b':')
                .map(|offset| start + offset)
        };
        lines.push(Line { start, end, colon });
        start = newline + 1;
    }
}

/// The first `needle` in `haystack`, eight bytes at a time (SWAR): a byte equal to the needle
/// becomes zero after the XOR, and `(x - 0x01..) & !x & 0x80..` flags the lowest zero byte.
pub(crate) fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let pattern = LOW * u64::from(needle);
    let mut chunks = haystack.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_le_bytes(bytes) ^ pattern;
        let found = word.wrapping_sub(LOW) & !word & HIGH;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&byte| byte == needle)
        .map(|position| offset + position)
}

fn is_wsp(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// Parses the start line and headers; `data` must already have leading CRLFs removed.
/// Returns `Ok(None)` if the header section is not yet complete.
pub(crate) fn parse_head(data: &[u8]) -> Result<Option<Head>, ParseError> {
    let Some((lines, head_end, body_start)) = scan_lines(data) else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&data[..head_end]).map_err(|_| ParseError::Utf8)?;
    let bytes = head.as_bytes();
    let first = lines.first().ok_or(ParseError::Empty)?;
    let start = parse_start_line(&head[first.start..first.end])?;

    let mut headers = Headers::with_text(head.to_owned(), lines.len());
    // (name start, name end, value start, value end, folded) of the header being read.
    let mut current: Option<(usize, usize, usize, usize, bool)> = None;
    let mut folded_entries = Vec::new();
    for line in &lines[1..] {
        if is_wsp(bytes[line.start]) {
            // Continuation line (LWS folding): extends the current value.
            let Some(current) = current.as_mut() else {
                return Err(ParseError::HeaderLine);
            };
            let end = trim_end_wsp(bytes, line.start, line.end);
            if end > line.start && !trim_lws(&head[line.start..end]).is_empty() {
                current.3 = end;
                current.4 = true;
            }
            continue;
        }
        if let Some(done) = current.take() {
            finish_header(&mut headers, &mut folded_entries, done);
        }
        let colon = line
            .colon
            .filter(|colon| *colon < line.end)
            .ok_or(ParseError::HeaderLine)?;
        let name_end = trim_end_wsp(bytes, line.start, colon);
        if !is_token(&head[line.start..name_end]) {
            return Err(ParseError::HeaderLine);
        }
        let mut value_start = colon + 1;
        while value_start < line.end && is_wsp(bytes[value_start]) {
            value_start += 1;
        }
        let value_end = trim_end_wsp(bytes, value_start, line.end);
        current = Some((line.start, name_end, value_start, value_end, false));
    }
    if let Some(done) = current.take() {
        finish_header(&mut headers, &mut folded_entries, done);
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

/// The end of `bytes[start..end]` without trailing spaces and tabs.
fn trim_end_wsp(bytes: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && is_wsp(bytes[end - 1]) {
        end -= 1;
    }
    end
}

fn finish_header(
    headers: &mut Headers,
    folded: &mut Vec<(usize, std::ops::Range<usize>)>,
    (name_start, name_end, value_start, value_end, is_folded): (usize, usize, usize, usize, bool),
) {
    if is_folded {
        folded.push((headers.len(), value_start..value_end));
    }
    headers.push_range(name_start..name_end, value_start..value_end);
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
    fn find_byte_matches_a_plain_search() {
        let text = b"abc:defghijklmnop\nqrstuvwxyz:0123456789\n\x0a\xff\n";
        for start in 0..text.len() {
            for needle in [b'\n', b':', b'z', b'\xff', b'#'] {
                let haystack = &text[start..];
                let expected = haystack.iter().position(|&b| b == needle);
                assert_eq!(find_byte(haystack, needle), expected, "{start} {needle}");
            }
        }
        assert_eq!(find_byte(b"", b'a'), None);
    }

    #[test]
    fn quoted_ends() {
        assert_eq!(quoted_string_end("\"ab\" x"), Some(4));
        assert_eq!(quoted_string_end("\"a\\\"b\""), Some(6));
        assert_eq!(quoted_string_end("\"open"), None);
    }
}
