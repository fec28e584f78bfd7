//! Ledger throughput: authorize+settle round trips per second and a 100,000-row tariff
//! import, on SQLite and PostgreSQL. Run with `cargo bench -p talktime-store --bench ledger`.
//! PostgreSQL must be reachable (TALKTIME_TEST_POSTGRES_URL, default 127.0.0.1:5432/test).

#![allow(clippy::unwrap_used)] // tests may unwrap

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use talktime_store::{Decision, ImportOptions, Payer, Store};

const NOW: i64 = 1_700_000_000_000;
static CALLS: AtomicU64 = AtomicU64::new(0);

/// The ledgers compared: SQLite with group commit (the default), SQLite with one COMMIT per
/// write transaction (before issue 19), PostgreSQL.
#[derive(Clone, Copy)]
enum Ledger {
    Sqlite,
    SqliteCommitEach,
    Postgres,
}

async fn open(ledger: Ledger) -> common::TestDb {
    match ledger {
        Ledger::Sqlite => common::TestDb::sqlite().await,
        Ledger::SqliteCommitEach => {
            let options = talktime_store::StoreOptions {
                sqlite_group_commit: false,
                ..common::test_options()
            };
            common::TestDb::sqlite_with(&options).await
        }
        Ledger::Postgres => common::TestDb::postgres().await,
    }
}

async fn round_trip(store: &Store, account_id: i64) {
    let call_id = format!("bench-{}", CALLS.fetch_add(1, Ordering::Relaxed));
    store
        .authorize(&call_id, Payer::Account(account_id), NOW, |_| {
            Ok(Decision::new(1_000_000, 60_000))
        })
        .await
        .expect("authorize");
    store
        .settle(&call_id, 12_345, &[], NOW)
        .await
        .expect("settle");
}

async fn funded_account(store: &Store) -> i64 {
    common::uncapped_account(store, "bench", "EUR", 1_000_000_000_000_000, NOW).await
}

fn authorize_settle(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = criterion.benchmark_group("authorize_settle");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(8));
    let ledgers = [
        ("sqlite", Ledger::Sqlite),
        ("sqlite_commit_each", Ledger::SqliteCommitEach),
        ("postgres", Ledger::Postgres),
    ];
    for (name, ledger) in ledgers {
        let database = runtime.block_on(open(ledger));
        let account_id = runtime.block_on(funded_account(&database.store));
        let store = database.store.clone();
        group.bench_function(format!("{name}/sequential"), |bencher| {
            bencher.iter_custom(|iterations| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iterations {
                        round_trip(&store, account_id).await;
                    }
                    start.elapsed()
                })
            });
        });
        // Calls in flight at once, each on its own account, as on a busy switch.
        for in_flight in [8_u64, 64] {
            concurrent(&mut group, &runtime, &store, name, in_flight);
        }
        if let Some((groups, members)) = store.write_groups() {
            println!("{name}: {members} write transactions in {groups} commits");
        }
        runtime.block_on(database.finish());
    }
    group.finish();
}

fn concurrent(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    name: &str,
    in_flight: u64,
) {
    let accounts: Vec<i64> = runtime.block_on(async {
        let mut accounts = Vec::new();
        for _ in 0..in_flight {
            accounts.push(funded_account(store).await);
        }
        accounts
    });
    group.bench_function(format!("{name}/{in_flight}_concurrent"), |bencher| {
        bencher.iter_custom(|iterations| {
            runtime.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = accounts
                    .iter()
                    .enumerate()
                    .map(|(index, &account)| {
                        let store = store.clone();
                        let share = iterations / in_flight
                            + u64::from((index as u64) < iterations % in_flight);
                        tokio::spawn(async move {
                            for _ in 0..share {
                                round_trip(&store, account).await;
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("task");
                }
                start.elapsed()
            })
        });
    });
}

fn tariff_csv(rows: usize) -> String {
    let mut text = String::from(
        "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n",
    );
    for index in 0..rows {
        text.push_str(&format!(
            "{},Destination {index},0.{:04},0.{:04},60,60,0.01\n",
            1_000_000 + index,
            index % 10_000,
            index % 5_000
        ));
    }
    text
}

fn tariff_import(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let csv_text = tariff_csv(100_000);
    let mut group = criterion.benchmark_group("tariff_import_100k");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    let ledgers = [
        ("sqlite", Ledger::Sqlite),
        ("sqlite_commit_each", Ledger::SqliteCommitEach),
        ("postgres", Ledger::Postgres),
    ];
    for (name, ledger) in ledgers {
        let database = runtime.block_on(open(ledger));
        let store = database.store.clone();
        let tariffs = AtomicU64::new(0);
        group.bench_function(name, |bencher| {
            bencher.iter_custom(|iterations| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        let tariff_name = format!("t{}", tariffs.fetch_add(1, Ordering::Relaxed));
                        let tariff = store
                            .create_tariff(&tariff_name, "EUR", "{}", NOW)
                            .await
                            .expect("tariff");
                        let start = Instant::now();
                        let report = store
                            .import_tariff_csv(
                                tariff.id,
                                csv_text.as_bytes(),
                                ImportOptions::default(),
                            )
                            .await
                            .expect("import");
                        total += start.elapsed();
                        assert_eq!(report.rows_written, 100_000);
                    }
                    total
                })
            });
        });
        runtime.block_on(database.finish());
    }
    group.finish();
}

/// A PIN of the lookup bench's cards: 10 digits, spread over the space.
fn bench_pin(index: u64) -> talktime_pii::Pii<String> {
    talktime_pii::Pii::new(format!("{:010}", index * 7_919 + 1_000_003))
}

/// `card_by_pin` among 10,000 cards: the IVR's PIN check (issue 18 keeps PINs as keyed
/// hashes; this is the figure that must stay within 10 % of the plain-PIN lookup).
fn card_lookup(criterion: &mut Criterion) {
    const CARDS: u64 = 10_000;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = criterion.benchmark_group("card_lookup");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(6));
    let ledgers = [
        ("sqlite", Ledger::Sqlite),
        ("sqlite_commit_each", Ledger::SqliteCommitEach),
        ("postgres", Ledger::Postgres),
    ];
    for (name, ledger) in ledgers {
        let database = runtime.block_on(open(ledger));
        let store = database.store.clone();
        runtime.block_on(async {
            for index in 0..CARDS {
                let card = talktime_store::NewCard::new(bench_pin(index), "EUR", 1_000_000);
                store.create_card(&card, NOW).await.expect("card");
            }
        });
        let next = AtomicU64::new(0);
        group.bench_function(name, |bencher| {
            bencher.iter_custom(|iterations| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iterations {
                        // A scattered order (7,727 is prime to 10,000): callers' PINs come in no
                        // order, and walking the index in order would flatter plain PINs.
                        let index = next.fetch_add(1, Ordering::Relaxed) * 7_727 % CARDS;
                        let card = store.card_by_pin(&bench_pin(index)).await.expect("lookup");
                        assert!(card.is_some());
                    }
                    start.elapsed()
                })
            });
        });
        runtime.block_on(database.finish());
    }
    group.finish();
}

criterion_group!(benches, authorize_settle, tariff_import, card_lookup);
criterion_main!(benches);
