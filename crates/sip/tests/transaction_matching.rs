//! Matching of requests and responses to transactions (§17.1.3, §17.2.3 including the
//! RFC 2543 fallback), stateless sends, the ACK built for non-2xx responses, branch
//! generation and transport errors. Drives one `TransactionLayer` with hand-written
//! messages.

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use talktime_sip::transaction::{
    Event, InviteServerState, MAGIC_COOKIE, NonInviteServerState, Peer, SplitMix64, State,
    TimerConfig, TransactionError, TransactionId, TransactionLayer, Transmit,
};
use talktime_sip::{Message, Method, Request, Response, Transport};

fn layer() -> TransactionLayer {
    TransactionLayer::new(TimerConfig::default(), Box::new(SplitMix64::new(42)))
}

fn peer(address: &str) -> Peer {
    Peer::new(Transport::Udp, address.parse::<SocketAddr>().unwrap())
}

fn parse_request(text: &str) -> Request {
    let text = text.replace('\n', "\r\n");
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Request(request) => request,
        Message::Response(_) => panic!("not a request"),
    }
}

fn invite(branch: &str, sent_by: &str) -> Request {
    parse_request(&format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP {sent_by}{branch}
Max-Forwards: 70
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 1 INVITE
Contact: <sip:alice@client.atlanta.example.com>
Content-Length: 0

"
    ))
}

fn events(layer: &mut TransactionLayer) -> Vec<Event> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

fn transmits(layer: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| layer.poll_transmit()).collect()
}

fn new_request_ids(events: &[Event]) -> Vec<TransactionId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Request { transaction, .. } => Some(*transaction),
            _ => None,
        })
        .collect()
}

#[test]
fn retransmission_matches_by_branch_sent_by_and_method() {
    let mut layer = layer();
    let now = Instant::now();
    let source = peer("192.0.2.10:5060");
    let branch = ";branch=z9hG4bK74bf9";
    layer
        .handle_message(
            Message::Request(invite(branch, "pc33.atlanta.example.com")),
            source,
            now,
        )
        .unwrap();
    layer
        .handle_message(
            Message::Request(invite(branch, "pc33.atlanta.example.com")),
            source,
            now,
        )
        .unwrap();
    // Same branch from another sent-by is another transaction (§17.2.3).
    layer
        .handle_message(
            Message::Request(invite(branch, "other.example.com")),
            source,
            now,
        )
        .unwrap();
    let ids = new_request_ids(&events(&mut layer));
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(layer.len(), 2);
}

#[test]
fn rfc_2543_requests_match_on_their_identifying_fields() {
    let mut layer = layer();
    let now = Instant::now();
    let source = peer("192.0.2.10:5060");
    let old = invite(";branch=1234", "pc33.atlanta.example.com");
    layer
        .handle_message(Message::Request(old.clone()), source, now)
        .unwrap();
    layer
        .handle_message(Message::Request(old.clone()), source, now)
        .unwrap();
    let ids = new_request_ids(&events(&mut layer));
    assert_eq!(ids.len(), 1, "the retransmission matched");
    let server = ids[0];

    let mut busy = Response::for_request(&old, 486, "Busy Here");
    busy.set_to_tag("8321234356");
    layer.send_response(server, busy.clone(), now).unwrap();
    assert_eq!(
        layer.state(server),
        Some(State::InviteServer(InviteServerState::Completed))
    );
    // The ACK: same Request-URI, From tag, Call-ID, CSeq number and top Via, and the To
    // tag of our response, which the INVITE did not have.
    // An ACK with some other To tag is not ours: it goes to the TU as a stray ACK.
    let mut other = busy.clone();
    other
        .headers
        .set("To", "Bob <sip:bob@biloxi.example.com>;tag=other");
    let stray = talktime_sip::transaction::ack_for_non_2xx(&old, &other);
    layer
        .handle_message(Message::Request(stray), source, now)
        .unwrap();
    assert_eq!(
        layer.state(server),
        Some(State::InviteServer(InviteServerState::Completed))
    );
    assert!(matches!(
        events(&mut layer).as_slice(),
        [Event::Ack {
            transaction: None,
            ..
        }]
    ));
    let ack = talktime_sip::transaction::ack_for_non_2xx(&old, &busy);
    layer
        .handle_message(Message::Request(ack), source, now)
        .unwrap();
    assert_eq!(
        layer.state(server),
        Some(State::InviteServer(InviteServerState::Confirmed))
    );
    assert!(
        events(&mut layer)
            .iter()
            .all(|e| !matches!(e, Event::Ack { .. }))
    );
}

