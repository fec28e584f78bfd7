//! DID forwarding (seed 003): registered callers go straight to their preset destination.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use talktime_engine::{
    AccountId, AccountInfo, AttemptId, AuthMethod, BridgeMode, CallRecord, CallerIdLookup, CardId,
    DisconnectCause, Input, IvrConfig, Output, Party, Phase, PinLookup, PlaybackId, Refusal, Tone,
};
use talktime_pii::Pii;

const CALLER: &str = "17035550123";

/// A forwarding access number with every announcement off: nothing is played at all.
fn silent() -> IvrConfig {
    IvrConfig {
        forwarding: true,
        announce_balance: false,
        announce_talk_time: false,
        ..IvrConfig::default()
    }
}

fn forwarded(balance_micros: i64, destination: &str) -> AccountInfo {
    AccountInfo {
        forward_destination: Some(Pii::new(destination.to_owned())),
        ..account(balance_micros)
    }
}

fn found(account: AccountInfo) -> Input {
    Input::CallerIdLookup(CallerIdLookup::Found(account))
}

fn settlements(harness: &Harness) -> Vec<(AttemptId, u64, DisconnectCause)> {
    harness
        .outputs()
        .filter_map(|output| match output {
            Output::Settle(settle) => Some((settle.attempt, settle.answered_ms, settle.cause)),
            _ => None,
        })
        .collect()
}

fn all_prompts(harness: &Harness) -> Vec<&'static str> {
    prompt_names(&harness.outputs().cloned().collect::<Vec<_>>())
}

fn call_record(harness: &Harness) -> CallRecord {
    match harness.log.last() {
        Some((_, Output::CallRecord(record))) => record.clone(),
        other => panic!("the call has not ended: {other:?}"),
    }
}

/// A silent forwarding call answered by the carrier: returns the attempt.
fn bridged_forwarded_call(limit: std::time::Duration) -> (Harness, AttemptId) {
    let (mut call, _) = Harness::new(silent(), Some(CALLER));
    call.input(found(forwarded(7_500_000, "00919876543210")));
    let attempt = call.attempt();
    call.input(Input::Authorized {
        attempt,
        authorization: authorization(limit, limit),
    });
    call.input(Input::CarrierTrying {
        attempt,
        carrier: "carrier-a".into(),
    });
    call.input(Input::CarrierAnswered { attempt });
    assert_eq!(call.call.phase(), Phase::Bridged);
    (call, attempt)
}

#[test]
fn a_registered_caller_reaches_the_preset_destination_without_prompts() {
    let (mut call, first) = Harness::new(silent(), Some(CALLER));
    // Rung with early media, not answered: the caller's own carrier bills from our 200.
    assert_eq!(
        first,
        vec![
            Output::RingCaller,
            Output::LookupByCallerId {
                caller_id: Pii::new(CALLER.into()),
                remembered_language: false,
            },
        ]
    );
    // The stored destination is normalized like a dialled one (00 → +).
    assert_eq!(
        call.input(found(forwarded(7_500_000, "00919876543210"))),
        vec![Output::Authorize {
            attempt: AttemptId(1),
            account: AccountId(42),
            card: Some(CardId(7)),
            destination: Pii::new("+919876543210".into()),
        }]
    );
    assert_eq!(call.call.phase(), Phase::Authorizing);
    assert_eq!(
        call.input(Input::Authorized {
            attempt: AttemptId(1),
            authorization: authorization(30 * MINUTE, 30 * MINUTE),
        }),
        vec![
            Output::PlaceCall {
                attempt: AttemptId(1),
                destination: Pii::new("+919876543210".into()),
                limit_ms: 1_800_000,
            },
            Output::PlayTone {
                playback: PlaybackId(1),
                tone: Tone::Ringback,
            },
        ]
    );
    call.input(Input::CarrierTrying {
        attempt: AttemptId(1),
        carrier: "carrier-a".into(),
    });
    call.advance(5 * SECOND);
    assert_eq!(
        call.input(Input::CarrierAnswered {
            attempt: AttemptId(1)
        }),
        vec![
            Output::AnswerCaller,
            Output::StopPlayback {
                playback: PlaybackId(1)
            },
            Output::Bridge {
                attempt: AttemptId(1),
                mode: BridgeMode::Full,
            },
        ]
    );
    call.advance(2 * MINUTE);
    // The far end hangs up: goodbye and the call ends, no return to destination entry.
    let ended = call.input(Input::CarrierHungUp {
        attempt: AttemptId(1),
    });
    assert_eq!(prompt_names(&ended), vec!["goodbye"]);
    assert_eq!(call.call.phase(), Phase::Farewell);
    let last = call.finish_prompt();
    assert!(matches!(
        last.first(),
        Some(Output::HangUpCaller { release }) if release.cause == DisconnectCause::CarrierHungUp
    ));
    assert!(call.call.is_finished());
    assert_eq!(
        settlements(&call),
        vec![(AttemptId(1), 120_000, DisconnectCause::CarrierHungUp)]
    );
    let record = call_record(&call);
    assert_eq!(record.authenticated_by, Some(AuthMethod::CallerId));
    assert_eq!(record.account, Some(AccountId(42)));
    assert_eq!((record.attempts, record.answered_attempts), (1, 1));
    assert_eq!(record.billed_ms, 120_000);
    // Nothing but the goodbye was ever played; no PIN was asked or looked up.
    assert_eq!(all_prompts(&call), vec!["goodbye"]);
    assert!(
        !call
            .outputs()
            .any(|output| matches!(output, Output::LookupByPin { .. }))
    );
}

