//! `/metrics` during a SIPp load step (issue 18): the scrape parses with the Prometheus
//! project's own Python parser (`prometheus_client`, Debian's python3-prometheus-client) and
//! its counters match what SIPp did and what the ledger recorded.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use common::calls::start;
use common::prepaid;
use common::scenario::BackgroundSipp;
use common::{scenario, tail};

const CALLS: usize = 20;

/// GET /metrics with the admin token.
fn scrape(switch: &common::Switch) -> String {
    let token = std::fs::read_to_string(switch.data_dir.join("admin.token")).unwrap();
    let mut stream = std::net::TcpStream::connect(switch.admin).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        token.trim()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// Every sample as `name{label="value",...}` -> value, read by prometheus_client's parser.
fn parse(text: &str) -> HashMap<String, f64> {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
        print(f"{sample.name}{{{labels}}}\t{sample.value}")
"#;
    // Debian's python3, where python3-prometheus-client lives (a pyenv python3 first on the
    // PATH would not have it).
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused the scrape: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(name, value)| (name.to_owned(), value.parse().unwrap()))
        .collect()
}

/// SIPp's caller and carrier done, each checked; then the settles land and the idle switch
/// publishes (within a second).
fn finish_the_load(caller: BackgroundSipp, carrier: BackgroundSipp, switch: &common::Switch) {
    assert!(
        caller.finish(Duration::from_secs(40)).success(),
        "{}",
        tail(&switch.log_text(), 20)
    );
    let carrier_run = carrier.finish(Duration::from_secs(10));
    assert!(carrier_run.success(), "{}", carrier_run.describe());
    std::thread::sleep(Duration::from_millis(1500));
}

fn value(samples: &HashMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing from {samples:?}"))
}

#[test]
fn a_scrape_during_load_parses_and_matches_sipp_and_the_ledger() {
    let dir = prepaid::data_dir("metrics");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let csv = common::calls::pinless_accounts(&dir, CALLS, "88800", "1555000");
    let carrier = BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-m", &CALLS.to_string()],
    );
    let switch = start(&dir, common::calls::forwarding_load_config(&carrier));
    let caller = common::calls::pinless_load(&switch, &dir, &csv, CALLS, CALLS, 1500);
    // A scrape in the middle of the step parses too.
    std::thread::sleep(Duration::from_millis(1500));
    let during = parse(&scrape(&switch));
    assert!(value(&during, "talktime_calls_up{}") >= 1.0, "{during:?}");
    finish_the_load(caller, carrier, &switch);
    let after = parse(&scrape(&switch));
    let calls = CALLS as f64;
    assert_eq!(
        value(
            &after,
            "talktime_calls_started_total{access_number=\"200\"}"
        ),
        calls
    );
    assert_eq!(
        value(
            &after,
            "talktime_carrier_attempts_total{carrier=\"answer\"}"
        ),
        calls
    );
    assert_eq!(
        value(&after, "talktime_carrier_answers_total{carrier=\"answer\"}"),
        calls
    );
    assert_eq!(value(&after, "talktime_answered_calls_total{}"), calls);
    assert_eq!(
        value(
            &after,
            "talktime_calls_ended_total{cause=\"caller_hung_up\"}"
        ),
        calls
    );
    assert_eq!(value(&after, "talktime_calls_up{}"), 0.0);
    assert_eq!(
        value(
            &after,
            "talktime_ledger_request_seconds_count{kind=\"settle\"}"
        ),
        calls
    );
    // Talk time against the CDRs: each answered CDR's answer-to-end, within 50 ms a call.
    let ids = switch.call_ids();
    assert_eq!(ids.len(), CALLS);
    let cdr_seconds: f64 = ids
        .iter()
        .map(|id| {
            let cdr = prepaid::wait_for_cdrs(&dir, &format!("{id}#1"), 1).remove(0);
            (cdr.end_ms - cdr.answer_ms.unwrap()) as f64 / 1000.0
        })
        .sum();
    let talk = value(&after, "talktime_talk_seconds_total{}");
    assert!(
        (talk - cdr_seconds).abs() < 0.05 * calls,
        "{talk} vs {cdr_seconds}"
    );
    // The media threads worked (relaying the calls' RTP), and less than all of the time.
    let busy: f64 = after
        .iter()
        .filter(|(name, _)| name.starts_with("talktime_media_busy_seconds_total"))
        .map(|(_, value)| *value)
        .sum();
    assert!(busy > 0.0, "{after:?}");
    // No number of a caller or a destination in any label.
    let text = scrape(&switch);
    assert!(!text.contains("1555"), "a phone number in the metrics");
}

/// `[sip] core_threads = 2` (issue 19): the same pinless load over two core threads. Each
/// core takes calls (their Call-IDs hash both ways), each call is billed once with its CDR,
/// no hold stays open, `/metrics` adds the cores up, and SIGTERM stops both.
#[test]
fn calls_over_two_core_threads_are_each_billed_once_and_counted_once() {
    let dir = prepaid::data_dir("metrics-two-cores");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let csv = common::calls::pinless_accounts(&dir, CALLS, "88801", "1555001");
    let carrier = BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-m", &CALLS.to_string()],
    );
    let mut switch = common::calls::start_with(
        &dir,
        common::calls::forwarding_load_config(&carrier),
        &["--core-threads", "2"],
    );
    let caller = common::calls::pinless_load(&switch, &dir, &csv, CALLS, CALLS, 1500);
    finish_the_load(caller, carrier, &switch);

    let after = parse(&scrape(&switch));
    let by_core = [
        value(&after, "talktime_core_calls_started_total{core=\"0\"}"),
        value(&after, "talktime_core_calls_started_total{core=\"1\"}"),
    ];
    assert!(by_core.iter().all(|calls| *calls >= 1.0), "{by_core:?}");
    assert_eq!(by_core[0] + by_core[1], CALLS as f64);
    assert_eq!(
        value(
            &after,
            "talktime_calls_started_total{access_number=\"200\"}"
        ),
        CALLS as f64
    );
    assert_eq!(value(&after, "talktime_calls_up{}"), 0.0);

    let ids = switch.call_ids();
    assert_eq!(ids.len(), CALLS);
    let charged: i64 = ids
        .iter()
        .map(|id| {
            let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{id}#1"), 1);
            assert_eq!(cdrs.len(), 1, "one CDR for {id}");
            assert!(cdrs[0].answer_ms.is_some() && cdrs[0].total_micros > 0);
            cdrs[0].total_micros
        })
        .sum();
    let summary = prepaid::runtime()
        .block_on(prepaid::open(&dir).summary())
        .unwrap();
    assert_eq!(summary.cdrs, CALLS as i64);
    // Every charge taken from its account once: the balances fell by the CDRs' totals.
    assert_eq!(summary.balance_micros, CALLS as i64 * 5_000_000 - charged);
    let open = Command::new("sqlite3")
        .arg(dir.join("talktime.sqlite3"))
        .arg("SELECT COUNT(*) FROM reservations WHERE state = 'open'")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&open.stdout).trim(), "0");

    common::calls::signal(&switch, "TERM");
    let status = common::calls::wait_for_exit(&mut switch, Duration::from_secs(10))
        .expect("both cores stop");
    assert!(status.success(), "exit status {status:?}");
    let log = switch.log_text();
    for core in ["core=0", "core=1"] {
        assert!(
            log.lines()
                .any(|line| line.contains("stopped: every call ended") && line.contains(core)),
            "{core} did not say it stopped:\n{}",
            tail(&log, 20)
        );
    }
}
