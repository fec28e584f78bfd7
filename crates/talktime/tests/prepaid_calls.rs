//! The prepaid call end to end against the real binary: SIPp plays the caller (DTMF as
//! RFC 4733 from a pcap the test writes) and the carriers (SIPp UAS); the ledger is read
//! back for the exact balance and CDRs. SIPp's play_pcap_audio needs root or CAP_NET_RAW.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::calls::{
    answering_carrier, call, call_and_hang_up, call_number, call_with_audio, only_attempt_cdrs,
    only_call_id, start,
};
use common::pcap::dtmf_pcap;
use common::prepaid::{self, ConfigFile};
use common::scenario::{BackgroundSipp, render};
use common::{Switch, free_port, scenario, tail};

/// 6.00 a minute in one-second blocks: 0.10 a second, so 0.50 buys exactly 5 s.
const PER_SECOND_RATES: &str = "1,USA,6.00,1.00,1,1,0\n44,UK,6.00,1.00,1,1,0\n";

fn assert_caller_ok(output: &std::process::Output, switch: &Switch, what: &str) {
    common::assert_sipp_ok(output, switch, what);
}

/// The engine's end-of-call log line for the only call.
fn call_end_cause(switch: &Switch) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = switch.log_text();
        if let Some(line) = log.lines().find(|line| line.contains("call ended")) {
            let start = line.find("cause=").map_or(0, |i| i + "cause=".len());
            return line[start..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no call ended:\n{}",
            tail(&log, 30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A card on the per-second tariff (0.30) whose caller ID 15551230000 is registered and
/// forwarded to +15551234567 (access number 200 connects it without any digits).
fn forwarding_card(dir: &Path, pin: &str) -> i64 {
    let account = prepaid::card(dir, pin, 300_000, 0);
    prepaid::register_caller_id(dir, account, "15551230000");
    prepaid::forward_to(dir, account, "0015551234567");
    account
}

/// The forwarded caller of [`forwarding_card`] through access number 200.
fn forwarded_call(switch: &Switch, dir: &Path) -> std::process::Output {
    call_number(
        switch,
        dir,
        "200",
        "15551230000",
        &[],
        Duration::from_secs(30),
    )
}

const PIN: &str = "1234567890";
const PIN_AT: Duration = Duration::from_millis(2000);
const DESTINATION_AT: Duration = Duration::from_millis(5600);
const US_NUMBER: &str = "0015551234567#";

#[test]
fn pin_call_is_cut_at_the_credit_limit_and_billed_exactly() {
    let dir = prepaid::data_dir("credit-limit");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, "1234567890", 500_000, 0);
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );

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

    let cdrs = only_attempt_cdrs(&switch, &dir);
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

#[test]
fn registered_caller_id_skips_the_pin() {
    let dir = prepaid::data_dir("pinless");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, "5550001111", 300_000, 0);
    prepaid::register_caller_id(&dir, account, "15551230000");
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );

    // No PIN: the destination right after the welcome and the balance.
    let output = call(
        &switch,
        &dir,
        "15551230000",
        &[(Duration::from_millis(2500), US_NUMBER)],
        Duration::from_secs(40),
    );
    assert_caller_ok(&output, &switch, "pinless call cut at its 3 s limit");
    let cdrs = only_attempt_cdrs(&switch, &dir);
    assert_eq!(cdrs[0].destination.expose(), "+15551234567");
    assert_eq!(
        cdrs[0].caller_id.as_ref().map(|c| c.expose().as_str()),
        Some("15551230000")
    );
    assert_eq!(cdrs[0].total_micros, 300_000);
    assert_eq!(prepaid::balance(&dir, account), 0);
    assert!(
        !switch.log_text().contains("PIN looked up"),
        "no PIN was asked"
    );
}

#[test]
fn caller_id_below_the_account_minimum_is_asked_for_the_pin() {
    let dir = prepaid::data_dir("below-minimum");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    // 0.30 is below the 1.00 the account needs for caller-ID recognition (seed 002).
    let account = prepaid::card(&dir, PIN, 300_000, 1_000_000);
    prepaid::register_caller_id(&dir, account, "15551230000");
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );

    let output = call(
        &switch,
        &dir,
        "15551230000",
        &[(PIN_AT, "1234567890#"), (DESTINATION_AT, US_NUMBER)],
        Duration::from_secs(40),
    );
    assert_caller_ok(&output, &switch, "PIN then destination");
    let cdrs = only_attempt_cdrs(&switch, &dir);
    // Had the caller ID been accepted, the PIN digits would have been dialled.
    assert_eq!(cdrs[0].destination.expose(), "+15551234567");
    assert!(switch.log_text().contains("PIN looked up"));
    assert_eq!(prepaid::balance(&dir, account), 0);
}

