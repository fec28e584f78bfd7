//! The RADIUS server state machine without sockets: who is answered, what a request becomes,
//! duplicates, and how h323 values are written per gateway style.

#![allow(clippy::disallowed_methods)] // the clock of a test is real
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use talktime_radius::crypto::{hide_password, response_valid, sign_request};
use talktime_radius::dictionary::{CISCO, H323_CREDIT_TIME, H323_RETURN_CODE};
use talktime_radius::{
    Action, Attribute, ClientConfig, Code, Dropped, Packet, Received, Reply, ReturnCode, Server,
    Style,
};

const SECRET: &str = "s3cret";

fn server(style: Style) -> Server {
    Server::new(&[ClientConfig {
        address: "192.0.2.0/24".into(),
        secret: SECRET.into(),
        style,
        name: "gw".into(),
    }])
    .unwrap()
}

fn gateway() -> SocketAddr {
    "192.0.2.10:1645".parse().unwrap()
}

/// A destination authorization as a Cisco gateway sends it.
fn authorize_request(identifier: u8) -> (Vec<u8>, [u8; 16]) {
    let authenticator = [identifier; 16];
    let mut packet = Packet {
        code: Code::AccessRequest,
        identifier,
        authenticator,
        attributes: vec![Attribute {
            kind: 1,
            value: b"5550001111".to_vec(),
        }],
    };
    packet.push(
        2,
        &hide_password(b"5550001111", SECRET.as_bytes(), &authenticator),
    );
    packet.push(30, b"0015551234567");
    packet.push_vendor(CISCO, 24, b"h323-conf-id=ABC 123");
    (
        sign_request(packet, authenticator, SECRET.as_bytes()),
        authenticator,
    )
}

fn h323(octets: &[u8], kind: u8) -> String {
    let packet = Packet::decode(octets).unwrap();
    let (_, value) = packet
        .vendor_attributes(CISCO)
        .into_iter()
        .find(|(vendor_kind, _)| *vendor_kind == kind)
        .unwrap();
    String::from_utf8(value.to_vec()).unwrap()
}

#[test]
fn an_authorization_becomes_a_request_and_its_answer_is_signed_in_the_gateways_style() {
    for (style, expected) in [(Style::Cisco, "h323-credit-time=90"), (Style::Bare, "90")] {
        let mut server = server(style);
        let now = Instant::now();
        let (octets, authenticator) = authorize_request(5);
        let Received::Request(request) = server.handle_datagram(&octets, gateway(), now) else {
            panic!("not a request");
        };
        let Action::Authorize {
            credentials,
            destination,
            session,
        } = request.action
        else {
            panic!("not an authorization");
        };
        assert_eq!(credentials.password.unwrap().expose(), "5550001111");
        assert_eq!(destination.expose(), "0015551234567");
        assert_eq!(session, "ABC 123");
        let reply = Reply::Accept {
            credit_amount: None,
            currency: None,
            credit_time_s: Some(90),
            language: None,
        };
        let (answer, to) = server.respond(request.handle, reply, now).unwrap();
        assert_eq!(to, gateway());
        assert!(response_valid(&answer, &authenticator, SECRET.as_bytes()));
        assert_eq!(Packet::decode(&answer).unwrap().code, Code::AccessAccept);
        assert_eq!(h323(&answer, H323_CREDIT_TIME), expected);
    }
}

#[test]
fn a_duplicate_gets_the_same_answer_and_no_second_request() {
    let mut server = server(Style::Cisco);
    let now = Instant::now();
    let (octets, _) = authorize_request(9);
    let Received::Request(request) = server.handle_datagram(&octets, gateway(), now) else {
        panic!("not a request");
    };
    // While it is being answered, a retransmission is dropped.
    assert!(matches!(
        server.handle_datagram(&octets, gateway(), now),
        Received::Dropped(Dropped::InProgress)
    ));
    let (answer, _) = server
        .respond(request.handle, Reply::Reject(ReturnCode::ZeroBalance), now)
        .unwrap();
    assert_eq!(h323(&answer, H323_RETURN_CODE), "h323-return-code=4");
    let Received::Again(again, _) = server.handle_datagram(&octets, gateway(), now) else {
        panic!("the duplicate was not answered from the cache");
    };
    assert_eq!(again, answer);
    // After the window it is a new request.
    let later = now + Duration::from_secs(31);
    assert!(matches!(
        server.handle_datagram(&octets, gateway(), later),
        Received::Request(_)
    ));
    assert_eq!(server.counters().duplicates_answered, 1);
}

#[test]
fn strangers_forgeries_and_junk_are_dropped_and_counted() {
    let mut server = server(Style::Cisco);
    let now = Instant::now();
    let (octets, _) = authorize_request(1);
    let stranger: SocketAddr = "198.51.100.1:1645".parse().unwrap();
    assert!(matches!(
        server.handle_datagram(&octets, stranger, now),
        Received::Dropped(Dropped::UnknownClient)
    ));
    let mut forged = octets.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    assert!(matches!(
        server.handle_datagram(&forged, gateway(), now),
        Received::Dropped(Dropped::BadAuthenticator)
    ));
    let unsigned = Packet {
        code: Code::AccessRequest,
        identifier: 2,
        authenticator: [2; 16],
        attributes: vec![Attribute {
            kind: 1,
            value: b"x".to_vec(),
        }],
    }
    .encode();
    assert!(matches!(
        server.handle_datagram(&unsigned, gateway(), now),
        Received::Dropped(Dropped::MissingMessageAuthenticator)
    ));
    assert!(matches!(
        server.handle_datagram(&octets[..30], gateway(), now),
        Received::Dropped(Dropped::Malformed)
    ));
    let counters = server.counters();
    assert_eq!(
        (
            counters.unknown_client,
            counters.bad_authenticator,
            counters.missing_message_authenticator,
            counters.malformed
        ),
        (1, 1, 1, 1)
    );
}

#[test]
fn a_client_entry_needs_an_address_and_a_secret() {
    let bad = |address: &str, secret: &str| {
        Server::new(&[ClientConfig {
            address: address.into(),
            secret: secret.into(),
            style: Style::Cisco,
            name: String::new(),
        }])
        .is_err()
    };
    assert!(bad("not-an-address", "s"));
    assert!(bad("192.0.2.0/33", "s"));
    assert!(bad("192.0.2.1", ""));
    assert!(!bad("2001:db8::/32", "s"));
}
