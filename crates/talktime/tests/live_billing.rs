//! The billing vocabulary on live calls (issue 13): the real binary, a SIPp caller keying a
//! PIN, a SIPp carrier, the ledger read back.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::calls::{answering_carrier, call_and_hang_up, start};
use common::prepaid::{self, ConfigFile};
use common::{assert_sipp_ok, tail};
use talktime_billing::{Currency, TariffSettings, Tax, TaxKind};
use talktime_pii::Pii;
use talktime_store::NewCard;

const PIN: &str = "3903903901";

/// The caller keys the PIN and a US number and stays until the switch hangs up (40 s at most).
fn call_until_cut(switch: &common::Switch, dir: &std::path::Path, what: &str) {
    let script = [
        (Duration::from_millis(2000), "3903903901#"),
        (Duration::from_millis(5600), "0015551234567#"),
    ];
    let output = common::calls::call(switch, dir, "anonymous", &script, Duration::from_secs(40));
    assert_sipp_ok(&output, switch, what);
}

/// The caller keys the PIN and a US number, then stays 2 s on the line after it.
fn pin_call(switch: &common::Switch, dir: &std::path::Path) -> std::process::Output {
    call_and_hang_up(
        switch,
        dir,
        &[
            (Duration::from_millis(2000), "3903903901#"),
            (Duration::from_millis(5600), "0015551234567#"),
        ],
        Duration::from_secs(2),
    )
}

#[test]
fn a_cards_first_call_pays_activation_connection_block_and_tax_and_its_second_no_activation() {
    let dir = prepaid::data_dir("activation");
    let settings = TariffSettings {
        currency: Currency::new("USD").unwrap(),
        taxes: vec![Tax {
            name: "VAT".into(),
            kind: TaxKind::Percent(10.into()),
            compound: false,
        }],
        ..TariffSettings::default()
    };
    // 0.60 a minute in 3-minute blocks, 0.10 to connect.
    prepaid::tariff_with(&dir, "demo", "1,USA,0.60,0.30,180,180,0.10\n", &settings);
    let account = {
        let store = prepaid::open(&dir);
        let mut card = NewCard::new(Pii::new(PIN.to_owned()), "USD", 5_000_000);
        card.activation_fee_micros = 390_000;
        prepaid::runtime()
            .block_on(store.create_card(&card, 0))
            .unwrap()
            .account_id
    };
    let carrier = common::scenario::BackgroundSipp::uas(
        90,
        &common::scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "2"],
    );
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );

    assert_sipp_ok(&pin_call(&switch, &dir), &switch, "first call");
    assert_sipp_ok(&pin_call(&switch, &dir), &switch, "second call");
    let ids = switch.call_ids();
    assert_eq!(ids.len(), 2, "{}", tail(&switch.log_text(), 30));
    let first = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[0]), 1).remove(0);
    let second = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[1]), 1).remove(0);
    // (1.80 block + 0.10 connection + 0.39 activation) x 1.10 = 2.519.
    assert_eq!(first.billed_seconds, 180);
    assert_eq!(first.total_micros, 2_519_000, "{}", first.fees_json);
    assert!(
        first.fees_json.contains("activation"),
        "{}",
        first.fees_json
    );
    assert_eq!(first.tax_micros, 229_000);
    // (1.80 + 0.10) x 1.10 = 2.09: no activation the second time.
    assert_eq!(second.total_micros, 2_090_000, "{}", second.fees_json);
    assert!(!second.fees_json.contains("activation"));
    assert_eq!(
        prepaid::balance(&dir, account),
        5_000_000 - 2_519_000 - 2_090_000
    );
    let card = prepaid::runtime()
        .block_on(prepaid::open(&dir).card_by_pin(&Pii::new(PIN.to_owned())))
        .unwrap()
        .unwrap();
    assert!(
        card.first_used_at_ms.is_some(),
        "the first call recorded the card's first use"
    );
    drop(carrier);
}

