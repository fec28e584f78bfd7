//! The running switch: binds the transports and runs the core loop around the sans-IO
//! [`Switch`] (crates/b2bua). One task owns it; the transports feed it messages, media
//! threads their reports, ledger tasks their answers, and it hands back bytes to send, media
//! commands and ledger requests, which this loop carries out without waiting on any of them.
//! The clock is read once per wake-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use talktime_b2bua::{Input, Listening, Now, Output, Switch};
use talktime_media::PromptCache;
use talktime_routing::Router;
use talktime_sip::Transport as SipTransport;
use talktime_sip::transaction::{Peer, SystemRandom, TransactionId};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::Config;
use crate::ledger::Ledger;
use crate::ledger_tasks::LedgerTasks;
use crate::media_session::MediaCalls;
use crate::media_workers::MediaWorkers;
use crate::transport::{Inbound, Outbound, Payload, Protocol, TcpLimits, Transport};

/// Inputs for the switch from other tasks (the admin API's prompt uploads, recovery's BYEs,
/// ledger answers).
pub type CoreSender = mpsc::Sender<Input>;

/// The wall clock in epoch milliseconds (CDR times and the ledger's `now_ms`).
pub fn wall_clock_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Both clocks, read once.
fn now() -> Now {
    Now {
        instant: Instant::now(),
        epoch_ms: wall_clock_ms(),
    }
}

/// What the core needs besides its configuration, prepared before the sockets open.
pub struct Services {
    pub ledger: Arc<Ledger>,
    pub prompts: PromptCache,
    pub router: Router,
    /// The database's routing version the router was built from.
    pub routing_version: i64,
    /// BYEs for the legs of calls a previous run left up (sent once the sockets are open).
    pub recovered_byes: Vec<crate::recovery::LegBye>,
    /// The CPU of the ledger's thread (`[database] writer_cpu`), if placed.
    pub writer_cpu: Option<usize>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Services")
            .field("prompts", &self.prompts.len())
            .finish_non_exhaustive()
    }
}

pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let services = crate::startup::prepare(&mut config).await?;
    serve(config, services).await
}

/// The shell's side of a running switch: where its outputs go.
struct Shell {
    transport: Transport,
    media: MediaCalls,
    ledger: LedgerTasks,
    notifications: talktime_b2bua::config::NotificationsConfig,
}

impl Shell {
    /// Carries out everything the switch has asked for; never waits.
    fn carry_out(&mut self, switch: &mut Switch) {
        while let Some(output) = switch.poll_output() {
            match output {
                Output::Transmit {
                    destination,
                    bytes,
                    transaction,
                } => self.transmit(destination, bytes, transaction),
                Output::Media { call, command } => self.media.execute(call, command),
                Output::Ledger { call, request } => self.ledger.spawn(call, request),
                Output::CarrierHealth { carrier, up: false } => {
                    crate::notify::carrier_down(&self.notifications, self.ledger.store(), &carrier)
                }
                Output::CarrierHealth { up: true, .. } => {}
                other => tracing::warn!(?other, "an output this shell does not know"),
            }
        }
    }

    fn transmit(&self, destination: Peer, bytes: Vec<u8>, transaction: Option<TransactionId>) {
        let protocol = match destination.transport {
            SipTransport::Udp => Protocol::Udp,
            SipTransport::Tls => Protocol::Tls,
            _ => Protocol::Tcp,
        };
        self.transport.send(Outbound {
            bytes,
            destination: destination.address,
            protocol,
            transaction,
        });
    }
}

/// How often the core loop copies its numbers out for `/metrics` (at most; when idle, the
/// copy waits for the next wake-up).
const METRICS_EVERY: Duration = Duration::from_millis(200);

