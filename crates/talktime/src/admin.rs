//! Operator subcommands that work on the ledger: card batches, tariff import, rating, and
//! `routes explain` (the routing decision for one number).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use rust_decimal::Decimal;
use talktime_billing::{Currency, LocalStart, Money, SimulationRequest, TariffSettings};
use talktime_routing::{RouteRequest, Router};
use talktime_store::{
    CardBatch, CardBatchSpec, CardKind, ExpiryRule, ImportOptions, Store, parse_micros,
};

use crate::config::Config;

/// Where the ledger is: a database URL, or the data directory of an embedded SQLite ledger.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// Database URL (postgres://... or sqlite:FILE). Default: the SQLite ledger in --data-dir.
    #[arg(long = "database-url")]
    database_url: Option<String>,
    /// Data directory holding the embedded SQLite ledger.
    #[arg(long = "data-dir", default_value = "data")]
    data_dir: PathBuf,
    /// The PIN key file (default: pin.key in --data-dir; TALKTIME_PIN_KEY takes precedence).
    #[arg(long = "pin-key-file")]
    pin_key_file: Option<PathBuf>,
}

impl LedgerArgs {
    pub(crate) async fn open(&self) -> anyhow::Result<Store> {
        let location = match &self.database_url {
            Some(url) => url.clone(),
            None => self.data_dir.display().to_string(),
        };
        let key_file = self
            .pin_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(talktime_store::PIN_KEY_FILE_NAME));
        let options = talktime_store::StoreOptions {
            pin_key: Some(crate::startup::pin_key(&key_file, true)?),
            // The CLI places no calls: no pipelined connections to open.
            postgres_pipeline: false,
            ..talktime_store::StoreOptions::default()
        };
        Store::open_with(&location, &options)
            .await
            .with_context(|| {
                format!(
                    "cannot open the ledger at {}",
                    talktime_b2bua::config::redact_url_password(&location)
                )
            })
    }
}

#[derive(Debug, Subcommand)]
pub enum CardsCommand {
    /// Generate a batch of cards with random unique PINs and write it as CSV.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    ledger: LedgerArgs,
    #[command(flatten)]
    order: BatchOrder,
    /// Where to write the CSV (PINs included): a file, or - for standard output.
    #[arg(long, default_value = "-")]
    output: String,
}

/// A card batch as an operator orders it, on the command line or through the admin API.
#[derive(Debug, Args, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchOrder {
    /// Batch name.
    #[arg(long)]
    pub name: String,
    /// How many cards.
    #[arg(long)]
    #[schema(minimum = 1, maximum = 10000)]
    pub count: u32,
    /// Digits per PIN.
    #[arg(long = "pin-length", default_value_t = 10)]
    #[serde(default = "default_pin_length")]
    pub pin_length: u32,
    /// Value of each card as decimal text, e.g. 5.00.
    #[arg(long)]
    pub value: String,
    /// Currency code.
    #[arg(long, default_value = "USD")]
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Tariff name the cards are rated with.
    #[arg(long)]
    pub tariff: Option<String>,
    /// Disposable cards can never be recharged (seed 002, tip 3).
    #[arg(long)]
    #[serde(default)]
    pub disposable: bool,
    /// Days the card stays valid after its first call.
    #[arg(long = "expire-days-after-first-use")]
    pub expire_days: Option<i64>,
    /// A fixed last day (UTC, YYYY-MM-DD): the card expires at the end of it.
    #[arg(long = "expires-on")]
    #[serde(default)]
    pub expires_on: Option<String>,
    /// Charged with each card's first answered call, once (seed 000), e.g. 0.39.
    #[arg(long = "activation-fee")]
    #[serde(default)]
    pub activation_fee: Option<String>,
    /// An account whose balance also bounds the cards' spending (seed 002, tip 2).
    #[arg(long = "owner-account")]
    #[serde(default)]
    pub owner_account: Option<i64>,
    /// The reseller (id) whose customers the cards are: each call also holds and pays on
    /// every reseller level above them.
    #[arg(long = "reseller")]
    #[serde(default)]
    pub reseller: Option<i64>,
    /// Below this balance a card's registered caller ID no longer skips the PIN (seed 002).
    #[arg(long = "caller-id-min-balance")]
    #[serde(default)]
    pub caller_id_min_balance: Option<String>,
    /// Calls at once on each card (a shared balance, seed 004) [default: 1].
    #[arg(long = "concurrency-limit")]
    #[serde(default)]
    pub concurrency_limit: Option<i64>,
    /// Each card's plan: maintenance fee, free-minute package (in the API: a `plan` object).
    #[command(flatten)]
    #[serde(default)]
    pub plan: PlanArgs,
}

fn default_pin_length() -> u32 {
    10
}

fn default_currency() -> String {
    "USD".into()
}

/// The end of a UTC day given as YYYY-MM-DD, in epoch ms.
pub(crate) fn end_of_day_ms(day: &str) -> Result<i64, BatchError> {
    let date: talktime_billing::Date = day
        .trim()
        .parse()
        .map_err(|_| BatchError::Value(format!("expires-on {day:?} is not YYYY-MM-DD")))?;
    Ok((date.days_since_epoch() + 1) * 86_400_000)
}

/// An optional amount as decimal text; none is 0.
fn optional_micros(text: Option<&str>) -> Result<i64, BatchError> {
    text.map_or(Ok(0), |text| {
        parse_micros(text).map_err(|error| BatchError::Value(error.to_string()))
    })
}

/// Why a batch order was not generated.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("no tariff named {0}")]
    UnknownTariff(String),
    #[error("value: {0}")]
    Value(String),
    /// A card, its tariff and its owner account share one currency.
    #[error("currency: the cards are in {cards} but {what} is in {other}")]
    CurrencyMismatch {
        cards: String,
        what: String,
        other: String,
    },
    #[error(transparent)]
    Store(#[from] talktime_store::StoreError),
}

