//! Callback through the running binary (issue 21), with baresip as the customer's phone (it
//! dials, and answers the call back by itself) and a SIPp carrier for the called number:
//! - the phone rings the callback line and is refused unanswered (480); unregistered, it is
//!   not called back; registered, the switch calls it back through the carrier its number
//!   routes to, the customer keys a destination at a
//!   human pace and is connected; the CDRs show both legs, each with its own charge;
//! - a web callback (`POST /api/accounts/{id}/callback`) connects the customer to the number
//!   given, and the credit pays for both legs: the call is cut when it runs out, to the
//!   micro-unit of the balance.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::baresip::Baresip;
use common::calls::{answering_carrier, start};
use common::prepaid::{self, ConfigFile};
use common::scenario::BackgroundSipp;
use common::{Switch, tail};
use talktime_store::Cdr;

/// The customer's mobile at 0.60 a minute, the UK at 1.20, both per second.
const RATES: &str = "1555,US mobile,0.60,0.30,1,1,0\n44,UK,1.20,0.50,1,1,0\n";
/// The phone's number as caller IDs carry it (E.164 digits), and as CDRs write it.
const PHONE: &str = "15551230001";
const PHONE_E164: &str = "+15551230001";

fn config(phone: &Baresip, carrier: &str) -> ConfigFile {
    ConfigFile::new()
        .raw(
            "[[access_numbers]]\nnumber = \"600\"\ncallback = true\n\n\
             [callback]\ndelay_ms = 1000\nring_s = 20\nring_allowance_s = 5\n",
        )
        .carrier("phones", &format!("127.0.0.1:{}", phone.sip_port))
        .carrier("uk", carrier)
        .routes(&[("1555", &["phones"]), ("44", &["uk"])])
}

fn phone(dir: &Path) -> Baresip {
    Baresip::start_with(
        &dir.join("phone"),
        "",
        &format!("<sip:{PHONE}@127.0.0.1>;regint=0;answermode=auto"),
    )
}

/// The call id the switch gave the last callback asked (from its log).
fn callback_call_id(switch: &Switch) -> String {
    let log = switch.log_text();
    let line = log
        .lines()
        .rfind(|line| line.contains("callback requested"))
        .unwrap_or_else(|| panic!("no callback in the log:\n{}", tail(&log, 40)));
    let start = line.find("call_id=").unwrap() + "call_id=".len();
    line[start..].split_whitespace().next().unwrap().to_owned()
}

fn leg(dir: &Path, call_id: &str, attempt: u32) -> Cdr {
    let rows = prepaid::wait_for_cdrs(dir, &format!("{call_id}#{attempt}"), 1);
    assert_eq!(rows.len(), 1, "leg {attempt}: {rows:?}");
    rows.into_iter().next().unwrap()
}

/// `POST /api/accounts/{account}/callback` to the phone, connecting it to a UK number; the
/// callback's call id.
fn web_callback_to_the_uk(switch: &Switch, account: i64) -> String {
    let (status, body) = admin_post(
        switch,
        &format!("/api/accounts/{account}/callback"),
        &format!("{{\"number\": \"{PHONE_E164}\", \"destination\": \"00442071234567\"}}"),
    );
    assert_eq!(status, 202, "{body}");
    let placed: serde_json::Value = serde_json::from_str(&body).unwrap();
    placed["call_id"].as_str().unwrap().to_owned()
}

/// The phone answers the callback, and the switch ends the call (the credit ran out); the
/// carrier's run is checked.
fn talk_until_the_switch_ends_it(phone: &Baresip, switch: &Switch, carrier: BackgroundSipp) {
    assert!(
        phone.wait_for("Call established", Duration::from_secs(15)),
        "the web callback rings the phone:\n{}\nswitch:\n{}",
        phone.log_text(),
        tail(&switch.log_text(), 40)
    );
    assert!(
        phone.wait_for("terminated", Duration::from_secs(45)),
        "the switch ends the call when the credit has paid for both legs:\n{}",
        tail(&switch.log_text(), 40)
    );
    let carrier_run = carrier.finish(Duration::from_secs(10));
    assert!(carrier_run.success(), "{}", carrier_run.describe());
}

