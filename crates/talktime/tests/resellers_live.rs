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
    common::cli(dir, args).trim().to_owned()
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
    // The vendor pays wholesale 5 % of what the shop pays it for calls.
    talktime(
        &dir,
        &["resellers", "commission", "wholesale", "--calls", "5"],
    );
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
        common::wait_until(Duration::from_secs(10), || switch
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
    assert_eq!(
        wholesale.balance_micros,
        50_000_000 - seconds * 10_000 + seconds * 750,
        "its price paid, 5 % of the shop's payment earned"
    );
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
            "sold {}\tbought {}\tcommission {}",
            text(seconds * 15_000),
            text(seconds * 10_000),
            text(seconds * 750)
        )),
        "{statement}"
    );

    // The shop now wants 40 % over what it pays: 1.20 over 0.90 is 33 %, so its customer's
    // next call there is refused before any carrier is tried, and nothing is held or charged.
    talktime(
        &dir,
        &["resellers", "pricing", "shop", "--min-margin", "40"],
    );
    talktime(&dir, &["resellers", "recharge", "shop", "5.00"]);
    phone.dial(&format!("sip:00442071234567@{}", switch.sip));
    assert!(
        common::wait_until(Duration::from_secs(10), || switch
            .log_text()
            .contains("below its margin")),
        "refused: {}",
        tail(&switch.log_text(), 30)
    );
    assert!(
        common::wait_until(Duration::from_secs(10), || switch.call_ids().len() == 2),
        "{:?}",
        switch.call_ids()
    );
    let refused = prepaid::wait_for_cdrs(&dir, &format!("{}#1", switch.call_ids()[1]), 1);
    assert_eq!(
        refused.len(),
        1,
        "the refused attempt has its CDR: {refused:?}"
    );
    assert!(
        refused[0].answer_ms.is_none() && refused[0].total_micros == 0,
        "{refused:?}"
    );
    assert_eq!(
        account_charges(&dir, account),
        seconds * 20_000,
        "charged nothing more"
    );
    let log = switch.log_text();
    assert!(!log.contains(PASSWORD), "the password is never logged");
}

/// `talktime users add` with the password on standard input; then its API token.
fn reseller_user_token(dir: &Path, name: &str, reseller: &str) -> String {
    common::add_user(
        dir,
        name,
        "reseller",
        &["--reseller", reseller],
        "a-long-password-1",
    );
    talktime(dir, &["users", "token", name])
}

