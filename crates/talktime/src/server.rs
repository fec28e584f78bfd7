//! The running switch: binds the transports and runs the SIP core loop.
//!
//! For now the core answers OPTIONS with 200 and everything else with 501 through the
//! transaction layer; the call engine is wired in next.

use std::time::Instant;

use anyhow::Context;
use talktime_sip::transaction::{Event, Peer, SystemRandom, TimerConfig, TransactionLayer};
use talktime_sip::{Message, Response, Transport as SipTransport};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::config::Config;
use crate::transport::{Inbound, Outbound, Payload, Protocol, Transport};

pub async fn run(config: Config) -> anyhow::Result<()> {
    let (inbound_sender, mut inbound) = mpsc::channel::<Inbound>(4096);
    let transport = Transport::bind(&config.sip.udp, &config.sip.tcp, inbound_sender)
        .await
        .context("cannot bind SIP listen addresses")?;
    let timers = TimerConfig {
        t1: std::time::Duration::from_millis(config.sip.t1_ms),
        t2: std::time::Duration::from_millis(config.sip.t2_ms),
        t4: std::time::Duration::from_millis(config.sip.t4_ms),
        ..TimerConfig::default()
    };
    let mut layer = TransactionLayer::new(timers, Box::new(SystemRandom));
    info!("Talktime ready");
    loop {
        let wake = layer.poll_timeout();
        tokio::select! {
            received = inbound.recv() => {
                let Some(received) = received else { return Ok(()) };
                handle_inbound(&mut layer, received, &config);
            }
            _ = sleep_until(wake) => layer.handle_timeout(Instant::now()),
        }
        drain(&mut layer, &transport, &config).await;
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn peer(protocol: Protocol, address: std::net::SocketAddr) -> Peer {
    let transport = match protocol {
        Protocol::Udp => SipTransport::Udp,
        Protocol::Tcp => SipTransport::Tcp,
    };
    Peer { transport, address }
}

fn handle_inbound(layer: &mut TransactionLayer, received: Inbound, _config: &Config) {
    let message = match received.payload {
        Payload::Framed(message) => *message,
        Payload::Datagram(bytes) => match Message::parse(&bytes) {
            Ok(message) => message,
            Err(error) => {
                debug!(source = %received.source, %error, "dropping unparseable message");
                return;
            }
        },
    };
    let source = peer(received.protocol, received.source);
    if let Err(error) = layer.handle_message(message, source, Instant::now()) {
        debug!(source = %received.source, %error, "message refused by the transaction layer");
    }
}

async fn drain(layer: &mut TransactionLayer, transport: &Transport, config: &Config) {
    while let Some(event) = layer.poll_event() {
        if let Event::Request {
            transaction,
            request,
            ..
        } = event
        {
            let (status, reason) = match request.method {
                talktime_sip::Method::Options => (200, "OK"),
                talktime_sip::Method::Ack => continue,
                _ => (501, "Not Implemented"),
            };
            let mut response = Response::for_request(&request, status, reason);
            response.headers.push("Server", &config.sip.user_agent);
            let _ = layer.send_response(transaction, response, Instant::now());
        }
    }
    while let Some(transmit) = layer.poll_transmit() {
        let protocol = match transmit.destination.transport {
            SipTransport::Udp => Protocol::Udp,
            _ => Protocol::Tcp,
        };
        transport
            .send(Outbound {
                bytes: transmit.message.to_bytes(),
                destination: transmit.destination.address,
                protocol,
            })
            .await;
    }
}
