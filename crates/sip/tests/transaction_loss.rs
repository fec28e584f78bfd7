//! Loss of each message in the INVITE and BYE exchanges, and the recovery (or timeout)
//! RFC 3261 prescribes, on the virtual clock (T1 = 500 ms).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::*;
use talktime_sip::dialog::DialogEvent;
use talktime_sip::transaction::{
    InviteClientState, InviteServerState, State, TimeoutKind, TransactionId,
};
use talktime_sip::{Message, Method};

fn at(values: &[f64]) -> Vec<Duration> {
    values.iter().map(|v| secs(*v)).collect()
}

/// INVITE, 180 at once, 200 at 1 s; returns (client, server) transactions.
fn call(pair: &mut Pair) -> (TransactionId, TransactionId) {
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    pair.run_until(secs(1.0));
    pair.uas_respond(server, 200);
    (invite, server)
}

fn established(pair: &Pair) -> bool {
    pair.uac.dialogs.len() == 1
        && pair.uas.dialogs.len() == 1
        && pair
            .uas
            .dialog_events
            .iter()
            .any(|e| matches!(e.value, DialogEvent::AckReceived { .. }))
}

#[test]
fn lost_invite_is_retransmitted_by_timer_a() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUas, 1, is_request(Method::Invite));
    let invite = pair.invite();
    assert!(pair.uas.new_requests(Method::Invite).is_empty());
    pair.run_until(secs(0.5));
    let server = pair.uas_transaction(Method::Invite);
    pair.run_until(secs(1.0));
    // The transaction's own 100 Trying, 200 ms after the INVITE got through.
    assert_eq!(pair.uas.sent_times(is_response(100)), at(&[0.7]));
    pair.uas_respond(server, 200);
    pair.run_until(secs(2.0));
    assert!(established(&pair));
    assert_eq!(pair.uac.responses(invite), vec![100, 200]);
    // The 100 stopped timer A: 0 and 0.5 only.
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Invite)),
        at(&[0.0, 0.5])
    );
}

#[test]
fn lost_100_trying_is_recovered_by_the_invite_retransmission() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUac, 1, is_response(100));
    let invite = pair.invite();
    pair.run_until(secs(0.4));
    assert_eq!(
        pair.uac.layer.state(invite),
        Some(State::InviteClient(InviteClientState::Calling))
    );
    pair.run_until(secs(5.0));
    // The retransmitted INVITE at 0.5 made the server resend its 100.
    assert_eq!(pair.uas.sent_times(is_response(100)), at(&[0.2, 0.5]));
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Invite)),
        at(&[0.0, 0.5])
    );
    assert_eq!(pair.uac.responses(invite), vec![100]);
    assert_eq!(pair.uas.new_requests(Method::Invite).len(), 1);
}

#[test]
fn lost_180_is_resent_when_the_invite_is_retransmitted() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUac, 1, is_response(180));
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    pair.run_until(secs(5.0));
    assert_eq!(pair.uas.sent_times(is_response(180)), at(&[0.0, 0.5]));
    assert_eq!(pair.uac.responses(invite), vec![180]);
    // An early dialog exists on the UAC side from the To-tagged 180.
    assert_eq!(pair.uac.dialogs.len(), 1);
}

#[test]
fn lost_200_is_retransmitted_by_the_uas_core() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUac, 1, is_response(200));
    let (invite, _) = call(&mut pair);
    pair.run_until(secs(10.0));
    assert_eq!(pair.uas.sent_times(is_response(200)), at(&[1.0, 1.5]));
    assert_eq!(pair.uac.responses(invite), vec![180, 200]);
    assert_eq!(pair.uac.sent_times(is_request(Method::Ack)), at(&[1.5]));
    assert!(established(&pair));
}

