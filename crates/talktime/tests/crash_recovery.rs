//! A switch killed with calls up (issue 12): kill -9, then the next start (or, with two nodes
//! on one PostgreSQL schema, the surviving node once the lease is over) bills every answered
//! call to the dead node's last heartbeat, writes its CDR with cause `node_lost`, sends BYE on
//! both legs, and leaves no reservation open; nothing is ever charged twice.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Switch;
use common::calls::{sipp_forwarded_callers, start_with, wait_for_bridged_calls, wait_for_exit};
use common::prepaid::{self, ConfigFile};
use common::scenario::BackgroundSipp;
use common::{scenario, tail};

/// 6.00 a minute in one-second blocks: 0.10 a second.
const PER_SECOND_RATES: &str = "1,USA,6.00,1.00,1,1,0\n";
const BALANCE: i64 = 100_000_000;

fn config(carrier: &BackgroundSipp, extra: &str) -> ConfigFile {
    ConfigFile::new()
        .ivr("announce_balance = false")
        .ivr("announce_talk_time = false")
        .raw(&format!(
            "[rtp]\ninactivity_timeout_ms = 120000\n\n[shutdown]\ndrain_s = 0\n\n{extra}"
        ))
        .carrier("answer", &carrier.address())
        .routes(&[("", &["answer"])])
}

fn kill_hard(switch: &mut Switch) -> i64 {
    switch.child.kill().unwrap();
    switch.child.wait().unwrap();
    wall_clock_ms()
}

fn wall_clock_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Every call of `ids` has one CDR with cause `node_lost`, billed for about as long as it was
/// up before `killed_ms` (the last heartbeat is at most a second earlier; whole seconds round
/// up), and its account was charged exactly that once.
fn assert_billed_to_the_kill(dir: &Path, ids: &[String], killed_ms: i64, accounts: &[i64]) {
    assert_billed_until(dir, ids, killed_ms, killed_ms - 1_000, accounts);
}

/// [`assert_billed_to_the_kill`] where the proof is `proven_ms`, the dead node's last
/// heartbeat read back: each call is billed at least from its answer to it (whole seconds
/// round up) and at most to the kill.
fn assert_billed_until(
    dir: &Path,
    ids: &[String],
    killed_ms: i64,
    proven_ms: i64,
    accounts: &[i64],
) {
    let mut charged = 0;
    for id in ids {
        let cdrs = prepaid::wait_for_cdrs(dir, &format!("{id}#1"), 1);
        assert_eq!(cdrs.len(), 1, "one CDR for {id}");
        let cdr = &cdrs[0];
        assert_eq!(cdr.disconnect_cause.as_deref(), Some("node_lost"));
        let up_ms = killed_ms - cdr.answer_ms.unwrap();
        let proven = proven_ms - cdr.answer_ms.unwrap();
        let billed_ms = cdr.billed_seconds * 1000;
        assert!(
            billed_ms >= proven - 1_000 && billed_ms <= up_ms + 1_000,
            "{id}: billed {billed_ms} ms of a call up {up_ms} ms, {proven} ms of it proven"
        );
        assert_eq!(cdr.total_micros, cdr.billed_seconds * 100_000);
        charged += cdr.total_micros;
    }
    let spent: i64 = accounts
        .iter()
        .map(|account| BALANCE - prepaid::balance(dir, *account))
        .sum();
    assert_eq!(spent, charged, "each call charged once, as its CDR says");
}

#[test]
fn kill_9_with_answered_calls_then_restart_bills_each_once_on_sqlite() {
    kill_9_with_answered_calls_then_restart(prepaid::Backend::Sqlite);
}

#[test]
fn kill_9_with_answered_calls_then_restart_bills_each_once_on_postgresql() {
    kill_9_with_answered_calls_then_restart(prepaid::Backend::Postgres);
}

