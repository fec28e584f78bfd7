//! The retail recharge line (issue 16), on a virtual clock: the agent's PIN is looked up as
//! an agent's (never by caller ID), the recharge is asked once however often 1 is pressed,
//! each confirmed recharge gets its own sequence, and 2 cancels.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use talktime_engine::{
    AccountId, DisconnectCause, Input, IvrConfig, Output, PinLookup, RetailOutcome,
};
use talktime_pii::Pii;

fn retail() -> IvrConfig {
    IvrConfig {
        retail: true,
        ani_authentication: false,
        ..IvrConfig::default()
    }
}

fn recharges(outputs: &[Output]) -> Vec<(String, i64, u32)> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::RetailRecharge {
                agent,
                number,
                amount_micros,
                sequence,
            } => {
                assert_eq!(*agent, AccountId(42));
                Some((number.expose().clone(), *amount_micros, *sequence))
            }
            _ => None,
        })
        .collect()
}

/// An agent past its PIN, at the customer number prompt.
fn agent_call() -> Harness {
    let (mut harness, started) = Harness::new(retail(), Some("15557770000"));
    assert!(
        !started
            .iter()
            .any(|output| matches!(output, Output::LookupByCallerId { .. })),
        "a caller ID never stands for an agent: {started:?}"
    );
    harness.finish_prompt();
    let looked = harness.dial("24681357#");
    assert!(
        looked.contains(&Output::LookupAgentByPin {
            pin: Pii::new("24681357".into())
        }),
        "{looked:?}"
    );
    assert!(
        !looked
            .iter()
            .any(|output| matches!(output, Output::LookupByPin { .. })),
        "never a card's PIN here"
    );
    let asked = harness.input(Input::PinLookup(PinLookup::Found(account(20_000_000))));
    assert_eq!(prompt_names(&asked), ["enter_customer_number"]);
    harness.finish_prompt();
    harness
}

#[test]
fn a_confirmed_recharge_is_asked_once_and_the_next_gets_its_own_sequence() {
    let mut harness = agent_call();
    let asked = harness.dial("15550003333#");
    assert_eq!(prompt_names(&asked), ["enter_amount"]);
    harness.finish_prompt();
    let confirm = harness.dial("550#");
    assert_eq!(
        prompt_names(&confirm),
        [
            "num_5",
            "dollars",
            "and",
            "num_50",
            "cents",
            "confirm_recharge"
        ]
    );
    let mut keyed = harness.dial("1");
    keyed.extend(harness.dial("1"));
    assert_eq!(
        recharges(&keyed),
        [("15550003333".to_owned(), 5_500_000, 0)],
        "pressed twice, asked once"
    );
    let done = harness.input(Input::RetailRecharged(RetailOutcome::Done {
        customer_balance_micros: 5_500_000,
    }));
    assert!(prompt_names(&done).ends_with(&["recharge_done", "enter_customer_number"]));
    harness.finish_prompt();
    harness.dial("15550003333#");
    harness.finish_prompt();
    harness.dial("100#");
    harness.finish_prompt();
    let again = harness.dial("1");
    assert_eq!(
        recharges(&again),
        [("15550003333".to_owned(), 1_000_000, 1)],
        "a second recharge is another transfer"
    );
}

#[test]
fn two_cancels_and_a_stranger_or_a_short_credit_is_said() {
    let mut harness = agent_call();
    harness.dial("15550003333#");
    harness.finish_prompt();
    harness.dial("550#");
    harness.finish_prompt();
    let cancelled = harness.dial("2");
    assert!(recharges(&cancelled).is_empty());
    assert_eq!(
        prompt_names(&cancelled),
        ["recharge_cancelled", "enter_customer_number"]
    );
    harness.finish_prompt();
    harness.dial("15550004444#");
    harness.finish_prompt();
    harness.dial("0#");
    let refused = harness.finish_prompt();
    assert!(recharges(&refused).is_empty());
    harness.dial("100#");
    harness.finish_prompt();
    harness.dial("1");
    let stranger = harness.input(Input::RetailRecharged(RetailOutcome::UnknownCustomer));
    assert_eq!(
        prompt_names(&stranger),
        ["unknown_customer", "enter_customer_number"]
    );
    harness.finish_prompt();
    harness.dial("15550003333#");
    harness.finish_prompt();
    harness.dial("100000#");
    harness.finish_prompt();
    harness.dial("1");
    let short = harness.input(Input::RetailRecharged(RetailOutcome::CreditShort));
    assert_eq!(
        prompt_names(&short),
        ["agent_credit_short", "enter_customer_number"]
    );
}

#[test]
fn a_ledger_that_does_not_answer_ends_the_call_without_saying_it_moved() {
    let mut harness = agent_call();
    harness.dial("15550003333#");
    harness.finish_prompt();
    harness.dial("550#");
    harness.finish_prompt();
    harness.dial("1");
    let ended = harness.advance(Duration::from_secs(11));
    assert_eq!(prompt_names(&ended), ["call_failed", "goodbye"]);
    harness.finish_prompt();
    let record = harness.outputs().find_map(|output| match output {
        Output::CallRecord(record) => Some(record.cause),
        _ => None,
    });
    assert_eq!(record, Some(DisconnectCause::SystemError));
}
