//! The billing vocabulary through the operator CLI (issue 13): every optional rate column and
//! tariff setting, taxes, an activation fee on a card batch, and `talktime rate --pin` pricing
//! a call as that card would pay it now, each with its expected total, billed seconds and
//! maximum talk time.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn talktime(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .expect("run talktime")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn failed(output: Output) -> String {
    assert!(!output.status.success(), "the command must fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("talktime-tariffs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `talktime rate` as JSON.
fn rate(data: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["rate"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(talktime(data, &all))).unwrap()
}

/// The call's total as an exact decimal (its text keeps the scale the arithmetic left).
fn total(report: &serde_json::Value) -> rust_decimal::Decimal {
    report["charge"]["total"]["amount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn money(text: &str) -> rust_decimal::Decimal {
    text.parse().unwrap()
}

fn billed(report: &serde_json::Value) -> u64 {
    report["charge"]["billed_seconds"].as_u64().unwrap()
}

fn limit_ms(report: &serde_json::Value) -> u64 {
    report["max_talk_time"]["limit_ms"].as_u64().unwrap()
}

/// Seed 000: "activation 0.39 + connection 0.39 + 27 minutes at 0.08 = 2.94" for a 25-minute
/// call in 3-minute increments, priced for a card from a batch with that activation fee.
#[test]
fn seed_000_costs_2_94_on_a_new_card_and_2_55_once_it_is_used() {
    let dir = scratch("seed000");
    let data = dir.join("data");
    let rates = write(
        &dir,
        "rates.csv",
        "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n\
         91,India,0.08,0.02,180,180,0.39\n",
    );
    ok(talktime(
        &data,
        &["tariffs", "import", "--tariff", "cards", &rates],
    ));
    let batch = dir.join("cards.csv");
    let batch_arg = batch.to_str().unwrap();
    ok(talktime(
        &data,
        &[
            "cards",
            "generate",
            "--name",
            "seed000",
            "--count",
            "1",
            "--value",
            "5.00",
            "--tariff",
            "cards",
            "--activation-fee",
            "0.39",
            "--output",
            batch_arg,
        ],
    ));
    let csv = std::fs::read_to_string(&batch).unwrap();
    let pin = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_owned();

    let report = rate(&data, &["--pin", &pin, "919876543210", "--seconds", "1500"]);
    assert_eq!(total(&report), money("2.9400"));
    assert_eq!(billed(&report), 1620, "27 minutes");
    assert_eq!(report["charge"]["account_fees"][0]["name"], "activation");
    // 5.00 pays the activation once and 51 minutes: 0.39 + 0.39 + 17 x 0.24 = 4.86.
    assert_eq!(limit_ms(&report), 3_060_000);

    // The same call priced by tariff alone (no card): no activation.
    let plain = rate(
        &data,
        &["--tariff", "cards", "919876543210", "--seconds", "1500"],
    );
    assert_eq!(total(&plain), money("2.5500"));
}

#[test]
fn every_optional_rate_column_is_rated_and_exports_back_to_the_same_tariff() {
    let dir = scratch("columns");
    let data = dir.join("data");
    let rates = write(
        &dir,
        "rates.csv",
        "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee,\
         minimum_cost,disconnect_fee,disconnect_fee_threshold_s,disconnect_fee_applies,\
         disconnect_factor_percent,disconnect_factor_min_s,shrink_percent,valid_from,\
         valid_until,steps,periods\n\
         44,UK,0.60,0.30,60,60,0,0.50,,,,,,,,,,\n\
         49,Germany,0.60,0.30,1,1,0,,0.05,30,shorter_than,,,,,,,\n\
         33,France,0.60,0.30,1,1,0,,,,,10,60,,,,,\n\
         34,Spain,0.60,0.30,1,1,0,,,,,,,80,,,,\n\
         39,Italy,0.60,0.30,1,1,0,,,,,,,,2026-01-01,2026-06-30,,\n\
         41,Switzerland,0.60,0.30,1,1,0,,,,,,,,,,60:0.30;120:50%,\n\
         43,Austria,0.60,0.30,1,1,0,,,,,,,,,,,\"mon-fri 08:00-18:00=1.20/0.40\"\n",
    );
    ok(talktime(
        &data,
        &["tariffs", "import", "--tariff", "eu", &rates],
    ));
    let at_noon = ["--tariff", "eu", "--at", "2026-03-04T12:00:00"];
    let priced = |number: &str, seconds: &str| {
        let mut args = at_noon.to_vec();
        args.extend_from_slice(&[number, "--seconds", seconds]);
        rate(&data, &args)
    };
    // A 10 s call on a 60/60 rate bills the minute, 0.60, above the 0.50 minimum (the
    // minimum's top-up has its own test below).
    assert_eq!(total(&priced("447700900123", "10")), money("0.6000"));
    // Disconnect fee for calls shorter than 30 s: 10 s at 0.01/s + 0.05.
    assert_eq!(total(&priced("4930123456", "10")), money("0.1500"));
    assert_eq!(total(&priced("4930123456", "40")), money("0.4000"));
    // Disconnect factor +10 % on calls of at least 60 s: 60 s = 0.60 + 0.06.
    assert_eq!(total(&priced("33123456789", "60")), money("0.6600"));
    assert_eq!(total(&priced("33123456789", "59")), money("0.5900"));
    // Shrinking: 10.00 buys 1,000 s; the caller is told 1,000 / 80 % = 1,250 s.
    let spain = rate(
        &data,
        &[
            "--tariff",
            "eu",
            "34123456789",
            "--seconds",
            "60",
            "--balance",
            "10.00",
        ],
    );
    assert_eq!(limit_ms(&spain), 1_000_000);
    assert_eq!(spain["max_talk_time"]["announced_ms"], 1_250_000);
    // Validity: Italy's rate is valid in the first half of 2026 only.
    assert_eq!(total(&priced("39061234567", "60")), money("0.6000"));
    let after = talktime(
        &data,
        &[
            "rate",
            "--tariff",
            "eu",
            "--at",
            "2026-07-01T12:00:00",
            "39061234567",
        ],
    );
    assert!(
        failed(after).contains("no rate matches"),
        "no rate after valid_until"
    );
    // Steps: 0.60 for the first minute, 0.30 for the second, 50 % (0.30) after.
    assert_eq!(total(&priced("41441234567", "180")), money("1.2000"));
    // Periods: 1.20 on a weekday at noon, the base 0.60 on Saturday.
    assert_eq!(total(&priced("43123456789", "60")), money("1.2000"));
    let saturday = rate(
        &data,
        &[
            "--tariff",
            "eu",
            "--at",
            "2026-03-07T12:00:00",
            "43123456789",
            "--seconds",
            "60",
        ],
    );
    assert_eq!(total(&saturday), money("0.6000"));

    // Export, import into a new tariff, export again: the same file.
    let first = ok(talktime(&data, &["tariffs", "export", "eu"]));
    let copy = write(&dir, "copy.csv", &first);
    ok(talktime(
        &data,
        &["tariffs", "import", "--tariff", "eu2", &copy],
    ));
    let second = ok(talktime(&data, &["tariffs", "export", "eu2"]));
    assert_eq!(first, second);
    assert!(first.starts_with(
        "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee,minimum_cost,"
    ));
}

#[test]
fn a_minimum_cost_tops_up_a_short_call() {
    let dir = scratch("minimum");
    let data = dir.join("data");
    let rates = write(
        &dir,
        "rates.csv",
        "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee,minimum_cost\n\
         1,USA,0.06,0.03,1,1,0,0.10\n",
    );
    ok(talktime(
        &data,
        &["tariffs", "import", "--tariff", "us", &rates],
    ));
    let report = rate(&data, &["--tariff", "us", "15551234567", "--seconds", "30"]);
    assert_eq!(
        total(&report),
        money("0.1000"),
        "30 s is 0.03, topped up to 0.10"
    );
    assert_eq!(billed(&report), 30);
}

#[test]
fn settings_and_taxes_from_a_toml_file_are_printed_applied_and_validated() {
    let dir = scratch("settings");
    let data = dir.join("data");
    let rates = write(
        &dir,
        "rates.csv",
        "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n\
         44,UK,0.60,0.30,30,60,0\n",
    );
    let settings = write(
        &dir,
        "settings.toml",
        "increment_anchor = \"from_call_start\"\ngrace_seconds = 5\ndecimal_places = 2\n\
         toll_free_surcharge_per_minute = \"0.06\"\n\
         [[taxes]]\nname = \"VAT\"\npercent = \"20\"\n\
         [[taxes]]\nname = \"levy\"\nfixed = \"0.01\"\n",
    );
    ok(talktime(
        &data,
        &[
            "tariffs",
            "import",
            "--tariff",
            "uk",
            "--settings",
            &settings,
            &rates,
        ],
    ));
    let printed = ok(talktime(&data, &["tariffs", "settings", "uk"]));
    assert!(
        printed.contains("increment_anchor = \"from_call_start\""),
        "{printed}"
    );
    assert!(printed.contains("name = \"VAT\""), "{printed}");
    let uk = |seconds: &str, extra: &[&str]| {
        let mut args = vec!["--tariff", "uk", "447700900123", "--seconds", seconds];
        args.extend_from_slice(extra);
        rate(&data, &args)
    };
    // 45 s anchored at the call's start bills 60 s: 0.60, +20 % VAT, +0.01 levy = 0.73.
    let call = uk("45", &[]);
    assert_eq!(billed(&call), 60);
    assert_eq!(total(&call), money("0.73"));
    // Within the 5 s grace: free, no taxes.
    assert_eq!(total(&uk("4", &[])), money("0"));
    // Toll-free: +0.06 a minute before tax: (0.60 + 0.06) x 1.2 + 0.01 = 0.80.
    assert_eq!(total(&uk("45", &["--toll-free"])), money("0.80"));

    // A bad key or value: a clear error, and the settings stay as they were.
    let bad_key = write(&dir, "bad.toml", "grace = 3\n");
    let error = failed(talktime(
        &data,
        &["tariffs", "settings", "uk", "--settings", &bad_key],
    ));
    assert!(error.contains("unknown field `grace`"), "{error}");
    let bad_tax = write(
        &dir,
        "tax.toml",
        "[[taxes]]\nname = \"VAT\"\npercent = \"150\"\n",
    );
    let error = failed(talktime(
        &data,
        &["tariffs", "settings", "uk", "--settings", &bad_tax],
    ));
    assert!(error.contains("150"), "{error}");
    assert_eq!(ok(talktime(&data, &["tariffs", "settings", "uk"])), printed);
}

#[test]
fn an_unknown_or_bad_optional_column_is_refused_by_name() {
    let dir = scratch("unknown");
    let data = dir.join("data");
    let unknown = write(
        &dir,
        "unknown.csv",
        "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee,colour\n\
         1,USA,0.06,0.03,1,1,0,red\n",
    );
    let error = failed(talktime(
        &data,
        &["tariffs", "import", "--tariff", "x", &unknown],
    ));
    assert!(error.contains("unknown column \"colour\""), "{error}");
    let bad = write(
        &dir,
        "bad.csv",
        "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee,shrink_percent\n\
         1,USA,0.06,0.03,1,1,0,150\n",
    );
    let error = failed(talktime(
        &data,
        &["tariffs", "import", "--tariff", "x", &bad],
    ));
    assert!(
        error.contains("line 2") && error.contains("shrink"),
        "{error}"
    );
}

#[test]
fn a_batch_in_another_currency_than_its_tariff_is_refused_when_it_is_made() {
    let dir = scratch("currency");
    let data = dir.join("data");
    let rates = write(
        &dir,
        "rates.csv",
        "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n\
         44,UK,0.10,0.05,60,60,0\n",
    );
    ok(talktime(
        &data,
        &[
            "tariffs",
            "import",
            "--tariff",
            "uk",
            "--currency",
            "GBP",
            &rates,
        ],
    ));
    let error = failed(talktime(
        &data,
        &[
            "cards",
            "generate",
            "--name",
            "b",
            "--count",
            "1",
            "--value",
            "5",
            "--tariff",
            "uk",
            "--currency",
            "EUR",
        ],
    ));
    assert!(
        error.contains("the cards are in EUR but tariff uk is in GBP"),
        "{error}"
    );
    ok(talktime(
        &data,
        &[
            "cards",
            "generate",
            "--name",
            "b",
            "--count",
            "1",
            "--value",
            "5",
            "--tariff",
            "uk",
            "--currency",
            "GBP",
        ],
    ));
}

#[test]
fn account_limits_and_a_fixed_expiry_date_are_set_from_the_command_line() {
    let dir = scratch("limits");
    let data = dir.join("data");
    let cards = |name: &str, currency: &str, extra: &[&str]| -> Vec<String> {
        let file = dir.join(format!("{name}.csv"));
        let mut args = vec![
            "cards",
            "generate",
            "--name",
            name,
            "--count",
            "1",
            "--value",
            "5",
            "--currency",
            currency,
            "--output",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ok(talktime(&data, &args));
        let csv = std::fs::read_to_string(&file).unwrap();
        csv.lines()
            .nth(1)
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect()
    };
    // card_id,pin,balance,currency,kind,status,expires_at_ms,valid_after_first_use_ms
    let owner = cards("owner", "USD", &[]);
    let card = cards("card", "USD", &["--expires-on", "2027-01-31"]);
    assert_eq!(card[6], "1801440000000", "the end of 2027-01-31 UTC");
    let euro = cards("euro", "EUR", &[]);
    let owner_account = owner[0].clone(); // a card's account id equals its card id here
    ok(talktime(
        &data,
        &[
            "accounts",
            "set",
            "--pin",
            &card[1],
            "--owner-account",
            &owner_account,
            "--caller-id-min-balance",
            "1.00",
            "--concurrency-limit",
            "3",
        ],
    ));
    let error = failed(talktime(
        &data,
        &[
            "accounts",
            "set",
            "--pin",
            &euro[1],
            "--owner-account",
            &owner_account,
        ],
    ));
    assert!(error.contains("is in USD"), "{error}");
    let error = failed(talktime(
        &data,
        &[
            "accounts",
            "set",
            "--pin",
            &card[1],
            "--concurrency-limit=-1",
        ],
    ));
    assert!(error.contains("negative"), "{error}");
    let plan = failed(talktime(
        &data,
        &[
            "accounts",
            "plan",
            "--pin",
            &card[1],
            "--maintenance-fee",
            "0.25",
            "--maintenance-every",
            "30x",
        ],
    ));
    assert!(plan.contains("the unit is d, h, m or s"), "{plan}");
    ok(talktime(
        &data,
        &[
            "accounts",
            "plan",
            "--pin",
            &card[1],
            "--maintenance-fee",
            "0.25",
            "--maintenance-every",
            "30d",
            "--package-seconds",
            "600",
            "--package-prefixes",
            "1",
        ],
    ));
}
