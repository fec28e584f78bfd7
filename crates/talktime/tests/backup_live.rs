//! `talktime backup` while SIPp calls are being billed, and `talktime restore` of it into an
//! empty ledger (issue 18): the restored ledger holds what the backup said it held, every
//! balance equals the sum of its transactions, a second restore over it and a damaged backup
//! are refused.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::calls::start;
use common::prepaid::{self, ConfigFile};
use common::scenario::BackgroundSipp;
use common::{scenario, tail};

const CALLS: usize = 60;

fn talktime(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_backup_taken_during_load_restores_consistent_and_whole() {
    let dir = prepaid::data_dir("backup");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let csv = common::calls::pinless_accounts(&dir, 20, "77700", "1555100");
    let carrier = BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-m", &CALLS.to_string()],
    );
    let switch = start(&dir, common::calls::forwarding_load_config(&carrier));
    let caller = common::calls::pinless_load(&switch, &dir, &csv, CALLS, 20, 1000);
    // Half-way through the load.
    std::thread::sleep(Duration::from_secs(3));
    let file = dir.with_extension("backup.sqlite3");
    let _ = std::fs::remove_file(&file);
    let backup = talktime(&[
        "backup",
        file.to_str().unwrap(),
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(backup.status.success(), "{}", text(&backup));
    let said = String::from_utf8_lossy(&backup.stdout).into_owned();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(
        caller.finish(Duration::from_secs(60)).success(),
        "{}",
        tail(&switch.log_text(), 20)
    );
    assert!(carrier.finish(Duration::from_secs(10)).success());
    let final_cdrs = prepaid::runtime()
        .block_on(prepaid::open(&dir).summary())
        .unwrap()
        .cdrs;
    assert_eq!(final_cdrs, CALLS as i64);

    let restored_dir = dir.with_extension("restored");
    let _ = std::fs::remove_dir_all(&restored_dir);
    // The PIN key is not in the backup: without it the restore says what is missing.
    let keyless = talktime(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        restored_dir.to_str().unwrap(),
    ]);
    assert!(!keyless.status.success());
    assert!(text(&keyless).contains("pin.key"), "{}", text(&keyless));
    copy_pin_key(&dir, &restored_dir);
    let restore = talktime(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        restored_dir.to_str().unwrap(),
    ]);
    assert!(restore.status.success(), "{}", text(&restore));
    let restored = prepaid::open(&restored_dir);
    let summary = prepaid::runtime().block_on(restored.summary()).unwrap();
    // What the backup said it held is what the restore holds: taken mid-load, it has some
    // of the calls and not all.
    let described = said.split_once(": ").unwrap().1.trim().to_owned();
    assert!(
        String::from_utf8_lossy(&restore.stdout).contains(&described),
        "{said} vs {}",
        text(&restore)
    );
    assert_eq!(summary.accounts, 20);
    assert!(summary.cdrs > 0 && summary.cdrs < final_cdrs, "{summary:?}");
    assert!(
        prepaid::runtime()
            .block_on(restored.check_balances())
            .unwrap()
            .is_empty()
    );

    // Over a ledger that holds something: refused.
    let again = talktime(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        restored_dir.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(text(&again).contains("empty ledger"), "{}", text(&again));
    // A damaged backup: refused, nothing left behind.
    let damaged = dir.with_extension("damaged.sqlite3");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() / 3]).unwrap();
    let empty_dir = dir.with_extension("empty");
    let _ = std::fs::remove_dir_all(&empty_dir);
    copy_pin_key(&dir, &empty_dir);
    let refused = talktime(&[
        "restore",
        damaged.to_str().unwrap(),
        "--data-dir",
        empty_dir.to_str().unwrap(),
    ]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(!text(&refused).contains("pin.key"), "{}", text(&refused));
    assert!(!empty_dir.join("talktime.sqlite3").exists());
}

/// Copies the source's PIN key (0600, as the operator would) into a new data directory.
fn copy_pin_key(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("pin.key"), to.join("pin.key")).unwrap();
}

