//! SIP transports: UDP sockets, TCP and TLS listeners/connections (RFC 3261 §18, §26).
#![allow(dead_code)] // fields and helpers the call engine wiring uses next
//!
//! The transport only moves bytes. Inbound datagrams and framed TCP messages go to the SIP
//! core over one channel, tagged with where they came from; the core hands back `Outbound`
//! bytes with a destination. TCP connections are kept in a table keyed by the peer address so
//! responses and later requests reuse them (RFC 3261 §18.2.2, RFC 5923's spirit).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use talktime_sip::transaction::TransactionId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::tls::TlsClients;
use tokio::sync::{Notify, mpsc};
use tracing::{debug, info, warn};

/// The largest SIP message accepted on any transport.
pub const MAX_MESSAGE_BYTES: usize = 65_535;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp,
    Tls,
}

impl Protocol {
    pub fn via_name(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
        }
    }
}

/// A TLS handshake (either side) must finish within this.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The TLS side of the transport, set once at start and shared by every clone.
#[derive(Debug)]
struct TlsSide {
    /// Replaced when carriers change (a TLS carrier added or edited live).
    clients: std::sync::RwLock<TlsClients>,
    local: Option<SocketAddr>,
}

/// One inbound message and where it came from.
#[derive(Debug)]
pub struct Inbound {
    /// Framed and parsed by the stream's reader (datagrams go to the core loop directly).
    pub message: Box<talktime_sip::Message>,
    pub source: SocketAddr,
    pub local: SocketAddr,
    pub protocol: Protocol,
}

/// Bytes to send.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub bytes: Vec<u8>,
    pub destination: SocketAddr,
    pub protocol: Protocol,
    /// The client transaction this message belongs to, reported back if it cannot be
    /// delivered (a refused or timed-out TCP connect).
    pub transaction: Option<TransactionId>,
}

/// How long a TCP connect may take before the message counts as undeliverable.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long one message may take to go into a TCP connection's socket; a peer that reads
/// slower than this is closed (RFC 3261 §18.4 transport error), never waited for.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Messages queued for one TCP connection; a full queue closes the connection.
const CONNECTION_QUEUE: usize = 256;

/// One TCP connection: its send queue and the signal that closes both of its tasks.
#[derive(Debug, Clone)]
struct Connection {
    sender: mpsc::Sender<Vec<u8>>,
    closed: Arc<Notify>,
}

type ConnectionTable = Arc<Mutex<HashMap<SocketAddr, Connection>>>;

/// Bounds on TCP connections (issue 20): a peer cannot hold the switch's descriptors.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Connections at once, all peers.
    pub max_connections: usize,
    /// Connections at once from one host.
    pub max_per_host: usize,
    /// A connection that carries nothing this long is closed.
    pub idle_timeout: std::time::Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 4096,
            max_per_host: 64,
            idle_timeout: std::time::Duration::from_secs(600),
        }
    }
}

/// After a failed accept (descriptors run out), wait this long before the next: a listener
/// that keeps failing must not spin a core.
const ACCEPT_BACK_OFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Handle to the running transports; cheap to clone.
#[derive(Debug, Clone)]
pub struct Transport {
    /// Non-blocking sockets, only sent on (a full buffer drops the datagram; SIP
    /// retransmits); the core loop receives on duplicates of them.
    udp: Vec<Arc<std::net::UdpSocket>>,
    /// Each UDP socket's bound address, read once (not a system call per datagram).
    udp_local: Vec<SocketAddr>,
    connections: ConnectionTable,
    /// Messages framed from TCP streams, on a queue of their own: a stream peer that floods
    /// the switch cannot put its backlog in front of everyone's datagrams.
    stream_inbound: mpsc::Sender<Inbound>,
    /// Client transactions whose message could not be delivered.
    failures: mpsc::UnboundedSender<TransactionId>,
    tcp_local: Option<SocketAddr>,
    limits: TcpLimits,
    tls: Arc<std::sync::OnceLock<TlsSide>>,
}

