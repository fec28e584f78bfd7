//! Real-world offers (SIPp, Linphone, baresip, G.729-only, IPv6, hold, T.38) and our answers.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use talktime_sdp::{
    Codec, Direction, LocalAudio, NegotiationError, SessionDescription, SessionOrigin, answer,
    offer, process_answer,
};

const SWITCH: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));

fn local(codecs: Vec<Codec>) -> LocalAudio {
    LocalAudio {
        address: SWITCH,
        port: 30000,
        codecs,
        telephone_event: Some(101),
        ptime: 20,
        direction: Direction::SendRecv,
    }
}

fn g711() -> LocalAudio {
    local(vec![Codec::Pcmu, Codec::Pcma])
}

fn parse(text: &str) -> SessionDescription {
    SessionDescription::parse(text.as_bytes()).unwrap()
}

const SIPP_UAC: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

const LINPHONE: &str = "v=0\r\no=alice 1234 5678 IN IP4 192.168.1.10\r\ns=Talk\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\na=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\nm=audio 7078 RTP/AVP 96 97 98 8 0 101 99 100\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:97 speex/16000\r\na=fmtp:97 vbr=on\r\na=rtpmap:98 speex/8000\r\na=rtpmap:101 telephone-event/48000\r\na=rtpmap:99 telephone-event/16000\r\na=rtpmap:100 telephone-event/8000\r\na=rtcp-fb:* trr-int 1000\r\nm=video 9078 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";

const BARESIP: &str = "v=0\no=- 1718 3452 IN IP4 10.0.0.7\ns= \nc=IN IP4 10.0.0.7\nt=0 0\na=tool:baresip 3.10.1\nm=audio 10000 RTP/AVP 0 8 101\nb=AS:64\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\na=ptime:20\na=sendrecv\na=label:1\n";

const G729_ONLY: &str = "v=0\r\no=carrier 99 1 IN IP4 198.51.100.20\r\ns=SBC\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\nm=audio 40000 RTP/AVP 18 96\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\na=ptime:30\r\n";

const IPV6: &str = "v=0\no=bob 2890844526 2890844526 IN IP6 2001:db8::1\ns=-\nc=IN IP6 2001:db8::1\nt=0 0\nm=audio 49170 RTP/AVP 8 0\n";

const T38_REOFFER: &str = "v=0\r\no=fax 1 2 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\nm=image 41000 udptl t38\r\na=T38FaxVersion:0\r\na=T38FaxRateManagement:transferredTCF\r\n";

const AUDIO_AND_T38: &str = "v=0\r\no=gw 1 2 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 41002 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\nm=image 0 udptl t38\r\n";

#[test]
fn sipp_default_offer_gets_pcmu_without_events() {
    let mut origin = SessionOrigin::new(42, SWITCH);
    let (body, negotiated) = answer(&parse(SIPP_UAC), &g711(), &mut origin).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcmu);
    assert_eq!(negotiated.payload_type, 0);
    assert_eq!(negotiated.send_telephone_event, None);
    assert_eq!(
        negotiated.remote,
        Some("127.0.0.1:6000".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(negotiated.direction, Direction::SendRecv);
    let text = body.to_string();
    assert!(text.contains("m=audio 30000 RTP/AVP 0\r\n"), "{text}");
    assert!(text.contains("c=IN IP4 203.0.113.5\r\n"), "{text}");
    assert!(
        text.contains("o=talktime 42 42 IN IP4 203.0.113.5\r\n"),
        "{text}"
    );
    assert!(!text.contains("telephone-event"), "{text}");
}

#[test]
fn linphone_offer_keeps_offerer_order_and_picks_8khz_telephone_event() {
    let mut origin = SessionOrigin::new(7, SWITCH);
    let (body, negotiated) = answer(&parse(LINPHONE), &g711(), &mut origin).unwrap();
    // PCMA is listed before PCMU in this offer.
    assert_eq!(negotiated.codec, Codec::Pcma);
    assert_eq!(negotiated.send_telephone_event, Some(100));
    assert_eq!(negotiated.receive_telephone_event, Some(100));
    assert_eq!(body.media.len(), 2);
    let audio = &body.media[0];
    assert_eq!(audio.formats, vec!["8", "100"]);
    assert_eq!(audio.fmtp(100), Some("0-15"));
    let video = &body.media[1];
    assert_eq!((video.kind.as_str(), video.port), ("video", 0));
}

#[test]
fn baresip_offer_with_lf_line_ends_and_blank_session_name() {
    let offer_description = parse(BARESIP);
    assert_eq!(offer_description.session_name, " ");
    let mut origin = SessionOrigin::new(7, SWITCH);
    let (body, negotiated) = answer(&offer_description, &g711(), &mut origin).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcmu);
    assert_eq!(negotiated.send_telephone_event, Some(101));
    assert_eq!(negotiated.ptime, 20);
    assert!(body.to_string().contains("a=sendrecv\r\n"));
}

