//! Customer self-service in the portal (issue 22), in a real browser (chromium through
//! chromedriver) against the running switch with SIPp callers: a stranger signs up with a card
//! holder's referral code, recharges with a voucher and a coupon (the ledger shows the
//! recharge, the coupon's promotion and the referral reward; the card holder gets theirs
//! once), registers a phone by calling from it and keying the code the portal showed, then
//! calls pinless from it and sees the call with its cost; another customer's call is "Not
//! found"; a code keyed from another phone registers nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::assert_sipp_ok;
use common::browser::Browser;
use common::calls::{call_and_hang_up_from, start};
use common::prepaid::{self, ConfigFile};
use talktime_store::format_micros;

const PIN: &str = "6106106101";
const PASSWORD: &str = "correct horse battery";
const PHONE: &str = "15550100200";
const OTHER_PHONE: &str = "15550100999";
const US_NUMBER: &str = "0015551234567#";

/// A call from `caller` keying `script`, hung up by the caller after a few seconds of talk;
/// its call id, if the switch took it.
fn call_from(
    switch: &common::Switch,
    dir: &std::path::Path,
    caller: &str,
    script: &[(Duration, &str)],
) -> String {
    let before = switch.call_ids().len();
    let output = call_and_hang_up_from(switch, dir, caller, script, Duration::from_secs(8));
    assert_sipp_ok(&output, switch, caller);
    let ids = switch.call_ids();
    assert_eq!(ids.len(), before + 1, "one new call");
    ids.last().unwrap().clone()
}

/// The six digits after "key " in the portal's notice.
fn code_in(notice: &str) -> String {
    let after = notice
        .split("key ")
        .nth(1)
        .unwrap_or_else(|| panic!("{notice}"));
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{notice}");
    code
}