impl Transport {
    /// Binds every configured address and starts the stream listeners. Datagrams are not
    /// received here: the core loop takes them from [`Transport::udp_receivers`] on its own
    /// thread (one wake-up from the socket to the switch, no hand-off between threads).
    /// Messages framed from TCP and TLS streams go to `stream_inbound`, within `limits`.
    pub async fn bind_with(
        udp_addresses: &[SocketAddr],
        tcp_addresses: &[SocketAddr],
        stream_inbound: mpsc::Sender<Inbound>,
        failures: mpsc::UnboundedSender<TransactionId>,
        limits: TcpLimits,
    ) -> std::io::Result<Self> {
        let mut udp = Vec::new();
        for address in udp_addresses {
            let socket = Arc::new(bind_udp(*address)?);
            info!(local = %socket.local_addr()?, "SIP listening on UDP");
            udp.push(socket);
        }
        let udp_local = udp
            .iter()
            .map(|socket| socket.local_addr())
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut transport = Transport {
            udp,
            udp_local,
            connections: Arc::default(),
            stream_inbound,
            failures,
            tcp_local: None,
            limits,
            tls: Arc::default(),
        };
        for address in tcp_addresses {
            let listener = TcpListener::bind(address).await?;
            let local = listener.local_addr()?;
            info!(%local, "SIP listening on TCP");
            transport.tcp_local.get_or_insert(local);
            tokio::spawn(accept_connections(listener, transport.clone()));
        }
        Ok(transport)
    }

    /// A second handle on each UDP socket (the same socket, duplicated), for the core loop
    /// to receive on: it registers them with its own runtime, so a datagram wakes the core
    /// and no other thread. Sending stays on the transport's handles, which no runtime
    /// watches.
    pub fn udp_receivers(&self) -> std::io::Result<Vec<UdpReceiver>> {
        self.udp
            .iter()
            .zip(&self.udp_local)
            .map(|(socket, local)| {
                Ok(UdpReceiver {
                    socket: socket.try_clone()?,
                    local: *local,
                })
            })
            .collect()
    }

    /// How TLS carriers are reached from now on (their set changed); no-op before TLS is on.
    pub fn set_tls_clients(&self, clients: TlsClients) {
        if let Some(side) = self.tls.get() {
            match side.clients.write() {
                Ok(mut held) => *held = clients,
                Err(poisoned) => *poisoned.into_inner() = clients,
            }
        }
    }

    /// Turns on TLS: listeners on `addresses` (presenting the acceptor's certificate, when
    /// given) and connections toward TLS carriers as `clients` says. Once, before traffic.
    pub async fn enable_tls(
        &self,
        addresses: &[SocketAddr],
        acceptor: Option<TlsAcceptor>,
        clients: TlsClients,
    ) -> std::io::Result<()> {
        let mut local = None;
        let mut listeners = Vec::new();
        if let Some(acceptor) = acceptor {
            for address in addresses {
                let listener = TcpListener::bind(address).await?;
                let bound = listener.local_addr()?;
                info!(local = %bound, "SIP listening on TLS");
                local.get_or_insert(bound);
                listeners.push((listener, acceptor.clone()));
            }
        }
        let side = TlsSide {
            clients: std::sync::RwLock::new(clients),
            local,
        };
        if self.tls.set(side).is_err() {
            return Err(std::io::Error::other("TLS is already on"));
        }
        for (listener, acceptor) in listeners {
            tokio::spawn(accept_tls(listener, acceptor, self.clone()));
        }
        Ok(())
    }

    pub fn tls_address(&self) -> Option<SocketAddr> {
        self.tls.get().and_then(|side| side.local)
    }

    /// The bound UDP addresses (useful when a port was 0).
    pub fn udp_addresses(&self) -> &[SocketAddr] {
        &self.udp_local
    }

    pub fn tcp_address(&self) -> Option<SocketAddr> {
        self.tcp_local
    }

    /// Sends bytes without ever waiting: the core loop calls this. A UDP datagram the socket
    /// cannot take now is dropped (SIP retransmits); over TCP an existing connection to the
    /// destination is reused, otherwise one is opened in its own task.
    pub fn send(&self, outbound: Outbound) {
        match outbound.protocol {
            Protocol::Udp => self.send_datagram(outbound),
            Protocol::Tcp | Protocol::Tls => self.send_stream(outbound),
        }
    }

    fn send_datagram(&self, outbound: Outbound) {
        let socket = self
            .udp
            .iter()
            .zip(&self.udp_local)
            .find(|(_, local)| local.is_ipv4() == outbound.destination.is_ipv4())
            .map(|(socket, _)| socket)
            .or_else(|| self.udp.first());
        let Some(socket) = socket else {
            warn!(destination = %outbound.destination, "no UDP socket to send from");
            return;
        };
        if let Err(error) = socket.send_to(&outbound.bytes, outbound.destination) {
            warn!(destination = %outbound.destination, %error, "UDP send failed");
        }
    }

