//! What H.323 networks send through their SIP gateways (issue 17), against the running switch
//! with SIPp on both sides: a delayed-offer INVITE (no SDP) connected and billed, the caller's
//! number in Remote-Party-ID used for pinless authentication only from a gateway trusted for
//! it, and the gateway's Q.850 cause kept in the CDR.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::calls::start;
use common::pcap::dtmf_pcap;
use common::prepaid::{self, ConfigFile};
use common::scenario::{BackgroundSipp, render};
use common::{Switch, assert_sipp_ok, free_port, scenario, tail};

/// 127.0.0.1 is a gateway trusted for caller IDs; 127.0.0.2 may call but is not believed.
const PEERS: &str = "[[peers]]\naddress = \"127.0.0.1\"\naccess = true\ntrusted_caller_id = true\n\n\
                     [[peers]]\naddress = \"127.0.0.2\"\naccess = true\n";

/// One gateway call from `local_ip`: delayed offer, `rpid` in Remote-Party-ID, the DTMF
/// script, `hold` on the line, then BYE with Q.850 cause 31.
fn gateway_call(
    local_ip: &str,
    switch: &Switch,
    dir: &Path,
    rpid: &str,
    script: &[(Duration, &str)],
    hold: Duration,
) -> std::process::Output {
    let last = script.last().map_or(Duration::ZERO, |(at, digits)| {
        *at + common::pcap::digits_length(digits)
    });
    let total = last + Duration::from_millis(500);
    let pcap = dir.join(format!("gateway-{}.pcap", free_port()));
    dtmf_pcap(&pcap, script, total, 101).unwrap();
    let scenario = render(
        "caller_gateway.xml",
        &[
            ("RPID", rpid),
            ("PCAP", pcap.to_str().unwrap()),
            ("PCAP_MS", &total.as_millis().to_string()),
            ("HOLD_MS", &hold.as_millis().to_string()),
        ],
    );
    let media_port = common::sipp_media_port().to_string();
    common::sipp_from(
        local_ip,
        60,
        &[
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            "100",
            &switch.sip.to_string(),
            "-m",
            "1",
            "-mp",
            &media_port,
        ],
    )
}

fn carrier(calls: usize) -> BackgroundSipp {
    BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", &calls.to_string()],
    )
}

#[test]
fn a_delayed_offer_call_keys_its_pin_and_is_connected_and_billed() {
    let dir = prepaid::data_dir("gateway-delayed-offer");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, "5550003333", 1_000_000, 0);
    let carrier = carrier(1);
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw(PEERS)
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    let script = [
        (Duration::from_millis(2000), "5550003333#"),
        (Duration::from_millis(5600), "0015551234567#"),
    ];
    let output = gateway_call(
        "127.0.0.1",
        &switch,
        &dir,
        "15559990000",
        &script,
        Duration::from_secs(3),
    );
    assert_sipp_ok(&output, &switch, "a delayed-offer gateway call");
    assert!(carrier.finish(Duration::from_secs(10)).success());
    let log = switch.log_text();
    assert!(
        log.contains("delayed offer answered in the ACK"),
        "{}",
        tail(&log, 30)
    );
    let id = common::calls::only_call_id(&switch);
    let cdr = prepaid::wait_for_cdrs(&dir, &format!("{id}#1"), 1).remove(0);
    assert!(cdr.billed_seconds >= 1, "{cdr:?}");
    assert_eq!(
        prepaid::balance(&dir, account),
        1_000_000 - cdr.billed_seconds * 10_000
    );
    // The gateway's own cause for its BYE.
    assert_eq!(cdr.q850_cause, Some(31));
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("caller_hung_up"));
}

