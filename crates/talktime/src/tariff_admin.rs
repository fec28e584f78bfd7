//! Tariffs as operators handle them: settings and taxes in a TOML file, rates in a CSV with
//! every per-destination column (docs/TARIFFS.md), an export that imports back to the same
//! tariff.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use talktime_billing::{
    Currency, DestinationPolicy, DurationRounding, IncrementAnchor, RATE_EXTRA_COLUMNS, RateExtras,
    TariffSettings, Tax, TaxKind,
};
use talktime_store::{Store, TARIFF_CSV_COLUMNS, Tariff, format_micros};

/// A tariff's settings as written in a TOML file: every key optional (a missing one keeps
/// the tariff's value), unknown keys refused. Amounts are decimal text (`"0.39"`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decimal_places: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_rounding: Option<DurationRounding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub increment_anchor: Option<IncrementAnchor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toll_free_surcharge_per_minute: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_call_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dial_plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refuse_loss_making_routes: Option<bool>,
    /// Replaces the tariff's taxes when present (an empty list removes them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taxes: Option<Vec<TaxEntry>>,
    /// Replaces the tariff's destination lists when present (`[destinations]` with `allowed`
    /// and `denied` prefixes; see docs/TARIFFS.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destinations: Option<DestinationPolicy>,
}

/// One tax: `percent` or `fixed` (not both), applied in file order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<Decimal>,
    /// Computed on the subtotal plus the taxes before it.
    #[serde(default)]
    pub compound: bool,
}

impl TaxEntry {
    pub fn to_tax(&self) -> anyhow::Result<Tax> {
        let kind = match (self.percent, self.fixed) {
            (Some(percent), None) => TaxKind::Percent(percent),
            (None, Some(fixed)) => TaxKind::Fixed(fixed),
            _ => bail!("tax {:?}: give either percent or fixed", self.name),
        };
        Ok(Tax {
            name: self.name.clone(),
            kind,
            compound: self.compound,
        })
    }

    fn from_tax(tax: &Tax) -> TaxEntry {
        let (percent, fixed) = match tax.kind {
            TaxKind::Percent(percent) => (Some(percent), None),
            TaxKind::Fixed(fixed) => (None, Some(fixed)),
        };
        TaxEntry {
            name: tax.name.clone(),
            percent,
            fixed,
            compound: tax.compound,
        }
    }
}

impl SettingsFile {
    /// Reads a settings file; an unknown key or a bad value names itself.
    pub fn read(path: &Path) -> anyhow::Result<SettingsFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
    }

    /// Every setting of a tariff, for printing.
    pub fn from_settings(settings: &TariffSettings) -> SettingsFile {
        SettingsFile {
            currency: Some(settings.currency.as_str().to_owned()),
            decimal_places: Some(settings.decimal_places),
            duration_rounding: Some(settings.duration_rounding),
            increment_anchor: Some(settings.increment_anchor),
            grace_seconds: Some(settings.grace_seconds),
            toll_free_surcharge_per_minute: Some(settings.toll_free_surcharge_per_minute),
            max_call_seconds: Some(settings.max_call_seconds),
            dial_plan: settings.dial_plan.clone(),
            refuse_loss_making_routes: Some(settings.refuse_loss_making_routes),
            taxes: Some(settings.taxes.iter().map(TaxEntry::from_tax).collect()),
            destinations: (!settings.destinations.is_empty())
                .then(|| settings.destinations.clone()),
        }
    }

    /// `settings` with this file's keys applied, validated.
    pub fn apply(&self, mut settings: TariffSettings) -> anyhow::Result<TariffSettings> {
        if let Some(code) = &self.currency {
            settings.currency = Currency::new(code)?;
        }
        settings.decimal_places = self.decimal_places.unwrap_or(settings.decimal_places);
        settings.duration_rounding = self.duration_rounding.unwrap_or(settings.duration_rounding);
        settings.increment_anchor = self.increment_anchor.unwrap_or(settings.increment_anchor);
        settings.grace_seconds = self.grace_seconds.unwrap_or(settings.grace_seconds);
        settings.toll_free_surcharge_per_minute = self
            .toll_free_surcharge_per_minute
            .unwrap_or(settings.toll_free_surcharge_per_minute);
        settings.max_call_seconds = self.max_call_seconds.unwrap_or(settings.max_call_seconds);
        if let Some(plan) = &self.dial_plan {
            settings.dial_plan = (!plan.is_empty()).then(|| plan.clone());
        }
        settings.refuse_loss_making_routes = self
            .refuse_loss_making_routes
            .unwrap_or(settings.refuse_loss_making_routes);
        if let Some(taxes) = &self.taxes {
            settings.taxes = taxes
                .iter()
                .map(TaxEntry::to_tax)
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(destinations) = &self.destinations {
            settings.destinations = destinations.clone();
        }
        settings.validate()?;
        Ok(settings)
    }
}

pub fn settings_of(tariff: &Tariff) -> anyhow::Result<TariffSettings> {
    TariffSettings::from_json(&tariff.settings_json)
        .with_context(|| format!("tariff {} has unreadable settings", tariff.name))
}

/// Applies a settings file to a stored tariff; nothing is written if it is wrong. A tariff's
/// currency is fixed at creation: a file naming another one is refused.
pub async fn replace_settings(store: &Store, tariff: &Tariff, path: &Path) -> anyhow::Result<()> {
    let file = SettingsFile::read(path)?;
    apply_settings(store, tariff, &file).await.map(|_| ())
}

