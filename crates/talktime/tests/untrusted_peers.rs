//! Fraud hardening (issue 20) against the real binary: who may call the access numbers, whose
//! caller ID authenticates, and PIN guessing counted per source address. Sources are loopback
//! addresses 127.0.0.1-3 with `[[peers]]` trusting them differently.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::calls::{call_from, start};
use common::prepaid::{self, ConfigFile};
use common::scenario::BackgroundSipp;
use common::{assert_sipp_ok, scenario, tail};

/// 127.0.0.1 is an access gateway trusted for caller IDs; 127.0.0.2 may call the access
/// numbers but its caller IDs are not believed; 127.0.0.3 is nobody.
const PEERS: &str = "[[peers]]\naddress = \"127.0.0.1\"\naccess = true\ntrusted_caller_id = true\n\n\
                     [[peers]]\naddress = \"127.0.0.2\"\naccess = true\n";

fn carrier(calls: usize) -> BackgroundSipp {
    BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", &calls.to_string()],
    )
}

#[test]
fn a_registered_caller_id_is_pinless_only_from_a_peer_trusted_for_it() {
    let dir = prepaid::data_dir("untrusted-caller-id");
    prepaid::tariff(&dir, "demo", "1,USA,6.00,1.00,1,1,0\n");
    let account = prepaid::card(&dir, "5550001111", 300_000, 0);
    prepaid::register_caller_id(&dir, account, "15551230000");
    prepaid::forward_to(&dir, account, "0015551234567");
    let carrier = carrier(1);
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw(PEERS)
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    let forwarded = |source: &str, wait: u64| {
        call_from(
            source,
            &switch,
            &dir,
            "200",
            "15551230000",
            &[],
            Duration::from_secs(3),
            Duration::from_secs(wait),
        )
    };
    // From the trusted gateway: DID forwarding straight to the carrier (cut at 3 s of credit).
    assert_sipp_ok(&forwarded("127.0.0.1", 30), &switch, "trusted caller ID");
    // The same caller ID from 127.0.0.2: the PIN is asked; the silent caller never reaches a
    // carrier and is hung up by the IVR.
    assert_sipp_ok(&forwarded("127.0.0.2", 60), &switch, "untrusted caller ID");
    assert!(carrier.finish(Duration::from_secs(5)).success());
    let ids = switch.call_ids();
    assert_eq!(ids.len(), 2);
    assert_eq!(
        prepaid::cdrs(&dir, &format!("{}#1", ids[0])).len(),
        1,
        "forwarded"
    );
    assert!(
        prepaid::cdrs(&dir, &format!("{}#1", ids[1])).is_empty(),
        "no carrier attempt without the PIN:\n{}",
        tail(&switch.log_text(), 20)
    );
    // From an address that is no peer at all: refused outright.
    let refused = common::sipp_from(
        "127.0.0.3",
        10,
        &[
            "-sf",
            common::scenario::render("uac_expect_status.xml", &[("STATUS", "403")])
                .to_str()
                .unwrap(),
            "-s",
            "100",
            &switch.sip.to_string(),
            "-m",
            "1",
        ],
    );
    assert_sipp_ok(&refused, &switch, "an unknown source gets 403");
}

