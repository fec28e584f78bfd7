//! Every transaction timer (A–M and the automatic 100 Trying) on the virtual clock, with
//! the exact instants RFC 3261 §17 / RFC 6026 prescribe for T1 = 500 ms, T2 = 4 s, T4 = 5 s.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::*;
use talktime_sip::transaction::{
    InviteClientState, InviteServerState, NonInviteServerState, State, TimeoutKind, TimerConfig,
};
use talktime_sip::{Method, Transport};

fn at(values: &[f64]) -> Vec<Duration> {
    values.iter().map(|v| secs(*v)).collect()
}

#[test]
fn timer_a_doubles_and_timer_b_times_out_at_64_t1() {
    let mut pair = Pair::udp();
    pair.drop_all(Direction::ToUas, is_request(Method::Invite));
    let invite = pair.invite();
    pair.run();
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Invite)),
        at(&[0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5])
    );
    assert_eq!(
        pair.uac.timeouts(),
        vec![(invite, TimeoutKind::NoResponse, secs(32.0))]
    );
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(32.0)));
    assert!(pair.uac.layer.is_empty());
}

#[test]
fn timers_a_and_b_scale_with_a_configured_t1() {
    let config = TimerConfig {
        t1: Duration::from_millis(100),
        ..TimerConfig::default()
    };
    let mut pair = Pair::with_config(Transport::Udp, config);
    pair.drop_all(Direction::ToUas, is_request(Method::Invite));
    let invite = pair.invite();
    pair.run();
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Invite)),
        at(&[0.0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3])
    );
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(6.4)));
}

#[test]
fn tcp_invite_is_never_retransmitted_but_timer_b_still_runs() {
    let mut pair = Pair::tcp();
    pair.drop_all(Direction::ToUas, is_request(Method::Invite));
    let invite = pair.invite();
    pair.run();
    assert_eq!(pair.uac.sent_times(is_request(Method::Invite)), at(&[0.0]));
    assert_eq!(
        pair.uac.timeouts(),
        vec![(invite, TimeoutKind::NoResponse, secs(32.0))]
    );
}

#[test]
fn provisional_response_stops_timers_a_and_b() {
    let mut pair = Pair::udp();
    let invite = pair.invite();
    // The UAS TU stays silent: the transaction sends 100 Trying itself after 200 ms.
    pair.run_until(secs(120.0));
    assert_eq!(pair.uas.sent_times(is_response(100)), at(&[0.2]));
    assert_eq!(pair.uac.sent_times(is_request(Method::Invite)), at(&[0.0]));
    assert_eq!(pair.uac.responses(invite), vec![100]);
    assert!(pair.uac.timeouts().is_empty());
    assert_eq!(
        pair.uac.layer.state(invite),
        Some(State::InviteClient(InviteClientState::Proceeding))
    );
}

#[test]
fn automatic_100_trying_is_skipped_when_the_tu_answers_within_200_ms() {
    let mut pair = Pair::udp();
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.run_until(secs(0.1));
    pair.uas_respond(server, 180);
    pair.run_until(secs(10.0));
    assert_eq!(pair.uas.sent_count(is_response(100)), 0);
    assert_eq!(pair.uac.responses(invite), vec![180]);
}

#[test]
fn timer_d_absorbs_final_retransmissions_for_32_s_on_udp() {
    let mut pair = Pair::udp();
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 486);
    assert_eq!(
        pair.uac.layer.state(invite),
        Some(State::InviteClient(InviteClientState::Completed))
    );
    pair.run();
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(32.0)));
    assert_eq!(pair.uac.responses(invite), vec![486]);
}

#[test]
fn timer_d_is_zero_on_tcp() {
    let mut pair = Pair::tcp();
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 486);
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(0.0)));
    assert_eq!(pair.uac.sent_count(is_request(Method::Ack)), 1);
    // Timer I is zero too: the ACK ends the server transaction at once.
    assert_eq!(pair.uas.terminated_at(server), Some(secs(0.0)));
}

#[test]
fn timer_e_doubles_to_t2_and_timer_f_times_out() {
    let mut pair = Pair::udp();
    pair.drop_all(Direction::ToUas, is_request(Method::Options));
    let options = pair.uac_request(Method::Options, 1);
    pair.run();
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Options)),
        at(&[0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
    );
    assert_eq!(
        pair.uac.timeouts(),
        vec![(options, TimeoutKind::NoResponse, secs(32.0))]
    );
}

#[test]
fn timer_e_uses_t2_once_proceeding() {
    let mut pair = Pair::udp();
    let options = pair.uac_request(Method::Options, 1);
    let server = pair.uas_transaction(Method::Options);
    pair.uas_respond(server, 180);
    pair.run();
    // E fires at 0.5 as armed in Trying, then every T2 (§17.1.2.2).
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Options)),
        at(&[0.0, 0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5])
    );
    // The server answers each retransmission with its last provisional response.
    assert_eq!(pair.uas.sent_count(is_response(180)), 9);
    assert_eq!(pair.uac.responses(options), vec![180]);
    assert_eq!(
        pair.uac.timeouts(),
        vec![(options, TimeoutKind::NoResponse, secs(32.0))]
    );
}