#[test]
fn a_card_expires_the_set_time_after_its_first_call() {
    let dir = prepaid::data_dir("first-use-expiry");
    prepaid::tariff(&dir, "demo", "1,USA,6.00,1.00,1,1,0\n");
    {
        let store = prepaid::open(&dir);
        let mut card = NewCard::new(Pii::new(PIN.to_owned()), "USD", 5_000_000);
        // "Expires N days after first use", with N days = 4 s.
        card.expiry.valid_after_first_use_ms = Some(4_000);
        prepaid::runtime()
            .block_on(store.create_card(&card, 0))
            .unwrap();
    }
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    assert_sipp_ok(&pin_call(&switch, &dir), &switch, "the first call connects");
    std::thread::sleep(Duration::from_secs(4));
    // The expired card's PIN sounds exactly like a wrong one (issue 20: a guesser must not
    // learn that it exists): "invalid PIN" three times, then goodbye.
    let refused = common::calls::call(
        &switch,
        &dir,
        "anonymous",
        &[
            (Duration::from_millis(2000), "3903903901#"),
            (Duration::from_millis(9000), "3903903901#"),
            (Duration::from_millis(16000), "3903903901#"),
        ],
        Duration::from_secs(40),
    );
    assert_sipp_ok(&refused, &switch, "the switch hangs up an expired card");
    let log = switch.log_text();
    // The operator's log keeps the real reason.
    assert!(log.contains("CardExpired"), "{}", tail(&log, 30));
    assert!(!log.contains("\"card_expired\""), "{}", tail(&log, 30));
    assert!(
        log.contains("cause=\"authentication_failed\"")
            || log.contains("cause=authentication_failed"),
        "{}",
        tail(&log, 30)
    );
    assert_eq!(switch.call_ids().len(), 2);
    drop(carrier);
}

/// Seed 002, tip 2: a card spends its owning account's credit too, and calling stops when the
/// owner's money ends even if the card has more.
#[test]
fn a_card_bounded_by_its_owners_balance_is_cut_when_the_owners_money_ends() {
    let dir = prepaid::data_dir("owner-bound");
    prepaid::tariff(&dir, "demo", "1,USA,6.00,1.00,1,1,0\n");
    let (owner, card_account) = {
        let store = prepaid::open(&dir);
        prepaid::runtime().block_on(async {
            let owner = store
                .create_account(
                    &talktime_store::NewAccount::new("reseller customer", "USD"),
                    0,
                )
                .await
                .unwrap();
            store.recharge(owner.id, 300_000, None, 0).await.unwrap();
            let mut card = NewCard::new(Pii::new(PIN.to_owned()), "USD", 5_000_000);
            card.owner_account_id = Some(owner.id);
            (
                owner.id,
                store.create_card(&card, 0).await.unwrap().account_id,
            )
        })
    };
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    call_until_cut(&switch, &dir, "cut at the owner's limit");
    let cdr = common::calls::only_attempt_cdrs(&switch, &dir).remove(0);
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("credit_exhausted"));
    assert_eq!(
        cdr.billed_seconds, 3,
        "0.30 of the owner's buys 3 s at 0.10/s"
    );
    assert_eq!(prepaid::balance(&dir, owner), 0);
    assert_eq!(prepaid::balance(&dir, card_account), 5_000_000 - 300_000);
    drop(carrier);
}

/// Toll-fraud caps (issue 20): a call is cut at the most one call may cost, and the account's
/// next call at what is left of its daily spend, each billed at most the cap.
#[test]
fn calls_are_cut_at_the_per_call_cost_cap_and_the_daily_spend_cap() {
    let dir = prepaid::data_dir("spend-caps");
    prepaid::tariff(&dir, "demo", "1,USA,6.00,1.00,1,1,0\n");
    let account = prepaid::card(&dir, PIN, 5_000_000, 0);
    let carrier = common::scenario::BackgroundSipp::uas(
        90,
        &common::scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "2"],
    );
    let mut config = ConfigFile::new()
        .carrier("answer", &carrier.address())
        .routes(&[("", &["answer"])]);
    // ConfigFile has no [billing] table: the embedded one is merged key by key.
    config = config.raw("[billing]\nmax_call_cost = \"0.40\"\nmax_daily_spend = \"0.60\"\n");
    let switch = start(&dir, config);
    for what in ["cut at the call cap", "cut at the day's cap"] {
        call_until_cut(&switch, &dir, what);
    }
    let ids = switch.call_ids();
    let first = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[0]), 1).remove(0);
    let second = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[1]), 1).remove(0);
    assert_eq!(first.disconnect_cause.as_deref(), Some("cost_cap"));
    assert_eq!((first.billed_seconds, first.total_micros), (4, 400_000));
    assert_eq!(second.disconnect_cause.as_deref(), Some("daily_spend_cap"));
    assert_eq!((second.billed_seconds, second.total_micros), (2, 200_000));
    assert_eq!(prepaid::balance(&dir, account), 5_000_000 - 600_000);
    drop(carrier);
}

