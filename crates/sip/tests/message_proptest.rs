//! Property tests: generated messages round-trip; arbitrary and mutated input never panics.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use talktime_sip::{Message, Method, Request, Response, StreamFramer, Uri, canonical_name};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!%*_+`'~.-]{1,12}"
}

/// Header values: printable text (including UTF-8), no CR/LF, no edge whitespace.
fn header_value() -> impl Strategy<Value = String> {
    "[ -~\u{a0}-\u{3ff}]{0,40}".prop_map(|value| value.trim_matches([' ', '\t']).to_owned())
}

fn header_name() -> impl Strategy<Value = String> {
    token().prop_filter("Content-Length is written by the serializer", |name| {
        canonical_name(name) != Some("Content-Length")
    })
}

fn uri() -> impl Strategy<Value = Uri> {
    (
        prop::option::of("[a-z0-9+._-]{1,10}"),
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}",
        prop::option::of(1u16..),
        prop::collection::vec(("[a-z]{1,6}", prop::option::of("[a-z0-9]{1,6}")), 0..3),
        prop::bool::ANY,
    )
        .prop_map(|(user, host, port, params, secure)| {
            let mut uri = if secure {
                Uri::sips(user.as_deref(), &host, port)
            } else {
                Uri::sip(user.as_deref(), &host, port)
            };
            for (name, value) in params {
                uri.set_param(&name, value.as_deref());
            }
            uri
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Ack),
        Just(Method::Bye),
        Just(Method::Options),
        "[A-Z]{3,10}".prop_map(|name| Method::parse(&name).unwrap()),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((header_name(), header_value()), 0..12)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..200)
}

fn request() -> impl Strategy<Value = Request> {
    (method(), uri(), headers(), body()).prop_map(|(method, uri, headers, body)| {
        let mut request = Request::new(method, uri);
        for (name, value) in &headers {
            request.headers.push(name, value);
        }
        request
            .headers
            .push("Content-Length", &body.len().to_string());
        request.body = body;
        request
    })
}

fn response() -> impl Strategy<Value = Response> {
    (100u16..700, "[ -~\u{a0}-\u{3ff}]{0,30}", headers(), body()).prop_map(
        |(status, reason, headers, body)| {
            let mut response = Response::new(status, &reason);
            for (name, value) in &headers {
                response.headers.push(name, value);
            }
            response.headers.push("l", &body.len().to_string());
            response.body = body;
            response
        },
    )
}

/// Exercises everything a caller might touch on an untrusted message.
fn poke(message: &Message) {
    let _ = message.validate();
    let _ = message.via();
    let _ = message.from();
    let _ = message.to();
    let _ = message.contact();
    let _ = message.route();
    let _ = message.record_route();
    let _ = message.cseq();
    let _ = message.call_id();
    let _ = message.max_forwards();
    let _ = message.content_type();
    let _ = message.session_expires();
    let _ = message.retry_after();
    let _ = message.reason_header();
    let _ = message.remote_party_id();
    let _ = message.diversion();
    let _ = message.p_asserted_identity();
    let _ = message.require();
    let _ = message.allow();
    for value in message.headers().www_authenticate() {
        let _ = talktime_sip::auth::Challenge::parse(value);
    }
    for value in message.headers().authorization() {
        if let Ok(credentials) = talktime_sip::auth::Credentials::parse(value) {
            let _ = credentials.verify_password("INVITE", "secret");
        }
    }
    // Serialization is idempotent: what it writes parses back to the same bytes.
    let bytes = message.to_bytes();
    let again = Message::parse(&bytes).unwrap();
    assert_eq!(again.to_bytes(), bytes);
}

const SEED: &[u8] = b"INVITE sip:bob@biloxi.example.com;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK74bf9;rport, SIP/2.0/TCP p;branch=z9hG4bK2\r\n\
v: SIP/2.0/UDP x\r\n\
From: \"Al \\\"ice\\\"\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
t: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=tcp>;expires=30\r\n\
Route: <sip:p1;lr>,\r\n <tel:+123;phone-context=x>\r\n\
Session-Expires: 90;refresher=uac\r\n\
Retry-After: 5 (x);duration=3\r\n\
WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", qop=\"auth\"\r\n\
Authorization: Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\"\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 5\r\n\r\nv=0\r\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn requests_round_trip(request in request()) {
        let bytes = request.to_bytes();
        let parsed = Message::parse(&bytes).unwrap();
        prop_assert_eq!(parsed, Message::Request(request));
    }

    #[test]
    fn responses_round_trip(response in response()) {
        let bytes = response.to_bytes();
        let parsed = Message::parse(&bytes).unwrap();
        prop_assert_eq!(parsed, Message::Response(response));
    }

    #[test]
    fn stream_framing_matches_datagram_parsing(
        requests in prop::collection::vec(request(), 1..4),
        chunk in 1usize..300,
    ) {
        let mut stream = Vec::new();
        for request in &requests {
            stream.extend_from_slice(&request.to_bytes());
        }
        let mut framer = StreamFramer::new();
        let mut framed = Vec::new();
        for piece in stream.chunks(chunk) {
            framer.push(piece);
            while let Some(message) = framer.next_message().unwrap() {
                framed.push(message);
            }
        }
        let expected: Vec<Message> = requests.into_iter().map(Message::Request).collect();
        prop_assert_eq!(framed, expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(message) = Message::parse(&data) {
            poke(&message);
        }
        let mut framer = StreamFramer::with_max_size(512);
        framer.push(&data);
        while let Ok(Some(message)) = framer.next_message() {
            poke(&message);
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..12),
    ) {
        let mut data = SEED.to_vec();
        for (index, byte, kind) in edits {
            let at = index.index(data.len().max(1));
            match kind {
                0 if !data.is_empty() => data[at] = byte,
                1 => data.insert(at, byte),
                _ if !data.is_empty() => { data.remove(at); }
                _ => {}
            }
        }
        if let Ok(message) = Message::parse(&data) {
            poke(&message);
        }
    }

    #[test]
    fn seed_with_typed_characters_never_panics(
        position in any::<prop::sample::Index>(),
        text in "[\"<>;,:@?=%\\\\ \t\r\n\\[\\]]{1,6}",
    ) {
        let mut data = SEED.to_vec();
        let at = position.index(data.len());
        data.splice(at..at, text.bytes());
        if let Ok(message) = Message::parse(&data) {
            poke(&message);
        }
    }
}

#[test]
fn seed_message_is_valid() {
    let message = Message::parse(SEED).unwrap();
    message.validate().unwrap();
    assert_eq!(message.via().unwrap().len(), 3);
    assert_eq!(message.route().unwrap().len(), 2);
    assert_eq!(message.contact().unwrap().len(), 1);
    assert_eq!(message.body(), b"v=0\r\n");
}
