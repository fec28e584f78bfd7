//! Test databases: a temp-dir SQLite file or a fresh PostgreSQL schema, dropped at the end.
//! `ledger_test!` runs one body against both.
#![allow(dead_code)]

use std::path::PathBuf;

use rand::RngExt;
use talktime_store::{Store, StoreOptions};

/// PostgreSQL used by the tests; CI starts it. Override with TALKTIME_TEST_POSTGRES_URL.
pub fn postgres_admin_url() -> String {
    std::env::var("TALKTIME_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn random_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let suffix: String = (0..12)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect();
    format!("{prefix}_{suffix}")
}

/// The PIN key of every test store (a PostgreSQL store needs one given).
pub fn test_pin_key() -> talktime_store::PinKey {
    talktime_store::PinKey::from_hex(&"5a".repeat(32)).unwrap()
}

/// An account that may take any number of calls at once, holding `balance_micros` of credit
/// (one recharge); its id.
pub async fn uncapped_account(
    store: &Store,
    name: &str,
    currency: &str,
    balance_micros: i64,
    now_ms: i64,
) -> i64 {
    let mut account = talktime_store::NewAccount::new(name, currency);
    account.concurrency_limit = 0;
    let account = store.create_account(&account, now_ms).await.unwrap();
    store
        .recharge(account.id, balance_micros, None, now_ms)
        .await
        .unwrap();
    account.id
}

pub fn test_options() -> StoreOptions {
    StoreOptions {
        max_connections: 16,
        pin_key: Some(test_pin_key()),
        ..StoreOptions::default()
    }
}

enum Place {
    Directory(PathBuf),
    Schema(String),
}

/// A store on its own database, removed when finished (or dropped after a panic).
pub struct TestDb {
    pub store: Store,
    pub url: String,
    place: Place,
    finished: bool,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        TestDb::sqlite_with(&test_options()).await
    }

    /// A SQLite store opened with `options` (the PIN key of [`test_options`] or another).
    pub async fn sqlite_with(options: &StoreOptions) -> TestDb {
        let directory = std::env::temp_dir().join(random_name("talktime_store"));
        let url = directory.to_string_lossy().into_owned();
        let store = Store::open_with(&url, options)
            .await
            .expect("open SQLite store");
        TestDb {
            store,
            url,
            place: Place::Directory(directory),
            finished: false,
        }
    }

    pub async fn postgres() -> TestDb {
        let admin = postgres_admin_url();
        let schema = random_name("t");
        let mut connection = connect_admin(&admin).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut connection)
            .await
            .expect("create test schema");
        let separator = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{separator}options[search_path]={schema}");
        let store = Store::open_with(&url, &test_options())
            .await
            .expect("open PostgreSQL store");
        TestDb {
            store,
            url,
            place: Place::Schema(schema),
            finished: false,
        }
    }

    pub async fn finish(mut self) {
        self.store.close().await;
        match &self.place {
            Place::Directory(directory) => {
                let _ = std::fs::remove_dir_all(directory);
            }
            Place::Schema(schema) => drop_schema(schema).await,
        }
        self.finished = true;
    }
}

async fn connect_admin(admin: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    match sqlx::PgConnection::connect(admin).await {
        Ok(connection) => connection,
        Err(error) => panic!(
            "PostgreSQL is required for the ledger tests and is not reachable at {admin}: \
             {error}. Start it (CI does) or set TALKTIME_TEST_POSTGRES_URL."
        ),
    }
}

async fn drop_schema(schema: &str) {
    let mut connection = connect_admin(&postgres_admin_url()).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&mut connection)
    .await
    .expect("drop test schema");
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        match &self.place {
            Place::Directory(directory) => {
                let _ = std::fs::remove_dir_all(directory);
            }
            Place::Schema(schema) => {
                // A panicking test: clean up from a thread with its own runtime.
                let schema = schema.clone();
                let _ = std::thread::spawn(move || {
                    if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        runtime.block_on(drop_schema(&schema));
                    }
                })
                .join();
            }
        }
    }
}

/// `ledger_test!(name, |store| { ... })` defines `name::sqlite` and `name::postgres`, each
/// running the body with `store: &Store` on a fresh database.
#[macro_export]
macro_rules! ledger_test {
    ($name:ident, |$store:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let database = $crate::common::TestDb::sqlite().await;
                {
                    let $store: &talktime_store::Store = &database.store;
                    $body
                }
                database.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let database = $crate::common::TestDb::postgres().await;
                {
                    let $store: &talktime_store::Store = &database.store;
                    $body
                }
                database.finish().await;
            }
        }
    };
}
