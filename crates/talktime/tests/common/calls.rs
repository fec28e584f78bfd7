//! The SIPp caller and carrier of the prepaid tests: a caller keying a DTMF script as RFC 4733
//! events, an answering carrier, the switch started on a configuration file, the call's CDRs.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use talktime_store::Cdr;

use super::pcap::dtmf_pcap;
use super::prepaid::{self, ConfigFile};
use super::scenario::{BackgroundSipp, render};
use super::{Switch, free_port, scenario, tail};

/// Runs one SIPp caller to completion: the access number 100 with this DTMF script.
pub fn call(
    switch: &Switch,
    dir: &Path,
    caller: &str,
    script: &[(Duration, &str)],
    wait: Duration,
) -> std::process::Output {
    call_number(switch, dir, "100", caller, script, wait)
}

pub fn call_number(
    switch: &Switch,
    dir: &Path,
    service: &str,
    caller: &str,
    script: &[(Duration, &str)],
    wait: Duration,
) -> std::process::Output {
    let last = script.last().map_or(Duration::ZERO, |(at, digits)| {
        *at + super::pcap::digits_length(digits)
    });
    let audio = last + Duration::from_millis(500);
    call_with_audio(switch, dir, service, caller, script, audio, wait)
}

/// A caller whose RTP (silence and the DTMF script) lasts `audio`, then stops.
pub fn call_with_audio(
    switch: &Switch,
    dir: &Path,
    service: &str,
    caller: &str,
    script: &[(Duration, &str)],
    audio: Duration,
    wait: Duration,
) -> std::process::Output {
    call_from(
        "127.0.0.1",
        switch,
        dir,
        service,
        caller,
        script,
        audio,
        wait,
    )
}

/// [`call_with_audio`] from another loopback address (another source for the switch).
#[allow(clippy::too_many_arguments)]
pub fn call_from(
    local_ip: &str,
    switch: &Switch,
    dir: &Path,
    service: &str,
    caller: &str,
    script: &[(Duration, &str)],
    audio: Duration,
    wait: Duration,
) -> std::process::Output {
    call_at(
        local_ip, switch.sip, dir, service, caller, script, audio, wait,
    )
}

/// [`call_from`] to a switch known by its SIP address (for a caller on another thread).
#[allow(clippy::too_many_arguments)]
pub fn call_at(
    local_ip: &str,
    sip: std::net::SocketAddr,
    dir: &Path,
    service: &str,
    caller: &str,
    script: &[(Duration, &str)],
    audio: Duration,
    wait: Duration,
) -> std::process::Output {
    let pcap = dir.join(format!("caller-{}.pcap", free_port()));
    dtmf_pcap(&pcap, script, audio, 101).unwrap();
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
    let media_port = super::sipp_media_port().to_string();
    super::sipp_from(
        local_ip,
        seconds,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            service,
            &sip.to_string(),
            "-m",
            "1",
            "-mp",
            &media_port,
        ],
    )
}

/// A SIPp carrier that answers one call, echoes its media and waits for our BYE.
pub fn answering_carrier() -> BackgroundSipp {
    BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "1"],
    )
}

/// Writes the configuration into the data directory and starts the switch on both.
pub fn start(dir: &Path, config: ConfigFile) -> Switch {
    start_with(dir, config, &[])
}

