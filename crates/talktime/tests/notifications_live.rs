//! E-mail notifications through a real SMTP server (issue 18): Python's aiosmtpd, started by the
//! test, writes every mail it takes into a Maildir. A call that takes a card under its
//! threshold produces exactly one mail with the right amount; with the mail server down (and the
//! switch restarted meanwhile) the next crossing's mail arrives once the server is back; a
//! carrier that stops answering and a card about to expire each mail their reader.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::calls::{call_and_hang_up, signal, start, wait_for_exit};
use common::mail::{MailServer, mails, wait_for_mail};
use common::prepaid::{self, ConfigFile};
use common::{assert_sipp_ok, free_port, tail};
use talktime_pii::Pii;
use talktime_store::{ExpiryRule, NewCard};

const PIN: &str = "5105105101";

fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn pin_call(switch: &common::Switch, dir: &Path, what: &str) {
    let output = call_and_hang_up(
        switch,
        dir,
        &[
            (Duration::from_millis(2000), "5105105101#"),
            (Duration::from_millis(5600), "0015551234567#"),
        ],
        Duration::from_secs(2),
    );
    assert_sipp_ok(&output, switch, what);
}

fn config(carrier: &str, smtp_port: u16, dead_carrier_port: u16) -> ConfigFile {
    ConfigFile::new()
        .carrier("answer", carrier)
        .raw(&format!(
            "[[carriers]]\nname = \"silent\"\nhost = \"127.0.0.1\"\nport = {dead_carrier_port}\ntransport = \"tcp\"\n\
             options_interval_ms = 300\n\n\
             [notifications]\nsmtp_url = \"smtp://127.0.0.1:{smtp_port}\"\n\
             from = \"Talktime <billing@talktime.test>\"\n\
             operator_email = \"noc@talktime.test\"\nretry_s = 1\npoll_ms = 200\n\
             card_expiry_warning_days = 7\nexpiry_check_s = 1\n"
        ))
        .routes(&[("", &["answer"])])
}

