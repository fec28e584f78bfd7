//! RFC 4475 (SIP torture test messages), organised by RFC section.
//!
//! Fixtures are the exact message bytes, one file per message, named
//! `<section>_<name>.dat`. The 13 §3.1.1 messages are checked against SHA-256 digests of the
//! RFC's Appendix A archive members; the others were rebuilt from the RFC's printed text
//! (CRLF line endings) and their bodies agree with the Content-Length each one states, except
//! where a wrong length is the point of the test (clerr, ncl, mcl01).
//!
//! `Message::parse` frames the message and keeps headers raw; typed checks happen in
//! `validate()` (what a UAS runs on receipt). Each invalid message is rejected by one of the
//! two with the status the RFC asks for.

#![allow(clippy::unwrap_used)]

use sha2::{Digest, Sha256};
use talktime_sip::auth::Credentials;
use talktime_sip::{
    Message, Method, ParseError, Request, Response, Scheme, check_max_forwards, check_require,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn request(name: &str) -> Request {
    match Message::parse(&fixture(name)) {
        Ok(Message::Request(request)) => request,
        other => panic!("{name}: expected a request, got {other:?}"),
    }
}

fn response(name: &str) -> Response {
    match Message::parse(&fixture(name)) {
        Ok(Message::Response(response)) => response,
        other => panic!("{name}: expected a response, got {other:?}"),
    }
}

/// Parse and validate; the error a UAS would answer with.
fn rejection(name: &str) -> ParseError {
    match Message::parse(&fixture(name)).and_then(|message| message.validate()) {
        Ok(()) => panic!("{name}: accepted, expected a rejection"),
        Err(error) => error,
    }
}

/// Every valid message also survives serialize → parse unchanged.
fn assert_round_trip(name: &str) {
    let message = Message::parse(&fixture(name)).unwrap();
    let again = Message::parse(&message.to_bytes()).unwrap();
    assert_eq!(message, again, "{name} round trip");
}

mod section_3_1_1_valid {
    use super::*;

    #[test]
    fn fixtures_are_byte_exact() {
        let digests = [
            (
                "3.1.1.1_wsinv",
                "d6f6cdee99cd0a1f8e3d9a0fdd67c877700e19ab86d8186dada06f61260e3e61",
            ),
            (
                "3.1.1.2_intmeth",
                "b957a8292c1c0a9851fe94705b90f94320738f43aacde64998e401f742ef688d",
            ),
            (
                "3.1.1.3_esc01",
                "be3a316d4ce5f69cad474646191e390dd4b50fc8371e44b5197fe1237781973e",
            ),
            (
                "3.1.1.4_escnull",
                "263fe2ecd12a5ccbb6c67b3174e9211d11da9b600e7d69666a86d2ee42873e90",
            ),
            (
                "3.1.1.5_esc02",
                "9a9c59449f00327b02071feafc8e5c2a261c98c818044167894cc17809a12199",
            ),
            (
                "3.1.1.6_lwsdisp",
                "d1b36b6316c12824f6f04bf6b1fd1f021cade9b74871693b9c3474cd9fa7f4e6",
            ),
            (
                "3.1.1.7_longreq",
                "185739292bc676760e5b1cca77c87705aa570240171c506ad76f8c35af0ecdaa",
            ),
            (
                "3.1.1.8_dblreq",
                "a6be48426565c2a705389c4ce2ea17e57b891cb13f80490a2cb9392c797b46ef",
            ),
            (
                "3.1.1.9_semiuri",
                "87bbaed6b4b354dbd3c5c7a20e66686303c63e43a0aa19b89de1ac75231611a2",
            ),
            (
                "3.1.1.10_transports",
                "33b4553a3b9418121b099ff07882535151edd6a1e81898c63a916aad2cbf90bc",
            ),
            (
                "3.1.1.11_mpart01",
                "92147c8e24997bac59629e1b163767697d0d6d499af87f89e325d69968bec3ba",
            ),
            (
                "3.1.1.12_unreason",
                "4f939d6ebf4817eea70f011d3209e83732872ffc20ffd304b244084dc392f4d7",
            ),
            (
                "3.1.1.13_noreason",
                "07e11e470a69fffa3674de805e5165d1351a9439a91045ee70c9570ea24ab4fe",
            ),
        ];
        for (name, expected) in digests {
            let digest = hex::encode(Sha256::digest(fixture(name)));
            assert_eq!(digest, expected, "{name}");
        }
    }

    #[test]
    fn wsinv_short_tortuous_invite() {
        let name = "3.1.1.1_wsinv";
        let request = request(name);
        request.validate().unwrap();
        assert_eq!(request.method, Method::Invite);
        assert_eq!(request.uri.user(), Some("vivekg"));
        assert_eq!(request.uri.host(), "chair-dnrc.example.com");
        assert_eq!(request.uri.param("unknownparam"), Some(""));
        let to = request.to().unwrap();
        assert_eq!(to.uri.to_string(), "sip:vivekg@chair-dnrc.example.com");
        assert_eq!(to.tag(), Some("1918181833n"));
        let from = request.from().unwrap();
        assert_eq!(from.display_name.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(from.tag(), Some("98asjd8"));
        assert_eq!(request.max_forwards().unwrap(), Some(68));
        assert_eq!(request.call_id().unwrap(), "wsinv.ndaksdj@192.0.2.1");
        let cseq = request.cseq().unwrap();
        assert_eq!((cseq.sequence, cseq.method), (9, Method::Invite));
        let vias = request.via().unwrap();
        assert_eq!(vias.len(), 3);
        assert_eq!(
            (vias[0].transport.as_str(), vias[0].host.as_str()),
            ("UDP", "192.0.2.2")
        );
        assert_eq!(vias[0].branch(), Some("390skdjuw"));
        assert!(!vias[0].has_rfc3261_branch());
        assert_eq!(
            (vias[1].transport.as_str(), vias[1].host.as_str()),
            ("TCP", "spindle.example.com")
        );
        assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(
            (vias[2].transport.as_str(), vias[2].host.as_str()),
            ("UDP", "192.168.255.111")
        );
        assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
        assert_eq!(request.headers.get("Subject"), Some(""));
        assert_eq!(
            request.headers.get("NewFangledHeader"),
            Some("newfangled value continued newfangled value")
        );
        assert_eq!(
            request.headers.get("UnknownHeaderWithUnusualValue"),
            Some(";;,,;;,;")
        );
        let route = request.route().unwrap();
        assert_eq!(route.len(), 1);
        assert_eq!(route[0].uri.param("unknownwith"), Some("value"));
        assert_eq!(route[0].uri.param("unknown-no-value"), Some(""));
        let contact = request.contact().unwrap();
        assert_eq!(contact.len(), 1);
        assert_eq!(
            contact[0].display_name.as_deref(),
            Some("Quoted string \"\"")
        );
        assert_eq!(contact[0].params.get("newparam"), Some("newvalue"));
        assert_eq!(contact[0].params.get("secondparam"), Some(""));
        assert_eq!(contact[0].params.get("q"), Some("0.33"));
        assert!(
            request
                .content_type()
                .unwrap()
                .unwrap()
                .is("application/sdp")
        );
        assert_eq!(request.body.len(), 150);
        assert_round_trip(name);
    }

    #[test]
    fn intmeth_wide_range_of_valid_characters() {
        let name = "3.1.1.2_intmeth";
        let request = request(name);
        request.validate().unwrap();
        let method = "!interesting-Method0123456789_*+`.%indeed'~";
        assert_eq!(request.method, Method::Other(method.into()));
        assert_eq!(request.cseq().unwrap().method.as_str(), method);
        assert_eq!(request.cseq().unwrap().sequence, 139122385);
        assert_eq!(
            request.uri.user(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            request.uri.password(),
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
        assert_eq!(request.uri.host(), "example.com");
        assert_eq!(
            request.top_via().unwrap().branch(),
            Some("z9hG4bK-.!%66*_+`'~")
        );
        let to = request.to().unwrap();
        assert_eq!(to.display_name.as_deref(), Some("BEL:\x07 NUL:\0 DEL:\x7f"));
        let from = request.from().unwrap();
        assert_eq!(
            from.display_name.as_deref(),
            Some("token1~` token2'+_ token3*%!.-")
        );
        assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
        assert_eq!(
            from.params.get_unquoted("fromParam''~+*_!.-%").as_deref(),
            Some("работающий")
        );
        assert_eq!(
            request.call_id().unwrap(),
            "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
        );
        assert_eq!(request.max_forwards().unwrap(), Some(255));
        assert_eq!(
            request.headers.get("extensionHeader-!.%*+_`'~"),
            Some("\u{feff}大停電")
        );
        assert_round_trip(name);
    }

    #[test]
    fn esc01_valid_percent_escapes() {
        let name = "3.1.1.3_esc01";
        let request = request(name);
        request.validate().unwrap();
        assert_eq!(request.uri.user(), Some("sips%3Auser%40example.com"));
        assert_eq!(
            request.uri.user_unescaped().as_deref(),
            Some("sips:user@example.com")
        );
        assert_eq!(request.uri.host(), "example.net");
        let to = request.to().unwrap();
        assert_eq!(to.uri.user_unescaped().as_deref(), Some("user"));
        let from = request.from().unwrap();
        assert_eq!(from.uri.user_unescaped().as_deref(), Some("I have spaces"));
        assert_eq!(
            request.call_id().unwrap(),
            "esc01.239409asdfakjkn23onasd0-3234"
        );
        let contact = &request.contact().unwrap()[0];
        assert_eq!(contact.uri.user_unescaped().as_deref(), Some("caller"));
        assert_eq!(contact.uri.param("%6C%72"), Some(""));
        // Not unescaped recursively: "v%61lue%25%34%31" is "value%41", not "valueA".
        assert_eq!(contact.uri.param("n%61me"), Some("v%61lue%25%34%31"));
        let plain =
            talktime_sip::Uri::parse("sip:caller@host5.example.net;lr;name=value%2541").unwrap();
        assert!(contact.uri.equivalent(&plain));
        let wrong =
            talktime_sip::Uri::parse("sip:caller@host5.example.net;lr;name=valueA").unwrap();
        assert!(!contact.uri.equivalent(&wrong));
        assert_round_trip(name);
    }

    #[test]
    fn escnull_escaped_nulls_in_uris() {
        let name = "3.1.1.4_escnull";
        let request = request(name);
        request.validate().unwrap();
        let to = request.to().unwrap();
        assert_eq!(to.uri.user(), Some("null-%00-null"));
        assert_eq!(to.uri.user_unescaped().as_deref(), Some("null-\0-null"));
        let contacts = request.contact().unwrap();
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[0].uri.user_unescaped().as_deref(), Some("\0"));
        assert_eq!(contacts[1].uri.user_unescaped().as_deref(), Some("\0\0"));
        assert!(!contacts[0].uri.equivalent(&contacts[1].uri));
        assert_eq!(request.headers.content_length().unwrap(), Some(0));
        assert_round_trip(name);
    }

    #[test]
    fn esc02_percent_that_is_not_an_escape() {
        let name = "3.1.1.5_esc02";
        let request = request(name);
        request.validate().unwrap();
        assert_eq!(request.method, Method::Other("RE%47IST%45R".into()));
        assert_ne!(request.method, Method::Register);
        assert_eq!(request.to().unwrap().display_name.as_deref(), Some("%Z%45"));
        assert_eq!(
            request.top_via().unwrap().branch(),
            Some("z9hG4bK209%fzsnel234")
        );
        let contacts = request.contact().unwrap();
        assert_eq!(contacts.len(), 2, "C%6Fntact is not Contact");
        assert_eq!(contacts[1].uri.user(), Some("alias3"));
        assert_eq!(
            request.headers.get("C%6Fntact"),
            Some("<sip:alias2@host2.example.com>")
        );
        assert_round_trip(name);
    }

    #[test]
    fn lwsdisp_no_lws_between_display_name_and_angle() {
        let name = "3.1.1.6_lwsdisp";
        let request = request(name);
        request.validate().unwrap();
        let from = request.from().unwrap();
        assert_eq!(from.display_name.as_deref(), Some("caller"));
        assert_eq!(from.uri.to_string(), "sip:caller@example.com");
        assert_eq!(from.tag(), Some("323"));
        assert_round_trip(name);
    }

    #[test]
    fn longreq_long_values() {
        let name = "3.1.1.7_longreq";
        let request = request(name);
        request.validate().unwrap();
        let to = request.to().unwrap();
        assert!(
            to.display_name
                .as_deref()
                .unwrap()
                .ends_with("extreme proportion")
        );
        assert_eq!(to.uri.port(), Some(6000));
        assert_eq!(to.uri.params().len(), 3);
        let from = request.from().unwrap();
        assert_eq!(from.tag().map(str::len), Some(155));
        assert_eq!(from.uri.user().map(str::len), Some(115));
        let vias = request.via().unwrap();
        assert_eq!(vias.len(), 34);
        for (index, via) in vias.iter().take(33).enumerate() {
            assert_eq!(via.host, format!("sip{}.example.com", 33 - index));
        }
        assert_eq!(vias[33].received(), Some("192.0.2.5"));
        assert!(vias[33].branch().unwrap().ends_with("longbranchvalue"));
        let unknown = request
            .headers
            .iter()
            .find(|(name, _)| name.starts_with("Unknown-LongLong"))
            .unwrap();
        assert!(unknown.1.ends_with("-parameter-value"));
        assert_eq!(request.body.len(), 150);
        assert_round_trip(name);
    }

    #[test]
    fn dblreq_extra_octets_in_datagram_are_ignored() {
        let name = "3.1.1.8_dblreq";
        let request = request(name);
        request.validate().unwrap();
        assert_eq!(request.method, Method::Register);
        assert!(request.body.is_empty());
        assert_eq!(
            request.call_id().unwrap(),
            "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
        );
        assert_eq!(
            request
                .to_bytes()
                .windows(6)
                .filter(|w| w == b"INVITE")
                .count(),
            0
        );
        assert_round_trip(name);
    }

    #[test]
    fn semiuri_semicolons_in_user_part() {
        let name = "3.1.1.9_semiuri";
        let request = request(name);
        request.validate().unwrap();
        assert_eq!(request.uri.user(), Some("user;par=u%40example.net"));
        assert_eq!(
            request.uri.user_unescaped().as_deref(),
            Some("user;par=u@example.net")
        );
        assert_eq!(request.uri.host(), "example.com");
        assert!(request.uri.params().is_empty());
        let accept: Vec<&str> = request.headers.get_all("Accept").collect();
        assert_eq!(accept.len(), 6);
        assert_eq!(accept[5], "message/sipfrag");
        assert_round_trip(name);
    }

    #[test]
    fn transports_varied_and_unknown() {
        let name = "3.1.1.10_transports";
        let request = request(name);
        request.validate().unwrap();
        let transports: Vec<String> = request
            .via()
            .unwrap()
            .into_iter()
            .map(|v| v.transport)
            .collect();
        assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
        let vias = request.via().unwrap();
        assert_eq!(vias[3].transport_type(), None);
        assert_eq!(
            vias[1].transport_type(),
            Some(talktime_sip::Transport::Sctp)
        );
        assert_eq!(
            request.call_id().unwrap(),
            "transports.kijh4akdnaqjkwendsasfdj"
        );
        assert_round_trip(name);
    }

    #[test]
    fn mpart01_multipart_with_binary_body() {
        let name = "3.1.1.11_mpart01";
        let request = request(name);
        request.validate().unwrap();
        assert_eq!(request.method, Method::Message);
        assert_eq!(request.body.len(), 553);
        assert!(request.body.contains(&0));
        assert!(request.body.ends_with(b"--7a9cbec02ceef655--\r\n"));
        let media = request.content_type().unwrap().unwrap();
        assert!(media.is("multipart/mixed"));
        assert_eq!(media.params.get("boundary"), Some("7a9cbec02ceef655"));
        assert_eq!(request.top_via().unwrap().rport(), Some(None));
        assert_eq!(request.route().unwrap()[0].uri.port(), Some(5080));
        assert_round_trip(name);
    }

    #[test]
    fn unreason_utf8_reason_phrase() {
        let name = "3.1.1.12_unreason";
        let response = response(name);
        response.validate().unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            response.reason,
            "= 2**3 * 5**2 но сто девяносто девять - простое"
        );
        assert_eq!(response.body.len(), 154);
        assert_round_trip(name);
    }

    #[test]
    fn noreason_empty_reason_phrase() {
        let name = "3.1.1.13_noreason";
        let response = response(name);
        response.validate().unwrap();
        assert_eq!(response.status, 100);
        assert_eq!(response.reason, "");
        assert_eq!(response.to().unwrap().tag(), Some("902jndnke3"));
        assert_round_trip(name);
    }
}

mod section_3_1_2_invalid {
    use super::*;

    fn assert_rejected(name: &str, status: u16, expected: ParseError) {
        let error = rejection(name);
        assert_eq!(error.status(), status, "{name}: {error}");
        assert_eq!(error, expected, "{name}");
        assert!(error.reason().starts_with(if status == 505 {
            "Version Not Supported ("
        } else {
            "Bad Request ("
        }));
    }

    #[test]
    fn badinv01_extraneous_separators() {
        let error = rejection("3.1.2.1_badinv01");
        assert_eq!(error.status(), 400);
        assert!(
            matches!(error, ParseError::BadHeader { name: "Via", .. }),
            "{error}"
        );
    }

    #[test]
    fn clerr_content_length_larger_than_datagram() {
        assert_rejected("3.1.2.2_clerr", 400, ParseError::Truncated);
    }

    #[test]
    fn ncl_negative_content_length() {
        assert_rejected("3.1.2.3_ncl", 400, ParseError::ContentLength);
    }

    #[test]
    fn scalar02_overlarge_request_scalars() {
        let error = rejection("3.1.2.4_scalar02");
        assert_eq!(error.status(), 400);
        assert_eq!(
            error,
            ParseError::bad_header("CSeq", "sequence number too large")
        );
        // Each other field is also caught on its own.
        let request = request("3.1.2.4_scalar02");
        assert!(request.max_forwards().is_err());
        assert!(request.headers.expires().is_err());
    }

    #[test]
    fn scalarlg_overlarge_response_scalars() {
        let error = rejection("3.1.2.5_scalarlg");
        assert_eq!(
            error,
            ParseError::bad_header("CSeq", "sequence number too large")
        );
        let response = response("3.1.2.5_scalarlg");
        assert!(response.retry_after().is_err());
    }

    #[test]
    fn quotbal_unterminated_quote() {
        let error = rejection("3.1.2.6_quotbal");
        assert_eq!(
            error,
            ParseError::bad_header("To", "unterminated quoted display name")
        );
        assert_eq!(
            error.reason(),
            "Bad Request (malformed To: unterminated quoted display name)"
        );
    }

    #[test]
    fn ltgtruri_request_uri_in_angle_brackets() {
        assert_rejected("3.1.2.7_ltgtruri", 400, ParseError::RequestUri);
    }

    #[test]
    fn lwsruri_whitespace_in_request_uri() {
        assert_rejected("3.1.2.8_lwsruri", 400, ParseError::StartLine);
    }

    #[test]
    fn lwsstart_multiple_spaces_in_request_line() {
        // The RFC allows rejecting or tolerating; we reject (single SP is the grammar).
        assert_rejected("3.1.2.9_lwsstart", 400, ParseError::StartLine);
    }

    #[test]
    fn trws_trailing_spaces_on_request_line() {
        // As for lwsstart: rejected rather than silently trimmed.
        assert_rejected("3.1.2.10_trws", 400, ParseError::StartLine);
    }

    #[test]
    fn escruri_headers_in_request_uri() {
        assert_rejected("3.1.2.11_escruri", 400, ParseError::RequestUri);
    }

    #[test]
    fn baddate_non_gmt_date_is_tolerated() {
        // The RFC lets an element ignore a Date it does not use. Talktime never reads Date,
        // so the request is accepted and the header is forwarded untouched.
        let request = request("3.1.2.12_baddate");
        request.validate().unwrap();
        assert_eq!(
            request.headers.get("Date"),
            Some("Fri, 01 Jan 2010 16:00:00 EST")
        );
    }

    #[test]
    fn regbadct_uri_with_headers_outside_angle_brackets() {
        let error = rejection("3.1.2.13_regbadct");
        assert_eq!(
            error,
            ParseError::bad_header("Contact", "URI with headers outside <>")
        );
    }

    #[test]
    fn badaspec_spaces_inside_addr_spec() {
        let error = rejection("3.1.2.14_badaspec");
        assert_eq!(error, ParseError::bad_header("To", "malformed URI"));
    }

    #[test]
    fn baddn_unquoted_non_token_display_names() {
        let error = rejection("3.1.2.15_baddn");
        assert_eq!(
            error,
            ParseError::bad_header("From", "display name is not tokens")
        );
    }

    #[test]
    fn badvers_unknown_protocol_version() {
        assert_rejected(
            "3.1.2.16_badvers",
            505,
            ParseError::Version("SIP/7.0".into()),
        );
    }

    #[test]
    fn mismatch01_cseq_method_differs() {
        assert_rejected("3.1.2.17_mismatch01", 400, ParseError::CSeqMethodMismatch);
    }

    #[test]
    fn mismatch02_unknown_method_with_other_cseq_method() {
        // The RFC prefers 501 but accepts 400; the mismatch is detected before the method is
        // looked at, so this stack answers 400.
        assert_rejected("3.1.2.18_mismatch02", 400, ParseError::CSeqMethodMismatch);
    }

    #[test]
    fn bigcode_overlarge_status_code() {
        assert_rejected("3.1.2.19_bigcode", 400, ParseError::StatusCode);
    }
}

mod section_3_2_transaction_layer {
    use super::*;

    #[test]
    fn badbranch_magic_cookie_without_identifier() {
        // Syntactically valid; the transaction layer decides what an empty id means.
        let request = request("3.2.1_badbranch");
        request.validate().unwrap();
        let via = request.top_via().unwrap();
        assert_eq!(via.branch(), Some("z9hG4bK"));
        assert!(via.has_rfc3261_branch());
    }
}

mod section_3_3_application_layer {
    use super::*;

    #[test]
    fn insuf_missing_required_headers() {
        let error = rejection("3.3.1_insuf");
        assert_eq!(error, ParseError::MissingHeader("From"));
        assert_eq!(error.reason(), "Bad Request (missing From)");
    }

    #[test]
    fn unkscm_unknown_request_uri_scheme() {
        let request = request("3.3.2_unkscm");
        request.validate().unwrap();
        assert_eq!(
            request.uri.scheme(),
            &Scheme::Other("nobodyKnowsThisScheme".into())
        );
        assert_eq!(request.uri.opaque(), Some("totallyopaquecontent"));
        let error = request.check_uri_scheme().unwrap_err();
        assert_eq!(error.status(), 416);
    }

    #[test]
    fn novelsc_known_but_atypical_scheme() {
        let request = request("3.3.3_novelsc");
        assert_eq!(request.uri.scheme(), &Scheme::Other("soap.beep".into()));
        assert_eq!(request.uri.to_string(), "soap.beep://192.0.2.103:3002");
        assert_eq!(request.check_uri_scheme().unwrap_err().status(), 416);
    }

    #[test]
    fn unksm2_unknown_schemes_in_headers() {
        let request = request("3.3.4_unksm2");
        request.validate().unwrap();
        assert_eq!(
            request.to().unwrap().uri.scheme(),
            &Scheme::Other("isbn".into())
        );
        assert_eq!(
            request.from().unwrap().uri.to_string(),
            "http://www.example.com"
        );
        assert_eq!(
            request.contact().unwrap()[0].uri.to_string(),
            "name:John_Smith"
        );
    }

    #[test]
    fn bext01_require_and_proxy_require() {
        let request = request("3.3.5_bext01");
        request.validate().unwrap();
        let unsupported = check_require(&request, &["timer", "100rel"]).unwrap_err();
        assert_eq!(
            unsupported.tags,
            ["nothingSupportsThis", "nothingSupportsThisEither"]
        );
        let reply = unsupported.response(&request);
        assert_eq!(reply.status, 420);
        assert_eq!(
            reply.headers.get("Unsupported"),
            Some("nothingSupportsThis, nothingSupportsThisEither")
        );
        assert_eq!(request.headers.proxy_require().len(), 2);
    }

    #[test]
    fn invut_unknown_content_type() {
        let request = request("3.3.6_invut");
        request.validate().unwrap();
        assert!(
            request
                .content_type()
                .unwrap()
                .unwrap()
                .is("application/unknownformat")
        );
        assert_eq!(request.body.len(), 40);
    }

    #[test]
    fn regaut01_unknown_authorization_scheme() {
        let request = request("3.3.7_regaut01");
        request.validate().unwrap();
        let value = request.headers.authorization().next().unwrap();
        let credentials = Credentials::parse(value).unwrap();
        assert_eq!(credentials.scheme, "NoOneKnowsThisScheme");
        assert!(!credentials.is_digest());
    }

    #[test]
    fn multi01_multiple_values_in_single_value_fields() {
        let error = rejection("3.3.8_multi01");
        assert_eq!(error, ParseError::DuplicateHeader("From"));
        let request = request("3.3.8_multi01");
        assert_eq!(
            request.call_id().unwrap_err(),
            ParseError::DuplicateHeader("Call-ID")
        );
        assert_eq!(
            request.cseq().unwrap_err(),
            ParseError::DuplicateHeader("CSeq")
        );
        assert_eq!(request.to().unwrap_err(), ParseError::DuplicateHeader("To"));
    }

    #[test]
    fn mcl01_conflicting_content_lengths() {
        assert_eq!(rejection("3.3.9_mcl01"), ParseError::ContentLength);
    }

    #[test]
    fn bcast_broadcast_via_is_visible() {
        let response = response("3.3.10_bcast");
        response.validate().unwrap();
        assert_eq!(response.via().unwrap()[1].host, "255.255.255.255");
    }

    #[test]
    fn zeromf_max_forwards_zero() {
        let request = request("3.3.11_zeromf");
        request.validate().unwrap();
        assert_eq!(request.max_forwards().unwrap(), Some(0));
        // A UAS answers the OPTIONS itself; forwarding it would be a 483.
        let error = check_max_forwards(&request).unwrap_err();
        assert_eq!(
            (error.status(), error.reason().as_str()),
            (483, "Too Many Hops")
        );
    }

    #[test]
    fn cparam01_addr_spec_params_belong_to_the_header() {
        let request = request("3.3.12_cparam01");
        request.validate().unwrap();
        let contact = &request.contact().unwrap()[0];
        assert!(contact.uri.params().is_empty());
        assert_eq!(contact.params.get("unknownparam"), Some(""));
    }

    #[test]
    fn cparam02_name_addr_params_belong_to_the_uri() {
        let request = request("3.3.13_cparam02");
        let contact = &request.contact().unwrap()[0];
        assert_eq!(contact.uri.param("unknownparam"), Some(""));
        assert!(contact.params.is_empty());
    }

    #[test]
    fn regescrt_escaped_header_in_contact_uri() {
        let request = request("3.3.14_regescrt");
        request.validate().unwrap();
        let contact = &request.contact().unwrap()[0];
        assert_eq!(
            contact.uri.headers(),
            [("Route".to_owned(), "%3Csip:sip.example.com%3E".to_owned())]
        );
    }

    #[test]
    fn sdp01_unacceptable_accept() {
        let request = request("3.3.15_sdp01");
        request.validate().unwrap();
        assert_eq!(request.headers.get("Accept"), Some("text/nobodyKnowsThis"));
        assert!(
            request
                .content_type()
                .unwrap()
                .unwrap()
                .is("application/sdp")
        );
    }
}

mod section_3_4_backward_compatibility {
    use super::*;

    #[test]
    fn inv2543_rfc2543_syntax() {
        let request = request("3.4.1_inv2543");
        request.validate().unwrap();
        assert_eq!(request.max_forwards().unwrap(), None);
        assert_eq!(request.top_via().unwrap().branch(), None);
        assert_eq!(request.to().unwrap().uri.param("user"), None);
        assert_eq!(request.to().unwrap().params.get("user"), Some("phone"));
        assert_eq!(request.from().unwrap().uri.param("user"), Some("phone"));
        // No Content-Length on a datagram: the body runs to its end.
        assert!(request.body.ends_with(b"m=audio 49217 RTP/AVP 0\r\n"));
    }
}
