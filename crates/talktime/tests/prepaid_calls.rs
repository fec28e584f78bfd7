//! The prepaid call end to end against the real binary: SIPp plays the caller (DTMF as
//! RFC 4733 from a pcap the test writes) and the carriers (SIPp UAS); the ledger is read
//! back for the exact balance and CDRs. SIPp's play_pcap_audio needs root or CAP_NET_RAW.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::pcap::dtmf_pcap;
use common::prepaid::{self, ConfigFile};
use common::scenario::{BackgroundSipp, render};
use common::{Switch, free_port, scenario, tail};
use talktime_store::Cdr;

/// 6.00 a minute in one-second blocks: 0.10 a second, so 0.50 buys exactly 5 s.
const PER_SECOND_RATES: &str = "1,USA,6.00,1.00,1,1,0\n44,UK,6.00,1.00,1,1,0\n";

/// Runs one SIPp caller to completion: the access number 100 with this DTMF script.
fn call(
    switch: &Switch,
    dir: &Path,
    caller: &str,
    script: &[(Duration, &str)],
    wait: Duration,
) -> std::process::Output {
    let last = script.last().map_or(Duration::ZERO, |(at, digits)| {
        *at + common::pcap::digits_length(digits)
    });
    let pcap = dir.join(format!("caller-{}.pcap", free_port()));
    dtmf_pcap(&pcap, script, last + Duration::from_millis(500), 101).unwrap();
    let wait_ms = wait.as_millis().to_string();
    let scenario = render(
        "caller_ivr.xml",
        &[
            ("CALLER", caller),
            ("PCAP", pcap.to_str().unwrap()),
            ("WAIT_MS", &wait_ms),
        ],
    );
    let seconds = u32::try_from(wait.as_secs()).unwrap() + 20;
    let media_port = free_port().to_string();
    common::sipp(
        seconds,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            "100",
            &switch.sip.to_string(),
            "-m",
            "1",
            "-mp",
            &media_port,
        ],
    )
}

fn assert_caller_ok(output: &std::process::Output, switch: &Switch, what: &str) {
    common::assert_sipp_ok(output, switch, what);
}

/// Waits for the settlement task to write the attempt's CDRs.
fn wait_for_cdrs(dir: &Path, reservation: &str, rows: usize) -> Vec<Cdr> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let cdrs = prepaid::cdrs(dir, reservation);
        if cdrs.len() >= rows || Instant::now() > deadline {
            return cdrs;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn only_call_id(switch: &Switch) -> String {
    let ids = switch.call_ids();
    assert_eq!(
        ids.len(),
        1,
        "calls: {ids:?}\n{}",
        tail(&switch.log_text(), 40)
    );
    ids[0].clone()
}

#[test]
fn pin_call_is_cut_at_the_credit_limit_and_billed_exactly() {
    let dir = prepaid::data_dir("credit-limit");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, "1234567890", 500_000, 0);
    let carrier = BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "1"],
    );
    let config = ConfigFile::new()
        .carrier("answer", &carrier.address())
        .routes(&[("", &["answer"])])
        .write(&dir);
    let switch = Switch::start_in(&dir, &["--config", config.to_str().unwrap()]);

    let output = call(
        &switch,
        &dir,
        "anonymous",
        &[
            (Duration::from_millis(2000), "1234567890#"),
            (Duration::from_millis(5600), "0015551234567#"),
        ],
        Duration::from_secs(45),
    );
    assert_caller_ok(
        &output,
        &switch,
        "the switch hangs up the caller at the limit",
    );
    let carrier_run = carrier.finish(Duration::from_secs(5));
    assert!(carrier_run.success(), "carrier: {}", carrier_run.describe());

    let reservation = format!("{}#1", only_call_id(&switch));
    let cdrs = wait_for_cdrs(&dir, &reservation, 1);
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    let cdr = &cdrs[0];
    let answered = cdr.answer_ms.expect("the carrier answered");
    let talk_ms = cdr.end_ms - answered;
    assert!(
        (4_000..=6_000).contains(&talk_ms),
        "cut after {talk_ms} ms, the limit is 5,000 ms ± 1 s"
    );
    assert_eq!(cdr.carrier.as_deref(), Some("answer"));
    assert_eq!(cdr.destination.expose(), "+15551234567");
    assert_eq!(cdr.billed_seconds, 5);
    assert_eq!(cdr.total_micros, 500_000);
    assert_eq!(cdr.sip_code, Some(200));
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("credit_exhausted"));
    assert_eq!(cdr.hangup_by.as_deref(), Some("switch"));
    assert_eq!(prepaid::balance(&dir, account), 0, "0.50 - 5 s at 0.10/s");
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
    assert!(
        switch.log_text().contains("credit warning played"),
        "the caller hears the warning before the end"
    );
}
