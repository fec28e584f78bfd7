//! A full INVITE -> 180 -> 486 -> ACK exchange through a client and a server transaction layer.

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(clippy::unwrap_used)] // fixed, known-good inputs

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use talktime_sip::transaction::{Peer, SplitMix64, TimerConfig, TransactionLayer};
use talktime_sip::{Message, Request, Response, Transport};

fn invite(n: u32) -> Request {
    let text = format!(
        "INVITE sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060\r\nMax-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a{n}\r\nTo: <sip:bob@example.com>\r\nCall-ID: c{n}@192.0.2.1\r\n\
CSeq: 1 INVITE\r\nContact: <sip:alice@192.0.2.1>\r\nContent-Length: 0\r\n\r\n"
    );
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        _ => unreachable!(),
    }
}

/// One INVITE transaction pair (client and server layer), 180, 486, ACK, then timers run out.
fn bench(c: &mut Criterion) {
    let peer_a = Peer::new(
        Transport::Udp,
        "192.0.2.1:5060".parse::<SocketAddr>().unwrap(),
    );
    let peer_b = Peer::new(
        Transport::Udp,
        "192.0.2.2:5060".parse::<SocketAddr>().unwrap(),
    );
    c.bench_function("invite_486_exchange_both_layers", |b| {
        let mut uac = TransactionLayer::new(TimerConfig::default(), Box::new(SplitMix64::new(1)));
        let mut uas = TransactionLayer::new(TimerConfig::default(), Box::new(SplitMix64::new(2)));
        let start = Instant::now();
        let mut n = 0u32;
        b.iter(|| {
            n += 1;
            let now = start + Duration::from_millis(n as u64);
            uac.send_request(invite(n), peer_b, now).unwrap();
            while let Some(t) = uac.poll_transmit() {
                uas.handle_message(t.message, peer_a, now).unwrap();
            }
            let mut server = None;
            while let Some(e) = uas.poll_event() {
                if let talktime_sip::transaction::Event::Request {
                    transaction,
                    request,
                    ..
                } = e
                {
                    server = Some((transaction, request));
                }
            }
            let (id, request) = server.unwrap();
            for status in [180u16, 486] {
                let mut r = Response::for_request(&request, status, "X");
                r.set_to_tag("t");
                uas.send_response(id, r, now).unwrap();
            }
            while let Some(t) = uas.poll_transmit() {
                uac.handle_message(t.message, peer_b, now).unwrap();
            }
            while let Some(t) = uac.poll_transmit() {
                uas.handle_message(t.message, peer_a, now).unwrap();
            }
            while uac.poll_event().is_some() {}
            while uas.poll_event().is_some() {}
            // Let timers D and I expire.
            let later = now + Duration::from_secs(40);
            uac.handle_timeout(later);
            uas.handle_timeout(later);
            while uac.poll_event().is_some() {}
            while uas.poll_event().is_some() {}
            black_box((uac.len(), uas.len()))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
