//! The operator subcommands against a real SQLite ledger: tariff import with a row-level
//! error report, the rate simulator's JSON, and card batch generation.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
use std::path::Path;
use std::process::{Command, Output};

fn talktime(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run talktime")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("talktime-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const RATES: &str = "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n\
91,India,0.08,0.05,180,180,0.39\n\
1,USA,0.01,0.005,60,6,0\n\
44,UK,0.x,0.01,60,60,0\n";

fn import(dir: &Path, extra: &[&str]) -> Output {
    let file = dir.join("rates.csv");
    std::fs::write(&file, RATES).unwrap();
    let mut args = vec!["tariffs", "import", "--tariff", "retail"];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    talktime(&dir.join("data"), &args)
}

#[test]
fn tariff_import_reports_the_broken_row_and_keeps_the_good_ones() {
    let dir = scratch("import");
    let output = import(&dir, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a rejected row must fail the command"
    );
    assert!(
        stderr.contains("line 4: sell_rate: not a decimal number: \"0.x\""),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("3 rows read, 2 valid, 2 written"),
        "{stdout}"
    );
}

#[test]
fn dry_run_writes_nothing() {
    let dir = scratch("dry");
    let output = import(&dir, &["--dry-run"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 valid, 0 written"));
    let rate = talktime(&dir.join("data"), &["rate", "--tariff", "retail", "9198"]);
    assert!(
        !rate.status.success(),
        "the dry run must not have created rates"
    );
}

#[test]
fn rate_prints_the_seed_000_example_and_the_talk_time_limit() {
    let dir = scratch("rate");
    import(&dir, &[]);
    // Seed 000: 25 minutes to India at 0.08/min in 3-minute increments with a 0.39
    // connection fee: 27 billed minutes, 2.16 + 0.39 = 2.55 (the seed's 2.94 adds activation).
    let output = talktime(
        &dir.join("data"),
        &[
            "rate",
            "--tariff",
            "retail",
            "919812345678",
            "--seconds",
            "1500",
            "--balance",
            "5",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["destination"]["prefix"], "91");
    assert_eq!(report["charge"]["billed_seconds"], 1620);
    assert_eq!(report["charge"]["total"]["amount"], "2.5500");
    // 5.00 buys 57 minutes (0.39 + 57 x 0.08 = 4.95); 60 minutes would cost 5.19.
    assert_eq!(report["max_talk_time"]["limit_ms"], 3_420_000);
}

#[test]
fn cards_generate_writes_a_csv_of_unique_pins() {
    let dir = scratch("cards");
    import(&dir, &[]);
    let output = talktime(
        &dir.join("data"),
        &[
            "cards",
            "generate",
            "--name",
            "batch 1",
            "--count",
            "25",
            "--value",
            "5.00",
            "--tariff",
            "retail",
            "--disposable",
            "--pin-length",
            "12",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let csv = String::from_utf8(output.stdout).unwrap();
    let pins: std::collections::HashSet<&str> = csv
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(pins.len(), 25);
    assert!(
        pins.iter()
            .all(|pin| pin.len() == 12 && pin.bytes().all(|b| b.is_ascii_digit()))
    );
    assert!(
        csv.lines()
            .skip(1)
            .all(|line| line.contains(",disposable,"))
    );
    // The ledger keeps keyed hashes: no PIN is in its files, the key file is private, and a
    // PIN still finds its card through the CLI.
    let data = dir.join("data");
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("talktime.sqlite3") {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(stored.len() > 10_000);
    for pin in &pins {
        assert!(
            !stored
                .windows(pin.len())
                .any(|window| window == pin.as_bytes()),
            "a PIN is readable in the ledger"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(data.join("pin.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let pin = pins.iter().next().unwrap();
    let shown = talktime(&data, &["accounts", "show", "--pin", pin]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(String::from_utf8_lossy(&shown.stdout).contains("5"));
}

/// `talktime accounts`: an operator finds a card's account by PIN, recharges it, registers a
/// caller ID for pinless access and a DID-forwarding destination, and sees them in `show`.
#[test]
fn accounts_recharge_caller_ids_and_forwarding() {
    let dir = scratch("accounts");
    import(&dir, &[]);
    let data = dir.join("data");
    let generated = talktime(
        &data,
        &[
            "cards", "generate", "--name", "b", "--count", "1", "--value", "2.50",
        ],
    );
    assert!(generated.status.success());
    let csv = String::from_utf8(generated.stdout).unwrap();
    let pin = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_owned();

    let show = |data: &Path| {
        let output = talktime(data, &["accounts", "show", "--pin", &pin]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let before = show(&data);
    assert!(before.contains("balance 2.5"), "{before}");
    assert!(before.contains("forwards to (none)"), "{before}");

    let recharged = talktime(&data, &["accounts", "recharge", "--pin", &pin, "7.50"]);
    assert!(recharged.status.success());
    let added = talktime(
        &data,
        &[
            "accounts",
            "add-caller-id",
            "--pin",
            &pin,
            "+1 555-123-0000",
        ],
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let forward = talktime(
        &data,
        &["accounts", "forward", "--pin", &pin, "00442071234567"],
    );
    assert!(forward.status.success());
    let after = show(&data);
    assert!(after.contains("balance 10"), "{after}");
    assert!(after.contains("forwards to 00442071234567"), "{after}");

    let removed = talktime(&data, &["accounts", "remove-caller-id", "15551230000"]);
    assert!(
        removed.status.success(),
        "the digits-only form was registered"
    );
    let again = talktime(&data, &["accounts", "remove-caller-id", "15551230000"]);
    assert!(!again.status.success(), "it is gone");
    let bad = talktime(&data, &["accounts", "show", "--pin", "000"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no card has this PIN"));
}

/// `talktime config` prints the effective configuration without its secrets (issue 18).
#[test]
fn config_prints_no_secret() {
    let dir = scratch("config-redacted");
    let file = dir.join("secrets.toml");
    std::fs::write(
        &file,
        "[admin]\ntoken = \"admin-token-5f1e\"\n\n[demo]\npin = \"4455667788\"\n\n\
         [database]\nurl = \"postgres://talktime:db-pass-9c2a@127.0.0.1/talktime\"\n\n\
         [radius]\n[[radius.clients]]\naddress = \"192.0.2.1\"\nsecret = \"radius-secret-77\"\n\n\
         [[carriers]]\nname = \"demo\"\nhost = \"192.0.2.2\"\nusername = \"u\"\npassword = \"carrier-pass-3\"\n",
    )
    .unwrap();
    let output = talktime(&dir, &["config", "--config", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("postgres://talktime:<redacted>@127.0.0.1/talktime"),
        "{text}"
    );
    for secret in [
        "admin-token-5f1e",
        "4455667788",
        "db-pass-9c2a",
        "radius-secret-77",
        "carrier-pass-3",
    ] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
}

/// A new ledger is private (issue 18): its directory 0700, its SQLite files 0600.
#[test]
fn a_new_ledger_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("private-ledger").join("data");
    let rates = dir.with_file_name("rates.csv");
    std::fs::write(&rates, RATES.lines().take(2).collect::<Vec<_>>().join("\n")).unwrap();
    let output = talktime(
        &dir,
        &[
            "tariffs",
            "import",
            "--tariff",
            "demo",
            rates.to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("sqlite3") {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

/// A refused command says why on one line, with its causes, and no backtrace even when
/// RUST_BACKTRACE is set (as it often is on a developer's machine).
#[test]
fn a_refusal_is_one_line_without_a_backtrace() {
    let dir = scratch("refusal");
    let output = Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(["restore", "/nonexistent/backup.sqlite3", "--data-dir"])
        .arg(dir.join("data"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("Error: cannot read /nonexistent/backup.sqlite3"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// `talktime ... | head` is how operators look at long output: when `head` has its lines and
/// goes, the command ends quietly with the status of a Unix tool whose reader left (141), not
/// a panic or an error, whether it wrote a stream (`tariffs export`), CSV (`cards generate`)
/// or printed one large text (`vouchers list`).
#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let dir = scratch("closed-pipe");
    let data = dir.join("data");
    let mut rates = String::from(
        "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n",
    );
    for prefix in 1000..21000 {
        rates.push_str(&format!(
            "{prefix},Somewhere long named,0.10,0.05,60,60,0\n"
        ));
    }
    let file = dir.join("rates.csv");
    std::fs::write(&file, rates).unwrap();
    let imported = talktime(
        &data,
        &[
            "tariffs",
            "import",
            "--tariff",
            "big",
            file.to_str().unwrap(),
        ],
    );
    assert!(imported.status.success(), "{imported:?}");
    let vouchers = talktime(
        &data,
        &[
            "vouchers", "generate", "--name", "v", "--count", "1500", "--value", "5.00",
        ],
    );
    assert!(vouchers.status.success(), "{vouchers:?}");
    let binary = env!("CARGO_BIN_EXE_talktime");
    for command in [
        "tariffs export big",
        "cards generate --name b --count 3000 --value 1.00 --tariff big",
        "vouchers list 1",
    ] {
        let script = format!(
            "set -o pipefail; {binary} {command} --data-dir {} 2>{}/err | head -2 >/dev/null",
            data.display(),
            dir.display()
        );
        let status = Command::new("bash").args(["-c", &script]).status().unwrap();
        let stderr = std::fs::read_to_string(dir.join("err")).unwrap();
        assert_eq!(status.code(), Some(141), "{command}: {stderr}");
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
        assert!(!stderr.contains("Error"), "{command}: {stderr}");
    }
}