fn maintenance_postings(dir: &std::path::Path, account: i64) -> Vec<i64> {
    let store = prepaid::open(dir);
    prepaid::runtime()
        .block_on(store.transactions(account))
        .unwrap()
        .into_iter()
        .filter(|entry| entry.kind == talktime_store::TransactionKind::Maintenance)
        .map(|entry| entry.amount_micros)
        .collect()
}

/// A maintenance fee every 3 s from the card's first use: the running switch books each period
/// once; while it is down none is booked, and the next start catches up with one posting per
/// missed period, never two for one.
#[test]
fn maintenance_fees_fall_due_while_the_switch_runs_and_are_caught_up_once_after_a_restart() {
    let dir = prepaid::data_dir("maintenance");
    prepaid::tariff(&dir, "demo", "1,USA,6.00,1.00,1,1,0\n");
    let first_use = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let account = {
        let store = prepaid::open(&dir);
        prepaid::runtime().block_on(async {
            let card = store
                .create_card(&NewCard::new(Pii::new(PIN.to_owned()), "USD", 5_000_000), 0)
                .await
                .unwrap();
            store.activate_card(card.id, 0, first_use).await.unwrap();
            let plan = talktime_store::PlanRow {
                account_id: card.account_id,
                maintenance_fee_micros: 250_000,
                maintenance_every_ms: 3_000,
                ..talktime_store::PlanRow::default()
            };
            store.set_account_plan(&plan, first_use).await.unwrap();
            card.account_id
        })
    };
    let config = ConfigFile::new().raw("[billing]\nmaintenance_check_ms = 200\n");
    let config_path = config.write(&dir);
    let config_arg = ["--config", config_path.to_str().unwrap()];
    let mut switch = common::Switch::start_in(&dir, &config_arg);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while maintenance_postings(&dir, account).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            tail(&switch.log_text(), 20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    switch.child.kill().unwrap();
    switch.child.wait().unwrap();
    let before = maintenance_postings(&dir, account).len();
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(
        maintenance_postings(&dir, account).len(),
        before,
        "nothing while down"
    );
    let restarted = common::Switch::start_in(&dir, &config_arg);
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let due = || usize::try_from((now_ms() - first_use) / 3_000).unwrap();
    // The restarted switch catches up within a few of its 200 ms passes (longer on a loaded
    // machine): wait for it, then compare with the periods due.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while maintenance_postings(&dir, account).len() + 1 < due()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let postings = maintenance_postings(&dir, account);
    let due = due();
    // One posting per period that fell due (a period may fall due in the last instant).
    assert!(
        postings.len() == due || postings.len() + 1 == due,
        "{} postings for {due} periods\n{}",
        postings.len(),
        tail(&restarted.log_text(), 20)
    );
    assert!(postings.len() > before, "caught up after the restart");
    assert!(postings.iter().all(|amount| *amount == -250_000));
    let charged = i64::try_from(postings.len()).unwrap() * 250_000;
    assert_eq!(prepaid::balance(&dir, account), 5_000_000 - charged);
}

/// Seed 003 package billing: free seconds on the package's destinations are used before
/// money, the talk-time limit counts them, and the settle records them used.
#[test]
fn a_packages_free_seconds_are_used_first_and_counted_in_the_limit() {
    let dir = prepaid::data_dir("package");
    prepaid::tariff(&dir, "demo", "1,USA,6.00,1.00,1,1,0\n");
    // 0.10 buys 1 s at 0.10/s; the package adds 5 free seconds on +1.
    let account = prepaid::card(&dir, PIN, 100_000, 0);
    {
        let store = prepaid::open(&dir);
        let plan = talktime_store::PlanRow {
            account_id: account,
            package_seconds: 5,
            package_prefixes: "1".into(),
            package_every_ms: 30 * 86_400_000,
            ..talktime_store::PlanRow::default()
        };
        prepaid::runtime()
            .block_on(store.set_account_plan(&plan, 0))
            .unwrap();
    }
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    call_until_cut(&switch, &dir, "cut after package + credit");
    let cdr = common::calls::only_attempt_cdrs(&switch, &dir).remove(0);
    assert_eq!(cdr.billed_seconds, 6, "5 free seconds, then 1 paid");
    assert_eq!(cdr.total_micros, 100_000);
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("credit_exhausted"));
    assert_eq!(prepaid::balance(&dir, account), 0);
    let plan = prepaid::runtime()
        .block_on(prepaid::open(&dir).account_plan(account))
        .unwrap()
        .unwrap();
    assert_eq!(plan.package_used_seconds, 5);
    drop(carrier);
}

