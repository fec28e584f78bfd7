//! Money safety in operation (issue 12), against the real binary with SIPp peers: a peer that
//! stalls never stops the core, and every answered second is billed whatever ends the call.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::calls::{
    answering_carrier, call, only_attempt_cdrs, signal, sipp_forwarded_callers, start, start_with,
    wait_for_bridged_calls, wait_for_exit, wide_rtp_ports,
};
use common::prepaid::{self, ConfigFile};
use common::scenario::{BackgroundSipp, render};
use common::{assert_sipp_ok, scenario, tail};

/// 6.00 a minute in one-second blocks: 0.10 a second.
const PER_SECOND_RATES: &str = "1,USA,6.00,1.00,1,1,0\n";
const PIN: &str = "1234567890";

/// A TCP peer with a 2 KiB receive buffer that sends OPTIONS as fast as it can and never
/// reads a response; when the switch drops it, it connects again. Returns requests sent.
fn flood_without_reading(switch: SocketAddr, stop: &AtomicBool, sent: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .unwrap();
        socket.set_recv_buffer_size(2048).unwrap();
        if socket.connect(&switch.into()).is_err() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let mut stream: TcpStream = socket.into();
        stream
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let local = stream.local_addr().unwrap();
        while !stop.load(Ordering::Relaxed) {
            let n = sent.fetch_add(1, Ordering::Relaxed);
            let request = format!(
                "OPTIONS sip:ping@{switch} SIP/2.0\r\n\
                 Via: SIP/2.0/TCP {local};branch=z9hG4bK-flood-{n}\r\n\
                 From: <sip:flood@{local}>;tag=f{n}\r\nTo: <sip:ping@{switch}>\r\n\
                 Call-ID: flood-{n}@{local}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            if stream.write_all(request.as_bytes()).is_err() {
                break;
            }
        }
    }
}

#[test]
fn a_tcp_peer_that_never_reads_does_not_stop_the_core() {
    let dir = prepaid::data_dir("tcp-never-reads");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 500_000, 0);
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let (stop, sent, address) = (stop.clone(), sent.clone(), switch.sip);
        std::thread::spawn(move || flood_without_reading(address, &stop, &sent))
    };
    std::thread::sleep(Duration::from_secs(2));

    let output = call(
        &switch,
        &dir,
        "anonymous",
        &[
            (Duration::from_millis(2000), "1234567890#"),
            (Duration::from_millis(5600), "0015551234567#"),
        ],
        Duration::from_secs(40),
    );
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    assert_sipp_ok(&output, &switch, "a UDP call during the flood");
    let carrier_run = carrier.finish(Duration::from_secs(5));
    assert!(carrier_run.success(), "carrier: {}", carrier_run.describe());

    let cdr = only_attempt_cdrs(&switch, &dir).remove(0);
    let talk_ms = cdr.end_ms - cdr.answer_ms.expect("answered");
    assert!(
        (5_000..=5_100).contains(&talk_ms),
        "cut {talk_ms} ms after the answer; the limit is 5,000 ms"
    );
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("credit_exhausted"));
    assert_eq!(prepaid::balance(&dir, account), 0);
    let requests = sent.load(Ordering::Relaxed);
    assert!(requests > 2_000, "the peer sent only {requests} requests");
    let log = switch.log_text();
    assert!(
        log.contains("the peer does not read") || log.contains("a write took longer"),
        "the stalled peer was disconnected:\n{}",
        tail(&log, 30)
    );
}

#[test]
fn sigterm_drains_then_ends_bills_and_records_every_call_on_sqlite() {
    sigterm_drains_then_ends_bills_and_records_every_call(prepaid::Backend::Sqlite);
}

#[test]
fn sigterm_drains_then_ends_bills_and_records_every_call_on_postgresql() {
    sigterm_drains_then_ends_bills_and_records_every_call(prepaid::Backend::Postgres);
}