#[test]
fn three_wrong_pins_end_the_call_without_charge() {
    let dir = prepaid::data_dir("wrong-pin");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 300_000, 0);
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", "127.0.0.1:9")
            .routes(&[("", &["answer"])]),
    );

    let output = call(
        &switch,
        &dir,
        "anonymous",
        &[
            (PIN_AT, "1111#"),
            (Duration::from_millis(6000), "2222#"),
            (Duration::from_millis(10000), "3333#"),
        ],
        Duration::from_secs(40),
    );
    assert_caller_ok(
        &output,
        &switch,
        "goodbye and BYE after the third wrong PIN",
    );
    assert_eq!(call_end_cause(&switch), "authentication_failed");
    assert_eq!(prepaid::balance(&dir, account), 300_000);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
    let call_id = only_call_id(&switch);
    assert!(prepaid::cdrs(&dir, &format!("{call_id}#1")).is_empty());
}

#[test]
fn caller_hanging_up_during_the_ivr_pays_nothing() {
    let dir = prepaid::data_dir("hang-up-mid-ivr");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 300_000, 0);
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", "127.0.0.1:9")
            .routes(&[("", &["answer"])]),
    );

    // The PIN, then the caller leaves while asked for the destination.
    let output = call_and_hang_up(
        &switch,
        &dir,
        &[(PIN_AT, "1234567890#")],
        Duration::from_secs(1),
    );
    assert_caller_ok(&output, &switch, "caller's BYE answered");
    assert_eq!(call_end_cause(&switch), "caller_hung_up");
    assert_eq!(prepaid::balance(&dir, account), 300_000);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
}

#[test]
fn busy_carrier_returns_to_destination_entry_and_the_second_call_connects() {
    let dir = prepaid::data_dir("busy-then-second");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 300_000, 0);
    let busy = BackgroundSipp::uas(90, &scenario("carrier_busy.xml"), &["-m", "1"]);
    let answer = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("busy", &busy.address())
            .carrier("answer", &answer.address())
            .routes(&[("44", &["busy"]), ("1", &["answer"])]),
    );

    let output = call(
        &switch,
        &dir,
        "anonymous",
        &[
            (PIN_AT, "1234567890#"),
            (DESTINATION_AT, "00447700900123#"),
            (Duration::from_millis(12500), US_NUMBER),
        ],
        Duration::from_secs(45),
    );
    assert_caller_ok(
        &output,
        &switch,
        "second destination connected and cut at the limit",
    );
    let call_id = only_call_id(&switch);
    let first = prepaid::wait_for_cdrs(&dir, &format!("{call_id}#1"), 1);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].sip_code, Some(486));
    assert_eq!(first[0].disconnect_cause.as_deref(), Some("busy"));
    assert_eq!(first[0].total_micros, 0);
    let second = prepaid::wait_for_cdrs(&dir, &format!("{call_id}#2"), 1);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].carrier.as_deref(), Some("answer"));
    assert_eq!(second[0].total_micros, 300_000);
    assert_eq!(
        prepaid::balance(&dir, account),
        0,
        "one balance across both attempts"
    );
}

#[test]
fn carrier_503_fails_over_to_the_next_carrier_at_once() {
    let dir = prepaid::data_dir("failover-503");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 300_000, 0);
    let unavailable = BackgroundSipp::uas(90, &scenario("carrier_unavailable.xml"), &["-m", "1"]);
    let answer = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("first", &unavailable.address())
            .carrier("second", &answer.address())
            .routes(&[("", &["first", "second"])]),
    );

    let output = call(
        &switch,
        &dir,
        "anonymous",
        &[(PIN_AT, "1234567890#"), (DESTINATION_AT, US_NUMBER)],
        Duration::from_secs(40),
    );
    assert_caller_ok(&output, &switch, "call completed on the second carrier");
    let call_id = only_call_id(&switch);
    let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{call_id}#1"), 2);
    assert_eq!(cdrs.len(), 2, "one row per carrier tried: {cdrs:?}");
    assert_eq!(cdrs[0].carrier.as_deref(), Some("first"));
    assert_eq!(cdrs[0].sip_code, Some(503));
    assert_eq!(cdrs[0].total_micros, 0);
    assert_eq!(cdrs[1].carrier.as_deref(), Some("second"));
    assert!(cdrs[1].answer_ms.is_some());
    assert_eq!(cdrs[1].total_micros, 300_000);
    let gap = cdrs[1].start_ms - cdrs[0].end_ms;
    assert!(
        (0..500).contains(&gap),
        "second INVITE {gap} ms after the 503"
    );
    assert_eq!(prepaid::balance(&dir, account), 0);
}

