//! Serving the HTTP side (admin API, later the console) with bounds a hostile client cannot
//! stretch: connections capped in total and per address, headers that must arrive within a
//! time, a whole request (body included) that must be read and answered within another, and
//! a connection that lives no longer than a maximum. `axum::serve` has none of these knobs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tracing::{debug, warn};

/// `[admin]`'s bounds on HTTP clients.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub max_connections_per_host: usize,
    /// From the connection's first byte of a request to its last header line.
    pub header_timeout: Duration,
    /// From the headers to the last byte of the answer (a slow body counts).
    pub request_timeout: Duration,
    /// The longest a connection stays open, idle or not.
    pub connection_lifetime: Duration,
}

/// Connections open now, in total and per address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_host: HashMap<IpAddr, usize>,
}

/// Gives a connection's place back when it ends, however it ends.
struct Slot {
    open: Arc<Mutex<Open>>,
    host: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(count) = open.by_host.get_mut(&self.host) {
                *count -= 1;
                if *count == 0 {
                    open.by_host.remove(&self.host);
                }
            }
        }
    }
}

fn take_slot(open: &Arc<Mutex<Open>>, host: IpAddr, limits: &HttpLimits) -> Option<Slot> {
    let mut guard = open.lock().ok()?;
    let from_host = guard.by_host.get(&host).copied().unwrap_or(0);
    if guard.total >= limits.max_connections || from_host >= limits.max_connections_per_host {
        return None;
    }
    guard.total += 1;
    *guard.by_host.entry(host).or_default() += 1;
    Some(Slot {
        open: open.clone(),
        host,
    })
}

/// Serves `app` on `listener` until the process ends; HTTPS when `tls` is given (the
/// handshake must finish within the header timeout).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let request_timeout = limits.request_timeout;
    let app = app.layer(axum::middleware::from_fn(move |request, next| {
        within(request_timeout, request, next)
    }));
    let open = Arc::new(Mutex::new(Open::default()));
    let mut backoff = Duration::from_millis(10);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors and the like: wait instead of spinning on accept.
                warn!(%error, "admin API cannot accept; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(10);
        let Some(slot) = take_slot(&open, peer.ip(), &limits) else {
            debug!(%peer, "admin API connection refused: too many open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        match tls.clone() {
            None => {
                tokio::spawn(connection(stream, peer, app, limits, slot));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(limits.header_timeout, handshake).await {
                        Ok(Ok(stream)) => connection(stream, peer, app, limits, slot).await,
                        Ok(Err(error)) => debug!(%peer, %error, "HTTPS handshake refused"),
                        Err(_) => debug!(%peer, "HTTPS handshake timed out"),
                    }
                });
            }
        }
    }
}

async fn connection<S>(stream: S, peer: SocketAddr, app: Router, limits: HttpLimits, slot: Slot)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let _slot = slot;
    // The client's address for handlers that want it (the console's login limit).
    let app = app.layer(axum::Extension(axum::extract::ConnectInfo(peer)));
    let service = TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let served = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    tokio::select! {
        result = served.as_mut() => {
            if let Err(error) = result {
                debug!(%peer, %error, "admin API connection ended");
            }
        }
        () = tokio::time::sleep(limits.connection_lifetime) => {
            served.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(limits.request_timeout, served).await;
        }
    }
}

/// Answers 408 when the request (its body included) and its answer take longer than allowed.
async fn within(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            axum::Json(json!({ "error": "the request took too long to arrive or to answer" })),
        )
            .into_response(),
    }
}
