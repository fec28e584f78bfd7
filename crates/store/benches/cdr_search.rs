//! The console's CDR search over 1,000,000 CDRs (issue 15: a page in under 100 ms of server
//! time), on SQLite and PostgreSQL: the newest page, a deep page, and pages filtered by
//! carrier, account, cause and destination prefix. The rows are made by one INSERT ... SELECT
//! in each database (a million single inserts would take minutes).
//! Run with `cargo bench -p talktime-store --bench cdr_search`.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use talktime_store::{CdrCursor, CdrFilter, NewAccount};

const ROWS: i64 = 1_000_000;
const FIRST_START_MS: i64 = 1_790_000_000_000;
/// A call every 2.5 s: a million of them span about 29 days.
const SPACING_MS: i64 = 2_500;

/// Every column of a generated CDR, as SQL over the row number `i`; `{account}` is the one
/// account that pays every 1,000th call (the others are NULL: no foreign key to satisfy).
const SELECT_ROW: &str = "'bench-' || i, 1, \
     CASE WHEN i % 1000 = 0 THEN {account} ELSE NULL END, NULL, NULL, '100', \
     '44' || (7000000000 + i * 7919 % 1000000000), \
     CASE i % 4 WHEN 0 THEN 'alpha' WHEN 1 THEN 'beta' WHEN 2 THEN 'gamma' ELSE 'delta' END, \
     {first} + i * {spacing}, {first} + i * {spacing} + 3000, {first} + i * {spacing} + 93000, \
     120, '[]', '[]', 0, 120000, 60000, 200, 16, 'caller', \
     CASE WHEN i % 997 = 0 THEN 'operator' ELSE 'caller_hung_up' END, {first}";

const COLUMNS: &str = "call_id, attempt, account_id, card_id, caller_id, access_number, \
     destination, carrier, start_ms, answer_ms, end_ms, billed_seconds, fees_json, taxes_json, \
     tax_micros, total_micros, buy_cost_micros, sip_code, q850_cause, hangup_by, \
     disconnect_cause, created_at_ms";

fn insert_sql(postgres: bool, account: i64) -> String {
    let select = SELECT_ROW
        .replace("{account}", &account.to_string())
        .replace("{first}", &FIRST_START_MS.to_string())
        .replace("{spacing}", &SPACING_MS.to_string());
    if postgres {
        format!(
            "INSERT INTO cdrs ({COLUMNS}) SELECT {select} FROM generate_series(CAST(0 AS BIGINT), {}) AS i",
            ROWS - 1
        )
    } else {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
             INSERT INTO cdrs ({COLUMNS}) SELECT {select} FROM n",
            ROWS - 1
        )
    }
}

async fn fill(database: &common::TestDb, postgres: bool) -> i64 {
    let account = database
        .store
        .create_account(&NewAccount::new("bench", "EUR"), FIRST_START_MS)
        .await
        .unwrap()
        .id;
    let sql = insert_sql(postgres, account);
    if postgres {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&database.url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut connection)
            .await
            .unwrap();
        sqlx::query("ANALYZE cdrs")
            .execute(&mut connection)
            .await
            .unwrap();
    } else {
        use sqlx::Connection;
        let file = std::path::Path::new(&database.url).join(talktime_store::SQLITE_FILE_NAME);
        let mut connection =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
                .await
                .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut connection)
            .await
            .unwrap();
        sqlx::query("ANALYZE")
            .execute(&mut connection)
            .await
            .unwrap();
    }
    account
}

fn whole_range() -> CdrFilter {
    CdrFilter {
        from_ms: 0,
        to_ms: i64::MAX,
        ..CdrFilter::default()
    }
}

fn cdr_search(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = criterion.benchmark_group("cdr_search");
    group.measurement_time(Duration::from_secs(5));
    group.sample_size(20);
    for (name, postgres) in [("sqlite", false), ("postgres", true)] {
        let database = runtime.block_on(async {
            if postgres {
                common::TestDb::postgres().await
            } else {
                common::TestDb::sqlite().await
            }
        });
        let account = runtime.block_on(fill(&database, postgres));
        let store = database.store.clone();
        let middle = CdrCursor {
            start_ms: FIRST_START_MS + ROWS / 2 * SPACING_MS,
            id: ROWS / 2,
        };
        let cases: Vec<(&str, CdrFilter, Option<CdrCursor>)> = vec![
            ("newest", whole_range(), None),
            ("deep_page", whole_range(), Some(middle)),
            (
                "carrier",
                CdrFilter {
                    carrier: Some("gamma".into()),
                    ..whole_range()
                },
                None,
            ),
            (
                "account",
                CdrFilter {
                    account_id: Some(account),
                    ..whole_range()
                },
                None,
            ),
            (
                "cause_operator",
                CdrFilter {
                    cause: Some("operator".into()),
                    ..whole_range()
                },
                None,
            ),
            (
                "destination_prefix",
                CdrFilter {
                    destination_prefix: Some("447123".into()),
                    ..whole_range()
                },
                None,
            ),
            (
                "one_day_carrier",
                CdrFilter {
                    from_ms: FIRST_START_MS + 10 * 86_400_000,
                    to_ms: FIRST_START_MS + 11 * 86_400_000,
                    carrier: Some("beta".into()),
                    ..CdrFilter::default()
                },
                None,
            ),
        ];
        for (case, filter, before) in cases {
            group.bench_function(format!("{name}/{case}"), |bencher| {
                bencher.iter(|| {
                    runtime.block_on(async {
                        let rows = store.search_cdrs(&filter, before, 100).await.unwrap();
                        assert!(!rows.is_empty(), "{case}");
                    })
                });
            });
        }
        runtime.block_on(database.finish());
    }
    group.finish();
}

criterion_group!(benches, cdr_search);
criterion_main!(benches);
