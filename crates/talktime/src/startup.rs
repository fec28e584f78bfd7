//! Start-up: open the ledger, close what a crash left open, create the demo tariff and card
//! on a fresh database, load the prompts and build the router.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use talktime_b2bua::config::WriterCpu;
use talktime_billing::{Currency, RateDeck, TariffSettings};
use talktime_engine::{Grammar, Language, LanguageBook};
use talktime_media::PromptCache;
use talktime_pii::Pii;
use talktime_routing::{CarrierConfig, Router};
use talktime_store::{
    BackendKind, CardBatchSpec, CardKind, ExpiryRule, ImportOptions, NewCard, Store, StoreOptions,
    parse_micros,
};
use tracing::{info, warn};

use crate::config::Config;
use crate::ledger::{Ledger, load_deck};
use crate::server::{Services, wall_clock_ms};

/// The demo tariff's rates, shipped as config/demo-tariff.csv.
pub const DEMO_TARIFF_CSV: &str = include_str!("../../../config/demo-tariff.csv");

/// The PIN key: `TALKTIME_PIN_KEY` when set, else the key file (created when missing and
/// `create` is set).
pub fn pin_key(file: &std::path::Path, create: bool) -> anyhow::Result<talktime_store::PinKey> {
    if let Some(key) = talktime_store::PinKey::from_environment()? {
        return Ok(key);
    }
    let key = if create {
        talktime_store::PinKey::load_or_create(file)?
    } else {
        talktime_store::PinKey::load(file)?
    };
    Ok(key)
}

/// Opens the ledger and prepares the core's services; `config`'s carriers and dial plans
/// become the database's (seeded from the file at the first start).
pub async fn prepare(config: &mut Config) -> anyhow::Result<Services> {
    let url = config.database_url();
    talktime_store::create_private_dir(&config.paths.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.paths.data_dir.display()
        )
    })?;
    let node_id = crate::config::node_id(&config.cluster, &config.paths.data_dir);
    let options = StoreOptions {
        sqlite_busy_timeout: std::time::Duration::from_millis(config.database.busy_timeout_ms),
        pin_key: Some(pin_key(&config.pin_key_path(), true)?),
        max_connections: config.database.pool_size.max(2),
        postgres_pipeline: config.database.pipeline,
        ..StoreOptions::default()
    };
    let store = Store::open_with(&url, &options)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                talktime_b2bua::config::redact_url_password(&url)
            )
        })?
        .with_node(&node_id);
    let writer_cpu = place_the_writer(config.database.writer_cpu, store.kind())?;
    let ledger = Arc::new(Ledger::new(store.clone(), config.billing.clone()));
    // Before the first heartbeat: this node's previous life is billed to its last one.
    let started = wall_clock_ms();
    let lease_ms =
        i64::try_from(config.cluster.node_lease_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let recovered = crate::recovery::recover(&ledger, Some(started), started, lease_ms)
        .await
        .context("cannot recover the calls of an earlier run")?;
    store.register_node(wall_clock_ms()).await?;
    crate::console::auth::first_admin(&store, &config.paths.data_dir, wall_clock_ms()).await?;
    info!(node = %node_id, "node registered");
    if config.demo.enabled {
        seed_demo(&store, config).await?;
    }
    let routing = crate::routing_live::load_or_seed(&store, config).await?;
    config.carriers = routing.carriers;
    config.dial_plans = routing.dial_plans;
    config.languages = load_languages(&config.paths.prompts_dir)?;
    check_access_languages(config)?;
    let prompts = load_prompts(&config.paths.prompts_dir, &config.languages)?;
    let buy_rates = buy_rate_decks(&store, &config.carriers).await?;
    let router = build_router(config, buy_rates)?;
    Ok(Services {
        ledger,
        prompts,
        router,
        routing_version: routing.version,
        recovered_byes: recovered.byes,
        writer_cpu,
    })
}

