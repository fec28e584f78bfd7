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