impl BatchOrder {
    /// Generates the batch in the ledger (all cards in one transaction).
    pub async fn generate(&self, store: &Store, now_ms: i64) -> Result<CardBatch, BatchError> {
        let tariff = match &self.tariff {
            Some(name) => Some(
                store
                    .tariff_by_name(name)
                    .await?
                    .ok_or_else(|| BatchError::UnknownTariff(name.clone()))?,
            ),
            None => None,
        };
        let mismatch = |what: String, other: &str| BatchError::CurrencyMismatch {
            cards: self.currency.clone(),
            what,
            other: other.to_owned(),
        };
        if let Some(tariff) = &tariff
            && !tariff.currency.eq_ignore_ascii_case(&self.currency)
        {
            return Err(mismatch(
                format!("tariff {}", tariff.name),
                &tariff.currency,
            ));
        }
        if let Some(owner) = self.owner_account {
            let owner = store.account(owner).await?;
            if !owner.currency.eq_ignore_ascii_case(&self.currency) {
                return Err(mismatch(
                    format!("owner account {}", owner.id),
                    &owner.currency,
                ));
            }
        }
        let tariff_id = tariff.map(|tariff| tariff.id);
        let spec = CardBatchSpec {
            name: self.name.clone(),
            count: self.count,
            pin_length: self.pin_length,
            value_micros: parse_micros(&self.value)
                .map_err(|error| BatchError::Value(error.to_string()))?,
            currency: self.currency.clone(),
            tariff_id,
            kind: if self.disposable {
                CardKind::Disposable
            } else {
                CardKind::Refillable
            },
            expiry: ExpiryRule {
                expires_at_ms: match self.expires_on.as_deref() {
                    Some(day) => Some(end_of_day_ms(day)?),
                    None => None,
                },
                valid_after_first_use_ms: self.expire_days.map(|days| days * 86_400_000),
            },
            owner_account_id: self.owner_account,
            activation_fee_micros: optional_micros(self.activation_fee.as_deref())?,
            caller_id_min_balance_micros: optional_micros(self.caller_id_min_balance.as_deref())?,
            concurrency_limit: self.concurrency_limit.unwrap_or(1),
            reseller_id: self.reseller,
        };
        if !self.plan.is_empty() {
            // Checked before a card exists.
            self.plan
                .row(0)
                .map_err(|error| BatchError::Value(format!("{error:#}")))?;
        }
        let batch = store.generate_cards(&spec, now_ms).await?;
        if !self.plan.is_empty() {
            for card in &batch.card_ids {
                let account = store.card(*card).await?.account_id;
                let row = self
                    .plan
                    .row(account)
                    .map_err(|error| BatchError::Value(format!("{error:#}")))?;
                store.set_account_plan(&row, now_ms).await?;
            }
        }
        Ok(batch)
    }
}

#[derive(Debug, Subcommand)]
pub enum TariffsCommand {
    /// Import a rate CSV: prefix,description,sell_rate,buy_rate,initial_block,increment,
    /// connection_fee and any optional column of docs/TARIFFS.md.
    Import(ImportArgs),
    /// Print a tariff's settings and taxes as TOML, or replace them from a file.
    Settings(SettingsArgs),
    /// Every tariff with its currency and number of rates.
    List(ListArgs),
    /// One tariff: its settings and number of rates.
    Show(ShowArgs),
    /// Write a tariff's rates as CSV (every column in use); `import` reads it back.
    Export(ExportArgs),
    /// Make a tariff from another: its sell prices become the new buy prices, the new sell
    /// prices are those plus a margin, billing blocks optionally new (seed 002, tip 3).
    Derive(DeriveArgs),
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Tariff name.
    name: String,
    /// A TOML file of settings keys and [[taxes]] (docs/TARIFFS.md); without it, print.
    #[arg(long)]
    settings: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    ledger: LedgerArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Tariff name.
    name: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Tariff name.
    name: String,
    /// A file, or - for standard output.
    #[arg(long, default_value = "-")]
    output: String,
}

pub(crate) async fn tariff_named(
    store: &Store,
    name: &str,
) -> anyhow::Result<talktime_store::Tariff> {
    store
        .tariff_by_name(name)
        .await?
        .with_context(|| format!("no tariff named {name}"))
}

pub async fn tariff_settings(args: SettingsArgs) -> anyhow::Result<()> {
    let store = args.ledger.open().await?;
    let tariff = tariff_named(&store, &args.name).await?;
    if let Some(path) = &args.settings {
        crate::tariff_admin::replace_settings(&store, &tariff, path).await?;
        eprintln!("settings of {} replaced", tariff.name);
    }
    let tariff = tariff_named(&store, &args.name).await?;
    let settings = crate::tariff_admin::settings_of(&tariff)?;
    print!("{}", crate::tariff_admin::settings_toml(&settings)?);
    Ok(())
}

pub async fn list_tariffs(args: ListArgs) -> anyhow::Result<()> {
    let store = args.ledger.open().await?;
    for tariff in store.tariffs().await? {
        let rates = store.rate_count(tariff.id).await?;
        println!("{}\t{}\t{rates} rates", tariff.name, tariff.currency);
    }
    Ok(())
}

pub async fn show_tariff(args: ShowArgs) -> anyhow::Result<()> {
    let store = args.ledger.open().await?;
    let tariff = tariff_named(&store, &args.name).await?;
    let rates = store.rate_count(tariff.id).await?;
    println!(
        "# tariff {} ({}), {rates} rates",
        tariff.name, tariff.currency
    );
    let settings = crate::tariff_admin::settings_of(&tariff)?;
    print!("{}", crate::tariff_admin::settings_toml(&settings)?);
    Ok(())
}

