//! RFC 4475 §3.1.2 (invalid messages) and §3.3 (application-layer semantics) sent over UDP
//! to the running switch: each gets a 4xx/5xx answer or is dropped, never a crash, and the
//! switch still answers OPTIONS afterwards.

mod common;

use std::time::Duration;

use common::{Switch, options_ping, send_raw};

fn fixtures(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let directory = common::repo_root().join("crates/sip/tests/fixtures/rfc4475");
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&directory)
        .expect("fixture directory")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(prefix) && name.ends_with(".dat"))
        .map(|name| {
            let bytes = std::fs::read(directory.join(&name)).expect("fixture");
            (name, bytes)
        })
        .collect();
    found.sort();
    found
}

fn status_of(reply: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(reply);
    text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

#[test]
fn invalid_messages_get_an_error_or_are_dropped_and_the_switch_survives() {
    let mut switch = Switch::start(&[]);
    let messages = fixtures("3.1.2.");
    assert_eq!(messages.len(), 19, "RFC 4475 §3.1.2 has 19 messages");
    let mut rejected_with_400 = 0;
    for (name, bytes) in &messages {
        let reply = send_raw(switch.sip, bytes, Duration::from_millis(300));
        if let Some(status) = reply.as_deref().and_then(status_of) {
            assert!(
                (400..600).contains(&status) || status == 100,
                "{name}: answered {status}"
            );
            if status == 400 {
                rejected_with_400 += 1;
            }
        }
        assert!(switch.is_running(), "{name} crashed the switch");
    }
    assert!(
        rejected_with_400 >= 5,
        "expected most invalid requests to be answered 400, got {rejected_with_400}"
    );
    let answer = options_ping(switch.sip, Duration::from_secs(2));
    assert_eq!(answer.as_deref(), Some("SIP/2.0 200 OK"));
}

#[test]
fn application_layer_cases_get_the_rfc_answers() {
    let mut switch = Switch::start(&[]);
    let expectations = [
        // Missing Call-ID/CSeq etc.: 400.
        ("3.3.1_insuf.dat", &[400][..]),
        // Unknown URI scheme in the Request-URI: 416.
        ("3.3.2_unkscm.dat", &[416]),
        // Unknown Proxy-Require/Require extension: 420.
        ("3.3.5_bext01.dat", &[420]),
        // Max-Forwards 0 on an OPTIONS: an endpoint processes it as if positive (§3.3.11).
        ("3.3.11_zeromf.dat", &[200]),
    ];
    for (name, allowed) in expectations {
        let bytes = std::fs::read(
            common::repo_root()
                .join("crates/sip/tests/fixtures/rfc4475")
                .join(name),
        )
        .expect("fixture");
        let reply = send_raw(switch.sip, &bytes, Duration::from_millis(500));
        let status = reply.as_deref().and_then(status_of);
        assert!(
            status.is_some_and(|s| allowed.contains(&s)),
            "{name}: expected {allowed:?}, got {status:?}"
        );
    }
    for (name, bytes) in fixtures("3.3.") {
        let _ = send_raw(switch.sip, &bytes, Duration::from_millis(200));
        assert!(switch.is_running(), "{name} crashed the switch");
    }
    assert!(options_ping(switch.sip, Duration::from_secs(2)).is_some());
}

#[test]
fn an_invite_with_no_hops_left_gets_483() {
    let switch = Switch::start(&[]);
    let invite =
        b"INVITE sip:9999@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-mf0\r\n\
From: <sip:a@127.0.0.1>;tag=x\r\nTo: <sip:9999@127.0.0.1>\r\nCall-ID: mf0\r\n\
CSeq: 1 INVITE\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n";
    let reply = send_raw(switch.sip, invite, Duration::from_secs(2));
    assert_eq!(reply.as_deref().and_then(status_of), Some(483));
}
