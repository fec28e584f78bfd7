//! Message parsing, typed accessors and serialization.
#![allow(clippy::unwrap_used)]

use talktime_sip::{
    Headers, Message, Method, ParseError, Request, Response, Scheme, StreamFramer, Transport, Uri,
    Via, canonical_name, check_max_forwards, check_require, split_comma_list,
};

/// A typical INVITE as a softphone sends it, in canonical form (one header per line,
/// `Name: value`), so serialization must reproduce it byte for byte.
const INVITE: &str = "INVITE sip:+4930123456@gw.example.net;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:+4930123456@gw.example.net;user=phone>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n\
X-Custom-Thing:   spaced ,, value ;;\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

#[test]
fn canonical_message_round_trips_byte_for_byte() {
    let message = Message::parse(INVITE.as_bytes()).unwrap();
    assert_eq!(
        message.to_bytes(),
        INVITE.replace(":   spaced", ": spaced").as_bytes()
    );
    let request = message.as_request().unwrap();
    assert_eq!(
        request.headers.get("x-custom-thing"),
        Some("spaced ,, value ;;")
    );
    assert_eq!(request.body, b"v=0\n");
}

#[test]
fn unknown_headers_keep_name_case_order_and_value() {
    let raw = "OPTIONS sip:a@b SIP/2.0\r\nX-B: 2\r\nx-a: 1\r\nX-B: 3\r\nP-Weird-Header: <sip:x;y>,\"q,r\"\r\nContent-Length: 0\r\n\r\n";
    let message = Message::parse(raw.as_bytes()).unwrap();
    let lines: Vec<(&str, &str)> = message.headers().iter().collect();
    assert_eq!(
        lines,
        vec![
            ("X-B", "2"),
            ("x-a", "1"),
            ("X-B", "3"),
            ("P-Weird-Header", "<sip:x;y>,\"q,r\""),
            ("Content-Length", "0")
        ]
    );
    assert_eq!(message.to_bytes(), raw.as_bytes());
    // Unknown headers are not split at commas.
    assert_eq!(message.headers().get_all("p-weird-header").count(), 1);
    assert_eq!(
        message.headers().get_all("x-b").collect::<Vec<_>>(),
        ["2", "3"]
    );
}

#[test]
fn compact_forms_in_a_message() {
    let raw = "BYE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bKx\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>;tag=2\r\ni: cid\r\nCSeq: 1 BYE\r\nm: <sip:e@f>\r\nk: timer, 100rel\r\nx: 90;refresher=uas\r\nc: text/plain\r\nl: 2\r\n\r\nhi";
    let request = match Message::parse(raw.as_bytes()).unwrap() {
        Message::Request(request) => request,
        Message::Response(_) => panic!("request expected"),
    };
    request.validate().unwrap();
    assert_eq!(request.call_id().unwrap(), "cid");
    assert_eq!(request.from().unwrap().tag(), Some("1"));
    assert_eq!(request.to().unwrap().tag(), Some("2"));
    assert_eq!(
        request.top_via().unwrap().transport_type(),
        Some(Transport::Tcp)
    );
    assert_eq!(request.contact().unwrap()[0].uri.user(), Some("e"));
    assert_eq!(request.supported(), ["timer", "100rel"]);
    assert_eq!(request.session_expires().unwrap().unwrap().delta, 90);
    assert!(request.content_type().unwrap().unwrap().is("text/plain"));
    assert_eq!(request.body, b"hi");
    assert_eq!(canonical_name("K"), Some("Supported"));
    // Serialization keeps the compact names and rewrites `l` from the body.
    let mut changed = request.clone();
    changed.body = b"hello".to_vec();
    let bytes = String::from_utf8(changed.to_bytes()).unwrap();
    assert!(bytes.contains("\r\nl: 5\r\n"));
    assert!(!bytes.contains("Content-Length"));
}

