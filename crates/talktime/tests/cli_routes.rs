//! `talktime routes explain` against a real SQLite ledger: buy tariffs imported with the CLI,
//! a least-cost route over carriers with different decks, blocked and unknown numbers.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn talktime(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run talktime")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("talktime-routes-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Imports one buy tariff (CSV rows after the header) with `talktime tariffs import`.
fn import(dir: &Path, tariff: &str, rows: &str) {
    let file = dir.join(format!("{tariff}.csv"));
    std::fs::write(
        &file,
        format!(
            "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n{rows}"
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let output = talktime(&[
        "tariffs",
        "import",
        "--tariff",
        tariff,
        "--data-dir",
        data.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
}

/// Four carriers on one least-cost route for UK numbers (listed dearest first, so the order
/// printed can only come from the buy rates): alpha's deck has a UK-mobile rate of 0.09,
/// beta only a UK rate of 0.05, gamma no deck, delta is disabled. Access number 300 uses
/// the plan; national numbers are UK numbers; 44909 is premium rate.
const CONFIG: &str = r#"
[billing]
refuse_loss_making_routes = true

[[access_numbers]]
number = "300"
dial_plan = "lcr"

[[carriers]]
name = "alpha"
host = "127.0.0.1"
port = 5071
buy_tariff = "alpha-buy"
options_interval_ms = 0

[[carriers]]
name = "beta"
host = "127.0.0.1"
port = 5072
buy_tariff = "beta-buy"
strip_digits = 2
add_prefix = "0044"
options_interval_ms = 0

[[carriers]]
name = "gamma"
host = "127.0.0.1"
port = 5073
options_interval_ms = 0

[[carriers]]
name = "delta"
host = "127.0.0.1"
port = 5074
buy_tariff = "alpha-buy"
enabled = false

[[dial_plans]]
name = "lcr"

[[dial_plans.routes]]
prefix = "44"
mode = "least_cost"
carriers = [{ name = "alpha" }, { name = "delta" }, { name = "beta", priority = 1 }, { name = "gamma" }]

[[dial_plans.routes]]
prefix = "44909"
blocked = true

[number_rules]
national_prefix = "0"
country_code = "44"
blocked_prefixes = ["1900"]
"#;

/// A data directory with both buy tariffs and a sell tariff, and the configuration file.
fn ledger(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    import(
        &dir,
        "alpha-buy",
        "44,UK,0.10,0.030,60,60,0\n447,UK mobile,0.20,0.090,60,60,0\n",
    );
    import(&dir, "beta-buy", "44,UK,0.10,0.050,60,60,0\n");
    import(&dir, "retail", "44,UK,0.08,0.01,60,60,0\n");
    let config = dir.join("talktime.toml");
    std::fs::write(&config, CONFIG).unwrap();
    (dir.join("data"), config)
}

fn explain(data: &Path, config: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "routes",
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    talktime(&args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The line of `stdout` that starts (after the indent) with `start`.
fn line<'a>(stdout: &'a str, start: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{stdout}"))
}

fn has_line(stdout: &str, start: &str) -> bool {
    stdout
        .lines()
        .any(|line| line.trim_start().starts_with(start))
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn least_cost_route_orders_carriers_by_their_own_buy_rate_and_says_why_others_are_skipped() {
    let (data, config) = ledger("lcr");
    let output = explain(&data, &config, &["07700 900123", "--access-number", "300"]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(
        stdout.starts_with("dial plan lcr, number 447700900123: route 44, least cost\n"),
        "{stdout}"
    );
    // Beta (0.05 for 44) beats alpha (0.09 for its longer 447 prefix) although alpha is
    // listed first with the better priority.
    let first = words(line(&stdout, "1 "));
    let second = words(line(&stdout, "2 "));
    assert_eq!(
        first[..5],
        [
            "1",
            "beta",
            "127.0.0.1:5072/udp",
            "0.050000",
            "00447700900123"
        ]
    );
    assert_eq!(
        second[..5],
        [
            "2",
            "alpha",
            "127.0.0.1:5071/udp",
            "0.090000",
            "447700900123"
        ]
    );
    // The reason names the deck prefix that matched.
    assert!(
        line(&stdout, "1 ").ends_with("least cost: buy 0.050000/min for 44, priority 1"),
        "{stdout}"
    );
    assert!(
        line(&stdout, "2 ").ends_with("least cost: buy 0.090000/min for 447, priority 0"),
        "{stdout}"
    );
    assert!(
        !has_line(&stdout, "3 "),
        "only two carriers are offered: {stdout}"
    );
    let skipped = &stdout[stdout.find("skipped:").expect("a skipped section")..];
    assert!(line(skipped, "delta").ends_with("disabled"), "{stdout}");
    assert!(
        line(skipped, "gamma").ends_with("no buy rate for this number"),
        "{stdout}"
    );
}

#[test]
fn a_plan_by_name_gives_the_same_order() {
    let (data, config) = ledger("plan");
    let by_access = explain(&data, &config, &["447700900123", "--access-number", "300"]);
    let by_plan = explain(&data, &config, &["+44 7700 900123", "--plan", "lcr"]);
    assert!(by_plan.status.success(), "{}", text(&by_plan.stderr));
    assert_eq!(text(&by_access.stdout), text(&by_plan.stdout));
}

#[test]
fn the_sell_rate_of_a_tariff_skips_loss_making_carriers() {
    let (data, config) = ledger("loss");
    // retail sells UK at 0.08: alpha's 0.09 would lose money.
    let output = explain(
        &data,
        &config,
        &["07700900123", "--plan", "lcr", "--tariff", "retail"],
    );
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert_eq!(words(line(&stdout, "1 "))[1], "beta");
    assert!(!has_line(&stdout, "2 "), "{stdout}");
    let skipped = &stdout[stdout.find("skipped:").unwrap()..];
    assert!(
        line(skipped, "alpha").ends_with("buy 0.090000/min is above sell 0.080000/min"),
        "{stdout}"
    );
}

#[test]
fn blocked_and_unroutable_numbers_fail_with_a_reason() {
    let (data, config) = ledger("blocked");
    // Refused by the number rules before any dial plan is asked.
    let premium = explain(&data, &config, &["0019005550100", "--plan", "lcr"]);
    assert!(!premium.status.success());
    let stderr = text(&premium.stderr);
    assert!(
        stderr.contains("destinations starting 1900 are blocked"),
        "{stderr}"
    );

    // Refused by the dial plan's blocked route: the explanation still says so.
    let route = explain(&data, &config, &["0909 1234567", "--plan", "lcr"]);
    assert!(!route.status.success());
    assert!(
        text(&route.stdout).contains("blocked: calls to 44909 are refused"),
        "{}",
        text(&route.stdout)
    );
    assert!(
        text(&route.stderr).contains("refuses this number"),
        "{}",
        text(&route.stderr)
    );

    // No route for US numbers in this plan.
    let us = explain(&data, &config, &["0015551234567", "--plan", "lcr"]);
    assert!(!us.status.success());
    assert!(
        text(&us.stderr).contains("has no route for this number"),
        "{}",
        text(&us.stderr)
    );

    let unknown_access = explain(&data, &config, &["447700900123", "--access-number", "999"]);
    assert!(!unknown_access.status.success());
    assert!(
        text(&unknown_access.stderr).contains("no access number 999"),
        "{}",
        text(&unknown_access.stderr)
    );

    let unknown_plan = explain(&data, &config, &["447700900123", "--plan", "premium"]);
    assert!(!unknown_plan.status.success());
    assert!(
        text(&unknown_plan.stderr).contains("no dial plan named premium (configured: lcr)"),
        "{}",
        text(&unknown_plan.stderr)
    );
}

#[test]
fn a_missing_ledger_is_reported_not_created() {
    let dir = scratch("no-ledger");
    let config = dir.join("talktime.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let data = dir.join("data");
    let output = explain(&data, &config, &["447700900123", "--plan", "lcr"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("no ledger at"),
        "{}",
        text(&output.stderr)
    );
    assert!(!data.exists(), "explain must not create the data directory");
}