/// Scheduled backups (`[backup] every_s`): the running switch writes a copy a second, keeps
/// the newest two, and each restores.
#[test]
fn scheduled_backups_are_taken_pruned_and_restorable() {
    let dir = prepaid::data_dir("scheduled-backup");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    prepaid::card(&dir, "6660001111", 2_000_000, 0);
    let switch = start(
        &dir,
        ConfigFile::new().raw("[backup]\nevery_s = 1\nkeep = 2\n"),
    );
    let backups = dir.join("backups");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let copies = loop {
        let log = switch.log_text();
        let taken = log.matches("ledger backed up").count();
        if taken >= 4 || std::time::Instant::now() > deadline {
            let mut copies: Vec<_> = std::fs::read_dir(&backups)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .collect();
            copies.sort();
            break copies;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        copies.len(),
        2,
        "{copies:?}\n{}",
        tail(&switch.log_text(), 10)
    );
    for (index, copy) in copies.iter().enumerate() {
        let target = dir.with_extension(format!("scheduled-restore-{index}"));
        let _ = std::fs::remove_dir_all(&target);
        copy_pin_key(&dir, &target);
        let restore = talktime(&[
            "restore",
            copy.to_str().unwrap(),
            "--data-dir",
            target.to_str().unwrap(),
        ]);
        assert!(restore.status.success(), "{}", text(&restore));
        assert!(String::from_utf8_lossy(&restore.stdout).contains("1 accounts, 1 cards"));
        // The restored card's PIN authenticates with the copied key.
        let restored = prepaid::open(&target);
        let card = prepaid::runtime()
            .block_on(restored.card_by_pin(&talktime_pii::Pii::new("6660001111".into())))
            .unwrap();
        assert!(card.is_some());
    }
}

/// Runs psql's query on `url` (its `options[search_path]` given through PGOPTIONS) and
/// returns the rows, `|`-separated.
fn psql(url: &str, query: &str) -> String {
    let (base, schema) = url.split_once("?options[search_path]=").unwrap();
    let output = Command::new("psql")
        .args([base, "-At", "-c", query])
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The PostgreSQL ledger (`--database-url`): `pg_dump` taken during load, restored with
/// `pg_restore` into an empty database; each restored balance is the source's at the
/// backup's point (the sum of the source's transactions up to the last one restored).
#[test]
fn a_postgresql_backup_taken_during_load_restores_the_ledger_at_that_point() {
    let url = prepaid::postgres_schema("backup");
    let dir = prepaid::data_dir("backup-postgres");
    prepaid::use_database(&dir, &url);
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let csv = common::calls::pinless_accounts(&dir, 20, "77800", "1555200");
    let carrier = BackgroundSipp::uas(
        90,
        &scenario("carrier_answer.xml"),
        &["-m", &CALLS.to_string()],
    );
    let config = common::calls::forwarding_load_config(&carrier)
        .raw(&format!("[database]\nurl = \"{url}\"\n"));
    let switch = start(&dir, config);
    let caller = common::calls::pinless_load(&switch, &dir, &csv, CALLS, 20, 1000);
    std::thread::sleep(Duration::from_secs(3));
    let file = dir.with_extension("backup.pgdump");
    let _ = std::fs::remove_file(&file);
    let backup = talktime(&[
        "backup",
        file.to_str().unwrap(),
        "--database-url",
        &url,
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(backup.status.success(), "{}", text(&backup));
    assert!(caller.finish(Duration::from_secs(60)).success());
    assert!(carrier.finish(Duration::from_secs(10)).success());
    drop(switch);

    let (admin, schema) = url.split_once("?options[search_path]=").unwrap();
    let database = format!("tt_restore_{}_{}", std::process::id(), common::free_port());
    let create = Command::new("psql")
        .args([admin, "-q", "-c", &format!("CREATE DATABASE {database}")])
        .output()
        .unwrap();
    assert!(create.status.success(), "{}", text(&create));
    let base = admin.rsplit_once('/').unwrap().0;
    let target = format!("{base}/{database}?options[search_path]={schema}");
    let restore = talktime(&[
        "restore",
        file.to_str().unwrap(),
        "--database-url",
        &target,
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(restore.status.success(), "{}", text(&restore));
    // A second restore over it is refused.
    let again = talktime(&[
        "restore",
        file.to_str().unwrap(),
        "--database-url",
        &target,
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(!again.status.success(), "{}", text(&again));

    let restored_cdrs: i64 = psql(&target, "SELECT COUNT(*) FROM cdrs").parse().unwrap();
    assert!(
        restored_cdrs > 0 && restored_cdrs < CALLS as i64,
        "taken mid-load: {restored_cdrs} CDRs\n{}",
        text(&restore)
    );
    let last: i64 = psql(&target, "SELECT MAX(id) FROM transactions")
        .parse()
        .unwrap();
    let balances = "SELECT id, balance_micros FROM accounts ORDER BY id";
    let at_point = format!(
        "SELECT a.id, COALESCE(SUM(t.amount_micros), 0) FROM accounts a \
         LEFT JOIN transactions t ON t.account_id = a.id AND t.id <= {last} \
         GROUP BY a.id ORDER BY a.id"
    );
    assert_eq!(psql(&target, balances), psql(&url, &at_point));
    let cdrs_at_point = format!(
        "SELECT COUNT(*) FROM cdrs WHERE call_id IN (SELECT call_id FROM transactions \
         WHERE id <= {last} AND call_id IS NOT NULL)"
    );
    assert_eq!(
        psql(&url, &cdrs_at_point).parse::<i64>().unwrap(),
        restored_cdrs
    );
    let _ = Command::new("psql")
        .args([admin, "-q", "-c", &format!("DROP DATABASE {database}")])
        .output();
}
