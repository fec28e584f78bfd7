//! A call's writes through the store against the bare statements (issue 19): the same prepaid
//! call's writes (authorize, answer checkpoint, settle with a charge) through the store and
//! through rusqlite on the calling thread with the store's own SQL, on the same database
//! file, one call after another. Prints wall time and the process's CPU a call. Run with
//! `cargo bench -p talktime-store --bench sync_writer`.
//!
//! Until 2026-12-04 the store ran these through sqlx, each statement a hand-off to sqlx's
//! connection thread and back (about 0.55 ms of CPU a call here, against 0.08 ms bare); this
//! bench priced that, and the store now runs a call's writes on its own rusqlite connection
//! on the calling thread (`exec.rs`). The difference left is the store's own work (the group
//! commit, the locked reads and checks around the statements).
//!
//! The rusqlite side runs the store's own SQL for a plain account (no reseller, plan, card or
//! balance alert); it is a yardstick, not a second ledger.

#![allow(clippy::unwrap_used)] // benchmarks may unwrap

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use talktime_store::{Decision, Payer, SQLITE_FILE_NAME, Store};

const NOW: i64 = 1_700_000_000_000;
const CALLS: u64 = 4_000;
/// Calls a transaction in the grouped rusqlite run (each call's writes in a SAVEPOINT), as
/// the store's group commit makes them under load.
const GROUP: u64 = 32;
/// Call ids are unique over the whole run.
static NEXT_CALL: AtomicU64 = AtomicU64::new(0);

fn next_call_id(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_CALL.fetch_add(1, Ordering::Relaxed))
}

/// The process's CPU time so far (user + system), from `/proc/self/stat` (in USER_HZ ticks,
/// 100 a second on Linux).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn report(name: &str, calls: u64, wall: Duration, cpu: Duration) {
    let per_call = |total: Duration| total.as_secs_f64() * 1e6 / calls as f64;
    println!(
        "{name:<34} {calls} calls: {:8.1} µs wall, {:8.1} µs CPU a call ({:.0} calls/s)",
        per_call(wall),
        per_call(cpu),
        calls as f64 / wall.as_secs_f64()
    );
}

async fn funded_account(store: &Store) -> i64 {
    common::uncapped_account(store, "bench", "EUR", 1_000_000_000_000_000, NOW).await
}

async fn through_the_store(store: &Store, account_id: i64) {
    let started = (Instant::now(), process_cpu());
    for _ in 0..CALLS {
        let call_id = next_call_id("store");
        store
            .authorize(&call_id, Payer::Account(account_id), NOW, |_| {
                Ok(Decision::new(1_000_000, 60_000))
            })
            .await
            .unwrap();
        store.checkpoint_answer(&call_id, NOW, "{}").await.unwrap();
        store.settle(&call_id, 12_345, &[], NOW).await.unwrap();
    }
    report(
        "the store",
        CALLS,
        started.0.elapsed(),
        process_cpu() - started.1,
    );
}