/// A destination keyed as a person does: a key every 400-600 ms.
fn human_keys(number: &str, from: Duration) -> Vec<(Duration, String)> {
    let gaps = [430u64, 560, 410, 600, 480, 520, 455, 590];
    let mut at = from;
    number
        .chars()
        .zip(gaps.iter().cycle())
        .map(|(key, gap)| {
            let press = (at, key.to_string());
            at += Duration::from_millis(*gap);
            press
        })
        .collect()
}

#[test]
fn a_caller_refused_on_the_callback_line_is_called_back_and_connected() {
    let dir = prepaid::data_dir("callback-line");
    prepaid::tariff(&dir, "demo", RATES);
    let account = prepaid::card(&dir, "1234567890", 10_000_000, 0);
    let carrier = answering_carrier();
    let phone = phone(&dir);
    let switch = start(&dir, config(&phone, &carrier.address()));

    // Not registered yet: refused, and never called back.
    phone.dial(&format!("sip:600@{}", switch.sip));
    assert!(
        phone.wait_for("480 Temporarily Unavailable", Duration::from_secs(10)),
        "the callback line refuses the call unanswered:\n{}",
        phone.log_text()
    );
    assert!(
        common::wait_until(Duration::from_secs(5), || switch
            .log_text()
            .contains("not registered")),
        "{}",
        tail(&switch.log_text(), 20)
    );
    prepaid::register_caller_id(&dir, account, PHONE);
    phone.dial(&format!("sip:600@{}", switch.sip));
    assert!(
        common::wait_until(Duration::from_secs(10), || phone
            .log_text()
            .matches("480 Temporarily Unavailable")
            .count()
            == 2),
        "the registered caller is refused unanswered too:\n{}",
        phone.log_text()
    );
    assert!(
        !phone.log_text().contains("Call established"),
        "nothing was answered"
    );
    assert!(
        phone.wait_for("Call established", Duration::from_secs(15)),
        "the switch calls the phone back:\n{}\nswitch:\n{}",
        phone.log_text(),
        tail(&switch.log_text(), 40)
    );
    let answered = Instant::now();
    phone.keys(
        answered,
        &human_keys("00442071234567#", Duration::from_millis(2500)),
    );
    assert!(
        common::wait_until(Duration::from_secs(25), || switch
            .log_text()
            .contains("bridged")),
        "the keyed destination is connected:\n{}",
        tail(&switch.log_text(), 40)
    );
    std::thread::sleep(Duration::from_secs(4));
    phone.send("/hangup\n");
    let carrier_run = carrier.finish(Duration::from_secs(10));
    assert!(
        carrier_run.success(),
        "the UK carrier was called and got our BYE: {}",
        carrier_run.describe()
    );

    let call_id = callback_call_id(&switch);
    let caller_leg = leg(&dir, &call_id, 0);
    let called_leg = leg(&dir, &call_id, 1);
    assert_eq!(caller_leg.attempt, 0);
    assert_eq!(
        caller_leg.destination.expose(),
        PHONE_E164,
        "{caller_leg:?}"
    );
    assert_eq!(caller_leg.carrier.as_deref(), Some("phones"));
    assert_eq!(called_leg.destination.expose(), "+442071234567");
    assert_eq!(called_leg.carrier.as_deref(), Some("uk"));
    let talk = |cdr: &Cdr| cdr.end_ms - cdr.answer_ms.expect("answered");
    // Per second: 0.60 a minute is 10,000 micros a second, 1.20 is 20,000.
    let caller_seconds = (talk(&caller_leg) + 999) / 1000;
    let called_seconds = (talk(&called_leg) + 999) / 1000;
    assert!(
        talk(&caller_leg) > talk(&called_leg) + 5_000,
        "the caller leg ran through the IVR: {caller_leg:?} {called_leg:?}"
    );
    assert!(
        (caller_seconds * 10_000 - caller_leg.total_micros).abs() <= 10_000,
        "caller leg at 0.60 a minute: {caller_leg:?}"
    );
    assert!(
        (called_seconds * 20_000 - called_leg.total_micros).abs() <= 20_000,
        "called leg at 1.20 a minute: {called_leg:?}"
    );
    assert_eq!(
        prepaid::balance(&dir, account),
        10_000_000 - caller_leg.total_micros - called_leg.total_micros,
        "both legs are charged, once"
    );
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
}