#[test]
fn silent_carrier_fails_over_after_the_invite_timeout() {
    let dir = prepaid::data_dir("failover-silent");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 300_000, 0);
    // A socket that reads INVITEs and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let answer = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier_with_timeout("silent", &silent.local_addr().unwrap().to_string(), 2000)
            .carrier("second", &answer.address())
            .routes(&[("", &["silent", "second"])]),
    );

    let output = call(
        &switch,
        &dir,
        "anonymous",
        &[(PIN_AT, "1234567890#"), (DESTINATION_AT, US_NUMBER)],
        Duration::from_secs(40),
    );
    assert_caller_ok(&output, &switch, "call completed on the second carrier");
    let call_id = only_call_id(&switch);
    let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{call_id}#1"), 2);
    assert_eq!(cdrs.len(), 2, "{cdrs:?}");
    assert_eq!(cdrs[0].carrier.as_deref(), Some("silent"));
    // No response at all is recorded as 408 Request Timeout.
    assert_eq!(cdrs[0].sip_code, Some(408));
    let waited = cdrs[0].end_ms - cdrs[0].start_ms;
    assert!(
        (1_900..3_000).contains(&waited),
        "gave up on the silent carrier after {waited} ms (invite_timeout_ms = 2000)"
    );
    assert_eq!(cdrs[1].total_micros, 300_000);
    assert_eq!(prepaid::balance(&dir, account), 0);
}

#[test]
fn did_forwarding_connects_a_registered_caller_to_its_preset_destination() {
    let dir = prepaid::data_dir("did-forwarding");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = forwarding_card(&dir, "7770001111");
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );

    // Access number 200 forwards: no digits at all.
    let output = forwarded_call(&switch, &dir);
    assert_caller_ok(&output, &switch, "forwarded call cut at its 3 s limit");
    let cdrs = only_attempt_cdrs(&switch, &dir);
    assert_eq!(cdrs[0].destination.expose(), "+15551234567");
    assert_eq!(cdrs[0].access_number.as_deref(), Some("200"));
    assert_eq!(cdrs[0].total_micros, 300_000);
    assert_eq!(prepaid::balance(&dir, account), 0);
    assert!(!switch.log_text().contains("PIN looked up"));
}

/// A DID forwarding number rings its caller with early media (183) and answers only when the
/// carrier does: a busy destination is "busy, goodbye" in early media and a 486 to the
/// caller, never a 200 its own carrier would bill as a connected call.
#[test]
fn a_forwarded_call_the_destination_refuses_is_never_answered() {
    let dir = prepaid::data_dir("forwarded-busy");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = forwarding_card(&dir, "7770002222");
    let busy = BackgroundSipp::uas(90, &scenario("carrier_busy.xml"), &["-m", "1"]);
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("busy", &busy.address())
            .routes(&[("", &["busy"])]),
    );
    let output = forwarded_caller(
        &switch,
        "caller_forwarded_unanswered.xml",
        &[("STATUS", "486")],
    );
    assert_caller_ok(&output, &switch, "183, then 486 and no 200");
    let cdrs = only_attempt_cdrs(&switch, &dir);
    assert_eq!(
        cdrs[0].disconnect_cause.as_deref(),
        Some("busy"),
        "{cdrs:?}"
    );
    assert_eq!(cdrs[0].answer_ms, None);
    assert_eq!(cdrs[0].total_micros, 0);
    assert_eq!(prepaid::balance(&dir, account), 300_000);
    assert_eq!(
        played_prompts(&switch).last().map(String::as_str),
        Some("[\"busy\", \"goodbye\"]"),
        "the caller heard why, in early media"
    );
    drop(busy);
}