/// Creates the default tariff from the demo rates and one card, once.
async fn seed_demo(store: &Store, config: &Config) -> anyhow::Result<()> {
    let name = &config.billing.default_tariff;
    if store.tariff_by_name(name).await?.is_some() {
        return Ok(());
    }
    let demo = &config.demo;
    let settings = TariffSettings {
        currency: Currency::new(&demo.currency)?,
        ..TariffSettings::default()
    };
    let now = wall_clock_ms();
    let tariff = store
        .create_tariff(name, &demo.currency, &settings.to_json(), now)
        .await?;
    let options = ImportOptions {
        atomic: true,
        ..ImportOptions::default()
    };
    let imported = store
        .import_tariff_csv(tariff.id, DEMO_TARIFF_CSV.as_bytes(), options)
        .await?;
    let balance = parse_micros(&demo.balance).context("demo.balance")?;
    let pin = if demo.pin.is_empty() {
        generated_pin(store, &demo.currency, balance, tariff.id).await?
    } else {
        let mut card = NewCard::new(Pii::new(demo.pin.clone()), &demo.currency, balance);
        card.tariff_id = Some(tariff.id);
        store.create_card(&card, now).await?;
        demo.pin.clone()
    };
    // Printed once, on purpose: the operator needs it to place the first call.
    println!(
        "Demo card created: PIN {pin}, balance {} {}; tariff {name} with {} rates.",
        demo.balance, demo.currency, imported.rows_written
    );
    info!(tariff = %name, rates = imported.rows_written, "demo tariff and card created");
    Ok(())
}

async fn generated_pin(
    store: &Store,
    currency: &str,
    balance: i64,
    tariff: i64,
) -> anyhow::Result<String> {
    let spec = CardBatchSpec {
        name: "demo".into(),
        count: 1,
        pin_length: 10,
        value_micros: balance,
        currency: currency.into(),
        tariff_id: Some(tariff),
        kind: CardKind::Refillable,
        expiry: ExpiryRule::default(),
        owner_account_id: None,
        activation_fee_micros: 0,
        caller_id_min_balance_micros: 0,
        concurrency_limit: 1,
        reseller_id: None,
    };
    let batch = store.generate_cards(&spec, wall_clock_ms()).await?;
    let pin = batch.pins.first().context("the demo batch is empty")?;
    Ok(pin.expose().clone())
}

/// `[database] writer_cpu`: places the SQLite writer's thread now and returns the CPU for the
/// ledger's thread (placed when it starts). A CPU named that this process may not use stops
/// the start; `auto` that cannot place logs why and leaves the threads to the kernel.
fn place_the_writer(setting: WriterCpu, backend: BackendKind) -> anyhow::Result<Option<usize>> {
    let placed = match setting {
        WriterCpu::Off => return Ok(None),
        WriterCpu::Cpu(cpu) => Some(place_writer_on(cpu).context("[database] writer_cpu")?),
        WriterCpu::Auto => {
            match auto_writer_cpu(backend).and_then(|cpu| cpu.map(place_writer_on).transpose()) {
                Ok(placed) => placed,
                Err(error) => {
                    warn!(%error, "[database] writer_cpu = \"auto\": the ledger's threads stay where the kernel puts them");
                    None
                }
            }
        }
    };
    Ok(placed)
}

/// The SQLite writer's thread (if any) on `cpu`; `cpu` again, for the ledger's thread.
fn place_writer_on(cpu: usize) -> Result<usize, crate::placement::PlacementError> {
    let placed = crate::placement::place_threads_named(talktime_store::SQLITE_WRITER_THREAD, cpu)?;
    info!(
        cpu,
        sqlite_writer = placed > 0,
        "the ledger's writes run on one CPU"
    );
    Ok(cpu)
}

/// `auto`: for a SQLite ledger on two CPUs or more, one of them, chosen by the process id so
/// that switches sharing a machine spread over its CPUs; otherwise none.
fn auto_writer_cpu(
    backend: BackendKind,
) -> Result<Option<usize>, crate::placement::PlacementError> {
    if backend != BackendKind::Sqlite {
        return Ok(None);
    }
    let cpus = crate::placement::allowed_cpus()?;
    if cpus.len() < 2 {
        return Ok(None);
    }
    let index = usize::try_from(std::process::id()).unwrap_or(0) % cpus.len();
    Ok(cpus.get(index).copied())
}