fn admin_post(switch: &Switch, path: &str, body: &str) -> (u16, String) {
    common::admin_request(switch, "POST", path, body)
}

#[test]
fn a_web_callback_is_cut_when_the_credit_has_paid_for_both_legs() {
    let dir = prepaid::data_dir("web-callback");
    prepaid::tariff(&dir, "demo", RATES);
    // 0.50: the caller leg until the destination is authorized and 5 s of ringing paid ahead,
    // then 0.03 a second for both legs; what stays is the ringing paid ahead and not used.
    let account = prepaid::card(&dir, "1234567890", 500_000, 0);
    let carrier = answering_carrier();
    let phone = phone(&dir);
    let switch = start(&dir, config(&phone, &carrier.address()));

    let call_id = web_callback_to_the_uk(&switch, account);
    let (status, body) = admin_post(
        &switch,
        "/api/accounts/999/callback",
        &format!("{{\"number\": \"{PHONE}\"}}"),
    );
    assert_eq!(status, 404, "an unknown account: {body}");

    talk_until_the_switch_ends_it(&phone, &switch, carrier);
    let caller_leg = leg(&dir, &call_id, 0);
    let called_leg = leg(&dir, &call_id, 1);
    assert_eq!(
        called_leg.disconnect_cause.as_deref(),
        Some("credit_exhausted"),
        "{called_leg:?}"
    );
    let charged = caller_leg.total_micros + called_leg.total_micros;
    assert!(
        (430_000..=500_000).contains(&charged),
        "the credit pays for both legs, not more: {caller_leg:?} {called_leg:?}"
    );
    assert_eq!(prepaid::balance(&dir, account), 500_000 - charged);
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
}

/// A web callback of a shop's customer (issue 16 with issue 21): the shop's credit, not the
/// customer's, pays for both legs at the shop's prices. The caller leg's authorization alone
/// holds everything the shop has (0.40 pays 80 s of the mobile leg at 0.30 a minute); the
/// called leg's counts that hold back, so the destination connects, and the call is cut where
/// the shop's 0.40 pays for both legs: the caller leg 5 s ahead (ringing paid ahead) plus
/// 0.015 + 0.005 a second together, about 18 s. Each level is charged once at its price and
/// no hold stays open on the shop.
#[test]
fn a_web_callback_of_a_shops_customer_is_cut_where_the_shops_credit_pays_for_both_legs() {
    let dir = prepaid::data_dir("web-callback-reseller");
    prepaid::tariff(&dir, "demo", RATES);
    prepaid::tariff(
        &dir,
        "shop-buys",
        "1555,US mobile,0.30,0.10,1,1,0\n44,UK,0.90,0.30,1,1,0\n",
    );
    let account = prepaid::card(&dir, "1234567890", 10_000_000, 0);
    let cli = |args: &[&str]| common::cli(&dir, args).trim().to_owned();
    let shop = cli(&["resellers", "add", "shop", "--tariff", "shop-buys"]);
    cli(&["resellers", "recharge", "shop", "0.40"]);
    cli(&[
        "resellers",
        "customer",
        "--account",
        &account.to_string(),
        "shop",
    ]);
    let carrier = answering_carrier();
    let phone = phone(&dir);
    let switch = start(&dir, config(&phone, &carrier.address()));

    let call_id = web_callback_to_the_uk(&switch, account);
    talk_until_the_switch_ends_it(&phone, &switch, carrier);

    let caller_leg = leg(&dir, &call_id, 0);
    let called_leg = leg(&dir, &call_id, 1);
    assert!(
        called_leg.answer_ms.is_some(),
        "the destination connects: {called_leg:?}\n{}",
        tail(&switch.log_text(), 40)
    );
    assert_eq!(
        called_leg.disconnect_cause.as_deref(),
        Some("credit_exhausted"),
        "{called_leg:?}"
    );
    assert!(
        (15..=19).contains(&called_leg.billed_seconds),
        "cut where the shop's credit ends, not the customer's 5 minutes: {called_leg:?}"
    );
    let store = prepaid::open(&dir);
    let shop = prepaid::runtime()
        .block_on(store.reseller(shop.parse().unwrap()))
        .unwrap();
    let shop_charges: i64 = prepaid::runtime()
        .block_on(store.transactions(shop.account_id))
        .unwrap()
        .iter()
        .filter(|entry| entry.kind == talktime_store::TransactionKind::CallCharge)
        .map(|entry| -entry.amount_micros)
        .sum();
    assert_eq!(
        shop_charges,
        caller_leg.billed_seconds * 5_000 + called_leg.billed_seconds * 15_000,
        "each leg once at the shop's price: {caller_leg:?} {called_leg:?}"
    );
    assert!(
        shop_charges <= 400_000 && shop.balance_micros >= 0,
        "the shop pays no more than its credit: {shop_charges} {shop:?}"
    );
    assert_eq!(
        prepaid::runtime()
            .block_on(store.reseller_holds(shop.id))
            .unwrap(),
        (0, 0)
    );
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
    let charged = caller_leg.total_micros + called_leg.total_micros;
    assert_eq!(prepaid::balance(&dir, account), 10_000_000 - charged);
}

