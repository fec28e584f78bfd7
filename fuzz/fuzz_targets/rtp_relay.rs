//! Any datagram at either leg of a bridged call's relay (RTP, RTCP-looking, RFC 4733, junk):
//! the relay must not panic, and whatever it forwards stays within the buffer it was given.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use talktime_media::relay::{LegConfig, Relay, RtcpMode, Side};
use talktime_media::Law;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let start = Instant::now();
    let mut relay = Relay::new(RtcpMode::Terminate);
    let caller = "127.0.0.1:40000".parse().unwrap();
    let carrier = "127.0.0.2:40010".parse().unwrap();
    relay.set_leg(Side::A, LegConfig::g711(Law::MuLaw, Some(caller), 1).with_telephone_event(101), start);
    relay.set_leg(Side::B, LegConfig::g711(Law::MuLaw, Some(carrier), 2).with_telephone_event(101), start);
    relay.set_bridged(selector & 1 == 1);
    let (side, from) = if selector & 2 == 0 { (Side::A, caller) } else { (Side::B, carrier) };
    let mut buffer = packet.to_vec();
    let _ = relay.handle_rtp(side, from, &mut buffer, start);
    let mut outbound = [0u8; 2048];
    let later = start + Duration::from_millis(20);
    while let Some(transmit) = relay.poll_transmit(later, &mut outbound) {
        assert!(transmit.length <= outbound.len());
    }
    while relay.poll_event().is_some() {}
});
