//! The dialog table: 481 for unknown dialogs, 500 for out-of-order CSeq, forks, target
//! refresh, and the UAS core's 2xx retransmission until the ACK (§13.3.1.4).

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::*;
use talktime_sip::dialog::{Dialog, DialogEvent, DialogId, DialogTable, Routing};
use talktime_sip::transaction::{Peer, TimerConfig};
use talktime_sip::{Message, Method, Request, Response, Transport};

fn parse_request(text: &str) -> Request {
    let text = text.replace('\n', "\r\n");
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Request(request) => request,
        Message::Response(_) => panic!("not a request"),
    }
}

fn invite() -> Request {
    parse_request(
        "INVITE sip:bob@192.0.2.2 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK0
Max-Forwards: 70
From: <sip:alice@example.com>;tag=alice1
To: <sip:bob@example.com>
Call-ID: table-test
CSeq: 10 INVITE
Contact: <sip:alice@192.0.2.1:5060>
Content-Length: 0

",
    )
}

fn ok_for(request: &Request, tag: &str) -> Response {
    let mut ok = Response::for_request(request, 200, "OK");
    ok.set_to_tag(tag);
    ok.headers.push("Contact", "<sip:bob@192.0.2.2:5060>");
    ok
}

/// A request from Alice inside the UAS dialog (To tag = ours).
fn in_dialog(method: Method, cseq: u32, to_tag: &str) -> Request {
    parse_request(&format!(
        "{method} sip:bob@192.0.2.2:5060 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{cseq}{method}
Max-Forwards: 70
From: <sip:alice@example.com>;tag=alice1
To: <sip:bob@example.com>;tag={to_tag}
Call-ID: table-test
CSeq: {cseq} {method}
Contact: <sip:alice@198.51.100.7:5060>
Content-Length: 0

"
    ))
}

fn uas_table() -> (DialogTable, DialogId) {
    let mut table = DialogTable::new(TimerConfig::default());
    let mut dialog = Dialog::uas(&invite(), &ok_for(&invite(), "bob1")).unwrap();
    dialog.confirm();
    let id = table.insert(dialog);
    (table, id)
}

fn udp_peer() -> Peer {
    Peer::new(
        Transport::Udp,
        "192.0.2.1:5060".parse::<SocketAddr>().unwrap(),
    )
}

#[test]
fn requests_for_unknown_dialogs_get_481() {
    let (mut table, _) = uas_table();
    match table.route_request(&in_dialog(Method::Bye, 11, "someone-else")) {
        Routing::Reject(response) => {
            assert_eq!(response.status, 481);
            assert_eq!(response.cseq().unwrap().method, Method::Bye);
        }
        other => panic!("expected 481, got {other:?}"),
    }
    // An ACK for an unknown dialog cannot be answered: dropped.
    assert!(matches!(
        table.route_request(&in_dialog(Method::Ack, 10, "someone-else")),
        Routing::Drop
    ));
    // No To tag: not for the table.
    assert!(matches!(
        table.route_request(&invite()),
        Routing::OutOfDialog
    ));
}

#[test]
fn out_of_order_cseq_gets_500_and_in_order_requests_pass() {
    let (mut table, id) = uas_table();
    assert!(matches!(
        table.route_request(&in_dialog(Method::Info, 12, "bob1")),
        Routing::InDialog(ref got) if *got == id
    ));
    assert_eq!(table.get(&id).unwrap().remote_seq(), Some(12));
    match table.route_request(&in_dialog(Method::Info, 11, "bob1")) {
        Routing::Reject(response) => assert_eq!(response.status, 500),
        other => panic!("expected 500, got {other:?}"),
    }
    // The rejected request did not move the remote sequence number.
    assert_eq!(table.get(&id).unwrap().remote_seq(), Some(12));
    // ACK carries the INVITE's (lower) number and is not checked.
    assert!(matches!(
        table.route_request(&in_dialog(Method::Ack, 10, "bob1")),
        Routing::InDialog(_)
    ));
}

#[test]
fn re_invite_refreshes_the_remote_target() {
    let (mut table, id) = uas_table();
    assert_eq!(
        table.get(&id).unwrap().remote_target().to_string(),
        "sip:alice@192.0.2.1:5060"
    );
    table.route_request(&in_dialog(Method::Info, 11, "bob1"));
    // INFO is no target refresh.
    assert_eq!(
        table.get(&id).unwrap().remote_target().to_string(),
        "sip:alice@192.0.2.1:5060"
    );
    table.route_request(&in_dialog(Method::Invite, 12, "bob1"));
    assert_eq!(
        table.get(&id).unwrap().remote_target().to_string(),
        "sip:alice@198.51.100.7:5060"
    );
}