#[test]
fn ack_for_a_2xx_is_stray_and_goes_to_the_tu() {
    let mut layer = layer();
    let now = Instant::now();
    let source = peer("192.0.2.10:5060");
    let request = invite(";branch=z9hG4bKaaa", "pc33.atlanta.example.com");
    layer
        .handle_message(Message::Request(request.clone()), source, now)
        .unwrap();
    let server = new_request_ids(&events(&mut layer))[0];
    let mut ok = Response::for_request(&request, 200, "OK");
    ok.set_to_tag("t1");
    layer.send_response(server, ok.clone(), now).unwrap();
    // The ACK for a 2xx has a new branch: it matches no transaction.
    let mut ack = talktime_sip::transaction::ack_for_non_2xx(&request, &ok);
    ack.headers.set(
        "Via",
        "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKbbb",
    );
    layer
        .handle_message(Message::Request(ack.clone()), source, now)
        .unwrap();
    let got = events(&mut layer);
    assert!(matches!(
        got.as_slice(),
        [Event::Ack { request, transaction: None, .. }] if *request == ack
    ));
    assert_eq!(
        layer.state(server),
        Some(State::InviteServer(InviteServerState::Accepted))
    );
}

#[test]
fn responses_match_on_branch_and_cseq_method_and_strays_are_dropped() {
    let mut layer = layer();
    let now = Instant::now();
    let destination = peer("192.0.2.20:5060");
    let request = invite("", "192.0.2.1:5060");
    let client = layer.send_request(request, destination, now).unwrap();
    let sent = match &transmits(&mut layer)[0].message {
        Message::Request(r) => r.clone(),
        _ => panic!(),
    };
    let branch = sent.top_via().unwrap().branch().unwrap().to_owned();
    assert!(branch.starts_with(MAGIC_COOKIE));

    // A response with the right branch but CSeq method CANCEL is not for the INVITE.
    let mut wrong_method = Response::for_request(&sent, 200, "OK");
    wrong_method.headers.set("CSeq", "1 CANCEL");
    layer
        .handle_message(Message::Response(wrong_method), destination, now)
        .unwrap();
    // Another branch: stray.
    let mut other_branch = Response::for_request(&sent, 180, "Ringing");
    other_branch
        .headers
        .set("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnope");
    layer
        .handle_message(Message::Response(other_branch), destination, now)
        .unwrap();
    assert_eq!(layer.stray_responses(), 2);
    assert!(events(&mut layer).is_empty());

    let ringing = Response::for_request(&sent, 180, "Ringing");
    layer
        .handle_message(Message::Response(ringing), destination, now)
        .unwrap();
    assert!(matches!(
        events(&mut layer).as_slice(),
        [Event::Response { transaction, response }] if *transaction == client && response.status == 180
    ));
}

