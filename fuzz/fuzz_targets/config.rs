//! Any configuration file text: loading it over the embedded defaults must not panic (a bad
//! file is an error naming the problem).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use talktime_b2bua::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::from_file_text(text, Path::new("fuzz.toml")) {
        for access in &config.access_numbers {
            let _ = config.ivr_for(access);
            let _ = config.number_rules_for(access);
        }
        let _ = config.peer_trust("192.0.2.1".parse().unwrap());
    }
});