/// Runs the switch with prepared services until the process ends.
pub async fn serve(config: Config, mut services: Services) -> anyhow::Result<()> {
    let (inbound_sender, mut inbound) = mpsc::channel::<Inbound>(4096);
    // TCP on a queue of its own: the select below takes from both fairly, so a stream peer
    // flooding the switch delays datagrams by at most one message per turn.
    let (stream_sender, mut stream_inbound) = mpsc::channel::<Inbound>(1024);
    let (failure_sender, mut failures) = mpsc::unbounded_channel::<TransactionId>();
    let limits = TcpLimits {
        max_connections: config.sip.max_tcp_connections,
        max_per_host: config.sip.max_tcp_connections_per_host,
        idle_timeout: Duration::from_secs(config.sip.tcp_idle_timeout_s.max(1)),
    };
    let transport = Transport::bind_with(
        &config.sip.udp,
        &config.sip.tcp,
        inbound_sender,
        stream_sender,
        failure_sender,
        limits,
    )
    .await
    .context("cannot bind SIP listen addresses")?;
    let certificate =
        crate::tls::CertificateFiles::from_config(&config.tls, &config.paths.data_dir)
            .map(crate::tls::ServerCertificate::load)
            .transpose()
            .context("cannot load the [tls] certificate")?;
    if let Some(certificate) = &certificate {
        certificate.watch(Duration::from_secs(config.tls.reload_check_s));
    }
    if !config.sip.tls.is_empty() && certificate.is_none() {
        anyhow::bail!("[sip] tls listens, but [tls] cert_file and key_file are not set");
    }
    let sip_acceptor = certificate
        .as_ref()
        .map(|certificate| certificate.server_config(&[]))
        .transpose()?
        .map(tokio_rustls::TlsAcceptor::from);
    let tls_clients = crate::tls::TlsClients::new(
        &config.tls,
        &config.paths.data_dir,
        &config.carriers,
        &crate::startup::resolve_carriers(&config.carriers),
    )
    .context("cannot set up TLS toward carriers")?;
    transport
        .enable_tls(&config.sip.tls, sip_acceptor, tls_clients)
        .await
        .context("cannot bind SIP TLS listen addresses")?;
    let (core_sender, mut core_messages) = mpsc::channel::<Input>(4096);
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let (media_sender, mut media_reports) = mpsc::unbounded_channel();
    let routing = crate::routing_live::spawn_sync(crate::routing_live::Sync {
        store: services.ledger.store().clone(),
        config: config.clone(),
        transport: transport.clone(),
        core: core_sender.clone(),
        version: services.routing_version,
    });
    if let Some(listen) = config.admin.address()? {
        let token = crate::admin_http::admin_token(&config.admin.token, &config.paths.data_dir)
            .context("cannot read or make the admin API token")?;
        let limits = crate::http_serve::HttpLimits {
            max_connections: config.admin.max_connections,
            max_connections_per_host: config.admin.max_connections_per_host,
            header_timeout: Duration::from_millis(config.admin.header_timeout_ms),
            request_timeout: Duration::from_millis(config.admin.request_timeout_ms),
            connection_lifetime: Duration::from_secs(config.admin.connection_lifetime_s),
        };
        let listener = crate::admin_http::Listener {
            listen,
            limits,
            tls: https_acceptor(&config, certificate.as_ref())?,
        };
        crate::admin_http::start(
            listener,
            token,
            services.ledger.store().clone(),
            config.paths.prompts_dir.clone(),
            core_sender.clone(),
            metrics.clone(),
            routing,
            crate::admin_http::ApiSettings {
                callbacks: config.callback_access().is_some(),
                subscriber_realm: config.subscribers.realm.clone(),
                node_lease_ms: i64::try_from(config.cluster.node_lease_s.saturating_mul(1000))
                    .unwrap_or(i64::MAX),
                portal: config.portal.clone(),
                payments: crate::portal::PaymentProvider::from_config(&config.portal)?,
                claim_code_digits: crate::portal::claim_code_digits(&config.ivr),
            },
        )
        .await
        .with_context(|| format!("cannot listen for the admin API on {listen}"))?;
    }
    crate::radius_service::start(
        &config.radius,
        services.ledger.clone(),
        config.number_rules.clone(),
        metrics.clone(),
    )
    .await?;
    crate::recovery::spawn_cluster_tasks(&config, services.ledger.clone(), core_sender.clone());
    let node_store = services.ledger.store().clone();
    crate::backup::spawn_scheduled(&config, services.ledger.store().clone());
    let mail_roots = Some(&config.tls.ca_file)
        .filter(|file| !file.as_os_str().is_empty())
        .map(|file| config.paths.data_dir.join(file));
    crate::notify::spawn(
        &config.notifications,
        mail_roots.as_deref(),
        services.ledger.store().clone(),
        metrics.clone(),
    )?;
    crate::points::spawn(
        services.ledger.store().clone(),
        config.portal.points_sweep_s,
    );
    crate::plans::spawn_maintenance(
        services.ledger.clone(),
        Duration::from_millis(config.billing.maintenance_check_ms.max(100)),
    );
    let media_workers = MediaWorkers::start(
        config.rtp.media_threads,
        Duration::from_micros(config.rtp.batch_interval_us),
    )
    .context("cannot start the media threads")?;
    metrics.set_media(media_workers.stats());
    let recovered_byes = std::mem::take(&mut services.recovered_byes);
    let switch_services = talktime_b2bua::Services {
        prompts: services.prompts,
        router: services.router,
        carrier_addresses: crate::startup::resolve_carriers(&config.carriers),
        listening: Listening {
            udp: transport.udp_addresses().first().copied(),
            tcp: transport.tcp_address(),
            tls: transport.tls_address(),
        },
        random: Box::new(SystemRandom),
    };
    let notifications = config.notifications.clone();
    let writer_cpu = services.writer_cpu;
    let mut switch =
        Switch::new(config, switch_services, now()).context("cannot start the switch")?;
    let mut shell = Shell {
        notifications,
        transport,
        media: MediaCalls::new(media_workers, media_sender),
        ledger: LedgerTasks::new(services.ledger, core_sender, metrics.clone(), writer_cpu)
            .context("cannot start the ledger's thread")?,
    };
    switch.handle_input(Input::RecoveredByes(recovered_byes), now());
    shell.carry_out(&mut switch);
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    info!("Talktime ready");
    let mut last_published = Instant::now();
    let mut calls_published = false;
    // An idle switch still publishes its last numbers.
    let mut metrics_tick = tokio::time::interval(METRICS_EVERY * 5);
    metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let wake = switch.poll_timeout();
        tokio::select! {
            received = inbound.recv() => {
                let Some(received) = received else { return Ok(()) };
                switch.handle_input(inbound_input(received), now());
            }
            received = stream_inbound.recv() => {
                if let Some(received) = received {
                    switch.handle_input(inbound_input(received), now());
                }
            }
            message = core_messages.recv() => {
                if let Some(input) = message {
                    switch.handle_input(input, now());
                }
            }
            failed = failures.recv() => {
                if let Some(transaction) = failed {
                    switch.handle_input(Input::DeliveryFailed(transaction), now());
                }
            }
            report = media_reports.recv() => {
                if let Some((call, report)) = report {
                    switch.handle_input(Input::Media { call, report }, now());
                }
            }
            _ = sleep_until(wake) => switch.handle_timeout(now()),
            _ = metrics_tick.tick() => {}
            _ = terminate.recv() => switch.handle_input(Input::Stop, now()),
            _ = interrupt.recv() => switch.handle_input(Input::Stop, now()),
        }
        shell.carry_out(&mut switch);
        if last_published.elapsed() >= METRICS_EVERY {
            metrics.publish_switch(&switch.counters(), switch.gauges());
            metrics.publish_carriers(switch.carrier_status());
            // The live calls only while the console looks; when it stops, one empty copy, so
            // that the next first look shows no call that has long ended.
            if metrics.live_calls_wanted() {
                metrics.publish_calls(switch.live_calls());
                calls_published = true;
            } else if calls_published {
                metrics.publish_calls(Vec::new());
                calls_published = false;
            }
            last_published = Instant::now();
        }
        if switch.stopped(Instant::now()) {
            info!("stopped: every call ended, billed and recorded");
            // `talktime nodes list` then says stopped, not dead.
            if let Err(error) = node_store.node_stopped(wall_clock_ms()).await {
                warn!(%error, "cannot record this node's stop");
            }
            return Ok(());
        }
    }
}

/// The admin API's TLS acceptor when `[admin] tls` asks for HTTPS.
fn https_acceptor(
    config: &Config,
    certificate: Option<&Arc<crate::tls::ServerCertificate>>,
) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    if !config.admin.tls {
        return Ok(None);
    }
    let certificate =
        certificate.context("[admin] tls = true, but [tls] cert_file and key_file are not set")?;
    let server = certificate.server_config(&[b"http/1.1"])?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(server)))
}

fn inbound_input(received: Inbound) -> Input {
    let transport = match received.protocol {
        Protocol::Udp => SipTransport::Udp,
        Protocol::Tcp => SipTransport::Tcp,
        Protocol::Tls => SipTransport::Tls,
    };
    let source = Peer {
        transport,
        address: received.source,
    };
    match received.payload {
        Payload::Framed(message) => Input::Message { message, source },
        Payload::Datagram(bytes) => Input::Datagram { bytes, source },
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
