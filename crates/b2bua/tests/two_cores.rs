//! Two core threads' switches (`[sip] core_threads = 2`, crate::shard) driven side by side on
//! a virtual clock: each call stays on the core its Call-ID names, call keys name their core,
//! the RTP ports do not overlap, and one core alone pings carriers with Call-IDs of its own.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use talktime_b2bua::config::Config;
use talktime_b2bua::shard::{shard_of_call_id, shard_of_key};
use talktime_b2bua::{Input, Listening, MediaCommand, Now, Output, Services, Switch};
use talktime_media::PromptCache;
use talktime_routing::Router;
use talktime_sip::Message;
use talktime_sip::transaction::{Peer, RandomSource, SplitMix64};

fn two_cores() -> (Vec<Switch>, Now) {
    let text = "[sip]\nudp = [\"127.0.0.1:5060\"]\ntcp = []\nadvertised_address = \"\"\n\
        t1_ms = 500\nt2_ms = 4000\nt4_ms = 5000\nudp_mtu = 1300\ntest_number = \"9999\"\n\
        test_call_ms = 60000\nuser_agent = \"Talktime\"\nmin_session_expires_s = 90\n\
        core_threads = 2\n\n[rtp]\nport_min = 20000\nport_max = 20099\n\
        inactivity_timeout_ms = 0\n\n\
        [[carriers]]\nname = \"pinged\"\nhost = \"127.0.0.2\"\nport = 5070\n\
        options_interval_ms = 1000\n\n[[dial_plans]]\nname = \"default\"\n\n\
        [[dial_plans.routes]]\nprefix = \"\"\nmode = \"priority\"\n\
        carriers = [{ name = \"pinged\", priority = 0 }]\n";
    let config = Config::from_file_text(text, Path::new("two.toml")).unwrap();
    config.validate().unwrap();
    let start = Instant::now();
    let now = Now {
        instant: start,
        epoch_ms: 1_796_212_800_000,
    };
    let router = Router::new(
        config.carriers.clone(),
        config.dial_plans.clone(),
        HashMap::new(),
        start,
    )
    .unwrap();
    let services = Services {
        prompts: PromptCache::new(),
        router,
        carrier_addresses: [("pinged".to_owned(), "127.0.0.2:5070".parse().unwrap())].into(),
        listening: Listening {
            udp: Some("127.0.0.1:5060".parse().unwrap()),
            tcp: None,
            tls: None,
        },
        random: Box::new(SplitMix64::new(1)),
    };
    let more: Vec<Box<dyn RandomSource>> = vec![Box::new(SplitMix64::new(2))];
    (Switch::sharded(config, services, more, now).unwrap(), now)
}

fn test_call(call_id: &str, rtp_port: u16) -> Input {
    let branch = call_id.split('-').next().unwrap_or_default();
    let text = format!(
        "INVITE sip:9999@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=a\r\n\
         To: <sip:9999@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:caller@127.0.0.1:40000>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{}",
        sdp(rtp_port).len(),
        sdp(rtp_port)
    );
    Input::Datagram {
        bytes: text.into_bytes(),
        source: Peer::new(
            talktime_sip::Transport::Udp,
            "127.0.0.1:40000".parse().unwrap(),
        ),
    }
}

fn sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

fn outputs(switch: &mut Switch) -> Vec<Output> {
    std::iter::from_fn(|| switch.poll_output()).collect()
}

/// A Call-ID the hash gives to `core`.
fn call_id_on(core: usize, seed: usize) -> String {
    (seed..)
        .map(|n| format!("{n}-caller@127.0.0.1"))
        .find(|call_id| shard_of_call_id(call_id, 2) == core)
        .unwrap()
}

#[test]
fn each_core_keys_its_own_calls_on_its_own_rtp_ports() {
    let (mut cores, now) = two_cores();
    for core in &mut cores {
        outputs(core);
    }
    let mut ports_by_core: Vec<Vec<u16>> = vec![Vec::new(), Vec::new()];
    for seed in 0..6 {
        for (index, core) in cores.iter_mut().enumerate() {
            let call_id = call_id_on(index, seed * 100);
            core.handle_input(test_call(&call_id, 40002), now);
            let mut answered = false;
            for output in outputs(core) {
                match output {
                    Output::Media {
                        call,
                        command: MediaCommand::Open { ports, .. },
                    } => {
                        assert_eq!(shard_of_key(call, 2), index, "key {call} of core {index}");
                        ports_by_core[index].extend(ports);
                    }
                    Output::Transmit { bytes, .. } => {
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        answered |= text.starts_with("SIP/2.0 200");
                    }
                    _ => {}
                }
            }
            assert!(answered, "core {index} answers its own test call");
        }
    }
    assert_eq!(cores[0].calls_up() + cores[1].calls_up(), 12);
    // The tones end with BYEs: client transactions whose ids name their core, as the keys do
    // (a failed delivery is passed to the core of its id).
    let tones_over = Now {
        instant: now.instant + std::time::Duration::from_secs(61),
        epoch_ms: now.epoch_ms + 61_000,
    };
    for (index, core) in cores.iter_mut().enumerate() {
        core.handle_timeout(tones_over);
        let byes: Vec<u64> = outputs(core)
            .into_iter()
            .filter_map(|output| match output {
                Output::Transmit {
                    bytes,
                    transaction: Some(transaction),
                    ..
                } if bytes.starts_with(b"BYE ") => Some(transaction.as_u64()),
                _ => None,
            })
            .collect();
        assert_eq!(byes.len(), 6, "core {index}'s BYEs");
        assert!(
            byes.iter().all(|id| shard_of_key(*id, 2) == index),
            "{byes:?}"
        );
    }
    assert!(
        ports_by_core[0]
            .iter()
            .all(|port| (20000..20050).contains(port))
    );
    assert!(
        ports_by_core[1]
            .iter()
            .all(|port| (20050..20100).contains(port))
    );
}

#[test]
fn only_core_zero_pings_carriers_with_a_call_id_that_comes_back_to_it() {
    let (mut cores, now) = two_cores();
    let later = Now {
        instant: now.instant + std::time::Duration::from_secs(2),
        epoch_ms: now.epoch_ms + 2000,
    };
    let mut pings = vec![0, 0];
    for (index, core) in cores.iter_mut().enumerate() {
        outputs(core);
        core.handle_timeout(later);
        for output in outputs(core) {
            let Output::Transmit { bytes, .. } = output else {
                continue;
            };
            let Ok(Message::Request(request)) = Message::parse(&bytes) else {
                continue;
            };
            if request.method == talktime_sip::Method::Options {
                let call_id = request.call_id().unwrap().to_owned();
                assert_eq!(shard_of_call_id(&call_id, 2), index);
                pings[index] += 1;
            }
        }
    }
    assert_eq!(pings, vec![1, 0]);
}