pub async fn export_tariff(args: ExportArgs) -> anyhow::Result<()> {
    let store = args.ledger.open().await?;
    let tariff = tariff_named(&store, &args.name).await?;
    let rows = if args.output == "-" {
        crate::tariff_admin::export_rates(&store, &tariff, std::io::stdout().lock()).await?
    } else {
        let file = std::fs::File::create(&args.output)
            .with_context(|| format!("cannot create {}", args.output))?;
        crate::tariff_admin::export_rates(&store, &tariff, std::io::BufWriter::new(file)).await?
    };
    eprintln!("{rows} rates written");
    Ok(())
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Tariff name; created if it does not exist.
    #[arg(long)]
    tariff: String,
    /// Currency of a new tariff.
    #[arg(long, default_value = "USD")]
    currency: String,
    /// Check the file and report errors without writing anything.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// All or nothing: write no row if any row is wrong.
    #[arg(long)]
    atomic: bool,
    /// Settings and taxes (TOML, docs/TARIFFS.md) applied before the rates are read.
    #[arg(long)]
    settings: Option<PathBuf>,
    /// The CSV file.
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct DeriveArgs {
    #[command(flatten)]
    ledger: LedgerArgs,
    /// The new tariff's name.
    name: String,
    /// The tariff it is made from.
    #[arg(long)]
    from: String,
    /// Percent over the base's sell prices.
    #[arg(long)]
    margin: i64,
    /// New first billing block, seconds (with --increment).
    #[arg(long = "initial-block", requires = "increment")]
    initial_block: Option<i64>,
    /// New billing increment, seconds.
    #[arg(long, requires = "initial_block")]
    increment: Option<i64>,
}

pub async fn derive_tariff(args: DeriveArgs) -> anyhow::Result<()> {
    let store = args.ledger.open().await?;
    let base = tariff_named(&store, &args.from).await?;
    let how = crate::tariff_admin::Derivation {
        margin_percent: args.margin,
        blocks: args.initial_block.zip(args.increment),
    };
    let now = crate::server::wall_clock_ms();
    let (created, rates) = crate::tariff_admin::derive(&store, &base, &args.name, how, now).await?;
    println!(
        "tariff {} made from {} with {rates} rates at {} % margin",
        created.name, base.name, args.margin
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct RateArgs {
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Tariff name (default: the card's or account's tariff).
    #[arg(long, required_unless_present_any = ["pin", "account"])]
    tariff: Option<String>,
    /// Rate as this card would pay now: its tariff, its activation fee if still due, its
    /// balance for the maximum talk time.
    #[arg(long, conflicts_with = "account")]
    pin: Option<String>,
    /// Rate as this account (pinless) would pay now.
    #[arg(long)]
    account: Option<i64>,
    /// Destination number (digits, international form).
    destination: String,
    /// Call duration in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The call came in on a toll-free access number (adds the toll-free surcharge).
    #[arg(long = "toll-free")]
    toll_free: bool,
    /// Balance to compute the maximum talk time for, e.g. 10.00.
    #[arg(long)]
    balance: Option<String>,
    /// Local start of the call, e.g. 2026-11-23T18:30:00 (time-of-day rates).
    #[arg(long, default_value = "2026-01-01T12:00:00")]
    at: String,
}

pub async fn generate_cards(args: GenerateArgs) -> anyhow::Result<()> {
    let store = args.ledger.open().await?;
    let batch = args
        .order
        .generate(&store, crate::server::wall_clock_ms())
        .await?;
    // The only time these PINs can be read: the ledger keeps keyed hashes.
    let rows = if args.output == "-" {
        store
            .export_batch_csv(&batch, std::io::stdout().lock())
            .await?
    } else {
        let file = create_secret_file(Path::new(&args.output))?;
        store.export_batch_csv(&batch, file).await?
    };
    eprintln!("batch {} ({}): {rows} cards written", batch.id, batch.name);
    Ok(())
}

/// A new file only its owner can read (a batch's PINs go there).
pub(crate) fn create_secret_file(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

pub async fn import_tariff(args: ImportArgs) -> anyhow::Result<()> {
    let store = args.ledger.open().await?;
    // A settings file is checked before anything is written.
    let settings_file = match &args.settings {
        Some(path) => Some(crate::tariff_admin::SettingsFile::read(path)?),
        None => None,
    };
    let tariff = match store.tariff_by_name(&args.tariff).await? {
        Some(tariff) => tariff,
        None => {
            let mut settings = TariffSettings {
                currency: Currency::new(&args.currency)?,
                ..TariffSettings::default()
            };
            if let Some(file) = &settings_file {
                settings = file.apply(settings)?;
            }
            store
                .create_tariff(
                    &args.tariff,
                    &args.currency,
                    &settings.to_json(),
                    crate::server::wall_clock_ms(),
                )
                .await?
        }
    };
    if let (Some(path), false) = (&args.settings, args.dry_run) {
        crate::tariff_admin::replace_settings(&store, &tariff, path).await?;
    }
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let options = ImportOptions {
        dry_run: args.dry_run,
        atomic: args.atomic,
        ..ImportOptions::default()
    };
    let extras = crate::ledger::rate_extras_columns();
    let report = store
        .import_tariff_csv_with(tariff.id, file, options, Some(&extras))
        .await?;
    for error in &report.errors {
        eprintln!(
            "line {}: {}{}",
            error.line,
            error.column.map(|c| format!("{c}: ")).unwrap_or_default(),
            error.message
        );
    }
    println!(
        "{} rows read, {} valid, {} written{}",
        report.rows_read,
        report.rows_valid,
        report.rows_written,
        if args.dry_run { " (dry run)" } else { "" }
    );
    if !report.errors.is_empty() {
        bail!("{} rows rejected", report.errors.len());
    }
    Ok(())
}

pub async fn rate(args: RateArgs) -> anyhow::Result<()> {
    let store = args.ledger.open().await?;
    let payer = RatePayer::find(&store, args.pin.as_deref(), args.account).await?;
    let tariff_id = match (
        &args.tariff,
        payer.as_ref().and_then(|payer| payer.tariff_id),
    ) {
        (Some(name), _) => tariff_named(&store, name).await?.id,
        (None, Some(id)) => id,
        (None, None) => bail!("the card or account names no tariff; give --tariff"),
    };
    let deck = crate::ledger::load_deck(&store, tariff_id).await?;
    let settings = deck.settings().clone();
    let balance_micros = match &args.balance {
        Some(text) => Some(parse_micros(text).context("--balance")?),
        None => payer.as_ref().map(|payer| payer.balance_micros),
    };
    let balance = balance_micros.map(|micros| Money::from_micros(micros, settings.currency));
    let account_fees = payer
        .as_ref()
        .map(|payer| crate::ledger::account_fees(payer.activation_fee_micros))
        .unwrap_or_default();
    let package_seconds_available = match &payer {
        Some(payer) => payer.package_seconds(&store, &args.destination).await?,
        None => 0,
    };
    let request = SimulationRequest {
        number: args.destination.clone(),
        duration_ms: args.seconds.saturating_mul(1000),
        start: parse_local_start(&args.at)?,
        toll_free_access: args.toll_free,
        package_seconds_available,
        account_fees,
        taxes: settings.tax_profile(),
        balance,
    };
    let report = talktime_billing::simulate(&deck, &request)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The card or account `talktime rate` prices a call for.
struct RatePayer {
    account_id: i64,
    tariff_id: Option<i64>,
    balance_micros: i64,
    /// Still due: the card has not made its first answered call.
    activation_fee_micros: i64,
}

impl RatePayer {
    /// Free package seconds the account has left now for `destination`.
    async fn package_seconds(&self, store: &Store, destination: &str) -> anyhow::Result<u32> {
        let digits: String = destination.chars().filter(char::is_ascii_digit).collect();
        let now = crate::server::wall_clock_ms();
        Ok(crate::ledger::package_seconds_for(store, self.account_id, &digits, now).await?)
    }

    async fn find(
        store: &Store,
        pin: Option<&str>,
        account: Option<i64>,
    ) -> anyhow::Result<Option<RatePayer>> {
        if let Some(pin) = pin {
            let card = store
                .card_by_pin(&talktime_pii::Pii::new(pin.to_owned()))
                .await?
                .context("no card with that PIN")?;
            let account = store.account(card.account_id).await?;
            let activation_fee_micros = card.activation_fee_due();
            return Ok(Some(RatePayer {
                account_id: account.id,
                tariff_id: card.tariff_id.or(account.tariff_id),
                balance_micros: account.balance_micros,
                activation_fee_micros,
            }));
        }
        let Some(account) = account else {
            return Ok(None);
        };
        let account = store.account(account).await?;
        Ok(Some(RatePayer {
            account_id: account.id,
            tariff_id: account.tariff_id,
            balance_micros: account.balance_micros,
            activation_fee_micros: 0,
        }))
    }
}

/// `2026-11-23T18:30:00` as a local call start.
pub(crate) fn parse_local_start(text: &str) -> anyhow::Result<LocalStart> {
    let (date, time) = text
        .split_once('T')
        .context("--at takes DATE T TIME, e.g. 2026-11-23T18:30:00")?;
    Ok(LocalStart::new(date.parse()?, time.parse()?))
}

/// Which dial plan `routes explain` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanChoice {
    /// The dial plan of this access number (`*` catches numbers not listed).
    AccessNumber(String),
    /// A dial plan by name.
    Plan(String),
}

/// The configuration with the database's carriers and dial plans, when the ledger exists
/// and was seeded (what a running switch routes with); else the file's, said on stderr.
async fn with_stored_routing(config: &Config) -> Config {
    let mut config = config.clone();
    let stored = match open_configured_ledger(&config).await {
        Ok(store) => crate::routing_live::load(&store)
            .await
            .map_err(anyhow::Error::from),
        Err(error) => Err(error),
    };
    match stored {
        Ok(Some(routing)) => {
            config.carriers = routing.carriers;
            config.dial_plans = routing.dial_plans;
        }
        Ok(None) => {}
        Err(error) => {
            eprintln!("note: explaining with the configuration file's carriers ({error:#})")
        }
    }
    config
}

/// `talktime routes show`: the stored carriers (no passwords) and dial plans as JSON.
pub async fn show_routing(config: &Config) -> anyhow::Result<()> {
    let store = open_configured_ledger(config).await?;
    let routing = crate::routing_live::load(&store)
        .await?
        .context("the routing was never seeded: start the switch once")?;
    let carriers: Vec<serde_json::Value> = routing
        .carriers
        .iter()
        .map(|carrier| crate::admin_routing::carrier_json(carrier, None))
        .collect();
    let shown = serde_json::json!({
        "version": routing.version,
        "carriers": carriers,
        "dial_plans": routing.dial_plans,
    });
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}

/// `talktime routes reseed`: the file's carriers and dial plans replace the database's.
pub async fn reseed_routing(config: &Config) -> anyhow::Result<()> {
    let store = open_configured_ledger(config).await?;
    let version = crate::routing_live::reseed(&store, config).await?;
    store
        .audit(
            None,
            "routing_reseed",
            "routing",
            None,
            None,
            crate::server::wall_clock_ms(),
        )
        .await?;
    println!(
        "routing version {version}: {} carriers and {} dial plans from the configuration file",
        config.carriers.len(),
        config.dial_plans.len()
    );
    Ok(())
}

/// One `talktime routes explain` question.
#[derive(Debug, Clone)]
pub struct RouteQuestion {
    /// The number as a caller dials it; normalized with `[number_rules]` first.
    pub number: String,
    pub plan: PlanChoice,
    /// A tariff whose sell rate for the number judges loss-making carriers (as
    /// `billing.refuse_loss_making_routes` says).
    pub tariff: Option<String>,
    /// Local call start, `2026-11-23T18:30:00`, for time-of-day buy rates; `None` is now.
    pub at: Option<String>,
}

/// Prints the carriers `question.number` is sent to, best first, with buy rates and reasons,
/// and every skipped carrier with its reason. Fails (after printing the explanation, when
/// there is one) if the number is blocked, has no route, or no carrier is available.
/// Health and call counts are those of a fresh start: every enabled carrier is up and idle.
pub async fn explain_route(config: &Config, question: &RouteQuestion) -> anyhow::Result<()> {
    let config = &with_stored_routing(config).await;
    let plan = dial_plan(config, &question.plan)?;
    let number = talktime_routing::normalize(&question.number, &config.number_rules)
        .map_err(|error| anyhow!("{}: {error}", question.number))?;
    let start = match &question.at {
        Some(text) => parse_local_start(text)?,
        None => LocalStart::from_unix_ms(
            crate::server::wall_clock_ms(),
            config.billing.utc_offset_minutes,
        )
        .context("the system clock is out of range")?,
    };
    let needs_ledger = question.tariff.is_some()
        || config
            .carriers
            .iter()
            .any(|carrier| carrier.buy_tariff.is_some());
    let store = if needs_ledger {
        Some(open_configured_ledger(config).await?)
    } else {
        None
    };
    let buy_rates = match &store {
        Some(store) => crate::startup::buy_rate_decks(store, &config.carriers).await?,
        None => HashMap::new(),
    };
    for carrier in &config.carriers {
        if let Some(tariff) = &carrier.buy_tariff
            && !buy_rates.contains_key(&carrier.name)
        {
            eprintln!(
                "warning: carrier {}: buy tariff {tariff} is not in the ledger (no buy rate)",
                carrier.name
            );
        }
    }
    let mut request = RouteRequest::new(&plan, &number, start);
    if let (Some(tariff), Some(store)) = (&question.tariff, &store) {
        let sell = sell_rate(store, tariff, &number, &start).await?;
        request = request.with_sell_rate(sell, config.billing.refuse_loss_making_routes);
    }
    let now = Instant::now();
    let router = Router::new(
        config.carriers.clone(),
        config.dial_plans.clone(),
        buy_rates,
        now,
    )
    .map_err(|errors| anyhow!("invalid routing configuration: {errors}"))?;
    let explanation = router
        .explain(&request, now)
        .map_err(|error| anyhow!("{}: {error}", question.number))?;
    print!("{explanation}");
    if explanation.blocked {
        bail!("{}: dial plan {plan} refuses this number", question.number);
    }
    if explanation.targets.is_empty() {
        bail!("{}: no carrier available", question.number);
    }
    Ok(())
}

fn dial_plan(config: &Config, choice: &PlanChoice) -> anyhow::Result<String> {
    let plan = match choice {
        PlanChoice::AccessNumber(number) => config
            .access_number(number)
            .with_context(|| format!("no access number {number} in the configuration"))?
            .dial_plan
            .clone(),
        PlanChoice::Plan(name) => name.clone(),
    };
    if !config.dial_plans.iter().any(|known| known.name == plan) {
        let known: Vec<&str> = config
            .dial_plans
            .iter()
            .map(|known| known.name.as_str())
            .collect();
        bail!(
            "no dial plan named {plan} (configured: {})",
            known.join(", ")
        );
    }
    Ok(plan)
}

/// The ledger `serve` uses; an embedded SQLite file must already exist (explaining a route
/// creates nothing).
async fn open_configured_ledger(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let file = path.split('?').next().unwrap_or(path);
        if !file.starts_with(':') && !std::path::Path::new(file).exists() {
            bail!(
                "no ledger at {file}: the buy tariffs live there (start the switch once, or \
                 import them with talktime tariffs import, with the same --data-dir)"
            );
        }
    }
    let options = talktime_store::StoreOptions {
        pin_key: Some(crate::startup::pin_key(&config.pin_key_path(), true)?),
        postgres_pipeline: false,
        ..talktime_store::StoreOptions::default()
    };
    Store::open_with(&url, &options).await.with_context(|| {
        format!(
            "cannot open the ledger at {}",
            talktime_b2bua::config::redact_url_password(&url)
        )
    })
}

/// The tariff's sell rate per minute for `number` at `start` (time-of-day period applied).
async fn sell_rate(
    store: &Store,
    tariff: &str,
    number: &str,
    start: &LocalStart,
) -> anyhow::Result<Decimal> {
    let row = store
        .tariff_by_name(tariff)
        .await?
        .with_context(|| format!("no tariff named {tariff}"))?;
    let deck = crate::ledger::load_deck(store, row.id).await?;
    let rate = deck
        .find(number, start.date)
        .with_context(|| format!("tariff {tariff} has no rate for {number}"))?;
    Ok(rate
        .periods
        .iter()
        .find(|period| period.matches(start))
        .map_or(rate.sell_per_minute, |period| period.sell_per_minute))
}

/// Accounts and cards: balance, recharge, caller IDs for pinless access, DID forwarding.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Print the account's balance, currency, forward destination and calls in progress.
    Show(AccountArgs),
    /// Add credit (a recharge row in the transaction log).
    Recharge {
        #[command(flatten)]
        account: AccountArgs,
        /// Amount in the account's currency, e.g. 10.00.
        amount: String,
    },
    /// Register a caller ID (ANI) for pinless access to the account.
    AddCallerId {
        #[command(flatten)]
        account: AccountArgs,
        /// The calling number as the switch sees it (digits, e.g. 15551230000).
        number: String,
    },
    /// Remove a caller ID.
    RemoveCallerId {
        #[command(flatten)]
        ledger: LedgerArgs,
        number: String,
    },
    /// Change the account's limits: owner account, caller-ID minimum balance, calls at once,
    /// tariff.
    Set {
        #[command(flatten)]
        account: AccountArgs,
        /// An account whose balance also bounds (and pays for) this one's calls (seed 002).
        #[arg(long = "owner-account")]
        owner_account: Option<i64>,
        /// Below this balance a registered caller ID no longer skips the PIN.
        #[arg(long = "caller-id-min-balance")]
        caller_id_min_balance: Option<String>,
        /// Calls at once (a shared balance, seed 004); 0 = no limit.
        #[arg(long = "concurrency-limit")]
        concurrency_limit: Option<i64>,
        /// Tariff name for this account's calls.
        #[arg(long)]
        tariff: Option<String>,
        /// This account's own taxes, replacing its tariff's on its calls: a TOML file of
        /// `[[taxes]]` tables as in a tariff's settings (`taxes = []`: tax-exempt).
        #[arg(long, value_name = "FILE.toml", conflicts_with = "tariff_taxes")]
        taxes: Option<std::path::PathBuf>,
        /// Remove the account's own taxes: its tariff's apply again.
        #[arg(long = "tariff-taxes")]
        tariff_taxes: bool,
        /// Destinations this account may call, beside its tariff's lists: comma-separated
        /// prefixes (`--allow 52 --deny 52900`); the two flags replace the account's lists.
        #[arg(long, value_name = "PREFIXES")]
        allow: Option<String>,
        #[arg(long, value_name = "PREFIXES")]
        deny: Option<String>,
        /// Remove the account's own destination lists (its tariff's still apply).
        #[arg(long = "all-destinations", conflicts_with_all = ["allow", "deny"])]
        all_destinations: bool,
    },
    /// A shared balance's low-balance rule (seed 004): below --below of free credit the
    /// account carries at most --calls calls at once, each holding at most --call-cap.
    LowBalance {
        #[command(flatten)]
        account: AccountArgs,
        /// The free credit below which the rule applies, e.g. 5.00.
        #[arg(long, required_unless_present = "off")]
        below: Option<String>,
        /// Calls at once below it.
        #[arg(long, default_value_t = 1)]
        calls: i64,
        /// What each call may hold below it, e.g. 1.00.
        #[arg(long = "call-cap")]
        call_cap: Option<String>,
        /// Remove the rule.
        #[arg(long, conflicts_with_all = ["below", "call_cap"])]
        off: bool,
    },
    /// Set the account's plan: a maintenance fee every period, a free-minute package.
    Plan {
        #[command(flatten)]
        account: AccountArgs,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Where the account's notification mails go and below which balances it is told
    /// (`--email owner@example.com --below 5.00,1.00 --language es`); `--email ''` stops them.
    Notify {
        #[command(flatten)]
        account: AccountArgs,
        /// The address; empty: no mail.
        #[arg(long)]
        email: String,
        /// Balances whose downward crossing sends one mail, comma-separated (5.00,1.00).
        #[arg(long, default_value = "")]
        below: String,
        /// Language of the mails: en or es.
        #[arg(long, default_value = "en")]
        language: String,
    },
    /// Set the account's customer-portal password (`/portal`: the account number or the
    /// card's PIN, and this password); ends its portal sessions. The password is read from
    /// stdin when piped, else generated and printed once.
    PortalPassword {
        #[command(flatten)]
        account: AccountArgs,
    },
    /// Set (or with --clear remove) the destination a DID-forwarding access number connects
    /// this account's registered callers to.
    Forward {
        #[command(flatten)]
        account: AccountArgs,
        /// The destination as dialled, e.g. 00442071234567.
        #[arg(required_unless_present = "clear")]
        destination: Option<String>,
        #[arg(long)]
        clear: bool,
    },
    /// Speed dials (keys 1-9 at the IVR's destination prompt): `KEY NUMBER` stores,
    /// `KEY --remove` removes, nothing lists them.
    SpeedDial {
        #[command(flatten)]
        account: AccountArgs,
        /// The key, 1-9.
        key: Option<u8>,
        /// The number as dialled, e.g. 00442071234567.
        number: Option<String>,
        #[arg(long, requires = "key")]
        remove: bool,
    },
}

/// An account plan as an operator sets it (`accounts plan`, `cards generate`).
#[derive(Debug, Clone, Default, Args, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanArgs {
    /// Charged every --maintenance-every from the card's first call (seed 000), e.g. 0.25.
    #[arg(long = "maintenance-fee", requires = "maintenance_every")]
    #[serde(default)]
    pub maintenance_fee: Option<String>,
    /// The maintenance period: 30d, 6h, 90s.
    #[arg(long = "maintenance-every")]
    #[serde(default)]
    pub maintenance_every: Option<String>,
    /// Free seconds each package period (seed 003 package billing), used before money.
    #[arg(long = "package-seconds", requires = "package_prefixes")]
    #[serde(default)]
    pub package_seconds: Option<i64>,
    /// Destination prefixes the package covers, comma-separated (E.164 digits: 1,44).
    #[arg(long = "package-prefixes")]
    #[serde(default)]
    pub package_prefixes: Option<String>,
    /// The package period after which it is full again (30d); none: never refilled.
    #[arg(long = "package-every")]
    #[serde(default)]
    pub package_every: Option<String>,
}

impl PlanArgs {
    pub fn is_empty(&self) -> bool {
        self.maintenance_fee.is_none() && self.package_seconds.is_none()
    }

    /// The plan row for `account_id`; a bad amount or period is an error naming it.
    pub fn row(&self, account_id: i64) -> anyhow::Result<talktime_store::PlanRow> {
        let period = |text: &Option<String>, what: &str| -> anyhow::Result<i64> {
            text.as_deref().map_or(Ok(0), |text| {
                parse_period_ms(text).with_context(|| what.to_owned())
            })
        };
        let fee = self
            .maintenance_fee
            .as_deref()
            .map_or(Ok(0), parse_micros)
            .context("--maintenance-fee")?;
        let seconds = self.package_seconds.unwrap_or(0);
        if seconds < 0 {
            bail!("--package-seconds must not be negative");
        }
        Ok(talktime_store::PlanRow {
            account_id,
            maintenance_fee_micros: fee,
            maintenance_every_ms: period(&self.maintenance_every, "--maintenance-every")?,
            package_seconds: seconds,
            package_prefixes: self.package_prefixes.clone().unwrap_or_default(),
            package_every_ms: period(&self.package_every, "--package-every")?,
            ..talktime_store::PlanRow::default()
        })
    }
}

/// `30d`, `6h`, `15m`, `90s` as milliseconds.
pub fn parse_period_ms(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a period such as 30d, 6h or 90s"))?;
    let unit_ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1_000,
        _ => bail!("{text:?}: the unit is d, h, m or s"),
    };
    if number <= 0 {
        bail!("{text:?} must be positive");
    }
    number
        .checked_mul(unit_ms)
        .with_context(|| format!("{text:?} is too long"))
}

/// One account, named by its id or by the PIN of its card.
#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    ledger: LedgerArgs,
    /// The account id.
    #[arg(long, conflicts_with = "pin", required_unless_present = "pin")]
    account: Option<i64>,
    /// The PIN of the account's card.
    #[arg(long)]
    pin: Option<String>,
}