#[test]
fn remote_party_id_is_pinless_only_from_a_gateway_trusted_for_it() {
    let dir = prepaid::data_dir("gateway-rpid");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, "5550004444", 1_000_000, 0);
    prepaid::register_caller_id(&dir, account, "15551230000");
    let carrier = carrier(1);
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw(PEERS)
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    // A pinless caller keys only the destination.
    let script = [(Duration::from_millis(2500), "0015551234567#")];
    let trusted = gateway_call(
        "127.0.0.1",
        &switch,
        &dir,
        "15551230000",
        &script,
        Duration::from_secs(2),
    );
    assert_sipp_ok(&trusted, &switch, "pinless from the trusted gateway");
    // The same from 127.0.0.2: the number is not believed, the IVR asks for a PIN, the
    // destination keyed is no PIN, and no carrier is called.
    let untrusted = gateway_call(
        "127.0.0.2",
        &switch,
        &dir,
        "15551230000",
        &script,
        Duration::from_secs(2),
    );
    assert_sipp_ok(&untrusted, &switch, "PIN asked from the untrusted gateway");
    assert!(
        carrier.finish(Duration::from_secs(10)).success(),
        "one carrier call"
    );
    let ids = switch.call_ids();
    assert_eq!(ids.len(), 2);
    let pinless = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[0]), 1);
    assert!(pinless[0].billed_seconds >= 1, "{pinless:?}");
    assert!(
        prepaid::cdrs(&dir, &format!("{}#1", ids[1])).is_empty(),
        "no carrier attempt without the PIN:\n{}",
        tail(&switch.log_text(), 30)
    );
}

/// A carrier that wants a delayed offer (`delayed_offer = true`): the switch's INVITE carries
/// no SDP, the carrier's 200 offers, the ACK answers (the SIPp carrier checks both), and the
/// call is connected and billed as any other.
#[test]
fn a_carrier_wanting_a_delayed_offer_gets_its_answer_in_the_ack() {
    let dir = prepaid::data_dir("carrier-delayed-offer");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, "5550005555", 1_000_000, 0);
    let carrier = BackgroundSipp::uas(
        90,
        &scenario("carrier_delayed_offer.xml"),
        &["-rtp_echo", "-m", "1"],
    );
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw(PEERS)
            .carrier("delayed", &carrier.address())
            .raw("delayed_offer = true\n")
            .routes(&[("", &["delayed"])]),
    );
    let output = common::calls::call_and_hang_up(
        &switch,
        &dir,
        &[
            (Duration::from_millis(2000), "5550005555#"),
            (Duration::from_millis(5600), "0015551234567#"),
        ],
        Duration::from_secs(3),
    );
    assert_sipp_ok(&output, &switch, "a call through a delayed-offer carrier");
    assert!(
        carrier.finish(Duration::from_secs(10)).success(),
        "the carrier saw no SDP in the INVITE and an answer in the ACK"
    );
    let id = common::calls::only_call_id(&switch);
    let cdr = prepaid::wait_for_cdrs(&dir, &format!("{id}#1"), 1).remove(0);
    assert!(cdr.billed_seconds >= 1, "{cdr:?}");
    assert_eq!(
        prepaid::balance(&dir, account),
        1_000_000 - cdr.billed_seconds * 10_000
    );
}

/// G.729 end to end (issue 17): a G.729-only caller on the DID-forwarding number is answered
/// in G.729, offered to the carrier in G.729 (both SIPp sides check it), relayed untouched,
/// and billed.
#[test]
fn a_g729_only_caller_and_carrier_are_bridged_and_billed() {
    let dir = prepaid::data_dir("g729");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, "5550006666", 1_000_000, 0);
    prepaid::register_caller_id(&dir, account, "15551230000");
    prepaid::forward_to(&dir, account, "0015551234567");
    let carrier = BackgroundSipp::uas(90, &scenario("carrier_g729.xml"), &["-rtp_echo", "-m", "1"]);
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("g729", &carrier.address())
            .routes(&[("", &["g729"])]),
    );
    let caller = render(
        "caller_g729.xml",
        &[("CALLER", "15551230000"), ("HOLD_MS", "4000")],
    );
    let output = common::sipp_one_call(40, &caller, "200", &switch);
    assert_sipp_ok(&output, &switch, "a G.729 caller answered in G.729");
    assert!(
        carrier.finish(Duration::from_secs(10)).success(),
        "the carrier was offered G.729"
    );
    let id = common::calls::only_call_id(&switch);
    let cdr = prepaid::wait_for_cdrs(&dir, &format!("{id}#1"), 1).remove(0);
    assert!(cdr.billed_seconds >= 1, "{cdr:?}");
    assert_eq!(
        prepaid::balance(&dir, account),
        1_000_000 - cdr.billed_seconds * 10_000
    );
}