#[test]
fn announcements_and_welcome_are_played_when_configured() {
    let config = IvrConfig {
        forwarding: true,
        forwarding_welcome: true,
        ..IvrConfig::default()
    };
    let (mut call, first) = Harness::new(config, Some(CALLER));
    assert_eq!(prompt_names(&first), vec!["welcome"]);
    assert_eq!(
        call.input(found(forwarded(12_000_000, "+4930123456"))),
        vec![]
    );
    // After the welcome: the balance, then the attempt opens.
    let balance = call.finish_prompt();
    assert_eq!(
        prompt_names(&balance),
        vec!["you_have", "num_12", "dollars"]
    );
    assert_eq!(call.call.phase(), Phase::AnnouncingBalance);
    let authorize = call.finish_prompt();
    assert!(matches!(
        authorize.as_slice(),
        [Output::Authorize { destination, .. }] if destination.expose() == "+4930123456"
    ));
    let announced = call.input(Input::Authorized {
        attempt: AttemptId(1),
        authorization: authorization(34 * MINUTE, 34 * MINUTE),
    });
    assert_eq!(
        prompt_names(&announced),
        vec!["you_can_talk", "num_30", "num_4", "minutes"]
    );
    assert!(matches!(
        call.finish_prompt().first(),
        Some(Output::PlaceCall {
            limit_ms: 2_040_000,
            ..
        })
    ));
    assert!(!all_prompts(&call).contains(&"enter_destination"));
}

#[test]
fn a_key_skips_the_balance_announcement() {
    let config = IvrConfig {
        forwarding: true,
        ..IvrConfig::default()
    };
    let (mut call, first) = Harness::new(config, Some(CALLER));
    assert_eq!(prompt_names(&first), Vec::<&str>::new());
    let balance = call.input(found(forwarded(12_000_000, "4930123456")));
    assert_eq!(
        prompt_names(&balance),
        vec!["you_have", "num_12", "dollars"]
    );
    let skipped = call.input(Input::Digit('5'));
    assert!(matches!(
        skipped.as_slice(),
        [Output::StopPlayback { .. }, Output::Authorize { destination, .. }]
            if destination.expose() == "4930123456"
    ));
}

#[test]
fn a_forwarded_call_ends_when_the_credit_runs_out() {
    let (mut call, attempt) = bridged_forwarded_call(MINUTE);
    call.advance(MINUTE + SECOND);
    assert!(call.call.is_finished());
    assert_eq!(
        settlements(&call),
        vec![(attempt, 60_000, DisconnectCause::CreditExhausted)]
    );
    let record = call_record(&call);
    assert_eq!(record.cause, DisconnectCause::CreditExhausted);
    assert_eq!(record.hung_up_by, Party::Switch);
}

#[test]
fn keys_during_a_forwarded_call_do_not_end_it() {
    let (mut call, attempt) = bridged_forwarded_call(30 * MINUTE);
    assert_eq!(call.dial("**"), vec![]);
    assert_eq!(call.call.phase(), Phase::Bridged);
    call.advance(MINUTE);
    call.input(Input::CallerHungUp);
    assert_eq!(
        settlements(&call),
        vec![(attempt, 60_000, DisconnectCause::CallerHungUp)]
    );
}