impl AccountArgs {
    pub(crate) async fn resolve(&self) -> anyhow::Result<(Store, i64)> {
        let store = self.ledger.open().await?;
        let account = match (&self.account, &self.pin) {
            (Some(account), _) => *account,
            (None, Some(pin)) => {
                let pin = talktime_pii::Pii::new(pin.clone());
                store
                    .card_by_pin(&pin)
                    .await?
                    .context("no card has this PIN")?
                    .account_id
            }
            (None, None) => bail!("give --account or --pin"),
        };
        store.account(account).await?;
        Ok((store, account))
    }
}

pub async fn accounts(command: AccountsCommand) -> anyhow::Result<()> {
    let now = crate::server::wall_clock_ms();
    match command {
        AccountsCommand::Show(args) => {
            let (store, id) = args.resolve().await?;
            let account = store.account(id).await?;
            let open = store.open_reservations(id).await?.len();
            println!("account {id} ({})", account.name);
            println!(
                "balance {} {}",
                talktime_store::format_micros(account.balance_micros),
                account.currency
            );
            println!("status {}", account.status.as_str());
            println!("calls in progress {open}");
            match store.account_reseller(id).await? {
                Some(reseller) => {
                    let reseller = store.reseller(reseller).await?;
                    println!("customer of reseller {} ({})", reseller.id, reseller.name);
                }
                None => println!("customer of the vendor"),
            }
            if let Some(rule) = store.low_balance_rule(id).await? {
                println!(
                    "low-balance rule below {}: {} calls at once, call cap {}",
                    talktime_store::format_micros(rule.below_micros),
                    rule.calls,
                    rule.call_cap_micros
                        .map_or_else(|| "none".to_owned(), talktime_store::format_micros)
                );
            }
            match &account.forward_destination {
                Some(destination) => println!("forwards to {}", destination.expose()),
                None => println!("forwards to (none)"),
            }
            println!(
                "IVR language {}",
                account
                    .ivr_language
                    .as_deref()
                    .unwrap_or("(not chosen yet)")
            );
            for (key, number) in store.speed_dials(id).await? {
                println!("speed dial {key} {}", number.expose());
            }
        }
        AccountsCommand::Recharge { account, amount } => {
            let (store, id) = account.resolve().await?;
            let micros = parse_micros(&amount).context("amount")?;
            let balance = store.recharge(id, micros, Some("cli"), now).await?;
            println!("balance {}", talktime_store::format_micros(balance));
        }
        AccountsCommand::AddCallerId { account, number } => {
            let (store, id) = account.resolve().await?;
            let digits = caller_id_digits(&number)?;
            store
                .register_caller_id(id, &talktime_pii::Pii::new(digits), now)
                .await?;
            println!("caller ID registered to account {id}");
        }
        AccountsCommand::RemoveCallerId { ledger, number } => {
            let store = ledger.open().await?;
            let digits = caller_id_digits(&number)?;
            if !store
                .remove_caller_id(&talktime_pii::Pii::new(digits))
                .await?
            {
                bail!("that caller ID is not registered");
            }
            println!("caller ID removed");
        }
        AccountsCommand::Set {
            account,
            owner_account,
            caller_id_min_balance,
            concurrency_limit,
            tariff,
            taxes,
            tariff_taxes,
            allow,
            deny,
            all_destinations,
        } => {
            let (store, id) = account.resolve().await?;
            // Read and check the tax file and the lists before anything is written.
            let own_taxes = match &taxes {
                Some(path) => Some(account_tax_profile(path)?),
                None => None,
            };
            let destinations = destination_lists(allow.as_deref(), deny.as_deref())?;
            let tariff_id = match &tariff {
                Some(name) => Some(tariff_named(&store, name).await?.id),
                None => None,
            };
            let minimum = match caller_id_min_balance.as_deref() {
                Some(text) => Some(parse_micros(text).context("--caller-id-min-balance")?),
                None => None,
            };
            let limits = talktime_store::AccountLimits {
                owner_account_id: owner_account,
                caller_id_min_balance_micros: minimum,
                concurrency_limit,
                tariff_id,
            };
            store.set_account_limits(id, &limits).await?;
            if let Some(profile) = &own_taxes {
                store
                    .set_account_taxes(id, Some(&serde_json::to_string(profile)?))
                    .await?;
            } else if tariff_taxes {
                store.set_account_taxes(id, None).await?;
            }
            if let Some(policy) = &destinations {
                store
                    .set_account_destinations(id, Some(&serde_json::to_string(policy)?))
                    .await?;
            } else if all_destinations {
                store.set_account_destinations(id, None).await?;
            }
            println!("account {id} updated");
        }
        AccountsCommand::LowBalance {
            account,
            below,
            calls,
            call_cap,
            off: _,
        } => {
            let (store, id) = account.resolve().await?;
            let rule = match below.as_deref() {
                Some(below) => Some(talktime_store::LowBalanceRule {
                    below_micros: parse_micros(below).context("--below")?,
                    calls,
                    call_cap_micros: match call_cap.as_deref() {
                        Some(cap) => Some(parse_micros(cap).context("--call-cap")?),
                        None => None,
                    },
                }),
                None => None,
            };
            store.set_low_balance_rule(id, rule).await?;
            match rule {
                Some(rule) => println!(
                    "account {id}: below {} of free credit, {} calls at once{}",
                    talktime_store::format_micros(rule.below_micros),
                    rule.calls,
                    rule.call_cap_micros.map_or_else(String::new, |cap| format!(
                        ", each holding at most {}",
                        talktime_store::format_micros(cap)
                    ))
                ),
                None => println!("account {id}: no low-balance rule"),
            }
        }
        AccountsCommand::Plan { account, plan } => {
            let (store, id) = account.resolve().await?;
            store.set_account_plan(&plan.row(id)?, now).await?;
            println!("plan of account {id} set");
        }
        AccountsCommand::Notify {
            account,
            email,
            below,
            language,
        } => {
            let settings = notify_settings(&email, &below, &language)?;
            let (store, id) = account.resolve().await?;
            store.set_notify_settings(id, &settings).await?;
            println!(
                "account {id}: {} threshold(s), mails {}",
                settings.below_micros.len(),
                if settings.email.is_some() {
                    "on"
                } else {
                    "off"
                }
            );
        }
        AccountsCommand::SpeedDial {
            account,
            key,
            number,
            remove,
        } => {
            crate::vouchers::speed_dial_command(&account, key, number.as_deref(), remove).await?;
        }
        AccountsCommand::PortalPassword { account } => {
            let (store, id) = account.resolve().await?;
            let password = password_from_stdin()?;
            let hash = crate::console::auth::hash_password(&password)?;
            store.set_customer_password(id, &hash, now).await?;
            println!("portal password of account {id} set; its portal sessions ended");
        }
        AccountsCommand::Forward {
            account,
            destination,
            clear,
        } => {
            let (store, id) = account.resolve().await?;
            let destination = if clear {
                None
            } else {
                destination.map(talktime_pii::Pii::new)
            };
            store
                .set_forward_destination(id, destination.as_ref())
                .await?;
            println!(
                "account {id} {}",
                if clear {
                    "no longer forwards"
                } else {
                    "forwards"
                }
            );
        }
    }
    Ok(())
}

