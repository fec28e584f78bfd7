//! The running switch: binds the transports, starts the services around the sans-IO
//! [`Switch`] (crates/b2bua) on the shell's runtime, and hands the switch to the core loop's
//! own thread (`core_loop.rs`), which receives the SIP datagrams, takes the other inputs
//! from channels, and carries out the switch's outputs without waiting on any of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use talktime_b2bua::{Input, Listening, Now, Switch};
use talktime_media::PromptCache;
use talktime_routing::Router;
use talktime_sip::transaction::{SystemRandom, TransactionId};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::warn;

use crate::config::Config;
use crate::core_loop::Shell;
use crate::ledger::Ledger;
use crate::ledger_tasks::LedgerTasks;
use crate::media_session::MediaCalls;
use crate::media_workers::MediaWorkers;
use crate::transport::{Inbound, TcpLimits, Transport};

/// Inputs for the switch from other tasks (the admin API's prompt uploads, recovery's BYEs,
/// ledger answers), each to the core thread it belongs to (`talktime_b2bua::shard::route`).
#[derive(Debug, Clone)]
pub struct CoreSender {
    cores: Arc<[mpsc::Sender<Input>]>,
}

/// What became of an input passed to another core.
#[derive(Debug)]
pub enum Handoff {
    Taken,
    /// That core's queue is full: the input is dropped (SIP retransmits a datagram).
    Full,
    /// That core has stopped (it had no call left): the sender handles the input itself
    /// (a new call gets its 503 there).
    Stopped(Input),
}

/// Every core thread has stopped.
#[derive(Debug)]
pub struct SwitchStopped;

impl CoreSender {
    pub fn new(cores: Vec<mpsc::Sender<Input>>) -> CoreSender {
        CoreSender {
            cores: cores.into(),
        }
    }

    /// Sends `input` where it belongs, waiting while a core's queue is full; an input for
    /// every core counts as sent if one took it.
    pub async fn send(&self, input: Input) -> Result<(), SwitchStopped> {
        if let [only] = &self.cores[..] {
            return only.send(input).await.map_err(|_| SwitchStopped);
        }
        let mut delivered = false;
        for (core, input) in talktime_b2bua::shard::route(input, self.cores.len()) {
            if let Some(sender) = self.cores.get(core) {
                delivered |= sender.send(input).await.is_ok();
            }
        }
        delivered.then_some(()).ok_or(SwitchStopped)
    }

    /// From a core thread, which never waits.
    pub fn try_send_to(&self, core: usize, input: Input) -> Handoff {
        let Some(sender) = self.cores.get(core) else {
            return Handoff::Stopped(input);
        };
        match sender.try_send(input) {
            Ok(()) => Handoff::Taken,
            Err(mpsc::error::TrySendError::Full(_)) => Handoff::Full,
            Err(mpsc::error::TrySendError::Closed(input)) => Handoff::Stopped(input),
        }
    }

    pub fn cores(&self) -> usize {
        self.cores.len()
    }
}

/// The wall clock in epoch milliseconds (CDR times and the ledger's `now_ms`).
pub fn wall_clock_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Both clocks, read once.
pub(crate) fn now() -> Now {
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

/// Runs the switch with prepared services until the process ends.
pub async fn serve(config: Config, mut services: Services) -> anyhow::Result<()> {
    // TCP on a queue of its own: the core takes datagrams and stream messages fairly, so a
    // stream peer flooding the switch delays datagrams by at most one message per turn.
    let (stream_sender, stream_inbound) = mpsc::channel::<Inbound>(1024);
    let (failure_sender, failures) = mpsc::unbounded_channel::<TransactionId>();
    let limits = TcpLimits {
        max_connections: config.sip.max_tcp_connections,
        max_per_host: config.sip.max_tcp_connections_per_host,
        idle_timeout: Duration::from_secs(config.sip.tcp_idle_timeout_s.max(1)),
    };
    let transport = Transport::bind_with(
        &config.sip.udp,
        &config.sip.tcp,
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
    let cores = config.sip.core_threads.max(1);
    let (senders, mut core_inputs): (Vec<_>, Vec<_>) =
        (0..cores).map(|_| mpsc::channel::<Input>(4096)).unzip();
    let core_sender = CoreSender::new(senders);
    let metrics = Arc::new(crate::metrics::Metrics::default());
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
    let media_workers = Arc::new(media_workers);
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
    let randomness = (1..cores)
        .map(|_| Box::new(SystemRandom) as Box<dyn talktime_sip::transaction::RandomSource>)
        .collect();
    let mut switches = Switch::sharded(config, switch_services, randomness, now())
        .context("cannot start the switch")?;
    let ledger = LedgerTasks::new(
        services.ledger,
        core_sender.clone(),
        metrics.clone(),
        writer_cpu,
    )
    .context("cannot start the ledger's thread")?;
    let mut shells = Vec::with_capacity(cores);
    let mut media_reports = Vec::with_capacity(cores);
    for _ in 0..cores {
        let (media_sender, reports) = mpsc::unbounded_channel();
        media_reports.push(reports);
        shells.push(Shell {
            notifications: notifications.clone(),
            transport: transport.clone(),
            media: MediaCalls::new(media_workers.clone(), media_sender),
            ledger: ledger.for_another_core(),
            main: tokio::runtime::Handle::current(),
        });
    }
    drop(ledger);
    for (core, input) in talktime_b2bua::shard::route(Input::RecoveredByes(recovered_byes), cores) {
        switches[core].handle_input(input, now());
        shells[core].carry_out(&mut switches[core]);
    }
    forward_stop_signals(core_sender.clone())?;
    let mut stream_inbound = Some(stream_inbound);
    let mut failures = Some(failures);
    let mut running = Vec::with_capacity(cores);
    let parts = switches
        .into_iter()
        .zip(shells)
        .zip(media_reports.into_iter().zip(core_inputs.drain(..)));
    for ((switch, shell), (media_reports, core_messages)) in parts {
        let receivers = transport
            .udp_receivers()
            .context("cannot take the SIP UDP sockets into the core")?;
        let channels = crate::core_loop::Channels {
            stream_inbound: stream_inbound.take(),
            failures: failures.take(),
            core_messages,
            media_reports,
            cores: core_sender.clone(),
        };
        let stopped = crate::core_loop::start(switch, shell, receivers, channels, metrics.clone())
            .context("cannot start the core's thread")?;
        running.push(stopped);
    }
    drop(core_sender);
    // Each core stops when its own calls have ended; one that fails ends the node at once (its
    // calls are billed from their checkpoints at the next start, as after a crash).
    let mut shells = Vec::with_capacity(cores);
    while !running.is_empty() {
        let (ended, _, still_running) = futures_util::future::select_all(running).await;
        running = still_running;
        let shell = ended
            .unwrap_or_else(|_| Err(anyhow::anyhow!("a core's thread ended without a word")))?;
        shells.push(shell);
    }
    // `talktime nodes list` then says stopped, not dead.
    if let Err(error) = node_store.node_stopped(wall_clock_ms()).await {
        warn!(%error, "cannot record this node's stop");
    }
    drop(shells);
    Ok(())
}

/// SIGTERM and SIGINT, each time, as the switch's graceful stop.
fn forward_stop_signals(core: CoreSender) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            if core.send(Input::Stop).await.is_err() {
                return;
            }
        }
    });
    Ok(())
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