/// One call's three write transactions, as the store's SQLite statements make them.
fn call_on(connection: &Connection, call_id: &str, account_id: i64, savepoints: bool) {
    let (begin, end) = if savepoints {
        ("SAVEPOINT member", "RELEASE member")
    } else {
        ("BEGIN IMMEDIATE", "COMMIT")
    };
    connection.execute_batch(begin).unwrap();
    let (_balance, _reserved): (i64, i64) = connection
        .prepare_cached(
            "SELECT a.balance_micros, \
             (SELECT CAST(COALESCE(SUM(r.amount_micros), 0) AS BIGINT) FROM reservations r \
              WHERE r.state = 'open' AND r.account_id = a.id) \
             + (SELECT CAST(COALESCE(SUM(r.amount_micros), 0) AS BIGINT) FROM reservations r \
              WHERE r.state = 'open' AND r.owner_account_id = a.id), \
             (SELECT COUNT(*) FROM reservations r WHERE r.state = 'open' AND r.account_id = a.id) \
             FROM accounts a WHERE a.id = ?1",
        )
        .unwrap()
        .query_row(params![account_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap();
    connection
        .prepare_cached(
            "INSERT INTO reservations (call_id, account_id, owner_account_id, card_id, \
             amount_micros, max_duration_ms, state, created_at_ms, node_id) \
             VALUES (?1, ?2, NULL, NULL, ?3, ?4, 'open', ?5, '') \
             ON CONFLICT (call_id) DO NOTHING RETURNING id",
        )
        .unwrap()
        .query_row(
            params![call_id, account_id, 1_000_000, 60_000, NOW],
            |row| row.get::<_, i64>(0),
        )
        .unwrap();
    connection.execute_batch(end).unwrap();

    connection.execute_batch(begin).unwrap();
    connection
        .prepare_cached(
            "UPDATE reservations SET answered_at_ms = ?2, checkpoint = ?3 \
             WHERE call_id = ?1 AND state = 'open'",
        )
        .unwrap()
        .execute(params![call_id, NOW, "{}"])
        .unwrap();
    connection.execute_batch(end).unwrap();

    connection.execute_batch(begin).unwrap();
    connection
        .prepare_cached(
            "UPDATE reservations SET state = 'settled', charged_micros = ?2, closed_at_ms = ?3 \
             WHERE call_id = ?1 AND state = 'open' RETURNING account_id, owner_account_id, \
             CAST(CASE WHEN EXISTS (SELECT 1 FROM reservation_levels l \
               WHERE l.call_id = ?1 AND l.is_open = 1) THEN 1 ELSE 0 END AS BIGINT)",
        )
        .unwrap()
        .query_row(params![call_id, 12_345, NOW], |row| row.get::<_, i64>(0))
        .unwrap();
    let balance: i64 = connection
        .prepare_cached(
            "UPDATE accounts SET balance_micros = balance_micros + ?1 WHERE id = ?2 \
             RETURNING balance_micros",
        )
        .unwrap()
        .query_row(params![-12_345, account_id], |row| row.get(0))
        .unwrap();
    connection
        .prepare_cached(
            "INSERT INTO transactions (account_id, kind, amount_micros, balance_after_micros, \
             call_id, reference, idempotency_key, created_at_ms) \
             VALUES (?1, 'call_charge', ?2, ?3, ?4, NULL, NULL, ?5) RETURNING id",
        )
        .unwrap()
        .query_row(params![account_id, -12_345, balance, call_id, NOW], |row| {
            row.get::<_, i64>(0)
        })
        .unwrap();
    connection.execute_batch(end).unwrap();
}

fn on_the_calling_thread(file: &std::path::Path, account_id: i64, grouped: bool) {
    let connection = Connection::open(file).unwrap();
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
             PRAGMA wal_autocheckpoint = 8192; PRAGMA cache_size = -16384;",
        )
        .unwrap();
    let prefix = if grouped { "grouped" } else { "alone" };
    let started = (Instant::now(), process_cpu());
    for call in 0..CALLS {
        if grouped && call % GROUP == 0 {
            connection.execute_batch("BEGIN IMMEDIATE").unwrap();
        }
        call_on(&connection, &next_call_id(prefix), account_id, grouped);
        if grouped && (call % GROUP == GROUP - 1 || call == CALLS - 1) {
            connection.execute_batch("COMMIT").unwrap();
        }
    }
    let name = if grouped {
        "rusqlite, 32 calls a COMMIT"
    } else {
        "rusqlite, a COMMIT a write"
    };
    report(name, CALLS, started.0.elapsed(), process_cpu() - started.1);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(common::TestDb::sqlite());
    let account_id = runtime.block_on(funded_account(&database.store));
    let file = std::path::Path::new(&database.url).join(SQLITE_FILE_NAME);
    // Each way twice, alternated, after a warm-up of each.
    runtime.block_on(through_the_store(&database.store, account_id));
    on_the_calling_thread(&file, account_id, false);
    println!("-- measured:");
    for _ in 0..2 {
        runtime.block_on(through_the_store(&database.store, account_id));
        on_the_calling_thread(&file, account_id, false);
        on_the_calling_thread(&file, account_id, true);
    }
    let balances = runtime.block_on(database.store.check_balances()).unwrap();
    assert!(balances.is_empty(), "balances disagree: {balances:?}");
    runtime.block_on(database.finish());
}