#[test]
fn a_resellers_user_sees_its_tree_only_and_recharges_its_customers_once() {
    let dir = prepaid::data_dir("resellers-scope");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let shop = talktime(&dir, &["resellers", "add", "shop"]);
    let corner = talktime(&dir, &["resellers", "add", "corner", "--parent", "shop"]);
    let rival = talktime(&dir, &["resellers", "add", "rival"]);
    talktime(&dir, &["resellers", "recharge", "shop", "20.00"]);
    let rivals_customer = prepaid::card(&dir, "5556667778", 1_000_000, 0);
    talktime(
        &dir,
        &[
            "resellers",
            "customer",
            "--account",
            &rivals_customer.to_string(),
            "rival",
        ],
    );
    let token = reseller_user_token(&dir, "shop-clerk", "shop");
    let switch = start(&dir, ConfigFile::new());
    let request = |method: &str, path: &str, key: Option<&str>, body: &str| {
        let headers: Vec<(&str, &str)> = key
            .map(|key| ("Idempotency-Key", key))
            .into_iter()
            .collect();
        common::api_request(&switch, &token, method, path, &headers, body)
    };

    // Its tree: itself and its sub-reseller, never the rival.
    let (status, body) = request("GET", "/api/resellers", None, "");
    assert_eq!(status, 200, "{body}");
    let seen: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = seen.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["shop", "corner"], "{body}");
    assert_eq!(
        request("GET", &format!("/api/resellers/{corner}"), None, "").0,
        200
    );
    for path in [
        format!("/api/resellers/{rival}"),
        format!("/api/resellers/{rival}/statement"),
        format!("/api/accounts/{rivals_customer}"),
    ] {
        let (status, body) = request("GET", &path, None, "");
        assert_eq!(status, 404, "{path}: {body}");
    }
    // Its CDRs are its tree's: another tree's account is not there; carriers and buy costs
    // never show.
    let (status, body) = request(
        "GET",
        &format!("/api/cdrs/export?account={rivals_customer}"),
        None,
        "",
    );
    assert_eq!(status, 404, "{body}");
    let (status, body) = request("GET", "/api/cdrs/export", None, "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("call_id,attempt,"), "{body}");
    // Anything outside its routes is refused, changes included.
    for (method, path) in [
        ("GET", "/api/cdrs"),
        ("GET", "/api/carriers"),
        ("POST", "/api/resellers"),
    ] {
        let (status, body) = request(method, path, None, r#"{"name": "x"}"#);
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    let (status, body) = request(
        "POST",
        &format!("/api/resellers/{rival}/customers"),
        None,
        r#"{"number": "15550009999"}"#,
    );
    assert_eq!(status, 404, "{body}");

    // A pinless customer registered by number, recharged from the shop's credit once.
    let (status, body) = request(
        "POST",
        &format!("/api/resellers/{shop}/customers"),
        None,
        r#"{"number": "+15550001111"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let added: serde_json::Value = serde_json::from_str(&body).unwrap();
    let customer = added["account_id"].as_i64().unwrap();
    let (status, _) = request(
        "POST",
        &format!("/api/resellers/{shop}/customers"),
        None,
        r#"{"number": "15550001111"}"#,
    );
    assert_eq!(status, 409, "a number is registered once");
    let transfer = format!("/api/resellers/{shop}/transfers");
    let order = r#"{"number": "15550001111", "amount": "5.00"}"#;
    let (status, body) = request("POST", &transfer, Some("counter-1"), order);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""customer_balance":"5""#) && body.contains(r#""replayed":false"#),
        "{body}"
    );
    let (status, body) = request("POST", &transfer, Some("counter-1"), order);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""replayed":true"#),
        "the repeat moves nothing: {body}"
    );
    let (status, body) = request("POST", &transfer, None, order);
    assert_eq!(status, 400, "a transfer needs its key: {body}");
    let too_much = r#"{"number": "15550001111", "amount": "15.01"}"#;
    let (status, body) = request("POST", &transfer, Some("counter-2"), too_much);
    assert_eq!(status, 409, "beyond the shop's free credit: {body}");
    let rivals = format!(r#"{{"account_id": {rivals_customer}, "amount": "1.00"}}"#);
    let (status, body) = request("POST", &transfer, Some("counter-3"), &rivals);
    assert_eq!(status, 404, "not its customer: {body}");
    assert_eq!(prepaid::balance(&dir, customer), 5_000_000);
    assert_eq!(prepaid::balance(&dir, rivals_customer), 1_000_000);
    let (status, body) = request("GET", &format!("/api/accounts/{customer}"), None, "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!(r#""reseller_id":{shop}"#)), "{body}");
    let shown = talktime(&dir, &["resellers", "show", "shop"]);
    assert!(shown.contains("balance 15 USD"), "{shown}");
    // The registered number calls pinless: the shop's customer, by its caller ID.
    let store = prepaid::open(&dir);
    let found = prepaid::runtime()
        .block_on(store.lookup_caller_id(&talktime_pii::Pii::new("15550001111".to_owned())))
        .unwrap()
        .unwrap();
    assert_eq!(found.account_id, customer);
}

/// Seed 002, tip 3: disposable calling cards with their own tariff, 40 % over what the
/// reseller pays and billed 60/60, generated for the reseller and handed out as XLSX.
#[test]
fn a_disposable_batch_with_its_own_60_60_tariff_at_40_percent_margin_exported_as_xlsx() {
    let dir = prepaid::data_dir("resellers-tip3");
    prepaid::tariff(
        &dir,
        "demo",
        "49,Germany,0.10,0.04,1,1,0.05\n1,USA,0.60,0.30,1,1,0\n",
    );
    let name = "Calling cards rates 40% - 60/60 billing - 29 sept 2008";
    let made = talktime(
        &dir,
        &[
            "tariffs",
            "derive",
            name,
            "--from",
            "demo",
            "--margin",
            "40",
            "--initial-block",
            "60",
            "--increment",
            "60",
        ],
    );
    assert!(made.contains("with 2 rates at 40 % margin"), "{made}");
    let exported = talktime(&dir, &["tariffs", "export", name]);
    assert!(
        exported.contains("49,Germany,0.14,0.1,60,60,0.07"),
        "sells 40 % over the 0.10 it buys at, 60/60: {exported}"
    );
    let shop = talktime(&dir, &["resellers", "add", "shop"]);
    let switch = start(&dir, ConfigFile::new());
    let order = format!(
        r#"{{"name": "Calling card user batch 1", "count": 3, "value": "5.00",
            "disposable": true, "tariff": "{name}", "reseller": {shop}}}"#
    );
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let workbook = dir.join("batch.xlsx");
    let status = Command::new("curl")
        .args(["-s", "-o"])
        .arg(&workbook)
        .args(["-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {}", token.trim()))
        .args([
            "-H",
            "Content-Type: application/json",
            "-H",
            "Accept: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "--data",
            &order,
            &format!("http://{}/api/cards/batches", switch.admin),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "200");
    let rows = common::read_workbook(&workbook);
    assert_eq!(rows.len(), 4, "a header and three cards: {rows:?}");
    let pin_column = rows[0].iter().position(|cell| cell == "pin").unwrap();
    let pin = rows[1][pin_column].clone();
    assert_eq!(pin.len(), 10, "{rows:?}");
    assert!(rows[1].iter().any(|cell| cell == "disposable"), "{rows:?}");
    // A 5-second call on one of them is billed a whole minute at 0.14 plus the 0.07 fee,
    // and the card is the shop's customer.
    let rated = talktime(
        &dir,
        &["rate", "--pin", &pin, "--seconds", "5", "4930123456"],
    );
    let report: serde_json::Value = serde_json::from_str(&rated).unwrap();
    assert_eq!(report["charge"]["billed_seconds"], 60, "{rated}");
    assert_eq!(report["charge"]["total"]["amount"], "0.2100", "{rated}");
    let store = prepaid::open(&dir);
    let card = prepaid::runtime()
        .block_on(store.card_by_pin(&talktime_pii::Pii::new(pin)))
        .unwrap()
        .unwrap();
    let reseller = prepaid::runtime()
        .block_on(store.account_reseller(card.account_id))
        .unwrap();
    assert_eq!(reseller, Some(shop.parse().unwrap()));
}

/// Retail recharge by phone (issue 16): a shop's agent calls the retail line (SIPp keying
/// RFC 4733 digits at a human pace), keys the shop's agent PIN, a customer's number, 550
/// (cents) and 1 to confirm, and presses 1 again as a hurried agent does: the customer gets
/// 5.50 once and the shop pays it once. A number that is not the shop's customer is refused.
#[test]
fn a_retail_agent_recharges_a_customer_by_phone_once_though_it_confirms_twice() {
    let dir = prepaid::data_dir("resellers-retail");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    talktime(&dir, &["resellers", "add", "shop"]);
    talktime(&dir, &["resellers", "add", "rival"]);
    talktime(&dir, &["resellers", "recharge", "shop", "20.00"]);
    let pin_file = dir.join("agent.pin");
    std::fs::write(&pin_file, "24681357\n").unwrap();
    talktime(
        &dir,
        &[
            "resellers",
            "agent-pin",
            "shop",
            "--pin-file",
            pin_file.to_str().unwrap(),
        ],
    );
    let store = prepaid::open(&dir);
    let number = |text: &str| talktime_pii::Pii::new(text.to_owned());
    let (customer, rivals) = prepaid::runtime().block_on(async {
        let shop = store.reseller_by_name("shop").await.unwrap().unwrap();
        let rival = store.reseller_by_name("rival").await.unwrap().unwrap();
        let customer = store
            .add_pinless_customer(shop.id, "Ana", &number("15550003333"), 0)
            .await
            .unwrap();
        let rivals = store
            .add_pinless_customer(rival.id, "Bo", &number("15550004444"), 0)
            .await
            .unwrap();
        (customer, rivals)
    });
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw("[[access_numbers]]\nnumber = \"700\"\nretail = true\n")
            .ivr("first_digit_timeout_ms = 3000")
            .ivr("max_no_input = 1"),
    );
    let script = [
        (Duration::from_millis(2_000), "24681357#"),
        (Duration::from_millis(6_000), "15550003333#"),
        (Duration::from_millis(10_500), "550#"),
        (Duration::from_millis(14_500), "1"),
        (Duration::from_millis(14_900), "1"),
    ];
    let output = common::calls::call_at(
        "127.0.0.1",
        switch.sip,
        &dir,
        "700",
        "15557770000",
        &script,
        Duration::from_secs(20),
        Duration::from_secs(45),
    );
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        tail(&switch.log_text(), 40)
    );
    assert_eq!(prepaid::balance(&dir, customer), 5_500_000, "5.50 once");
    let shop = prepaid::runtime()
        .block_on(store.reseller_by_name("shop"))
        .unwrap()
        .unwrap();
    assert_eq!(shop.balance_micros, 14_500_000, "paid once by the shop");
    let log = switch.log_text();
    assert!(log.contains("recharge_done"), "{}", tail(&log, 40));
    assert!(!log.contains("24681357"), "the agent PIN is never logged");

    // The rival's customer is not the shop's: refused, nothing moves.
    let script = [
        (Duration::from_millis(2_000), "24681357#"),
        (Duration::from_millis(6_000), "15550004444#"),
        (Duration::from_millis(10_500), "100#"),
        (Duration::from_millis(14_500), "1"),
    ];
    let output = common::calls::call_at(
        "127.0.0.1",
        switch.sip,
        &dir,
        "700",
        "15557770000",
        &script,
        Duration::from_secs(18),
        Duration::from_secs(45),
    );
    assert!(output.status.success(), "{}", tail(&switch.log_text(), 40));
    assert_eq!(prepaid::balance(&dir, rivals), 0);
    assert!(switch.log_text().contains("unknown_customer"));
    let shop = prepaid::runtime()
        .block_on(store.reseller_by_name("shop"))
        .unwrap()
        .unwrap();
    assert_eq!(shop.balance_micros, 14_500_000);
}