/// The settings `accounts notify` was given, checked (an address with an @, amounts, a
/// language that has templates).
fn notify_settings(
    email: &str,
    below: &str,
    language: &str,
) -> anyhow::Result<talktime_store::NotifySettings> {
    let email = email.trim();
    if !email.is_empty() && !email.contains('@') {
        bail!("--email {email:?} is not an e-mail address");
    }
    if !["en", "es"].contains(&language) {
        bail!("--language {language:?}: mails are written in en or es");
    }
    let below_micros = below
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| parse_micros(part).with_context(|| format!("--below {part:?}")))
        .collect::<anyhow::Result<Vec<i64>>>()?;
    Ok(talktime_store::NotifySettings {
        email: Some(email.to_owned())
            .filter(|email| !email.is_empty())
            .map(talktime_pii::Pii::new),
        below_micros,
        language: Some(language.to_owned()),
    })
}

/// An account's own tax profile from a TOML file of `[[taxes]]` tables, checked.
/// The account's own destination lists from `--allow` and `--deny`, checked; `None` when
/// neither flag was given.
fn destination_lists(
    allow: Option<&str>,
    deny: Option<&str>,
) -> anyhow::Result<Option<talktime_billing::DestinationPolicy>> {
    if allow.is_none() && deny.is_none() {
        return Ok(None);
    }
    let policy = talktime_billing::DestinationPolicy {
        allowed: talktime_billing::DestinationPolicy::parse_list(allow.unwrap_or_default()),
        denied: talktime_billing::DestinationPolicy::parse_list(deny.unwrap_or_default()),
    };
    policy.validate().context("--allow/--deny")?;
    Ok(Some(policy))
}

