//! The caller's services through the running binary (issue 21): SIPp callers key DTMF at a
//! human pace; vouchers and speed dials are made with the operator's CLI.
//! - a voucher keyed by two calls at the same moment on a recharge line credits once;
//! - `#` redials the last number, `*4` stores it, `4` then silence calls it, and a speed dial
//!   stored with `talktime accounts speed-dial` is called with its key and `#`;
//! - a language chosen in the menu is remembered for the caller's next call;
//! - a language written as files only (German, made here) is spoken by its own grammar.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::calls::{answering_carrier, call_and_hang_up, call_at, call_number, start, start_with};
use common::prepaid::{self, ConfigFile};
use common::scenario::BackgroundSipp;
use common::{Switch, repo_root, scenario, tail};

const RATES: &str = "1,USA,6.00,1.00,1,1,0\n44,UK,6.00,1.00,1,1,0\n";
const PIN: &str = "1234567890";
const PIN_AT: Duration = Duration::from_millis(2000);
const AFTER_PIN_AT: Duration = Duration::from_millis(5600);

/// Every prompt list the switch played, in order, with its language: `es ["enter_pin"]`.
fn played(switch: &Switch) -> Vec<String> {
    switch
        .log_text()
        .lines()
        .filter(|line| line.contains("playing call="))
        .filter_map(|line| {
            let language = line.split("language=").nth(1)?.split(' ').next()?;
            let language = language.trim_matches('"');
            let prompts = line.split("prompts=").nth(1)?;
            Some(format!("{language} {prompts}"))
        })
        .collect()
}

fn assert_ok(output: &std::process::Output, switch: &Switch, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {}\n--- switch log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        tail(&switch.log_text(), 40)
    );
}

#[test]
fn a_voucher_keyed_by_two_calls_at_once_credits_once() {
    let dir = prepaid::data_dir("voucher-race");
    prepaid::tariff(&dir, "demo", RATES);
    let first = prepaid::card(&dir, PIN, 1_000_000, 0);
    let second = prepaid::card(&dir, "5566778899", 1_000_000, 0);
    let csv = common::cli(
        &dir,
        &[
            "vouchers", "generate", "--name", "shop", "--count", "2", "--value", "5.00",
        ],
    );
    let codes: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(1).unwrap().to_owned())
        .collect();
    assert!(codes.iter().all(|code| code.len() == 12), "{csv}");
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw("[[access_numbers]]\nnumber = \"400\"\nrecharge_only = true\n")
            .carrier("us", &carrier.address())
            .routes(&[("", &["us"])]),
    );
    let sip = switch.sip;
    // Both callers key the first code at the same moment. The one who loses hears "already
    // used" and is asked again: it keys the second code. The winner has said goodbye by then
    // (the farewell takes no keys).
    let callers: Vec<_> = [PIN, "5566778899"]
        .into_iter()
        .map(|pin| {
            let (dir, codes) = (dir.clone(), codes.clone());
            std::thread::spawn(move || {
                let script = [
                    (PIN_AT, format!("{pin}#")),
                    (AFTER_PIN_AT, format!("{}#", codes[0])),
                    (Duration::from_secs(12), format!("{}#", codes[1])),
                ];
                let script: Vec<(Duration, &str)> = script
                    .iter()
                    .map(|(at, keys)| (*at, keys.as_str()))
                    .collect();
                call_at(
                    "127.0.0.1",
                    sip,
                    &dir,
                    "400",
                    "anonymous",
                    &script,
                    Duration::from_secs(16),
                    Duration::from_secs(40),
                )
            })
        })
        .collect();
    for caller in callers {
        let output = caller.join().unwrap();
        assert_ok(&output, &switch, "a recharge call");
    }
    assert_eq!(
        [
            prepaid::balance(&dir, first),
            prepaid::balance(&dir, second)
        ],
        [6_000_000, 6_000_000],
        "each account got one voucher"
    );
    let prompts = played(&switch);
    let count = |prompt: &str| prompts.iter().filter(|line| line.contains(prompt)).count();
    assert_eq!(
        (count("\"voucher_accepted\""), count("\"voucher_used\"")),
        (2, 1),
        "{prompts:#?}"
    );
    let listed = common::cli(&dir, &["vouchers", "list", "1"]);
    let users: Vec<&str> = listed
        .lines()
        .filter(|line| line.contains("used_by_account_id"))
        .collect();
    assert_eq!(users.len(), 2, "{listed}");
    assert_ne!(
        users[0], users[1],
        "two accounts, one voucher each: {listed}"
    );
    assert!(
        codes.iter().all(|code| !listed.contains(code.as_str())),
        "the list never shows codes"
    );
}