#[test]
fn lost_ack_makes_the_uas_retransmit_and_the_uac_re_ack() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUas, 1, is_request(Method::Ack));
    let (invite, _) = call(&mut pair);
    pair.run_until(secs(10.0));
    assert_eq!(pair.uas.sent_times(is_response(200)), at(&[1.0, 1.5]));
    // The Accepted client transaction passed the retransmitted 2xx up; the TU re-ACKed.
    assert_eq!(pair.uac.responses(invite), vec![180, 200, 200]);
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Ack)),
        at(&[1.0, 1.5])
    );
    // Both ACKs are identical but for the branch: same CSeq number as the INVITE.
    for ack in pair
        .uac
        .sent
        .iter()
        .filter(|m| is_request(Method::Ack)(&m.value))
    {
        let Message::Request(ack) = &ack.value else {
            unreachable!()
        };
        assert_eq!(ack.cseq().unwrap().sequence, 1);
    }
    assert!(established(&pair));
}

#[test]
fn every_ack_lost_2xx_retransmits_until_64_t1_then_bye() {
    let mut pair = Pair::udp();
    pair.drop_all(Direction::ToUas, is_request(Method::Ack));
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 200);
    pair.run();
    assert_eq!(
        pair.uas.sent_times(is_response(200)),
        at(&[0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
    );
    assert!(matches!(
        pair.uas.dialog_events.last().map(|e| (&e.value, e.at)),
        Some((DialogEvent::AckTimeout { .. }, t)) if t == secs(32.0)
    ));
    // §13.3.1.4: the UAS ends the session with a BYE, which the UAC answers 200.
    assert_eq!(pair.uas.sent_times(is_request(Method::Bye)), at(&[32.0]));
    assert_eq!(
        pair.uac.sent_times(is_response_to(200, Method::Bye)),
        at(&[32.0])
    );
    assert!(pair.uas.dialogs.is_empty());
    assert!(pair.uac.dialogs.is_empty());
    // The UAC saw the first 2xx and the retransmissions while its transaction lived.
    assert_eq!(pair.uac.responses(invite).len(), 11);
}

#[test]
fn lost_non_2xx_is_retransmitted_by_timer_g() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUac, 1, is_response(486));
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    pair.run_until(secs(1.0));
    pair.uas_respond(server, 486);
    pair.run_until(secs(2.0));
    assert_eq!(pair.uas.sent_times(is_response(486)), at(&[1.0, 1.5]));
    assert_eq!(pair.uac.responses(invite), vec![180, 486]);
    assert_eq!(pair.uac.sent_times(is_request(Method::Ack)), at(&[1.5]));
    assert_eq!(
        pair.uas.layer.state(server),
        Some(State::InviteServer(InviteServerState::Confirmed))
    );
    pair.run();
    assert_eq!(pair.uas.terminated_at(server), Some(secs(6.5)));
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(33.5)));
}

#[test]
fn lost_non_2xx_before_any_provisional_is_recovered_by_either_retransmission() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUac, 1, is_response(486));
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 486);
    pair.run_until(secs(1.0));
    // At 0.5 timer A resends the INVITE (answered with the 486) and timer G fires too.
    assert_eq!(pair.uas.sent_times(is_response(486)), at(&[0.0, 0.5, 0.5]));
    assert_eq!(pair.uac.responses(invite), vec![486]);
    assert_eq!(
        pair.uas.layer.state(server),
        Some(State::InviteServer(InviteServerState::Confirmed))
    );
}

#[test]
fn lost_ack_for_non_2xx_is_resent_when_the_response_is_retransmitted() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUas, 1, is_request(Method::Ack));
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    pair.uas_respond(server, 404);
    pair.run_until(secs(1.0));
    assert_eq!(pair.uas.sent_times(is_response(404)), at(&[0.0, 0.5]));
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Ack)),
        at(&[0.0, 0.5])
    );
    assert_eq!(pair.uac.responses(invite), vec![180, 404]);
    assert!(pair.uas.timeouts().is_empty());
    pair.run();
    assert_eq!(pair.uas.terminated_at(server), Some(secs(5.5)));
    assert!(pair.uas.timeouts().is_empty());
}