#[test]
fn folded_lines_are_unfolded() {
    let raw = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h1;branch=z9hG4bK1,\r\n  SIP/2.0/UDP h2;branch=z9hG4bK2\r\nSubject: first\r\n\tsecond\r\n   third\r\nRoute:\r\n <sip:r1;lr>,\r\n <sip:r2;lr>\r\nContent-Length: 0\r\n\r\n";
    let message = Message::parse(raw.as_bytes()).unwrap();
    assert_eq!(message.headers().get("Subject"), Some("first second third"));
    let vias = message.via().unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[1].host, "h2");
    let route = message.route().unwrap();
    assert_eq!(route.len(), 2);
    assert_eq!(route[1].uri.host(), "r2");
    // A continuation line with nothing to continue is malformed.
    let bad = "OPTIONS sip:a@b SIP/2.0\r\n folded: x\r\n\r\n";
    assert_eq!(
        Message::parse(bad.as_bytes()).unwrap_err(),
        ParseError::HeaderLine
    );
}

#[test]
fn comma_lists_split_only_outside_quotes_and_angles() {
    let raw = "OPTIONS sip:a@b SIP/2.0\r\nContact: \"Smith, J\" <sip:j,k@x;a=1>;q=0.5, <sip:k@y>\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\nRecord-Route: <sip:p3;lr>\r\nAllow: INVITE, ACK,BYE ,CANCEL\r\nWWW-Authenticate: Digest realm=\"a\", nonce=\"b\"\r\nContent-Length: 0\r\n\r\n";
    let message = Message::parse(raw.as_bytes()).unwrap();
    let contacts = message.contact().unwrap();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0].display_name.as_deref(), Some("Smith, J"));
    assert_eq!(contacts[0].uri.user(), Some("j,k"));
    assert_eq!(contacts[0].params.get("q"), Some("0.5"));
    let hosts: Vec<String> = message
        .record_route()
        .unwrap()
        .into_iter()
        .map(|r| r.uri.host().to_owned())
        .collect();
    assert_eq!(hosts, ["p1", "p2", "p3"]);
    assert_eq!(
        message.allow(),
        [Method::Invite, Method::Ack, Method::Bye, Method::Cancel]
    );
    // Authentication headers are never split.
    assert_eq!(message.headers().get_all("WWW-Authenticate").count(), 1);
    let parts: Vec<&str> = split_comma_list(" a , \"b,c\" ,<d,e>,, ").collect();
    assert_eq!(parts, ["a", "\"b,c\"", "<d,e>"]);
}

#[test]
fn ipv6_hosts_in_via_uri_and_contact() {
    let raw = "INVITE sip:bob@[2001:db8::1]:5070;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP [2001:db8::2]:5061;branch=z9hG4bKv6;received=2001:db8::3\r\nFrom: <sip:a@[::1]>;tag=1\r\nTo: sip:b@[fe80::1]\r\nCall-ID: v6\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let request = Message::parse(raw.as_bytes()).unwrap();
    request.validate().unwrap();
    let request = request.as_request().unwrap();
    assert_eq!(request.uri.host(), "[2001:db8::1]");
    assert_eq!(request.uri.port(), Some(5070));
    let via = request.top_via().unwrap();
    assert_eq!((via.host.as_str(), via.port), ("[2001:db8::2]", Some(5061)));
    assert_eq!(via.received(), Some("2001:db8::3"));
    assert_eq!(request.from().unwrap().uri.host(), "[::1]");
    assert_eq!(request.to().unwrap().uri.host(), "[fe80::1]");
}

#[test]
fn tel_uris_in_request_line_and_headers() {
    let raw = "INVITE tel:+1-201-555-0123;phone-context=+1 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <tel:+4930123>;tag=a\r\nTo: <tel:911;phone-context=+1>\r\nP-Asserted-Identity: <tel:+4930123>, <sip:+4930123@example.com>\r\nCall-ID: tel\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let message = Message::parse(raw.as_bytes()).unwrap();
    message.validate().unwrap();
    let request = message.as_request().unwrap();
    assert_eq!(request.uri.scheme(), &Scheme::Tel);
    assert_eq!(request.uri.user(), Some("+1-201-555-0123"));
    assert_eq!(request.uri.param("phone-context"), Some("+1"));
    assert_eq!(request.to().unwrap().uri.user(), Some("911"));
    let pai = request.p_asserted_identity().unwrap();
    assert_eq!(pai.len(), 2);
    assert_eq!(pai[0].uri.scheme(), &Scheme::Tel);
    assert_eq!(pai[1].uri.scheme(), &Scheme::Sip);
}