/// [`replace_settings`] with the file's text (the console's settings form).
pub async fn replace_settings_text(
    store: &Store,
    tariff: &Tariff,
    text: &str,
) -> anyhow::Result<TariffSettings> {
    let file: SettingsFile = toml::from_str(text).context("the settings are not valid")?;
    apply_settings(store, tariff, &file).await
}

async fn apply_settings(
    store: &Store,
    tariff: &Tariff,
    file: &SettingsFile,
) -> anyhow::Result<TariffSettings> {
    let settings = file.apply(settings_of(tariff)?)?;
    if settings.currency.as_str() != tariff.currency {
        bail!(
            "tariff {} is in {}; its currency cannot become {}",
            tariff.name,
            tariff.currency,
            settings.currency.as_str()
        );
    }
    store
        .set_tariff_settings(tariff.id, &settings.to_json())
        .await?;
    Ok(settings)
}

/// The settings as TOML, as `tariffs settings NAME` prints them.
pub fn settings_toml(settings: &TariffSettings) -> anyhow::Result<String> {
    Ok(toml::to_string(&SettingsFile::from_settings(settings))?)
}

/// Writes every rate of a tariff as CSV: the seven columns, then the optional ones present in
/// any row. `tariffs import` reads it back to the same tariff.
pub async fn export_rates(
    store: &Store,
    tariff: &Tariff,
    out: impl Write,
) -> anyhow::Result<usize> {
    let rates = store.rates(tariff.id).await?;
    write_rates(&rates, out)
}

/// How [`derive`] makes a tariff from another.
#[derive(Debug, Clone, Copy)]
pub struct Derivation {
    /// Percent over the base's sell rate (what a buyer at the base tariff pays).
    pub margin_percent: i64,
    /// New first block and increment, seconds (`None`: the base's).
    pub blocks: Option<(i64, i64)>,
}

/// `micros` raised by `percent`, rounded half up to the micro-unit.
fn with_margin(micros: i64, percent: i64) -> i64 {
    let raised = (i128::from(micros) * i128::from(100 + percent) + 50) / 100;
    i64::try_from(raised).unwrap_or(i64::MAX)
}

/// A new tariff from `base` (seed 002, tip 3: "a tariff table with 40 % margin and 60/60
/// billing"): each rate's buy price is the base's sell price (what the one who buys at the
/// base pays), its sell price and connection fee that plus the margin, with the base's
/// settings, extras and, unless given, billing blocks. Written all or nothing.
pub async fn derive(
    store: &Store,
    base: &Tariff,
    name: &str,
    how: Derivation,
    now_ms: i64,
) -> anyhow::Result<(Tariff, usize)> {
    if !(0..=1000).contains(&how.margin_percent) {
        anyhow::bail!("a margin is 0-1000 percent");
    }
    if let Some((initial, increment)) = how.blocks
        && (initial < 1 || increment < 1)
    {
        anyhow::bail!("billing blocks are at least one second");
    }
    if store.tariff_by_name(name).await?.is_some() {
        anyhow::bail!("a tariff named {name} exists");
    }
    let rates: Vec<talktime_store::Rate> = store
        .rates(base.id)
        .await?
        .into_iter()
        .map(|mut rate| {
            rate.buy_rate_micros = rate.sell_rate_micros;
            rate.sell_rate_micros = with_margin(rate.sell_rate_micros, how.margin_percent);
            rate.connection_fee_micros =
                with_margin(rate.connection_fee_micros, how.margin_percent);
            if let Some((initial, increment)) = how.blocks {
                rate.initial_block_s = initial;
                rate.increment_s = increment;
            }
            rate
        })
        .collect();
    let mut csv = Vec::new();
    write_rates(&rates, &mut csv)?;
    let created = store
        .create_tariff(name, &base.currency, &base.settings_json, now_ms)
        .await?;
    let options = talktime_store::ImportOptions {
        atomic: true,
        ..talktime_store::ImportOptions::default()
    };
    let report = store
        .import_tariff_csv_with(
            created.id,
            csv.as_slice(),
            options,
            Some(&crate::ledger::rate_extras_columns()),
        )
        .await?;
    if let Some(error) = report.errors.first() {
        anyhow::bail!("rate {}: {}", error.line, error.message);
    }
    Ok((created, rates.len()))
}

fn write_rates(rates: &[talktime_store::Rate], mut out: impl Write) -> anyhow::Result<usize> {
    let mut extras = Vec::with_capacity(rates.len());
    for rate in rates {
        let parsed: RateExtras = serde_json::from_str(&rate.extras_json)
            .with_context(|| format!("rate {}: unreadable extras", rate.prefix))?;
        extras.push(parsed.to_columns());
    }
    let used: Vec<usize> = (0..RATE_EXTRA_COLUMNS.len())
        .filter(|column| extras.iter().any(|cells| !cells[*column].is_empty()))
        .collect();
    let mut header: Vec<&str> = TARIFF_CSV_COLUMNS.to_vec();
    header.extend(used.iter().map(|column| RATE_EXTRA_COLUMNS[*column]));
    writeln!(out, "{}", header.join(","))?;
    for (rate, cells) in rates.iter().zip(&extras) {
        let mut row = vec![
            rate.prefix.clone(),
            rate.description.clone(),
            format_micros(rate.sell_rate_micros),
            format_micros(rate.buy_rate_micros),
            rate.initial_block_s.to_string(),
            rate.increment_s.to_string(),
            format_micros(rate.connection_fee_micros),
        ];
        row.extend(used.iter().map(|column| cells[*column].clone()));
        let quoted: Vec<String> = row.iter().map(|cell| csv_cell(cell)).collect();
        writeln!(out, "{}", quoted.join(","))?;
    }
    Ok(rates.len())
}

/// A CSV cell, quoted when it holds a comma, a quote or a line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
