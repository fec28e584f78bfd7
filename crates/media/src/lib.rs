//! Sans-IO media for Talktime: RTP/RTCP, G.711, prompt decoding and playback, DTMF (RFC 4733
//! and in-band), symmetric RTP latching, port bookkeeping and the two-leg relay.
//!
//! Nothing here owns a socket or reads a clock: the shell passes datagrams, source addresses
//! and `Instant`s in, and sends what comes back out. See [`Relay`] for the per-call entry point.

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