/// IVR minute shrinking (seed 003): the caller is told more talk time than the real limit,
/// and the call is cut at the real one.
#[test]
fn minute_shrinking_announces_more_than_the_real_limit_and_cuts_at_the_real_one() {
    let dir = prepaid::data_dir("shrinking");
    {
        let store = prepaid::open(&dir);
        prepaid::runtime().block_on(async {
            let settings = TariffSettings {
                currency: Currency::new("USD").unwrap(),
                ..TariffSettings::default()
            };
            let tariff = store
                .create_tariff("demo", "USD", &settings.to_json(), 0)
                .await
                .unwrap();
            let csv = "prefix,description,sell_rate,buy_rate,initial_block,increment,\
                       connection_fee,shrink_percent\n1,USA,6.00,1.00,1,1,0,50\n";
            let extras = talktime::ledger::rate_extras_columns();
            let report = store
                .import_tariff_csv_with(
                    tariff.id,
                    csv.as_bytes(),
                    talktime_store::ImportOptions::default(),
                    Some(&extras),
                )
                .await
                .unwrap();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
        });
    }
    let account = prepaid::card(&dir, PIN, 500_000, 0);
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    call_until_cut(&switch, &dir, "cut at the real limit");
    let log = switch.log_text();
    assert!(
        log.contains("limit_ms=5000 announced_ms=10000"),
        "0.50 buys 5 s, told 5 s / 50 % = 10 s:\n{}",
        tail(&log, 20)
    );
    let cdr = common::calls::only_attempt_cdrs(&switch, &dir).remove(0);
    assert_eq!(cdr.billed_seconds, 5);
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("credit_exhausted"));
    assert_eq!(prepaid::balance(&dir, account), 0);
    drop(carrier);
}

#[test]
fn a_pound_cards_balance_is_spoken_in_pounds_and_pence() {
    let dir = prepaid::data_dir("pounds");
    let settings = TariffSettings {
        currency: Currency::new("GBP").unwrap(),
        ..TariffSettings::default()
    };
    prepaid::tariff_with(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n", &settings);
    {
        let store = prepaid::open(&dir);
        let card = NewCard::new(Pii::new(PIN.to_owned()), "GBP", 12_500_000);
        prepaid::runtime()
            .block_on(store.create_card(&card, 0))
            .unwrap();
    }
    let carrier = common::scenario::BackgroundSipp::uas(
        60,
        &common::scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "1"],
    );
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );

    assert_sipp_ok(&pin_call(&switch, &dir), &switch, "pound card call");
    let log = switch.log_text();
    let spoken = log
        .lines()
        .find(|line| line.contains("playing") && line.contains("you_have"))
        .unwrap_or_else(|| panic!("no balance announcement: {}", tail(&log, 40)));
    // "You have twelve pounds and fifty pence", every word a shipped prompt.
    for word in [
        "\"num_12\"",
        "\"pounds\"",
        "\"and\"",
        "\"num_50\"",
        "\"pence\"",
    ] {
        assert!(spoken.contains(word), "{word} missing from {spoken}");
    }
    assert!(!log.contains("prompt missing"), "{}", tail(&log, 40));
}