/// A forwarding number's caller who gives up while the destination rings: its CANCEL ends
/// the call unanswered (487), the carrier's INVITE is cancelled, the hold is released and
/// nothing is charged.
#[test]
fn a_forwarded_caller_who_gives_up_while_it_rings_is_cancelled_through() {
    let dir = prepaid::data_dir("forwarded-cancel");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = forwarding_card(&dir, "7770003333");
    let ringing = BackgroundSipp::uas(60, &scenario("carrier_rings_forever.xml"), &["-m", "1"]);
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("ringing", &ringing.address())
            .routes(&[("", &["ringing"])]),
    );
    let output = forwarded_caller(
        &switch,
        "caller_forwarded_cancels.xml",
        // After the balance and the talk time (about 5 s of early media), 3 s of ringing.
        &[("RING_MS", "8000")],
    );
    assert_caller_ok(&output, &switch, "183, CANCEL, 487 and no 200");
    let carrier = ringing.finish(Duration::from_secs(20));
    assert!(
        carrier.success(),
        "the carrier was cancelled: {}",
        carrier.describe()
    );
    let cdrs = only_attempt_cdrs(&switch, &dir);
    assert_eq!(
        cdrs[0].disconnect_cause.as_deref(),
        Some("caller_hung_up"),
        "{cdrs:?}"
    );
    assert_eq!(cdrs[0].answer_ms, None);
    assert_eq!(cdrs[0].total_micros, 0);
    assert_eq!(prepaid::balance(&dir, account), 300_000);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
}

/// The caller of [`forwarding_card`] to access number 200 with the scenario `name` (its
/// `CALLER` filled in, and `values`).
fn forwarded_caller(switch: &Switch, name: &str, values: &[(&str, &str)]) -> std::process::Output {
    let mut values = values.to_vec();
    values.push(("CALLER", "15551230000"));
    common::sipp_one_call(40, &render(name, &values), "200", switch)
}

/// RFC 3261 §18.1.1: a request larger than `udp_mtu` goes over TCP even to a UDP carrier.
/// The SIPp carrier listens on TCP only, so a UDP INVITE would never be answered. With
/// `udp_mtu = 300` the BYE to the caller is moved to TCP too, but the SIPp caller has no TCP
/// listener: the refused connect sends the BYE again over UDP.
#[test]
fn oversized_invite_to_a_udp_carrier_goes_over_tcp() {
    let dir = prepaid::data_dir("mtu-tcp");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = forwarding_card(&dir, "7770002222");
    let carrier = BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-t", "t1", "-rtp_echo", "-m", "1"],
    );
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw("[sip]\nudp_mtu = 300\n")
            .carrier("tcp-only", &carrier.address())
            .routes(&[("", &["tcp-only"])]),
    );

    let output = forwarded_call(&switch, &dir);
    assert_caller_ok(&output, &switch, "call carried by the TCP-only carrier");
    let carrier_run = carrier.finish(Duration::from_secs(5));
    assert!(carrier_run.success(), "carrier: {}", carrier_run.describe());
    let cdrs = only_attempt_cdrs(&switch, &dir);
    assert_eq!(cdrs[0].total_micros, 300_000);
    let log = switch.log_text();
    assert!(log.contains("transport=TCP"), "INVITE went over TCP");
    assert!(
        log.contains("TCP refused; request sent again over UDP"),
        "the caller's BYE fell back to UDP"
    );
    assert_eq!(prepaid::balance(&dir, account), 0, "charged exactly once");
}

/// One call at a time per card: a second caller with the same PIN while the first is
/// connected hears "card in use" and is hung up; the first call is billed alone.
#[test]
fn a_card_already_in_a_call_is_refused() {
    let dir = prepaid::data_dir("card-in-use");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 800_000, 0);
    let carrier = answering_carrier();
    // The operator chose to tell callers why (by default a card in use sounds like a wrong
    // PIN: a_card_expired_after_first_use_sounds_like_a_wrong_pin in live_billing.rs).
    let switch = start(
        &dir,
        ConfigFile::new()
            .ivr("reveal_card_state = true")
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );

    let script = [(PIN_AT, "1234567890#"), (DESTINATION_AT, US_NUMBER)];
    let pcap = dir.join("first.pcap");
    dtmf_pcap(&pcap, &script, Duration::from_millis(9500), 101).unwrap();
    let first_scenario = render(
        "caller_ivr.xml",
        &[
            ("CALLER", "anonymous"),
            ("PCAP", pcap.to_str().unwrap()),
            ("WAIT_MS", "40000"),
        ],
    );
    let first = BackgroundSipp::start(
        60,
        &[
            "-sf",
            first_scenario.to_str().unwrap(),
            "-s",
            "100",
            &switch.sip.to_string(),
            "-m",
            "1",
        ],
    );
    // The first caller is connected about 12 s in and talks for 8 s (0.80 at 0.10/s).
    std::thread::sleep(Duration::from_secs(11));
    let second = call(
        &switch,
        &dir,
        "anonymous",
        &[(PIN_AT, "1234567890#")],
        Duration::from_secs(20),
    );
    assert_caller_ok(&second, &switch, "the second caller is told and hung up");
    let first_run = first.finish(Duration::from_secs(30));
    assert!(
        first_run.success(),
        "first caller: {}",
        first_run.describe()
    );
    let log = switch.log_text();
    assert!(log.contains("cause=\"card_in_use\""), "{}", tail(&log, 30));
    let ids = switch.call_ids();
    assert_eq!(ids.len(), 2);
    let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[0]), 1);
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0].total_micros, 800_000);
    assert_eq!(prepaid::balance(&dir, account), 0);
}