#[test]
fn a_busy_or_refused_forwarded_call_says_why_and_goodbye() {
    let (mut busy, _) = Harness::new(silent(), Some(CALLER));
    busy.input(found(forwarded(7_500_000, "4930123456")));
    busy.input(Input::Authorized {
        attempt: AttemptId(1),
        authorization: authorization(MINUTE, MINUTE),
    });
    busy.input(Input::CarrierTrying {
        attempt: AttemptId(1),
        carrier: "carrier-a".into(),
    });
    let outcome = busy.input(Input::CarrierFailed {
        attempt: AttemptId(1),
        sip_status: 486,
        failover: false,
    });
    assert_eq!(prompt_names(&outcome), vec!["busy", "goodbye"]);
    busy.finish_prompt();
    assert!(busy.call.is_finished());
    // Said in early media and refused: never answered.
    assert!(
        !busy
            .log
            .iter()
            .any(|(_, output)| *output == Output::AnswerCaller),
        "{:?}",
        busy.log
    );
    assert_eq!(
        settlements(&busy),
        vec![(AttemptId(1), 0, DisconnectCause::Busy)]
    );

    let (mut broke, _) = Harness::new(silent(), Some(CALLER));
    broke.input(found(forwarded(7_500_000, "4930123456")));
    let refused = broke.input(Input::AuthorizationRefused {
        attempt: AttemptId(1),
        refusal: Refusal::NoCredit,
    });
    assert_eq!(prompt_names(&refused), vec!["no_credit", "goodbye"]);
    broke.finish_prompt();
    assert_eq!(call_record(&broke).cause, DisconnectCause::NoCredit);
    assert_eq!(
        settlements(&broke),
        vec![(AttemptId(1), 0, DisconnectCause::NoCredit)]
    );
}

#[test]
fn an_unregistered_caller_gets_the_welcome_and_the_pin_prompt() {
    let (mut call, first) = Harness::new(silent(), Some(CALLER));
    assert_eq!(prompt_names(&first), Vec::<&str>::new());
    let outputs = call.input(Input::CallerIdLookup(CallerIdLookup::NotRegistered));
    assert_eq!(prompt_names(&outputs), vec!["welcome", "enter_pin"]);
    assert_eq!(call.call.phase(), Phase::EnteringPin);
    // The welcome is owed once: a wrong PIN does not replay it.
    call.finish_prompt();
    call.dial("99#");
    assert_eq!(
        prompt_names(&call.log.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>())
            .iter()
            .filter(|name| **name == "welcome")
            .count(),
        1
    );
}

#[test]
fn without_a_caller_id_the_pin_prompt_comes_at_once() {
    let (call, first) = Harness::new(silent(), None);
    // Nobody to forward: the IVR's question answers the caller at once.
    assert_eq!(first[..2], [Output::RingCaller, Output::AnswerCaller]);
    assert_eq!(prompt_names(&first), vec!["welcome", "enter_pin"]);
    assert_eq!(call.call.phase(), Phase::EnteringPin);
}

#[test]
fn a_slow_lookup_falls_back_to_the_pin() {
    let (mut call, _) = Harness::new(silent(), Some(CALLER));
    assert_eq!(call.advance(9 * SECOND), vec![]);
    assert_eq!(
        prompt_names(&call.advance(SECOND)),
        vec!["welcome", "enter_pin"]
    );
}

#[test]
fn a_balance_below_the_minimum_asks_for_the_pin_and_a_pin_caller_is_not_forwarded() {
    let (mut call, _) = Harness::new(silent(), Some(CALLER));
    let outputs = call.input(found(forwarded(999_999, "4930123456")));
    assert_eq!(prompt_names(&outputs), vec!["welcome", "enter_pin"]);
    call.finish_prompt();
    call.dial("123456#");
    // Even with a forward destination, a PIN caller chooses the destination.
    let outputs = call.input(Input::PinLookup(PinLookup::Found(forwarded(
        5_000_000,
        "4930123456",
    ))));
    assert_eq!(prompt_names(&outputs), vec!["enter_destination"]);
    assert_eq!(call.call.phase(), Phase::EnteringDestination);
}

#[test]
fn a_registered_caller_without_a_destination_dials_one() {
    let (mut call, _) = Harness::new(silent(), Some(CALLER));
    let outputs = call.input(found(account(7_500_000)));
    assert_eq!(prompt_names(&outputs), vec!["welcome", "enter_destination"]);
    // An ordinary IVR call from here: after the carrier leg, back to destination entry.
    call.finish_prompt();
    let attempt = place_call(&mut call, "0044207946000#", 10 * MINUTE);
    call.input(Input::CarrierAnswered { attempt });
    call.advance(MINUTE);
    let after = call.input(Input::CarrierHungUp { attempt });
    assert_eq!(prompt_names(&after), vec!["enter_destination"]);
    // An unusable stored destination is treated like none.
    let (mut bad, _) = Harness::new(silent(), Some(CALLER));
    let outputs = bad.input(found(forwarded(7_500_000, "not a number")));
    assert_eq!(prompt_names(&outputs), vec!["welcome", "enter_destination"]);
}

#[test]
fn a_forward_destination_is_ignored_on_an_ordinary_access_number() {
    let (mut call, _) = Harness::new(IvrConfig::default(), Some(CALLER));
    call.input(found(forwarded(7_500_000, "4930123456")));
    let outputs = call.finish_prompt();
    assert_eq!(prompt_names(&outputs).last(), Some(&"enter_destination"));
    assert!(
        !call
            .outputs()
            .any(|output| matches!(output, Output::Authorize { .. }))
    );
}