/// Shared balance (seed 004): two phones, `alice` and `bob` (baresip, registered SIP
/// subscribers), on one account with a low-balance rule. Below 5.00 of free credit the account
/// carries one call, holding at most 1.00: alice's call is limited to what 1.00 pays (50 s at
/// 1.20 a minute), and bob's, while hers is up, is refused (`card_in_use`) before any carrier.
#[test]
fn a_shared_balance_below_its_threshold_carries_one_capped_call() {
    let dir = prepaid::data_dir("resellers-shared");
    prepaid::tariff(&dir, "demo", "44,UK,1.20,0.30,1,1,0\n");
    let account = prepaid::card(&dir, "1234567890", 4_000_000, 0);
    let account_arg = account.to_string();
    talktime(
        &dir,
        &[
            "accounts",
            "set",
            "--account",
            &account_arg,
            "--concurrency-limit",
            "5",
        ],
    );
    talktime(
        &dir,
        &[
            "accounts",
            "low-balance",
            "--account",
            &account_arg,
            "--below",
            "5.00",
            "--calls",
            "1",
            "--call-cap",
            "1.00",
        ],
    );
    let shown = talktime(&dir, &["accounts", "show", "--account", &account_arg]);
    assert!(
        shown.contains("low-balance rule below 5: 1 calls at once, call cap 1"),
        "{shown}"
    );
    let password_file = dir.join("phones.password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    for name in ["alice", "bob"] {
        talktime(
            &dir,
            &[
                "subscribers",
                "add",
                "--account",
                &account_arg,
                name,
                "--password-file",
                password_file.to_str().unwrap(),
            ],
        );
    }
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("uk", &carrier.address())
            .routes(&[("44", &["uk"])]),
    );
    let phone = |name: &str| {
        Baresip::start_with(
            &dir.join(name),
            "",
            &format!(
                "<sip:{name}@{};transport=udp>;auth_pass={PASSWORD};regint=0",
                switch.sip
            ),
        )
    };
    let (alice, bob) = (phone("alice"), phone("bob"));
    alice.dial(&format!("sip:00442071234567@{}", switch.sip));
    assert!(
        alice.wait_for("Call established", Duration::from_secs(15)),
        "{}",
        tail(&alice.log_text(), 20)
    );
    bob.dial(&format!("sip:00442079460000@{}", switch.sip));
    assert!(
        bob.wait_for("terminated", Duration::from_secs(20)),
        "bob's call is refused: {}",
        tail(&bob.log_text(), 20)
    );
    alice.send("/hangup\n");
    assert!(alice.wait_for("terminated", Duration::from_secs(10)));
    let carrier_run = carrier.finish(Duration::from_secs(10));
    assert!(carrier_run.success(), "{}", carrier_run.describe());
    let ids = switch.call_ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let store = prepaid::open(&dir);
    let alices = prepaid::runtime()
        .block_on(store.reservation(&format!("{}#1", ids[0])))
        .unwrap()
        .unwrap();
    assert_eq!(alices.amount_micros, 1_000_000, "the cap");
    assert_eq!(
        alices.max_duration_ms, 50_000,
        "what 1.00 pays at 1.20 a minute"
    );
    let bobs = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[1]), 1);
    assert_eq!(
        bobs.first().and_then(|cdr| cdr.disconnect_cause.as_deref()),
        Some("card_in_use"),
        "{bobs:?}"
    );
    assert_eq!(prepaid::open_reservations(&dir, account), 0);
}