fn account_tax_profile(path: &std::path::Path) -> anyhow::Result<talktime_billing::TaxProfile> {
    let file = crate::tariff_admin::SettingsFile::read(path)?;
    let Some(entries) = &file.taxes else {
        bail!(
            "{}: no `taxes` (write `[[taxes]]` tables, or `taxes = []` for none)",
            path.display()
        );
    };
    let profile = talktime_billing::TaxProfile {
        name: "account".into(),
        taxes: entries
            .iter()
            .map(crate::tariff_admin::TaxEntry::to_tax)
            .collect::<anyhow::Result<_>>()?,
    };
    profile
        .validate()
        .with_context(|| format!("{}: taxes", path.display()))?;
    Ok(profile)
}

/// Caller IDs are stored as the switch matches them: digits only, no `+`.
fn caller_id_digits(number: &str) -> anyhow::Result<String> {
    talktime_routing::caller_id_digits(number).with_context(
        || "a caller ID is 6-20 digits (an optional leading + and separators are ignored)",
    )
}

/// `talktime users`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a console user; its password is read from standard input, or generated and
    /// printed when standard input is a terminal or empty.
    Add {
        #[command(flatten)]
        ledger: LedgerArgs,
        name: String,
        /// admin, operator, support or reseller (with --reseller).
        #[arg(long, default_value = "operator")]
        role: String,
        /// For --role reseller: the reseller (name or id) whose tree the user sees.
        #[arg(long)]
        reseller: Option<String>,
    },
    /// Set a user's password (read from standard input, or generated and printed); its
    /// sessions end.
    Passwd {
        #[command(flatten)]
        ledger: LedgerArgs,
        name: String,
    },
    /// List the users.
    List {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Make a token for the JSON API that acts as this user (with its role); printed once.
    Token {
        #[command(flatten)]
        ledger: LedgerArgs,
        name: String,
        /// What the token is for (a script's name).
        #[arg(long, default_value = "api")]
        label: String,
    },
    /// Disable a user (its sessions end).
    Disable {
        #[command(flatten)]
        ledger: LedgerArgs,
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        #[command(flatten)]
        ledger: LedgerArgs,
        name: String,
    },
}