#[test]
fn b2bua_extension_headers() {
    let raw = "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: ext\r\nCSeq: 7 INVITE\r\nRemote-Party-ID: \"Alice\" <sip:+4930@x>;party=calling;privacy=off\r\nDiversion: <sip:+4940@x>;reason=unconditional;counter=1\r\nSession-Expires: 1800;refresher=uac\r\nMin-SE: 90\r\nRequire: timer\r\nReason: Q.850;cause=16;text=\"Normal call clearing\"\r\nRetry-After: 120 (busy);duration=60\r\nProxy-Authorization: Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:b@x\", response=\"0\"\r\nContent-Length: 0\r\n\r\n";
    let message = Message::parse(raw.as_bytes()).unwrap();
    let request = message.as_request().unwrap();
    let rpid = request.remote_party_id().unwrap();
    assert_eq!(rpid[0].params.get("party"), Some("calling"));
    assert_eq!(
        request.diversion().unwrap()[0].params.get("reason"),
        Some("unconditional")
    );
    let expires = request.session_expires().unwrap().unwrap();
    assert_eq!(expires.delta, 1800);
    assert_eq!(request.headers.min_se().unwrap(), Some(90));
    assert_eq!(request.require(), ["timer"]);
    let reasons = request.reason_header().unwrap();
    assert_eq!(reasons[0].cause, Some(16));
    let retry = request.retry_after().unwrap().unwrap();
    assert_eq!((retry.seconds, retry.duration), (120, Some(60)));
    assert_eq!(request.headers.proxy_authorization().count(), 1);
    assert!(check_require(request, &["timer"]).is_ok());
    assert_eq!(check_require(request, &[]).unwrap_err().tags, ["timer"]);
    assert!(check_max_forwards(request).is_ok());
}

#[test]
fn response_for_request_copies_dialog_headers() {
    let raw = "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bKa\r\nVia: SIP/2.0/UDP p2;branch=z9hG4bKb\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: r1\r\nCSeq: 7 INVITE\r\nTimestamp: 54\r\nContact: <sip:a@h>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let request = match Message::parse(raw.as_bytes()).unwrap() {
        Message::Request(request) => request,
        Message::Response(_) => unreachable!(),
    };
    let mut ok = Response::for_request(&request, 200, "OK");
    assert_eq!(ok.via().unwrap().len(), 2);
    assert_eq!(ok.call_id().unwrap(), "r1");
    assert_eq!(ok.cseq().unwrap().sequence, 7);
    assert!(ok.headers.get("Contact").is_none());
    assert!(ok.headers.get("Timestamp").is_none());
    assert!(ok.set_to_tag("xyz"));
    assert_eq!(ok.to().unwrap().tag(), Some("xyz"));
    let trying = Response::for_request(&request, 100, "Trying");
    assert_eq!(trying.headers.get("Timestamp"), Some("54"));
    ok.headers.push("Content-Length", "0");
    let reparsed = Message::parse(&ok.to_bytes()).unwrap();
    reparsed.validate().unwrap();
    assert_eq!(reparsed.as_response().unwrap(), &ok);
}