/// 200 answered calls, kill -9, a restart on the same address: each call is charged once to
/// about when it was really up, both legs get BYE, nothing stays open; another restart
/// charges nothing more.
fn kill_9_with_answered_calls_then_restart(backend: prepaid::Backend) {
    const CALLS: usize = 200;
    // One at a time: 400 relayed calls of two switches at once, beside the other test lanes,
    // outran a loaded 2-core CI machine (the restarted switch's BYEs came after the callers
    // had given up).
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = prepaid::data_dir("kill9");
    let database = backend.prepare(&dir, "kill9");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let callers = prepaid::forwarded_callers(&dir, CALLS, BALANCE);
    let accounts: Vec<i64> = callers.iter().map(|(account, _)| *account).collect();
    let carrier = BackgroundSipp::uas(
        120,
        &scenario("carrier_answer.xml"),
        &["-m", &CALLS.to_string()],
    );
    // Two legs of two ports each for 200 calls, in 10000-19999 (see wide_rtp_ports).
    let ports = common::rtp_window(1000);
    let config = config(&carrier, &database);
    let mut switch = start_with(&dir, config, &["--rtp-ports", &ports]);
    let sip_port = switch.sip.port();
    let callers_run = sipp_forwarded_callers(&switch, &dir, &callers);
    wait_for_bridged_calls(CALLS, &switch);
    std::thread::sleep(Duration::from_secs(3));

    let killed_ms = kill_hard(&mut switch);
    let ids = switch.call_ids();
    assert_eq!(ids.len(), CALLS);
    assert_eq!(prepaid::all_open_reservations(&dir, &accounts), CALLS);

    // The next start, on the same address: bills, records and hangs up every call.
    let restarted_at = Instant::now();
    let config_path = dir.join("talktime.toml");
    let restarted = Switch::start_at(
        &dir,
        sip_port,
        &[
            "--config",
            config_path.to_str().unwrap(),
            "--rtp-ports",
            &ports,
        ],
    );
    assert_eq!(prepaid::all_open_reservations(&dir, &accounts), 0);
    let callers_done = callers_run.finish(Duration::from_secs(20));
    assert!(
        callers_done.success(),
        "every caller got BYE after the restart: {}\n{}",
        callers_done.describe(),
        tail(&restarted.log_text(), 20)
    );
    let carriers_done = carrier.finish(Duration::from_secs(20));
    assert!(
        carriers_done.success(),
        "every carrier leg got BYE after the restart: {}",
        carriers_done.describe()
    );
    let recovery = restarted_at.elapsed();
    assert_billed_to_the_kill(&dir, &ids, killed_ms, &accounts);
    eprintln!("{CALLS} calls recovered in {recovery:?} (start, bill, BYE both legs)");

    // Another restart finds nothing to bill.
    let balances: Vec<i64> = accounts
        .iter()
        .map(|a| prepaid::balance(&dir, *a))
        .collect();
    drop(restarted);
    let again = Switch::start_at(
        &dir,
        sip_port,
        &[
            "--config",
            config_path.to_str().unwrap(),
            "--rtp-ports",
            &ports,
        ],
    );
    let after: Vec<i64> = accounts
        .iter()
        .map(|a| prepaid::balance(&dir, *a))
        .collect();
    assert_eq!(balances, after, "nothing is charged twice");
    assert!(!again.log_text().contains("recovered call billed"));
}