/// Dead media: the caller's RTP stops two seconds after the carrier answers; after
/// `inactivity_timeout_ms` the switch ends the call and bills up to the last packet.
#[test]
fn a_call_whose_media_stops_is_ended_and_billed_until_the_switch_ends_it() {
    let dir = prepaid::data_dir("dead-media");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 5_000_000, 0);
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw("[rtp]\ninactivity_timeout_ms = 2000\n")
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );

    let output = call_with_audio(
        &switch,
        &dir,
        "100",
        "anonymous",
        &[(PIN_AT, "1234567890#"), (DESTINATION_AT, US_NUMBER)],
        Duration::from_secs(16),
        Duration::from_secs(40),
    );
    assert_caller_ok(&output, &switch, "the switch hangs up a dead call");
    assert_eq!(call_end_cause(&switch), "media_timeout");
    let cdrs = only_attempt_cdrs(&switch, &dir);
    let cdr = &cdrs[0];
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("media_timeout"));
    let answered = cdr.answer_ms.expect("answered");
    assert!(
        cdr.end_ms - answered >= 2_000,
        "the call lasted until the silence was noticed"
    );
    // Billed from the answer to the switch's BYE (the carrier bills us until then), in
    // whole seconds rounded up (one second either way: the CDR's wall-clock times and the
    // engine's monotonic clock may differ by a millisecond).
    let talked_ms = cdr.end_ms - answered;
    let seconds = (talked_ms + 999) / 1000;
    assert!(
        (seconds - 1..=seconds + 1).contains(&cdr.billed_seconds),
        "billed {} s of a {talked_ms} ms call",
        cdr.billed_seconds
    );
    assert_eq!(cdr.total_micros, cdr.billed_seconds * 100_000);
    assert_eq!(
        prepaid::balance(&dir, account),
        5_000_000 - cdr.total_micros
    );
}

/// A carrier that challenges the INVITE (401) gets it again with digest credentials from the
/// carrier's configuration, and the call connects (SIPp verifies the response).
#[test]
fn a_carrier_digest_challenge_is_answered_with_its_credentials() {
    let dir = prepaid::data_dir("carrier-auth");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = forwarding_card(&dir, "7770003333");
    let carrier = BackgroundSipp::uas(90, &scenario("carrier_auth.xml"), &["-rtp_echo", "-m", "1"]);
    let (host, port) = carrier
        .address()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw(&format!(
                "[[carriers]]\nname = \"secure\"\nhost = \"{host}\"\nport = {port}\n\
             username = \"talktime\"\npassword = \"trunk-secret\"\noptions_interval_ms = 0\n"
            ))
            .routes(&[("", &["secure"])]),
    );

    let output = forwarded_call(&switch, &dir);
    assert_caller_ok(&output, &switch, "call connected after the challenge");
    let carrier_run = carrier.finish(Duration::from_secs(5));
    assert!(carrier_run.success(), "carrier: {}", carrier_run.describe());
    let cdrs = only_attempt_cdrs(&switch, &dir);
    assert!(cdrs[0].answer_ms.is_some(), "{cdrs:?}");
    assert_eq!(cdrs[0].total_micros, 300_000);
    let log = switch.log_text();
    assert!(
        log.contains("carrier challenged"),
        "the first INVITE was challenged"
    );
    assert!(
        !log.contains("trunk-secret"),
        "the password stays out of logs"
    );
    assert_eq!(prepaid::balance(&dir, account), 0, "charged exactly once");
}

/// Seed 003: a tariff names its dial plan ("premium"), which beats the access number's.
#[test]
fn the_tariff_chooses_its_dial_plan() {
    let dir = prepaid::data_dir("tariff-plan");
    let settings = talktime_billing::TariffSettings {
        dial_plan: Some("premium".into()),
        ..talktime_billing::TariffSettings::default()
    };
    prepaid::tariff_with(&dir, "demo", PER_SECOND_RATES, &settings);
    let account = forwarding_card(&dir, "7770004444");
    let premium = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("regular-carrier", "127.0.0.1:9")
            .carrier("premium-carrier", &premium.address())
            .routes(&[("", &["regular-carrier"])])
            .raw(
                "[[dial_plans]]\nname = \"premium\"\n\n[[dial_plans.routes]]\nprefix = \"\"\n\
             mode = \"priority\"\ncarriers = [{ name = \"premium-carrier\" }]\n",
            ),
    );

    let output = forwarded_call(&switch, &dir);
    assert_caller_ok(&output, &switch, "call routed by the tariff's plan");
    let cdrs = only_attempt_cdrs(&switch, &dir);
    assert_eq!(cdrs[0].carrier.as_deref(), Some("premium-carrier"));
    assert_eq!(cdrs[0].total_micros, 300_000);
    assert_eq!(prepaid::balance(&dir, account), 0, "charged exactly once");
}

