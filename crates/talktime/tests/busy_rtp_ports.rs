//! RTP ports another program holds (a softphone, another media server on the same box): the
//! switch binds a call's ports before it answers, and when one is taken it sets that port
//! aside and answers on others. Before, the call that drew such a port was ended.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::calls::{sipp_forwarded_callers, start_with, wait_for_bridged_calls, wait_for_exit};
use common::prepaid::{self, ConfigFile};
use common::scenario::BackgroundSipp;
use common::{scenario, tail};

#[test]
fn a_call_whose_ports_another_program_holds_is_answered_on_others() {
    let dir = prepaid::data_dir("busy-rtp-ports");
    prepaid::tariff(&dir, "demo", "1,USA,6.00,1.00,1,1,0\n");
    let callers = prepaid::forwarded_callers(&dir, 1, 100_000_000);
    let accounts: Vec<i64> = callers.iter().map(|(account, _)| *account).collect();
    let carrier = BackgroundSipp::uas(120, &scenario("carrier_answer.xml"), &["-m", "1"]);
    // Four port pairs, two of them held by "another program": whatever pair the switch draws
    // first, a call's two pairs include a held one; it takes at most two more tries.
    let window = common::rtp_window(8);
    let first: u16 = window.split('-').next().unwrap().parse().unwrap();
    let _held: Vec<std::net::UdpSocket> = [first, first + 4]
        .iter()
        .map(|port| std::net::UdpSocket::bind(("0.0.0.0", *port)).unwrap())
        .collect();
    let config = ConfigFile::new()
        .ivr("announce_balance = false")
        .ivr("announce_talk_time = false")
        .raw("[rtp]\ninactivity_timeout_ms = 120000\n\n[shutdown]\ndrain_s = 0\n")
        .carrier("answer", &carrier.address())
        .routes(&[("", &["answer"])]);
    let mut switch = start_with(&dir, config, &["--rtp-ports", &window]);

    let call = sipp_forwarded_callers(&switch, &dir, &callers);
    wait_for_bridged_calls(1, &switch);
    let log = switch.log_text();
    assert!(
        log.contains("an RTP port is held by another program"),
        "{}",
        tail(&log, 30)
    );
    assert!(!log.contains("could not be opened; ending it"));

    let ids = switch.call_ids();
    common::calls::signal(&switch, "TERM");
    assert!(wait_for_exit(&mut switch, Duration::from_secs(10)).is_some_and(|s| s.success()));
    assert!(call.finish(Duration::from_secs(20)).success());
    assert_eq!(ids.len(), 1);
    let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[0]), 1);
    assert_eq!(cdrs[0].sip_code, Some(200), "{:?}", cdrs[0]);
    assert_eq!(prepaid::all_open_reservations(&dir, &accounts), 0);
}
