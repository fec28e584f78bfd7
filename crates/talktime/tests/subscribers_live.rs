//! SIP subscribers through the running binary (issue 16), SIPp as the phone:
//! - REGISTER is challenged (401, digest with qop=auth) and accepted with the password; a
//!   wrong password and an unknown username are refused (403); a REGISTER replayed with the
//!   same nonce and count is refused (403) though its digest is right;
//! - an INVITE to a number that is not an access number without credentials is refused with
//!   a challenge (407); answered, the call goes straight to the carrier (no IVR), presents
//!   the subscriber's caller ID and is billed to its account.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::calls::{answering_carrier, start};
use common::prepaid::{self, ConfigFile};
use common::scenario::render;
use common::{Switch, assert_sipp_ok, sipp, tail};
use talktime_sip::auth::{Challenge, Credentials};

const PASSWORD: &str = "correct-horse-9";

fn add_subscriber(dir: &Path, account: i64, username: &str, caller_id: &str) {
    let file = dir.join(format!("{username}.password"));
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args([
            "subscribers",
            "add",
            "--account",
            &account.to_string(),
            username,
        ])
        .arg("--password-file")
        .arg(&file)
        .args(["--caller-id", caller_id, "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn register(switch: &Switch, username: &str, password: &str, last: &str) -> std::process::Output {
    let scenario = render("subscriber_register.xml", &[("FINAL", last)]);
    sipp(
        20,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            username,
            "-au",
            username,
            "-ap",
            password,
            "-m",
            "1",
            &switch.sip.to_string(),
        ],
    )
}

fn register_request(switch: &Switch, local: &UdpSocket, cseq: u32, authorization: &str) -> String {
    let local = local.local_addr().unwrap();
    format!(
        "REGISTER sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-replay-{cseq}\r\n\
         From: <sip:alice@{sip}>;tag=replay\r\nTo: <sip:alice@{sip}>\r\n\
         Call-ID: replay-test\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:alice@{local}>\r\n\
         Expires: 600\r\nMax-Forwards: 70\r\n{authorization}Content-Length: 0\r\n\r\n",
        sip = switch.sip,
    )
}

fn exchange(socket: &UdpSocket, switch: &Switch, request: &str) -> String {
    socket.send_to(request.as_bytes(), switch.sip).unwrap();
    let mut buffer = vec![0u8; 65536];
    let (length, _) = socket.recv_from(&mut buffer).unwrap();
    String::from_utf8_lossy(&buffer[..length]).into_owned()
}

#[test]
fn registration_is_challenged_and_wrong_passwords_and_replays_are_refused() {
    let dir = prepaid::data_dir("subscribers-register");
    prepaid::tariff(&dir, "demo", "44,UK,1.20,0.50,1,1,0\n");
    let account = prepaid::card(&dir, "1234567890", 10_000_000, 0);
    add_subscriber(&dir, account, "alice", "15557654321");
    let switch = start(&dir, ConfigFile::new());

    let accepted = register(&switch, "alice", PASSWORD, "200");
    assert_sipp_ok(&accepted, &switch, "challenged, then registered");
    let wrong = register(&switch, "alice", "not-the-password", "403");
    assert_sipp_ok(&wrong, &switch, "a wrong password is refused");
    let unknown = register(&switch, "mallory", PASSWORD, "403");
    assert_sipp_ok(&unknown, &switch, "an unknown username is refused");

    // A REGISTER answered correctly, then sent again as is (same nonce, same count).
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let challenged = exchange(&socket, &switch, &register_request(&switch, &socket, 1, ""));
    assert!(challenged.starts_with("SIP/2.0 401"), "{challenged}");
    let header = challenged
        .lines()
        .find_map(|line| line.strip_prefix("WWW-Authenticate: "))
        .unwrap();
    let challenge = Challenge::parse(header.trim()).unwrap();
    assert!(challenge.offers_qop_auth(), "{header}");
    let uri = format!("sip:{}", switch.sip);
    let credentials = Credentials::answer(
        &challenge, "alice", PASSWORD, "REGISTER", &uri, "0a4f113b", 1,
    )
    .unwrap();
    let authorization = format!("Authorization: {}\r\n", credentials.header_value());
    let first = exchange(
        &socket,
        &switch,
        &register_request(&switch, &socket, 2, &authorization),
    );
    assert!(first.starts_with("SIP/2.0 200"), "{first}");
    let replayed = exchange(
        &socket,
        &switch,
        &register_request(&switch, &socket, 3, &authorization),
    );
    assert!(
        replayed.starts_with("SIP/2.0 403"),
        "a replayed nonce and count: {replayed}"
    );
    // The operator's API: a subscriber made with a password the switch chose, registered
    // with it, a second one by that name refused, then disabled and refused.
    let path = format!("/api/accounts/{account}/subscribers");
    let (status, body) = common::admin_request(&switch, "POST", &path, r#"{"username": "bob"}"#);
    assert_eq!(status, 201, "{body}");
    let made: serde_json::Value = serde_json::from_str(&body).unwrap();
    let password = made["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 16);
    let bob = register(&switch, "bob", &password, "200");
    assert_sipp_ok(&bob, &switch, "a subscriber made over the API registers");
    let (status, body) = common::admin_request(&switch, "POST", &path, r#"{"username": "bob"}"#);
    assert_eq!(status, 409, "{body}");
    let (status, body) = common::admin_request(&switch, "GET", &path, "");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"bob\"") && body.contains("\"alice\"") && !body.contains(&password),
        "{body}"
    );
    let (status, body) = common::admin_request(
        &switch,
        "PUT",
        "/api/subscribers/bob/status",
        r#"{"active": false}"#,
    );
    assert_eq!(status, 204, "{body}");
    let disabled = register(&switch, "bob", &password, "403");
    assert_sipp_ok(&disabled, &switch, "a disabled subscriber is refused");

    let log = switch.log_text();
    assert!(log.contains("subscriber registered"), "{}", tail(&log, 30));
    assert!(!log.contains(PASSWORD), "the password is never logged");
}

#[test]
fn a_subscriber_call_is_challenged_then_billed_to_its_account_without_the_ivr() {
    let dir = prepaid::data_dir("subscribers-call");
    prepaid::tariff(&dir, "demo", "44,UK,1.20,0.50,1,1,0\n");
    let account = prepaid::card(&dir, "1234567890", 10_000_000, 0);
    add_subscriber(&dir, account, "alice", "15557654321");
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("uk", &carrier.address())
            .routes(&[("44", &["uk"])]),
    );

    let refused = render("uac_expect_status.xml", &[("STATUS", "407")]);
    let unauthenticated = sipp(
        20,
        &[
            "-sf",
            refused.to_str().unwrap(),
            "-s",
            "00442071234567",
            "-m",
            "1",
            &switch.sip.to_string(),
        ],
    );
    assert_sipp_ok(
        &unauthenticated,
        &switch,
        "an INVITE without credentials to a number that is not an access number",
    );
    assert!(switch.call_ids().is_empty(), "no call was started");

    let scenario = render("subscriber_call.xml", &[("HOLD", "3000")]);
    let call = sipp(
        30,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            "00442071234567",
            "-au",
            "alice",
            "-ap",
            PASSWORD,
            "-m",
            "1",
            &switch.sip.to_string(),
        ],
    );
    assert_sipp_ok(&call, &switch, "challenged, then connected to the carrier");
    let carrier_run = carrier.finish(Duration::from_secs(10));
    assert!(carrier_run.success(), "{}", carrier_run.describe());

    let ids = switch.call_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[0]), 1);
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr.destination.expose(), "+442071234567");
    assert_eq!(cdr.access_number.as_deref(), Some("sip:alice"));
    assert_eq!(
        cdr.caller_id.as_ref().map(|id| id.expose().as_str()),
        Some("15557654321")
    );
    let talk_ms = cdr.end_ms - cdr.answer_ms.expect("answered");
    assert!((2_500..=4_500).contains(&talk_ms), "{cdr:?}");
    assert_eq!(
        cdr.total_micros,
        cdr.billed_seconds * 20_000,
        "1.20 a minute"
    );
    assert_eq!(
        prepaid::balance(&dir, account),
        10_000_000 - cdr.total_micros
    );
    let log = switch.log_text();
    assert!(
        !log.contains("\"welcome\"") && !log.contains("enter_destination"),
        "no IVR prompt: {}",
        tail(&log, 30)
    );
}