#[test]
fn g729_only_offer_is_refused_when_prompts_need_g711() {
    let mut origin = SessionOrigin::new(7, SWITCH);
    let error = answer(&parse(G729_ONLY), &g711(), &mut origin).unwrap_err();
    assert!(matches!(error, NegotiationError::NoCommonCodec { .. }));
    assert!(error.to_string().contains("18 96"), "{error}");
}

#[test]
fn g729_only_offer_is_passed_through_when_allowed() {
    let mut origin = SessionOrigin::new(7, SWITCH);
    let (body, negotiated) =
        answer(&parse(G729_ONLY), &local(vec![Codec::G729]), &mut origin).unwrap();
    assert_eq!(negotiated.codec, Codec::G729);
    assert_eq!(negotiated.payload_type, 18);
    assert_eq!(negotiated.send_telephone_event, Some(96));
    assert_eq!(negotiated.ptime, 30);
    let audio = &body.media[0];
    assert_eq!(audio.fmtp(18), Some("annexb=no"));
    assert_eq!(audio.fmtp(96), Some("0-16"));
}

#[test]
fn ipv6_offer_without_rtpmaps_uses_static_types() {
    let mut origin = SessionOrigin::new(7, SWITCH);
    let (_, negotiated) = answer(&parse(IPV6), &g711(), &mut origin).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcma);
    assert_eq!(
        negotiated.remote,
        Some("[2001:db8::1]:49170".parse::<SocketAddr>().unwrap())
    );
}

#[test]
fn hold_reoffers_are_answered_recvonly_and_bump_the_version() {
    let mut origin = SessionOrigin::new(1000, SWITCH);
    let (first, _) = answer(&parse(BARESIP), &g711(), &mut origin).unwrap();
    assert_eq!(first.origin.session_version, 1000);
    // The same offer again (a refresh) must not change our version.
    let (again, _) = answer(&parse(BARESIP), &g711(), &mut origin).unwrap();
    assert_eq!(again.origin.session_version, 1000);

    let sendonly = BARESIP.replace("a=sendrecv", "a=sendonly");
    let (held, negotiated) = answer(&parse(&sendonly), &g711(), &mut origin).unwrap();
    assert_eq!(negotiated.direction, Direction::RecvOnly);
    assert!(held.to_string().contains("a=recvonly\r\n"));
    assert_eq!(held.origin.session_version, 1001);

    // RFC 2543 hold: c=0.0.0.0 and no direction attribute.
    let old_hold = BARESIP
        .replace("c=IN IP4 10.0.0.7", "c=IN IP4 0.0.0.0")
        .replace("a=sendrecv\n", "");
    let (old_held, negotiated) = answer(&parse(&old_hold), &g711(), &mut origin).unwrap();
    assert_eq!(negotiated.remote, None);
    assert_eq!(negotiated.direction, Direction::RecvOnly);
    // Our answer is the same as for a=sendonly, so the version stays.
    assert_eq!(old_held.origin.session_version, 1001);

    let inactive = BARESIP.replace("a=sendrecv", "a=inactive");
    let (quiet, negotiated) = answer(&parse(&inactive), &g711(), &mut origin).unwrap();
    assert_eq!(negotiated.direction, Direction::Inactive);
    assert_eq!(quiet.origin.session_version, 1002);

    let (resumed, negotiated) = answer(&parse(BARESIP), &g711(), &mut origin).unwrap();
    assert_eq!(negotiated.direction, Direction::SendRecv);
    assert_eq!(resumed.origin.session_version, 1003);
}

