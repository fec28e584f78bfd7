//! Parsing and writing: unknown lines survive in place, tolerant inputs, typed errors.

#![allow(clippy::unwrap_used)] // tests may unwrap

use proptest::prelude::*;
use talktime_sdp::{Line, ParseError, SessionDescription};

const WITH_UNKNOWN_LINES: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=call\r\ni=information\r\nu=http://example.com/\r\ne=ops@example.com\r\nc=IN IP4 192.0.2.1\r\nb=CT:128\r\nt=0 0\r\nr=7d 1h 0 25h\r\na=group:BUNDLE 0\r\nm=audio 5004 RTP/AVP 0 8\r\ni=voice\r\nb=AS:80\r\na=mid:0\r\na=x-vendor-thing:1 2 3\r\nk=prompt\r\nm=audio 5006/2 RTP/AVP 0\r\nc=IN IP4 224.2.1.1/127\r\n";

#[test]
fn unknown_lines_are_written_back_verbatim_and_in_place() {
    let parsed = SessionDescription::parse(WITH_UNKNOWN_LINES.as_bytes()).unwrap();
    assert_eq!(parsed.to_string(), WITH_UNKNOWN_LINES);
    assert_eq!(parsed.media.len(), 2);
    assert_eq!(parsed.media[1].port_count, Some(2));
    let multicast = parsed.media[1].connection().unwrap();
    assert_eq!(multicast.ip(), Some("224.2.1.1".parse().unwrap()));
    assert_eq!(parsed.media[0].attribute("x-vendor-thing"), Some("1 2 3"));
}

#[test]
fn lf_only_input_is_written_with_crlf() {
    let lf = WITH_UNKNOWN_LINES.replace("\r\n", "\n");
    let parsed = SessionDescription::parse(lf.as_bytes()).unwrap();
    assert_eq!(parsed.to_string(), WITH_UNKNOWN_LINES);
}

#[test]
fn image_t38_with_port_zero_parses() {
    let text = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=image 0 udptl t38\n";
    let parsed = SessionDescription::parse(text.as_bytes()).unwrap();
    assert_eq!(parsed.media[0].kind, "image");
    assert_eq!(parsed.media[0].port, 0);
    assert_eq!(parsed.media[0].formats, vec!["t38"]);
    assert!(!parsed.media[0].is_rtp());
}

#[test]
fn errors_say_what_is_wrong() {
    type Check = fn(&ParseError) -> bool;
    let cases: [(&[u8], Check); 6] = [
        (b"", |e| *e == ParseError::Empty),
        (b"v=1\r\n", |e| matches!(e, ParseError::BadVersion(_))),
        (b"v=0\r\ns=-\r\n", |e| *e == ParseError::MissingOrigin),
        (b"v=0\r\no=- 1 IN IP4\r\n", |e| {
            matches!(e, ParseError::BadOrigin { line: 2, .. })
        }),
        (b"v=0\r\no=- 1 1 IN IP4 a\r\nm=audio x RTP/AVP 0\r\n", |e| {
            matches!(e, ParseError::BadMedia { line: 3, .. })
        }),
        (b"v=0\r\no=- 1 1 IN IP4 a\r\nnonsense\r\n", |e| {
            matches!(e, ParseError::MalformedLine { line: 3, .. })
        }),
    ];
    for (input, check) in cases {
        let error = SessionDescription::parse(input).unwrap_err();
        assert!(check(&error), "{error:?} for {input:?}");
    }
    assert_eq!(
        SessionDescription::parse(&[0xff, 0xfe]).unwrap_err(),
        ParseError::NotUtf8
    );
}

proptest! {
    /// Whatever lines we parse, writing and parsing again gives the same description.
    #[test]
    fn write_then_parse_is_identity(
        attributes in proptest::collection::vec(("[a-z][a-z0-9-]{0,10}", proptest::option::of("[ -~]{0,20}")), 0..6),
        others in proptest::collection::vec((prop::sample::select(vec!['i', 'b', 'k', 'u']), "[!-~][ -~]{0,20}"), 0..4),
        port in 0u16..,
        formats in proptest::collection::vec(0u8..128, 1..5),
    ) {
        let mut text = String::from("v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n");
        text += &format!("m=audio {port} RTP/AVP {}\r\n",
            formats.iter().map(u8::to_string).collect::<Vec<_>>().join(" "));
        for (kind, value) in &others {
            text += &format!("{kind}={value}\r\n");
        }
        for (name, value) in &attributes {
            match value {
                Some(value) => text += &format!("a={name}:{value}\r\n"),
                None => text += &format!("a={name}\r\n"),
            }
        }
        let parsed = SessionDescription::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(parsed.to_string(), text.clone());
        let media_lines = parsed.media[0].lines.iter().filter(|l| matches!(l, Line::Attribute(_))).count();
        prop_assert_eq!(media_lines, attributes.len());
        prop_assert_eq!(SessionDescription::parse(parsed.to_string().as_bytes()).unwrap(), parsed);
    }
}

proptest! {
    /// Arbitrary bodies (from the network) give a result or a typed error, never a panic.
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = SessionDescription::parse(&body);
        let mut with_header = b"v=0\r\no=- 1 1 IN IP4 a\r\n".to_vec();
        with_header.extend(&body);
        if let Ok(parsed) = SessionDescription::parse(&with_header) {
            // Whatever we accept, we can write and read back.
            let written = parsed.to_bytes();
            prop_assert_eq!(SessionDescription::parse(&written).unwrap().to_bytes(), written);
        }
    }
}