/// An established call at 1 s; returns the UAC's BYE transaction sent at 2 s.
fn hang_up(pair: &mut Pair) -> TransactionId {
    call(pair);
    pair.run_until(secs(2.0));
    assert!(established(pair));
    let id = pair.uac.dialogs.ids()[0].clone();
    let via = pair.uac.via();
    let bye = pair
        .uac
        .dialogs
        .get_mut(&id)
        .unwrap()
        .new_request(Method::Bye, &via);
    pair.uac.dialogs.remove(&id);
    let destination = pair.uas.peer();
    let transaction = pair.uac.send(bye, destination, pair.now);
    pair.drive();
    transaction
}

#[test]
fn lost_bye_is_retransmitted_by_timer_e() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUas, 1, is_request(Method::Bye));
    let bye = hang_up(&mut pair);
    pair.run_until(secs(3.0));
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Bye)),
        at(&[2.0, 2.5])
    );
    assert_eq!(pair.uac.responses(bye), vec![200]);
    assert!(pair.uas.dialogs.is_empty());
}

#[test]
fn lost_200_to_bye_is_resent_by_the_completed_server_transaction() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUac, 1, is_response_to(200, Method::Bye));
    let bye = hang_up(&mut pair);
    pair.run_until(secs(3.0));
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Bye)),
        at(&[2.0, 2.5])
    );
    assert_eq!(
        pair.uas.sent_times(is_response_to(200, Method::Bye)),
        at(&[2.0, 2.5])
    );
    assert_eq!(pair.uac.responses(bye), vec![200]);
    // The retransmitted BYE never reached the UAS TU (which would have answered 481).
    assert_eq!(pair.uas.new_requests(Method::Bye).len(), 1);
    assert_eq!(pair.uas.sent_count(is_response(481)), 0);
}

#[test]
fn bye_into_silence_times_out_with_timer_f() {
    let mut pair = Pair::udp();
    pair.drop_all(Direction::ToUas, is_request(Method::Bye));
    let bye = hang_up(&mut pair);
    pair.run();
    assert_eq!(
        pair.uac.timeouts(),
        vec![(bye, TimeoutKind::NoResponse, secs(34.0))]
    );
    assert_eq!(pair.uac.sent_count(is_request(Method::Bye)), 11);
}

#[test]
fn duplicated_messages_reach_the_tu_once() {
    let mut pair = Pair::udp();
    pair.duplicate_first(Direction::ToUas, is_request(Method::Invite));
    pair.duplicate_first(Direction::ToUac, is_response(180));
    pair.duplicate_first(Direction::ToUac, is_response(200));
    pair.duplicate_first(Direction::ToUas, is_request(Method::Ack));
    let (invite, server) = call(&mut pair);
    pair.run_until(secs(5.0));
    assert_eq!(pair.uas.new_requests(Method::Invite), vec![server]);
    // The duplicate 2xx is passed up (RFC 6026 Accepted) and ACKed again.
    assert_eq!(pair.uac.responses(invite), vec![180, 200, 200]);
    assert_eq!(pair.uac.sent_count(is_request(Method::Ack)), 2);
    assert!(established(&pair));
    // The duplicate INVITE in Proceeding was answered with nothing (no response yet).
    assert_eq!(pair.uas.sent_count(is_response(100)), 0);
}

#[test]
fn delayed_180_arriving_after_its_retransmission_is_ignored() {
    let mut pair = Pair::udp();
    pair.delay_first(Direction::ToUac, secs(2.0), is_response(180));
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    pair.run_until(secs(3.0));
    assert_eq!(pair.uac.received_count(is_response(180)), 2);
    assert_eq!(pair.uac.responses(invite), vec![180]);
}

#[test]
fn latency_shifts_but_does_not_break_the_exchange() {
    let mut pair = Pair::udp();
    pair.latency = Duration::from_millis(300);
    let invite = pair.invite();
    pair.run_until(secs(0.3));
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 200);
    pair.run_until(secs(5.0));
    // Timer A fired at 0.5 before the 200 (sent at 0.3) arrived at 0.6.
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Invite)),
        at(&[0.0, 0.5])
    );
    assert_eq!(pair.uac.responses(invite)[0], 200);
    assert!(established(&pair));
}