/// [`start`] with more command-line arguments (`--rtp-ports` replaces the default 100 ports).
pub fn start_with(dir: &Path, config: ConfigFile, extra: &[&str]) -> Switch {
    let path = config.write(dir);
    let mut args = vec!["--config", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    Switch::start_in(dir, &args)
}

/// 250 RTP ports (62 calls of two legs) in 10000-19999, away from the 100-port windows
/// [`Switch::start_in`] gives other switches in 20000-31999.
pub fn wide_rtp_ports() -> String {
    super::rtp_window(250)
}

/// The CDR rows of the only call's first attempt, asserting there is exactly one.
pub fn only_attempt_cdrs(switch: &Switch, dir: &Path) -> Vec<Cdr> {
    let reservation = format!("{}#1", only_call_id(switch));
    let cdrs = prepaid::wait_for_cdrs(dir, &reservation, 1);
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    cdrs
}

pub fn only_call_id(switch: &Switch) -> String {
    let ids = switch.call_ids();
    assert_eq!(
        ids.len(),
        1,
        "calls: {ids:?}\n{}",
        tail(&switch.log_text(), 40)
    );
    ids[0].clone()
}

/// A caller that hangs up by itself `hold` after its DTMF script.
pub fn call_and_hang_up(
    switch: &Switch,
    dir: &Path,
    script: &[(Duration, &str)],
    hold: Duration,
) -> std::process::Output {
    call_and_hang_up_from(switch, dir, "anonymous", script, hold)
}

/// [`call_and_hang_up`] with the caller ID `caller` in From.
pub fn call_and_hang_up_from(
    switch: &Switch,
    dir: &Path,
    caller: &str,
    script: &[(Duration, &str)],
    hold: Duration,
) -> std::process::Output {
    let last = script.last().map_or(Duration::ZERO, |(at, digits)| {
        *at + super::pcap::digits_length(digits)
    });
    let total = last + Duration::from_millis(500);
    let pcap = dir.join(format!("caller-{}.pcap", free_port()));
    dtmf_pcap(&pcap, script, total, 101).unwrap();
    let scenario = render(
        "caller_ivr_hangs_up.xml",
        &[
            ("CALLER", caller),
            ("PCAP", pcap.to_str().unwrap()),
            ("PCAP_MS", &total.as_millis().to_string()),
            ("HOLD_MS", &hold.as_millis().to_string()),
        ],
    );
    super::sipp_one_call(60, &scenario, "100", switch)
}

/// SIPp callers from the CSV's caller IDs to access number 200 (DID forwarding: no digits),
/// `count` calls at 10 a second (25 starved PostgreSQL of a loaded CI machine: authorizations
/// passed the 10 s ledger timeout), each waiting up to 120 s for the switch's BYE (a restart
/// that bills crashed calls first may answer late on a loaded machine; the calls already up
/// cannot wait for it in time otherwise).
pub fn sipp_forwarded_callers(
    switch: &Switch,
    dir: &Path,
    callers: &[(i64, String)],
) -> BackgroundSipp {
    let csv = dir.join("callers.csv");
    let mut text = String::from("SEQUENTIAL\n");
    for (_, caller) in callers {
        text.push_str(caller);
        text.push('\n');
    }
    std::fs::write(&csv, text).unwrap();
    let pcap = dir.join("silence.pcap");
    dtmf_pcap(&pcap, &[], Duration::from_secs(40), 101).unwrap();
    let scenario = render(
        "caller_ivr.xml",
        &[
            ("CALLER", "[field0]"),
            ("PCAP", pcap.to_str().unwrap()),
            ("WAIT_MS", "120000"),
        ],
    );
    let count = callers.len().to_string();
    BackgroundSipp::start(
        200,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            "-inf",
            csv.to_str().unwrap(),
            "-s",
            "200",
            &switch.sip.to_string(),
            "-m",
            &count,
            "-l",
            &count,
            "-r",
            "10",
        ],
    )
}

/// Waits until `calls` calls are bridged to the carrier (after their announcements): 200 calls
/// at 10/s take 20 s to place, and more on a loaded machine.
pub fn wait_for_bridged_calls(calls: usize, switch: &Switch) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open = switch.log_text().matches("mode=Full").count();
        if open >= calls {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {open} of {calls} calls up:\n{}",
            tail(&switch.log_text(), 40)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn signal(switch: &Switch, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &switch.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the switch to exit by itself; its exit status.
pub fn wait_for_exit(switch: &mut Switch, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = switch.child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// `accounts` pinless accounts (5.00 each, PINs `{pin_prefix}00000`.., caller IDs
/// `{number_prefix}0000`..) forwarded to +1 555 123 4567, and the SIPp CSV of their caller IDs.
pub fn pinless_accounts(
    dir: &Path,
    accounts: usize,
    pin_prefix: &str,
    number_prefix: &str,
) -> std::path::PathBuf {
    let mut callers = String::from("SEQUENTIAL\n");
    for index in 0..accounts {
        let account = prepaid::card(dir, &format!("{pin_prefix}{index:05}"), 5_000_000, 0);
        let number = format!("{number_prefix}{index:04}");
        prepaid::register_caller_id(dir, account, &number);
        prepaid::forward_to(dir, account, "0015551234567");
        callers.push_str(&number);
        callers.push('\n');
    }
    let csv = dir.join("callers.csv");
    std::fs::write(&csv, callers).unwrap();
    csv
}

/// The load tests' configuration: DID forwarding straight through, nothing announced.
pub fn forwarding_load_config(carrier: &BackgroundSipp) -> ConfigFile {
    ConfigFile::new()
        .ivr("announce_balance = false")
        .ivr("announce_talk_time = false")
        .ivr("forwarding_welcome = false")
        .carrier("answer", &carrier.address())
        .routes(&[("", &["answer"])])
}

/// The load tests' pinless caller (tests/load/caller_pinless.xml) from the callers of `csv`
/// to access number 200: `calls` calls at 10 a second, at most `limit` up, each `hold_ms`.
pub fn pinless_load(
    switch: &Switch,
    dir: &Path,
    csv: &Path,
    calls: usize,
    limit: usize,
    hold_ms: u64,
) -> BackgroundSipp {
    let template =
        std::fs::read_to_string(super::repo_root().join("tests/load/caller_pinless.xml"))
            .unwrap()
            .replace("{{HOLD_MS}}", &hold_ms.to_string())
            .replace("{{RTP_START}}", "")
            .replace("{{RTP_STOP}}", "");
    let caller_scenario = dir.join("caller_pinless.xml");
    std::fs::write(&caller_scenario, template).unwrap();
    let media_port = super::sipp_media_port().to_string();
    let (count, limit) = (calls.to_string(), limit.to_string());
    BackgroundSipp::start(
        90,
        &[
            "-sf",
            caller_scenario.to_str().unwrap(),
            "-inf",
            csv.to_str().unwrap(),
            "-s",
            "200",
            &switch.sip.to_string(),
            "-m",
            &count,
            "-l",
            &limit,
            "-r",
            "10",
            "-mp",
            &media_port,
        ],
    )
}