/// A carrier that requires registration gets a REGISTER with digest credentials at start-up
/// and a refresh at half the granted time (SIPp registrar grants 4 s and checks both).
#[test]
fn a_carrier_requiring_registration_is_registered_and_refreshed() {
    let dir = prepaid::data_dir("register");
    let registrar = BackgroundSipp::uas(30, &scenario("carrier_registrar.xml"), &["-m", "1"]);
    let (host, port) = registrar
        .address()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw(&format!(
                "[[carriers]]\nname = \"registered\"\nhost = \"{host}\"\nport = {port}\n\
             username = \"talktime\"\npassword = \"trunk-secret\"\nregister_expires_s = 4\n\
             options_interval_ms = 0\n"
            ))
            .routes(&[("", &["registered"])]),
    );
    let run = registrar.finish(Duration::from_secs(10));
    assert!(
        run.success(),
        "registrar: {}\n{}",
        run.describe(),
        tail(&switch.log_text(), 20)
    );
    let log = switch.log_text();
    assert_eq!(
        log.matches("registered with the carrier").count(),
        2,
        "{}",
        tail(&log, 20)
    );
}

/// National dialling: an access number in the UK (country 44, national prefix 0) turns
/// `02071234567` into `442071234567` before rating and routing.
#[test]
fn a_national_number_is_rated_and_routed_in_the_access_numbers_country() {
    let dir = prepaid::data_dir("national");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 300_000, 0);
    let carrier = answering_carrier();
    let switch = start(&dir, ConfigFile::new()
        .raw("[[access_numbers]]\nnumber = \"300\"\ncountry_code = \"44\"\nnational_prefix = \"0\"\n")
        .carrier("uk", &carrier.address())
        .routes(&[("44", &["uk"])])
        );

    let output = call_number(
        &switch,
        &dir,
        "300",
        "anonymous",
        &[(PIN_AT, "1234567890#"), (DESTINATION_AT, "02071234567#")],
        Duration::from_secs(40),
    );
    assert_caller_ok(
        &output,
        &switch,
        "national call connected and cut at the limit",
    );
    let cdrs = only_attempt_cdrs(&switch, &dir);
    assert_eq!(cdrs[0].carrier.as_deref(), Some("uk"));
    assert_eq!(cdrs[0].total_micros, 300_000, "rated at the UK rate");
    assert_eq!(prepaid::balance(&dir, account), 0);
}

/// Early media: the carrier sends 183 with SDP and answers 3 s later. The caller is bridged
/// for the early media, but talk time (and the credit limit) starts at the 200.
#[test]
fn early_media_is_not_billed_and_the_limit_starts_at_answer() {
    let dir = prepaid::data_dir("early-media");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = forwarding_card(&dir, "7770005555");
    let carrier = BackgroundSipp::uas(
        90,
        &scenario("carrier_early_media.xml"),
        &["-rtp_echo", "-m", "1", "-d", "3000"],
    );
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("early", &carrier.address())
            .routes(&[("", &["early"])]),
    );

    let output = forwarded_call(&switch, &dir);
    assert_caller_ok(
        &output,
        &switch,
        "call answered after early media and cut at the limit",
    );
    let carrier_run = carrier.finish(Duration::from_secs(5));
    assert!(carrier_run.success(), "carrier: {}", carrier_run.describe());
    let cdrs = only_attempt_cdrs(&switch, &dir);
    let cdr = &cdrs[0];
    let answered = cdr.answer_ms.expect("answered");
    assert!(
        answered - cdr.start_ms >= 2_900,
        "answer came after 3 s of early media"
    );
    let talk = cdr.end_ms - answered;
    assert!(
        (2_000..=4_000).contains(&talk),
        "cut {talk} ms after the answer (limit 3 s)"
    );
    assert_eq!(cdr.billed_seconds, 3);
    assert_eq!(cdr.total_micros, 300_000);
    assert_eq!(prepaid::balance(&dir, account), 0, "charged exactly once");
}

