//! What a restart needs to bill a call this switch answered and end both its legs if the
//! process dies: written on the reservation at answer (the shell's `recovery` module reads it
//! back).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use talktime_sip::transaction::Peer;
use talktime_sip::{Message, Request, Transport as SipTransport};

/// A BYE of one leg, built at answer with its CSeq ahead of anything the call sends later.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LegBye {
    /// `udp` or `tcp`.
    pub transport: String,
    pub address: SocketAddr,
    /// The request as sent on the wire, without a Via branch (the transaction layer adds one).
    pub request: String,
}

impl LegBye {
    pub fn new(request: &Request, peer: Peer) -> LegBye {
        LegBye {
            transport: peer.transport.as_str().to_ascii_lowercase(),
            address: peer.address,
            request: String::from_utf8_lossy(&request.to_bytes()).into_owned(),
        }
    }

    /// The request and where it goes, if the stored text still parses.
    pub fn to_request(&self) -> Option<(Request, Peer)> {
        let transport = match self.transport.as_str() {
            "tcp" => SipTransport::Tcp,
            "tls" => SipTransport::Tls,
            _ => SipTransport::Udp,
        };
        match Message::parse(self.request.as_bytes()) {
            Ok(Message::Request(request)) => Some((request, Peer::new(transport, self.address))),
            _ => None,
        }
    }

    /// The core thread whose transactions take this BYE's answers (its Call-ID's).
    pub fn core(&self, count: usize) -> usize {
        crate::shard::shard_of_datagram(self.request.as_bytes(), count).unwrap_or(0)
    }
}

/// What a restart needs to bill an answered call and end it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub account: i64,
    pub card: Option<i64>,
    /// The destination as rated (E.164 digits).
    pub destination: String,
    pub toll_free: bool,
    /// When the call was rated (the rating's start).
    pub rated_at_ms: i64,
    pub caller_id: Option<String>,
    pub access_number: String,
    pub carrier: String,
    /// When the carrier INVITE went out.
    pub started_ms: i64,
    /// The carrier's buy rate a minute (decimal text), when routing knew it.
    pub buy_per_minute: Option<String>,
    /// The caller's leg first, then the carrier's.
    pub byes: Vec<LegBye>,
}
