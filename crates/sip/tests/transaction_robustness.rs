//! Property test: arbitrary sequences of (possibly broken) requests and responses, TU
//! actions and clock jumps never panic the layer, and no transaction outlives its timers
//! except server transactions still waiting for their TU's answer and INVITE client
//! transactions in Proceeding that their TU never cancelled.

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use talktime_sip::transaction::{
    Event, InviteClientState, InviteServerState, NonInviteServerState, Peer, SplitMix64, State,
    TimerConfig, TransactionId, TransactionLayer,
};
use talktime_sip::{Message, Response, Transport};

const METHODS: [&str; 6] = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO"];
const BRANCHES: [&str; 4] = [";branch=z9hG4bKa", ";branch=z9hG4bKb", ";branch=old1", ""];

#[derive(Debug, Clone)]
enum Step {
    Request {
        method: usize,
        branch: usize,
        cseq: u32,
        to_tag: bool,
        drop_header: Option<usize>,
    },
    Response {
        status: u16,
        method: usize,
        branch: usize,
    },
    Send {
        method: usize,
    },
    Answer {
        status: u16,
    },
    Cancel,
    Wait {
        millis: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (
            0..6usize,
            0..4usize,
            1..4u32,
            any::<bool>(),
            proptest::option::of(0..7usize)
        )
            .prop_map(
                |(method, branch, cseq, to_tag, drop_header)| Step::Request {
                    method,
                    branch,
                    cseq,
                    to_tag,
                    drop_header
                }
            ),
        (
            prop_oneof![Just(100u16), Just(180), Just(200), Just(486)],
            0..6usize,
            0..4usize
        )
            .prop_map(|(status, method, branch)| Step::Response {
                status,
                method,
                branch
            }),
        (0..6usize).prop_map(|method| Step::Send { method }),
        prop_oneof![Just(100u16), Just(180), Just(200), Just(487)]
            .prop_map(|status| Step::Answer { status }),
        Just(Step::Cancel),
        (0..40_000u64).prop_map(|millis| Step::Wait { millis }),
    ]
}

fn request_text(
    method: &str,
    branch: &str,
    cseq: u32,
    to_tag: bool,
    drop: Option<usize>,
) -> String {
    let tag = if to_tag { ";tag=t1" } else { "" };
    let headers = [
        format!("Via: SIP/2.0/UDP 192.0.2.9:5060{branch}"),
        "Max-Forwards: 70".to_owned(),
        "From: <sip:a@example.com>;tag=f1".to_owned(),
        format!("To: <sip:b@example.com>{tag}"),
        "Call-ID: robust@192.0.2.9".to_owned(),
        format!("CSeq: {cseq} {method}"),
        "Contact: <sip:a@192.0.2.9>".to_owned(),
    ];
    let mut text = format!("{method} sip:b@192.0.2.2 SIP/2.0\r\n");
    for (index, header) in headers.iter().enumerate() {
        if Some(index) != drop {
            text.push_str(header);
            text.push_str("\r\n");
        }
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text
}

fn response_text(status: u16, method: &str, branch: &str) -> String {
    format!(
        "SIP/2.0 {status} Whatever\r\nVia: SIP/2.0/UDP 192.0.2.2:5060{branch}\r\n\
         From: <sip:b@example.com>;tag=f2\r\nTo: <sip:a@example.com>;tag=t2\r\n\
         Call-ID: ours\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

fn run(steps: Vec<Step>) {
    let mut layer = TransactionLayer::new(TimerConfig::default(), Box::new(SplitMix64::new(9)));
    let peer = Peer::new(
        Transport::Udp,
        "192.0.2.9:5060".parse::<SocketAddr>().unwrap(),
    );
    let start = Instant::now();
    let mut now = start;
    let mut servers: Vec<TransactionId> = Vec::new();
    let mut clients: Vec<TransactionId> = Vec::new();
    for step in steps {
        match step {
            Step::Request {
                method,
                branch,
                cseq,
                to_tag,
                drop_header,
            } => {
                let text =
                    request_text(METHODS[method], BRANCHES[branch], cseq, to_tag, drop_header);
                if let Ok(message) = Message::parse(text.as_bytes()) {
                    let _ = layer.handle_message(message, peer, now);
                }
            }
            Step::Response {
                status,
                method,
                branch,
            } => {
                // Responses on the branches our own requests got are likelier to match.
                let branch = match clients.last().and_then(|id| layer.request(*id)) {
                    Some(request) if branch == 0 => {
                        format!(";branch={}", request.top_via().unwrap().branch().unwrap())
                    }
                    _ => BRANCHES[branch].to_owned(),
                };
                let text = response_text(status, METHODS[method], &branch);
                if let Ok(message) = Message::parse(text.as_bytes()) {
                    let _ = layer.handle_message(message, peer, now);
                }
            }
            Step::Send { method } => {
                let text = request_text(METHODS[method], "", 1, false, None);
                if let Ok(Message::Request(request)) = Message::parse(text.as_bytes())
                    && let Ok(id) = layer.send_request(request, peer, now)
                {
                    clients.push(id);
                }
            }
            Step::Answer { status } => {
                if let Some(id) = servers.last().copied()
                    && let Some(request) = layer.request(id).cloned()
                {
                    let mut response = Response::for_request(&request, status, "Whatever");
                    response.set_to_tag("t9");
                    let _ = layer.send_response(id, response, now);
                }
            }
            Step::Cancel => {
                if let Some(id) = clients.last().copied() {
                    let _ = layer.send_cancel(id, now);
                }
            }
            Step::Wait { millis } => {
                now += Duration::from_millis(millis);
                layer.handle_timeout(now);
            }
        }
        while let Some(event) = layer.poll_event() {
            match event {
                Event::Request { transaction, .. } => servers.push(transaction),
                Event::CancelReceived { cancel, .. } => {
                    let _ = layer.answer_cancel(cancel, now);
                }
                _ => {}
            }
        }
        while layer.poll_transmit().is_some() {}
        if let Some(deadline) = layer.poll_timeout() {
            // Deadlines are never more than 64*T1 ahead, nor (much) in the past.
            assert!(deadline <= now + Duration::from_secs(32));
        }
    }
    // An hour later only transactions waiting on a TU remain.
    now += Duration::from_secs(3600);
    layer.handle_timeout(now);
    while layer.poll_event().is_some() {}
    for id in servers.iter().chain(clients.iter()) {
        match layer.state(*id) {
            None
            | Some(State::InviteServer(InviteServerState::Proceeding))
            | Some(State::NonInviteServer(NonInviteServerState::Trying))
            | Some(State::NonInviteServer(NonInviteServerState::Proceeding))
            // §17.1.1.2: Proceeding has no timer; the TU ends it with CANCEL (after
            // which the 64*T1 guard applies).
            | Some(State::InviteClient(InviteClientState::Proceeding)) => {}
            other => panic!("{id:?} still alive in {other:?}"),
        }
    }
    let waiting = servers
        .iter()
        .chain(clients.iter())
        .filter(|id| layer.state(**id).is_some())
        .count();
    assert_eq!(layer.len(), waiting);
    assert!(layer.poll_timeout().is_none_or(|deadline| deadline > now));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_traffic_never_panics_and_always_drains(steps in proptest::collection::vec(step(), 1..40)) {
        run(steps);
    }
}
