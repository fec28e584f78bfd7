//! A live mutation test (issue 20): thousands of mutated SIP messages (RFC 4475's torture
//! messages and the requests of a real call flow, bytes flipped, lines cut, duplicated and
//! swapped, numbers blown up, framing broken over TCP) sent at the running switch from one
//! address, while and after which a real SIPp caller places a prepaid call that must connect
//! and be billed exactly; the switch must still be running and answering at the end.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use common::calls::start;
use common::prepaid::{self, ConfigFile};
use common::{assert_sipp_ok, options_ping, tail};

/// A deterministic generator (xorshift64*), so a failure can be replayed from its seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// What a real call flow sends: the caller's INVITE with SDP, its ACK, BYE, CANCEL, an
/// OPTIONS, a REGISTER, an INFO with a digit, and a carrier's 200 for a call we never made.
fn call_flow(target: SocketAddr, local: SocketAddr) -> Vec<Vec<u8>> {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.5\r\ns=-\r\nc=IN IP4 127.0.0.5\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n\
               a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";
    let request = |method: &str, uri: &str, extra: &str, body: &str| {
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-m-{method}-MUTANT\r\n\
             Max-Forwards: 70\r\nFrom: \"Caller\" <sip:15551230000@{local}>;tag=abc\r\n\
             To: <sip:100@{target}>\r\nCall-ID: mutant-MUTANT@{local}\r\nCSeq: 1 {method}\r\n\
             Contact: <sip:caller@{local}>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let access = format!("sip:100@{target}");
    vec![
        request("INVITE", &access, "Content-Type: application/sdp\r\n", sdp),
        request("ACK", &access, "", ""),
        request("BYE", &access, "", ""),
        request("CANCEL", &access, "", ""),
        request("OPTIONS", &access, "Accept: application/sdp\r\n", ""),
        request(
            "REGISTER",
            &format!("sip:{target}"),
            "Expires: 3600\r\n",
            "",
        ),
        request(
            "INFO",
            &access,
            "Content-Type: application/dtmf-relay\r\n",
            "Signal=5\r\nDuration=160\r\n",
        ),
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {target};branch=z9hG4bKnotours\r\n\
             From: <sip:a@{target}>;tag=1\r\nTo: <sip:b@{local}>;tag=2\r\nCall-ID: stray\r\n\
             CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes(),
    ]
}

fn rfc4475_messages() -> Vec<Vec<u8>> {
    let directory = common::repo_root().join("crates/sip/tests/fixtures/rfc4475");
    let mut names: Vec<_> = std::fs::read_dir(&directory)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "dat"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|path| std::fs::read(path).unwrap())
        .collect()
}

