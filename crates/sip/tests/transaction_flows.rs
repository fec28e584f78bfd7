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