#[test]
fn a_stranger_signs_up_recharges_registers_a_phone_by_calling_and_then_calls_pinless() {
    let dir = prepaid::data_dir("portal-self-service");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let holder = prepaid::card(&dir, PIN, 2_000_000, 0);
    let csv = common::cli(
        &dir,
        &[
            "vouchers", "generate", "--name", "shop", "--count", "1", "--value", "5.00",
        ],
    );
    let voucher = csv
        .lines()
        .nth(1)
        .and_then(|line| line.split(',').nth(1))
        .unwrap()
        .to_owned();
    common::cli(&dir, &["coupons", "add", "welcome10", "--percent", "10"]);
    let set = common::cli(
        &dir,
        &[
            "referrals",
            "set",
            "--referrer",
            "2.00",
            "--newcomer",
            "1.00",
        ],
    );
    assert!(
        set.contains("pays 2 to the referrer and 1 to the newcomer"),
        "{set}"
    );
    // Bonus points: 100 a unit spent on calls, a point buys 0.01.
    common::cli(&dir, &["points", "rule", "--per-unit", "100"]);
    common::cli(&dir, &["points", "value", "--per-point", "0.01"]);
    // ...and 5 points a free minute on calls to the US.
    let offer = common::cli(
        &dir,
        &[
            "points",
            "minutes",
            "--points-per-minute",
            "5",
            "--prefixes",
            "1",
        ],
    );
    assert!(offer.contains("5 points buy a free minute to 1"), "{offer}");
    // The carrier answers four calls: the card holder's and Ana's three.
    let carrier = common::scenario::BackgroundSipp::uas(
        150,
        &common::scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "4"],
    );
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("us", &carrier.address())
            .routes(&[("", &["us"])])
            .raw("[portal]\nsignup = true\naccess_number = \"100\"\npoints_sweep_s = 1\n"),
    );
    let holders_call = call_from(
        &switch,
        &dir,
        "anonymous",
        &[
            (Duration::from_millis(2000), &format!("{PIN}#")),
            (Duration::from_millis(5600), US_NUMBER),
        ],
    );
    let holders_cdr = prepaid::wait_for_cdrs(&dir, &format!("{holders_call}#1"), 1).remove(0);
    let portal = format!("http://{}/portal", switch.admin);
    let browser = Browser::start();

    // The card holder's referral code, from their page.
    browser.go(&format!("{portal}/claim"));
    browser.type_into("#pin", PIN);
    browser.type_into("#password", PASSWORD);
    browser.type_into("#repeat", PASSWORD);
    browser.click("#submit");
    browser
        .wait_for("#referral-code", Duration::from_secs(10))
        .unwrap();
    let referral = browser.text("#referral-code");
    assert_eq!(referral.len(), 8, "{referral}");
    browser.click("#logout");
    browser.until("logged out", |browser| {
        browser.url().ends_with("/portal/login")
    });

    // A stranger follows the link: the code is filled in; a bad address is refused first.
    browser.click("#signup");
    browser.until("the sign-up page", |browser| {
        browser.url().ends_with("/portal/signup")
    });
    browser.go(&format!("{portal}/signup?ref={referral}"));
    assert!(browser.source().contains(&referral));
    browser.type_into("#name", "Ana Lima");
    browser.type_into("#email", "ana@example.com");
    browser.type_into("#password", PASSWORD);
    browser.type_into("#repeat", PASSWORD);
    browser.click("#submit");
    browser
        .wait_for("#balance", Duration::from_secs(10))
        .unwrap();
    assert_eq!(browser.text("#balance"), "0");
    let store = prepaid::open(&dir);
    let ana = prepaid::runtime()
        .block_on(store.account_by_login_email("ANA@example.com"))
        .unwrap()
        .expect("the signed-up account logs in by e-mail");

    // Another customer's call is not there for her.
    browser.go(&format!("{portal}/calls/{holders_call}"));
    browser.until_page_says("Not found");
    browser.go(&portal);

    // A voucher and a coupon: the recharge, the promotion and the referral reward, each once.
    browser.type_into("#code", &voucher);
    browser.type_into("#coupon", "welcome10");
    browser.click("#recharge");
    browser.until_page_says("Recharged 5 and 0.5 more with the coupon.");
    assert_eq!(browser.text("#balance"), "6.5");
    let ledger = browser.text("#ledger").replace('\t', " ");
    for line in ["recharge 5", "promotion 0.5", "referral 1"] {
        assert!(ledger.contains(line), "{line}: {ledger}");
    }
    assert_eq!(
        prepaid::balance(&dir, holder),
        2_000_000 - holders_cdr.total_micros + 2_000_000,
        "the referrer's 2.00, once"
    );

    // A phone: claimed with a code, which a call from another phone cannot use.
    browser.type_into("#phone", "+1 (555) 0100-200");
    browser.click("#add-phone");
    browser.until_page_says("To confirm +15550100200");
    let code = code_in(&browser.text("#notice"));
    assert!(browser.text("#phones").contains("waiting for its call"));
    call_and_hang_up_from(
        &switch,
        &dir,
        OTHER_PHONE,
        &[
            (Duration::from_millis(2000), &format!("{code}#")),
            (Duration::from_millis(5600), US_NUMBER),
        ],
        Duration::from_secs(3),
    );
    let numbers = prepaid::runtime()
        .block_on(store.caller_ids_of(ana))
        .unwrap();
    assert!(numbers.is_empty(), "another phone registered nothing");

    // The call from the phone keys the code where the PIN goes, and is Ana's call.
    let confirming = call_from(
        &switch,
        &dir,
        PHONE,
        &[
            (Duration::from_millis(2000), &format!("{code}#")),
            (Duration::from_millis(5600), US_NUMBER),
        ],
    );
    let first = prepaid::wait_for_cdrs(&dir, &format!("{confirming}#1"), 1).remove(0);
    assert_eq!(first.account_id, Some(ana), "{first:?}");
    assert!(first.total_micros > 0, "{first:?}");

    // From now on the phone calls without a PIN: the destination right after the welcome.
    let pinless = call_from(
        &switch,
        &dir,
        PHONE,
        &[(Duration::from_millis(2500), US_NUMBER)],
    );
    let second = prepaid::wait_for_cdrs(&dir, &format!("{pinless}#1"), 1).remove(0);
    assert_eq!(second.account_id, Some(ana), "{second:?}");

    browser.go(&portal);
    browser
        .wait_for("#balance", Duration::from_secs(10))
        .unwrap();
    let phones = browser.text("#phones");
    assert!(
        phones.contains("+15550100200") && phones.contains("ready"),
        "{phones}"
    );
    assert_eq!(browser.all("tr.call").len(), 2, "{}", browser.source());
    let calls = browser.text("#calls");
    assert!(
        calls.contains(&format_micros(first.total_micros)),
        "{calls}"
    );
    assert_eq!(
        browser.text("#balance"),
        format_micros(6_500_000 - first.total_micros - second.total_micros)
    );
    // The calls' points, exactly what their cost earns, buy credit once per form.
    let spent = first.total_micros + second.total_micros;
    let earned = spent * 100 / 1_000_000;
    assert!(earned > 0, "{spent}");
    let mut shown = String::new();
    for _ in 0..50 {
        browser.go(&portal);
        browser
            .wait_for("#points", Duration::from_secs(10))
            .unwrap();
        shown = browser.text("#points");
        if shown == earned.to_string() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(shown, earned.to_string());
    browser.type_into("#redeem-points", "5");
    browser.click("#redeem");
    browser.until_page_says("Your points bought 0.05 of credit.");
    assert_eq!(browser.text("#points"), (earned - 5).to_string());
    assert_eq!(
        browser.text("#balance"),
        format_micros(6_500_000 - spent + 50_000)
    );
    browser.screenshot("portal-self-service");

    // Five more points buy a free minute: her next call to the US costs nothing, and the
    // minute is what is left of it.
    browser.type_into("#redeem-minutes", "1");
    browser.click("#buy-minutes");
    browser.until_page_says("Your points bought free minutes: you have 1 min free.");
    assert_eq!(browser.text("#points"), (earned - 10).to_string());
    let free_call = call_from(
        &switch,
        &dir,
        PHONE,
        &[(Duration::from_millis(2500), US_NUMBER)],
    );
    let free = prepaid::wait_for_cdrs(&dir, &format!("{free_call}#1"), 1).remove(0);
    assert!(free.billed_seconds > 0, "{free:?}");
    assert_eq!(
        free.total_micros, 0,
        "the free minute paid for it: {free:?}"
    );
    browser.go(&portal);
    browser
        .wait_for("#free-minutes", Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        browser.text("#free-minutes"),
        format!("0 min {} s", 60 - free.billed_seconds)
    );
    assert_eq!(
        browser.text("#balance"),
        format_micros(6_500_000 - spent + 50_000)
    );

    // She removes the phone: it calls with a PIN again.
    browser.click("#phones button");
    browser.until_page_says("The phone was removed.");
    let numbers = prepaid::runtime()
        .block_on(store.caller_ids_of(ana))
        .unwrap();
    assert!(numbers.is_empty(), "{numbers:?}");
}
