//! The SIPp test assets without the switch: the DTMF pcap decodes to the scripted key presses,
//! SIPp plays it as the caller to a small Rust UAS, and the carrier scenarios answer, refuse
//! and get cancelled as their names say.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::pcap::{self, RtpPacket, TelephoneEvent};
use common::scenario::{BackgroundSipp, render};
use talktime_media::{Rfc4733Receiver, RtpHeader};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn temp_pcap(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("talktime-{}-{name}.pcap", std::process::id()))
}

/// The caller's script used below: a PIN-like string, then a repeated digit.
const SCRIPT: [(Duration, &str); 2] = [
    (Duration::from_millis(500), "1234#"),
    (Duration::from_millis(2000), "11#"),
];
const SCRIPT_TOTAL: Duration = Duration::from_millis(3000);

#[test]
fn the_pcap_round_trips_with_one_timestamp_per_key_press() {
    let path = temp_pcap("round-trip");
    pcap::dtmf_pcap(&path, &SCRIPT, SCRIPT_TOTAL, 101).unwrap();
    let packets = pcap::read_pcap(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        packets,
        pcap::dtmf_stream(&SCRIPT, SCRIPT_TOTAL, 101).unwrap()
    );
    assert_eq!(packets.len(), 150, "3 s at one packet per 20 ms");

    for (tick, packet) in (0u32..).zip(&packets) {
        assert_eq!(packet.at, MS(20) * tick, "20 ms spacing");
        assert_eq!(packet.ssrc, pcap::SSRC);
        assert_eq!(
            packet.sequence,
            pcap::FIRST_SEQUENCE.wrapping_add(tick as u16),
            "continuous sequence numbers"
        );
        if packet.payload_type == 0 {
            assert_eq!(packet.timestamp, pcap::FIRST_TIMESTAMP + tick * 160);
            assert_eq!(packet.payload, vec![0xFF; 160], "PCMU silence");
            assert!(!packet.marker);
        } else {
            assert_eq!(packet.payload_type, 101);
        }
    }

    // Key presses, by event timestamp.
    let mut presses: BTreeMap<u32, Vec<&RtpPacket>> = BTreeMap::new();
    for packet in packets.iter().filter(|packet| packet.payload_type == 101) {
        presses.entry(packet.timestamp).or_default().push(packet);
    }
    let digits: String = presses
        .values()
        .map(|press| {
            let event = TelephoneEvent::parse(&press[0].payload).unwrap();
            pcap::digit_of(event.event).unwrap()
        })
        .collect();
    assert_eq!(digits, "1234#11#", "one timestamp per press, also for 11");

    let starts: Vec<Duration> = presses.values().map(|press| press[0].at).collect();
    assert_eq!(starts[0], MS(500));
    assert_eq!(starts[5], MS(2000));
    for press in presses.values() {
        let start = press[0];
        // The event timestamp is the RTP time of its first packet.
        let start_tick = u32::try_from(start.at.as_millis() / 20).unwrap();
        assert_eq!(start.timestamp, pcap::FIRST_TIMESTAMP + start_tick * 160);
        let events: Vec<TelephoneEvent> = press
            .iter()
            .map(|packet| TelephoneEvent::parse(&packet.payload).unwrap())
            .collect();
        let durations: Vec<u16> = events.iter().map(|event| event.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = events.iter().map(|event| event.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        let markers: Vec<bool> = press.iter().map(|packet| packet.marker).collect();
        assert_eq!(markers, [true, false, false, false, false, false, false]);
    }
    // At least 100 ms of audio between the last end packet of a press and the next start.
    let ends: Vec<Duration> = presses.values().map(|press| press[6].at).collect();
    for (end, next_start) in ends.iter().zip(&starts[1..]) {
        assert!(*next_start - *end > MS(100), "{end:?} -> {next_start:?}");
    }

    // The switch's own RFC 4733 receiver hears the same presses.
    let mut receiver = Rfc4733Receiver::new();
    let heard: String = packets
        .iter()
        .filter(|packet| packet.payload_type == 101)
        .filter_map(|packet| {
            let bytes = packet.to_bytes();
            let header = RtpHeader::parse(&bytes).unwrap();
            receiver.on_packet(&header, &packet.payload, Instant::now())
        })
        .map(|event| event.digit)
        .collect();
    assert_eq!(heard, "1234#11#");
}

#[test]
fn bad_scripts_are_refused() {
    let overlapping = [(MS(0), "12"), (MS(300), "3")];
    let error = pcap::dtmf_stream(&overlapping, MS(2000), 101).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    let error = pcap::dtmf_stream(&[(MS(0), "1x")], MS(2000), 101).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    let too_long = [(MS(0), "123")];
    assert!(pcap::digits_length("123") > MS(500));
    let error = pcap::dtmf_stream(&too_long, MS(500), 101).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    // Back to back with the 100 ms gap is fine; offsets round up to the 20 ms grid.
    let tight = [(MS(0), "1"), (pcap::digits_length("1") + MS(110), "2")];
    let packets = pcap::dtmf_stream(&tight, MS(1000), 96).unwrap();
    let second = packets
        .iter()
        .find(|packet| packet.payload_type == 96 && packet.payload[0] == 2)
        .unwrap();
    assert_eq!(second.at, MS(260));
}

#[test]
fn render_fills_placeholders() {
    let path = render("uac_expect_status.xml", &[("STATUS", "486")]);
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(text.contains(r#"<recv response="486"/>"#));
    assert!(!text.contains("{{"));
}

#[test]
#[should_panic(expected = "no value given for {{STATUS}}")]
fn render_refuses_a_missing_value() {
    render("uac_expect_status.xml", &[("OTHER", "1")]);
}

// ---- a tiny Rust UAS for SIPp's caller ----

/// A SIP message as text with a header lookup (full header names, as SIPp sends them).
struct Message(String);

impl Message {
    fn first_line(&self) -> &str {
        self.0.lines().next().unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.0
            .split("\r\n\r\n")
            .next()?
            .lines()
            .skip(1)
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then_some(value.trim())
            })
    }

    fn is_request(&self, method: &str) -> bool {
        self.first_line().starts_with(&format!("{method} "))
    }
}

fn receive(socket: &UdpSocket) -> Option<(Message, SocketAddr)> {
    let mut buffer = [0u8; 8192];
    let (length, from) = socket.recv_from(&mut buffer).ok()?;
    Some((
        Message(String::from_utf8_lossy(&buffer[..length]).into_owned()),
        from,
    ))
}

/// Waits for a message passing `wanted`, skipping others, until `deadline`.
fn receive_until(
    socket: &UdpSocket,
    deadline: Instant,
    wanted: impl Fn(&Message) -> bool,
) -> Option<(Message, SocketAddr)> {
    while Instant::now() < deadline {
        if let Some((message, from)) = receive(socket)
            && wanted(&message)
        {
            return Some((message, from));
        }
    }
    None
}

fn ok_with_sdp(invite: &Message, sip: SocketAddr, rtp_port: u16) -> String {
    let sdp = format!(
        "v=0\r\no=rust 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    );
    format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=rust-uas\r\nCall-ID: {}\r\n\
         CSeq: {}\r\nContact: <sip:uas@{sip}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        invite.header("Via").unwrap(),
        invite.header("From").unwrap(),
        invite.header("To").unwrap(),
        invite.header("Call-ID").unwrap(),
        invite.header("CSeq").unwrap(),
        sdp.len()
    )
}

fn bye_for(invite: &Message, sip: SocketAddr) -> String {
    let contact = invite.header("Contact").unwrap();
    let target = contact.trim_start_matches('<').split('>').next().unwrap();
    format!(
        "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {sip};branch=z9hG4bK-rust-bye\r\n\
         From: {};tag=rust-uas\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        invite.header("To").unwrap(),
        invite.header("From").unwrap(),
        invite.header("Call-ID").unwrap(),
    )
}

/// What the Rust UAS heard on its RTP socket.
#[derive(Debug, Default)]
struct Heard {
    digits: String,
    audio_packets: usize,
    event_packets: usize,
    sequence_breaks: usize,
    ssrcs: Vec<u32>,
}

/// Reads RTP until `expected` digits were heard and the stream has gone quiet, or `deadline`.
fn listen(rtp: &UdpSocket, expected: usize, deadline: Instant) -> Heard {
    let mut heard = Heard::default();
    let mut receiver = Rfc4733Receiver::new();
    let mut last_sequence: Option<u16> = None;
    let mut buffer = [0u8; 2048];
    rtp.set_read_timeout(Some(MS(300))).unwrap();
    while Instant::now() < deadline {
        let Ok(length) = rtp.recv(&mut buffer) else {
            if heard.digits.chars().count() >= expected {
                break; // all digits in and no more media for 300 ms
            }
            continue;
        };
        let packet = &buffer[..length];
        let header = RtpHeader::parse(packet).unwrap();
        if let Some(previous) = last_sequence
            && header.sequence != previous.wrapping_add(1)
        {
            heard.sequence_breaks += 1;
        }
        last_sequence = Some(header.sequence);
        if !heard.ssrcs.contains(&header.ssrc) {
            heard.ssrcs.push(header.ssrc);
        }
        match header.payload_type {
            0 => heard.audio_packets += 1,
            101 => {
                heard.event_packets += 1;
                let payload = talktime_media::rtp::payload(packet).unwrap();
                if let Some(event) = receiver.on_packet(&header, payload, Instant::now()) {
                    heard.digits.push(event.digit);
                }
            }
            other => panic!("unexpected payload type {other}"),
        }
    }
    heard
}

#[test]
fn sipp_caller_plays_the_scripted_digits_to_a_rust_uas() {
    let path = temp_pcap("caller");
    pcap::dtmf_pcap(&path, &SCRIPT, SCRIPT_TOTAL, 101).unwrap();
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    sip.set_read_timeout(Some(MS(200))).unwrap();
    let sip_address = sip.local_addr().unwrap();
    let scenario = render(
        "caller_ivr.xml",
        &[
            ("CALLER", "15551230000"),
            ("PCAP", path.to_str().unwrap()),
            ("WAIT_MS", "10000"),
        ],
    );
    let caller = BackgroundSipp::start(
        30,
        &[
            &sip_address.to_string(),
            "-sf",
            scenario.to_str().unwrap(),
            "-s",
            "100",
            "-m",
            "1",
        ],
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let (invite, caller_address) =
        receive_until(&sip, deadline, |message| message.is_request("INVITE"))
            .expect("an INVITE from SIPp");
    assert!(
        invite.header("From").unwrap().contains("sip:15551230000@"),
        "{}",
        invite.0
    );
    assert!(invite.0.contains("a=rtpmap:101 telephone-event/8000"));
    let ok = ok_with_sdp(&invite, sip_address, rtp.local_addr().unwrap().port());
    sip.send_to(ok.as_bytes(), caller_address).unwrap();
    // Answer retransmitted INVITEs until the ACK.
    let ack = receive_until(&sip, deadline, |message| {
        if message.is_request("INVITE") {
            sip.send_to(ok.as_bytes(), caller_address).unwrap();
        }
        message.is_request("ACK")
    });
    assert!(ack.is_some(), "no ACK from SIPp");

    let heard = listen(&rtp, 8, Instant::now() + Duration::from_secs(8));

    let bye = bye_for(&invite, sip_address);
    sip.send_to(bye.as_bytes(), caller_address).unwrap();
    let answer = receive_until(&sip, Instant::now() + Duration::from_secs(5), |message| {
        if message.first_line().starts_with("SIP/2.0 200") {
            return message.header("CSeq") == Some("1 BYE");
        }
        false
    });
    let run = caller.finish(Duration::from_secs(10));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&scenario);

    assert!(
        answer.is_some(),
        "no 200 for the BYE; sipp: {}",
        run.describe()
    );
    assert!(run.success(), "sipp caller failed: {}", run.describe());
    assert_eq!(heard.digits, "1234#11#", "{heard:?}");
    assert_eq!(heard.event_packets, 8 * 7, "{heard:?}");
    assert_eq!(heard.ssrcs, [pcap::SSRC], "{heard:?}");
    assert_eq!(heard.sequence_breaks, 0, "{heard:?}");
    // The whole 3 s stream (150 packets) unless the BYE cut the tail short.
    assert!(
        heard.audio_packets + heard.event_packets >= 130,
        "{heard:?}"
    );
}

// ---- the carrier scenarios against SIPp callers ----

/// Runs a SIPp caller against `carrier` and returns (caller run, carrier run).
fn call_carrier(
    carrier: BackgroundSipp,
    caller_args: &[&str],
) -> (common::scenario::SippRun, common::scenario::SippRun) {
    let target = carrier.address();
    let mut args = vec![target.as_str(), "-s", "15551239999"];
    args.extend_from_slice(caller_args);
    let caller = BackgroundSipp::start(30, &args);
    let caller = caller.finish(Duration::from_secs(30));
    let carrier = carrier.finish(Duration::from_secs(10));
    (caller, carrier)
}

fn refused_with(carrier_scenario: &str, status: &str) {
    let carrier = BackgroundSipp::uas(30, &common::scenario(carrier_scenario), &["-m", "1"]);
    let expects = render("uac_expect_status.xml", &[("STATUS", status)]);
    let (caller, carrier) = call_carrier(carrier, &["-sf", expects.to_str().unwrap(), "-m", "1"]);
    let _ = std::fs::remove_file(&expects);
    assert!(
        caller.success(),
        "caller expecting {status}: {}",
        caller.describe()
    );
    assert!(
        carrier.success(),
        "{carrier_scenario}: {}",
        carrier.describe()
    );
}

#[test]
fn the_busy_carrier_refuses_with_486() {
    refused_with("carrier_busy.xml", "486");
}

#[test]
fn the_unavailable_carrier_refuses_with_503() {
    refused_with("carrier_unavailable.xml", "503");
}

#[test]
fn a_caller_expecting_another_status_fails_on_the_busy_carrier() {
    let carrier = BackgroundSipp::uas(10, &common::scenario("carrier_busy.xml"), &["-m", "1"]);
    let expects = render("uac_expect_status.xml", &[("STATUS", "503")]);
    let (caller, _) = call_carrier(carrier, &["-sf", expects.to_str().unwrap(), "-m", "1"]);
    let _ = std::fs::remove_file(&expects);
    assert_eq!(caller.code(), Some(1), "{}", caller.describe());
}

#[test]
fn the_answering_carrier_completes_calls_hung_up_by_the_caller() {
    let carrier = BackgroundSipp::uas(
        30,
        &common::scenario("carrier_answer.xml"),
        &["-m", "3", "-rtp_echo"],
    );
    // SIPp's built-in UAC: INVITE, ACK, 200 ms on the line, BYE; three calls in a row.
    let (caller, carrier) = call_carrier(carrier, &["-sn", "uac", "-m", "3", "-d", "200"]);
    assert!(caller.success(), "caller: {}", caller.describe());
    assert!(carrier.success(), "carrier: {}", carrier.describe());
}

#[test]
fn the_silent_carrier_survives_invite_retransmissions_and_is_cancelled() {
    let carrier = BackgroundSipp::uas(30, &common::scenario("carrier_silent.xml"), &["-m", "1"]);
    let target: SocketAddr = carrier.address().parse().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(MS(200))).unwrap();
    let local = socket.local_addr().unwrap();
    let request = |method: &str| {
        format!(
            "{method} sip:15551239999@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-silent-1\r\n\
             From: <sip:switch@{local}>;tag=switch\r\nTo: <sip:15551239999@{target}>\r\n\
             Call-ID: silent-carrier@{local}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n\
             Contact: <sip:switch@{local}>\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let invite = request("INVITE");
    let is_status = |code: &'static str, method: &'static str| {
        move |message: &Message| {
            message.first_line().starts_with(&format!("SIP/2.0 {code}"))
                && message.header("CSeq") == Some(&format!("1 {method}"))
        }
    };
    // SIPp may still be starting: send until the first 100.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut trying = None;
    while trying.is_none() && Instant::now() < deadline {
        socket.send_to(invite.as_bytes(), target).unwrap();
        trying = receive_until(
            &socket,
            Instant::now() + MS(500),
            is_status("100", "INVITE"),
        );
    }
    assert!(trying.is_some(), "no 100 Trying from the silent carrier");
    // Two retransmissions (timer A), each answered with 100 again and nothing final.
    for _ in 0..2 {
        socket.send_to(invite.as_bytes(), target).unwrap();
        let (answer, _) = receive_until(&socket, Instant::now() + Duration::from_secs(2), |_| true)
            .expect("an answer to the retransmitted INVITE");
        assert!(
            answer.first_line().starts_with("SIP/2.0 100"),
            "{}",
            answer.0
        );
    }
    assert!(
        receive_until(&socket, Instant::now() + MS(700), |_| true).is_none(),
        "the silent carrier answered"
    );

    socket
        .send_to(request("CANCEL").as_bytes(), target)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let cancelled = receive_until(&socket, deadline, is_status("200", "CANCEL"));
    assert!(cancelled.is_some(), "no 200 for the CANCEL");
    let (terminated, _) =
        receive_until(&socket, deadline, is_status("487", "INVITE")).expect("487 for the INVITE");
    let to = terminated.header("To").unwrap();
    assert!(to.contains(";tag="), "487 without a To tag: {to}");
    let ack = request("ACK").replace(
        &format!("To: <sip:15551239999@{target}>"),
        &format!("To: {to}"),
    );
    socket.send_to(ack.as_bytes(), target).unwrap();
    let carrier = carrier.finish(Duration::from_secs(5));
    assert!(carrier.success(), "carrier: {}", carrier.describe());
}

fn caller_scenario(name: &str, pcap_path: &std::path::Path, extra: &[(&str, &str)]) -> PathBuf {
    let mut values = vec![
        ("CALLER", "anonymous"),
        ("PCAP", pcap_path.to_str().unwrap()),
    ];
    values.extend_from_slice(extra);
    render(name, &values)
}

#[test]
fn the_hanging_up_caller_plays_its_pcap_to_the_echoing_carrier_and_sends_bye() {
    let path = temp_pcap("hangs-up");
    pcap::dtmf_pcap(&path, &[(MS(100), "9#")], MS(1000), 101).unwrap();
    let scenario = caller_scenario(
        "caller_ivr_hangs_up.xml",
        &path,
        &[("PCAP_MS", "1000"), ("HOLD_MS", "200")],
    );
    let carrier = BackgroundSipp::uas(
        30,
        &common::scenario("carrier_answer.xml"),
        &["-m", "1", "-rtp_echo"],
    );
    let started = Instant::now();
    let (caller, carrier) = call_carrier(carrier, &["-sf", scenario.to_str().unwrap(), "-m", "1"]);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&scenario);
    assert!(caller.success(), "caller: {}", caller.describe());
    assert!(carrier.success(), "carrier: {}", carrier.describe());
    assert!(
        started.elapsed() >= MS(1200),
        "the caller stays for PCAP_MS + HOLD_MS"
    );
}

#[test]
fn the_waiting_caller_fails_when_nobody_hangs_up() {
    let path = temp_pcap("nobody-hangs-up");
    pcap::dtmf_pcap(&path, &[(MS(0), "1")], MS(400), 101).unwrap();
    let scenario = caller_scenario("caller_ivr.xml", &path, &[("WAIT_MS", "1000")]);
    let carrier = BackgroundSipp::uas(10, &common::scenario("carrier_answer.xml"), &["-m", "1"]);
    let (caller, _) = call_carrier(carrier, &["-sf", scenario.to_str().unwrap(), "-m", "1"]);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&scenario);
    assert_eq!(caller.code(), Some(1), "{}", caller.describe());
}
