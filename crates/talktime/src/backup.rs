//! `talktime backup FILE` and `talktime restore FILE` (issue 18): an online, consistent copy of
//! the ledger while the switch runs, and its restore into an empty ledger, checked (integrity
//! and every balance against its transactions). SQLite: `VACUUM INTO` a file, checked on a
//! scratch copy before it is put in place. PostgreSQL (`--database-url`): `pg_dump`'s
//! custom format (one snapshot, so consistent), restored with `pg_restore` into an empty
//! database, then checked.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use talktime_store::{
    LedgerSummary, PIN_KEY_FILE_NAME, PinKey, SQLITE_FILE_NAME, Store, StoreOptions,
};

/// Where the ledger is and the backup file.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Data directory holding the embedded SQLite ledger (and the PIN key).
    #[arg(long = "data-dir", default_value = "data")]
    data_dir: PathBuf,
    /// A PostgreSQL ledger (`postgres://...`, `options[search_path]=SCHEMA` for a schema)
    /// instead of the data directory's SQLite file.
    #[arg(long = "database-url")]
    database_url: Option<String>,
    /// The backup file (must not exist yet for `backup`).
    file: PathBuf,
}

fn ledger_file(data_dir: &Path) -> PathBuf {
    data_dir.join(SQLITE_FILE_NAME)
}

/// The data directory's PIN key (or `TALKTIME_PIN_KEY`); never created here: a backup is
/// only readable with the key its PINs were hashed with.
fn existing_key(data_dir: &Path) -> anyhow::Result<PinKey> {
    let file = data_dir.join(PIN_KEY_FILE_NAME);
    crate::startup::pin_key(&file, false).with_context(|| {
        format!(
            "the ledger's PIN key is needed: copy the source's {PIN_KEY_FILE_NAME} to {} or set \
             {}",
            file.display(),
            talktime_store::PIN_KEY_ENV
        )
    })
}

async fn open_with_key(location: &str, key: &PinKey) -> anyhow::Result<Store> {
    let options = StoreOptions {
        pin_key: Some(key.clone()),
        postgres_pipeline: false,
        ..StoreOptions::default()
    };
    Ok(Store::open_with(location, &options).await?)
}

fn describe(summary: &LedgerSummary) -> String {
    format!(
        "{} accounts, {} cards, {} transactions, {} CDRs, balances {}",
        summary.accounts,
        summary.cards,
        summary.transactions,
        summary.cdrs,
        talktime_store::format_micros(summary.balance_micros)
    )
}

/// Copies the running ledger into `file` (created 0600) and prints what it holds.
pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(url) = &args.database_url {
        return backup_postgres(url, &args).await;
    }
    let source = ledger_file(&args.data_dir);
    if !source.exists() {
        bail!("no ledger at {}", source.display());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.file)
        .with_context(|| format!("cannot create {} (it must not exist)", args.file.display()))?;
    let key = existing_key(&args.data_dir)?;
    let store = open_with_key(&args.data_dir.display().to_string(), &key).await?;
    if let Err(error) = store.backup_sqlite_into(&args.file).await {
        let _ = std::fs::remove_file(&args.file);
        return Err(error).context("backup failed");
    }
    let copy = open_file(&args.file, &key).await?;
    println!(
        "backup {}: {}",
        args.file.display(),
        describe(&copy.summary().await?)
    );
    eprintln!(
        "the PIN key is not in the backup (on purpose): keep {} apart from it",
        args.data_dir.join(PIN_KEY_FILE_NAME).display()
    );
    Ok(())
}

async fn open_file(file: &Path, key: &PinKey) -> anyhow::Result<Store> {
    open_with_key(&format!("sqlite://{}", file.display()), key)
        .await
        .with_context(|| {
            format!(
                "{} is not a Talktime ledger of this PIN key",
                file.display()
            )
        })
}

/// Puts a backup in place of an empty ledger, after checking it.
pub async fn restore(args: BackupArgs) -> anyhow::Result<()> {
    std::fs::File::open(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    if let Some(url) = &args.database_url {
        return restore_postgres(url, &args).await;
    }
    let target = ledger_file(&args.data_dir);
    let key = existing_key(&args.data_dir)?;
    if target.exists() {
        let existing = open_with_key(&args.data_dir.display().to_string(), &key).await?;
        if !existing.is_empty_ledger().await? {
            bail!(
                "{} holds accounts, cards, tariffs or CDRs: a restore goes into an empty ledger",
                target.display()
            );
        }
        existing.close().await;
    }
    // Checked on a scratch copy first: a damaged backup changes nothing.
    let scratch = args.data_dir.join(format!("{SQLITE_FILE_NAME}.restoring"));
    talktime_store::create_private_dir(&args.data_dir)?;
    std::fs::copy(&args.file, &scratch)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let checked = check(&scratch, &key).await;
    let summary = match checked {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(&scratch);
            return Err(error);
        }
    };
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    std::fs::rename(&scratch, &target)?;
    println!("restored into {}: {}", target.display(), describe(&summary));
    Ok(())
}

