//! RADIUS for gateways (issue 17) against the running switch, with FreeRADIUS's own client
//! (`radclient`, Debian's freeradius-utils, its dictionaries): the Cisco debit-card flow from
//! card authentication to the Accounting-Stop's charge, a replayed Stop, packets that must be
//! dropped, and many parallel authorizations on a card that can pay for one call.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::calls::start;
use common::prepaid::{self, ConfigFile};
use common::{free_port, tail};

const PIN: &str = "5550001111";
const SECRET: &str = "testing123";

struct Gateway {
    auth: u16,
    acct: u16,
}

/// The switch with RADIUS on two free ports, 127.0.0.1 its one client (Cisco style).
fn radius_switch(dir: &std::path::Path) -> (common::Switch, Gateway) {
    radius_switch_with(dir, "")
}

fn radius_switch_with(dir: &std::path::Path, extra: &str) -> (common::Switch, Gateway) {
    let gateway = Gateway {
        auth: free_port(),
        acct: free_port(),
    };
    let switch = start(
        dir,
        ConfigFile::new().raw(&format!(
            "[radius]\nauth_listen = \"127.0.0.1:{}\"\nacct_listen = \"127.0.0.1:{}\"\n{extra}\n\
             [[radius.clients]]\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\n\
             style = \"cisco\"\nname = \"gw1\"\n",
            gateway.auth, gateway.acct
        )),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !switch.log_text().contains("RADIUS listening") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            tail(&switch.log_text(), 20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (switch, gateway)
}

/// One radclient run (`auth` or `acct`) with these attributes; its printed output.
fn radclient(port: u16, command: &str, secret: &str, attributes: &str) -> String {
    let mut child = Command::new("timeout")
        .args(["20", "radclient", "-x", "-t", "1", "-r", "2"])
        .arg(format!("127.0.0.1:{port}"))
        .args([command, secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient (apt-get install freeradius-utils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(attributes.as_bytes())
        .unwrap();
    let mut output = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    let mut errors = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    child.wait().unwrap();
    output + &errors
}

/// The value radclient printed for an attribute of the reply (`h323-credit-time`), without
/// the Cisco `name=` prefix and quotes.
fn reply_value(output: &str, name: &str) -> Option<String> {
    let reply = output.split("Received ").nth(1)?;
    let line = reply
        .lines()
        .find(|line| line.trim_start().starts_with(&format!("{name} = ")))?;
    let value = line.split(" = ").nth(1)?.trim().trim_matches('"');
    Some(value.split_once('=').map_or(value, |(_, v)| v).to_owned())
}

fn card_auth() -> String {
    format!(
        "User-Name = \"{PIN}\", User-Password = \"{PIN}\", Calling-Station-Id = \"15551230000\", \
         Message-Authenticator = 0x00\n"
    )
}

fn destination_auth(conf: &str) -> String {
    format!(
        "User-Name = \"{PIN}\", User-Password = \"{PIN}\", Calling-Station-Id = \"15551230000\", \
         Called-Station-Id = \"0015551234567\", h323-conf-id = \"h323-conf-id={conf}\", \
         Message-Authenticator = 0x00\n"
    )
}

fn accounting(conf: &str, status: &str, extra: &str) -> String {
    format!(
        "Acct-Status-Type = {status}, Acct-Session-Id = \"{conf}\", User-Name = \"{PIN}\", \
         Called-Station-Id = \"0015551234567\", h323-conf-id = \"h323-conf-id={conf}\"{extra}\n"
    )
}

#[test]
fn the_debit_card_flow_charges_the_stopped_call_once() {
    let dir = prepaid::data_dir("radius-flow");
    // 0.60 a minute in a 30 s block then 6 s steps, 0.10 to connect.
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,30,6,0.10\n");
    let account = prepaid::card(&dir, PIN, 1_000_000, 0);
    let (switch, gateway) = radius_switch(&dir);

    let accepted = radclient(gateway.auth, "auth", SECRET, &card_auth());
    assert!(accepted.contains("Received Access-Accept"), "{accepted}");
    assert_eq!(
        reply_value(&accepted, "h323-return-code").as_deref(),
        Some("0")
    );
    assert_eq!(
        reply_value(&accepted, "h323-credit-amount").as_deref(),
        Some("1")
    );
    assert_eq!(
        reply_value(&accepted, "h323-currency").as_deref(),
        Some("USD")
    );

    let granted = radclient(gateway.auth, "auth", SECRET, &destination_auth("CONF-1"));
    assert!(granted.contains("Received Access-Accept"), "{granted}");
    // (1.00 - 0.10) at 0.01 a second: 90 s, a whole number of 6 s steps after the block.
    assert_eq!(
        reply_value(&granted, "h323-credit-time").as_deref(),
        Some("90")
    );
    assert_eq!(
        reply_value(&granted, "Session-Timeout").as_deref(),
        Some("90")
    );

    for (status, extra) in [
        ("Start", ""),
        ("Interim-Update", ", Acct-Session-Time = 20"),
        (
            "Stop",
            ", Acct-Session-Time = 42, h323-disconnect-cause = \"h323-disconnect-cause=10\"",
        ),
    ] {
        let answered = radclient(
            gateway.acct,
            "acct",
            SECRET,
            &accounting("CONF-1", status, extra),
        );
        assert!(
            answered.contains("Received Accounting-Response"),
            "{status}: {answered}"
        );
    }
    let cdrs = prepaid::wait_for_cdrs(&dir, "radius:gw1:CONF-1#1", 1);
    assert_eq!(cdrs.len(), 1, "{}", tail(&switch.log_text(), 30));
    let cdr = &cdrs[0];
    // What the product's rating says a 42 s call to this number costs, as a SIP call pays.
    let rated = Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args([
            "rate",
            "--tariff",
            "demo",
            "15551234567",
            "--seconds",
            "42",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let rated: serde_json::Value = serde_json::from_slice(&rated.stdout).unwrap();
    let expected =
        talktime_store::parse_micros(rated["charge"]["total"]["amount"].as_str().unwrap()).unwrap();
    assert_eq!(expected, 520_000);
    assert_eq!(cdr.billed_seconds, 42);
    assert_eq!(cdr.total_micros, expected);
    assert_eq!(cdr.access_number.as_deref(), Some("radius:gw1"));
    assert_eq!(cdr.q850_cause, Some(16));
    assert_eq!(prepaid::balance(&dir, account), 1_000_000 - expected);

    // The gateway sends the Stop again (a new identifier): answered, charged nothing more.
    let again = radclient(
        gateway.acct,
        "acct",
        SECRET,
        &accounting("CONF-1", "Stop", ", Acct-Session-Time = 42"),
    );
    assert!(again.contains("Received Accounting-Response"), "{again}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(prepaid::balance(&dir, account), 1_000_000 - expected);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);

    // A wrong PIN is an Access-Reject with Cisco's "invalid account" code.
    let wrong = radclient(
        gateway.auth,
        "auth",
        SECRET,
        "User-Name = \"9999999999\", User-Password = \"9999999999\", Message-Authenticator = 0x00\n",
    );
    assert!(wrong.contains("Received Access-Reject"), "{wrong}");
    assert_eq!(
        reply_value(&wrong, "h323-return-code").as_deref(),
        Some("1")
    );
}

/// The ledger cannot write the hold (another program holds SQLite's write lock past the
/// switch's 1 s busy timeout): the gateway is told "service unavailable" (8), not "zero
/// balance" (4), and the same request is granted once the lock is gone.
#[test]
fn a_hold_the_database_cannot_write_is_service_unavailable_not_zero_balance() {
    let dir = prepaid::data_dir("radius-locked");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,30,6,0.10\n");
    prepaid::card(&dir, PIN, 1_000_000, 0);
    let (switch, gateway) = radius_switch_with(
        &dir,
        "[database]\nurl = \"sqlite://talktime.sqlite3\"\nbusy_timeout_ms = 1000\n",
    );
    let mut locker = prepaid::hold_the_write_lock(&dir, 4);
    std::thread::sleep(Duration::from_millis(500));
    let refused = radclient(gateway.auth, "auth", SECRET, &destination_auth("CONF-L"));
    assert!(refused.contains("Received Access-Reject"), "{refused}");
    assert_eq!(
        reply_value(&refused, "h323-return-code").as_deref(),
        Some("8"),
        "{refused}\n{}",
        tail(&switch.log_text(), 20)
    );
    assert!(locker.wait().unwrap().success());
    let granted = radclient(gateway.auth, "auth", SECRET, &destination_auth("CONF-L2"));
    assert!(granted.contains("Received Access-Accept"), "{granted}");
}

#[test]
fn bad_packets_are_dropped_and_the_server_keeps_answering() {
    let dir = prepaid::data_dir("radius-drops");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    prepaid::card(&dir, PIN, 1_000_000, 0);
    let (switch, gateway) = radius_switch(&dir);

    let wrong_secret = radclient(gateway.auth, "auth", "not-the-secret", &card_auth());
    assert!(!wrong_secret.contains("Received"), "{wrong_secret}");
    let no_authenticator = radclient(
        gateway.auth,
        "auth",
        SECRET,
        &format!("User-Name = \"{PIN}\", User-Password = \"{PIN}\"\n"),
    );
    assert!(!no_authenticator.contains("Received"), "{no_authenticator}");
    let bad_accounting = radclient(
        gateway.acct,
        "acct",
        "not-the-secret",
        &accounting("X", "Start", ""),
    );
    assert!(!bad_accounting.contains("Received"), "{bad_accounting}");

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut truncated = vec![1u8, 7, 0, 200];
    truncated.extend_from_slice(&[0; 40]);
    let mut oversize = vec![1u8, 8, 0x10, 0x01];
    oversize.extend_from_slice(&[0; 5000]);
    let mut bad_attribute = vec![1u8, 9, 0, 24];
    bad_attribute.extend_from_slice(&[0; 16]);
    bad_attribute.extend_from_slice(&[1, 1, 0, 0]);
    for datagram in [&b"\x01\x02"[..], &truncated, &oversize, &bad_attribute] {
        socket
            .send_to(datagram, ("127.0.0.1", gateway.auth))
            .unwrap();
        let mut buffer = [0u8; 4096];
        assert!(socket.recv_from(&mut buffer).is_err(), "an answer to junk");
    }
    let still = radclient(gateway.auth, "auth", SECRET, &card_auth());
    assert!(still.contains("Received Access-Accept"), "{still}");
    assert!(switch.log_text().contains("RADIUS datagram dropped"));
}

#[test]
fn parallel_authorizations_on_a_card_that_pays_for_one_call_grant_credit_once() {
    let dir = prepaid::data_dir("radius-parallel");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, PIN, 300_000, 0);
    let (_switch, gateway) = radius_switch(&dir);
    // 100 destination authorizations, each its own call, sent 100 at once.
    let requests: String = (0..100)
        .map(|index| destination_auth(&format!("PAR-{index}")) + "\n")
        .collect();
    let file = dir.join("parallel.txt");
    std::fs::write(&file, requests).unwrap();
    let output = Command::new("timeout")
        .args([
            "60",
            "radclient",
            "-x",
            "-t",
            "3",
            "-r",
            "3",
            "-p",
            "100",
            "-f",
        ])
        .arg(&file)
        .arg(format!("127.0.0.1:{}", gateway.auth))
        .args(["auth", SECRET])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let accepts = text.matches("Received Access-Accept").count();
    let rejects = text.matches("Received Access-Reject").count();
    assert_eq!((accepts, rejects), (1, 99), "{}", tail(&text, 40));
    assert!(text.contains("h323-credit-time = \"h323-credit-time=30\""));
    assert_eq!(prepaid::open_reservations(&dir, account), 1);
}

/// A Stop that never comes (issue 17): the call is closed at its credit limit once the grace
/// has passed, billed from its Start to the limit.
#[test]
fn a_call_without_a_stop_is_closed_at_its_limit() {
    let dir = prepaid::data_dir("radius-no-stop");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    // 0.05: 5 s of credit.
    let account = prepaid::card(&dir, PIN, 50_000, 0);
    let (switch, gateway) = radius_switch_with(&dir, "stop_grace_s = 1\n");
    let granted = radclient(gateway.auth, "auth", SECRET, &destination_auth("LOST-1"));
    assert_eq!(
        reply_value(&granted, "h323-credit-time").as_deref(),
        Some("5")
    );
    let started = radclient(
        gateway.acct,
        "acct",
        SECRET,
        &accounting("LOST-1", "Start", ""),
    );
    assert!(
        started.contains("Received Accounting-Response"),
        "{started}"
    );
    let cdrs = {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let cdrs = prepaid::cdrs(&dir, "radius:gw1:LOST-1#1");
            if !cdrs.is_empty() || std::time::Instant::now() > deadline {
                break cdrs;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert_eq!(cdrs.len(), 1, "{}", tail(&switch.log_text(), 20));
    assert_eq!(cdrs[0].billed_seconds, 5);
    assert_eq!(cdrs[0].disconnect_cause.as_deref(), Some("radius_no_stop"));
    assert_eq!(prepaid::balance(&dir, account), 0);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
}

/// A switch killed with a RADIUS call up (issue 17 with issue 12's promise): the restarted
/// switch bills it from its Start to the last heartbeat, once; the gateway's Stop that comes
/// after the restart is answered and charges nothing more.
#[test]
fn a_started_radius_call_is_billed_by_the_restart_after_a_kill() {
    let dir = prepaid::data_dir("radius-kill");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, PIN, 1_000_000, 0);
    let (mut switch, gateway) = radius_switch(&dir);
    let granted = radclient(gateway.auth, "auth", SECRET, &destination_auth("KILL-1"));
    assert!(granted.contains("Received Access-Accept"), "{granted}");
    let started = radclient(
        gateway.acct,
        "acct",
        SECRET,
        &accounting("KILL-1", "Start", ""),
    );
    assert!(
        started.contains("Received Accounting-Response"),
        "{started}"
    );
    std::thread::sleep(Duration::from_secs(3));
    switch.child.kill().unwrap();
    switch.child.wait().unwrap();
    // The same configuration and addresses again.
    let config = dir.join("talktime.toml");
    let restarted = common::Switch::start_at(
        &dir,
        switch.sip.port(),
        &["--config", config.to_str().unwrap()],
    );
    let cdrs = {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let cdrs = prepaid::cdrs(&dir, "radius:gw1:KILL-1#1");
            if !cdrs.is_empty() || std::time::Instant::now() > deadline {
                break cdrs;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert_eq!(cdrs.len(), 1, "{}", tail(&restarted.log_text(), 30));
    assert_eq!(cdrs[0].disconnect_cause.as_deref(), Some("node_lost"));
    // Up about 3 s before the kill; billed to the last heartbeat (at most a second earlier).
    assert!((2..=4).contains(&cdrs[0].billed_seconds), "{:?}", cdrs[0]);
    let charged = 1_000_000 - prepaid::balance(&dir, account);
    assert_eq!(charged, cdrs[0].billed_seconds * 10_000);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
    // The RADIUS ports of the first run: wait for the restarted switch's.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !restarted.log_text().contains("RADIUS listening") {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let late = radclient(
        gateway.acct,
        "acct",
        SECRET,
        &accounting("KILL-1", "Stop", ", Acct-Session-Time = 30"),
    );
    assert!(late.contains("Received Accounting-Response"), "{late}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(1_000_000 - prepaid::balance(&dir, account), charged);
}