/// A switch killed (kill -9) with a callback connected: the next start bills both legs from
/// their checkpoints, once each, to about when the switch died, hangs both up and leaves no
/// hold open.
#[test]
fn a_callback_up_when_the_switch_is_killed_is_billed_on_both_legs_after_the_restart() {
    let dir = prepaid::data_dir("callback-kill9");
    prepaid::tariff(&dir, "demo", RATES);
    let account = prepaid::card(&dir, "1234567890", 10_000_000, 0);
    let carrier = answering_carrier();
    let phone = phone(&dir);
    let config = config(&phone, &carrier.address()).raw("[shutdown]\ndrain_s = 0\n");
    let mut switch = start(&dir, config);
    let call_id = web_callback_to_the_uk(&switch, account);
    assert!(
        common::wait_until(Duration::from_secs(20), || switch
            .log_text()
            .contains("bridged")),
        "{}",
        tail(&switch.log_text(), 30)
    );
    std::thread::sleep(Duration::from_secs(3));
    switch.child.kill().unwrap();
    switch.child.wait().unwrap();
    let killed_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    assert_eq!(
        prepaid::open_reservations(&dir, account),
        2,
        "both legs held"
    );

    let restarted = Switch::start_at(
        &dir,
        switch.sip.port(),
        &["--config", dir.join("talktime.toml").to_str().unwrap()],
    );
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
    assert!(
        phone.wait_for("terminated", Duration::from_secs(15)),
        "the phone got its BYE after the restart:\n{}\n{}",
        phone.log_text(),
        tail(&restarted.log_text(), 20)
    );
    let carrier_run = carrier.finish(Duration::from_secs(15));
    assert!(carrier_run.success(), "{}", carrier_run.describe());
    let mut charged = 0;
    for attempt in [0, 1] {
        let cdr = leg(&dir, &call_id, attempt);
        assert_eq!(
            cdr.disconnect_cause.as_deref(),
            Some("node_lost"),
            "{cdr:?}"
        );
        let up_ms = killed_ms - cdr.answer_ms.unwrap();
        let billed_ms = cdr.billed_seconds * 1000;
        assert!(
            billed_ms >= up_ms - 2_000 && billed_ms <= up_ms + 1_000,
            "leg {attempt}: billed {billed_ms} ms of {up_ms} ms up"
        );
        assert!(cdr.total_micros > 0, "{cdr:?}");
        charged += cdr.total_micros;
    }
    assert_eq!(prepaid::balance(&dir, account), 10_000_000 - charged);
}
