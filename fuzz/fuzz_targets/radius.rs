//! Any datagram at the RADIUS server: decoding, the secret checks, the request it becomes and
//! a signed answer must not panic; a packet that decodes re-encodes to one that decodes the
//! same; the server's tables stay bounded.
#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use talktime_radius::{ClientConfig, Packet, Received, Reply, ReturnCode, Server, Style};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::decode(data) {
        let again = Packet::decode(&packet.encode());
        if packet.attributes.iter().all(|attribute| attribute.value.len() <= 253) {
            assert_eq!(again.as_ref(), Ok(&packet));
        }
    }
    let clients = [ClientConfig {
        address: "127.0.0.0/8".into(),
        secret: "fuzz".into(),
        style: if data.first().is_some_and(|byte| byte & 1 == 1) {
            Style::Bare
        } else {
            Style::Cisco
        },
        name: "fuzz".into(),
    }];
    let Ok(mut server) = Server::new(&clients) else {
        return;
    };
    let source: SocketAddr = "127.0.0.1:1645".parse().unwrap();
    let now = Instant::now();
    if let Received::Request(request) = server.handle_datagram(data, source, now) {
        let reply = match data.len() % 3 {
            0 => Reply::Reject(ReturnCode::InvalidAccount),
            1 => Reply::AccountingResponse,
            _ => Reply::Accept {
                credit_amount: Some("1.5".into()),
                currency: Some("USD".into()),
                credit_time_s: Some(60),
                language: Some("en".into()),
            },
        };
        let answered = server.respond(request.handle, reply, now);
        if let Some((octets, _)) = answered {
            assert!(Packet::decode(&octets).is_ok());
        }
        // The same datagram again is a duplicate: the same answer, not a second request.
        assert!(!matches!(
            server.handle_datagram(data, source, now),
            Received::Request(_)
        ));
    }
});
