//! The caller's services at the destination prompt (issue 21): redial, speed dial, storing a
//! speed dial, voucher recharge, PIN change, a recharge line and the remembered language.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use talktime_engine::{
    AccountId, CallerIdLookup, CardId, DisconnectCause, Input, IvrConfig, Language, Output, Phase,
    PinChangeOutcome, PinLookup, VoucherOutcome,
};
use talktime_pii::Pii;

fn authorized_destination(outputs: &[Output]) -> Option<String> {
    outputs.iter().find_map(|output| match output {
        Output::Authorize { destination, .. } => Some(destination.expose().clone()),
        _ => None,
    })
}

/// A call to "0044201234567" that the carrier answers and the caller ends with `**`.
fn call_and_come_back(harness: &mut Harness) {
    let attempt = place_call(harness, "0044201234567#", Duration::from_secs(600));
    harness.input(Input::CarrierAnswered { attempt });
    harness.dial("**");
    harness.finish_prompt();
}

#[test]
fn hash_redials_the_number_of_this_call_without_asking_the_ledger() {
    let mut harness = authenticated_pin_call(10_000_000);
    call_and_come_back(&mut harness);
    let asked = harness.dial("#");
    assert_eq!(
        authorized_destination(&asked).as_deref(),
        Some("+44201234567")
    );
    assert!(
        !asked
            .iter()
            .any(|output| matches!(output, Output::LookupStoredNumber { .. }))
    );
}

#[test]
fn hash_on_a_new_call_redials_the_ledgers_last_number() {
    let mut harness = authenticated_pin_call(10_000_000);
    let asked = harness.dial("#");
    assert!(
        asked.contains(&Output::LookupStoredNumber {
            account: AccountId(42),
            slot: 0
        }),
        "{asked:?}"
    );
    assert_eq!(harness.call.phase(), Phase::StoredNumbers);
    let placed = harness.input(Input::StoredNumber(Some(Pii::new("+3312345678".into()))));
    assert_eq!(
        authorized_destination(&placed).as_deref(),
        Some("+3312345678")
    );
}

#[test]
fn a_lone_key_calls_its_speed_dial_and_an_empty_one_is_said() {
    let mut harness = authenticated_pin_call(10_000_000);
    // A human keys "3" and waits: the inter-digit timeout ends the entry.
    harness.dial("3");
    let asked = harness.advance(Duration::from_secs(5));
    assert!(
        asked.contains(&Output::LookupStoredNumber {
            account: AccountId(42),
            slot: 3
        }),
        "{asked:?}"
    );
    let said = harness.input(Input::StoredNumber(None));
    assert_eq!(
        prompt_names(&said),
        ["no_number_stored", "enter_destination"]
    );
    harness.finish_prompt();
    harness.dial("7#");
    let placed = harness.input(Input::StoredNumber(Some(Pii::new("0049301234".into()))));
    assert_eq!(
        authorized_destination(&placed).as_deref(),
        Some("+49301234")
    );
}

#[test]
fn star_key_stores_the_last_number_and_says_which_key() {
    let mut harness = authenticated_pin_call(10_000_000);
    call_and_come_back(&mut harness);
    let asked = harness.dial("*4#");
    assert!(
        asked.contains(&Output::StoreSpeedDial {
            account: AccountId(42),
            slot: 4,
            number: Some(Pii::new("+44201234567".into())),
        }),
        "{asked:?}"
    );
    let said = harness.input(Input::SpeedDialStored(true));
    assert_eq!(
        prompt_names(&said),
        ["speed_dial_stored", "num_4", "enter_destination"]
    );
    // A code that means nothing is refused like a wrong number.
    harness.finish_prompt();
    let refused = harness.dial("*55#");
    assert_eq!(
        prompt_names(&refused),
        ["invalid_destination", "enter_destination"]
    );
}

#[test]
fn a_voucher_adds_credit_and_the_new_balance_is_said() {
    let mut harness = authenticated_pin_call(2_000_000);
    let asked = harness.dial("*0#");
    assert_eq!(prompt_names(&asked), ["enter_voucher"]);
    harness.finish_prompt();
    let redeem = harness.dial("123456789012#");
    assert!(
        redeem.contains(&Output::RedeemVoucher {
            account: AccountId(42),
            code: Pii::new("123456789012".into()),
        }),
        "{redeem:?}"
    );
    let said = harness.input(Input::VoucherRedeemed(VoucherOutcome::Credited {
        amount_micros: 10_000_000,
        balance_micros: 12_000_000,
    }));
    assert_eq!(
        prompt_names(&said),
        [
            "voucher_accepted",
            "you_have",
            "num_12",
            "dollars",
            "enter_destination"
        ]
    );
}