/// A SIPp carrier that answers `calls` calls (and echoes their RTP).
fn carrier_for(calls: u32) -> BackgroundSipp {
    let calls = calls.to_string();
    BackgroundSipp::uas(
        120,
        &scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", &calls],
    )
}

#[test]
fn redial_and_speed_dials_call_the_stored_numbers() {
    let dir = prepaid::data_dir("speed-dials");
    prepaid::tariff(&dir, "demo", RATES);
    let account = prepaid::card(&dir, PIN, 20_000_000, 0);
    let carrier = carrier_for(4);
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("us", &carrier.address())
            .routes(&[("", &["us"])]),
    );
    let pin = (PIN_AT, "1234567890#");
    let calls: [(&str, &[(Duration, &str)]); 4] = [
        ("a first call", &[pin, (AFTER_PIN_AT, "0015551234567#")]),
        ("# redials it", &[pin, (AFTER_PIN_AT, "#")]),
        // `*4#` stores it; `4` keyed while "stored as speed dial four" plays, then the
        // inter-digit silence ends the entry, as a person would do it.
        (
            "*4 stores it, 4 calls it",
            &[
                pin,
                (AFTER_PIN_AT, "*4#"),
                (Duration::from_millis(7600), "4"),
            ],
        ),
        ("the CLI's speed dial 7", &[pin, (AFTER_PIN_AT, "7#")]),
    ];
    for (index, (what, script)) in calls.iter().enumerate() {
        if index == 3 {
            common::cli(
                &dir,
                &[
                    "accounts",
                    "speed-dial",
                    "--account",
                    &account.to_string(),
                    "7",
                    "00442071234567",
                ],
            );
        }
        // The speed dial waits out the inter-digit silence before it is placed.
        let hold = Duration::from_secs(if index == 2 { 12 } else { 6 });
        let output = call_and_hang_up(&switch, &dir, script, hold);
        assert_ok(&output, &switch, what);
        let ids = switch.call_ids();
        let call_id = ids.last().unwrap();
        let cdr = prepaid::wait_for_cdrs(&dir, &format!("{call_id}#1"), 1).remove(0);
        let wanted = if index == 3 {
            "+442071234567"
        } else {
            "+15551234567"
        };
        assert_eq!(cdr.destination.expose(), wanted, "{what}: {cdr:?}");
        assert!(cdr.answer_ms.is_some(), "{what}: answered");
    }
    let listed = common::cli(
        &dir,
        &["accounts", "speed-dial", "--account", &account.to_string()],
    );
    assert_eq!(listed, "4\t+15551234567\n7\t+442071234567\n");
    let prompts = played(&switch);
    assert!(
        prompts
            .iter()
            .any(|line| line.contains("[\"speed_dial_stored\", \"num_4\", \"enter_destination\"]")),
        "{prompts:#?}"
    );
}

