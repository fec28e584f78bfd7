//! CANCEL (RFC 3261 §9): before any response, after 180, racing a 200, and the ACK for the
//! 487 that answers our CANCEL.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::*;
use talktime_sip::transaction::{Event, InviteServerState, State, TimeoutKind, TransactionError};
use talktime_sip::{Message, Method, Request};

fn at(values: &[f64]) -> Vec<Duration> {
    values.iter().map(|v| secs(*v)).collect()
}

fn sent_request(pair: &Pair, method: Method) -> Request {
    pair.uac
        .sent
        .iter()
        .find_map(|m| match &m.value {
            Message::Request(r) if r.method == method => Some(r.clone()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn cancel_before_any_response_waits_for_the_first_provisional() {
    let mut pair = Pair::udp();
    let invite = pair.invite();
    let cancel = pair.uac_cancel(invite);
    // §9.1: no CANCEL on the wire until a provisional response arrived.
    assert_eq!(pair.uac.sent_count(is_request(Method::Cancel)), 0);
    assert_eq!(pair.uac.layer.state(cancel), None);
    // Calling it again returns the same CANCEL.
    assert_eq!(pair.uac.layer.send_cancel(invite, pair.now), Ok(cancel));
    pair.run_until(secs(1.0));
    // The UAS transaction's automatic 100 at 0.2 released the CANCEL.
    assert_eq!(pair.uac.sent_times(is_request(Method::Cancel)), at(&[0.2]));
    assert_eq!(pair.uac.responses(cancel), vec![200]);
    assert_eq!(pair.uac.responses(invite), vec![100, 487]);
    assert_eq!(pair.uac.sent_times(is_request(Method::Ack)), at(&[0.2]));
    assert_eq!(pair.uas.cancels_received().len(), 1);
}

#[test]
fn cancel_held_back_is_dropped_when_a_final_response_comes_first() {
    let mut pair = Pair::udp();
    let invite = pair.invite();
    let cancel = pair.uac_cancel(invite);
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 486);
    pair.run();
    assert_eq!(pair.uac.sent_count(is_request(Method::Cancel)), 0);
    assert_eq!(pair.uac.terminated_at(cancel), Some(secs(0.0)));
    assert_eq!(pair.uac.responses(invite), vec![486]);
}

#[test]
fn cancel_after_180_gets_200_and_the_invite_487() {
    let mut pair = Pair::udp();
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    let ringing = pair.uas_respond(server, 180);
    pair.run_until(secs(3.0));
    let cancel = pair.uac_cancel(invite);
    assert_eq!(pair.uac.sent_times(is_request(Method::Cancel)), at(&[3.0]));
    let (cancel_server, cancelled) = pair.uas.cancels_received()[0];
    assert_eq!(cancelled, server);
    assert_ne!(cancel_server, server);
    assert_eq!(pair.uac.responses(cancel), vec![200]);
    assert_eq!(pair.uac.responses(invite), vec![180, 487]);

    // The CANCEL copies the INVITE's Request-URI, Call-ID, From, To, CSeq number and
    // top Via (same branch) and has CSeq method CANCEL.
    let sent_invite = sent_request(&pair, Method::Invite);
    let sent_cancel = sent_request(&pair, Method::Cancel);
    assert_eq!(sent_cancel.uri, sent_invite.uri);
    for header in ["Call-ID", "From", "To"] {
        assert_eq!(
            sent_cancel.headers.get(header),
            sent_invite.headers.get(header)
        );
    }
    assert_eq!(
        sent_cancel.top_via().unwrap(),
        sent_invite.top_via().unwrap()
    );
    assert_eq!(sent_cancel.cseq().unwrap().sequence, 1);
    assert_eq!(sent_cancel.cseq().unwrap().method, Method::Cancel);

    // The 487 carries the To tag of the 180.
    let terminated = pair
        .uas
        .sent
        .iter()
        .find_map(|m| match &m.value {
            Message::Response(r) if r.status == 487 => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(terminated.to().unwrap().tag(), ringing.to().unwrap().tag());
    let cancel_ok = pair
        .uas
        .sent
        .iter()
        .find_map(|m| match &m.value {
            Message::Response(r) if r.status == 200 => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(cancel_ok.cseq().unwrap().method, Method::Cancel);
    assert_eq!(cancel_ok.to().unwrap().tag(), ringing.to().unwrap().tag());
    assert_eq!(
        pair.uas.layer.state(server),
        Some(State::InviteServer(InviteServerState::Confirmed))
    );
}

/// The bug fixed by siphon-project/siphon-sip PR #214: a B2BUA tore its leg down when it
/// sent CANCEL, so the 487 that followed matched nothing and was never ACKed; the UAS
/// retransmitted it for 32 s. Our INVITE client transaction lives on and ACKs it.
#[test]
fn siphon_214_the_487_after_our_cancel_is_acked() {
    let mut pair = Pair::udp();
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    pair.run_until(secs(1.0));
    pair.uac_cancel(invite);
    pair.run();

    let acks: Vec<Request> = pair
        .uac
        .sent
        .iter()
        .filter_map(|m| match &m.value {
            Message::Request(r) if r.method == Method::Ack => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 1);
    let invite_sent = sent_request(&pair, Method::Invite);
    // §17.1.1.3: same branch as the INVITE (it is part of that transaction), CSeq 1 ACK.
    assert_eq!(acks[0].top_via().unwrap(), invite_sent.top_via().unwrap());
    assert_eq!(acks[0].cseq().unwrap().sequence, 1);
    // The UAS got its ACK: one 487 on the wire, no timer H timeout, the ACK absorbed by
    // the server transaction rather than handed to the TU.
    assert_eq!(pair.uas.sent_times(is_response(487)), at(&[1.0]));
    assert!(pair.uas.timeouts().is_empty());
    assert!(pair.uas.acks().is_empty());
    assert_eq!(pair.uas.terminated_at(server), Some(secs(6.0)));
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(33.0)));
}

#[test]
fn lost_487_is_retransmitted_and_still_acked() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUac, 1, is_response(487));
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    pair.uac_cancel(invite);
    pair.run();
    assert_eq!(pair.uas.sent_times(is_response(487)), at(&[0.0, 0.5]));
    assert_eq!(pair.uac.sent_times(is_request(Method::Ack)), at(&[0.5]));
    assert!(pair.uas.timeouts().is_empty());
}

#[test]
fn cancel_racing_a_200_leaves_an_established_dialog_to_be_byed() {
    let mut pair = Pair::udp();
    pair.latency = Duration::from_millis(50);
    let invite = pair.invite();
    pair.run_until(secs(0.05));
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    pair.run_until(secs(1.0));
    // The UAC cancels at 1.0 s; the UAS answers 200 at 1.02 s, before the CANCEL lands.
    let cancel = pair.uac_cancel(invite);
    pair.run_until(secs(1.02));
    pair.uas_respond(server, 200);
    pair.run_until(secs(2.0));

    // The CANCEL matched an answered INVITE: 200 to the CANCEL, no CancelReceived.
    assert!(pair.uas.cancels_received().is_empty());
    assert_eq!(pair.uac.responses(cancel), vec![200]);
    // The INVITE got its 200 and was ACKed; no 487.
    assert_eq!(pair.uac.responses(invite), vec![180, 200]);
    assert_eq!(pair.uas.sent_count(is_response(487)), 0);
    assert_eq!(pair.uac.sent_count(is_request(Method::Ack)), 1);
    assert_eq!(pair.uas.acks().len(), 1);
    assert_eq!(pair.uac.dialogs.len(), 1);

    // The TU wanted no call: it ends the dialog with BYE.
    let id = pair.uac.dialogs.ids()[0].clone();
    let via = pair.uac.via();
    let bye = pair
        .uac
        .dialogs
        .get_mut(&id)
        .unwrap()
        .new_request(Method::Bye, &via);
    assert_eq!(bye.cseq().unwrap().sequence, 2);
    let destination = pair.uas.peer();
    let bye_transaction = pair.uac.send(bye, destination, pair.now);
    pair.run_until(secs(3.0));
    assert_eq!(pair.uac.responses(bye_transaction), vec![200]);
    assert!(pair.uas.dialogs.is_empty());
}

#[test]
fn unanswered_invite_is_destroyed_64_t1_after_our_cancel() {
    let mut pair = Pair::udp();
    // An RFC 2543 UAS that answers the CANCEL but never sends 487.
    pair.uas.auto_answer_cancel = false;
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    pair.run_until(secs(2.0));
    let cancel = pair.uac_cancel(invite);
    let (cancel_server, _) = pair.uas.cancels_received()[0];
    let ok = pair.uas.response_for(cancel_server, 200);
    pair.uas
        .layer
        .send_response(cancel_server, ok, pair.now)
        .unwrap();
    pair.run_until(secs(40.0));
    assert_eq!(pair.uac.responses(cancel), vec![200]);
    assert!(
        pair.uac
            .timeouts()
            .contains(&(invite, TimeoutKind::CancelUnanswered, secs(34.0)))
    );
}

#[test]
fn cancel_for_an_unknown_transaction_gets_481() {
    let mut pair = Pair::udp();
    let request = pair
        .uac
        .new_request(Method::Cancel, &pair.uas, 1, "nothing@192.0.2.1");
    let destination = pair.uas.peer();
    let cancel = pair.uac.send(request, destination, pair.now);
    pair.drive();
    assert_eq!(pair.uac.responses(cancel), vec![481]);
    assert!(pair.uas.cancels_received().is_empty());
    // A CANCEL never surfaces as an ordinary new request.
    assert!(pair.uas.new_requests(Method::Cancel).is_empty());
}

#[test]
fn only_pending_invite_client_transactions_can_be_cancelled() {
    let mut pair = Pair::udp();
    let options = pair.uac_request(Method::Options, 1);
    assert_eq!(
        pair.uac.layer.send_cancel(options, pair.now),
        Err(TransactionError::NotCancellable(options))
    );
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 200);
    assert_eq!(
        pair.uac.layer.send_cancel(invite, pair.now),
        Err(TransactionError::NotCancellable(invite))
    );
    assert!(pair.uac.events.iter().all(|e| !matches!(
        e.value,
        Event::Timeout { .. } | Event::TransportError { .. }
    )));
}

#[test]
fn held_back_cancel_ends_with_its_invite_when_timer_b_fires() {
    let mut pair = Pair::udp();
    pair.drop_all(Direction::ToUas, is_request(Method::Invite));
    let invite = pair.invite();
    let cancel = pair.uac_cancel(invite);
    pair.run();
    assert_eq!(pair.uac.sent_count(is_request(Method::Cancel)), 0);
    assert_eq!(
        pair.uac.timeouts(),
        vec![(invite, TimeoutKind::NoResponse, secs(32.0))]
    );
    assert_eq!(pair.uac.terminated_at(cancel), Some(secs(32.0)));
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(32.0)));
    assert!(pair.uac.layer.is_empty());
}

#[test]
fn lost_cancel_is_retransmitted_like_any_non_invite_request() {
    let mut pair = Pair::udp();
    pair.drop_matching(Direction::ToUas, 1, is_request(Method::Cancel));
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    let cancel = pair.uac_cancel(invite);
    pair.run_until(secs(1.0));
    assert_eq!(
        pair.uac.sent_times(is_request(Method::Cancel)),
        at(&[0.0, 0.5])
    );
    assert_eq!(pair.uac.responses(cancel), vec![200]);
    assert_eq!(pair.uac.responses(invite), vec![180, 487]);
}

#[test]
fn cancel_over_tcp_is_sent_once_and_the_487_acked_once() {
    let mut pair = Pair::tcp();
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    let cancel = pair.uac_cancel(invite);
    pair.run();
    assert_eq!(pair.uac.sent_count(is_request(Method::Cancel)), 1);
    assert_eq!(pair.uac.sent_count(is_request(Method::Ack)), 1);
    assert_eq!(pair.uac.responses(cancel), vec![200]);
    assert_eq!(pair.uac.responses(invite), vec![180, 487]);
    // Timers D, I, J and K are all zero on TCP: everything ends at once.
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(0.0)));
    assert_eq!(pair.uas.terminated_at(server), Some(secs(0.0)));
    assert!(pair.uac.layer.is_empty() && pair.uas.layer.is_empty());
}