#[test]
fn wrong_voucher_codes_count_as_guesses_and_end_the_call_at_the_limit() {
    let mut harness = authenticated_pin_call(2_000_000);
    harness.dial("*0#");
    for try_number in 1..=3u32 {
        harness.finish_prompt();
        harness.dial("999999999999#");
        let answered = harness.input(Input::VoucherRedeemed(VoucherOutcome::Unknown));
        assert!(
            answered.iter().any(|output| matches!(
                output,
                Output::PinFailed { failures, .. } if *failures == try_number
            )),
            "{answered:?}"
        );
        let expected: &[&str] = if try_number < 3 {
            &["invalid_voucher", "enter_voucher"]
        } else {
            &["invalid_voucher", "goodbye"]
        };
        assert_eq!(prompt_names(&answered), expected);
    }
    harness.finish_prompt();
    match harness.log.last() {
        Some((_, Output::CallRecord(record))) => {
            assert_eq!(record.cause, DisconnectCause::AuthenticationFailed)
        }
        other => panic!("no call record: {other:?}"),
    }
}

#[test]
fn a_used_voucher_is_said_and_asked_again() {
    let mut harness = authenticated_pin_call(2_000_000);
    harness.dial("*0#");
    harness.finish_prompt();
    harness.dial("123456789012#");
    let said = harness.input(Input::VoucherRedeemed(VoucherOutcome::AlreadyUsed));
    assert_eq!(prompt_names(&said), ["voucher_used", "enter_voucher"]);
    assert!(
        !said
            .iter()
            .any(|output| matches!(output, Output::PinFailed { .. }))
    );
}

#[test]
fn a_recharge_line_asks_the_voucher_after_the_pin_then_says_goodbye() {
    let (mut harness, _) = Harness::new(
        IvrConfig {
            recharge_only: true,
            ..IvrConfig::default()
        },
        None,
    );
    harness.finish_prompt();
    harness.dial("123456#");
    let asked = harness.input(Input::PinLookup(PinLookup::Found(account(500_000))));
    assert_eq!(prompt_names(&asked), ["enter_voucher"]);
    harness.finish_prompt();
    harness.dial("123456789012#");
    let said = harness.input(Input::VoucherRedeemed(VoucherOutcome::Credited {
        amount_micros: 5_000_000,
        balance_micros: 5_500_000,
    }));
    assert_eq!(
        prompt_names(&said),
        [
            "voucher_accepted",
            "you_have",
            "num_5",
            "dollars",
            "and",
            "num_50",
            "cents",
            "goodbye"
        ]
    );
    let ended = harness.finish_prompt();
    assert!(
        ended
            .iter()
            .any(|output| matches!(output, Output::HangUpCaller { .. }))
    );
}

#[test]
fn the_pin_is_changed_after_it_is_keyed_twice_alike() {
    let mut harness = authenticated_pin_call(2_000_000);
    let asked = harness.dial("*00#");
    assert_eq!(prompt_names(&asked), ["enter_new_pin"]);
    harness.finish_prompt();
    let confirm = harness.dial("482913#");
    assert_eq!(prompt_names(&confirm), ["confirm_new_pin"]);
    harness.finish_prompt();
    let mismatch = harness.dial("482914#");
    assert_eq!(
        prompt_names(&mismatch),
        ["pins_do_not_match", "enter_new_pin"]
    );
    harness.finish_prompt();
    let weak = harness.dial("111111#");
    assert_eq!(prompt_names(&weak), ["invalid_new_pin", "enter_new_pin"]);
    harness.finish_prompt();
    harness.dial("482913#");
    harness.finish_prompt();
    let change = harness.dial("482913#");
    assert!(
        change.contains(&Output::ChangePin {
            card: CardId(7),
            new_pin: Pii::new("482913".into()),
        }),
        "{change:?}"
    );
    let said = harness.input(Input::PinChanged(PinChangeOutcome::Changed));
    assert_eq!(prompt_names(&said), ["pin_changed", "enter_destination"]);
}

#[test]
fn a_caller_recognised_by_caller_id_cannot_change_the_pin() {
    let (mut harness, _) = Harness::new(IvrConfig::default(), Some("15551234567"));
    harness.input(Input::CallerIdLookup(CallerIdLookup::Found(account(
        5_000_000,
    ))));
    harness.finish_prompt();
    harness.finish_prompt();
    let refused = harness.dial("*00#");
    assert_eq!(
        prompt_names(&refused),
        ["invalid_destination", "enter_destination"]
    );
}

fn two_languages() -> IvrConfig {
    IvrConfig {
        languages: vec![Language::ENGLISH, Language::SPANISH],
        ani_authentication: false,
        ..IvrConfig::default()
    }
}

