//! TLS for SIP (RFC 3261 §26, RFC 5630) and HTTPS, on rustls with the ring provider: the
//! server certificate from `[tls]` (read again on SIGHUP or when its files change, with no
//! restart: new handshakes get the new one), and the client side toward TLS carriers, which
//! checks the carrier's certificate against `[tls] ca_file` (or Mozilla's roots) and its name,
//! or only against a pinned SHA-256.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};
use talktime_b2bua::config::TlsConfig;
use tracing::{info, warn};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The configured certificate files, resolved against the data directory.
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertificateFiles {
    /// `[tls]`'s files, or `None` when no certificate is configured.
    pub fn from_config(tls: &TlsConfig, data_dir: &Path) -> Option<CertificateFiles> {
        if tls.cert_file.as_os_str().is_empty() || tls.key_file.as_os_str().is_empty() {
            return None;
        }
        Some(CertificateFiles {
            cert: data_dir.join(&tls.cert_file),
            key: data_dir.join(&tls.key_file),
        })
    }

    fn load(&self) -> anyhow::Result<Arc<CertifiedKey>> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .with_context(|| format!("cannot read {}", self.cert.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("{} is not a PEM certificate chain", self.cert.display()))?;
        if chain.is_empty() {
            bail!("{} holds no certificate", self.cert.display());
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .with_context(|| format!("{} is not a PEM private key", self.key.display()))?;
        let certified = CertifiedKey::from_der(chain, key, &provider()).with_context(|| {
            format!(
                "{} does not fit {}",
                self.key.display(),
                self.cert.display()
            )
        })?;
        Ok(Arc::new(certified))
    }

    fn modified(&self) -> Option<(SystemTime, SystemTime)> {
        let time = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        Some((time(&self.cert)?, time(&self.key)?))
    }
}

/// The server certificate in use; swapped whole by [`ServerCertificate::reload`].
#[derive(Debug)]
pub struct ServerCertificate {
    files: CertificateFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServerCertificate {
    /// Loads the files; an error names the file at fault.
    pub fn load(files: CertificateFiles) -> anyhow::Result<Arc<ServerCertificate>> {
        let current = RwLock::new(files.load()?);
        Ok(Arc::new(ServerCertificate { files, current }))
    }

    /// Reads the files again; on an error the certificate in use stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = self.files.load()?;
        if let Ok(mut current) = self.current.write() {
            *current = fresh;
        }
        Ok(())
    }

    /// A rustls server configuration presenting this certificate (with `alpn`, if any).
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> anyhow::Result<Arc<ServerConfig>> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|name| name.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// Reloads on SIGHUP and whenever the files' modification times change.
    pub fn watch(self: &Arc<Self>, check_every: Duration) {
        let certificate = self.clone();
        tokio::spawn(async move {
            let Ok(mut hangups) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                warn!("cannot watch SIGHUP: the certificate reloads only when its files change");
                return;
            };
            let mut seen = certificate.files.modified();
            let period = if check_every.is_zero() {
                Duration::from_secs(3600 * 24 * 365)
            } else {
                check_every
            };
            let mut ticks = tokio::time::interval(period);
            ticks.tick().await;
            loop {
                let asked = tokio::select! {
                    _ = hangups.recv() => true,
                    _ = ticks.tick() => false,
                };
                let now = certificate.files.modified();
                if !asked && now == seen {
                    continue;
                }
                seen = now;
                match certificate.reload() {
                    Ok(()) => {
                        info!(file = %certificate.files.cert.display(), "TLS certificate reloaded")
                    }
                    Err(error) => warn!(error = %format!("{error:#}"),
                        "TLS certificate not reloaded; the one in use stays"),
                }
            }
        });
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|current| current.clone())
    }
}

/// How to open TLS toward one carrier.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    pub server_name: ServerName<'static>,
    pub config: Arc<ClientConfig>,
}

/// The client side: each TLS carrier's name and verification, by address.
#[derive(Debug, Clone)]
pub struct TlsClients {
    peers: HashMap<SocketAddr, TlsPeer>,
    /// For a TLS destination that is no configured carrier: the roots, its IP as the name.
    default_config: Arc<ClientConfig>,
}

impl TlsClients {
    /// The client configuration of every TLS carrier whose address resolved.
    pub fn new(
        tls: &TlsConfig,
        data_dir: &Path,
        carriers: &[talktime_routing::CarrierConfig],
        addresses: &HashMap<String, SocketAddr>,
    ) -> anyhow::Result<TlsClients> {
        let roots = Arc::new(roots(tls, data_dir)?);
        let default_config = verified_config(roots.clone())?;
        let mut peers = HashMap::new();
        for carrier in carriers {
            if carrier.transport != talktime_routing::Transport::Tls {
                continue;
            }
            let Some(address) = addresses.get(&carrier.name) else {
                continue;
            };
            let name = carrier.tls_server_name.as_deref().unwrap_or(&carrier.host);
            let server_name = ServerName::try_from(name.to_owned())
                .with_context(|| format!("carrier {}: {name:?} is not a TLS name", carrier.name))?;
            let config = match &carrier.tls_pin_sha256 {
                Some(pin) => pinned_config(pin)
                    .with_context(|| format!("carrier {}: tls_pin_sha256", carrier.name))?,
                None => default_config.clone(),
            };
            peers.insert(
                *address,
                TlsPeer {
                    server_name,
                    config,
                },
            );
        }
        Ok(TlsClients {
            peers,
            default_config,
        })
    }

    /// How to reach `destination` over TLS.
    pub fn peer(&self, destination: SocketAddr) -> TlsPeer {
        self.peers
            .get(&destination)
            .cloned()
            .unwrap_or_else(|| TlsPeer {
                server_name: ServerName::IpAddress(destination.ip().into()),
                config: self.default_config.clone(),
            })
    }
}

fn roots(tls: &TlsConfig, data_dir: &Path) -> anyhow::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    if tls.ca_file.as_os_str().is_empty() {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    }
    let file = data_dir.join(&tls.ca_file);
    let certificates = CertificateDer::pem_file_iter(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    for certificate in certificates {
        let certificate = certificate.with_context(|| format!("{} is not PEM", file.display()))?;
        store
            .add(certificate)
            .with_context(|| format!("{} holds a bad root", file.display()))?;
    }
    if store.is_empty() {
        bail!("{} holds no certificate", file.display());
    }
    Ok(store)
}

fn verified_config(roots: Arc<RootCertStore>) -> anyhow::Result<Arc<ClientConfig>> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn pinned_config(pin_hex: &str) -> anyhow::Result<Arc<ClientConfig>> {
    let pin = hex::decode(pin_hex.trim().replace(':', ""))
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .context("a SHA-256 pin is 64 hex digits")?;
    let verifier = PinnedCertificate {
        pin,
        algorithms: provider().signature_verification_algorithms,
    };
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts exactly the certificate whose SHA-256 is pinned (and its handshake signatures).
#[derive(Debug)]
struct PinnedCertificate {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if digest == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the carrier's certificate is not the pinned one".into(),
            ))
        }
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