#[test]
fn timer_k_is_t4_on_udp_and_zero_on_tcp() {
    for (pair, expected) in [(Pair::udp(), 5.0), (Pair::tcp(), 0.0)] {
        let mut pair = pair;
        let options = pair.uac_request(Method::Options, 1);
        let server = pair.uas_transaction(Method::Options);
        pair.uas_respond(server, 200);
        assert_eq!(
            pair.uac.layer.state(options).is_none(),
            expected == 0.0,
            "Completed on UDP, gone on TCP"
        );
        pair.run();
        assert_eq!(pair.uac.terminated_at(options), Some(secs(expected)));
    }
}

#[test]
fn timer_j_is_64_t1_on_udp_and_zero_on_tcp() {
    for (pair, expected) in [(Pair::udp(), 32.0), (Pair::tcp(), 0.0)] {
        let mut pair = pair;
        pair.uac_request(Method::Options, 1);
        let server = pair.uas_transaction(Method::Options);
        pair.uas_respond(server, 200);
        pair.run();
        assert_eq!(pair.uas.terminated_at(server), Some(secs(expected)));
    }
}

#[test]
fn non_invite_server_resends_its_final_response_while_completed() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUac, 1, is_response(200));
    let options = pair.uac_request(Method::Options, 1);
    let server = pair.uas_transaction(Method::Options);
    pair.uas_respond(server, 200);
    assert_eq!(
        pair.uas.layer.state(server),
        Some(State::NonInviteServer(NonInviteServerState::Completed))
    );
    // Completed keeps what it resends, not the request's headers (memory for Timer J).
    let kept = pair.uas.layer.request(server).expect("a live transaction");
    assert!(kept.headers.is_empty(), "{:?}", kept.headers);
    pair.run();
    assert_eq!(pair.uas.sent_times(is_response(200)), at(&[0.0, 0.5]));
    assert_eq!(pair.uac.responses(options), vec![200]);
    assert_eq!(pair.uac.terminated_at(options), Some(secs(5.5)));
    // One request reached the TU, despite two on the wire.
    assert_eq!(pair.uas.new_requests(Method::Options).len(), 1);
}

#[test]
fn timer_g_doubles_to_t2_and_timer_h_reports_the_missing_ack() {
    let mut pair = Pair::udp();
    pair.drop_all(Direction::ToUas, is_request(Method::Ack));
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 486);
    pair.run();
    assert_eq!(
        pair.uas.sent_times(is_response(486)),
        at(&[0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
    );
    assert_eq!(
        pair.uas.timeouts(),
        vec![(server, TimeoutKind::NoAck, secs(32.0))]
    );
    // The client ACKs every copy (while in Completed) but tells its TU only once.
    assert_eq!(pair.uac.sent_count(is_request(Method::Ack)), 11);
    assert_eq!(pair.uac.responses(invite), vec![486]);
}

#[test]
fn timer_g_is_off_on_tcp_but_h_still_runs() {
    let mut pair = Pair::tcp();
    pair.drop_all(Direction::ToUas, is_request(Method::Ack));
    pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 486);
    pair.run();
    assert_eq!(pair.uas.sent_times(is_response(486)), at(&[0.0]));
    assert_eq!(
        pair.uas.timeouts(),
        vec![(server, TimeoutKind::NoAck, secs(32.0))]
    );
}

#[test]
fn timer_i_absorbs_acks_for_t4_after_confirmation() {
    let mut pair = Pair::udp();
    pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 486);
    assert_eq!(
        pair.uas.layer.state(server),
        Some(State::InviteServer(InviteServerState::Confirmed))
    );
    pair.run();
    assert_eq!(pair.uas.terminated_at(server), Some(secs(5.0)));
    assert_eq!(pair.uas.sent_count(is_response(486)), 1);
    // The ACK of a non-2xx stays inside the transaction.
    assert!(pair.uas.acks().is_empty());
}

#[test]
fn timer_l_keeps_the_accepted_server_transaction_for_64_t1() {
    let mut pair = Pair::udp();
    // Lose the 2xx and its core retransmissions for a while, so the INVITE is retransmitted
    // into the Accepted state.
    pair.drop_matching(Direction::ToUac, 3, is_response(200));
    pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 200);
    assert_eq!(
        pair.uas.layer.state(server),
        Some(State::InviteServer(InviteServerState::Accepted))
    );
    pair.run();
    assert_eq!(pair.uas.terminated_at(server), Some(secs(32.0)));
    // Retransmitted INVITEs were absorbed: one request for the TU.
    assert!(pair.uac.sent_count(is_request(Method::Invite)) > 1);
    assert_eq!(pair.uas.new_requests(Method::Invite).len(), 1);
}

#[test]
fn timer_m_keeps_the_accepted_client_transaction_for_64_t1() {
    let mut pair = Pair::udp();
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.run_until(secs(2.0));
    pair.uas_respond(server, 200);
    assert_eq!(
        pair.uac.layer.state(invite),
        Some(State::InviteClient(InviteClientState::Accepted))
    );
    pair.run();
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(34.0)));
}

#[test]
fn tcp_accepted_states_still_last_64_t1() {
    let mut pair = Pair::tcp();
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 200);
    pair.run();
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(32.0)));
    assert_eq!(pair.uas.terminated_at(server), Some(secs(32.0)));
    // No 2xx retransmission over a reliable transport.
    assert_eq!(pair.uas.sent_count(is_response(200)), 1);
}
