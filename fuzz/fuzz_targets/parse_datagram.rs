//! Any datagram: parsing, validation, typed accessors and re-serialization must not panic,
//! and whatever parses must parse again identically after serialization.
#![no_main]

use libfuzzer_sys::fuzz_target;
use talktime_sip::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::parse(data) else {
        return;
    };
    let _ = message.validate();
    let _ = message.via();
    let _ = message.from();
    let _ = message.to();
    let _ = message.contact();
    let _ = message.route();
    let _ = message.record_route();
    let _ = message.cseq();
    let _ = message.max_forwards();
    let _ = message.session_expires();
    for value in message.headers().authorization() {
        if let Ok(credentials) = talktime_sip::auth::Credentials::parse(value) {
            let _ = credentials.verify_password("INVITE", "secret");
        }
    }
    let bytes = message.to_bytes();
    if let Ok(again) = Message::parse(&bytes) {
        assert_eq!(again.to_bytes(), bytes);
    }
});