async fn check(file: &Path, key: &PinKey) -> anyhow::Result<LedgerSummary> {
    let store = open_file(file, key).await?;
    let mismatches = store.check_balances().await?;
    if !mismatches.is_empty() {
        bail!(
            "the backup's balances do not match its transactions for {} accounts",
            mismatches.len()
        );
    }
    let summary = store.summary().await?;
    store.close().await;
    Ok(summary)
}

/// A sqlx PostgreSQL URL as libpq's tools take it: sqlx's `options[search_path]=S` is not
/// libpq's, so it is taken out and returned as the schema to dump.
fn libpq_url(url: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut parsed = url::Url::parse(url).context("--database-url is not a URL")?;
    let mut schema = None;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(name, value)| {
            if name == "options[search_path]" {
                schema = Some(value.into_owned());
                None
            } else {
                Some((name.into_owned(), value.into_owned()))
            }
        })
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((parsed.into(), schema))
}

/// Runs a PostgreSQL client tool; its own message when it fails.
fn run_tool(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program} (postgresql-client)"))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr);
        let first = message.lines().next().unwrap_or("failed");
        bail!("{program}: {}", without_password(first));
    }
    Ok(())
}

/// A tool's message with any `user:password@` it echoes hidden.
fn without_password(text: &str) -> String {
    text.split_whitespace()
        .map(talktime_b2bua::config::redact_url_password)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn backup_postgres(url: &str, args: &BackupArgs) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let (libpq, schema) = libpq_url(url)?;
    // Created 0600 first: pg_dump writes into it and keeps its mode.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.file)
        .with_context(|| format!("cannot create {} (it must not exist)", args.file.display()))?;
    let file = args.file.display().to_string();
    let mut dump = vec!["--format=custom", "--no-owner", "--file", &file];
    if let Some(schema) = &schema {
        dump.extend(["--schema", schema]);
    }
    dump.push(&libpq);
    if let Err(error) = run_tool("pg_dump", &dump) {
        let _ = std::fs::remove_file(&args.file);
        return Err(error.context("backup failed"));
    }
    println!("backup {}: pg_dump of {}", file, redact(url));
    eprintln!("the PIN key is not in the backup (on purpose): keep it apart from it");
    Ok(())
}

fn redact(url: &str) -> String {
    talktime_b2bua::config::redact_url_password(url)
}

async fn restore_postgres(url: &str, args: &BackupArgs) -> anyhow::Result<()> {
    let key = existing_key(&args.data_dir)?;
    let (libpq, _) = libpq_url(url)?;
    let file = args.file.display().to_string();
    run_tool(
        "pg_restore",
        &["--no-owner", "--exit-on-error", "--dbname", &libpq, &file],
    )
    .context("restore failed (a restore goes into an empty database)")?;
    let store = open_with_key(url, &key)
        .await
        .context("the restored database is not a Talktime ledger of this PIN key")?;
    let mismatches = store.check_balances().await?;
    if !mismatches.is_empty() {
        bail!(
            "the restored balances do not match their transactions for {} accounts",
            mismatches.len()
        );
    }
    let summary = store.summary().await?;
    store.close().await;
    println!("restored into {}: {}", redact(url), describe(&summary));
    Ok(())
}

/// Starts the scheduled backups of `[backup]` (SQLite only; nothing when `every_s` is 0).
pub fn spawn_scheduled(config: &talktime_b2bua::config::Config, store: Store) {
    let schedule = &config.backup;
    if schedule.every_s == 0 || store.kind() != talktime_store::BackendKind::Sqlite {
        return;
    }
    let dir = if schedule.dir.is_absolute() {
        schedule.dir.clone()
    } else {
        config.paths.data_dir.join(&schedule.dir)
    };
    let every = std::time::Duration::from_secs(schedule.every_s);
    let keep = schedule.keep.max(1);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match scheduled_copy(&store, &dir, keep).await {
                Ok(file) => tracing::info!(file = %file.display(), "ledger backed up"),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "scheduled backup failed")
                }
            }
        }
    });
}

/// One scheduled copy, named by its time (sortable), and the oldest beyond `keep` removed.
async fn scheduled_copy(store: &Store, dir: &Path, keep: usize) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    talktime_store::create_private_dir(dir)?;
    let name = format!("talktime-{}.sqlite3", crate::server::wall_clock_ms());
    let file = dir.join(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)?;
    if let Err(error) = store.backup_sqlite_into(&file).await {
        let _ = std::fs::remove_file(&file);
        return Err(error.into());
    }
    let mut copies: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("talktime-") && name.ends_with(".sqlite3"))
        })
        .collect();
    copies.sort();
    let excess = copies.len().saturating_sub(keep);
    for old in copies.iter().take(excess) {
        let _ = std::fs::remove_file(old);
    }
    Ok(file)
}