#[test]
fn a_language_chosen_once_is_remembered_on_the_next_call() {
    let dir = prepaid::data_dir("remembered-language");
    prepaid::tariff(&dir, "demo", RATES);
    prepaid::card(&dir, PIN, 5_000_000, 0);
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw("[[access_numbers]]\nnumber = \"300\"\nlanguages = [\"en\", \"es\"]\nbalance_only = true\n"),
    );
    let caller = "15550001111";
    let wait = Duration::from_secs(30);
    let first = call_number(
        &switch,
        &dir,
        "300",
        caller,
        &[(PIN_AT, "2"), (Duration::from_millis(4000), "1234567890#")],
        wait,
    );
    assert_ok(&first, &switch, "the first call chooses Spanish");
    let shown = common::cli(&dir, &["accounts", "show", "--pin", PIN]);
    assert!(shown.contains("IVR language es"), "{shown}");
    let before = played(&switch).len();
    let second = call_number(
        &switch,
        &dir,
        "300",
        caller,
        &[(PIN_AT, "1234567890#")],
        wait,
    );
    assert_ok(&second, &switch, "the second call");
    let prompts = played(&switch);
    let second_call = &prompts[before..];
    assert!(
        second_call
            .iter()
            .all(|line| !line.contains("choose_language")),
        "{second_call:#?}"
    );
    assert!(
        second_call
            .iter()
            .any(|line| line.starts_with("es [\"enter_pin\"]")),
        "{second_call:#?}"
    );
    assert!(
        second_call
            .last()
            .is_some_and(|line| line.starts_with("es [\"you_have\"")),
        "{second_call:#?}"
    );
}

/// German, from nothing but files: its grammar says the unit before the tens
/// ("einundzwanzig"), its prompts come from espeak-ng through prompts/make-prompts.sh.
const GERMAN_GRAMMAR: &str = r#"
name = "Deutsch"
voice = "de"
menu_digit = "7"
and = "und"
point = "komma"

[[plural]]
category = "one"
values = [1]

[numbers]
words = ["0-20", "30", "40", "50", "60", "70", "80", "90"]
named = { 1 = "ein" }
feminine = { 1 = "eine" }
tens_joiner = "und"
unit_first = true

[[scales]]
value = 1000000
noun = "million"

[[scales]]
value = 1000
noun = "tausend"

[[scales]]
value = 100
noun = "hundert"

[nouns]
million = { forms = { one = "million", other = "millionen" }, gender = "feminine" }
tausend = { forms = { other = "tausend" } }
hundert = { forms = { other = "hundert" } }
dollar = { forms = { other = "dollar" } }
cent = { forms = { other = "cent" } }
minute = { forms = { one = "minute", other = "minuten" }, gender = "feminine" }
second = { forms = { one = "sekunde", other = "sekunden" }, gender = "feminine" }
"#;

const GERMAN_PROMPTS: &str = "welcome|Willkommen bei Talktime.
choose_language|Für Deutsch drücken Sie die 7.
enter_pin|Bitte geben Sie Ihre PIN ein, gefolgt von der Rautetaste.
you_have|Sie haben
und|und
ein|ein
eine|eine
dollar|Dollar
cent|Cent
no_last_call|Sie haben noch nicht telefoniert.
goodbye|Vielen Dank für Ihren Anruf. Auf Wiederhören.
";

fn german_prompts(root: &Path) -> std::path::PathBuf {
    let prompts = root.join("prompts");
    let german = prompts.join("de");
    std::fs::create_dir_all(&german).unwrap();
    let copy = Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("prompts/en"))
        .arg(repo_root().join("prompts/make-prompts.sh"))
        .arg(&prompts)
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::write(german.join("language.toml"), GERMAN_GRAMMAR).unwrap();
    let mut lines = GERMAN_PROMPTS.to_owned();
    for number in (0..=20).chain((30..=90).step_by(10)) {
        lines.push_str(&format!("num_{number}|{number}\n"));
    }
    for noun in [
        "hundert",
        "tausend",
        "million",
        "millionen",
        "minute",
        "minuten",
        "sekunde",
        "sekunden",
        "komma",
    ] {
        lines.push_str(&format!("{noun}|{noun}\n"));
    }
    std::fs::write(german.join("prompts.txt"), lines).unwrap();
    let made = Command::new("bash")
        .arg(prompts.join("make-prompts.sh"))
        .arg("de")
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    prompts
}