#[test]
fn uas_core_retransmits_the_2xx_doubling_to_t2_until_the_ack() {
    let (mut table, id) = uas_table();
    let start = Instant::now();
    table
        .start_2xx_retransmission(&id, ok_for(&invite(), "bob1"), udp_peer(), start)
        .unwrap();
    let mut fired = Vec::new();
    while let Some(next) = table.poll_timeout() {
        if next - start > Duration::from_secs(12) {
            break;
        }
        table.handle_timeout(next);
        while let Some(transmit) = table.poll_transmit() {
            assert_eq!(transmit.destination, udp_peer());
            assert!(matches!(transmit.message, Message::Response(ref r) if r.status == 200));
            fired.push((next - start).as_secs_f64());
        }
    }
    assert_eq!(fired, vec![0.5, 1.5, 3.5, 7.5, 11.5]);
    // An ACK with another CSeq number (say for a later re-INVITE) does not stop it.
    table.route_request(&in_dialog(Method::Ack, 9, "bob1"));
    assert!(table.awaiting_ack(&id));
    table.route_request(&in_dialog(Method::Ack, 10, "bob1"));
    assert!(!table.awaiting_ack(&id));
    assert_eq!(
        table.poll_event(),
        Some(DialogEvent::AckReceived { dialog: id })
    );
    assert_eq!(table.poll_timeout(), None);
}

#[test]
fn uas_core_gives_up_after_64_t1_and_reports_it() {
    let (mut table, id) = uas_table();
    let start = Instant::now();
    table
        .start_2xx_retransmission(&id, ok_for(&invite(), "bob1"), udp_peer(), start)
        .unwrap();
    let mut last = start;
    while let Some(next) = table.poll_timeout() {
        table.handle_timeout(next);
        last = next;
    }
    assert_eq!(last - start, Duration::from_secs(32));
    let transmits = std::iter::from_fn(|| table.poll_transmit()).count();
    assert_eq!(transmits, 10);
    assert_eq!(
        table.poll_event(),
        Some(DialogEvent::AckTimeout { dialog: id.clone() })
    );
    // The dialog itself is left for the TU to BYE.
    assert!(table.get(&id).is_some());
}

#[test]
fn no_2xx_retransmission_over_tcp_but_the_give_up_timer_runs() {
    let (mut table, id) = uas_table();
    let start = Instant::now();
    let tcp = Peer::new(
        Transport::Tcp,
        "192.0.2.1:5060".parse::<SocketAddr>().unwrap(),
    );
    table
        .start_2xx_retransmission(&id, ok_for(&invite(), "bob1"), tcp, start)
        .unwrap();
    assert_eq!(table.poll_timeout(), Some(start + Duration::from_secs(32)));
    table.handle_timeout(start + Duration::from_secs(32));
    assert!(table.poll_transmit().is_none());
    assert!(matches!(
        table.poll_event(),
        Some(DialogEvent::AckTimeout { .. })
    ));
}

#[test]
fn each_fork_gets_its_own_uac_dialog() {
    let mut table = DialogTable::new(TimerConfig::default());
    let first = table
        .handle_invite_response(&invite(), &ok_for(&invite(), "fork1"))
        .unwrap()
        .unwrap();
    let again = table
        .handle_invite_response(&invite(), &ok_for(&invite(), "fork1"))
        .unwrap()
        .unwrap();
    let second = table
        .handle_invite_response(&invite(), &ok_for(&invite(), "fork2"))
        .unwrap()
        .unwrap();
    assert_eq!(first, again);
    assert_ne!(first, second);
    assert_eq!(table.len(), 2);
    let mut failure = Response::for_request(&invite(), 486, "Busy Here");
    failure.set_to_tag("fork3");
    assert_eq!(table.handle_invite_response(&invite(), &failure), Ok(None));
    assert!(table.remove(&first).is_some());
    assert_eq!(table.len(), 1);
}

#[test]
fn bye_for_an_unknown_dialog_is_answered_481_over_the_link() {
    let mut pair = Pair::udp();
    let mut bye = pair
        .uac
        .new_request(Method::Bye, &pair.uas, 5, "no-such-call@192.0.2.1");
    bye.headers.set("To", "<sip:uas@example.com>;tag=unknown");
    let destination = pair.uas.peer();
    let transaction = pair.uac.send(bye, destination, pair.now);
    pair.drive();
    assert_eq!(pair.uac.responses(transaction), vec![481]);
}

#[test]
fn out_of_order_request_in_a_live_call_is_answered_500() {
    let mut pair = Pair::udp();
    pair.invite();
    let server = pair.uas_transaction(Method::Invite);
    pair.uas_respond(server, 200);
    let id = pair.uac.dialogs.ids()[0].clone();
    let via = pair.uac.via();
    let dialog = pair.uac.dialogs.get_mut(&id).unwrap();
    let info_2 = dialog.new_request(Method::Info, &via);
    let info_3 = dialog.new_request(Method::Info, &via);
    assert_eq!(info_3.cseq().unwrap().sequence, 3);
    let destination = pair.uas.peer();
    let late = pair.uac.send(info_3, destination, pair.now);
    pair.drive();
    let early = pair.uac.send(info_2, destination, pair.now);
    pair.drive();
    assert_eq!(pair.uac.responses(late), vec![200]);
    assert_eq!(pair.uac.responses(early), vec![500]);
}
