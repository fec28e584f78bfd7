//! A balance line (issue 21): after the PIN, the balance and the last call's cost and length,
//! then goodbye and the hang-up; no destination is asked and no credit reserved.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use talktime_engine::{DisconnectCause, Input, IvrConfig, LastCall, Output, PinLookup};

fn balance_line() -> (Harness, Vec<Output>) {
    let (mut harness, _) = Harness::new(
        IvrConfig {
            balance_only: true,
            ..IvrConfig::default()
        },
        None,
    );
    harness.finish_prompt();
    harness.dial("123456#");
    let asked = harness.input(Input::PinLookup(PinLookup::Found(account(12_500_000))));
    (harness, asked)
}

#[test]
fn the_balance_and_the_last_call_are_said_then_goodbye() {
    let (mut harness, asked) = balance_line();
    assert!(
        asked
            .iter()
            .any(|output| matches!(output, Output::LookupLastCall { .. })),
        "{asked:?}"
    );
    assert!(
        !asked
            .iter()
            .any(|output| matches!(output, Output::Authorize { .. }))
    );
    let said = harness.input(Input::LastCall(Some(LastCall {
        cost_micros: 1_250_000,
        talk_ms: 125_000,
    })));
    assert_eq!(
        prompt_names(&said),
        [
            "you_have",
            "num_12",
            "dollars",
            "and",
            "num_50",
            "cents",
            "last_call_cost",
            "num_1",
            "dollar",
            "and",
            "num_20",
            "num_5",
            "cents",
            "last_call_lasted",
            "num_2",
            "minutes",
            "and",
            "num_5",
            "seconds",
            "goodbye"
        ]
    );
    let ended = harness.finish_prompt();
    assert!(
        ended
            .iter()
            .any(|output| matches!(output, Output::HangUpCaller { .. })),
        "{ended:?}"
    );
    match harness.log.last() {
        Some((_, Output::CallRecord(record))) => {
            assert_eq!(record.cause, DisconnectCause::Normal);
            assert_eq!(record.attempts, 0);
        }
        other => panic!("no call record: {other:?}"),
    }
}

#[test]
fn a_card_without_calls_hears_that_it_has_none_and_late_answers_are_ignored() {
    let (mut harness, _) = balance_line();
    let said = harness.input(Input::LastCall(None));
    let names = prompt_names(&said);
    assert!(
        names.contains(&"no_last_call") && names.ends_with(&["goodbye"]),
        "{names:?}"
    );
    let again = harness.input(Input::LastCall(None));
    assert!(prompt_names(&again).is_empty());
}
