//! Any text in the optional rate columns of a tariff CSV row: parsing must not panic, and
//! what parses writes back to cells that parse to the same extras (the export round trip).
#![no_main]

use libfuzzer_sys::fuzz_target;
use talktime_billing::{RATE_EXTRA_COLUMNS, RateExtras};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cells: Vec<(&'static str, &str)> = RATE_EXTRA_COLUMNS
        .iter()
        .copied()
        .zip(text.split(',').chain(std::iter::repeat("")))
        .collect();
    let Ok(extras) = RateExtras::from_columns(&cells) else {
        return;
    };
    let written = extras.to_columns();
    let again: Vec<(&'static str, &str)> = RATE_EXTRA_COLUMNS
        .iter()
        .copied()
        .zip(written.iter().map(String::as_str))
        .collect();
    assert_eq!(RateExtras::from_columns(&again).ok(), Some(extras));
});