#[test]
fn a_low_balance_mails_once_per_crossing_and_survives_a_mail_outage_and_a_restart() {
    let dir = prepaid::data_dir("notifications");
    let maildir = dir.join("maildir");
    // A minute's block: each 2-second call costs 0.60.
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,60,60,0\n");
    let account = prepaid::card(&dir, PIN, 1_500_000, 0);
    let notify = cli(
        &dir,
        &[
            "accounts",
            "notify",
            "--pin",
            PIN,
            "--email",
            "owner@example.test",
            "--below",
            "1.00,0.50",
        ],
    );
    assert!(notify.status.success(), "{notify:?}");
    // A card expiring in three days, with an address: warned once.
    {
        let store = prepaid::open(&dir);
        let mut card = NewCard::new(Pii::new("5205205202".into()), "USD", 1_000_000);
        card.expiry = ExpiryRule {
            expires_at_ms: Some(talktime::server::wall_clock_ms() + 3 * 86_400_000),
            valid_after_first_use_ms: None,
        };
        let runtime = prepaid::runtime();
        let card = runtime.block_on(store.create_card(&card, 0)).unwrap();
        let settings = talktime_store::NotifySettings {
            email: Some(Pii::new("traveller@example.test".into())),
            below_micros: Vec::new(),
            language: Some("es".into()),
        };
        runtime
            .block_on(store.set_notify_settings(card.account_id, &settings))
            .unwrap();
    }
    let smtp_port = free_port();
    let server = MailServer::start(smtp_port, &maildir);
    let carrier = common::scenario::BackgroundSipp::uas(
        120,
        &common::scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "2"],
    );
    let settings = config(&carrier.address(), smtp_port, free_port());
    let mut switch = start(&dir, settings.clone());

    // 1.50 -> 0.90: one mail, with the amount.
    pin_call(&switch, &dir, "first call");
    let first = wait_for_mail(&maildir, "0.90 USD", Duration::from_secs(15));
    let low: Vec<&String> = first
        .iter()
        .filter(|mail| mail.contains("owner@"))
        .collect();
    assert_eq!(low.len(), 1, "{first:?}\n{}", tail(&switch.log_text(), 20));
    assert!(
        low[0].contains("Subject: Your balance is low: 0.90 USD"),
        "{}",
        low[0]
    );
    assert!(low[0].contains("below the 1.00 USD"), "{}", low[0]);
    // The operator heard of the silent carrier, the traveller of the card (in Spanish).
    let all = wait_for_mail(&maildir, "Carrier silent is down", Duration::from_secs(10));
    assert!(
        all.iter()
            .any(|mail| mail.contains("noc@talktime.test") && mail.contains("silent")),
        "{all:?}"
    );
    let all = wait_for_mail(&maildir, "traveller@", Duration::from_secs(10));
    let expiry: Vec<&String> = all.iter().filter(|m| m.contains("traveller@")).collect();
    assert_eq!(expiry.len(), 1, "{all:?}");
    assert!(
        expiry[0].contains("=?utf-8?"),
        "a Spanish subject: {}",
        expiry[0]
    );

    // The mail server goes away; the next crossing (0.90 -> 0.30, under 0.50) is queued, the
    // switch is restarted meanwhile, and the mail arrives when the server is back.
    drop(server);
    pin_call(&switch, &dir, "second call");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !switch.log_text().contains("mail not sent") {
        assert!(
            Instant::now() < deadline,
            "no failed send while the server is down\n{}",
            tail(&switch.log_text(), 20)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(&switch, "TERM");
    assert!(wait_for_exit(&mut switch, Duration::from_secs(20)).is_some());
    let owners = |all: &[String]| -> Vec<String> {
        all.iter()
            .filter(|mail| mail.contains("owner@"))
            .cloned()
            .collect()
    };
    assert_eq!(owners(&mails(&maildir)).len(), 1);
    let _server = MailServer::start(smtp_port, &maildir);
    let switch = start(&dir, settings);
    let after = owners(&wait_for_mail(
        &maildir,
        "0.30 USD",
        Duration::from_secs(20),
    ));
    assert_eq!(
        after.len(),
        2,
        "{after:?}\n{}",
        tail(&switch.log_text(), 20)
    );
    let last = after.iter().find(|mail| mail.contains("0.30 USD")).unwrap();
    assert!(last.contains("below the 0.50 USD"), "{last}");
    // Nothing more: each crossing mailed once, the balance is what the two calls left.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(owners(&mails(&maildir)).len(), 2);
    assert_eq!(prepaid::balance(&dir, account), 300_000);
    drop(carrier);
}

/// `?tls=starttls`: the mail goes only over STARTTLS, the server's certificate checked
/// against `[tls] ca_file` (aiosmtpd requires STARTTLS when given a certificate).
#[test]
fn mail_goes_over_starttls_to_a_server_whose_certificate_chains_to_the_ca() {
    let dir = prepaid::data_dir("notifications-starttls");
    let certificates = common::certs::Certificates::make(&dir.join("certs"));
    let maildir = dir.join("maildir");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,60,60,0\n");
    {
        let store = prepaid::open(&dir);
        let mut card = NewCard::new(Pii::new("5305305303".into()), "USD", 1_000_000);
        card.expiry = ExpiryRule {
            expires_at_ms: Some(talktime::server::wall_clock_ms() + 86_400_000),
            valid_after_first_use_ms: None,
        };
        let runtime = prepaid::runtime();
        let card = runtime.block_on(store.create_card(&card, 0)).unwrap();
        let settings = talktime_store::NotifySettings {
            email: Some(Pii::new("secure@example.test".into())),
            below_micros: Vec::new(),
            language: Some("en".into()),
        };
        runtime
            .block_on(store.set_notify_settings(card.account_id, &settings))
            .unwrap();
    }
    let port = free_port();
    let _server = MailServer::start_with(
        port,
        &maildir,
        &[
            "--tlscert",
            &certificates.path("server.pem"),
            "--tlskey",
            &certificates.path("server.key"),
        ],
    );
    let switch = start(
        &dir,
        ConfigFile::new().raw(&format!(
            "[tls]\nca_file = \"{}\"\n\n[notifications]\n\
             smtp_url = \"smtp://localhost:{port}?tls=starttls\"\n\
             retry_s = 1\npoll_ms = 200\nexpiry_check_s = 1\n",
            certificates.path("ca.pem")
        )),
    );
    let all = wait_for_mail(&maildir, "secure@example.test", Duration::from_secs(15));
    assert_eq!(all.len(), 1, "{all:?}\n{}", tail(&switch.log_text(), 20));
    assert!(
        all[0].contains("Your calling card expires soon"),
        "{}",
        all[0]
    );
    assert!(!switch.log_text().contains("mail not sent"));
}
