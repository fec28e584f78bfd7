//! Interop with SIPp against the real binary over loopback.

mod common;

use common::{Switch, assert_sipp_ok, scenario, sipp};

#[test]
fn options_over_udp_and_tcp_get_200() {
    let switch = Switch::start(&[]);
    let target = switch.sip.to_string();
    let options = scenario("options.xml");
    let options = options.to_str().expect("path");
    let output = sipp(20, &[&target, "-sf", options, "-m", "5", "-r", "50"]);
    assert_sipp_ok(&output, &switch, "OPTIONS over UDP");
    let output = sipp(20, &[&target, "-sf", options, "-m", "5", "-t", "t1"]);
    assert_sipp_ok(&output, &switch, "OPTIONS over TCP");
}

#[test]
fn sipp_calls_the_test_number_and_hangs_up_over_udp() {
    let switch = Switch::start(&["--test-number", "9999"]);
    let target = switch.sip.to_string();
    // SIPp's built-in UAC: INVITE, ACK, 300 ms pause, BYE; ten calls, five at a time.
    let output = sipp(
        30,
        &[
            &target, "-sn", "uac", "-s", "9999", "-m", "10", "-l", "5", "-d", "300",
        ],
    );
    assert_sipp_ok(&output, &switch, "test number over UDP");
}

#[test]
fn sipp_calls_the_test_number_and_hangs_up_over_tcp() {
    let switch = Switch::start(&["--test-number", "9999"]);
    let target = switch.sip.to_string();
    let output = sipp(
        30,
        &[
            &target, "-sn", "uac", "-s", "9999", "-m", "5", "-l", "5", "-d", "300", "-t", "t1",
        ],
    );
    assert_sipp_ok(&output, &switch, "test number over TCP");
}

#[test]
fn the_switch_hangs_up_the_test_call_after_its_tone() {
    let switch = Switch::start(&["--test-number", "9999"]);
    let target = switch.sip.to_string();
    let waits = scenario("uac_switch_hangs_up.xml");
    let output = sipp(
        30,
        &[
            &target,
            "-sf",
            waits.to_str().expect("path"),
            "-s",
            "9999",
            "-m",
            "3",
        ],
    );
    assert_sipp_ok(&output, &switch, "switch-side BYE over UDP");
}

#[test]
fn a_call_to_an_unknown_number_without_credentials_is_challenged() {
    let switch = Switch::start(&[]);
    let reply = common::send_raw(
        switch.sip,
        b"INVITE sip:12345@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-404\r\n\
From: <sip:a@127.0.0.1>;tag=x\r\nTo: <sip:12345@127.0.0.1>\r\nCall-ID: unknown-404\r\n\
CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        std::time::Duration::from_secs(3),
    );
    // The answer goes back to the source (rport behaviour), so it reaches our socket even
    // though the Via names port 9; the first answer may be 100 Trying. A number that is not
    // an access number is a SIP subscriber's call or nothing: without credentials it is
    // challenged, never placed.
    let reply = String::from_utf8_lossy(&reply.expect("an answer")).into_owned();
    assert!(
        reply.starts_with("SIP/2.0 407") || reply.starts_with("SIP/2.0 100"),
        "{reply}"
    );
}

/// IPv6 listen addresses: OPTIONS answered on [::1] over UDP, and SIPp places calls to the
/// test number with IPv6 signalling. (Our Via/Contact/SDP still advertise the first listen
/// address, here 127.0.0.1: one advertised address per switch for now.)
#[test]
fn the_switch_listens_and_calls_over_ipv6() {
    let port = common::free_port();
    let v6 = format!("[::1]:{port}");
    let switch = Switch::start(&["--sip-udp", &v6, "--sip-tcp", &v6]);
    let target: std::net::SocketAddr = v6.parse().unwrap();
    let status = common::options_ping(target, std::time::Duration::from_secs(2));
    assert_eq!(status.as_deref(), Some("SIP/2.0 200 OK"));
    let local_port = common::free_port().to_string();
    let output = std::process::Command::new("timeout")
        .args([
            "30",
            "sipp",
            "-sn",
            "uac",
            &v6,
            "-i",
            "::1",
            "-p",
            &local_port,
        ])
        .args(["-s", "9999", "-m", "2", "-nostdin"])
        .output()
        .unwrap();
    common::assert_sipp_ok(&output, &switch, "SIPp call over IPv6");
}

/// RFC 4028 and RFC 3264 §8.4 with SIPp: the switch grants the caller's session timer
/// (refresher = caller), answers a hold re-INVITE (a=sendonly) with a=recvonly and the resume
/// with a=sendrecv, and the call stays up until the caller's BYE.
#[test]
fn hold_and_resume_re_invites_are_answered_and_the_session_timer_granted() {
    let switch = Switch::start(&[]);
    let output = sipp(
        30,
        &[
            "-sf",
            scenario("caller_hold.xml").to_str().unwrap(),
            "-s",
            "100",
            &switch.sip.to_string(),
            "-m",
            "1",
        ],
    );
    assert_sipp_ok(&output, &switch, "hold and resume");
    let log = switch.log_text();
    assert!(log.contains("held=true"), "the hold was recognised");
    assert!(log.contains("held=false"), "and the resume");
}

/// RFC 4028 §10: a caller that does not refresh its session timer is hung up when the
/// interval passes (2 s here, allowed by `[sip] min_session_expires_s = 2`).
#[test]
fn an_unrefreshed_session_timer_ends_the_call() {
    let dir = std::env::temp_dir().join(format!("talktime-timer-{}", common::free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("talktime.toml");
    std::fs::write(&config, "[sip]\nmin_session_expires_s = 2\n").unwrap();
    let switch = Switch::start(&["--config", config.to_str().unwrap()]);
    let started = std::time::Instant::now();
    let output = sipp(
        30,
        &[
            "-sf",
            scenario("caller_timer_expires.xml").to_str().unwrap(),
            "-s",
            "100",
            &switch.sip.to_string(),
            "-m",
            "1",
        ],
    );
    assert_sipp_ok(&output, &switch, "the switch ends the expired session");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    assert!(switch.log_text().contains("session timer expired"));
}
