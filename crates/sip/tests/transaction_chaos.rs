//! Property test: under any pattern of lost and duplicated messages, a call attempt ends
//! cleanly. Every transaction terminates, the UAS TU sees the INVITE at most once, and a
//! 2xx the UAC received is either ACKed or ends in the §13.3.1.4 BYE.

#![allow(clippy::unwrap_used)]

mod support;

use proptest::prelude::*;
use support::*;
use talktime_sip::Method;
use talktime_sip::dialog::DialogEvent;
use talktime_sip::transaction::TimeoutKind;

fn scenario(lost_to_uas: &[usize], lost_to_uac: &[usize], duplicated: &[usize], status: u16) {
    let mut pair = Pair::udp();
    for n in lost_to_uas {
        pair.drop_nth(Direction::ToUas, *n);
    }
    for n in lost_to_uac {
        pair.drop_nth(Direction::ToUac, *n);
    }
    for n in duplicated {
        let nth = *n;
        let seen = std::cell::Cell::new(0usize);
        pair.duplicate_first(Direction::ToUac, move |_| {
            seen.set(seen.get() + 1);
            seen.get() == nth
        });
    }
    let invite = pair.invite();
    // The UAS TU rings and answers as soon as the INVITE gets through.
    while pair.uas.new_requests(Method::Invite).is_empty() && pair.step() {}
    let arrived = !pair.uas.new_requests(Method::Invite).is_empty();
    if arrived {
        let server = pair.uas_transaction(Method::Invite);
        pair.uas_respond(server, 180);
        pair.uas_respond(server, status);
    }
    pair.run();

    assert!(pair.uac.layer.is_empty(), "UAC transactions left");
    assert!(pair.uas.layer.is_empty(), "UAS transactions left");
    assert!(pair.uas.new_requests(Method::Invite).len() <= 1);
    let responses = pair.uac.responses(invite);
    let finals: Vec<u16> = responses.iter().copied().filter(|s| *s >= 200).collect();
    if !arrived {
        assert!(
            pair.uac
                .timeouts()
                .iter()
                .any(|(id, kind, at)| *id == invite
                    && *kind == TimeoutKind::NoResponse
                    && *at == secs(32.0))
        );
        return;
    }
    // Every final response that reached the UAC was ACKed (by the client transaction for
    // a non-2xx, by the TU for each 2xx copy): nothing outlives the peer's retransmissions.
    assert_eq!(
        pair.uac.sent_count(is_request(Method::Ack)),
        pair.uac
            .received_count(is_response_to(status, Method::Invite))
    );
    if pair
        .uas
        .timeouts()
        .iter()
        .any(|(_, kind, _)| *kind == TimeoutKind::NoAck)
    {
        assert_eq!(pair.uas.received_count(is_request(Method::Ack)), 0);
    }
    if status >= 300 {
        // A non-2xx reaches the TU at most once.
        assert!(finals.len() <= 1);
    }
    if finals.contains(&200) {
        let acked = pair
            .uas
            .dialog_events
            .iter()
            .any(|e| matches!(e.value, DialogEvent::AckReceived { .. }));
        let gave_up = pair
            .uas
            .dialog_events
            .iter()
            .any(|e| matches!(e.value, DialogEvent::AckTimeout { .. }));
        assert!(acked || gave_up);
        if gave_up {
            assert_eq!(pair.uas.sent_count(is_request(Method::Bye)), 1);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_loss_pattern_ends_cleanly(
        lost_to_uas in proptest::collection::btree_set(1usize..25, 0..12),
        lost_to_uac in proptest::collection::btree_set(1usize..25, 0..12),
        duplicated in proptest::collection::btree_set(1usize..10, 0..3),
        status in prop_oneof![Just(200u16), Just(486u16)],
    ) {
        let lost_to_uas: Vec<usize> = lost_to_uas.into_iter().collect();
        let lost_to_uac: Vec<usize> = lost_to_uac.into_iter().collect();
        let duplicated: Vec<usize> = duplicated.into_iter().collect();
        scenario(&lost_to_uas, &lost_to_uac, &duplicated, status);
    }
}

#[test]
fn losing_the_first_ten_messages_each_way_still_settles() {
    let lost: Vec<usize> = (1..=10).collect();
    scenario(&lost, &lost, &[], 200);
    scenario(&lost, &lost, &[], 486);
}