fn sigterm_drains_then_ends_bills_and_records_every_call(backend: prepaid::Backend) {
    const CALLS: usize = 50;
    let dir = prepaid::data_dir("sigterm");
    let database = backend.prepare(&dir, "sigterm");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let callers = prepaid::forwarded_callers(&dir, CALLS, 10_000_000);
    let accounts: Vec<i64> = callers.iter().map(|(account, _)| *account).collect();
    let carrier = BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "50"],
    );
    let ports = wide_rtp_ports();
    let mut switch = start_with(
        &dir,
        ConfigFile::new()
            .raw(&database)
            .raw("[shutdown]\ndrain_s = 3\n\n[rtp]\ninactivity_timeout_ms = 60000\n")
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
        &["--rtp-ports", &ports],
    );
    let caller_run = sipp_forwarded_callers(&switch, &dir, &callers);
    wait_for_bridged_calls(CALLS, &switch);

    let stopped_at = Instant::now();
    signal(&switch, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    let refused = common::sipp(
        10,
        &[
            "-sf",
            render("uac_expect_status.xml", &[("STATUS", "503")])
                .to_str()
                .unwrap(),
            "-s",
            "200",
            &switch.sip.to_string(),
            "-m",
            "1",
        ],
    );
    assert_sipp_ok(&refused, &switch, "a new call during the drain gets 503");

    let status = wait_for_exit(&mut switch, Duration::from_secs(15)).expect("the switch exits");
    let took = stopped_at.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(8),
        "calls ran the 3 s drain, then the switch exited: {took:?}"
    );
    let callers_done = caller_run.finish(Duration::from_secs(10));
    assert!(
        callers_done.success(),
        "every caller got BYE: {}",
        callers_done.describe()
    );
    let carriers_done = carrier.finish(Duration::from_secs(10));
    assert!(
        carriers_done.success(),
        "every carrier leg got BYE: {}",
        carriers_done.describe()
    );

    let log = switch.log_text();
    let ids = switch.call_ids();
    assert_eq!(ids.len(), CALLS, "{}", tail(&log, 30));
    for (id, account) in ids.iter().zip(&accounts) {
        let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{id}#1"), 1);
        assert_eq!(cdrs.len(), 1, "one CDR for {id}");
        let cdr = &cdrs[0];
        assert_eq!(cdr.disconnect_cause.as_deref(), Some("shutdown"));
        assert!(
            cdr.billed_seconds >= 3,
            "billed the drain: {} s",
            cdr.billed_seconds
        );
        let account = cdr.account_id.unwrap_or(*account);
        assert_eq!(
            prepaid::balance(&dir, account),
            10_000_000 - cdr.total_micros,
            "charged once"
        );
    }
    assert_eq!(prepaid::all_open_reservations(&dir, &accounts), 0);
}

#[test]
fn a_second_signal_ends_the_calls_at_once_still_billed() {
    const CALLS: usize = 5;
    let dir = prepaid::data_dir("second-signal");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let callers = prepaid::forwarded_callers(&dir, CALLS, 10_000_000);
    let accounts: Vec<i64> = callers.iter().map(|(account, _)| *account).collect();
    let carrier = BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", &CALLS.to_string()],
    );
    let mut switch = start(
        &dir,
        ConfigFile::new()
            .raw("[shutdown]\ndrain_s = 600\n\n[rtp]\ninactivity_timeout_ms = 60000\n")
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    let caller_run = sipp_forwarded_callers(&switch, &dir, &callers);
    wait_for_bridged_calls(CALLS, &switch);

    signal(&switch, "INT");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        switch.is_running(),
        "the first signal only starts the drain"
    );
    let second = Instant::now();
    signal(&switch, "TERM");
    let status = wait_for_exit(&mut switch, Duration::from_secs(10)).expect("the switch exits");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        second.elapsed() < Duration::from_secs(4),
        "{:?}",
        second.elapsed()
    );
    assert!(caller_run.finish(Duration::from_secs(10)).success());
    assert!(carrier.finish(Duration::from_secs(10)).success());
    for id in switch.call_ids() {
        let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{id}#1"), 1);
        assert_eq!(cdrs.len(), 1);
        assert_eq!(cdrs[0].disconnect_cause.as_deref(), Some("shutdown"));
        assert!(cdrs[0].total_micros > 0, "billed");
    }
    assert_eq!(prepaid::all_open_reservations(&dir, &accounts), 0);
}

