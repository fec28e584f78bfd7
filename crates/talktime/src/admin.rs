//! Operator subcommands that work on the ledger: card batches, tariff import, rating.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rust_decimal::Decimal;
use talktime_billing::{
    Currency, LocalStart, Money, Rate, RateDeck, SimulationRequest, TariffSettings, TaxProfile,
};
use talktime_store::{CardBatchSpec, CardKind, ExpiryRule, ImportOptions, Store, parse_micros};

/// Where the ledger is: a database URL, or the data directory of an embedded SQLite ledger.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// Database URL (postgres://... or sqlite:FILE). Default: the SQLite ledger in --data-dir.
    #[arg(long = "database-url")]
    database_url: Option<String>,
    /// Data directory holding the embedded SQLite ledger.
    #[arg(long = "data-dir", default_value = "data")]
    data_dir: PathBuf,
}

impl LedgerArgs {
    async fn open(&self) -> anyhow::Result<Store> {
        let location = match &self.database_url {
            Some(url) => url.clone(),
            None => self.data_dir.display().to_string(),
        };
        Store::open(&location)
            .await
            .with_context(|| format!("cannot open the ledger at {location}"))
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
    /// Batch name.
    #[arg(long)]
    name: String,
    /// How many cards.
    #[arg(long)]
    count: u32,
    /// Digits per PIN.
    #[arg(long = "pin-length", default_value_t = 10)]
    pin_length: u32,
    /// Value of each card, e.g. 5.00.
    #[arg(long)]
    value: String,
    /// Currency code.
    #[arg(long, default_value = "USD")]
    currency: String,
    /// Tariff name the cards are rated with.
    #[arg(long)]
    tariff: Option<String>,
    /// Disposable cards can never be recharged (seed 002, tip 3).
    #[arg(long)]
    disposable: bool,
    /// Days the card stays valid after its first call.
    #[arg(long = "expire-days-after-first-use")]
    expire_days: Option<i64>,
    /// Where to write the CSV (PINs included): a file, or - for standard output.
    #[arg(long, default_value = "-")]
    output: String,
}

#[derive(Debug, Subcommand)]
pub enum TariffsCommand {
    /// Import a rate CSV (prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee).
    Import(ImportArgs),
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
    /// The CSV file.
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RateArgs {
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Tariff name.
    #[arg(long)]
    tariff: String,
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
    let tariff_id = match &args.tariff {
        Some(name) => Some(
            store
                .tariff_by_name(name)
                .await?
                .with_context(|| format!("no tariff named {name}"))?
                .id,
        ),
        None => None,
    };
    let spec = CardBatchSpec {
        name: args.name.clone(),
        count: args.count,
        pin_length: args.pin_length,
        value_micros: parse_micros(&args.value).context("--value")?,
        currency: args.currency.clone(),
        tariff_id,
        kind: if args.disposable {
            CardKind::Disposable
        } else {
            CardKind::Refillable
        },
        expiry: ExpiryRule {
            expires_at_ms: None,
            valid_after_first_use_ms: args.expire_days.map(|days| days * 86_400_000),
        },
        owner_account_id: None,
    };
    let batch = store.generate_cards(&spec, now_ms()).await?;
    let rows = if args.output == "-" {
        store
            .export_batch_csv(batch.id, std::io::stdout().lock())
            .await?
    } else {
        let file = std::fs::File::create(&args.output)
            .with_context(|| format!("cannot create {}", args.output))?;
        store.export_batch_csv(batch.id, file).await?
    };
    eprintln!("batch {} ({}): {rows} cards written", batch.id, batch.name);
    Ok(())
}

pub async fn import_tariff(args: ImportArgs) -> anyhow::Result<()> {
    let store = args.ledger.open().await?;
    let tariff = match store.tariff_by_name(&args.tariff).await? {
        Some(tariff) => tariff,
        None => {
            let settings = TariffSettings {
                currency: Currency::new(&args.currency)?,
                ..TariffSettings::default()
            };
            store
                .create_tariff(&args.tariff, &args.currency, &settings.to_json(), now_ms())
                .await?
        }
    };
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let options = ImportOptions {
        dry_run: args.dry_run,
        atomic: args.atomic,
        ..ImportOptions::default()
    };
    let report = store.import_tariff_csv(tariff.id, file, options).await?;
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
    let tariff = store
        .tariff_by_name(&args.tariff)
        .await?
        .with_context(|| format!("no tariff named {}", args.tariff))?;
    let settings = TariffSettings::from_json(&tariff.settings_json)
        .context("the tariff's settings are not valid JSON")?;
    let rates = store.rates(tariff.id).await?;
    let deck = RateDeck::build(settings.clone(), rates.iter().map(billing_rate))?;
    let (date, time) = args
        .at
        .split_once('T')
        .context("--at takes DATE T TIME, e.g. 2026-11-23T18:30:00")?;
    let balance = match &args.balance {
        Some(text) => Some(Money::from_micros(
            parse_micros(text).context("--balance")?,
            settings.currency,
        )),
        None => None,
    };
    let request = SimulationRequest {
        number: args.destination.clone(),
        duration_ms: args.seconds.saturating_mul(1000),
        start: LocalStart::new(date.parse()?, time.parse()?),
        toll_free_access: args.toll_free,
        package_seconds_available: 0,
        account_fees: Vec::new(),
        taxes: TaxProfile::default(),
        balance,
    };
    let report = talktime_billing::simulate(&deck, &request)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// A ledger rate row as a billing rate (micro-units become exact decimals).
fn billing_rate(row: &talktime_store::Rate) -> Rate {
    let mut rate = Rate::new(
        &row.prefix,
        Decimal::new(row.sell_rate_micros, 6),
        u32::try_from(row.initial_block_s).unwrap_or(u32::MAX),
        u32::try_from(row.increment_s).unwrap_or(u32::MAX),
    );
    rate.description = row.description.clone();
    rate.buy_per_minute = Decimal::new(row.buy_rate_micros, 6);
    rate.connection_fee = Decimal::new(row.connection_fee_micros, 6);
    rate
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
