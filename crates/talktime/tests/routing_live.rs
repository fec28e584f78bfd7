//! Carrier routing against the real binary (issue 6): least-cost routing with the CDR's buy
//! cost and margin, a carrier at its concurrent-call limit skipped, and OPTIONS health taking
//! a silent carrier out of the route and back. SIPp plays the callers (DTMF as RFC 4733 from
//! a pcap; play_pcap_audio needs root or CAP_NET_RAW) and the carriers; all on loopback.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::pcap::{digits_length, dtmf_pcap};
use common::prepaid::{self, ConfigFile};
use common::scenario::{BackgroundSipp, render};
use common::{Switch, free_port, scenario, tail};
use rust_decimal::Decimal;
use talktime_store::Cdr;

/// 6.00 a minute in one-second blocks (0.10 a second); the tariff's own buy column says 1.00.
const SELL_RATES: &str = "1,USA,6.00,1.00,1,1,0\n";
const PIN_AT: Duration = Duration::from_millis(2000);
const DESTINATION_AT: Duration = Duration::from_millis(5600);
const US_NUMBER: &str = "0015551234567#";
/// Time on the line after the last digit: the talk-time announcement and the carrier's
/// answer take about 2 s, then a few seconds connected.
const SHORT_HOLD: Duration = Duration::from_secs(5);

/// The PIN then the US destination, as the caller keys them.
fn script(pin: &str) -> Vec<(Duration, String)> {
    vec![
        (PIN_AT, format!("{pin}#")),
        (DESTINATION_AT, US_NUMBER.to_owned()),
    ]
}

/// Writes the caller's DTMF pcap; returns its path and its length.
fn caller_pcap(dir: &Path, script: &[(Duration, String)]) -> (String, Duration) {
    let script: Vec<(Duration, &str)> = script
        .iter()
        .map(|(at, digits)| (*at, digits.as_str()))
        .collect();
    let last = script
        .last()
        .map_or(Duration::ZERO, |(at, digits)| *at + digits_length(digits));
    let length = last + Duration::from_millis(500);
    let pcap = dir.join(format!("caller-{}.pcap", free_port()));
    dtmf_pcap(&pcap, &script, length, 101).unwrap();
    (pcap.to_str().unwrap().to_owned(), length)
}

fn run_caller(switch: SocketAddr, scenario: &Path, seconds: u32) -> Output {
    let media_port = common::sipp_media_port().to_string();
    common::sipp(
        seconds,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            "100",
            &switch.to_string(),
            "-m",
            "1",
            "-mp",
            &media_port,
        ],
    )
}

/// A caller to access number 100 who waits for the switch to hang up (at the credit limit).
fn call_until_cut(switch: SocketAddr, dir: &Path, pin: &str) -> Output {
    let (pcap, _) = caller_pcap(dir, &script(pin));
    let scenario = render(
        "caller_ivr.xml",
        &[
            ("CALLER", "anonymous"),
            ("PCAP", &pcap),
            ("WAIT_MS", "40000"),
        ],
    );
    run_caller(switch, &scenario, 60)
}

/// A caller to access number 100 who hangs up `hold` after keying the destination.
fn call_and_hang_up(switch: SocketAddr, dir: &Path, pin: &str, hold: Duration) -> Output {
    let (pcap, length) = caller_pcap(dir, &script(pin));
    let scenario = render(
        "caller_ivr_hangs_up.xml",
        &[
            ("CALLER", "anonymous"),
            ("PCAP", &pcap),
            ("PCAP_MS", &length.as_millis().to_string()),
            ("HOLD_MS", &hold.as_millis().to_string()),
        ],
    );
    let seconds = u32::try_from((length + hold).as_secs()).unwrap() + 30;
    run_caller(switch, &scenario, seconds)
}

/// A `[[carriers]]` table; `extra` is more TOML lines (buy_tariff, max_calls, ...).
fn carrier(name: &str, address: &str, extra: &str) -> String {
    let (host, port) = address.rsplit_once(':').unwrap();
    format!(
        "[[carriers]]\nname = \"{name}\"\nhost = \"{host}\"\nport = {port}\n\
         invite_timeout_ms = 6000\n{extra}\n"
    )
}