#[test]
fn building_a_request_from_scratch() {
    let mut request = Request::new(Method::Invite, Uri::sip(Some("bob"), "example.com", None));
    let via = Via::new(Transport::Udp, "192.0.2.1", Some(5060), "z9hG4bKnew");
    request.headers.push("Via", &via.to_string());
    request.headers.push("Max-Forwards", "70");
    request
        .headers
        .push("From", "<sip:alice@example.com>;tag=9");
    request.headers.push("To", "<sip:bob@example.com>");
    request.headers.push("Call-ID", "built");
    request.headers.push("CSeq", "1 INVITE");
    request.body = b"v=0\r\n".to_vec();
    let bytes = request.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnew\r\n"));
    assert!(text.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"));
    let parsed = Message::parse(&bytes).unwrap();
    parsed.validate().unwrap();
    assert_eq!(parsed.body(), b"v=0\r\n");
}

#[test]
fn malformed_messages_map_to_statuses() {
    let cases: [(&str, ParseError, u16); 7] = [
        ("", ParseError::Empty, 400),
        (
            "INVITE sip:a@b SIP/2.0\r\nVia: x\r\n",
            ParseError::Incomplete,
            400,
        ),
        (
            "INVITE sip:a@b SIP/3.0\r\n\r\n",
            ParseError::Version("SIP/3.0".into()),
            505,
        ),
        ("SIP/2.0 20 OK\r\n\r\n", ParseError::StatusCode, 400),
        (
            "INVITE sip:a@b SIP/2.0\r\nNoColon\r\n\r\n",
            ParseError::HeaderLine,
            400,
        ),
        (
            "INVITE sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nab",
            ParseError::Truncated,
            400,
        ),
        (
            "INVITE sip:a@b SIP/2.0\r\nl: five\r\n\r\n",
            ParseError::ContentLength,
            400,
        ),
    ];
    for (raw, expected, status) in cases {
        let error = Message::parse(raw.as_bytes()).unwrap_err();
        assert_eq!(error, expected, "{raw:?}");
        assert_eq!(error.status(), status);
    }
    let no_call_id = "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let error = Message::parse(no_call_id.as_bytes())
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(error.reason(), "Bad Request (missing Call-ID)");
    let not_utf8 = b"INVITE sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n";
    assert_eq!(Message::parse(not_utf8).unwrap_err(), ParseError::Utf8);
}

#[test]
fn leading_crlf_and_bare_lf_are_tolerated() {
    let raw = "\r\n\r\nOPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nContent-Length: 0\n\n";
    let message = Message::parse(raw.as_bytes()).unwrap();
    assert_eq!(message.top_via().unwrap().host, "h");
}

#[test]
fn headers_editing_helpers() {
    let mut headers = Headers::new();
    headers.push("Route", "<sip:p1;lr>");
    headers.push("Route", "<sip:p2;lr>");
    assert_eq!(
        headers.remove_first("route").as_deref(),
        Some("<sip:p1;lr>")
    );
    headers.push_front_of("Via", "SIP/2.0/UDP me;branch=z9hG4bK1");
    headers.insert(0, "Max-Forwards", "69");
    assert_eq!(
        headers.iter().map(|(name, _)| name).collect::<Vec<_>>(),
        ["Max-Forwards", "Route", "Via"]
    );
    assert_eq!(headers.len(), 3);
}

#[test]
fn stream_framer_splits_arbitrary_chunks() {
    let first = INVITE.as_bytes();
    let second =
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 3\r\n\r\nabc";
    let mut stream = Vec::new();
    stream.extend_from_slice(b"\r\n\r\n");
    stream.extend_from_slice(first);
    stream.extend_from_slice(b"\r\n");
    stream.extend_from_slice(second);
    for chunk in [1, 2, 3, 7, 64, 1000] {
        let mut framer = StreamFramer::new();
        let mut messages = Vec::new();
        let mut pings = 0;
        for piece in stream.chunks(chunk) {
            framer.push(piece);
            while let Some(message) = framer.next_message().unwrap() {
                messages.push(message);
            }
            pings += usize::from(framer.take_keepalive());
        }
        assert_eq!(messages.len(), 2, "chunk {chunk}");
        assert_eq!(messages[0], Message::parse(first).unwrap());
        assert_eq!(messages[1].body(), b"abc");
        assert_eq!(framer.buffered(), 0);
        assert!(pings >= 1, "chunk {chunk}");
    }
}

#[test]
fn stream_framer_errors() {
    let mut framer = StreamFramer::new();
    framer.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n");
    assert_eq!(
        framer.next_message().unwrap_err(),
        ParseError::StreamContentLength
    );
    // The stream stays failed: it cannot be resynchronised.
    framer.push(b"more");
    assert!(framer.next_message().is_err());

    let mut small = StreamFramer::with_max_size(100);
    small.push(&[b'a'; 101]);
    assert_eq!(small.next_message().unwrap_err(), ParseError::TooLarge(100));
    assert_eq!(ParseError::TooLarge(100).status(), 513);

    let mut big_body = StreamFramer::with_max_size(200);
    big_body.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 500\r\n\r\n");
    assert_eq!(
        big_body.next_message().unwrap_err(),
        ParseError::TooLarge(200)
    );

    let mut waiting = StreamFramer::new();
    waiting.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nab");
    assert_eq!(waiting.next_message().unwrap(), None);
    waiting.push(b"cde");
    assert_eq!(waiting.next_message().unwrap().unwrap().body(), b"abcde");
}

/// Inputs found by `cargo fuzz` (a multi-byte character where "SIP/" was being sliced).
#[test]
fn fuzz_regressions_do_not_panic() {
    let cases: [&[u8]; 4] = [
        b"\n\x00 |\x00\x08 ss{\xea\x82\xa5\n\n",
        b"\n\x00\x00\xea\x8a\x90\n\n\x02\n~~",
        "SI\u{e9} x SIP/2.0\r\n\r\n".as_bytes(),
        "INVITE sip:a@b SIP\u{e9}2.0\r\n\r\n".as_bytes(),
    ];
    for case in cases {
        assert!(Message::parse(case).is_err());
        let mut framer = StreamFramer::new();
        framer.push(case);
        assert!(framer.next_message().is_err());
    }
}

#[test]
fn contact_wildcard_and_max_forwards_decrement() {
    let base = "REGISTER sip:r SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@r>;tag=1\r\nTo: <sip:a@r>\r\nCall-ID: w\r\nCSeq: 2 REGISTER\r\nMax-Forwards: 1\r\n";
    let alone = format!("{base}Contact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n");
    let mut request = match Message::parse(alone.as_bytes()).unwrap() {
        Message::Request(request) => request,
        Message::Response(_) => unreachable!(),
    };
    request.validate().unwrap();
    assert!(request.headers.contact_is_wildcard());
    assert!(request.contact().unwrap().is_empty());
    assert_eq!(request.decrement_max_forwards().unwrap(), 0);
    assert_eq!(request.headers.get("Max-Forwards"), Some("0"));
    assert_eq!(request.decrement_max_forwards().unwrap_err().status(), 483);
    request.headers.remove("Max-Forwards");
    assert_eq!(request.decrement_max_forwards().unwrap(), 70);

    let mixed = format!("{base}Contact: *, <sip:a@h>\r\nContent-Length: 0\r\n\r\n");
    let error = Message::parse(mixed.as_bytes())
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(
        error,
        ParseError::bad_header("Contact", "* mixed with addresses")
    );
}

/// `Debug` of a message hides dialled numbers, caller IDs and credentials (a message logged
/// with `{:?}` must not leak them) but keeps what correlates logs.
#[test]
fn debug_output_hides_numbers_and_credentials() {
    let text = "INVITE sip:0044207123456@carrier.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
        From: <sip:15551230000@192.0.2.1>;tag=1\r\n\
        To: <sip:0044207123456@carrier.example>\r\n\
        Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
        P-Asserted-Identity: <tel:+15551230000>\r\n\
        Authorization: Digest username=\"alice\", response=\"secret\"\r\n\
        Content-Length: 0\r\n\r\n";
    let message = talktime_sip::Message::parse(text.as_bytes()).unwrap();
    let debug = format!("{message:?}");
    for hidden in ["15551230000", "0044207123456", "alice", "secret"] {
        assert!(!debug.contains(hidden), "{hidden} leaked: {debug}");
    }
    assert!(debug.contains("carrier.example"), "{debug}");
    assert!(
        debug.contains("c1"),
        "the Call-ID stays for correlation: {debug}"
    );
}

/// RFC 3261 §12.1.1: a response that makes a dialog copies Record-Route in order (the caller
/// behind a record-routing proxy sends its ACK and BYE through it); 100 and errors do not.
#[test]
fn a_dialog_making_response_copies_record_route_in_order() {
    let raw = "INVITE sip:b@x SIP/2.0\r\nRecord-Route: <sip:p1;lr>\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bKa\r\nRecord-Route: <sip:p2;lr;ftag=9>, <sip:p3;lr>\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: r1\r\nCSeq: 7 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let request = match Message::parse(raw.as_bytes()).unwrap() {
        Message::Request(request) => request,
        Message::Response(_) => unreachable!(),
    };
    for status in [180, 183, 200] {
        let response = Response::for_request(&request, status, "x");
        let routes: Vec<String> = response
            .record_route()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            routes,
            ["<sip:p1;lr>", "<sip:p2;lr;ftag=9>", "<sip:p3;lr>"],
            "{status}"
        );
    }
    for status in [100, 486] {
        let response = Response::for_request(&request, status, "x");
        assert!(response.record_route().unwrap().is_empty(), "{status}");
    }
}
