//! Any telephone-event payload under any RTP header: the receiver must not panic, and it
//! reports a key at most once per (SSRC, timestamp).
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use talktime_media::{RtpHeader, Rfc4733Receiver};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = RtpHeader::parse(data) else {
        return;
    };
    let payload = data.get(12..).unwrap_or_default();
    let mut receiver = Rfc4733Receiver::new();
    let now = Instant::now();
    let first = receiver.on_packet(&header, payload, now);
    let again = receiver.on_packet(&header, payload, now);
    if first.is_some() {
        assert!(again.is_none(), "one key reported twice");
    }
});