#[test]
fn wrong_pins_lock_out_their_source_address_whatever_caller_id_it_sends() {
    let dir = prepaid::data_dir("pin-guessing");
    prepaid::tariff(&dir, "demo", "1,USA,6.00,1.00,1,1,0\n");
    // 0.50: a call that gets in is cut after 5 s.
    let account = prepaid::card(&dir, "5550002222", 500_000, 0);
    let carrier = carrier(1);
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw(&format!(
                "{PEERS}\n[[peers]]\naddress = \"127.0.0.3\"\naccess = true\n\n\
                 [alarms]\npin_failures_per_minute = 5\npin_answer_delay_ms = 1500\n"
            ))
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    // Ten guessers from 127.0.0.2, each with its own From, three wrong PINs each: 30 tries.
    let wrong = [
        (Duration::from_millis(2000), "1111111111#"),
        (Duration::from_millis(7000), "2222222222#"),
        (Duration::from_millis(12000), "3333333333#"),
    ];
    std::thread::scope(|scope| {
        for guesser in 0..10 {
            let (switch, dir, wrong) = (&switch, &dir, &wrong);
            scope.spawn(move || {
                let from = format!("1555999{guesser:04}");
                call_from(
                    "127.0.0.2",
                    switch,
                    dir,
                    "100",
                    &from,
                    wrong,
                    Duration::from_secs(17),
                    Duration::from_secs(40),
                )
            });
        }
    });
    // The right PIN from the guessing address is now refused ...
    // The wrong PINs (until the lock-out) in under a minute raised the switch-wide alarm: PIN answers now wait
    // 1.5 s, so the destination is keyed later than usual.
    let log = switch.log_text();
    assert!(
        log.contains("alarm=\"pin_failures\"") || log.contains("alarm=pin_failures"),
        "{}",
        tail(&log, 20)
    );
    let right = [
        (Duration::from_millis(2000), "5550002222#"),
        (Duration::from_millis(8000), "0015551234567#"),
    ];
    let locked = call_from(
        "127.0.0.2",
        &switch,
        &dir,
        "100",
        "15559990099",
        &right,
        Duration::from_secs(14),
        Duration::from_secs(30),
    );
    assert_sipp_ok(&locked, &switch, "the locked-out source is hung up");
    assert!(
        switch.log_text().contains("LockedOut"),
        "{}",
        tail(&switch.log_text(), 20)
    );
    // ... while another address gets in with it.
    let other = call_from(
        "127.0.0.3",
        &switch,
        &dir,
        "100",
        "anonymous",
        &right,
        Duration::from_secs(14),
        Duration::from_secs(30),
    );
    assert_sipp_ok(&other, &switch, "another source connects");
    assert!(
        carrier.finish(Duration::from_secs(5)).success(),
        "one call reached the carrier"
    );
    assert_eq!(
        prepaid::balance(&dir, account),
        0,
        "the connected call spent the card"
    );
}

#[test]
fn an_invite_flood_from_one_source_is_throttled_while_another_sources_calls_connect() {
    let dir = prepaid::data_dir("admission");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    // 127.0.0.2 may start 5 calls a second; 127.0.0.3 gets the [admission] default (raised
    // here so that only the flood meets a limit).
    let switch = start(
        &dir,
        ConfigFile::new().raw(
            "[[peers]]\naddress = \"127.0.0.2\"\naccess = true\ncalls_per_second = 5\n\n\
             [[peers]]\naddress = \"127.0.0.3\"\naccess = true\n\n\
             [admission]\ncalls_per_second_per_source = 100\ncalls_per_source = 100\n\
             max_calls = 1000\n",
        ),
    );
    let sipp = |source: &'static str, rate: &str, calls: &str| {
        let target = switch.sip.to_string();
        let scenario = scenario("caller_admission.xml");
        let rate = rate.to_owned();
        let calls = calls.to_owned();
        std::thread::spawn(move || {
            common::sipp_from(
                source,
                30,
                &[
                    "-sf",
                    scenario.to_str().unwrap(),
                    "-s",
                    "100",
                    &target,
                    "-r",
                    &rate,
                    "-m",
                    &calls,
                    "-l",
                    "100",
                ],
            )
        })
    };
    // 60 INVITEs in about a second from the flooder, 5 from the other source meanwhile.
    let flood = sipp("127.0.0.2", "60", "60");
    let other = sipp("127.0.0.3", "5", "5");
    let flood = flood.join().unwrap();
    let other = other.join().unwrap();
    assert_sipp_ok(
        &flood,
        &switch,
        "the flooder: every INVITE answered, 200 or 503",
    );
    assert_sipp_ok(&other, &switch, "the other source");
    let log = switch.log_text();
    let count = |what: &str, source: &str| {
        log.lines()
            .filter(|line| line.contains(what) && line.contains(&format!("source={source}:")))
            .count()
    };
    let (flood_in, flood_refused) = (
        count("call started", "127.0.0.2"),
        count("refused by admission control", "127.0.0.2"),
    );
    assert_eq!(flood_in + flood_refused, 60, "{}", tail(&log, 30));
    // A burst of 5, then 5 a second for the second or so the flood lasts.
    assert!(
        (5..=15).contains(&flood_in),
        "{flood_in} calls admitted from the flooder"
    );
    assert_eq!(count("call started", "127.0.0.3"), 5, "{}", tail(&log, 30));
    assert_eq!(count("refused by admission control", "127.0.0.3"), 0);
}

