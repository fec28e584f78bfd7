//! Sans-IO media for Talktime: RTP/RTCP, G.711, prompt decoding and playback, DTMF (RFC 4733
//! and in-band), symmetric RTP latching, port bookkeeping and the two-leg relay.
//!
//! Nothing here owns a socket or reads a clock: the shell passes datagrams, source addresses
//! and `Instant`s in, and sends what comes back out. See [`Relay`] for the per-call entry point.
//!
//! How a shell drives one call (sockets replaced by vectors here):
//!
//! ```
//! use std::time::{Duration, Instant};
//! use talktime_media::{Law, LegConfig, MediaEvent, PlayItem, Relay, RtcpMode, RtpAction, Side, Tone};
//!
//! let start = Instant::now();
//! let caller = "198.51.100.7:61000".parse().unwrap();
//! let mut relay = Relay::new(RtcpMode::Terminate);
//! // From sdp::answer(..): PCMU, telephone-event 101, the caller's SDP address; SSRC drawn at random.
//! relay.set_leg(Side::A, LegConfig::g711(Law::MuLaw, Some(caller), 0x1234).with_telephone_event(101), start);
//! relay.play(Side::A, [PlayItem::Tone(Tone::warning_beep())], true, start).unwrap();
//!
//! let mut sent = Vec::new();
//! let mut buffer = [0u8; 1500];
//! let mut now = start;
//! while let Some(wake) = relay.poll_timeout() {
//!     if wake > start + Duration::from_secs(1) { break; }
//!     now = now.max(wake);
//!     relay.handle_timeout(now);
//!     // Locally generated packets (prompts, tones, DTMF) that are due.
//!     while let Some(transmit) = relay.poll_transmit(now, &mut buffer) {
//!         sent.push((transmit.destination, buffer[..transmit.length].to_vec()));
//!     }
//!     // A datagram from a socket (here an echo standing in for the caller's audio): forward
//!     // it if told to; it was rewritten in place.
//!     let mut datagram = sent.last().map(|(_, p)| p.clone()).unwrap_or_default();
//!     if let RtpAction::Forward { destination, .. } = relay.handle_rtp(Side::A, caller, &mut datagram, now) {
//!         let _ = destination; // socket_b.send_to(&datagram, destination)
//!     }
//!     while let Some(event) = relay.poll_event() {
//!         if let MediaEvent::Dtmf { event, .. } = event { println!("digit {}", event.digit); }
//!     }
//! }
//! assert_eq!(sent.len(), 15); // a 300 ms beep in 20 ms packets
//! ```

pub mod audio;
pub mod dtmf;
pub mod g711;
pub mod inband;
pub mod latch;
pub mod ports;
pub mod prompt;
pub mod relay;
pub mod rewrite;
pub mod rtp;

pub use audio::AudioError;
pub use dtmf::{DtmfEvent, DtmfSendError, DtmfSource, Rfc4733Receiver, Rfc4733Sender};
pub use g711::Law;
pub use inband::{InbandConfig, InbandDetector};
pub use latch::{Latch, LatchDecision};
pub use ports::{PortAllocator, PortError, PortPair};
pub use prompt::{Frame, PlayItem, Prompt, PromptCache, PromptPlayer, Tone};
pub use relay::{
    DropReason, LegConfig, MediaEvent, PlayError, Relay, RtcpMode, RtpAction, Side, Transmit,
};
pub use rewrite::{OutgoingStream, SourceId};
pub use rtp::{RtpError, RtpHeader};