/// The password on standard input (first line), or a generated one that is printed.
fn password_from_stdin() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if !line.is_empty() {
            if line.chars().count() < crate::console::auth::MIN_PASSWORD_CHARS {
                bail!("a password has at least 10 characters");
            }
            return Ok(line);
        }
    }
    let password = crate::console::auth::generated_password();
    println!("password: {password}");
    Ok(password)
}

pub async fn users(command: UsersCommand) -> anyhow::Result<()> {
    let now = crate::server::wall_clock_ms();
    match command {
        UsersCommand::Add {
            ledger,
            name,
            role,
            reseller,
        } => {
            let role = talktime_store::Role::parse(&role)?;
            let store = ledger.open().await?;
            let reseller = match (role, reseller.as_deref()) {
                (talktime_store::Role::Reseller, Some(text)) => {
                    Some(crate::resellers::find(&store, text).await?.id)
                }
                (talktime_store::Role::Reseller, None) => {
                    anyhow::bail!("a reseller's user needs --reseller")
                }
                (_, Some(_)) => anyhow::bail!("--reseller goes with --role reseller"),
                (_, None) => None,
            };
            let password = password_from_stdin()?;
            let hash = crate::console::auth::hash_password(&password)?;
            let user = match reseller {
                Some(reseller) => {
                    store
                        .create_reseller_user(&name, &hash, reseller, now)
                        .await?
                }
                None => store.create_user(&name, &hash, role, now).await?,
            };
            store
                .audit(
                    None,
                    "user_add",
                    &format!("user {}", user.name),
                    None,
                    Some(role.as_str()),
                    now,
                )
                .await?;
            println!("user {} ({}) added", user.name, role.as_str());
        }
        UsersCommand::Passwd { ledger, name } => {
            let store = ledger.open().await?;
            let password = password_from_stdin()?;
            let hash = crate::console::auth::hash_password(&password)?;
            store.set_user_password(&name, &hash).await?;
            store
                .audit(
                    None,
                    "user_passwd",
                    &format!("user {name}"),
                    None,
                    None,
                    now,
                )
                .await?;
            println!("password of {name} changed; its sessions ended");
        }
        UsersCommand::List { ledger } => {
            let store = ledger.open().await?;
            for user in store.users().await? {
                let state = if user.disabled { "disabled" } else { "active" };
                println!("{}\t{}\t{state}", user.name, user.role.as_str());
            }
        }
        UsersCommand::Token {
            ledger,
            name,
            label,
        } => {
            let store = ledger.open().await?;
            let token = crate::console::auth::random_hex(32);
            store
                .create_api_token(
                    &crate::console::auth::token_hash(&token),
                    &name,
                    &label,
                    now,
                )
                .await?;
            store
                .audit(
                    None,
                    "api_token",
                    &format!("user {name}"),
                    None,
                    Some(&label),
                    now,
                )
                .await?;
            println!("{token}");
        }
        UsersCommand::Disable { ledger, name } => set_disabled(&ledger, &name, true, now).await?,
        UsersCommand::Enable { ledger, name } => set_disabled(&ledger, &name, false, now).await?,
    }
    Ok(())
}

async fn set_disabled(
    ledger: &LedgerArgs,
    name: &str,
    disabled: bool,
    now: i64,
) -> anyhow::Result<()> {
    let store = ledger.open().await?;
    store.set_user_disabled(name, disabled).await?;
    let action = if disabled {
        "user_disable"
    } else {
        "user_enable"
    };
    store
        .audit(None, action, &format!("user {name}"), None, None, now)
        .await?;
    println!(
        "user {name} {}",
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(())
}
