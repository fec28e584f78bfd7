//! The `talktime` binary: the tokio shell around the sans-IO crates, and the operator CLI.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use talktime::config::Config;
use talktime::{admin, server};

/// Talktime: a prepaid calling-card softswitch.
#[derive(Debug, Parser)]
#[command(name = "talktime", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the switch: SIP on UDP and TCP, media, IVR, billing.
    Serve(ServeArgs),
    /// Print the effective configuration (defaults merged with --config and flags).
    Config(ServeArgs),
    /// Calling-card batches.
    #[command(subcommand)]
    Cards(admin::CardsCommand),
    /// Tariffs (rate decks).
    #[command(subcommand)]
    Tariffs(admin::TariffsCommand),
    /// Rate a call: each fee, billed seconds, taxes, total and the maximum talk time, as JSON.
    Rate(admin::RateArgs),
    /// Carrier routing.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Accounts: balance, recharge, caller IDs (pinless), DID forwarding.
    #[command(subcommand)]
    Accounts(admin::AccountsCommand),
    /// Resellers: the vendor -> reseller -> customer tree, each level paying for its
    /// customers' calls at its own price.
    #[command(subcommand)]
    Resellers(talktime::resellers::ResellersCommand),
    /// SIP subscribers: phones that register with a password and call without the IVR.
    #[command(subcommand)]
    Subscribers(talktime::subscribers::SubscribersCommand),
    /// Vouchers: single-use recharge codes callers key in the IVR (`*0`, or a recharge line).
    #[command(subcommand)]
    Vouchers(talktime::vouchers::VouchersCommand),
    /// Promotion coupons customers give with a voucher in the portal: add, list.
    #[command(subcommand)]
    Coupons(talktime::coupons::CouponsCommand),
    /// Bonus points: rule, value, award, show.
    #[command(subcommand)]
    Points(talktime::points::PointsCommand),
    /// What a referral pays the referrer and the newcomer: set, list.
    #[command(subcommand)]
    Referrals(talktime::rewards::ReferralsCommand),
    /// The customer portal's message board: post, list, remove.
    #[command(subcommand)]
    Messages(talktime::board::MessagesCommand),
    /// Console users: add, passwd, list, disable, enable.
    #[command(subcommand)]
    Users(admin::UsersCommand),
    /// The switches sharing this ledger: list them, drain one.
    #[command(subcommand)]
    Nodes(talktime::nodes::NodesCommand),
    /// Copy the embedded ledger to FILE while the switch runs (a consistent snapshot, 0600).
    Backup(talktime::backup::BackupArgs),
    /// Put a backup in place of an empty ledger, after checking every balance in it.
    Restore(talktime::backup::BackupArgs),
}

#[derive(Debug, Subcommand)]
enum RoutesCommand {
    /// Print the carriers a number goes to, in order, with their buy rates and why; and each
    /// skipped carrier with the reason. Health and call counts are a fresh start's: every
    /// enabled carrier up and idle. Fails on blocked numbers, no route or no carrier.
    Explain(ExplainArgs),
    /// Print the carriers (without passwords) and dial plans the switch routes with: the
    /// database's copy, as JSON.
    Show(ConfigArgs),
    /// Replace the database's carriers and dial plans with the configuration file's (they
    /// seed the database at the first start only); running switches apply them within
    /// [cluster] routing_check_ms, calls up keep their carrier.
    Reseed(ConfigArgs),
}

#[derive(Debug, Args)]
struct ExplainArgs {
    #[command(flatten)]
    files: ConfigArgs,
    /// The number as a caller dials it (normalized with [number_rules] first).
    number: String,
    /// Use the dial plan of this access number.
    #[arg(long = "access-number", conflicts_with = "plan")]
    access_number: Option<String>,
    /// Use this dial plan [default: default].
    #[arg(long)]
    plan: Option<String>,
    /// Tariff whose sell rate judges loss-making carriers (billing.refuse_loss_making_routes).
    #[arg(long)]
    tariff: Option<String>,
    /// Local start of the call for time-of-day buy rates, e.g. 2026-11-23T18:30:00 [default: now].
    #[arg(long)]
    at: Option<String>,
}