/// Another process holds SQLite's write lock for longer than the switch's busy timeout (1 s
/// here) while a call ends: the settle fails, is retried with back-off, and is applied once the lock
/// is gone, without a restart.
#[test]
fn a_settle_the_database_refuses_is_applied_once_it_is_back() {
    let dir = prepaid::data_dir("settle-retry");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 500_000, 0);
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw("[database]\nurl = \"sqlite://talktime.sqlite3\"\nbusy_timeout_ms = 1000\n")
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    let (output, mut locker) = std::thread::scope(|scope| {
        let caller = scope.spawn(|| {
            call(
                &switch,
                &dir,
                "anonymous",
                &[
                    (Duration::from_millis(2000), "1234567890#"),
                    (Duration::from_millis(5600), "0015551234567#"),
                ],
                Duration::from_secs(40),
            )
        });
        // From the answer, the write lock for 9 s: the settle at the 5 s limit outwaits the
        // busy timeout and fails, and a retry goes through once the lock is gone.
        common::calls::wait_for_bridged_calls(1, &switch);
        let locker = prepaid::hold_the_write_lock(&dir, 9);
        (caller.join().unwrap(), locker)
    });
    assert_sipp_ok(&output, &switch, "the call is cut at its limit");
    assert!(
        locker.wait().unwrap().success(),
        "the lock was held and let go"
    );
    let cdr = {
        let reservation = format!("{}#1", common::calls::only_call_id(&switch));
        prepaid::wait_for_cdrs(&dir, &reservation, 1).remove(0)
    };
    assert_eq!(cdr.total_micros, 500_000);
    assert_eq!(
        prepaid::balance(&dir, account),
        0,
        "charged once the lock was gone"
    );
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
    let log = switch.log_text();
    assert!(
        log.contains("settlement failed; retrying"),
        "the first settle failed:\n{}",
        tail(&log, 20)
    );
    assert_eq!(log.matches("attempt settled").count(), 1);
    drop(carrier);
}

/// The ledger's database holds its write lock (another program's long transaction) when the
/// caller dials: the hold cannot be written, and the caller hears that the call failed, not
/// that the credit is short; the attempt's CDR says `system_error`. Dialled again once the
/// lock is gone, the call connects and is billed.
#[test]
fn an_authorization_the_database_cannot_write_is_a_failed_call_not_no_credit() {
    let dir = prepaid::data_dir("authorize-locked");
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 500_000, 0);
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw("[database]\nurl = \"sqlite://talktime.sqlite3\"\nbusy_timeout_ms = 1000\n")
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    let (output, mut locker) = std::thread::scope(|scope| {
        let caller = scope.spawn(|| {
            call(
                &switch,
                &dir,
                "anonymous",
                &[
                    (Duration::from_millis(2000), "1234567890#"),
                    (Duration::from_millis(5600), "0015551234567#"),
                    (Duration::from_millis(15000), "0015551234567#"),
                ],
                Duration::from_secs(45),
            )
        });
        // After the PIN is checked, the write lock for 7 s: the first destination's hold
        // outwaits the 1 s busy timeout and fails; the second comes after the lock.
        std::thread::sleep(Duration::from_millis(4000));
        let locker = prepaid::hold_the_write_lock(&dir, 7);
        (caller.join().unwrap(), locker)
    });
    assert_sipp_ok(&output, &switch, "the second attempt is cut at its limit");
    assert!(locker.wait().unwrap().success(), "the lock was held");
    let call_id = common::calls::only_call_id(&switch);
    let refused = prepaid::wait_for_cdrs(&dir, &format!("{call_id}#1"), 1).remove(0);
    let log = switch.log_text();
    assert_eq!(
        refused.disconnect_cause.as_deref(),
        Some("system_error"),
        "{refused:?}\n{}",
        tail(&log, 30)
    );
    assert_eq!(refused.total_micros, 0);
    assert!(
        log.contains("authorization failed"),
        "the store's error, not a timeout, refused it:\n{}",
        tail(&log, 30)
    );
    let heard: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("playing"))
        .collect();
    assert!(
        heard.iter().any(|line| line.contains("call_failed"))
            && !heard.iter().any(|line| line.contains("no_credit")),
        "{heard:#?}"
    );
    let answered = prepaid::wait_for_cdrs(&dir, &format!("{call_id}#2"), 1).remove(0);
    assert_eq!(answered.total_micros, 500_000, "{answered:?}");
    assert_eq!(prepaid::balance(&dir, account), 0);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
    drop(carrier);
}