#[test]
fn a_language_added_as_files_is_spoken_by_its_own_grammar() {
    let dir = prepaid::data_dir("new-language");
    prepaid::tariff(&dir, "demo", RATES);
    prepaid::card(&dir, PIN, 21_000_000, 0);
    let prompts = german_prompts(&dir);
    let switch = start_with(
        &dir,
        ConfigFile::new().raw(
            "[[access_numbers]]\nnumber = \"300\"\nlanguages = [\"en\", \"de\"]\nbalance_only = true\n",
        ),
        &["--prompts-dir", prompts.to_str().unwrap()],
    );
    assert!(
        switch
            .log_text()
            .contains("languages loaded languages=[de, en]"),
        "{}",
        tail(&switch.log_text(), 30)
    );
    let output = call_number(
        &switch,
        &dir,
        "300",
        "15550002222",
        &[(PIN_AT, "7"), (Duration::from_millis(4000), "1234567890#")],
        Duration::from_secs(30),
    );
    assert_ok(&output, &switch, "a German balance call");
    let prompts = played(&switch);
    assert!(
        prompts
            .iter()
            .any(|line| line.contains("[\"choose_language\", \"choose_language\"]")),
        "the menu offers both: {prompts:#?}"
    );
    assert_eq!(
        prompts.last().map(String::as_str),
        Some(
            "de [\"you_have\", \"ein\", \"und\", \"num_20\", \"dollar\", \"no_last_call\", \"goodbye\"]"
        ),
        "einundzwanzig Dollar: {prompts:#?}"
    );
}

#[test]
fn a_card_holder_changes_the_pin_over_the_phone_and_the_old_one_stops_working() {
    let dir = prepaid::data_dir("pin-change");
    prepaid::tariff(&dir, "demo", RATES);
    let account = prepaid::card(&dir, PIN, 3_000_000, 0);
    let switch = start(
        &dir,
        ConfigFile::new().raw("[[access_numbers]]\nnumber = \"300\"\nbalance_only = true\n"),
    );
    // `*00#`, the new PIN, the new PIN again, each keyed while its prompt plays; then the
    // caller hangs up at the destination prompt.
    let changed = call_and_hang_up(
        &switch,
        &dir,
        &[
            (PIN_AT, "1234567890#"),
            (AFTER_PIN_AT, "*00#"),
            (Duration::from_millis(8000), "4826193057#"),
            (Duration::from_millis(11000), "4826193057#"),
        ],
        Duration::from_secs(5),
    );
    assert_ok(&changed, &switch, "the PIN change call");
    let prompts = played(&switch);
    assert!(
        prompts
            .iter()
            .any(|line| line.starts_with("en [\"pin_changed\", \"enter_destination\"]")),
        "{prompts:#?}"
    );
    let store = prepaid::open(&dir);
    let found = |pin: &str| {
        prepaid::runtime()
            .block_on(store.card_by_pin(&talktime_pii::Pii::new(pin.to_owned())))
            .unwrap()
            .map(|card| card.account_id)
    };
    assert_eq!(found("4826193057"), Some(account));
    assert_eq!(found(PIN), None);
    // The balance line now knows the card by its new PIN only.
    let output = call_number(
        &switch,
        &dir,
        "300",
        "anonymous",
        &[(PIN_AT, "4826193057#")],
        Duration::from_secs(30),
    );
    assert_ok(&output, &switch, "a balance check with the new PIN");
    let last = played(&switch).last().cloned().unwrap_or_default();
    assert!(last.starts_with("en [\"you_have\", \"num_3\""), "{last}");
}