impl ExplainArgs {
    fn question(&self) -> admin::RouteQuestion {
        let plan = match (&self.access_number, &self.plan) {
            (Some(number), _) => admin::PlanChoice::AccessNumber(number.clone()),
            (None, Some(plan)) => admin::PlanChoice::Plan(plan.clone()),
            (None, None) => admin::PlanChoice::Plan("default".into()),
        };
        admin::RouteQuestion {
            number: self.number.clone(),
            plan,
            tariff: self.tariff.clone(),
            at: self.at.clone(),
        }
    }
}

/// Where the configuration and the ledger are: shared by `serve`, `config` and `routes`.
#[derive(Debug, Args)]
struct ConfigArgs {
    /// Configuration file merged over the embedded defaults (config/talktime.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Database URL (sqlite://FILE or postgres://...).
    #[arg(long = "database-url")]
    database_url: Option<String>,
    /// Data directory for the SQLite database and generated files.
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
}

impl ConfigArgs {
    /// The embedded defaults, the file over them, then the flags; not yet validated.
    fn load(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => talktime::config::load(path)?,
            None => Config::embedded()?,
        };
        if let Some(url) = &self.database_url {
            config.database.url = url.clone();
        }
        if let Some(dir) = &self.data_dir {
            config.paths.data_dir = dir.clone();
        }
        Ok(config)
    }
}

/// Flags shared by `serve` and `config`; each overrides the file.
#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    files: ConfigArgs,
    /// SIP UDP listen address (repeatable); replaces the configured list.
    #[arg(long = "sip-udp", value_name = "ADDR:PORT")]
    sip_udp: Vec<SocketAddr>,
    /// SIP TCP listen address (repeatable); replaces the configured list.
    #[arg(long = "sip-tcp", value_name = "ADDR:PORT")]
    sip_tcp: Vec<SocketAddr>,
    /// Disable UDP (for a TCP-only instance).
    #[arg(long)]
    no_udp: bool,
    /// Disable TCP (for a UDP-only instance).
    #[arg(long)]
    no_tcp: bool,
    /// RTP port range, e.g. 20000-20999.
    #[arg(long = "rtp-ports", value_name = "MIN-MAX")]
    rtp_ports: Option<String>,
    /// Core threads the calls are spread over (`[sip] core_threads`).
    #[arg(long = "core-threads", value_name = "N")]
    core_threads: Option<usize>,
    /// Prompt directory (one subdirectory per language).
    #[arg(long = "prompts-dir")]
    prompts_dir: Option<PathBuf>,
    /// The test number answered with a tone (empty disables).
    #[arg(long = "test-number")]
    test_number: Option<String>,
    /// HTTP admin API listen address (empty disables).
    #[arg(long = "admin-listen", value_name = "ADDR:PORT")]
    admin_listen: Option<String>,
}

impl ServeArgs {
    fn resolve(&self) -> anyhow::Result<Config> {
        let mut config = self.files.load()?;
        if !self.sip_udp.is_empty() {
            config.sip.udp = self.sip_udp.clone();
        }
        if !self.sip_tcp.is_empty() {
            config.sip.tcp = self.sip_tcp.clone();
        }
        if self.no_udp {
            config.sip.udp.clear();
        }
        if self.no_tcp {
            config.sip.tcp.clear();
        }
        if let Some(range) = &self.rtp_ports {
            let (min, max) = range
                .split_once('-')
                .context("--rtp-ports takes MIN-MAX, e.g. 20000-20999")?;
            config.rtp.port_min = min.trim().parse().context("--rtp-ports: bad minimum")?;
            config.rtp.port_max = max.trim().parse().context("--rtp-ports: bad maximum")?;
        }
        if let Some(cores) = self.core_threads {
            config.sip.core_threads = cores;
        }
        if let Some(dir) = &self.prompts_dir {
            config.paths.prompts_dir = dir.clone();
        }
        if let Some(number) = &self.test_number {
            config.sip.test_number = number.clone();
        }
        if let Some(listen) = &self.admin_listen {
            config.admin.listen = listen.clone();
        }
        config.validate()?;
        Ok(config)
    }
}

/// Exit status of a command whose reader went away, as a Unix tool killed by SIGPIPE has.
const CLOSED_PIPE_STATUS: u8 = 141;

/// `talktime cdrs export | head` closes our stdout early: `println!` then panics. End quietly
/// with the status a Unix tool has there instead of printing a panic; other panics as ever.
fn quiet_on_closed_pipe() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if payload.starts_with("failed printing to stdout") && payload.contains("Broken pipe") {
            std::process::exit(i32::from(CLOSED_PIPE_STATUS));
        }
        default_hook(info);
    }));
}