/// A TCP forwarder to PostgreSQL that a test can cut: while it is down, every connection
/// through it is closed and new ones are dropped at once, as a restarting server does.
struct DatabaseLink {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl DatabaseLink {
    fn start(upstream: SocketAddr) -> DatabaseLink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let open = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (down_flag, streams) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if down_flag.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let mut tracked = streams.lock().unwrap();
                tracked.push(client.try_clone().unwrap());
                tracked.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        DatabaseLink { port, down, open }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// The ledger's PostgreSQL goes away while a call is up and comes back after the call ended:
/// the settle fails, is retried, and lands once the database is back, without a restart.
#[test]
fn a_settle_during_a_postgresql_outage_lands_when_it_is_back() {
    let dir = prepaid::data_dir("pg-outage");
    let url = prepaid::postgres_schema("outage");
    prepaid::use_database(&dir, &url);
    prepaid::tariff(&dir, "demo", PER_SECOND_RATES);
    let account = prepaid::card(&dir, PIN, 500_000, 0);
    let upstream: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let link = DatabaseLink::start(upstream);
    let switch_url = url.replacen(":5432/", &format!(":{}/", link.port), 1);
    assert_ne!(switch_url, url, "the test database is on 127.0.0.1:5432");
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw(&format!("[database]\nurl = \"{switch_url}\"\n"))
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    let output = std::thread::scope(|scope| {
        let caller = scope.spawn(|| {
            call(
                &switch,
                &dir,
                "anonymous",
                &[
                    (Duration::from_millis(2000), "1234567890#"),
                    (Duration::from_millis(5600), "0015551234567#"),
                ],
                Duration::from_secs(40),
            )
        });
        common::calls::wait_for_bridged_calls(1, &switch);
        link.cut();
        // The 5 s limit passes and the settle fails while the database is away.
        std::thread::sleep(Duration::from_secs(8));
        link.restore();
        caller.join().unwrap()
    });
    assert_sipp_ok(
        &output,
        &switch,
        "the call is cut at its limit during the outage",
    );
    let reservation = format!("{}#1", common::calls::only_call_id(&switch));
    let deadline = Instant::now() + Duration::from_secs(20);
    while prepaid::cdrs(&dir, &reservation).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    let cdrs = prepaid::cdrs(&dir, &reservation);
    assert_eq!(cdrs.len(), 1, "{}", tail(&switch.log_text(), 30));
    assert_eq!(cdrs[0].total_micros, 500_000);
    assert_eq!(prepaid::balance(&dir, account), 0);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
    let log = switch.log_text();
    assert!(
        log.contains("settlement failed; retrying"),
        "{}",
        tail(&log, 30)
    );
    drop(carrier);
}