/// One mutation of `message`.
fn mutate(message: &[u8], random: &mut Random) -> Vec<u8> {
    let mut bytes = message.to_vec();
    let lines = |bytes: &[u8]| -> Vec<Vec<u8>> {
        bytes
            .split(|byte| *byte == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    // Most mutants carry one change, so many still parse and reach the call logic.
    let changes = if random.below(10) < 6 {
        1
    } else {
        2 + random.below(2)
    };
    for _ in 0..changes {
        let length = bytes.len().max(1);
        match random.below(9) {
            0 => {
                let at = random.below(length);
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= 1 << random.below(8);
                }
            }
            1 => bytes.truncate(random.below(length)),
            2 => {
                let at = random.below(length);
                let end = (at + random.below(64)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            3 => {
                let at = random.below(length).min(bytes.len());
                let noise: Vec<u8> = (0..random.below(32)).map(|_| random.next() as u8).collect();
                bytes.splice(at..at, noise);
            }
            4 | 5 => {
                let mut split = lines(&bytes);
                let a = random.below(split.len());
                let b = random.below(split.len());
                if random.below(2) == 0 {
                    split.swap(a, b);
                } else {
                    let copy = split[a].clone();
                    split.insert(b, copy);
                }
                bytes = split.join(&b'\n');
            }
            6 => {
                // One number made huge, negative or zero: lengths, CSeq, Max-Forwards, ports.
                let runs: Vec<(usize, usize)> = digit_runs(&bytes);
                if !runs.is_empty() {
                    let (start, end) = runs[random.below(runs.len())];
                    let huge = ["4294967296", "99999999999999999999", "-1", "0"][random.below(4)];
                    bytes.splice(start..end, huge.bytes());
                }
            }
            7 => bytes.extend(std::iter::repeat_n(b'A', random.below(4000))),
            _ => {
                let text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
                bytes = text.into_bytes();
            }
        }
    }
    bytes
}

/// The mutant with its placeholder (branch, Call-ID) replaced by its own number.
fn unique(mutant: &[u8], round: usize) -> Vec<u8> {
    let marker = b"MUTANT";
    let id = round.to_string();
    let mut out = Vec::with_capacity(mutant.len() + 16);
    let mut rest = mutant;
    while let Some(at) = rest
        .windows(marker.len())
        .position(|window| window == marker)
    {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(id.as_bytes());
        rest = &rest[at + marker.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Where each run of ASCII digits starts and ends.
fn digit_runs(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (index, byte) in bytes.iter().enumerate() {
        match (byte.is_ascii_digit(), start) {
            (true, None) => start = Some(index),
            (false, Some(from)) => {
                runs.push((from, index));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        runs.push((from, bytes.len()));
    }
    runs
}

#[test]
fn mutated_sip_does_not_stop_calls_from_being_placed_and_billed() {
    let dir = prepaid::data_dir("mutation");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, "1234567890", 5_000_000, 0);
    let carrier = common::scenario::BackgroundSipp::uas(
        120,
        &common::scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "1"],
    );
    // 127.0.0.5, the mutator, may call the access numbers (so mutants reach the IVR) but hold
    // no more than 5 calls: the real caller on 127.0.0.1 keeps its ports and its admission.
    let mut switch = start(
        &dir,
        ConfigFile::new()
            .raw(
                "[[peers]]\naddress = \"127.0.0.0/8\"\naccess = true\ntrusted_caller_id = true\n\
                 calls_per_second = 0\nmax_calls = 0\n\n\
                 [[peers]]\naddress = \"127.0.0.5\"\naccess = true\ncalls_per_second = 1000\n\
                 max_calls = 5\n",
            )
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    let target = switch.sip;
    let udp = UdpSocket::bind("127.0.0.5:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let torture = rfc4475_messages();
    assert!(torture.len() > 40);
    let flow = call_flow(target, udp.local_addr().unwrap());
    let mut originals = torture.clone();
    originals.extend(flow.iter().cloned());

    let mut random = Random(0x7a1c_7a1c_2026_1202);
    let mut sent = 0usize;
    let mut sink = vec![0u8; 65536];
    std::thread::scope(|scope| {
        // The real call runs while the mutants fly.
        let call = scope.spawn(|| {
            let script = [
                (Duration::from_millis(2000), "1234567890#"),
                (Duration::from_millis(5600), "0015551234567#"),
            ];
            common::calls::call_and_hang_up(&switch, &dir, &script, Duration::from_secs(3))
        });
        for round in 0..4000 {
            // Half from the call flow, each mutant its own transaction and call.
            let original = if random.below(2) == 0 {
                &flow[random.below(flow.len())]
            } else {
                &torture[random.below(torture.len())]
            };
            let mutant = unique(&mutate(original, &mut random), round);
            if udp.send_to(&mutant, target).is_ok() {
                sent += 1;
            }
            while udp.recv_from(&mut sink).is_ok() {}
            if round % 400 == 0 {
                stream_mutants(target, &originals, &mut random);
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let output = call.join().unwrap();
        assert_sipp_ok(&output, &switch, "a real call among the mutants");
    });
    assert!(sent > 3500, "sent {sent}");
    // Mutants got past the parser into the call logic, not only into its error paths.
    let log = switch.log_text();
    let mutant_calls = log
        .lines()
        .filter(|line| line.contains("call started") && line.contains("source=127.0.0.5"))
        .count();
    assert!(mutant_calls >= 5, "{mutant_calls} mutant calls started");
    assert!(switch.is_running(), "{}", tail(&switch.log_text(), 40));
    assert_eq!(
        options_ping(target, Duration::from_secs(2)).as_deref(),
        Some("SIP/2.0 200 OK")
    );
    assert!(carrier.finish(Duration::from_secs(10)).success());
    let ids = switch.call_ids();
    let real = ids
        .iter()
        .find(|id| !prepaid::cdrs(&dir, &format!("{id}#1")).is_empty())
        .expect("the real call's CDR");
    let cdr = prepaid::cdrs(&dir, &format!("{real}#1")).remove(0);
    assert!(cdr.billed_seconds >= 1, "{cdr:?}");
    // 0.60 a minute per second: 0.01 a second.
    let charged = 5_000_000 - prepaid::balance(&dir, account);
    assert_eq!(charged, cdr.billed_seconds * 10_000, "{cdr:?}");
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
}

/// A TCP connection fed mutated messages back to back (framing broken on purpose), closed.
fn stream_mutants(target: SocketAddr, originals: &[Vec<u8>], random: &mut Random) {
    // From the mutator's address, so its calls count against its own limits.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = "127.0.0.5:0".parse().unwrap();
    socket.bind(&local.into()).unwrap();
    if socket
        .connect_timeout(&target.into(), Duration::from_secs(2))
        .is_err()
    {
        return;
    }
    let mut stream: TcpStream = socket.into();
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    for _ in 0..20 {
        let original = &originals[random.below(originals.len())];
        let id = random.below(1_000_000) + 1_000_000;
        let _ = stream.write_all(&unique(&mutate(original, random), id));
    }
}