/// Whether a command failed only because whoever read its output stopped reading.
fn reader_went_away(error: &anyhow::Error) -> bool {
    let broken = |io: &std::io::Error| io.kind() == std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        let csv_io = cause
            .downcast_ref::<csv::Error>()
            .and_then(|csv| match csv.kind() {
                csv::ErrorKind::Io(io) => Some(io),
                _ => None,
            });
        cause.downcast_ref::<std::io::Error>().is_some_and(broken) || csv_io.is_some_and(broken)
    })
}

fn main() -> std::process::ExitCode {
    quiet_on_closed_pipe();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) if reader_went_away(&error) => std::process::ExitCode::from(CLOSED_PIPE_STATUS),
        Err(error) => {
            // The refusal and its causes on one line, never a backtrace: an operator who
            // mistyped a prefix or a file should read the reason, not 40 stack frames.
            eprintln!("Error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            init_logging(&config.log.filter, config.log.format);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the tokio runtime")?;
            runtime.block_on(server::run(config))
        }
        Command::Config(args) => {
            let config = args.resolve()?;
            // Secrets never print (issue 18).
            println!("{:#?}", config.redacted());
            Ok(())
        }
        Command::Cards(admin::CardsCommand::Generate(args)) => {
            run_once(admin::generate_cards(args))
        }
        Command::Tariffs(admin::TariffsCommand::Import(args)) => {
            run_once(admin::import_tariff(args))
        }
        Command::Tariffs(admin::TariffsCommand::Settings(args)) => {
            run_once(admin::tariff_settings(args))
        }
        Command::Tariffs(admin::TariffsCommand::List(args)) => run_once(admin::list_tariffs(args)),
        Command::Tariffs(admin::TariffsCommand::Show(args)) => run_once(admin::show_tariff(args)),
        Command::Tariffs(admin::TariffsCommand::Export(args)) => {
            run_once(admin::export_tariff(args))
        }
        Command::Tariffs(admin::TariffsCommand::Derive(args)) => {
            run_once(admin::derive_tariff(args))
        }
        Command::Rate(args) => run_once(admin::rate(args)),
        Command::Backup(args) => run_once(talktime::backup::backup(args)),
        Command::Restore(args) => run_once(talktime::backup::restore(args)),
        Command::Accounts(command) => run_once(admin::accounts(command)),
        Command::Users(command) => run_once(admin::users(command)),
        Command::Vouchers(command) => run_once(talktime::vouchers::run(command)),
        Command::Coupons(command) => run_once(talktime::coupons::run(command)),
        Command::Messages(command) => run_once(talktime::board::run(command)),
        Command::Points(command) => run_once(talktime::points::run(command)),
        Command::Referrals(command) => run_once(talktime::rewards::run_referrals(command)),
        Command::Subscribers(command) => run_once(talktime::subscribers::run(command)),
        Command::Resellers(command) => run_once(talktime::resellers::run(command)),
        Command::Nodes(command) => run_once(talktime::nodes::run(command)),
        Command::Routes(RoutesCommand::Explain(args)) => {
            let config = args.files.load()?;
            config.validate()?;
            run_once(admin::explain_route(&config, &args.question()))
        }
        Command::Routes(RoutesCommand::Show(files)) => {
            let config = files.load()?;
            config.validate()?;
            run_once(admin::show_routing(&config))
        }
        Command::Routes(RoutesCommand::Reseed(files)) => {
            let config = files.load()?;
            config.validate()?;
            run_once(admin::reseed_routing(&config))
        }
    }
}

/// Runs one operator command on a small runtime.
fn run_once(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?
        .block_on(command)
}

/// The most tokio-postgres may log (see `init_logging`).
const QUIET_POSTGRES_DRIVER: &str = "tokio_postgres=info";

fn init_logging(default_filter: &str, format: talktime_b2bua::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter))
        // tokio-postgres logs each statement's parameters at debug (caller IDs, destinations):
        // PII stays out of the log whatever filter is set.
        .add_directive(QUIET_POSTGRES_DRIVER.parse().expect("a constant directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        talktime_b2bua::config::LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        talktime_b2bua::config::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}
