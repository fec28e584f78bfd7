//! TLS for the pipelined PostgreSQL connections, meaning what the same URL means to sqlx.
//!
//! One URL opens two pools (sqlx's and the pipelined one), so an `sslmode` must mean the same
//! to both. sqlx (built with rustls, webpki roots) reads libpq's modes as: `disable` and
//! `allow` no TLS; `prefer` (the default) TLS when the server offers it, certificate
//! unchecked; `require` TLS or no connection, certificate unchecked; `verify-ca` the chain
//! must lead to a trusted root; `verify-full` that and the host's name. Trusted roots are
//! webpki's plus the certificates of `sslrootcert`. The handshake's signatures are checked in
//! every mode: an unchecked certificate still proves the peer holds its key.
//!
//! One exception to libpq, for both pools: `prefer` (or no `sslmode`) to a loopback address
//! or a Unix socket does not encrypt. Nothing on the way can read loopback traffic that could
//! not read the ledger's memory, and on one box TLS made the ledger's mean latencies 5 to 54
//! times longer at 600 calls/s (docs/PERFORMANCE.md); `require` and the `verify-*` modes still encrypt.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// What the server's certificate must prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Nothing beyond holding its key (`prefer`, `require`).
    Nothing,
    /// A chain to a trusted root (`verify-ca`).
    Chain,
    /// A chain to a trusted root and the host's name (`verify-full`).
    ChainAndName,
}

/// Whether a server named `host` is on this machine (a loopback name or address, or a Unix
/// socket's directory).
pub(crate) fn is_local(host: &str) -> bool {
    host == "localhost"
        || host.starts_with('/')
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// An `sslmode` as tokio-postgres' mode and the certificate check (`local`: the server is on
/// this machine, where `prefer` does not encrypt); an unknown mode is an error naming it.
pub(crate) fn mode(sslmode: Option<&str>, local: bool) -> Result<(SslMode, Check), String> {
    match sslmode.unwrap_or("prefer") {
        "disable" | "allow" => Ok((SslMode::Disable, Check::Nothing)),
        "prefer" if local => Ok((SslMode::Disable, Check::Nothing)),
        "prefer" => Ok((SslMode::Prefer, Check::Nothing)),
        "require" => Ok((SslMode::Require, Check::Nothing)),
        "verify-ca" => Ok((SslMode::Require, Check::Chain)),
        "verify-full" => Ok((SslMode::Require, Check::ChainAndName)),
        other => Err(format!("sslmode {other}")),
    }
}

/// The connector of a pool: one rustls configuration for every connection.
#[derive(Clone)]
pub(crate) struct RustlsConnector {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for RustlsConnector {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("RustlsConnector")
    }
}

impl RustlsConnector {
    /// A connector checking `check`, trusting webpki's roots and the PEM certificates of
    /// `root_file` (`sslrootcert`).
    pub(crate) fn new(check: Check, root_file: Option<&str>) -> Result<RustlsConnector, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?;
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match check {
            Check::Nothing => Arc::new(KeyOnly { algorithms }),
            Check::Chain | Check::ChainAndName => {
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots(root_file)?),
                    provider,
                )
                .build()
                .map_err(|error| error.to_string())?;
                Arc::new(Trusted {
                    webpki,
                    check_name: check == Check::ChainAndName,
                })
            }
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(RustlsConnector {
            config: Arc::new(config),
        })
    }
}

/// webpki's roots and those of `file`; a file that cannot be read or holds no certificate is
/// an error (a typo must not silently trust only the public roots).
fn roots(file: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let Some(file) = file else {
        return Ok(roots);
    };
    let pem = std::fs::read(file).map_err(|error| format!("sslrootcert {file}: {error}"))?;
    let mut added = 0;
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate.map_err(|error| format!("sslrootcert {file}: {error}"))?;
        roots
            .add(certificate)
            .map_err(|error| format!("sslrootcert {file}: {error}"))?;
        added += 1;
    }
    if added == 0 {
        return Err(format!("sslrootcert {file}: no certificate in it"));
    }
    Ok(roots)
}

/// `prefer` and `require`: any certificate, but the handshake signed with its key.
#[derive(Debug)]
struct KeyOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for KeyOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca` and `verify-full`: webpki's verdict, less the name check for `verify-ca`.
#[derive(Debug)]
struct Trusted {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Trusted {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, io::Error> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        Ok(RustlsConnect {
            config: self.config.clone(),
            name,
        })
    }
}

/// One connection's handshake.
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let stream = connector.connect(self.name, stream).await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// An encrypted connection to the server.
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    /// None: SCRAM without channel binding, as sqlx does (its `-PLUS` variant is not used).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(context, buffer)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(context, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(context)
    }
}