/// `talktime <args> --data-dir DIR`, which must succeed.
fn cli(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

#[test]
fn an_accounts_own_taxes_replace_its_tariffs_on_its_calls() {
    let dir = prepaid::data_dir("account-taxes");
    let settings = TariffSettings {
        currency: Currency::new("USD").unwrap(),
        taxes: vec![Tax {
            name: "VAT".into(),
            kind: TaxKind::Percent(10.into()),
            compound: false,
        }],
        ..TariffSettings::default()
    };
    // 0.60 a minute in 3-minute blocks, 0.10 to connect.
    prepaid::tariff_with(&dir, "demo", "1,USA,0.60,0.30,180,180,0.10\n", &settings);
    {
        let store = prepaid::open(&dir);
        let card = NewCard::new(Pii::new(PIN.to_owned()), "USD", 5_000_000);
        prepaid::runtime()
            .block_on(store.create_card(&card, 0))
            .unwrap();
    }
    // A bad file is refused with its reason and changes nothing.
    let bad = dir.join("bad-taxes.toml");
    std::fs::write(&bad, "[[taxes]]\nname = \"VAT\"\npercent = \"ten\"\n").unwrap();
    let refused = cli(
        &dir,
        &[
            "accounts",
            "set",
            "--pin",
            PIN,
            "--taxes",
            bad.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("ten"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // A 5 % sales tax of the account's own instead of the tariff's 10 % VAT.
    let own = dir.join("own-taxes.toml");
    std::fs::write(&own, "[[taxes]]\nname = \"Sales tax\"\npercent = \"5\"\n").unwrap();
    let set = cli(
        &dir,
        &[
            "accounts",
            "set",
            "--pin",
            PIN,
            "--taxes",
            own.to_str().unwrap(),
        ],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );

    let carrier = common::scenario::BackgroundSipp::uas(
        60,
        &common::scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "1"],
    );
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    assert_sipp_ok(
        &pin_call(&switch, &dir),
        &switch,
        "call with the account's taxes",
    );
    let ids = switch.call_ids();
    let cdr = prepaid::wait_for_cdrs(&dir, &format!("{}#1", ids[0]), 1).remove(0);
    // (1.80 block + 0.10 connection) x 1.05 = 1.995.
    assert_eq!(cdr.total_micros, 1_995_000, "{}", cdr.taxes_json);
    assert_eq!(cdr.tax_micros, 95_000);
    assert!(cdr.taxes_json.contains("Sales tax"), "{}", cdr.taxes_json);
    assert!(!cdr.taxes_json.contains("VAT"), "{}", cdr.taxes_json);
}

/// Destination lists (issue 20): the tariff denies 1900, the account (through the CLI) allows
/// only 1 and denies 1555; a caller trying both is refused each time without a carrier call and
/// then connects to an allowed number.
#[test]
fn destinations_denied_by_the_tariff_or_the_account_are_refused_and_an_allowed_one_connects() {
    let dir = prepaid::data_dir("destination-lists");
    let mut settings = TariffSettings::default();
    settings.destinations.denied = vec!["1900".into()];
    prepaid::tariff_with(&dir, "demo", "1,USA,0.60,0.30,60,60,0\n", &settings);
    {
        let store = prepaid::open(&dir);
        let card = NewCard::new(Pii::new(PIN.to_owned()), "USD", 5_000_000);
        prepaid::runtime()
            .block_on(store.create_card(&card, 0))
            .unwrap();
    }
    let bad = cli(&dir, &["accounts", "set", "--pin", PIN, "--deny", "15x5"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("15x5"));
    let set = cli(
        &dir,
        &[
            "accounts", "set", "--pin", PIN, "--allow", "1", "--deny", "1555",
        ],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let carrier = common::scenario::BackgroundSipp::uas(
        60,
        &common::scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "1"],
    );
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    let output = call_and_hang_up(
        &switch,
        &dir,
        &[
            (Duration::from_millis(2000), "3903903901#"),
            (Duration::from_millis(5600), "0015551234567#"),
            (Duration::from_millis(11600), "0019005550100#"),
            (Duration::from_millis(17600), "0012125550100#"),
        ],
        Duration::from_secs(2),
    );
    assert_sipp_ok(&output, &switch, "two refused numbers, then an allowed one");
    let log = switch.log_text();
    assert_eq!(
        log.matches("blocked_destination").count(),
        2,
        "{}",
        tail(&log, 40)
    );
    let ids = switch.call_ids();
    // Each try is an attempt of its own: two refused, the third connected and billed.
    for (attempt, number, cause) in [
        (1, "+15551234567", "blocked_destination"),
        (2, "+19005550100", "blocked_destination"),
        (3, "+12125550100", "caller_hung_up"),
    ] {
        let cdr = prepaid::wait_for_cdrs(&dir, &format!("{}#{attempt}", ids[0]), 1).remove(0);
        assert_eq!(cdr.destination.expose(), number);
        assert_eq!(cdr.disconnect_cause.as_deref(), Some(cause));
        assert_eq!(cdr.billed_seconds > 0, attempt == 3, "{cdr:?}");
    }
    drop(carrier);
}