/// An RFC 4733 packet for `digit` (event 0-9) from a stranger's stream.
fn event_packet(sequence: u16, timestamp: u32, digit: u8, end: bool) -> Vec<u8> {
    let mut packet = vec![0x80, 101];
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&0x0BAD_F00Du32.to_be_bytes());
    let duration: u16 = 800;
    packet.extend_from_slice(&[digit, if end { 0x80 | 10 } else { 10 }]);
    packet.extend_from_slice(&duration.to_be_bytes());
    packet
}

#[test]
fn a_third_party_spraying_rtp_at_a_call_receives_nothing_and_injects_no_digit() {
    let dir = prepaid::data_dir("media-hijack");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, "1234567890", 100_000, 0);
    let carrier = carrier(1);
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    // The caller keys its PIN and a number from 127.0.0.1 and stays until the switch cuts it
    // (0.10 at 0.60 a minute: 10 s).
    let caller = {
        let (switch, dir) = (&switch, dir.clone());
        let script = [
            (Duration::from_millis(2000), "1234567890#"),
            (Duration::from_millis(5600), "0015551234567#"),
        ];
        std::thread::scope(|scope| {
            let call = scope.spawn(move || {
                common::calls::call(switch, &dir, "anonymous", &script, Duration::from_secs(40))
            });
            // As soon as the call's ports are open, a stranger on 127.0.0.9 sprays both with
            // "9" key presses, before, while and after the caller sends its own media.
            let ports = wait_for_media_ports(switch);
            let stranger = std::net::UdpSocket::bind("127.0.0.9:0").unwrap();
            stranger.set_nonblocking(true).unwrap();
            let mut received = 0usize;
            let mut buffer = [0u8; 2048];
            // Through the whole call: a caller silent for a second (its pcap over) must not
            // let the stranger take its media either.
            let mut round = 0u32;
            while !call.is_finished() {
                round += 1;
                let timestamp = (round / 10) * 1600;
                let end = round % 10 == 9;
                let packet = event_packet(round as u16, timestamp, 9, end);
                for port in ports {
                    let _ = stranger.send_to(&packet, ("127.0.0.1", port));
                }
                while let Ok((length, _)) = stranger.recv_from(&mut buffer) {
                    received += length;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (call.join().unwrap(), received)
        })
    };
    let (output, received) = caller;
    assert_eq!(
        received, 0,
        "the stranger got {received} bytes of the call's media"
    );
    // The caller's own PIN and number went through: no sprayed 9 reached the IVR.
    assert_sipp_ok(&output, &switch, "the caller's call, sprayed by a stranger");
    assert!(carrier.finish(Duration::from_secs(10)).success());
    let log = switch.log_text();
    assert!(!log.contains("Rejected"), "{}", tail(&log, 30));
    assert_eq!(prepaid::balance(&dir, account), 0, "billed to its limit");
}

/// The RTP ports of the first call (the switch logs them when it opens them).
fn wait_for_media_ports(switch: &common::Switch) -> [u16; 2] {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = switch.log_text();
        if let Some(line) = log.lines().find(|line| line.contains("media opened")) {
            let numbers: Vec<u16> = line
                .split("ports=[")
                .nth(1)
                .and_then(|rest| rest.split(']').next())
                .unwrap()
                .split(',')
                .map(|port| port.trim().parse().unwrap())
                .collect();
            return [numbers[0], numbers[1]];
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no call's media opened"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A TCP connection to the switch from `host`.
fn tcp_from(host: &str, switch: &common::Switch) -> std::net::TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{host}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&switch.sip.into()).unwrap();
    let stream: std::net::TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    stream
}

/// True when the switch has closed `stream` (a read returns end of file in time).
fn closed_by_switch(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut buffer = [0u8; 512];
    matches!(stream.read(&mut buffer), Ok(0))
}

/// OPTIONS over `stream`; true when a 200 comes back.
fn options_answered(stream: &mut std::net::TcpStream) -> bool {
    use std::io::{Read, Write};
    let local = stream.local_addr().unwrap();
    let request = format!(
        "OPTIONS sip:{peer} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK{port}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=1\r\nTo: <sip:{peer}>\r\n\
         Call-ID: tcp-limits-{port}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        peer = stream.peer_addr().unwrap(),
        port = local.port()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut buffer = [0u8; 2048];
    matches!(stream.read(&mut buffer), Ok(length) if buffer[..length].starts_with(b"SIP/2.0 200"))
}

#[test]
fn tcp_connections_are_capped_per_host_and_idle_ones_closed() {
    let dir = prepaid::data_dir("tcp-limits");
    let switch = start(
        &dir,
        ConfigFile::new().raw(
            "[sip]\nmax_tcp_connections = 100\nmax_tcp_connections_per_host = 4\n\
             tcp_idle_timeout_s = 3\n",
        ),
    );
    let mut held: Vec<_> = (0..4).map(|_| tcp_from("127.0.0.2", &switch)).collect();
    // The fifth and sixth from the same host are closed at once ...
    for _ in 0..2 {
        let mut extra = tcp_from("127.0.0.2", &switch);
        assert!(
            closed_by_switch(&mut extra),
            "a connection over the host's limit"
        );
    }
    // ... while the four held ones work, and another host still gets in.
    assert!(options_answered(&mut held[0]));
    let mut other = tcp_from("127.0.0.3", &switch);
    assert!(options_answered(&mut other));
    // A connection that carries nothing for the idle timeout is closed.
    std::thread::sleep(Duration::from_millis(3500));
    assert!(closed_by_switch(&mut held[1]), "an idle connection");
    // Its slot is free again.
    let mut again = tcp_from("127.0.0.2", &switch);
    assert!(options_answered(&mut again));
    let log = switch.log_text();
    assert!(
        log.contains("refused at the connection limits"),
        "{}",
        tail(&log, 20)
    );
}

/// An OPTIONS from `socket` with its own branch and Call-ID.
fn options(socket: &std::net::UdpSocket, target: std::net::SocketAddr, index: usize) {
    let local = socket.local_addr().unwrap();
    let request = format!(
        "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-flood-{index}\r\n\
         From: <sip:flood@{local}>;tag=f{index}\r\nTo: <sip:{target}>\r\n\
         Call-ID: flood-{index}@{local}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(request.as_bytes(), target).unwrap();
}

/// Every answer that arrives within `wait` of the last one: (status, has Retry-After).
fn answers(socket: &std::net::UdpSocket, wait: Duration) -> Vec<(u16, bool)> {
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut found = Vec::new();
    let mut buffer = vec![0u8; 65536];
    while let Ok((length, _)) = socket.recv_from(&mut buffer) {
        let text = String::from_utf8_lossy(&buffer[..length]);
        let status = text
            .get(8..11)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        found.push((status, text.contains("\r\nRetry-After: ")));
    }
    found
}

/// The transaction table is bounded (issue 20): with room for 50, a burst of 120 new
/// requests gets about 50 answers and the rest stateless 503s with Retry-After; once the kept ones time
/// out (Timer J, 64 x T1) the switch answers again.
#[test]
fn a_full_transaction_table_answers_503_and_frees_up() {
    let dir = prepaid::data_dir("transaction-bound");
    let limits = dir.join("limits.toml");
    std::fs::write(&limits, "[sip]\nmax_transactions = 50\nt1_ms = 50\n").unwrap();
    let switch = common::Switch::start_in(&dir, &["--config", limits.to_str().unwrap()]);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for index in 0..120 {
        options(&socket, switch.sip, index);
        std::thread::sleep(Duration::from_millis(1));
    }
    let burst = answers(&socket, Duration::from_millis(500));
    let ok = burst.iter().filter(|(status, _)| *status == 200).count();
    let refused = burst
        .iter()
        .filter(|(status, retry_after)| *status == 503 && *retry_after)
        .count();
    // The start-up probe's OPTIONS may still hold a place.
    assert!((48..=50).contains(&ok), "{burst:?}");
    assert_eq!(ok + refused, 120, "{burst:?}");
    // Timer J is 64 x 50 ms = 3.2 s.
    std::thread::sleep(Duration::from_millis(3700));
    options(&socket, switch.sip, 1000);
    let later = answers(&socket, Duration::from_millis(1000));
    assert_eq!(later, vec![(200, false)]);
    assert!(switch.log_text().contains("transaction table is full"));
}

/// The switch's RTP port for the caller, from the m= line of its answer.
fn answered_media_port(answer: &str) -> u16 {
    answer
        .lines()
        .find_map(|line| line.strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
        .expect("an m=audio line in the 200")
}

/// Prompts only after the caller is heard (issue 20): an INVITE whose SDP names an address
/// that sends nothing gets no RTP until `[rtp] prompt_wait_ms` runs out, and a caller that
/// sends gets its prompt at its first packet.
#[test]
fn prompts_start_at_the_callers_first_packet_not_before() {
    let dir = prepaid::data_dir("prompt-wait");
    let limits = dir.join("limits.toml");
    std::fs::write(&limits, "[rtp]\nprompt_wait_ms = 4000\n").unwrap();
    let switch = common::Switch::start_in(&dir, &["--config", limits.to_str().unwrap()]);
    let signalling = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let media = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (sip, rtp) = (
        signalling.local_addr().unwrap(),
        media.local_addr().unwrap(),
    );
    let target = switch.sip;
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        rtp.port()
    );
    let head = |method: &str, branch: &str, cseq: u32, to_tag: &str, length: usize| {
        format!(
            "{method} sip:100@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {sip};branch=z9hG4bK{branch}\r\n\
             From: <sip:anonymous@{sip}>;tag=wait\r\nTo: <sip:100@{target}>{to_tag}\r\n\
             Call-ID: prompt-wait@{sip}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
             Contact: <sip:caller@{sip}>\r\nContent-Type: application/sdp\r\n\
             Content-Length: {length}\r\n\r\n"
        )
    };
    let invite = head("INVITE", "inv", 1, "", sdp.len()) + &sdp;
    signalling.send_to(invite.as_bytes(), target).unwrap();
    signalling
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buffer = vec![0u8; 65536];
    let answer = loop {
        let (length, _) = signalling.recv_from(&mut buffer).unwrap();
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if text.starts_with("SIP/2.0 200") {
            break text;
        }
    };
    let answered = std::time::Instant::now();
    let to_tag = answer
        .lines()
        .find(|line| line.starts_with("To:"))
        .and_then(|line| line.split(";tag=").nth(1))
        .map(|tag| format!(";tag={}", tag.trim()))
        .unwrap();
    let ack = head("ACK", "ack", 1, &to_tag, 0).replace("Content-Type: application/sdp\r\n", "");
    signalling.send_to(ack.as_bytes(), target).unwrap();
    let switch_rtp = std::net::SocketAddr::new(target.ip(), answered_media_port(&answer));

    // Silent for 2 s: nothing comes.
    media
        .set_read_timeout(Some(Duration::from_millis(2000)))
        .unwrap();
    let early = media.recv_from(&mut buffer);
    assert!(early.is_err(), "RTP before the caller was heard: {early:?}");
    // One packet of ours: the welcome follows at once.
    let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
    packet.extend_from_slice(&[0xFF; 160]);
    media.send_to(&packet, switch_rtp).unwrap();
    let sent = std::time::Instant::now();
    media
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    media
        .recv_from(&mut buffer)
        .expect("the prompt after our packet");
    let took = sent.elapsed();
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert!(answered.elapsed() < Duration::from_millis(3900));
    let bye = head("BYE", "bye", 2, &to_tag, 0).replace("Content-Type: application/sdp\r\n", "");
    signalling.send_to(bye.as_bytes(), target).unwrap();
}
