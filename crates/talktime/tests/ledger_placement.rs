//! `[database] writer_cpu` (issue 19): the ledger's thread and the SQLite writer connection's
//! thread run on the CPU named (by default one the switch picks), the other threads where
//! they were, and calls are billed as ever; `"off"` leaves them to the kernel; a CPU the
//! process may not use stops the start with a message that says so.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::calls::{
    sipp_forwarded_callers, start, start_with, wait_for_bridged_calls, wide_rtp_ports,
};
use common::prepaid::{self, ConfigFile};
use common::scenario::BackgroundSipp;
use common::{scenario, tail};
use nix::sched::{CpuSet, sched_getaffinity};
use nix::unistd::Pid;

/// 6.00 a minute in one-second blocks: 0.10 a second.
const PER_SECOND_RATES: &str = "1,USA,6.00,1.00,1,1,0\n";

/// The highest CPU this test may run on (the switch inherits the same set).
fn last_allowed_cpu() -> usize {
    let allowed = sched_getaffinity(Pid::from_raw(0)).unwrap();
    (0..CpuSet::count())
        .rev()
        .find(|cpu| allowed.is_set(*cpu).unwrap())
        .unwrap()
}

/// Each thread of process `pid`: its name and the CPUs it may run on (`0-1`, `1`).
fn thread_cpus(pid: u32) -> Vec<(String, String)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .flatten()
        .filter_map(|task| {
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(|value| value.trim().to_owned())
            };
            Some((field("Name:")?, field("Cpus_allowed_list:")?))
        })
        .collect()
}

/// `Cpus_allowed_list` of a `status` file.
fn cpus_allowed(status: &str) -> String {
    std::fs::read_to_string(status)
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn the_ledger_and_the_sqlite_writer_share_the_cpu_named_and_calls_are_billed() {
    const CALLS: usize = 10;
    let cpu = last_allowed_cpu();
    let dir = prepaid::data_dir("writer-cpu");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    // 0.30 each: every call is cut at its credit limit, 3 s after the answer.
    let callers = prepaid::forwarded_callers(&dir, CALLS, 300_000);
    let accounts: Vec<i64> = callers.iter().map(|(account, _)| *account).collect();
    let carrier = BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-m", &CALLS.to_string()],
    );
    let ports = wide_rtp_ports();
    let switch = start_with(
        &dir,
        ConfigFile::new()
            .raw(&format!("[database]\nwriter_cpu = {cpu}\n"))
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
        &["--rtp-ports", &ports],
    );
    let callers_run = sipp_forwarded_callers(&switch, &dir, &callers);
    wait_for_bridged_calls(CALLS, &switch);

    let threads = thread_cpus(switch.child.id());
    let placed: Vec<&(String, String)> = threads
        .iter()
        .filter(|(name, _)| name == "ledger" || name == "sqlite-writer")
        .collect();
    assert!(
        placed.iter().any(|(name, _)| name == "ledger")
            && placed.iter().any(|(name, _)| name == "sqlite-writer"),
        "both threads found: {threads:?}"
    );
    for (name, cpus) in &placed {
        assert_eq!(cpus, &cpu.to_string(), "{name} runs on CPU {cpu} only");
    }
    assert_eq!(
        cpus_allowed(&format!("/proc/{}/status", switch.child.id())),
        cpus_allowed("/proc/self/status"),
        "the switch's main thread keeps the CPUs it was given"
    );

    let callers_done = callers_run.finish(Duration::from_secs(60));
    assert!(
        callers_done.success(),
        "every call cut at its limit: {}\n{}",
        callers_done.describe(),
        tail(&switch.log_text(), 20)
    );
    for (account, _) in &callers {
        assert_eq!(prepaid::balance(&dir, *account), 0, "account {account}");
    }
    for id in switch.call_ids() {
        let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{id}#1"), 1);
        assert_eq!(cdrs[0].billed_seconds, 3, "{id}");
        assert_eq!(
            cdrs[0].disconnect_cause.as_deref(),
            Some("credit_exhausted")
        );
    }
    assert_eq!(prepaid::all_open_reservations(&dir, &accounts), 0);
}

/// The CPUs each of the switch's threads named `ledger` and `sqlite-writer` may run on (at
/// least one of each).
fn ledger_threads(switch: &common::Switch) -> Vec<String> {
    let threads: Vec<(String, String)> = thread_cpus(switch.child.id())
        .into_iter()
        .filter(|(name, _)| name == "ledger" || name == "sqlite-writer")
        .collect();
    for name in ["ledger", "sqlite-writer"] {
        assert!(
            threads.iter().any(|(found, _)| found == name),
            "{name}: {threads:?}"
        );
    }
    threads.into_iter().map(|(_, cpus)| cpus).collect()
}

#[test]
fn by_default_the_pair_shares_one_cpu_and_off_leaves_it_to_the_kernel() {
    let every_cpu = cpus_allowed("/proc/self/status");
    let by_default = start(&prepaid::data_dir("writer-cpu-auto"), ConfigFile::new());
    let placed = ledger_threads(&by_default);
    assert!(
        placed.iter().all(|cpus| *cpus == placed[0]),
        "one CPU for all: {placed:?}"
    );
    if every_cpu.contains(['-', ',']) {
        assert!(
            placed[0].parse::<usize>().is_ok(),
            "a single CPU of {every_cpu}, not {}",
            placed[0]
        );
        assert!(
            by_default
                .log_text()
                .contains("the ledger's writes run on one CPU")
        );
    }
    let off = start(
        &prepaid::data_dir("writer-cpu-off"),
        ConfigFile::new().raw("[database]\nwriter_cpu = \"off\"\n"),
    );
    let left = ledger_threads(&off);
    assert!(left.iter().all(|cpus| *cpus == every_cpu), "{left:?}");
}

#[test]
fn a_cpu_the_switch_may_not_use_stops_the_start_and_says_why() {
    let dir = prepaid::data_dir("writer-cpu-refused");
    let config = ConfigFile::new()
        .raw(&format!(
            "[database]\nwriter_cpu = {}\n",
            CpuSet::count() - 1
        ))
        .write(&dir);
    let output = Command::new("timeout")
        .arg("30")
        .arg(env!("CARGO_BIN_EXE_talktime"))
        .args(["serve", "--data-dir", dir.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .args(["--sip-udp", "127.0.0.1:0", "--sip-tcp", "127.0.0.1:0"])
        .args(["--admin-listen", ""])
        .arg("--prompts-dir")
        .arg(common::repo_root().join("prompts"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("[database] writer_cpu")
            && stderr.contains("is not one this process may run on"),
        "{stderr}"
    );
}
