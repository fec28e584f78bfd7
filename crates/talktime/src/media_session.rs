//! Carries the switch's media commands to the media threads ([`crate::media_workers`]): binds
//! a call's two RTP ports on `Open`, hands them to a thread, passes the call's later
//! commands on and closes them on `Close`. Reports come back on the [`ReportSender`]; RTP
//! never passes through the core.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use talktime_b2bua::{MediaCommand, MediaReport};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::media_workers::{Control, MediaWorkers, NewCall, WorkerHandle};

/// Reports go to the core tagged with the call they belong to.
/// Unbounded: a media thread never waits for the core (reports are a few per call).
pub type ReportSender = mpsc::UnboundedSender<(u64, MediaReport)>;

/// The media of every call, by the switch's call key.
#[derive(Debug)]
pub struct MediaCalls {
    /// The media threads, shared by the core threads (each has its own `MediaCalls`).
    workers: std::sync::Arc<MediaWorkers>,
    calls: HashMap<u64, (WorkerHandle, u64)>,
    reports: ReportSender,
}

impl MediaCalls {
    pub fn new(
        workers: impl Into<std::sync::Arc<MediaWorkers>>,
        reports: ReportSender,
    ) -> MediaCalls {
        MediaCalls {
            workers: workers.into(),
            calls: HashMap::new(),
            reports,
        }
    }

    /// Carries out one command of the switch for `call`.
    pub fn execute(&mut self, call: u64, command: MediaCommand) {
        match command {
            MediaCommand::Open {
                address,
                ports,
                inactivity,
            } => match self.open(call, address, ports, inactivity) {
                Ok(()) => {
                    debug!(call, ?ports, "media opened");
                    let _ = self.reports.send((call, MediaReport::Opened));
                }
                Err((port, error)) => {
                    warn!(call, port, %error, "cannot bind the call's RTP port");
                    let busy = (error.kind() == std::io::ErrorKind::AddrInUse).then_some(port);
                    let _ = self.reports.send((call, MediaReport::OpenFailed { busy }));
                }
            },
            MediaCommand::Close => {
                if let Some((worker, id)) = self.calls.remove(&call) {
                    worker.send(Control::Close(id));
                }
            }
            command => {
                if let Some((worker, id)) = self.calls.get(&call) {
                    worker.send(Control::Command(*id, command));
                }
            }
        }
    }

    /// Binds a call's two RTP ports and hands them to a media thread; the port that could not
    /// be bound and why.
    pub fn open(
        &mut self,
        call: u64,
        address: IpAddr,
        ports: [u16; 2],
        inactivity: std::time::Duration,
    ) -> Result<(), (u16, std::io::Error)> {
        let sockets = bind_pair(address, ports)?;
        let (worker, id) = self.workers.assign();
        worker.send(Control::Open(Box::new(NewCall {
            id,
            call,
            sockets,
            reports: self.reports.clone(),
            inactivity,
        })));
        self.calls.insert(call, (worker, id));
        Ok(())
    }
}

fn bind_pair(address: IpAddr, ports: [u16; 2]) -> Result<[UdpSocket; 2], (u16, std::io::Error)> {
    let bind_one = |port| bind(address, port).map_err(|error| (port, error));
    Ok([bind_one(ports[0])?, bind_one(ports[1])?])
}

fn bind(address: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddr::new(address, port))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}