/// The same prepaid call with the ledger on PostgreSQL (`--database-url`), in a schema of its
/// own: credit limit, exact charge and CDR as on SQLite.
#[test]
fn the_switch_runs_its_ledger_on_postgresql() {
    let admin = std::env::var("TALKTIME_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("tt_switch_{}_{}", std::process::id(), free_port());
    let created = std::process::Command::new("psql")
        .args([
            admin.as_str(),
            "-q",
            "-c",
            &format!("CREATE SCHEMA {schema}"),
        ])
        .output()
        .expect("psql (postgresql-client) is needed for the PostgreSQL tests");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let separator = if admin.contains('?') { '&' } else { '?' };
    let url = format!("{admin}{separator}options[search_path]={schema}");

    let dir = prepaid::data_dir("postgres");
    let runtime = prepaid::runtime();
    let store = prepaid::open_url(&dir, &url);
    let settings = talktime_billing::TariffSettings::default();
    let account = runtime.block_on(async {
        let tariff = store
            .create_tariff("demo", "USD", &settings.to_json(), 0)
            .await
            .unwrap();
        let csv = format!(
            "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n{PER_SECOND_RATES}"
        );
        store
            .import_tariff_csv(tariff.id, csv.as_bytes(), talktime_store::ImportOptions::default())
            .await
            .unwrap();
        let card = talktime_store::NewCard::new(
            talktime_pii::Pii::new("7770006666".to_owned()),
            "USD",
            300_000,
        );
        let card = store.create_card(&card, 0).await.unwrap();
        store
            .register_caller_id(card.account_id, &talktime_pii::Pii::new("15551230000".into()), 0)
            .await
            .unwrap();
        store
            .set_forward_destination(
                card.account_id,
                Some(&talktime_pii::Pii::new("0015551234567".into())),
            )
            .await
            .unwrap();
        card.account_id
    });

    let carrier = answering_carrier();
    let config = ConfigFile::new()
        .carrier("answer", &carrier.address())
        .routes(&[("", &["answer"])])
        .write(&dir);
    let switch = Switch::start_in(
        &dir,
        &["--config", config.to_str().unwrap(), "--database-url", &url],
    );
    let output = forwarded_call(&switch, &dir);
    assert_caller_ok(
        &output,
        &switch,
        "call on the PostgreSQL ledger cut at its limit",
    );
    let reservation = format!("{}#1", only_call_id(&switch));
    let deadline = Instant::now() + Duration::from_secs(5);
    let cdrs = loop {
        let cdrs = runtime.block_on(store.cdrs_for_call(&reservation)).unwrap();
        if !cdrs.is_empty() || Instant::now() > deadline {
            break cdrs;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0].total_micros, 300_000);
    assert_eq!(
        cdrs[0].disconnect_cause.as_deref(),
        Some("credit_exhausted")
    );
    assert_eq!(runtime.block_on(store.balance(account)).unwrap(), 0);
    drop(switch);
    let _ = std::process::Command::new("psql")
        .args([
            admin.as_str(),
            "-q",
            "-c",
            &format!("DROP SCHEMA {schema} CASCADE"),
        ])
        .output();
}

/// The ledger on PostgreSQL over TLS: with `sslmode=require` every connection the switch
/// opens (sqlx's pool and the pipelined call connections) is encrypted, and a call is billed
/// through them; with `verify-ca` and a root the server's certificate does not chain to, the
/// switch does not start.
#[test]
fn the_postgresql_ledger_is_reached_over_tls_on_every_connection() {
    let ssl = psql_value("SHOW ssl");
    assert_eq!(
        ssl, "on",
        "the test's PostgreSQL must offer TLS (Debian's default)"
    );
    let application = format!("tt_tls_{}_{}", std::process::id(), free_port());
    let url = format!(
        "{}&sslmode=require&application_name={application}",
        prepaid::postgres_schema("tls")
    );
    let dir = prepaid::data_dir("postgres-tls");
    prepaid::use_database(&dir, &url);
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 300_000, 0);
    let carrier = answering_carrier();
    let config = ConfigFile::new()
        .raw(&format!("[database]\nurl = \"{url}\"\n"))
        .carrier("answer", &carrier.address())
        .routes(&[("", &["answer"])]);
    let switch = start(&dir, config);
    let output = call(
        &switch,
        &dir,
        "anonymous",
        &[(PIN_AT, &format!("{PIN}#")), (DESTINATION_AT, US_NUMBER)],
        Duration::from_secs(30),
    );
    assert_caller_ok(&output, &switch, "the call is cut at its 3 s limit");
    let cdr = only_attempt_cdrs(&switch, &dir).remove(0);
    assert_eq!(cdr.total_micros, 300_000);
    assert_eq!(prepaid::balance(&dir, account), 0);
    let log = switch.log_text();
    assert!(
        !log.contains("go through sqlx's pool"),
        "the call connections opened over TLS:\n{}",
        tail(&log, 30)
    );
    let connections = psql_value(&format!(
        "SELECT count(*) || ' ' || count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = '{application}'"
    ));
    let (all, encrypted) = connections.split_once(' ').unwrap();
    let all: u32 = all.parse().unwrap();
    assert!(
        all >= 2,
        "sqlx's pool and the call connections: {connections}"
    );
    assert_eq!(encrypted, all.to_string(), "every connection encrypted");
    drop(switch);

    // A root the server's certificate does not chain to: the switch stops at start, saying why.
    let root = dir.join("other-root.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=not the database's root", "-keyout"])
        .arg(dir.join("other-root.key"))
        .arg("-out")
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let verifying = url.replace(
        "sslmode=require",
        &format!("sslmode=verify-ca&sslrootcert={}", root.display()),
    );
    let mut refused = std::process::Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(["serve", "--data-dir"])
        .arg(&dir)
        .args(["--database-url", &verifying, "--sip-udp", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = refused.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = refused.kill();
            panic!("the switch started with an untrusted database certificate");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut refused.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    drop(carrier);
}

/// One value from the test's PostgreSQL (`psql -At`).
fn psql_value(sql: &str) -> String {
    let admin = std::env::var("TALKTIME_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let output = std::process::Command::new("psql")
        .args([admin.as_str(), "-At", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Every prompt list the switch played, in order (its debug log).
fn played_prompts(switch: &Switch) -> Vec<String> {
    switch
        .log_text()
        .lines()
        .filter(|line| line.contains("playing call="))
        .filter_map(|line| line.split("prompts=").nth(1).map(str::to_owned))
        .collect()
}

/// A balance line (issue 21): access number 300 asks the PIN, says the balance and the last
/// call's cost and length (or that there was none), says goodbye and hangs up; nothing is
/// reserved or charged.
#[test]
fn a_balance_line_says_the_balance_and_the_last_call_then_hangs_up() {
    let dir = prepaid::data_dir("balance-line");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 5_000_000, 0);
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw("[[access_numbers]]\nnumber = \"300\"\nbalance_only = true\n")
            .carrier("us", &carrier.address())
            .routes(&[("", &["us"])]),
    );
    let output = call_number(
        &switch,
        &dir,
        "300",
        "anonymous",
        &[(PIN_AT, "1234567890#")],
        Duration::from_secs(30),
    );
    assert_caller_ok(
        &output,
        &switch,
        "the balance line hangs up after its words",
    );
    let first = played_prompts(&switch).last().cloned().unwrap_or_default();
    assert!(
        first.starts_with("[\"you_have\", \"num_5\", \"dollars\"")
            && first.contains("\"no_last_call\"")
            && first.ends_with("\"goodbye\"]"),
        "{first}"
    );
    assert_eq!(
        prepaid::balance(&dir, account),
        5_000_000,
        "the line is free"
    );

    // A call of a few seconds through the normal access number...
    let output = call_and_hang_up(
        &switch,
        &dir,
        &[(PIN_AT, "1234567890#"), (DESTINATION_AT, "0015551234567#")],
        Duration::from_secs(3),
    );
    assert_caller_ok(
        &output,
        &switch,
        "a short call before the second balance check",
    );
    let ids = switch.call_ids();
    let cdr = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[1]), 1).remove(0);
    assert!(cdr.total_micros > 0 && cdr.answer_ms.is_some(), "{cdr:?}");

    // ...and the balance line tells its cost and length.
    let output = call_number(
        &switch,
        &dir,
        "300",
        "anonymous",
        &[(PIN_AT, "1234567890#")],
        Duration::from_secs(30),
    );
    assert_caller_ok(&output, &switch, "the second balance check");
    let second = played_prompts(&switch).last().cloned().unwrap_or_default();
    assert!(second.contains("\"last_call_cost\""), "{second}");
    let lasted = second
        .split("\"last_call_lasted\"")
        .nth(1)
        .unwrap_or_default();
    assert!(
        lasted.contains("\"num_") && lasted.contains("second"),
        "{second}"
    );
    assert_eq!(
        prepaid::balance(&dir, account),
        5_000_000 - cdr.total_micros
    );
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
}
