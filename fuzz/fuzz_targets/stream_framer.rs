//! Arbitrary bytes fed in arbitrary chunks to the TCP framer must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use talktime_sip::StreamFramer;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let mut framer = StreamFramer::with_max_size(4096);
    for piece in rest.chunks(usize::from(chunk).max(1)) {
        framer.push(piece);
        loop {
            match framer.next_message() {
                Ok(Some(message)) => {
                    let _ = message.validate();
                }
                Ok(None) | Err(_) => break,
            }
        }
        let _ = framer.take_keepalive();
    }
});