    /// Into an existing connection's queue at once; a peer whose queue is full (it does not
    /// read) is disconnected and the message's transaction fails. A new connection is made in
    /// its own task so a slow or silent peer never holds up the core.
    fn send_stream(&self, outbound: Outbound) {
        let destination = outbound.destination;
        if let Some(connection) = self.connection(destination) {
            match connection.sender.try_send(outbound.bytes) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(%destination, "closing TCP connection: the peer does not read");
                    self.close(destination);
                    self.report_failure(outbound.transaction);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    debug!(%destination, "TCP connection closed before send");
                    self.report_failure(outbound.transaction);
                }
            }
            return;
        }
        let transport = self.clone();
        tokio::spawn(async move {
            let connected =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(destination)).await;
            let stream = match connected {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    warn!(%destination, %error, "TCP connect failed");
                    transport.report_failure(outbound.transaction);
                    return;
                }
                Err(_) => {
                    warn!(%destination, "TCP connect timed out");
                    transport.report_failure(outbound.transaction);
                    return;
                }
            };
            let local = stream.local_addr().unwrap_or(destination);
            let connection = if outbound.protocol == Protocol::Tls {
                match transport.tls_handshake(stream, destination).await {
                    Some(stream) => transport.adopt(stream, destination, local, Protocol::Tls),
                    None => {
                        transport.report_failure(outbound.transaction);
                        return;
                    }
                }
            } else {
                transport.adopt(stream, destination, local, Protocol::Tcp)
            };
            if connection.sender.try_send(outbound.bytes).is_err() {
                transport.report_failure(outbound.transaction);
            }
        });
    }

    /// The client side of a TLS connection to `destination`, its certificate verified;
    /// `None` (logged) when it fails.
    async fn tls_handshake(
        &self,
        stream: TcpStream,
        destination: SocketAddr,
    ) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
        let Some(side) = self.tls.get() else {
            warn!(%destination, "a TLS destination, but TLS is not configured");
            return None;
        };
        let peer = match side.clients.read() {
            Ok(clients) => clients.peer(destination),
            Err(poisoned) => poisoned.into_inner().peer(destination),
        };
        let connector = TlsConnector::from(peer.config);
        let handshake = connector.connect(peer.server_name, stream);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(error)) => {
                warn!(%destination, %error, "TLS handshake failed; nothing was sent");
                None
            }
            Err(_) => {
                warn!(%destination, "TLS handshake timed out");
                None
            }
        }
    }

    fn report_failure(&self, transaction: Option<TransactionId>) {
        if let Some(transaction) = transaction {
            let _ = self.failures.send(transaction);
        }
    }

    fn connection(&self, peer: SocketAddr) -> Option<Connection> {
        let table = self.connections.lock().ok()?;
        table.get(&peer).filter(|c| !c.sender.is_closed()).cloned()
    }

    /// Drops a connection: both of its tasks end and the socket closes.
    fn close(&self, peer: SocketAddr) {
        let removed = self
            .connections
            .lock()
            .ok()
            .and_then(|mut table| table.remove(&peer));
        if let Some(connection) = removed {
            connection.closed.notify_waiters();
            connection.closed.notify_one();
        }
    }

    /// Whether one more connection from `peer`'s host stays within the limits.
    fn has_room_for(&self, peer: SocketAddr) -> bool {
        let Ok(table) = self.connections.lock() else {
            return false;
        };
        if table.len() >= self.limits.max_connections {
            return false;
        }
        let from_host = table.keys().filter(|known| known.ip() == peer.ip()).count();
        from_host < self.limits.max_per_host
    }

    /// Registers a connection and starts its reader and writer tasks.
    fn adopt<S>(
        &self,
        stream: S,
        peer: SocketAddr,
        local: SocketAddr,
        protocol: Protocol,
    ) -> Connection
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        let (sender, receiver) = mpsc::channel(CONNECTION_QUEUE);
        let connection = Connection {
            sender,
            closed: Arc::new(Notify::new()),
        };
        if let Ok(mut table) = self.connections.lock() {
            table.insert(peer, connection.clone());
        }
        tokio::spawn(write_stream(writer, receiver, peer, self.clone()));
        tokio::spawn(read_stream(
            reader,
            (peer, local, protocol),
            self.stream_inbound.clone(),
            connection.closed.clone(),
            self.connections.clone(),
            self.limits.idle_timeout,
        ));
        connection
    }
}

/// Socket buffers for the SIP UDP sockets: the kernel default (~208 KiB) overflows in bursts
/// from about 15,000 requests a second (measured with SIPp); the kernel caps this at
/// `net.core.rmem_max` / `wmem_max`.
const SIP_SOCKET_BUFFER: usize = 4 * 1024 * 1024;