/// Every language with a grammar under the prompts directory (`<dir>/<code>/language.toml`);
/// with none, the built-in English and Spanish. A grammar that does not load stops the start.
pub fn load_languages(dir: &Path) -> anyhow::Result<Arc<LanguageBook>> {
    let mut grammars = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the prompts directory {}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path().join("language.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let code = entry.file_name().to_string_lossy().into_owned();
        let language = Language::from_code(&code)
            .with_context(|| format!("{}: {code:?} is not a language code", path.display()))?;
        grammars.push(Grammar::from_toml(language, &text)?);
    }
    if grammars.is_empty() {
        warn!(dir = %dir.display(), "no language.toml under the prompts directory; English and Spanish are built in");
        return Ok(LanguageBook::builtin());
    }
    let book = LanguageBook::new(grammars);
    info!(languages = ?book.languages(), "languages loaded");
    Ok(Arc::new(book))
}

/// The languages under the prompts directory (each directory with a `language.toml`), by
/// code: where the console lists and uploads prompts.
pub fn prompt_languages(dir: &Path) -> Vec<Language> {
    let mut languages: Vec<Language> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.path().join("language.toml").is_file())
                .filter_map(|entry| Language::from_code(&entry.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    languages.sort();
    languages
}

/// Each access number's languages have a grammar and distinct menu keys.
fn check_access_languages(config: &Config) -> anyhow::Result<()> {
    config
        .ivr
        .check_languages(&config.languages)
        .context("[ivr] languages")?;
    for access in &config.access_numbers {
        config
            .ivr_for(access)
            .check_languages(&config.languages)
            .with_context(|| format!("access number {}", access.number))?;
    }
    Ok(())
}

/// Loads `<dir>/<language>/*.wav|mp3` for every language, keyed `en/welcome`.
pub fn load_prompts(dir: &Path, languages: &LanguageBook) -> anyhow::Result<PromptCache> {
    let mut cache = PromptCache::new();
    for language in languages.languages() {
        let language_dir = dir.join(language.code());
        let entries = match std::fs::read_dir(&language_dir) {
            Ok(entries) => entries,
            Err(error) => {
                warn!(dir = %language_dir.display(), %error, "no prompts for this language");
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_audio = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("wav") || e.eq_ignore_ascii_case("mp3"));
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if !is_audio {
                continue;
            }
            let bytes = std::fs::read(&path)
                .with_context(|| format!("cannot read prompt {}", path.display()))?;
            let name = format!("{}/{stem}", language.code());
            cache
                .load(&name, &bytes)
                .with_context(|| format!("prompt {} is not usable audio", path.display()))?;
        }
    }
    if cache.is_empty() {
        anyhow::bail!("no prompts found under {}", dir.display());
    }
    info!(prompts = cache.len(), "prompts loaded");
    Ok(cache)
}

/// Each carrier's buy-rate deck, from the ledger tariff it names (a missing tariff is logged
/// and left out). Also used by `talktime routes explain`.
pub async fn buy_rate_decks(
    store: &Store,
    carriers: &[CarrierConfig],
) -> anyhow::Result<HashMap<String, Arc<RateDeck>>> {
    let mut decks = HashMap::new();
    for carrier in carriers {
        let Some(tariff_name) = &carrier.buy_tariff else {
            continue;
        };
        let Some(tariff) = store.tariff_by_name(tariff_name).await? else {
            warn!(carrier = %carrier.name, tariff = %tariff_name, "buy tariff not found");
            continue;
        };
        let deck = load_deck(store, tariff.id).await?;
        decks.insert(carrier.name.clone(), Arc::new(deck));
    }
    Ok(decks)
}

/// Resolves every carrier's host once at start-up (DNS must not block the core later).
pub fn resolve_carriers(carriers: &[CarrierConfig]) -> HashMap<String, SocketAddr> {
    let mut resolved = HashMap::new();
    for carrier in carriers {
        match (carrier.host.as_str(), carrier.port).to_socket_addrs() {
            Ok(mut addresses) => {
                if let Some(address) = addresses.next() {
                    resolved.insert(carrier.name.clone(), address);
                }
            }
            Err(error) => warn!(carrier = %carrier.name, %error, "cannot resolve carrier host"),
        }
    }
    resolved
}

/// Builds the router from the configuration and the carriers' buy-rate decks.
pub fn build_router(
    config: &Config,
    buy_rates: HashMap<String, Arc<RateDeck>>,
) -> anyhow::Result<Router> {
    Router::new(
        config.carriers.clone(),
        config.dial_plans.clone(),
        buy_rates,
        Instant::now(),
    )
    .map_err(|errors| anyhow::anyhow!("invalid routing configuration: {errors}"))
}
