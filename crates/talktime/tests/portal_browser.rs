//! The customer portal (issue 22) in a real browser (Debian's chromium through chromedriver),
//! against the running switch: a card holder who made a SIPp call chooses a password with the
//! card's PIN, sees the balance and the call with its cost (the CDR's), recharges with a
//! voucher (the ledger's line on the page and in the store; the same code again credits
//! nothing), logs out and in again; another card's call is "Not found"; the card cannot be
//! claimed twice; a pinless customer logs in with the account number and the password the
//! operator set with the CLI; the operator's message to every customer is on the page, one to
//! a reseller's customers is not.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::assert_sipp_ok;
use common::browser::Browser;
use common::calls::{answering_carrier, call_and_hang_up, start};
use common::prepaid::{self, ConfigFile};
use talktime_store::format_micros;

const PIN: &str = "4104104101";
const OTHER_PIN: &str = "5205205202";
const PASSWORD: &str = "correct horse battery";

/// A PIN call to the US through the answering carrier, hung up by the caller after a few
/// seconds of talk; its call id.
fn pin_call(switch: &common::Switch, dir: &std::path::Path, pin: &str) -> String {
    let pin_keys = format!("{pin}#");
    let script = [
        (Duration::from_millis(2000), pin_keys.as_str()),
        (Duration::from_millis(5600), "0015551234567#"),
    ];
    let before = switch.call_ids().len();
    let output = call_and_hang_up(switch, dir, &script, Duration::from_secs(4));
    assert_sipp_ok(&output, switch, "a card holder's call");
    let ids = switch.call_ids();
    assert_eq!(ids.len(), before + 1, "one new call");
    ids.last().unwrap().clone()
}

