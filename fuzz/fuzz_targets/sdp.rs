//! Any SDP body: parsing, answering it as the switch does, and re-serialization must not
//! panic; an answer we write must parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use talktime_sdp::{Codec, Direction, LocalAudio, SessionDescription, SessionOrigin};

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = SessionDescription::parse(data) else {
        return;
    };
    let _ = SessionDescription::parse(&offer.to_bytes());
    let address = "127.0.0.1".parse().unwrap();
    let local = LocalAudio {
        address,
        port: 20000,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        telephone_event: Some(101),
        ptime: 20,
        direction: Direction::SendRecv,
    };
    let mut origin = SessionOrigin::new(1, address);
    if let Ok((answer, _audio)) = talktime_sdp::answer(&offer, &local, &mut origin) {
        assert!(SessionDescription::parse(&answer.to_bytes()).is_ok());
    }
});
