//! Logs (issue 18): `[log] format = "json"` writes one JSON object a line with the call's key
//! on the lines about a call, and no log line, at any level down to trace, carries the PIN the
//! caller keyed or the number it dialled. The call's media also shows in `/metrics`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::calls::call_and_hang_up;
use common::prepaid::{self, ConfigFile};
use common::{Switch, assert_sipp_ok, tail};

const PIN: &str = "7391046285";

#[test]
fn json_logs_at_trace_level_carry_the_call_but_never_the_pin_or_the_number() {
    let dir = prepaid::data_dir("json-logs");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    prepaid::card(&dir, PIN, 1_000_000, 0);
    let carrier = common::scenario::BackgroundSipp::uas(
        60,
        &common::scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "1"],
    );
    let config = ConfigFile::new()
        .raw("[log]\nfilter = \"info\"\nformat = \"json\"\n")
        .carrier("answer", &carrier.address())
        .routes(&[("", &["answer"])])
        .write(&dir);
    let switch = Switch::start_logging(
        &dir,
        &["--config", config.to_str().unwrap()],
        "trace,sqlx=info,h2=info,hyper=info",
    );
    let output = call_and_hang_up(
        &switch,
        &dir,
        &[
            (Duration::from_millis(2000), &format!("{PIN}#")),
            (Duration::from_millis(5600), "0015557654321#"),
        ],
        Duration::from_secs(2),
    );
    assert_sipp_ok(&output, &switch, "a PIN call with trace-level JSON logs");
    let carrier_run = carrier.finish(Duration::from_secs(20));
    assert!(
        carrier_run.success(),
        "carrier: {}\n{}",
        carrier_run.describe(),
        tail(&switch.log_text(), 30)
    );
    let log = switch.log_text();
    let mut call_lines = 0;
    for line in log.lines().filter(|line| !line.trim().is_empty()) {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        assert!(
            object.get("level").is_some() && object.get("timestamp").is_some(),
            "{line}"
        );
        if object.get("call").is_some() {
            call_lines += 1;
        }
    }
    assert!(
        call_lines > 10,
        "{call_lines} lines name their call\n{}",
        tail(&log, 20)
    );
    for secret in [PIN, "5557654321", "15557654321"] {
        assert!(!log.contains(secret), "{secret} is in the log");
    }
    // The call's media shows in /metrics: the prompts the switch made, and the caller's
    // packets (dropped while it keys digits in the IVR, relayed once bridged).
    let metrics = metrics_text(&switch);
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(value("talktime_rtp_generated_total") > 10, "{metrics}");
    let caller_packets = value("talktime_rtp_dropped_total") + value("talktime_rtp_relayed_total");
    assert!(caller_packets > 100, "{caller_packets}");
    // Nor key by key: no line names a digit.
    for line in log.lines() {
        assert!(
            !line.contains("\"digit\":") && !line.contains("digit: '"),
            "a keyed digit is in the log: {line}"
        );
    }
}

fn metrics_text(switch: &Switch) -> String {
    use std::io::{Read, Write};
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
    answer
}
