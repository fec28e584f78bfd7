//! Carriers that break the rules and callers that vanish (issue 11): every reservation is
//! closed within the no-answer and dead-media timeouts, every call gets its CDR, and the
//! switch keeps taking calls. One caller per carrier, all at once, each keying at a human pace
//! and then disappearing without CANCEL or BYE (no RTP, no answers) while its carrier misbehaves.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::calls::start;
use common::pcap::{digits_length, dtmf_pcap};
use common::prepaid::{self, ConfigFile};
use common::scenario::{BackgroundSipp, render};
use common::{free_port, scenario, tail};

/// The carriers' SIPp scenarios (tests/sipp/carrier_<name>.xml).
const CARRIERS: [&str; 7] = [
    "rings_forever",
    "200_without_tag",
    "183_without_tag",
    "forked_200",
    "reinvite_glare",
    "422_then_200",
    "reinvite_without_sdp",
];

const NO_ANSWER_MS: u64 = 5_000;
const INACTIVITY_MS: u64 = 3_000;

/// Keys 400-600 ms apart: the PIN, a pause, the number routed to carrier `index`.
fn keys(pin: &str, index: usize) -> Vec<(Duration, String)> {
    let gaps = [430u64, 560, 410, 600, 480, 520];
    let mut gaps = gaps.iter().cycle().map(|ms| Duration::from_millis(*ms));
    let mut at = Duration::from_millis(2_000);
    let mut keys = Vec::new();
    let number = format!("00155500{index}4567#");
    for (position, key) in format!("{pin}#").chars().chain(number.chars()).enumerate() {
        if position == pin.len() + 1 {
            at += Duration::from_millis(1_500);
        }
        keys.push((at, key.to_string()));
        at += gaps.next().unwrap();
    }
    keys
}

/// A caller that keys its script, then vanishes; returns when SIPp is done with it.
fn vanishing_caller(switch_sip: &str, dir: &Path, keys: &[(Duration, String)]) {
    let script: Vec<(Duration, &str)> = keys.iter().map(|(at, k)| (*at, k.as_str())).collect();
    let (last_at, last_key) = script.last().unwrap();
    let length = *last_at + digits_length(last_key) + Duration::from_millis(500);
    let pcap = dir.join(format!("vanish-{}.pcap", free_port()));
    dtmf_pcap(&pcap, &script, length, 101).unwrap();
    let scenario = render(
        "caller_vanishes.xml",
        &[
            ("CALLER", "anonymous"),
            ("PCAP", pcap.to_str().unwrap()),
            ("PCAP_MS", &length.as_millis().to_string()),
        ],
    );
    let media_port = common::sipp_media_port().to_string();
    let output = common::sipp(
        60,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            "100",
            switch_sip,
            "-m",
            "1",
            "-mp",
            &media_port,
        ],
    );
    assert!(
        output.status.success(),
        "the caller was answered and keyed its digits: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn misbehaving_carriers_and_vanishing_callers_leave_no_reservation_open() {
    let dir = prepaid::data_dir("misbehaving");
    prepaid::tariff(&dir, "demo", "1,USA,6.00,1.00,1,1,0\n");
    let pins: Vec<String> = (0..CARRIERS.len())
        .map(|index| format!("90000000{index:02}"))
        .collect();
    let accounts: Vec<i64> = pins
        .iter()
        .map(|pin| prepaid::card(&dir, pin, 5_000_000, 0))
        .collect();
    let carriers: Vec<BackgroundSipp> = CARRIERS
        .iter()
        .map(|name| {
            let file = scenario(&format!("carrier_{name}.xml"));
            BackgroundSipp::uas(120, &file, &["-m", "1", "-default_behaviors", "none"])
        })
        .collect();
    let mut config = ConfigFile::new()
        .ivr(&format!("no_answer_timeout_ms = {NO_ANSWER_MS}"))
        .ivr("inter_digit_timeout_ms = 5000")
        .raw(&format!("[rtp]\ninactivity_timeout_ms = {INACTIVITY_MS}\n"));
    for (name, carrier) in CARRIERS.iter().zip(&carriers) {
        config = config.carrier(name, &carrier.address());
    }
    let prefixes: Vec<String> = (0..CARRIERS.len())
        .map(|index| format!("155500{index}"))
        .collect();
    let routes: Vec<(&str, &[&str])> = prefixes
        .iter()
        .zip(CARRIERS.iter())
        .map(|(prefix, name)| (prefix.as_str(), std::slice::from_ref(name)))
        .collect();
    let switch = start(&dir, config.routes(&routes));
    let sip = switch.sip.to_string();

    std::thread::scope(|scope| {
        for (index, pin) in pins.iter().enumerate() {
            let (sip, dir) = (&sip, &dir);
            scope.spawn(move || vanishing_caller(sip, dir, &keys(pin, index)));
        }
    });

    // The slowest path: a carrier that never answers is cancelled at the no-answer timeout,
    // the silent caller is then ended by dead-media detection (or the IVR's own timeouts).
    let deadline = Instant::now() + Duration::from_secs(45);
    let open = || -> Vec<(usize, usize)> {
        accounts
            .iter()
            .enumerate()
            .map(|(index, account)| (index, prepaid::open_reservations(&dir, *account)))
            .filter(|(_, open)| *open > 0)
            .collect()
    };
    while !open().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    let left: Vec<&str> = open().iter().map(|(index, _)| CARRIERS[*index]).collect();
    assert!(
        left.is_empty(),
        "reservations still open behind carriers {left:?}\n{}",
        tail(&switch.log_text(), 80)
    );
    let ids = switch.call_ids();
    assert_eq!(ids.len(), CARRIERS.len(), "every caller reached the IVR");
    for id in &ids {
        let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{id}#1"), 1);
        assert!(!cdrs.is_empty(), "call {id} has its CDR");
        // Whatever ended an answered call, every second the carrier had it up is billed
        // (0.10 a second, whole seconds rounded up; the CDR's wall-clock times may differ
        // from the engine's monotonic clock by a millisecond, so one second either way).
        for cdr in cdrs.iter().filter(|cdr| cdr.answer_ms.is_some()) {
            let talked_ms = cdr.end_ms - cdr.answer_ms.unwrap();
            let seconds = (talked_ms + 999) / 1000;
            assert!(
                (seconds - 1..=seconds + 1).contains(&cdr.billed_seconds)
                    && cdr.total_micros == cdr.billed_seconds * 100_000,
                "{:?}: billed {} s, {} micros after {talked_ms} ms answered",
                cdr.disconnect_cause,
                cdr.billed_seconds,
                cdr.total_micros
            );
        }
    }
    for account in &accounts {
        assert!(prepaid::balance(&dir, *account) <= 5_000_000);
    }

    // Still taking calls: the test number answers and hangs up.
    let output = common::sipp(
        20,
        &["-sn", "uac", "-s", "9999", &sip, "-m", "1", "-d", "500"],
    );
    common::assert_sipp_ok(&output, &switch, "a call after the misbehaving ones");
    drop(carriers);
}