/// Dial plan `default` with one route for every number.
fn route(mode: &str, carriers: &[&str]) -> String {
    let list = carriers
        .iter()
        .enumerate()
        .map(|(priority, name)| format!("{{ name = \"{name}\", priority = {priority} }}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "[[dial_plans]]\nname = \"default\"\n\n[[dial_plans.routes]]\nprefix = \"\"\n\
         mode = \"{mode}\"\ncarriers = [{list}]\n"
    )
}

/// Waits until a line of the switch log contains every one of `needles`; returns the time
/// it took.
fn wait_for_log(switch: &Switch, needles: &[&str], limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let log = switch.log_text();
        if log
            .lines()
            .any(|line| needles.iter().all(|needle| line.contains(needle)))
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "no log line with {needles:?} within {limit:?}:\n{}",
            tail(&log, 40)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_lines_with(switch: &Switch, needles: &[&str]) -> usize {
    switch
        .log_text()
        .lines()
        .filter(|line| needles.iter().all(|needle| line.contains(needle)))
        .count()
}

/// The `n`-th prepaid call's only CDR (its first destination attempt: one carrier tried).
fn only_cdr(switch: &Switch, dir: &Path, n: usize) -> Cdr {
    let ids = switch.call_ids();
    assert!(
        ids.len() > n,
        "calls: {ids:?}\n{}",
        tail(&switch.log_text(), 40)
    );
    let cdrs = prepaid::wait_for_cdrs(dir, &format!("{}#1", ids[n]), 1);
    assert_eq!(cdrs.len(), 1, "call {n}: one carrier tried: {cdrs:?}");
    cdrs.into_iter().next().unwrap()
}

#[test]
fn least_cost_routing_picks_the_cheaper_carrier_and_the_cdr_shows_buy_cost_and_margin() {
    let dir = prepaid::data_dir("lcr");
    prepaid::tariff(&dir, "demo", SELL_RATES);
    // Each carrier's own buy rates; neither matches the sell tariff's buy column (1.00).
    prepaid::tariff(&dir, "dear-buy", "1,USA,0,3.00,1,1,0\n");
    prepaid::tariff(&dir, "cheap-buy", "1,USA,0,1.20,1,1,0\n");
    let account = prepaid::card(&dir, "1234567890", 300_000, 0);
    let dear = BackgroundSipp::uas(90, &scenario("carrier_answer.xml"), &["-rtp_echo"]);
    let cheap = BackgroundSipp::uas(90, &scenario("carrier_answer.xml"), &["-rtp_echo"]);
    // The dear carrier is listed first with the better priority: only price can put the
    // cheap one first.
    let config = ConfigFile::new()
        .raw(&carrier(
            "dear",
            &dear.address(),
            "buy_tariff = \"dear-buy\"\noptions_interval_ms = 0",
        ))
        .raw(&carrier(
            "cheap",
            &cheap.address(),
            "buy_tariff = \"cheap-buy\"\noptions_interval_ms = 0",
        ))
        .raw(&route("least_cost", &["dear", "cheap"]))
        .write(&dir);
    let switch = Switch::start_in(&dir, &["--config", config.to_str().unwrap()]);

    let output = call_until_cut(switch.sip, &dir, "1234567890");
    common::assert_sipp_ok(&output, &switch, "call cut at its 3 s limit");
    let cdr = only_cdr(&switch, &dir, 0);
    assert_eq!(cdr.carrier.as_deref(), Some("cheap"));
    assert!(cdr.answer_ms.is_some());
    assert_eq!(cdr.billed_seconds, 3);
    assert_eq!(cdr.total_micros, 300_000, "3 s at 0.10/s");
    // 3 s at the cheap carrier's 1.20/min (not dear's 3.00 = 150,000, nor the sell
    // tariff's buy column 1.00 = 50,000).
    assert_eq!(cdr.buy_cost_micros, 60_000);
    let fees: serde_json::Value = serde_json::from_str(&cdr.fees_json).unwrap();
    let margin = Decimal::from_str(fees["margin"].as_str().unwrap()).unwrap();
    assert_eq!(
        margin,
        Decimal::new(24, 2),
        "0.30 sold - 0.06 bought: {fees}"
    );
    assert_eq!(
        log_lines_with(&switch, &["INVITE sent", "carrier=dear"]),
        0,
        "the dear carrier is never tried"
    );
    assert_eq!(prepaid::balance(&dir, account), 0);
}

#[test]
fn a_carrier_at_its_concurrent_call_limit_is_skipped() {
    let dir = prepaid::data_dir("max-calls");
    prepaid::tariff(&dir, "demo", SELL_RATES);
    // Two cards: a card's own concurrency limit must not be what refuses the second call.
    let holder = prepaid::card(&dir, "1111111111", 10_000_000, 0);
    let second = prepaid::card(&dir, "2222222222", 300_000, 0);
    let small = BackgroundSipp::uas(120, &scenario("carrier_answer.xml"), &["-rtp_echo"]);
    let big = BackgroundSipp::uas(120, &scenario("carrier_answer.xml"), &["-rtp_echo"]);
    let config = ConfigFile::new()
        .raw(&carrier(
            "small",
            &small.address(),
            "max_calls = 1\noptions_interval_ms = 0",
        ))
        .raw(&carrier("big", &big.address(), "options_interval_ms = 0"))
        .raw(&route("priority", &["small", "big"]))
        .write(&dir);
    let switch = Switch::start_in(&dir, &["--config", config.to_str().unwrap()]);

    std::thread::scope(|scope| {
        // The first caller takes small's only slot and keeps it while the second calls.
        let first = scope
            .spawn(|| call_and_hang_up(switch.sip, &dir, "1111111111", Duration::from_secs(20)));
        wait_for_log(&switch, &["bridged"], Duration::from_secs(30));
        let output = call_until_cut(switch.sip, &dir, "2222222222");
        common::assert_sipp_ok(&output, &switch, "second caller cut at its 3 s limit");
        let first = first.join().unwrap();
        common::assert_sipp_ok(&first, &switch, "first caller hangs up");
    });

    let held = only_cdr(&switch, &dir, 0);
    assert_eq!(held.carrier.as_deref(), Some("small"));
    let overflow = only_cdr(&switch, &dir, 1);
    assert_eq!(overflow.carrier.as_deref(), Some("big"), "small was full");
    assert!(overflow.answer_ms.is_some());
    assert_eq!(overflow.total_micros, 300_000);
    // The second INVITE went out while the first call was connected.
    let held_answer = held.answer_ms.unwrap();
    assert!(
        (held_answer..held.end_ms).contains(&overflow.start_ms),
        "the calls overlap: {held:?} {overflow:?}"
    );
    assert_eq!(
        log_lines_with(
            &switch,
            &[
                "carrier skipped",
                "carrier=small",
                "at its limit of 1 calls"
            ]
        ),
        1,
        "{}",
        tail(&switch.log_text(), 60)
    );
    assert_eq!(prepaid::balance(&dir, second), 0);

    // Both calls over: small's slot is free again.
    let output = call_and_hang_up(switch.sip, &dir, "1111111111", SHORT_HOLD);
    common::assert_sipp_ok(&output, &switch, "third caller");
    assert_eq!(only_cdr(&switch, &dir, 2).carrier.as_deref(), Some("small"));
    assert_eq!(prepaid::open_reservations(&dir, holder), 0);
}

#[test]
fn a_carrier_that_stops_answering_options_stops_getting_calls_until_it_answers_again() {
    let dir = prepaid::data_dir("options-health");
    prepaid::tariff(&dir, "demo", SELL_RATES);
    let account = prepaid::card(&dir, "1234567890", 10_000_000, 0);
    let primary = BackgroundSipp::uas(120, &scenario("carrier_options.xml"), &["-rtp_echo"]);
    let primary_port = primary.port.to_string();
    let backup = BackgroundSipp::uas(120, &scenario("carrier_answer.xml"), &["-rtp_echo"]);
    // T1 = 50 ms: an unanswered OPTIONS times out after 64 x T1 = 3.2 s (Timer F).
    let config = ConfigFile::new()
        .raw("[sip]\nt1_ms = 50\n")
        .raw(&carrier(
            "primary",
            &primary.address(),
            "options_interval_ms = 300",
        ))
        .raw(&carrier(
            "backup",
            &backup.address(),
            "options_interval_ms = 0",
        ))
        .raw(&route("priority", &["primary", "backup"]))
        .write(&dir);
    let switch = Switch::start_in(&dir, &["--config", config.to_str().unwrap()]);

    // Answering its pings, primary takes the call.
    let output = call_and_hang_up(switch.sip, &dir, "1234567890", SHORT_HOLD);
    common::assert_sipp_ok(&output, &switch, "first call");
    let first = only_cdr(&switch, &dir, 0);
    assert_eq!(first.carrier.as_deref(), Some("primary"));
    assert!(first.answer_ms.is_some());
    assert_eq!(
        log_lines_with(&switch, &["carrier health changed"]),
        0,
        "primary stayed up while it answered"
    );

    // Silent: after MISSES_BEFORE_DOWN (2) pings time out, calls skip it.
    let stopped = Instant::now();
    drop(primary.finish(Duration::ZERO));
    wait_for_log(
        &switch,
        &["carrier health changed", "carrier=primary", "up=false"],
        Duration::from_secs(15),
    );
    let down_after = stopped.elapsed();
    assert!(
        down_after >= Duration::from_millis(3200),
        "down only once two pings timed out (64 x T1 = 3.2 s each), not after {down_after:?}"
    );
    let output = call_and_hang_up(switch.sip, &dir, "1234567890", SHORT_HOLD);
    common::assert_sipp_ok(&output, &switch, "second call");
    let second = only_cdr(&switch, &dir, 1);
    assert_eq!(
        second.carrier.as_deref(),
        Some("backup"),
        "no INVITE to the silent carrier"
    );
    assert!(second.answer_ms.is_some());
    assert_eq!(
        log_lines_with(
            &switch,
            &["carrier skipped", "carrier=primary", "unhealthy"]
        ),
        1
    );

    // Back on the same port: the next answered ping brings it back, and the calls.
    let restarted = Instant::now();
    let _primary = BackgroundSipp::uas(
        90,
        &scenario("carrier_options.xml"),
        &["-rtp_echo", "-p", &primary_port],
    );
    wait_for_log(
        &switch,
        &["carrier health changed", "carrier=primary", "up=true"],
        Duration::from_secs(10),
    );
    let up_after = restarted.elapsed();
    let output = call_and_hang_up(switch.sip, &dir, "1234567890", SHORT_HOLD);
    common::assert_sipp_ok(&output, &switch, "third call");
    let third = only_cdr(&switch, &dir, 2);
    assert_eq!(third.carrier.as_deref(), Some("primary"));
    assert!(third.answer_ms.is_some());
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
    eprintln!("primary down {down_after:?} after it stopped, up {up_after:?} after it restarted");
}
