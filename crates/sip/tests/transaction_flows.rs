//! Whole exchanges over the in-memory link: call setup, teardown, duplicates and delays.

#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use talktime_sip::Method;
use talktime_sip::dialog::{DialogEvent, DialogState};
use talktime_sip::transaction::{InviteClientState, InviteServerState, State};

#[test]
fn invite_ringing_ok_ack_then_bye() {
    let mut pair = Pair::udp();
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    pair.run_until(secs(1.0));
    pair.uas_respond(server, 200);

    assert_eq!(pair.uac.responses(invite), vec![180, 200]);
    assert_eq!(
        pair.uac.layer.state(invite),
        Some(State::InviteClient(InviteClientState::Accepted))
    );
    assert_eq!(
        pair.uas.layer.state(server),
        Some(State::InviteServer(InviteServerState::Accepted))
    );
    // The UAC's ACK reached the UAS core, which stopped retransmitting the 2xx.
    assert_eq!(pair.uas.acks().len(), 1);
    assert_eq!(pair.uas.dialogs.len(), 1);
    assert_eq!(pair.uac.dialogs.len(), 1);
    let uas_dialog = pair.uas.dialogs.ids()[0].clone();
    assert!(!pair.uas.dialogs.awaiting_ack(&uas_dialog));
    assert!(matches!(
        pair.uas.dialog_events.last().map(|e| &e.value),
        Some(DialogEvent::AckReceived { .. })
    ));
    // No retransmission of anything on a clean link.
    assert_eq!(pair.uac.sent_count(is_request(Method::Invite)), 1);
    assert_eq!(pair.uas.sent_count(is_response(200)), 1);
    // 180 without 100: the TU answered within 200 ms.
    assert_eq!(pair.uas.sent_count(is_response(100)), 0);

    let uac_dialog = pair.uac.dialogs.ids()[0].clone();
    assert_eq!(
        pair.uac.dialogs.get(&uac_dialog).unwrap().state(),
        DialogState::Confirmed
    );
    let via = pair.uac.via();
    let bye = pair
        .uac
        .dialogs
        .get_mut(&uac_dialog)
        .unwrap()
        .new_request(Method::Bye, &via);
    let destination = pair.uas.peer();
    let bye_transaction = pair.uac.send(bye, destination, pair.now);
    pair.drive();
    assert_eq!(pair.uac.responses(bye_transaction), vec![200]);
    assert!(pair.uas.dialogs.is_empty());

    // Everything winds down: timers M and L run 64*T1 from the 2xx at 1 s, K = T4 and
    // J = 64*T1 from the BYE's 200 at 1 s.
    let bye_server = pair.uas_transaction(Method::Bye);
    pair.run();
    assert!(pair.uac.layer.is_empty());
    assert!(pair.uas.layer.is_empty());
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(33.0)));
    assert_eq!(pair.uas.terminated_at(server), Some(secs(33.0)));
    assert_eq!(pair.uac.terminated_at(bye_transaction), Some(secs(6.0)));
    assert_eq!(pair.uas.terminated_at(bye_server), Some(secs(33.0)));
}

#[test]
fn tcp_call_needs_no_retransmission_and_clears_at_64_t1() {
    let mut pair = Pair::tcp();
    let invite = pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 180);
    pair.uas_respond(server, 200);
    assert_eq!(pair.uac.responses(invite), vec![180, 200]);
    assert_eq!(pair.uas.acks().len(), 1);
    pair.run();
    // Nothing was ever sent twice.
    assert_eq!(pair.uac.sent.len(), 2, "INVITE and ACK");
    assert_eq!(pair.uas.sent.len(), 2, "180 and 200");
    assert_eq!(pair.uac.terminated_at(invite), Some(secs(32.0)));
    assert!(
        pair.uas
            .dialog_events
            .iter()
            .all(|e| matches!(e.value, DialogEvent::AckReceived { .. }))
    );
}

#[test]
fn callee_hangs_up_with_a_bye_from_the_uas_dialog() {
    let mut pair = Pair::udp();
    pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 200);
    pair.run_until(secs(10.0));
    let id = pair.uas.dialogs.ids()[0].clone();
    let via = pair.uas.via();
    let bye = pair
        .uas
        .dialogs
        .get_mut(&id)
        .unwrap()
        .new_request(Method::Bye, &via);
    // The UAS's BYE goes to the UAC's Contact, with the tags swapped.
    assert_eq!(bye.uri.to_string(), "sip:uac@192.0.2.1:5060");
    assert_eq!(bye.to().unwrap().tag(), Some("uac-tag"));
    let destination = pair.uac.peer();
    let transaction = pair.uas.send(bye, destination, pair.now);
    pair.drive();
    assert_eq!(pair.uas.responses(transaction), vec![200]);
    assert!(pair.uac.dialogs.is_empty());
}

/// Issue 19 (memory a live call): once a 2xx puts the INVITE transactions in Accepted, neither
/// side keeps the SDP for Timer L's or M's 32 s; the TU got it when the INVITE arrived.
#[test]
fn accepted_invite_transactions_keep_no_sdp_and_servers_no_headers() {
    let mut pair = Pair::udp();
    let mut request = pair
        .uac
        .new_request(Method::Invite, &pair.uas, 1, "call-sdp@192.0.2.1");
    request.body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n".to_vec();
    let destination = pair.uas.peer();
    let invite = pair.uac.send(request, destination, pair.now);
    pair.drive();
    let server = pair.uas_transaction(Method::Invite);
    assert!(!pair.uas.layer.request(server).unwrap().body.is_empty());
    assert!(!pair.uac.layer.request(invite).unwrap().body.is_empty());
    pair.uas_respond(server, 200);
    assert_eq!(
        pair.uas.layer.state(server),
        Some(State::InviteServer(InviteServerState::Accepted))
    );
    let kept = pair.uas.layer.request(server).unwrap();
    assert!(kept.body.is_empty());
    assert_eq!(kept.headers.iter().count(), 0, "the server keeps no header");
    assert_eq!(
        pair.uac.layer.state(invite),
        Some(State::InviteClient(InviteClientState::Accepted))
    );
    let ours = pair.uac.layer.request(invite).unwrap();
    assert!(ours.body.is_empty());
    assert!(
        ours.headers.get("Call-ID").is_some(),
        "a client keeps its headers (a late 2xx's dialog is built from them)"
    );
    assert_eq!(pair.uas.acks().len(), 1, "the ACK still matched");
}