fn bind_udp(address: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol as SocketProtocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(SocketProtocol::UDP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(SIP_SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SIP_SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    Ok(socket.into())
}

/// A duplicate of one SIP UDP socket for the core loop to receive on, and its address.
#[derive(Debug)]
pub struct UdpReceiver {
    pub socket: std::net::UdpSocket,
    pub local: SocketAddr,
}

async fn accept_connections(listener: TcpListener, transport: Transport) {
    let mut refused: u64 = 0;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) if transport.has_room_for(peer) => {
                debug!(%peer, "TCP connection accepted");
                let local = stream.local_addr().unwrap_or(peer);
                transport.adopt(stream, peer, local, Protocol::Tcp);
            }
            Ok((stream, peer)) => {
                // Closed at once: over the host's or the switch's connection limit.
                drop(stream);
                refused += 1;
                if refused.is_power_of_two() {
                    warn!(%peer, refused, "TCP connections refused at the connection limits");
                }
            }
            Err(error) => {
                warn!(%error, "TCP accept failed; backing off");
                tokio::time::sleep(ACCEPT_BACK_OFF).await;
            }
        }
    }
}

/// Accepts TLS connections: each handshake runs in its own task, bounded in time, so a peer
/// that connects and says nothing holds no one up.
async fn accept_tls(listener: TcpListener, acceptor: TlsAcceptor, transport: Transport) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) if transport.has_room_for(peer) => {
                let acceptor = acceptor.clone();
                let transport = transport.clone();
                tokio::spawn(async move {
                    let local = stream.local_addr().unwrap_or(peer);
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => {
                            debug!(%peer, "TLS connection accepted");
                            transport.adopt(stream, peer, local, Protocol::Tls);
                        }
                        Ok(Err(error)) => debug!(%peer, %error, "TLS handshake refused"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
            Ok((stream, peer)) => {
                drop(stream);
                debug!(%peer, "TLS connection refused at the connection limits");
            }
            Err(error) => {
                warn!(%error, "TLS accept failed; backing off");
                tokio::time::sleep(ACCEPT_BACK_OFF).await;
            }
        }
    }
}

async fn write_stream<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut receiver: mpsc::Receiver<Vec<u8>>,
    peer: SocketAddr,
    transport: Transport,
) {
    while let Some(bytes) = receiver.recv().await {
        let written = async {
            writer.write_all(&bytes).await?;
            // TLS holds records until flushed; a TCP flush does nothing.
            writer.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, written).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                debug!(%peer, %error, "TCP write failed");
                break;
            }
            Err(_) => {
                warn!(%peer, "closing TCP connection: a write took longer than {WRITE_TIMEOUT:?}");
                break;
            }
        }
    }
    transport.close(peer);
}

async fn read_stream<R: AsyncRead + Unpin>(
    mut reader: R,
    (peer, local, protocol): (SocketAddr, SocketAddr, Protocol),
    inbound: mpsc::Sender<Inbound>,
    closed: Arc<Notify>,
    connections: ConnectionTable,
    idle_timeout: std::time::Duration,
) {
    let mut framer = talktime_sip::StreamFramer::with_max_size(MAX_MESSAGE_BYTES);
    let mut buffer = vec![0u8; 16 * 1024];
    'connection: loop {
        let read = tokio::select! {
            read = tokio::time::timeout(idle_timeout, reader.read(&mut buffer)) => read,
            () = closed.notified() => break,
        };
        let length = match read {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(length)) => length,
            Err(_) => {
                debug!(%peer, "closing an idle TCP connection");
                break;
            }
        };
        framer.push(&buffer[..length]);
        loop {
            match framer.next_message() {
                Ok(Some(parsed)) => {
                    let message = Inbound {
                        message: Box::new(parsed),
                        source: peer,
                        local,
                        protocol,
                    };
                    if inbound.send(message).await.is_err() {
                        break 'connection;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    // A stream that lost framing cannot be resynchronised (RFC 3261 §18.3).
                    warn!(%peer, %error, "closing TCP connection: bad framing");
                    break 'connection;
                }
            }
        }
    }
    if let Ok(mut table) = connections.lock() {
        // Only this connection's entry: a newer one to the same peer stays.
        if table
            .get(&peer)
            .is_some_and(|entry| Arc::ptr_eq(&entry.closed, &closed))
        {
            table.remove(&peer);
        }
    }
    debug!(%peer, "TCP connection closed");
}