#[test]
fn ack_for_non_2xx_follows_17_1_1_3() {
    let mut layer = layer();
    let now = Instant::now();
    let destination = peer("192.0.2.20:5060");
    let mut request = invite("", "192.0.2.1:5060");
    request.headers.push("Route", "<sip:p1.example.com;lr>");
    request.headers.push("Route", "<sip:p2.example.com;lr>");
    request.headers.push(
        "Via",
        "SIP/2.0/UDP should-not-be-copied.example.com;branch=z9hG4bKx",
    );
    layer.send_request(request, destination, now).unwrap();
    let sent = match &transmits(&mut layer)[0].message {
        Message::Request(r) => r.clone(),
        _ => panic!(),
    };
    let mut busy = Response::for_request(&sent, 486, "Busy Here");
    busy.set_to_tag("uas-tag");
    layer
        .handle_message(Message::Response(busy), destination, now)
        .unwrap();
    let out = transmits(&mut layer);
    assert_eq!(out.len(), 1);
    let Message::Request(ack) = &out[0].message else {
        panic!("expected the ACK")
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, sent.uri);
    assert_eq!(ack.call_id().unwrap(), sent.call_id().unwrap());
    assert_eq!(ack.headers.get("From"), sent.headers.get("From"));
    assert_eq!(ack.to().unwrap().tag(), Some("uas-tag"));
    assert_eq!(ack.cseq().unwrap().sequence, 1);
    assert_eq!(ack.cseq().unwrap().method, Method::Ack);
    assert_eq!(ack.via().unwrap(), vec![sent.top_via().unwrap()]);
    let routes: Vec<String> = ack.route().unwrap().iter().map(|r| r.to_string()).collect();
    assert_eq!(
        routes,
        vec!["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert!(ack.body.is_empty());
    // The bytes parse back.
    let parsed = Message::parse(&ack.to_bytes()).unwrap();
    assert_eq!(parsed.to_bytes(), ack.to_bytes());
}

#[test]
fn branches_are_deterministic_for_a_seed_and_unique() {
    let mut first = layer();
    let mut second = layer();
    let a: Vec<String> = (0..100).map(|_| first.new_branch()).collect();
    let b: Vec<String> = (0..100).map(|_| second.new_branch()).collect();
    assert_eq!(a, b);
    let mut unique = a.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 100);
    assert_ne!(first.new_tag(), first.new_tag());
}

#[test]
fn requests_without_via_or_cseq_are_refused() {
    let mut layer = layer();
    let now = Instant::now();
    let destination = peer("192.0.2.20:5060");
    let mut no_via = invite("", "192.0.2.1:5060");
    no_via.headers.remove("Via");
    assert_eq!(
        layer.send_request(no_via.clone(), destination, now),
        Err(TransactionError::MissingHeader("Via"))
    );
    assert_eq!(
        layer.handle_message(Message::Request(no_via), destination, now),
        Err(TransactionError::MissingHeader("Via"))
    );
    let mut no_cseq = invite("", "192.0.2.1:5060");
    no_cseq.headers.remove("CSeq");
    assert_eq!(
        layer.send_request(no_cseq, destination, now),
        Err(TransactionError::MissingHeader("CSeq"))
    );
    let ack = parse_request(
        "ACK sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060
From: <sip:a@a>;tag=1
To: <sip:b@b>;tag=2
Call-ID: x
CSeq: 1 ACK
Content-Length: 0

",
    );
    assert_eq!(
        layer.send_request(ack, destination, now),
        Err(TransactionError::AckIsNotATransaction)
    );
    assert!(layer.is_empty());
}

#[test]
fn server_responses_are_checked_against_the_state() {
    let mut layer = layer();
    let now = Instant::now();
    let source = peer("192.0.2.10:5060");
    let request = invite(";branch=z9hG4bKccc", "pc33.atlanta.example.com");
    layer
        .handle_message(Message::Request(request.clone()), source, now)
        .unwrap();
    let server = new_request_ids(&events(&mut layer))[0];
    let mut busy = Response::for_request(&request, 486, "Busy Here");
    busy.set_to_tag("x");
    layer.send_response(server, busy.clone(), now).unwrap();
    assert!(matches!(
        layer.send_response(server, busy, now),
        Err(TransactionError::InvalidState { status: 486, .. })
    ));
    // Responses go back to where the request came from.
    assert!(
        transmits(&mut layer)
            .iter()
            .all(|t| t.destination == source && t.transaction == Some(server))
    );
}

#[test]
fn transport_error_terminates_and_is_reported() {
    let mut layer = layer();
    let now = Instant::now();
    let destination = peer("192.0.2.20:5060");
    let client = layer
        .send_request(invite("", "192.0.2.1:5060"), destination, now)
        .unwrap();
    layer.handle_transport_error(client);
    assert!(layer.is_empty());
    assert_eq!(layer.poll_timeout(), None);
    let got = events(&mut layer);
    assert!(matches!(
        got.as_slice(),
        [Event::TransportError { transaction: a }, Event::Terminated { transaction: b }]
            if *a == client && *b == client
    ));
}

#[test]
fn poll_timeout_reports_the_earliest_live_timer() {
    let mut layer = layer();
    let now = Instant::now();
    let destination = peer("192.0.2.20:5060");
    let options = parse_request(
        "OPTIONS sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060
From: <sip:a@a>;tag=1
To: <sip:b@b>
Call-ID: y
CSeq: 7 OPTIONS
Content-Length: 0

",
    );
    let client = layer.send_request(options, destination, now).unwrap();
    assert_eq!(layer.poll_timeout(), Some(now + Duration::from_millis(500)));
    let sent = match &transmits(&mut layer)[0].message {
        Message::Request(r) => r.clone(),
        _ => panic!(),
    };
    let ok = Response::for_request(&sent, 200, "OK");
    layer
        .handle_message(Message::Response(ok), destination, now)
        .unwrap();
    // Timers E and F are gone; only K (T4) remains.
    assert_eq!(layer.poll_timeout(), Some(now + Duration::from_secs(5)));
    layer.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(layer.state(client), None);
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn non_invite_server_is_silent_in_trying_and_resends_in_proceeding() {
    let mut layer = layer();
    let now = Instant::now();
    let source = peer("192.0.2.10:5060");
    let bye = parse_request(
        "BYE sip:bob@192.0.2.2 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKbye1
From: <sip:a@a>;tag=1
To: <sip:b@b>;tag=2
Call-ID: z
CSeq: 2 BYE
Content-Length: 0

",
    );
    layer
        .handle_message(Message::Request(bye.clone()), source, now)
        .unwrap();
    let server = new_request_ids(&events(&mut layer))[0];
    layer
        .handle_message(Message::Request(bye.clone()), source, now)
        .unwrap();
    assert!(transmits(&mut layer).is_empty());
    layer
        .send_response(server, Response::for_request(&bye, 100, "Trying"), now)
        .unwrap();
    assert_eq!(
        layer.state(server),
        Some(State::NonInviteServer(NonInviteServerState::Proceeding))
    );
    assert_eq!(transmits(&mut layer).len(), 1);
    layer
        .handle_message(Message::Request(bye), source, now)
        .unwrap();
    let resent = transmits(&mut layer);
    assert!(matches!(
        resent.as_slice(),
        [Transmit { message: Message::Response(r), .. }] if r.status == 100
    ));
    assert!(events(&mut layer).is_empty());
}

/// A full table (issue 20: memory bounded under a flood of new requests) answers a new
/// request 503 with Retry-After statelessly and keeps nothing, while a kept transaction's
/// retransmission is still absorbed by it.
#[test]
fn a_full_layer_answers_new_requests_503_and_still_absorbs_retransmissions() {
    let mut layer = layer();
    layer.set_max_server_transactions(2);
    let now = Instant::now();
    let source = peer("192.0.2.10:5060");
    for branch in [";branch=z9hG4bKone", ";branch=z9hG4bKtwo"] {
        layer
            .handle_message(Message::Request(invite(branch, "pc33")), source, now)
            .unwrap();
    }
    assert_eq!(new_request_ids(&events(&mut layer)).len(), 2);
    transmits(&mut layer);
    let third = layer.handle_message(
        Message::Request(invite(";branch=z9hG4bKthree", "pc33")),
        source,
        now,
    );
    assert!(matches!(third, Err(TransactionError::Full)));
    assert!(events(&mut layer).is_empty(), "nothing for the core");
    let sent = transmits(&mut layer);
    assert_eq!(sent.len(), 1);
    match &sent[0].message {
        Message::Response(response) => {
            assert_eq!(response.status, 503);
            assert_eq!(response.headers.get("Retry-After"), Some("5"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(layer.len(), 2);
    assert_eq!(layer.refused_when_full(), 1);
    // The first INVITE again: a retransmission, absorbed (a 100 Trying again), no 503.
    layer
        .handle_message(
            Message::Request(invite(";branch=z9hG4bKone", "pc33")),
            source,
            now,
        )
        .unwrap();
    let again = transmits(&mut layer);
    assert!(
        again.iter().all(|transmit| match &transmit.message {
            Message::Response(response) => response.status != 503,
            _ => true,
        }),
        "{again:?}"
    );
}
