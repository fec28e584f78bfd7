//! Callers as people are (issue 11): keys 400-600 ms apart with a pause between the PIN and the
//! number, carriers that ring forever. The real binary, SIPp on both sides, the ledger read
//! back. Before issue 11 the credit limit of such a call was never armed and the call ran on
//! until the caller hung up.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::baresip::Baresip;
use common::calls::{answering_carrier, call, call_and_hang_up, only_attempt_cdrs, start};
use common::prepaid::{self, ConfigFile};
use common::scenario::BackgroundSipp;
use common::{assert_sipp_ok, scenario, tail};

/// 6.00 a minute in one-second blocks: 0.10 a second.
const PER_SECOND_RATES: &str = "1,USA,6.00,1.00,1,1,0\n";
const PIN: &str = "1234567890";

/// The PIN and `#` from 2 s after the answer, then, after a pause, the number and `#`; each key
/// 400-600 ms after the one before, uneven as a person's.
pub fn human_keys() -> Vec<(Duration, String)> {
    let gaps = [430u64, 560, 410, 600, 480, 520, 455, 590, 400, 505, 545];
    let mut gaps = gaps.iter().cycle().map(|ms| Duration::from_millis(*ms));
    let mut at = Duration::from_millis(2_000);
    let mut keys = Vec::new();
    for key in format!("{PIN}#").chars() {
        keys.push((at, key.to_string()));
        at += gaps.next().unwrap();
    }
    at += Duration::from_millis(1_500);
    for key in "0015551234567#".chars() {
        keys.push((at, key.to_string()));
        at += gaps.next().unwrap();
    }
    keys
}

fn script(keys: &[(Duration, String)]) -> Vec<(Duration, &str)> {
    keys.iter().map(|(at, key)| (*at, key.as_str())).collect()
}

/// The shipped 5 s between keys: the entry deadline then outlives the carrier's answer, the
/// order in which the credit limit used to be lost.
fn shipped_timing() -> ConfigFile {
    ConfigFile::new().ivr("inter_digit_timeout_ms = 5000")
}

fn card(dir: &Path, micros: i64) -> i64 {
    prepaid::tariff(dir, "demo", PER_SECOND_RATES);
    prepaid::card(dir, PIN, micros, 0)
}

#[test]
fn a_human_paced_pin_call_is_cut_at_its_credit_limit() {
    let dir = prepaid::data_dir("human-limit");
    let account = card(&dir, 800_000);
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        shipped_timing()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );

    let keys = human_keys();
    let output = call(
        &switch,
        &dir,
        "anonymous",
        &script(&keys),
        Duration::from_secs(40),
    );
    assert_sipp_ok(
        &output,
        &switch,
        "the switch hangs up the caller at the limit",
    );
    let carrier_run = carrier.finish(Duration::from_secs(5));
    assert!(
        carrier_run.success(),
        "carrier got no BYE: {}",
        carrier_run.describe()
    );

    let cdr = only_attempt_cdrs(&switch, &dir).remove(0);
    let talk_ms = cdr.end_ms - cdr.answer_ms.expect("the carrier answered");
    assert!(
        (8_000..=8_100).contains(&talk_ms),
        "cut {talk_ms} ms after the answer; the limit is 8,000 ms"
    );
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("credit_exhausted"));
    assert_eq!(cdr.billed_seconds, 8);
    assert_eq!(cdr.total_micros, 800_000);
    assert_eq!(prepaid::balance(&dir, account), 0);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
}

#[test]
fn a_carrier_that_rings_forever_is_cancelled_at_the_no_answer_timeout() {
    let dir = prepaid::data_dir("rings-forever");
    let account = card(&dir, 5_000_000);
    let carrier = BackgroundSipp::uas(60, &scenario("carrier_rings_forever.xml"), &["-m", "1"]);
    let switch = start(
        &dir,
        shipped_timing()
            .ivr("no_answer_timeout_ms = 4000")
            .carrier("ringing", &carrier.address())
            .routes(&[("", &["ringing"])]),
    );

    let keys = human_keys();
    let output = call_and_hang_up(&switch, &dir, &script(&keys), Duration::from_secs(8));
    assert_sipp_ok(&output, &switch, "the caller stays until it hangs up");
    let carrier_run = carrier.finish(Duration::from_secs(5));
    assert!(
        carrier_run.success(),
        "carrier got no CANCEL: {}",
        carrier_run.describe()
    );

    let cdr = only_attempt_cdrs(&switch, &dir).remove(0);
    let rang_ms = cdr.end_ms - cdr.start_ms;
    assert!(
        (4_000..=4_300).contains(&rang_ms),
        "given up {rang_ms} ms after the INVITE; the no-answer timeout is 4,000 ms"
    );
    assert_eq!(cdr.answer_ms, None);
    assert_eq!(cdr.total_micros, 0);
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("no_answer"));
    assert_eq!(prepaid::balance(&dir, account), 5_000_000);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
}

#[test]
fn a_baresip_caller_keying_at_a_human_pace_is_cut_at_its_credit_limit() {
    let dir = prepaid::data_dir("baresip-limit");
    let account = card(&dir, 800_000);
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        shipped_timing()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );

    let phone = Baresip::start(&dir.join("baresip"));
    phone.dial(&format!("sip:100@{}", switch.sip));
    assert!(
        phone.wait_for("Call established", Duration::from_secs(10)),
        "the switch answers the softphone:\n{}",
        phone.log_text()
    );
    phone.keys(Instant::now(), &human_keys());
    assert!(
        phone.wait_for("terminated", Duration::from_secs(30)),
        "the switch hangs up the softphone at the limit:\n{}\nswitch:\n{}",
        phone.log_text(),
        tail(&switch.log_text(), 40)
    );
    let carrier_run = carrier.finish(Duration::from_secs(5));
    assert!(
        carrier_run.success(),
        "carrier got no BYE: {}",
        carrier_run.describe()
    );

    let cdr = only_attempt_cdrs(&switch, &dir).remove(0);
    let talk_ms = cdr.end_ms - cdr.answer_ms.expect("the carrier answered");
    assert!(
        (8_000..=8_100).contains(&talk_ms),
        "cut {talk_ms} ms after the answer; the limit is 8,000 ms"
    );
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("credit_exhausted"));
    assert_eq!(cdr.total_micros, 800_000);
    assert_eq!(prepaid::balance(&dir, account), 0);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
}