#[test]
fn a_language_chosen_in_the_menu_is_remembered_after_the_pin() {
    let (mut harness, started) = Harness::new(two_languages(), Some("15551234567"));
    assert!(
        started.iter().any(|output| matches!(
            output,
            Output::LookupByCallerId {
                remembered_language: true,
                ..
            }
        )),
        "the caller ID is looked up for its language even without ANI authentication"
    );
    harness.input(Input::CallerIdLookup(CallerIdLookup::NotRegistered));
    let menu = harness.finish_prompt();
    assert_eq!(prompt_names(&menu), ["choose_language", "choose_language"]);
    harness.dial("2");
    harness.finish_prompt();
    harness.dial("123456#");
    let known = harness.input(Input::PinLookup(PinLookup::Found(account(5_000_000))));
    assert!(
        known.contains(&Output::RememberLanguage {
            account: Some(AccountId(42)),
            caller_id: Some(Pii::new("15551234567".into())),
            language: Language::SPANISH,
        }),
        "{known:?}"
    );
}

#[test]
fn a_remembered_language_skips_the_menu() {
    let (mut harness, _) = Harness::new(two_languages(), Some("15551234567"));
    harness.input(Input::CallerIdLookup(CallerIdLookup::Remembered(
        Language::SPANISH,
    )));
    let asked = harness.finish_prompt();
    assert_eq!(prompt_names(&asked), ["enter_pin"]);
    assert_eq!(prompt_languages(&asked), [Language::SPANISH]);
    harness.finish_prompt();
    harness.dial("123456#");
    let known = harness.input(Input::PinLookup(PinLookup::Found(account(5_000_000))));
    assert!(
        !known
            .iter()
            .any(|output| matches!(output, Output::RememberLanguage { .. })),
        "nothing new to remember"
    );
}

#[test]
fn with_remember_language_off_the_menu_always_plays() {
    let config = IvrConfig {
        remember_language: false,
        ..two_languages()
    };
    let (mut harness, started) = Harness::new(config, Some("15551234567"));
    assert!(
        !started
            .iter()
            .any(|output| matches!(output, Output::LookupByCallerId { .. }))
    );
    let menu = harness.finish_prompt();
    assert_eq!(prompt_names(&menu), ["choose_language", "choose_language"]);
}

#[test]
fn star_zero_one_reads_out_a_portal_code_twice_and_asks_for_a_number_again() {
    // A PIN call from a number the operator does not recognise (no pinless account).
    let (mut harness, _) = Harness::new(IvrConfig::default(), Some("15551234567"));
    harness.input(Input::CallerIdLookup(CallerIdLookup::NotRegistered));
    harness.finish_prompt();
    harness.dial("123456#");
    harness.input(Input::PinLookup(PinLookup::Found(account(10_000_000))));
    harness.finish_prompt();
    let asked = harness.dial("*01#");
    let request = asked.iter().find_map(|output| match output {
        Output::IssuePortalCode { account, .. } => Some(*account),
        _ => None,
    });
    assert_eq!(request, Some(AccountId(42)), "{asked:?}");
    assert_eq!(harness.call.phase(), Phase::StoredNumbers);
    let said = harness.input(Input::PortalCodeIssued(Some(Pii::new("407213".into()))));
    let digits = ["num_4", "num_0", "num_7", "num_2", "num_1", "num_3"];
    let mut expected = vec!["portal_code"];
    expected.extend(digits);
    expected.push("portal_code_again");
    expected.extend(digits);
    expected.push("enter_destination");
    assert_eq!(prompt_names(&said), expected);
    // No code (the ledger down or refusing): said, and the caller dials on.
    harness.finish_prompt();
    harness.dial("*01#");
    let said = harness.input(Input::PortalCodeIssued(None));
    assert_eq!(prompt_names(&said), ["call_failed", "enter_destination"]);
    assert_eq!(harness.call.phase(), Phase::EnteringDestination);
}

#[test]
fn star_zero_one_is_a_wrong_number_when_the_operator_turned_it_off() {
    let config = IvrConfig {
        portal_code: false,
        ..IvrConfig::default()
    };
    let (mut harness, _) = Harness::new(config, None);
    harness.finish_prompt();
    harness.dial("123456#");
    harness.input(Input::PinLookup(PinLookup::Found(account(10_000_000))));
    harness.finish_prompt();
    let refused = harness.dial("*01#");
    assert!(
        !refused
            .iter()
            .any(|output| matches!(output, Output::IssuePortalCode { .. }))
    );
    assert_eq!(
        prompt_names(&refused),
        ["invalid_destination", "enter_destination"]
    );
}

#[test]
fn star_zero_one_without_a_caller_id_is_a_wrong_number() {
    let mut harness = authenticated_pin_call(10_000_000);
    let refused = harness.dial("*01#");
    assert!(
        !refused
            .iter()
            .any(|output| matches!(output, Output::IssuePortalCode { .. })),
        "no number to issue a code for: {refused:?}"
    );
    assert_eq!(
        prompt_names(&refused),
        ["invalid_destination", "enter_destination"]
    );
}