fn curl_status(args: &[&str]) -> u16 {
    let output = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Waits for the next page to hold `wanted` (the page before it does not), then checks that
/// `css` is where it is said.
fn text_says(browser: &Browser, css: &str, wanted: &str) {
    browser.until(wanted, |browser| browser.source().contains(wanted));
    let text = browser.text(css);
    assert!(text.contains(wanted), "{css}: {text}");
}

fn url_ends(browser: &Browser, wanted: &str) {
    browser.until(wanted, |browser| browser.url().ends_with(wanted));
}

fn wait_for_balance(browser: &Browser) -> String {
    browser
        .wait_for("#balance", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no balance on the page:\n{}", browser.source()));
    browser.text("#balance")
}

#[test]
fn a_card_holder_claims_the_portal_sees_the_call_and_its_cost_and_recharges_with_a_voucher() {
    let dir = prepaid::data_dir("portal");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, PIN, 2_000_000, 0);
    prepaid::card(&dir, OTHER_PIN, 2_000_000, 0);
    let csv = common::cli(
        &dir,
        &[
            "vouchers", "generate", "--name", "shop", "--count", "3", "--value", "5.00",
        ],
    );
    let codes: Vec<String> = csv
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(codes.len(), 3, "{csv}");
    let code = codes[0].clone();
    // A promotion: 10 % more on one recharge, for the first customer who comes.
    let added = common::cli(
        &dir,
        &[
            "coupons",
            "add",
            "welcome10",
            "--percent",
            "10",
            "--max-uses",
            "1",
        ],
    );
    assert!(added.contains("coupon WELCOME10 added"), "{added}");
    // The board: one message to everyone, one to a reseller's customers only.
    common::cli(&dir, &["resellers", "add", "shop"]);
    common::cli(
        &dir,
        &[
            "messages",
            "post",
            "--title",
            "New rates",
            "--body",
            "Mexico <cheaper> from today.",
        ],
    );
    common::cli(
        &dir,
        &[
            "messages",
            "post",
            "--title",
            "Shop news",
            "--body",
            "Open on Sundays.",
            "--reseller",
            "shop",
        ],
    );
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("us", &carrier.address())
            .routes(&[("", &["us"])]),
    );
    let mine = pin_call(&switch, &dir, PIN);
    let theirs = pin_call(&switch, &dir, OTHER_PIN);
    let cdr = prepaid::wait_for_cdrs(&dir, &format!("{mine}#1"), 1).remove(0);
    assert!(cdr.total_micros > 0, "the call cost something: {cdr:?}");
    prepaid::wait_for_cdrs(&dir, &format!("{theirs}#1"), 1);
    let portal = format!("http://{}/portal", switch.admin);

    let browser = Browser::start();
    // Nothing inside without a session: to the login page.
    browser.go(&portal);
    assert!(
        browser.url().ends_with("/portal/login"),
        "{}",
        browser.url()
    );

    // A PIN no card has claims nothing.
    browser.click("#claim");
    browser.type_into("#pin", "9999999999");
    browser.type_into("#password", PASSWORD);
    browser.type_into("#repeat", PASSWORD);
    browser.click("#submit");
    text_says(&browser, "#error", "No card has this PIN");

    // The card's PIN and a password of the holder's own: in, with the balance and the call.
    browser.clear("#pin");
    browser.type_into("#pin", PIN);
    browser.type_into("#password", PASSWORD);
    browser.type_into("#repeat", PASSWORD);
    browser.click("#submit");
    let balance = wait_for_balance(&browser);
    assert_eq!(balance, format_micros(2_000_000 - cdr.total_micros));
    assert_eq!(
        browser.all("tr.call").len(),
        1,
        "only this card's call: {}",
        browser.source()
    );
    let row = browser.text("tr.call");
    assert!(row.contains(&format_micros(cdr.total_micros)), "{row}");
    // The message to everyone, its text escaped; not the reseller's customers' one.
    let news = browser.text("#messages");
    assert!(news.contains("Mexico <cheaper> from today."), "{news}");
    assert!(!news.contains("Shop news"), "{news}");
    browser.screenshot("portal-home");

    // The call's page: the CDR's cost; the other card's call is not there for this customer.
    browser.click("tr.call a");
    browser.until("the call's page", |browser| {
        browser.url().contains("/portal/calls/")
    });
    text_says(
        &browser,
        "tr.attempt td.cost",
        &format_micros(cdr.total_micros),
    );
    browser.go(&format!("{portal}/calls/{theirs}"));
    assert!(
        browser.source().contains("Not found"),
        "{}",
        browser.source()
    );

    // A voucher: credited once, shown as a ledger line; the same code again credits nothing.
    browser.go(&portal);
    browser.type_into("#code", &code);
    browser.click("#recharge");
    text_says(&browser, "#notice", "Recharged 5");
    let recharged = 7_000_000 - cdr.total_micros;
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
    assert!(
        browser.text("#ledger").contains("recharge"),
        "{}",
        browser.source()
    );
    browser.type_into("#code", &code);
    browser.click("#recharge");
    text_says(&browser, "#notice", "has been used");
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
    assert_eq!(prepaid::balance(&dir, account), recharged, "credited once");

    // A voucher with the coupon: 5 and 10 % of it, two ledger lines.
    browser.type_into("#code", &codes[1]);
    browser.type_into("#coupon", "Welcome10");
    browser.click("#recharge");
    text_says(
        &browser,
        "#notice",
        "Recharged 5 and 0.5 more with the coupon",
    );
    let recharged = recharged + 5_500_000;
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
    let ledger = browser.text("#ledger");
    assert!(ledger.contains("promotion 0.5"), "{ledger}");
    // The coupon's one use is taken: refused, and the voucher it came with is not used.
    browser.type_into("#code", &codes[2]);
    browser.type_into("#coupon", "WELCOME10");
    browser.click("#recharge");
    text_says(&browser, "#notice", "used as often as it may");
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
    browser.type_into("#code", &codes[2]);
    browser.click("#recharge");
    text_says(&browser, "#notice", "Recharged 5.");
    let recharged = recharged + 5_000_000;
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
    assert_eq!(prepaid::balance(&dir, account), recharged, "each line once");
    let uses = common::cli(&dir, &["coupons", "list"]);
    assert!(uses.contains("\"uses\": 1"), "{uses}");

    // Out, and in again with the PIN and the password.
    browser.click("#logout");
    url_ends(&browser, "/portal/login");
    browser.go(&portal);
    assert!(
        browser.url().ends_with("/portal/login"),
        "the session is over"
    );
    browser.type_into("#login", PIN);
    browser.type_into("#password", PASSWORD);
    browser.click("#submit");
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));

    // Whoever learns the PIN later cannot take the portal over; a wrong password gets nothing.
    let claim = format!("{portal}/claim");
    let again = [
        "--data-urlencode",
        &format!("pin={PIN}"),
        "--data-urlencode",
        "password=another long password",
        "--data-urlencode",
        "repeat=another long password",
        claim.as_str(),
    ];
    assert_eq!(curl_status(&again), 409);
    let login = format!("{portal}/login");
    let wrong = [
        "--data-urlencode",
        &format!("login={PIN}"),
        "--data-urlencode",
        "password=not the password",
        login.as_str(),
    ];
    assert_eq!(curl_status(&wrong), 401);

    // A pinless customer: the operator sets the password, the customer logs in with the
    // account number and sees the same account (a card's account here).
    let mut cli = Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args([
            "accounts",
            "portal-password",
            "--account",
            &account.to_string(),
        ])
        .arg("--data-dir")
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cli.stdin
        .take()
        .unwrap()
        .write_all(b"set by the operator\n")
        .unwrap();
    let output = cli.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    // The operator's change ended the customer's sessions.
    browser.go(&portal);
    assert!(
        browser.url().ends_with("/portal/login"),
        "{}",
        browser.url()
    );
    browser.type_into("#login", &account.to_string());
    browser.type_into("#password", "set by the operator");
    browser.click("#submit");
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
}