/// Two switches on one PostgreSQL schema. Killing one and starting it again bills its own
/// calls and leaves the other's alone; killing it and not starting it again lets the other
/// bill its calls once the lease is over.
#[test]
fn two_nodes_on_postgresql_recover_each_others_calls_only_when_the_lease_is_over() {
    const CALLS: usize = 5;
    let url = prepaid::postgres_schema("nodes");
    let dir_a = prepaid::data_dir("node-a");
    let dir_b = prepaid::data_dir("node-b");
    prepaid::use_database(&dir_a, &url);
    prepaid::use_database(&dir_b, &url);
    prepaid::tariff(&dir_a, "demo", PER_SECOND_RATES);
    // Every node of one ledger hashes PINs with the same key: B gets A's.
    std::fs::copy(dir_a.join("pin.key"), dir_b.join("pin.key")).unwrap();
    let callers = prepaid::forwarded_callers(&dir_a, CALLS * 3, BALANCE);
    let accounts: Vec<i64> = callers.iter().map(|(account, _)| *account).collect();
    let (first_a, rest) = callers.split_at(CALLS);
    let (calls_b, second_a) = rest.split_at(CALLS);
    let carrier = BackgroundSipp::uas(
        120,
        &scenario("carrier_answer.xml"),
        &["-m", &(CALLS * 3).to_string()],
    );
    let database = format!("[database]\nurl = \"{url}\"\n\n[cluster]\nnode_lease_s = 6\n");
    let mut node_a = start_with(&dir_a, config(&carrier, &database), &[]);
    let node_b = start_with(&dir_b, config(&carrier, &database), &[]);

    let run_a = sipp_forwarded_callers(&node_a, &dir_a, first_a);
    let run_b = sipp_forwarded_callers(&node_b, &dir_b, calls_b);
    wait_for_bridged_calls(CALLS, &node_a);
    wait_for_bridged_calls(CALLS, &node_b);
    std::thread::sleep(Duration::from_secs(2));

    // A dies and comes back at once: its calls are billed, B's are untouched.
    let killed_a = kill_hard(&mut node_a);
    let ids_a = node_a.call_ids();
    let config_a = dir_a.join("talktime.toml");
    let mut node_a = Switch::start_at(
        &dir_a,
        node_a.sip.port(),
        &["--config", config_a.to_str().unwrap()],
    );
    assert!(
        run_a.finish(Duration::from_secs(20)).success(),
        "A's callers got BYE"
    );
    assert_billed_to_the_kill(&dir_a, &ids_a, killed_a, &accounts[..CALLS]);
    let open_b = prepaid::all_open_reservations(&dir_b, &accounts[CALLS..CALLS * 2]);
    assert_eq!(open_b, CALLS, "B's calls are still up and unbilled");

    // A dies again with new calls and stays dead: B bills them after the 6 s lease (3 s was
    // shorter than one heartbeat statement on a loaded CI machine, where a PostgreSQL
    // INSERT took 3.2 s and A took B for dead).
    let run_a = sipp_forwarded_callers(&node_a, &dir_a, second_a);
    wait_for_bridged_calls(CALLS, &node_a);
    std::thread::sleep(Duration::from_secs(1));
    let killed_a = kill_hard(&mut node_a);
    let ids_a = node_a.call_ids();
    // B bills from A's last heartbeat (B's own is newer). On a loaded CI machine it was once
    // written 2 s before the kill; within the lease it is proof enough.
    let last_beat_a = prepaid::node_heartbeats(&dir_b).into_iter().min().unwrap();
    assert!(killed_a - last_beat_a < 6_000, "A's heartbeat was current");
    let deadline = Instant::now() + Duration::from_secs(15);
    while prepaid::all_open_reservations(&dir_b, &accounts[CALLS * 2..]) > 0 {
        assert!(
            Instant::now() < deadline,
            "B did not recover A's calls:\n{}",
            tail(&node_b.log_text(), 30)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        run_a.finish(Duration::from_secs(20)).success(),
        "B hung up A's callers"
    );
    assert_billed_until(
        &dir_b,
        &ids_a,
        killed_a,
        last_beat_a,
        &accounts[CALLS * 2..],
    );

    // B's own calls were never touched: they end normally, billed by B.
    let ids_b = node_b.call_ids();
    let mut node_b = node_b;
    common::calls::signal(&node_b, "TERM");
    assert!(wait_for_exit(&mut node_b, Duration::from_secs(10)).is_some_and(|s| s.success()));
    assert!(run_b.finish(Duration::from_secs(20)).success());
    for id in &ids_b {
        let cdrs = prepaid::wait_for_cdrs(&dir_b, &format!("{id}#1"), 1);
        assert_eq!(cdrs.len(), 1);
        assert_eq!(cdrs[0].disconnect_cause.as_deref(), Some("shutdown"));
    }
    assert_eq!(prepaid::all_open_reservations(&dir_b, &accounts), 0);
    drop(carrier);
}

/// Holds this node's heartbeat row locked from another PostgreSQL session (`psql`), as a
/// database that stalls the node's writes would; dropped, the lock is let go.
struct HeartbeatStall(std::process::Child);

impl HeartbeatStall {
    fn start(url: &str, node: &str) -> HeartbeatStall {
        let admin = std::env::var("TALKTIME_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = url.rsplit("search_path]=").next().unwrap();
        let mut psql = std::process::Command::new("psql")
            .args([admin.as_str(), "-q"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // FOR NO KEY UPDATE blocks the heartbeat's UPDATE, not the reservations' key checks.
        let lock = format!(
            "SET search_path TO {schema};\nBEGIN;\n\
             SELECT node_id FROM nodes WHERE node_id = '{node}' FOR NO KEY UPDATE;\n"
        );
        use std::io::Write;
        psql.stdin
            .as_mut()
            .unwrap()
            .write_all(lock.as_bytes())
            .unwrap();
        HeartbeatStall(psql)
    }
}

impl Drop for HeartbeatStall {
    fn drop(&mut self) {
        use std::io::Write;
        if let Some(mut stdin) = self.0.stdin.take() {
            let _ = stdin.write_all(b"COMMIT;\n");
        }
        let _ = self.0.wait();
    }
}

/// Sends an INVITE with an offer and returns its final response's text.
fn final_answer_to_invite(target: std::net::SocketAddr) -> String {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        local.port() + 2
    );
    let invite = format!(
        "INVITE sip:200@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-stall\r\n\
         From: <sip:15550009999@{local}>;tag=stall\r\nTo: <sip:200@{target}>\r\n\
         Call-ID: stall-{}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{local}>\r\n\
         Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        local.port(),
        sdp.len()
    );
    socket.send_to(invite.as_bytes(), target).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        let Ok((length, _)) = socket.recv_from(&mut buffer) else {
            return "no final answer".into();
        };
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if !text.starts_with("SIP/2.0 1") {
            return text;
        }
    }
}

#[test]
fn a_node_whose_heartbeat_stalls_refuses_new_calls_until_it_is_written_again() {
    let url = prepaid::postgres_schema("stall");
    let dir = prepaid::data_dir("stall");
    prepaid::use_database(&dir, &url);
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let callers = prepaid::forwarded_callers(&dir, 2, BALANCE);
    let accounts: Vec<i64> = callers.iter().map(|(account, _)| *account).collect();
    let carrier = BackgroundSipp::uas(120, &scenario("carrier_answer.xml"), &["-m", "2"]);
    let cluster = format!(
        "[database]\nurl = \"{url}\"\n\n\
         [cluster]\nnode_id = \"stall\"\nnode_lease_s = 4\nheartbeat_ms = 250\n"
    );
    let mut node = start_with(&dir, config(&carrier, &cluster), &[]);
    let ping = |node: &Switch| common::options_ping(node.sip, Duration::from_millis(500));
    assert!(ping(&node).is_some_and(|status| status.contains("200")));
    let first = sipp_forwarded_callers(&node, &dir, &callers[..1]);
    wait_for_bridged_calls(1, &node);

    // The database stalls the heartbeat: within half the 4 s lease the node refuses new calls
    // (a proxy's probe takes it out), while the call up goes on.
    let stall = HeartbeatStall::start(&url, "stall");
    assert!(
        common::wait_until(Duration::from_secs(6), || {
            ping(&node).is_some_and(|status| status.contains("503"))
        }),
        "a node whose heartbeat is late answers OPTIONS with 503:\n{}",
        tail(&node.log_text(), 20)
    );
    let refused = final_answer_to_invite(node.sip);
    assert!(refused.starts_with("SIP/2.0 503"), "{refused}");
    assert!(refused.contains("Retry-After"), "{refused}");
    assert!(node.log_text().contains("the heartbeat is late"));

    // The heartbeat is written again: calls are taken, the first one was never cut.
    drop(stall);
    assert!(
        common::wait_until(Duration::from_secs(5), || {
            ping(&node).is_some_and(|status| status.contains("200"))
        }),
        "calls are taken again:\n{}",
        tail(&node.log_text(), 20)
    );
    let second = sipp_forwarded_callers(&node, &dir, &callers[1..]);
    wait_for_bridged_calls(2, &node);
    assert_eq!(prepaid::all_open_reservations(&dir, &accounts), 2);

    let ids = node.call_ids();
    assert_eq!(ids.len(), 2, "the refused INVITE started no call");
    common::calls::signal(&node, "TERM");
    assert!(wait_for_exit(&mut node, Duration::from_secs(10)).is_some_and(|s| s.success()));
    assert!(first.finish(Duration::from_secs(20)).success());
    assert!(second.finish(Duration::from_secs(20)).success());
    for id in &ids {
        let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{id}#1"), 1);
        assert_eq!(
            cdrs[0].disconnect_cause.as_deref(),
            Some("shutdown"),
            "{id}"
        );
    }
    assert_eq!(prepaid::all_open_reservations(&dir, &accounts), 0);
}