#[test]
fn t38_reoffer_without_audio_is_not_acceptable() {
    let mut origin = SessionOrigin::new(7, SWITCH);
    let error = answer(&parse(T38_REOFFER), &g711(), &mut origin).unwrap_err();
    assert_eq!(error, NegotiationError::NoAudio);
}

#[test]
fn t38_stream_beside_audio_is_declined_with_port_zero() {
    let mut origin = SessionOrigin::new(7, SWITCH);
    let (body, negotiated) = answer(&parse(AUDIO_AND_T38), &g711(), &mut origin).unwrap();
    assert_eq!(negotiated.media_index, 0);
    let text = body.to_string();
    assert!(text.contains("m=image 0 udptl t38\r\n"), "{text}");
    assert!(text.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{text}");
}

#[test]
fn our_offer_and_a_carrier_answer_with_its_own_event_type() {
    let mut origin = SessionOrigin::new(5, SWITCH);
    let mut leg = g711();
    leg.codecs = vec![Codec::Pcmu];
    let our_offer = offer(&leg, &mut origin);
    let text = our_offer.to_string();
    assert!(text.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{text}");
    assert!(
        text.contains("a=rtpmap:101 telephone-event/8000\r\n"),
        "{text}"
    );
    assert!(text.contains("a=ptime:20\r\n"), "{text}");
    // Round trip through our own parser.
    assert_eq!(parse(&text), our_offer);

    let carrier = "v=0\r\no=sbc 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=sendrecv\r\n";
    let negotiated = process_answer(&our_offer, &parse(carrier)).unwrap();
    assert_eq!(negotiated.codec, Codec::Pcmu);
    assert_eq!(negotiated.send_telephone_event, Some(96));
    assert_eq!(
        negotiated.remote,
        Some("198.51.100.1:20000".parse::<SocketAddr>().unwrap())
    );

    let rejected = carrier.replace("m=audio 20000", "m=audio 0");
    assert_eq!(
        process_answer(&our_offer, &parse(&rejected)).unwrap_err(),
        NegotiationError::AudioRejected
    );
    let wrong_codec = carrier.replace("RTP/AVP 0 96", "RTP/AVP 8 96");
    assert_eq!(
        process_answer(&our_offer, &parse(&wrong_codec)).unwrap_err(),
        NegotiationError::AnswerNotInOffer(8)
    );
}

#[test]
fn our_hold_offer_is_sendonly_and_a_new_version() {
    let mut origin = SessionOrigin::new(5, SWITCH);
    let mut leg = g711();
    let first = offer(&leg, &mut origin);
    leg.direction = Direction::SendOnly;
    let hold = offer(&leg, &mut origin);
    assert_eq!(
        hold.origin.session_version,
        first.origin.session_version + 1
    );
    assert_eq!(hold.media[0].attribute("sendonly"), Some(""));
    let answer_text = "v=0\r\no=x 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 9000 RTP/AVP 0\r\na=recvonly\r\n";
    let negotiated = process_answer(&hold, &parse(answer_text)).unwrap();
    assert_eq!(negotiated.direction, Direction::SendOnly);
    assert_eq!(negotiated.send_telephone_event, None);
}

#[test]
fn srtp_stream_is_declined_and_the_plain_alternative_accepted() {
    let offer_text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\nm=audio 5002 RTP/AVP 0\r\n";
    let mut origin = SessionOrigin::new(7, SWITCH);
    let (body, negotiated) = answer(&parse(offer_text), &g711(), &mut origin).unwrap();
    assert_eq!(negotiated.media_index, 1);
    assert_eq!(
        negotiated.remote,
        Some("192.0.2.1:5002".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(body.media[0].port, 0);
    assert_eq!(body.media[1].port, 30000);
}
