//! Framing SIP messages out of a TCP/TLS byte stream (RFC 3261 §18.3).

use crate::error::ParseError;
use crate::message::Message;
use crate::parser::{assemble, find_head_end, leading_blank_len, parse_head};

/// Default bound on one message (head plus body), in bytes.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 65_535;

/// Accepts arbitrary chunks of a byte stream and yields complete messages.
///
/// Every message on a stream must carry Content-Length. CRLF keep-alives between messages
/// are skipped; a double-CRLF ping (RFC 5626 §4.4.1) is reported by
/// [`StreamFramer::take_keepalive`] so the caller can answer with a CRLF pong.
/// After an error the stream cannot be resynchronised: the caller should close it.
#[derive(Debug)]
pub struct StreamFramer {
    buffer: Vec<u8>,
    max_size: usize,
    /// Where to resume looking for the end of the header section.
    scanned: usize,
    ping_seen: bool,
    /// CR/LF bytes skipped since the last message byte (a ping may arrive split).
    blank_run: usize,
    /// Length of the message being received once its head has been parsed, so that body
    /// bytes trickling in do not cause the head to be parsed again.
    awaiting: Option<usize>,
    failed: Option<ParseError>,
}

impl Default for StreamFramer {
    fn default() -> StreamFramer {
        StreamFramer::new()
    }
}

impl StreamFramer {
    pub fn new() -> StreamFramer {
        StreamFramer::with_max_size(DEFAULT_MAX_MESSAGE_SIZE)
    }

    pub fn with_max_size(max_size: usize) -> StreamFramer {
        StreamFramer {
            buffer: Vec::new(),
            max_size,
            scanned: 0,
            ping_seen: false,
            blank_run: 0,
            awaiting: None,
            failed: None,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// Bytes held that do not yet form a complete message.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Whether a double-CRLF keep-alive ping arrived since the last call.
    pub fn take_keepalive(&mut self) -> bool {
        std::mem::take(&mut self.ping_seen)
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, ParseError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.try_next();
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn try_next(&mut self) -> Result<Option<Message>, ParseError> {
        if self.awaiting.is_some_and(|total| self.buffer.len() < total) {
            return Ok(None);
        }
        self.skip_keepalives();
        if self.buffer.is_empty() {
            return Ok(None);
        }
        if find_head_end(&self.buffer, self.scanned).is_none() {
            // Resume a few bytes back so a CRLFCRLF split across chunks is still found.
            self.scanned = self.buffer.len().saturating_sub(3);
            if self.buffer.len() > self.max_size {
                return Err(ParseError::TooLarge(self.max_size));
            }
            return Ok(None);
        }
        let Some(head) = parse_head(&self.buffer)? else {
            return Ok(None);
        };
        let length = head.content_length.ok_or(ParseError::StreamContentLength)?;
        let total = head.body_start + length;
        if total > self.max_size {
            return Err(ParseError::TooLarge(self.max_size));
        }
        if self.buffer.len() < total {
            self.awaiting = Some(total);
            return Ok(None);
        }
        self.awaiting = None;
        let body_start = head.body_start;
        let message = assemble(head, &self.buffer[body_start..total]);
        self.buffer.drain(..total);
        self.scanned = 0;
        Ok(Some(message))
    }

    fn skip_keepalives(&mut self) {
        let blank = leading_blank_len(&self.buffer);
        if blank > 0 {
            self.blank_run += blank;
            self.buffer.drain(..blank);
            self.scanned = 0;
        }
        if self.blank_run >= 4 {
            self.ping_seen = true;
            self.blank_run = 0;
        }
        if !self.buffer.is_empty() {
            self.blank_run = 0;
        }
    }
}
