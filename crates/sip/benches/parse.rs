//! Parse and serialize throughput for a typical ~900-byte INVITE and its 200 OK.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use talktime_sip::Message;

const INVITE: &str = "INVITE sip:+4930123456789@carrier.example.net;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---7a1f0c2d9e8b4a11;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:alice@203.0.113.10:5060;transport=udp>\r\n\
To: <sip:+4930123456789@carrier.example.net;user=phone>\r\n\
From: \"Alice Example\" <sip:alice@talktime.example.com>;tag=8a9f3c21\r\n\
Call-ID: NmQ4ZjI1YjQ3YzFmMDk2ZWI4ZDVjNjE0OGY3ZTAwMzk.\r\n\
CSeq: 1 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE, UPDATE\r\n\
Supported: replaces, timer, 100rel\r\n\
Session-Expires: 1800;refresher=uac\r\n\
User-Agent: Talktime/0.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 271\r\n\
\r\n\
v=0\r\n\
o=- 3912301234 3912301234 IN IP4 203.0.113.10\r\n\
s=Talktime\r\n\
c=IN IP4 203.0.113.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---7a1f0c2d9e8b4a11;rport=5060;received=203.0.113.10\r\n\
Record-Route: <sip:198.51.100.7;lr>\r\n\
Contact: <sip:+4930123456789@198.51.100.20:5060>\r\n\
To: <sip:+4930123456789@carrier.example.net;user=phone>;tag=as3f6c9a12\r\n\
From: \"Alice Example\" <sip:alice@talktime.example.com>;tag=8a9f3c21\r\n\
Call-ID: NmQ4ZjI1YjQ3YzFmMDk2ZWI4ZDVjNjE0OGY3ZTAwMzk.\r\n\
CSeq: 1 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
Supported: timer\r\n\
Require: timer\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\
\r\n";

fn bench(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("sip");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, text) in [("invite", INVITE), ("ok", OK)] {
        let bytes = text.as_bytes();
        let message = Message::parse(bytes).unwrap();
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("parse_{name}_{}b", bytes.len()), |bencher| {
            bencher.iter(|| Message::parse(black_box(bytes)).unwrap())
        });
        group.bench_function(format!("parse_validate_{name}"), |bencher| {
            bencher.iter(|| {
                let message = Message::parse(black_box(bytes)).unwrap();
                message.validate().unwrap();
                message
            })
        });
        group.bench_function(format!("serialize_{name}"), |bencher| {
            bencher.iter(|| black_box(&message).to_bytes())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
