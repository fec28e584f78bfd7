//! Resellers through the running binary (issue 16): the operator builds vendor -> wholesale
//! -> shop -> customer with `talktime resellers`, a customer's SIP phone (baresip, registering
//! and answering the switch's digest challenge as a real softphone does) calls the UK carrier
//! (SIPp), and:
//! - the shop's credit, not the customer's, ends the call: the switch cuts it at the talk time
//!   the shop's balance pays for at the shop's price (`credit_exhausted`);
//! - each level is charged once at its own price in the call's transaction: the customer at
//!   retail, the shop at what wholesale sells to it, wholesale at the vendor's price; the
//!   shop's statement (API) says what it sold and bought; no hold stays open.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::baresip::Baresip;
use common::calls::{answering_carrier, start};
use common::prepaid::{self, ConfigFile};
use common::{Switch, tail};

const PASSWORD: &str = "correct-horse-9";

fn talktime(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "talktime {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The customer's phone: registers as `alice` and answers the switch's challenges.
fn phone(dir: &Path, switch: &Switch) -> Baresip {
    Baresip::start_with(
        &dir.join("phone"),
        "",
        &format!(
            "<sip:alice@{};transport=udp>;auth_pass={PASSWORD};regint=600",
            switch.sip
        ),
    )
}

fn account_charges(dir: &Path, account: i64) -> i64 {
    let store = prepaid::open(dir);
    prepaid::runtime()
        .block_on(store.transactions(account))
        .unwrap()
        .iter()
        .filter(|entry| entry.kind == talktime_store::TransactionKind::CallCharge)
        .map(|entry| -entry.amount_micros)
        .sum()
}

#[test]
fn a_shops_credit_cuts_its_customers_call_and_every_level_pays_its_price() {
    let dir = prepaid::data_dir("resellers-live");
    // Retail (the customer's price), what wholesale sells to the shop, the vendor's price.
    prepaid::tariff(&dir, "demo", "44,UK,1.20,0.30,1,1,0\n");
    prepaid::tariff(&dir, "shop-buys", "44,UK,0.90,0.30,1,1,0\n");
    prepaid::tariff(&dir, "vendor-sells", "44,UK,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, "1234567890", 10_000_000, 0);
    let wholesale = talktime(
        &dir,
        &["resellers", "add", "wholesale", "--tariff", "vendor-sells"],
    );
    let shop = talktime(
        &dir,
        &[
            "resellers",
            "add",
            "shop",
            "--parent",
            "wholesale",
            "--tariff",
            "shop-buys",
        ],
    );
    talktime(&dir, &["resellers", "recharge", "wholesale", "50.00"]);
    // 0.15 at the shop's 0.90 a minute pays for 10 seconds.
    talktime(&dir, &["resellers", "recharge", "shop", "0.15"]);
    talktime(
        &dir,
        &[
            "resellers",
            "customer",
            "--account",
            &account.to_string(),
            "shop",
        ],
    );
    let password_file = dir.join("alice.password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    talktime(
        &dir,
        &[
            "subscribers",
            "add",
            "--account",
            &account.to_string(),
            "alice",
            "--password-file",
            password_file.to_str().unwrap(),
        ],
    );
    let shown = talktime(
        &dir,
        &["accounts", "show", "--account", &account.to_string()],
    );
    assert!(
        shown.contains(&format!("customer of reseller {shop} (shop)")),
        "{shown}"
    );

    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("uk", &carrier.address())
            .routes(&[("44", &["uk"])]),
    );
    let phone = phone(&dir, &switch);
    assert!(
        wait_until(Duration::from_secs(10), || switch
            .log_text()
            .contains("subscriber registered")),
        "baresip registered: {}",
        tail(&switch.log_text(), 30)
    );
    phone.dial(&format!("sip:00442071234567@{}", switch.sip));
    assert!(
        phone.wait_for("Call established", Duration::from_secs(15)),
        "connected: {}",
        tail(&phone.log_text(), 30)
    );
    let answered = Instant::now();
    assert!(
        phone.wait_for("terminated", Duration::from_secs(25)),
        "the switch ends the call: {}",
        tail(&phone.log_text(), 30)
    );
    let talked = answered.elapsed();
    assert!(
        (Duration::from_secs(8)..Duration::from_secs(13)).contains(&talked),
        "cut at the shop's 10 s, not the customer's 8 minutes: {talked:?}"
    );
    let carrier_run = carrier.finish(Duration::from_secs(10));
    assert!(carrier_run.success(), "{}", carrier_run.describe());

    let ids = switch.call_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let cdrs = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[0]), 1);
    let cdr = &cdrs[0];
    assert_eq!(
        cdr.disconnect_cause.as_deref(),
        Some("credit_exhausted"),
        "{cdr:?}"
    );
    let seconds = cdr.billed_seconds;
    assert!((9..=10).contains(&seconds), "{cdr:?}");
    // Every level once, at its price for the same seconds.
    assert_eq!(cdr.total_micros, seconds * 20_000, "retail 1.20 a minute");
    assert_eq!(account_charges(&dir, account), seconds * 20_000);
    let store = prepaid::open(&dir);
    let reseller = |id: &str| {
        prepaid::runtime()
            .block_on(store.reseller(id.parse().unwrap()))
            .unwrap()
    };
    let (shop, wholesale) = (reseller(&shop), reseller(&wholesale));
    assert_eq!(account_charges(&dir, shop.account_id), seconds * 15_000);
    assert_eq!(
        account_charges(&dir, wholesale.account_id),
        seconds * 10_000
    );
    assert_eq!(shop.balance_micros, 150_000 - seconds * 15_000);
    assert_eq!(wholesale.balance_micros, 50_000_000 - seconds * 10_000);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
    assert_eq!(
        prepaid::runtime()
            .block_on(store.reseller_holds(shop.id))
            .unwrap(),
        (0, 0)
    );

    // The shop's statement over the API: sold at retail, bought at its price.
    let path = format!("/api/resellers/{}/statement", shop.id);
    let (status, body) = common::admin_request(&switch, "GET", &path, "");
    assert_eq!(status, 200, "{body}");
    let lines: serde_json::Value = serde_json::from_str(&body).unwrap();
    let line = &lines[0];
    assert_eq!(line["state"], "settled", "{body}");
    let text = |micros: i64| talktime_store::format_micros(micros);
    assert_eq!(
        line["sold"].as_str(),
        Some(text(seconds * 20_000).as_str()),
        "{body}"
    );
    assert_eq!(
        line["bought"].as_str(),
        Some(text(seconds * 15_000).as_str()),
        "{body}"
    );
    let statement = talktime(&dir, &["resellers", "statement", "wholesale"]);
    assert!(
        statement.contains(&format!(
            "sold {}\tbought {}",
            text(seconds * 15_000),
            text(seconds * 10_000)
        )),
        "{statement}"
    );
    let log = switch.log_text();
    assert!(!log.contains(PASSWORD), "the password is never logged");
}
