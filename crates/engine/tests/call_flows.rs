//! Whole calls driven through the engine on a virtual clock.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use talktime_engine::{
    AccountId, AttemptId, AuthMethod, BridgeMode, CallerIdLookup, CardId, DisconnectCause, Input,
    IvrConfig, Language, Output, Party, Phase, PinLookup, PlaybackId, Prompt, Refusal, Release,
    Tone, WarningKind,
};
use talktime_pii::Pii;

fn en(names: &[&'static str]) -> Vec<Prompt> {
    names
        .iter()
        .map(|&name| Prompt {
            language: Language::ENGLISH,
            name,
        })
        .collect()
}

fn play(id: u64, names: &[&'static str]) -> Output {
    Output::Play {
        playback: PlaybackId(id),
        prompts: en(names),
        barge_in: true,
    }
}

fn settlement(outputs: &[Output]) -> Vec<(AttemptId, u64, DisconnectCause)> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Settle(settle) => Some((settle.attempt, settle.answered_ms, settle.cause)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_whole_pin_call() {
    let (mut call, first) = Harness::pin_call();
    assert_eq!(
        first,
        vec![
            Output::AnswerCaller,
            Output::Play {
                playback: PlaybackId(1),
                prompts: en(&["welcome"]),
                barge_in: false,
            },
        ]
    );
    assert_eq!(call.finish_prompt(), vec![play(2, &["enter_pin"])]);
    call.finish_prompt();
    assert_eq!(call.dial("12345"), vec![]);
    assert_eq!(
        call.dial("6#"),
        vec![Output::LookupByPin {
            pin: Pii::new("123456".into())
        }]
    );
    assert_eq!(call.call.phase(), Phase::CheckingPin);
    assert_eq!(
        call.input(Input::PinLookup(PinLookup::Found(account(12_500_000)))),
        vec![play(
            3,
            &[
                "you_have",
                "num_12",
                "dollars",
                "and",
                "num_50",
                "cents",
                "enter_destination"
            ]
        )]
    );
    call.finish_prompt();
    assert_eq!(call.dial("01144207946000"), vec![]);
    assert_eq!(
        call.dial("0#"),
        vec![Output::Authorize {
            attempt: AttemptId(1),
            account: AccountId(42),
            card: Some(CardId(7)),
            destination: Pii::new("+442079460000".into()),
        }]
    );
    let limit = 34 * MINUTE + 30 * SECOND;
    assert_eq!(
        call.input(Input::Authorized {
            attempt: AttemptId(1),
            authorization: authorization(limit, 34 * MINUTE),
        }),
        vec![play(4, &["you_can_talk", "num_30", "num_4", "minutes"])]
    );
    assert_eq!(
        call.finish_prompt(),
        vec![
            Output::PlaceCall {
                attempt: AttemptId(1),
                destination: Pii::new("+442079460000".into()),
                limit_ms: 2_070_000,
            },
            Output::PlayTone {
                playback: PlaybackId(5),
                tone: Tone::Ringback,
            },
        ]
    );
    let attempt = AttemptId(1);
    assert_eq!(
        call.input(Input::CarrierTrying {
            attempt,
            carrier: "carrier-a".into()
        }),
        vec![]
    );
    assert_eq!(
        call.input(Input::CarrierProgress {
            attempt,
            early_media: false
        }),
        vec![]
    );
    call.advance(12 * SECOND);
    assert_eq!(
        call.input(Input::CarrierAnswered { attempt }),
        vec![
            Output::StopPlayback {
                playback: PlaybackId(5)
            },
            Output::Bridge {
                attempt,
                mode: BridgeMode::Full
            },
        ]
    );
    let answered_at = call.elapsed();
    assert_eq!(call.advance(5 * MINUTE), vec![]);
    let after_call = call.input(Input::CarrierHungUp { attempt });
    assert_eq!(after_call.len(), 4, "{after_call:?}");
    assert_eq!(after_call[0], Output::Unbridge { attempt });
    assert_eq!(
        settlement(&after_call),
        vec![(attempt, 300_000, DisconnectCause::CarrierHungUp)]
    );
    let Output::AttemptRecord(record) = &after_call[2] else {
        panic!("{after_call:?}")
    };
    assert_eq!(record.attempt, attempt);
    assert_eq!(record.destination.expose(), "+442079460000");
    assert_eq!(record.carrier.as_deref(), Some("carrier-a"));
    assert_eq!(record.carrier_tries.len(), 1);
    assert_eq!(record.carrier_tries[0].sip_status, Some(200));
    assert_eq!(record.answered_ms, Some(answered_at.as_millis() as u64));
    assert_eq!(
        record.ended_ms,
        (answered_at + 5 * MINUTE).as_millis() as u64
    );
    assert_eq!(record.duration_ms, 300_000);
    assert_eq!(record.limit_ms, Some(2_070_000));
    assert_eq!(record.reserved_micros, 3_450_000);
    assert_eq!(record.currency, "USD");
    assert_eq!(record.sip_status, Some(200));
    assert_eq!(record.hung_up_by, Party::Carrier);
    assert_eq!(record.q850, 16);
    assert_eq!(record.access_number, "18005550100");
    assert_eq!(after_call[3], play(6, &["enter_destination"]));
    assert_eq!(call.call.phase(), Phase::EnteringDestination);

    let end = call.input(Input::CallerHungUp);
    let [Output::CallRecord(record)] = end.as_slice() else {
        panic!("{end:?}")
    };
    assert_eq!(record.cause, DisconnectCause::CallerHungUp);
    assert_eq!(record.hung_up_by, Party::Caller);
    assert_eq!(record.attempts, 1);
    assert_eq!(record.answered_attempts, 1);
    assert_eq!(record.billed_ms, 300_000);
    assert_eq!(record.authenticated_by, Some(AuthMethod::Pin));
    assert_eq!(record.account, Some(AccountId(42)));
    assert!(call.call.is_finished());
    assert_eq!(call.call.poll_timeout(), None);
    assert_eq!(call.input(Input::CallerHungUp), vec![]);
}

#[test]
fn one_hour_call_runs_out_of_credit() {
    for warning in [WarningKind::Beep, WarningKind::Prompt] {
        let (mut call, _) = Harness::new(
            IvrConfig {
                warning,
                ..IvrConfig::default()
            },
            None,
        );
        call.finish_prompt();
        call.dial("123456#");
        call.input(Input::PinLookup(PinLookup::Found(account(50_000_000))));
        call.finish_prompt();
        let attempt = place_call(&mut call, "0049301234567#", 60 * MINUTE);
        call.advance(7 * SECOND);
        call.input(Input::CarrierAnswered { attempt });
        let answered = call.elapsed();
        let next = call.call.poll_timeout().unwrap() - call.start;
        assert_eq!(next, answered + 59 * MINUTE);

        let outputs = call.advance(3 * 60 * MINUTE);
        let warnings = call.times_of(|output| match output {
            Output::PlayTone { tone, .. } => *tone == Tone::WarningBeep,
            Output::Play { prompts, .. } => prompts.iter().any(|p| p.name == "credit_warning"),
            _ => false,
        });
        assert_eq!(warnings, vec![answered + 59 * MINUTE], "{warning:?}");
        let hang_ups = call.times_of(|output| {
            matches!(
                output,
                Output::HangUpCarrier { .. } | Output::HangUpCaller { .. }
            )
        });
        assert_eq!(hang_ups, vec![answered + 60 * MINUTE; 2]);
        let exhausted = Release::from(DisconnectCause::CreditExhausted);
        assert!(outputs.contains(&Output::HangUpCarrier {
            attempt,
            release: exhausted.clone()
        }));
        assert!(outputs.contains(&Output::HangUpCaller {
            release: exhausted.clone()
        }));
        assert_eq!(
            exhausted.reason_header,
            "Q.850;cause=16;text=\"credit exhausted\""
        );
        assert_eq!(
            settlement(&outputs),
            vec![(attempt, 3_600_000, DisconnectCause::CreditExhausted)]
        );
        let Some(Output::CallRecord(record)) = outputs.last() else {
            panic!("{outputs:?}")
        };
        assert_eq!(record.cause, DisconnectCause::CreditExhausted);
        assert_eq!(record.hung_up_by, Party::Switch);
        assert_eq!(record.billed_ms, 3_600_000);
        assert!(call.call.is_finished());
        // The caller's BYE crossing ours changes nothing.
        assert_eq!(call.input(Input::CallerHungUp), vec![]);
    }
}

#[test]
fn a_late_wake_still_bills_exactly_the_limit() {
    let mut call = authenticated_pin_call(50_000_000);
    let attempt = place_call(&mut call, "5551234#", 10 * MINUTE);
    call.input(Input::CarrierAnswered { attempt });
    // The shell's timer fires 3 s late: no warning is played into a dead call, the bill
    // stops at the limit.
    call.now += 10 * MINUTE + 3 * SECOND;
    call.call.handle_timeout(call.now);
    let outputs: Vec<_> = std::iter::from_fn(|| call.call.poll_output()).collect();
    assert!(
        !outputs
            .iter()
            .any(|output| matches!(output, Output::PlayTone { .. }))
    );
    assert_eq!(
        settlement(&outputs),
        vec![(attempt, 600_000, DisconnectCause::CreditExhausted)]
    );
}

#[test]
fn pinless_by_caller_id() {
    let (mut call, first) = Harness::new(IvrConfig::default(), Some("15551234567"));
    assert_eq!(
        first[2],
        Output::LookupByCallerId {
            caller_id: Pii::new("15551234567".into()),
            remembered_language: false,
        }
    );
    // The lookup answers while the welcome plays; nothing happens until it ends.
    assert_eq!(
        call.input(Input::CallerIdLookup(CallerIdLookup::Found(account(
            1_000_000
        )))),
        vec![]
    );
    let after_welcome = call.finish_prompt();
    assert_eq!(
        prompt_names(&after_welcome),
        vec!["you_have", "num_1", "dollar", "enter_destination"]
    );
    call.finish_prompt();
    call.dial("5551234#");
    assert!(matches!(
        call.log.last(),
        Some((_, Output::Authorize { .. }))
    ));
    let end = call.input(Input::CallerHungUp);
    let Some(Output::CallRecord(record)) = end.last() else {
        panic!()
    };
    assert_eq!(record.authenticated_by, Some(AuthMethod::CallerId));
    assert!(
        !call
            .outputs()
            .any(|output| matches!(output, Output::LookupByPin { .. }))
    );
}

#[test]
fn caller_id_lookup_answering_after_the_welcome() {
    let (mut call, _) = Harness::new(IvrConfig::default(), Some("15551234567"));
    assert_eq!(call.finish_prompt(), vec![]);
    let outputs = call.input(Input::CallerIdLookup(CallerIdLookup::Found(account(
        3_000_000,
    ))));
    assert_eq!(
        prompt_names(&outputs),
        vec!["you_have", "num_3", "dollars", "enter_destination"]
    );
}

#[test]
fn caller_id_below_the_account_minimum_asks_for_the_pin() {
    let (mut call, _) = Harness::new(IvrConfig::default(), Some("15551234567"));
    call.input(Input::CallerIdLookup(CallerIdLookup::Found(account(
        999_999,
    ))));
    assert_eq!(prompt_names(&call.finish_prompt()), vec!["enter_pin"]);
    // Unregistered and slow lookups also fall back to the PIN.
    let (mut unknown, _) = Harness::new(IvrConfig::default(), Some("15551234567"));
    unknown.input(Input::CallerIdLookup(CallerIdLookup::NotRegistered));
    assert_eq!(prompt_names(&unknown.finish_prompt()), vec!["enter_pin"]);
    let (mut slow, _) = Harness::new(IvrConfig::default(), Some("15551234567"));
    assert_eq!(slow.finish_prompt(), vec![]);
    assert_eq!(prompt_names(&slow.advance(10 * SECOND)), vec!["enter_pin"]);
    // With ANI authentication off the caller ID is not even looked up.
    let (mut off, first) = Harness::new(
        IvrConfig {
            ani_authentication: false,
            ..IvrConfig::default()
        },
        Some("15551234567"),
    );
    assert_eq!(first.len(), 2);
    assert_eq!(prompt_names(&off.finish_prompt()), vec!["enter_pin"]);
}

#[test]
fn account_language_skips_the_menu_for_a_recognised_caller() {
    let (mut call, _) = Harness::new(
        IvrConfig {
            languages: vec![Language::ENGLISH, Language::SPANISH],
            ..IvrConfig::default()
        },
        Some("15551234567"),
    );
    let mut spanish = account(21_000_000);
    spanish.language = Some(Language::SPANISH);
    call.input(Input::CallerIdLookup(CallerIdLookup::Found(spanish)));
    let outputs = call.finish_prompt();
    assert_eq!(
        prompt_names(&outputs),
        vec!["you_have", "num_21_apocope", "dollars", "enter_destination"]
    );
    assert!(
        prompt_languages(&outputs)
            .iter()
            .all(|language| *language == Language::SPANISH)
    );
}

#[test]
fn wrong_pin_three_times_says_goodbye_and_hangs_up_without_charge() {
    let (mut call, _) = Harness::new(IvrConfig::default(), Some("15551234567"));
    call.input(Input::CallerIdLookup(CallerIdLookup::NotRegistered));
    call.finish_prompt();
    let mut failures = Vec::new();
    for round in 1..=3 {
        call.finish_prompt();
        if round == 2 {
            // Too short: refused without a lookup, still a failure.
            let outputs = call.dial("12#");
            failures.extend(outputs);
        } else {
            let lookup = call.dial("999999#");
            assert!(matches!(lookup[..], [Output::LookupByPin { .. }]));
            failures.extend(call.input(Input::PinLookup(PinLookup::Rejected)));
        }
    }
    let counts: Vec<u32> = failures
        .iter()
        .filter_map(|output| match output {
            Output::PinFailed {
                failures,
                caller_id,
            } => {
                assert_eq!(caller_id.as_ref().unwrap().expose(), "15551234567");
                Some(*failures)
            }
            _ => None,
        })
        .collect();
    assert_eq!(counts, vec![1, 2, 3]);
    assert_eq!(
        prompt_names(&failures),
        vec![
            "invalid_pin",
            "enter_pin",
            "invalid_pin",
            "enter_pin",
            "invalid_pin",
            "goodbye"
        ]
    );
    // Digits during the goodbye are ignored; its end hangs up.
    assert_eq!(call.dial("1"), vec![]);
    let end = call.finish_prompt();
    assert_eq!(
        end[0],
        Output::HangUpCaller {
            release: Release::from(DisconnectCause::AuthenticationFailed)
        }
    );
    let Output::CallRecord(record) = &end[1] else {
        panic!()
    };
    assert_eq!(record.cause, DisconnectCause::AuthenticationFailed);
    assert_eq!(record.account, None);
    assert_eq!(record.billed_ms, 0);
    assert!(
        !call
            .outputs()
            .any(|output| matches!(output, Output::Authorize { .. } | Output::Settle(_)))
    );
}

#[test]
fn by_default_an_unusable_card_sounds_exactly_like_a_wrong_pin() {
    let heard = |answer: PinLookup| {
        let (mut call, _) = Harness::pin_call();
        call.finish_prompt();
        call.dial("123456#");
        let outputs = call.input(Input::PinLookup(answer));
        let failures: Vec<u32> = outputs
            .iter()
            .filter_map(|output| match output {
                Output::PinFailed { failures, .. } => Some(*failures),
                _ => None,
            })
            .collect();
        (prompt_names(&outputs), failures)
    };
    let wrong = heard(PinLookup::Rejected);
    assert_eq!(wrong.0, vec!["invalid_pin", "enter_pin"]);
    assert_eq!(wrong.1, vec![1], "a failed try");
    assert_eq!(heard(PinLookup::CardInUse), wrong);
    assert_eq!(heard(PinLookup::CardExpired), wrong);
}

#[test]
fn pin_lookup_refusals_have_their_own_prompts() {
    let cases = [
        (
            PinLookup::LockedOut,
            "locked_out",
            DisconnectCause::LockedOut,
        ),
        (
            PinLookup::CardInUse,
            "card_in_use",
            DisconnectCause::CardInUse,
        ),
        (
            PinLookup::CardExpired,
            "card_expired",
            DisconnectCause::CardExpired,
        ),
    ];
    let revealing = IvrConfig {
        reveal_card_state: true,
        ..IvrConfig::default()
    };
    for (answer, prompt, cause) in cases {
        let (mut call, _) = Harness::new(revealing.clone(), None);
        call.finish_prompt();
        call.dial("123456#");
        assert_eq!(
            prompt_names(&call.input(Input::PinLookup(answer))),
            vec![prompt, "goodbye"]
        );
        let end = call.finish_prompt();
        assert_eq!(
            end[0],
            Output::HangUpCaller {
                release: Release::from(cause)
            }
        );
    }
    // A ledger that never answers: the caller is not left in silence.
    let (mut call, _) = Harness::pin_call();
    call.finish_prompt();
    call.dial("123456#");
    assert_eq!(
        prompt_names(&call.advance(10 * SECOND)),
        vec!["call_failed", "goodbye"]
    );
    // And a goodbye that never reports its end still hangs up.
    let end = call.advance(15 * SECOND);
    assert_eq!(
        end[0],
        Output::HangUpCaller {
            release: Release::from(DisconnectCause::SystemError)
        }
    );
}

#[test]
fn inter_digit_timeout_ends_pin_and_destination_entry() {
    let (mut call, _) = Harness::pin_call();
    call.finish_prompt();
    call.advance(9 * SECOND);
    call.dial("4711");
    assert_eq!(call.advance(4 * SECOND), vec![]);
    assert_eq!(
        call.advance(SECOND),
        vec![Output::LookupByPin {
            pin: Pii::new("4711".into())
        }]
    );
    call.input(Input::PinLookup(PinLookup::Found(account(5_000_000))));
    call.finish_prompt();
    call.dial("5551234");
    let outputs = call.advance(5 * SECOND);
    let [Output::Authorize { destination, .. }] = outputs.as_slice() else {
        panic!("{outputs:?}")
    };
    assert_eq!(destination.expose(), "5551234");
}

#[test]
fn maximum_lengths_end_entry_without_hash() {
    let (mut call, _) = Harness::new(
        IvrConfig {
            pin_min_length: 4,
            pin_max_length: 6,
            max_destination_length: 8,
            ..IvrConfig::default()
        },
        None,
    );
    call.finish_prompt();
    call.finish_prompt();
    assert!(matches!(
        call.dial("123456")[..],
        [Output::LookupByPin { .. }]
    ));
    call.input(Input::PinLookup(PinLookup::Found(account(5_000_000))));
    call.finish_prompt();
    assert!(matches!(
        call.dial("12345678")[..],
        [Output::Authorize { .. }]
    ));
}

#[test]
fn silence_replays_the_prompt_then_says_goodbye() {
    let (mut call, _) = Harness::pin_call();
    call.finish_prompt();
    let mut heard = Vec::new();
    for _ in 0..3 {
        call.finish_prompt();
        heard.extend(prompt_names(&call.advance(10 * SECOND)));
    }
    assert_eq!(heard, vec!["enter_pin", "enter_pin", "goodbye"]);
    let end = call.finish_prompt();
    assert_eq!(
        end[0],
        Output::HangUpCaller {
            release: Release::from(DisconnectCause::NoInput)
        }
    );
}

type Step<'a> = (Phase, &'a dyn Fn(&mut Harness));

/// Drives a fresh two-language PIN call into `phase` (optionally with early media).
fn call_in(phase: Phase, early_media: bool) -> Harness {
    let languages = vec![Language::ENGLISH, Language::SPANISH];
    let (mut call, _) = Harness::new(
        IvrConfig {
            languages,
            ..IvrConfig::default()
        },
        None,
    );
    let steps: [Step; 9] = [
        (Phase::Welcome, &|_| {}),
        (Phase::ChoosingLanguage, &|call| {
            call.finish_prompt();
        }),
        (Phase::EnteringPin, &|call| {
            call.dial("1");
        }),
        (Phase::CheckingPin, &|call| {
            call.dial("123456#");
        }),
        (Phase::EnteringDestination, &|call| {
            call.input(Input::PinLookup(PinLookup::Found(account(5_000_000))));
        }),
        (Phase::Authorizing, &|call| {
            call.dial("5551234#");
        }),
        (Phase::AnnouncingTalkTime, &|call| {
            let attempt = call.attempt();
            call.input(Input::Authorized {
                attempt,
                authorization: authorization(MINUTE * 10, MINUTE * 10),
            });
        }),
        (Phase::Connecting, &|call| {
            call.finish_prompt();
            let attempt = call.attempt();
            call.input(Input::CarrierTrying {
                attempt,
                carrier: "carrier-a".into(),
            });
        }),
        (Phase::Bridged, &|call| {
            let attempt = call.attempt();
            call.input(Input::CarrierAnswered { attempt });
        }),
    ];
    for (reached, step) in steps {
        step(&mut call);
        assert_eq!(call.call.phase(), reached);
        if reached == phase {
            break;
        }
    }
    if early_media {
        let attempt = call.attempt();
        call.input(Input::CarrierProgress {
            attempt,
            early_media: true,
        });
    }
    call
}

#[test]
fn caller_hanging_up_in_every_ivr_state_charges_nothing() {
    let phases = [
        (Phase::Welcome, false),
        (Phase::ChoosingLanguage, false),
        (Phase::EnteringPin, false),
        (Phase::CheckingPin, false),
        (Phase::EnteringDestination, false),
        (Phase::Authorizing, false),
        (Phase::AnnouncingTalkTime, false),
        (Phase::Connecting, false),
        (Phase::Connecting, true),
    ];
    for (phase, early_media) in phases {
        let mut call = call_in(phase, early_media);
        let end = call.input(Input::CallerHungUp);
        let context = format!("{phase:?} early media {early_media}: {end:?}");
        assert!(call.call.is_finished(), "{context}");
        assert!(
            !end.iter()
                .any(|output| matches!(output, Output::HangUpCaller { .. })),
            "{context}"
        );
        let authorized = call
            .outputs()
            .filter(|output| matches!(output, Output::Authorize { .. }))
            .count();
        let settled = settlement(&end);
        assert_eq!(settled.len(), authorized, "{context}");
        for (_, answered_ms, cause) in settled {
            assert_eq!(answered_ms, 0, "{context}");
            assert_eq!(cause, DisconnectCause::CallerHungUp, "{context}");
        }
        let placed = call
            .outputs()
            .any(|output| matches!(output, Output::PlaceCall { .. }));
        let cancelled = end.iter().any(|output| {
            matches!(output, Output::CancelCarrier { release, .. }
                if release.cause == DisconnectCause::CallerHungUp)
        });
        assert_eq!(placed, cancelled, "{context}");
        assert_eq!(
            end.iter()
                .any(|output| matches!(output, Output::Unbridge { .. })),
            early_media,
            "{context}"
        );
        let Some(Output::CallRecord(record)) = end.last() else {
            panic!("{context}")
        };
        assert_eq!(record.billed_ms, 0, "{context}");
        assert_eq!(record.hung_up_by, Party::Caller, "{context}");
    }
}

#[test]
fn caller_hanging_up_a_bridged_call_pays_for_the_talk_time() {
    let mut call = call_in(Phase::Bridged, false);
    call.advance(90 * SECOND);
    let attempt = call.attempt();
    let end = call.input(Input::CallerHungUp);
    assert_eq!(end[0], Output::Unbridge { attempt });
    assert_eq!(
        end[1],
        Output::HangUpCarrier {
            attempt,
            release: Release::from(DisconnectCause::CallerHungUp)
        }
    );
    assert_eq!(
        settlement(&end),
        vec![(attempt, 90_000, DisconnectCause::CallerHungUp)]
    );
}

#[test]
fn busy_returns_to_destination_entry_and_the_next_call_uses_the_same_card() {
    let mut call = authenticated_pin_call(20_000_000);
    let first = place_call(&mut call, "0033123456789#", 10 * MINUTE);
    call.input(Input::CarrierTrying {
        attempt: first,
        carrier: "carrier-a".into(),
    });
    let outputs = call.input(Input::CarrierFailed {
        attempt: first,
        sip_status: 486,
        failover: false,
    });
    assert!(matches!(outputs[0], Output::StopPlayback { .. }));
    assert_eq!(
        settlement(&outputs),
        vec![(first, 0, DisconnectCause::Busy)]
    );
    let Output::AttemptRecord(record) = &outputs[2] else {
        panic!("{outputs:?}")
    };
    assert_eq!(record.sip_status, Some(486));
    assert_eq!(record.q850, 17);
    assert_eq!(record.carrier_tries[0].sip_status, Some(486));
    assert_eq!(prompt_names(&outputs), vec!["busy", "enter_destination"]);
    assert_eq!(call.call.phase(), Phase::EnteringDestination);

    call.finish_prompt();
    let second = place_call(&mut call, "0033123456780#", 10 * MINUTE);
    assert_eq!(second, AttemptId(2));
    let authorizations: Vec<_> = call
        .outputs()
        .filter_map(|output| match output {
            Output::Authorize { account, card, .. } => Some((*account, *card)),
            _ => None,
        })
        .collect();
    assert_eq!(authorizations, vec![(AccountId(42), Some(CardId(7))); 2]);
    let outputs = call.input(Input::CarrierAnswered { attempt: second });
    assert!(outputs.contains(&Output::Bridge {
        attempt: second,
        mode: BridgeMode::Full
    }));
    // A stale event for the first attempt is ignored.
    assert_eq!(call.input(Input::CarrierHungUp { attempt: first }), vec![]);
    assert_eq!(call.call.phase(), Phase::Bridged);
}

#[test]
fn carrier_outcomes_have_their_prompts() {
    let cases = [
        (480, "no_answer", DisconnectCause::NoAnswer),
        (
            404,
            "invalid_destination",
            DisconnectCause::UnknownDestination,
        ),
        (503, "call_failed", DisconnectCause::Failed),
    ];
    for (status, prompt, cause) in cases {
        let mut call = authenticated_pin_call(20_000_000);
        let attempt = place_call(&mut call, "5551234#", 10 * MINUTE);
        let outputs = call.input(Input::CarrierFailed {
            attempt,
            sip_status: status,
            failover: false,
        });
        assert_eq!(settlement(&outputs), vec![(attempt, 0, cause)]);
        assert_eq!(prompt_names(&outputs), vec![prompt, "enter_destination"]);
    }
}

#[test]
fn failover_and_early_media() {
    let mut call = authenticated_pin_call(20_000_000);
    let attempt = place_call(&mut call, "5551234#", 10 * MINUTE);
    let ringback = call.last_playback();
    call.input(Input::CarrierTrying {
        attempt,
        carrier: "carrier-a".into(),
    });
    assert_eq!(
        call.input(Input::CarrierProgress {
            attempt,
            early_media: true
        }),
        vec![
            Output::StopPlayback { playback: ringback },
            Output::Bridge {
                attempt,
                mode: BridgeMode::EarlyMedia
            }
        ]
    );
    call.advance(3 * SECOND);
    let outputs = call.input(Input::CarrierFailed {
        attempt,
        sip_status: 503,
        failover: true,
    });
    assert_eq!(outputs[0], Output::Unbridge { attempt });
    assert!(matches!(
        outputs[1],
        Output::PlayTone {
            tone: Tone::Ringback,
            ..
        }
    ));
    assert_eq!(call.call.phase(), Phase::Connecting);
    call.input(Input::CarrierTrying {
        attempt,
        carrier: "carrier-b".into(),
    });
    call.advance(2 * SECOND);
    call.input(Input::CarrierAnswered { attempt });
    call.advance(MINUTE);
    let outputs = call.input(Input::CarrierHungUp { attempt });
    let record = outputs
        .iter()
        .find_map(|output| match output {
            Output::AttemptRecord(record) => Some(record),
            _ => None,
        })
        .unwrap();
    assert_eq!(record.carrier.as_deref(), Some("carrier-b"));
    let tries: Vec<_> = record
        .carrier_tries
        .iter()
        .map(|carrier| (carrier.carrier.as_str(), carrier.sip_status))
        .collect();
    assert_eq!(
        tries,
        vec![("carrier-a", Some(503)), ("carrier-b", Some(200))]
    );
    assert_eq!(
        record.carrier_tries[0].ended_ms,
        record.carrier_tries[1].started_ms
    );
    assert_eq!(record.duration_ms, 60_000);
}

#[test]
fn unanswered_carrier_is_cancelled_after_the_no_answer_timeout() {
    let mut call = authenticated_pin_call(20_000_000);
    let attempt = place_call(&mut call, "5551234#", 10 * MINUTE);
    assert_eq!(call.advance(59 * SECOND), vec![]);
    let outputs = call.advance(SECOND);
    assert!(outputs.contains(&Output::CancelCarrier {
        attempt,
        release: Release::from(DisconnectCause::NoAnswer)
    }));
    assert_eq!(
        settlement(&outputs),
        vec![(attempt, 0, DisconnectCause::NoAnswer)]
    );
    assert_eq!(
        prompt_names(&outputs),
        vec!["no_answer", "enter_destination"]
    );
    // The carrier's 487 for the cancelled INVITE arrives later and is ignored.
    assert_eq!(
        call.input(Input::CarrierFailed {
            attempt,
            sip_status: 487,
            failover: false
        }),
        vec![]
    );
}

#[test]
fn card_in_use_at_authorization() {
    let mut call = authenticated_pin_call(20_000_000);
    call.dial("5551234#");
    let attempt = call.attempt();
    let outputs = call.input(Input::AuthorizationRefused {
        attempt,
        refusal: Refusal::CardInUse,
    });
    assert_eq!(
        settlement(&outputs),
        vec![(attempt, 0, DisconnectCause::CardInUse)]
    );
    assert_eq!(prompt_names(&outputs), vec!["card_in_use", "goodbye"]);
    let end = call.finish_prompt();
    assert_eq!(
        end[0],
        Output::HangUpCaller {
            release: Release::from(DisconnectCause::CardInUse)
        }
    );
}

#[test]
fn a_ledger_that_cannot_answer_is_a_failed_call_not_no_credit() {
    let mut call = authenticated_pin_call(20_000_000);
    call.dial("5551234#");
    let attempt = call.attempt();
    let outputs = call.input(Input::AuthorizationRefused {
        attempt,
        refusal: Refusal::Unavailable,
    });
    assert_eq!(
        settlement(&outputs),
        vec![(attempt, 0, DisconnectCause::SystemError)]
    );
    // The caller may try again: the next attempt is asked for, as after a timeout.
    assert_eq!(
        prompt_names(&outputs),
        vec!["call_failed", "enter_destination"]
    );
}

#[test]
fn unknown_and_blocked_destinations_return_to_entry_then_goodbye() {
    let mut call = authenticated_pin_call(20_000_000);
    let mut heard = Vec::new();
    let refusals = [
        Refusal::UnknownDestination,
        Refusal::BlockedDestination,
        Refusal::NoCredit,
    ];
    for refusal in refusals {
        call.dial("0044999#");
        let attempt = call.attempt();
        let outputs = call.input(Input::AuthorizationRefused { attempt, refusal });
        assert_eq!(settlement(&outputs), vec![(attempt, 0, refusal.cause())]);
        heard.extend(prompt_names(&outputs));
        call.finish_prompt();
    }
    assert_eq!(
        heard,
        vec![
            "invalid_destination",
            "enter_destination",
            "blocked_destination",
            "enter_destination",
            "no_credit",
            "goodbye"
        ]
    );
    // A number that cannot be normalized is refused before any authorization.
    let mut call = authenticated_pin_call(20_000_000);
    assert_eq!(
        prompt_names(&call.dial("00#")),
        vec!["invalid_destination", "enter_destination"]
    );
    assert!(
        !call
            .outputs()
            .any(|output| matches!(output, Output::Authorize { .. }))
    );
}

#[test]
fn media_inactive_bills_up_to_the_moment_the_switch_ends_the_call() {
    let mut call = authenticated_pin_call(20_000_000);
    let attempt = place_call(&mut call, "5551234#", 30 * MINUTE);
    call.input(Input::CarrierAnswered { attempt });
    let answered = call.now;
    call.advance(10 * MINUTE);
    let outputs = call.input(Input::MediaInactive {
        last_packet: answered + 9 * MINUTE + 30 * SECOND,
    });
    let media_timeout = Release::from(DisconnectCause::MediaTimeout);
    assert_eq!(
        outputs[..3],
        [
            Output::Unbridge { attempt },
            Output::HangUpCarrier {
                attempt,
                release: media_timeout.clone()
            },
            Output::HangUpCaller {
                release: media_timeout
            },
        ]
    );
    assert_eq!(
        settlement(&outputs),
        vec![(attempt, 600_000, DisconnectCause::MediaTimeout)],
        "the carrier billed until our BYE, 30 s after the last packet"
    );
}

#[test]
fn language_choice_switches_the_prompt_language() {
    let (mut call, _) = Harness::new(
        IvrConfig {
            languages: vec![Language::ENGLISH, Language::SPANISH],
            ..IvrConfig::default()
        },
        None,
    );
    let menu = call.finish_prompt();
    let [Output::Play { prompts, .. }] = menu.as_slice() else {
        panic!("{menu:?}")
    };
    assert_eq!(
        prompts,
        &vec![
            Prompt {
                language: Language::ENGLISH,
                name: "choose_language"
            },
            Prompt {
                language: Language::SPANISH,
                name: "choose_language"
            }
        ]
    );
    let menu_id = call.last_playback();
    let outputs = call.dial("2");
    assert_eq!(outputs[0], Output::StopPlayback { playback: menu_id });
    assert_eq!(prompt_names(&outputs), vec!["enter_pin"]);
    assert_eq!(prompt_languages(&outputs), vec![Language::SPANISH]);
    assert_eq!(call.call.language(), Language::SPANISH);
    call.dial("123456#");
    let outputs = call.input(Input::PinLookup(PinLookup::Found(account(31_000_000))));
    assert_eq!(
        prompt_names(&outputs),
        vec![
            "you_have",
            "num_30",
            "and",
            "num_1_apocope",
            "dollars",
            "enter_destination"
        ]
    );
    // A key that is not on the menu, or silence, replays it; the default wins in the end.
    let (mut call, _) = Harness::new(
        IvrConfig {
            languages: vec![Language::SPANISH, Language::ENGLISH],
            ..IvrConfig::default()
        },
        None,
    );
    call.finish_prompt();
    assert_eq!(prompt_names(&call.dial("9")), vec!["choose_language"; 2]);
    call.finish_prompt();
    call.advance(10 * SECOND);
    call.finish_prompt();
    let outputs = call.advance(10 * SECOND);
    assert_eq!(prompt_languages(&outputs), vec![Language::SPANISH]);
    assert_eq!(prompt_names(&outputs), vec!["enter_pin"]);
}

#[test]
fn a_digit_during_a_prompt_stops_it() {
    let mut call = authenticated_pin_call(12_500_000);
    // Back at destination entry with the prompt still playing after a refused number.
    call.dial("00#");
    let playing = call.last_playback();
    let outputs = call.dial("5");
    assert_eq!(outputs, vec![Output::StopPlayback { playback: playing }]);
    // The first digit counted: the entry continues from it.
    let outputs = call.dial("551234#");
    let [Output::Authorize { destination, .. }] = outputs.as_slice() else {
        panic!("{outputs:?}")
    };
    assert_eq!(destination.expose(), "5551234");
    // Barge-in on the talk-time announcement skips straight to the call.
    let attempt = call.attempt();
    call.input(Input::Authorized {
        attempt,
        authorization: authorization(MINUTE, MINUTE),
    });
    let announcement = call.last_playback();
    let outputs = call.dial("1");
    assert_eq!(
        outputs[0],
        Output::StopPlayback {
            playback: announcement
        }
    );
    assert!(matches!(outputs[1], Output::PlaceCall { .. }));
    // The welcome has no barge-in.
    let (mut fresh, _) = Harness::pin_call();
    assert_eq!(fresh.dial("1"), vec![]);
    assert_eq!(fresh.call.phase(), Phase::Welcome);
}

#[test]
fn announcements_can_be_turned_off() {
    let (mut call, _) = Harness::new(
        IvrConfig {
            announce_balance: false,
            announce_talk_time: false,
            ..IvrConfig::default()
        },
        None,
    );
    call.finish_prompt();
    call.dial("123456#");
    let outputs = call.input(Input::PinLookup(PinLookup::Found(account(12_500_000))));
    assert_eq!(prompt_names(&outputs), vec!["enter_destination"]);
    call.dial("5551234#");
    let attempt = call.attempt();
    let outputs = call.input(Input::Authorized {
        attempt,
        authorization: authorization(MINUTE, MINUTE),
    });
    assert!(matches!(outputs[0], Output::PlaceCall { .. }));
    // Pounds have words of their own; a currency without them is its amount and its code;
    // a code that is not one skips the balance rather than saying something wrong.
    let spoken = |currency: &str| {
        let (mut call, _) = Harness::pin_call();
        call.finish_prompt();
        call.dial("123456#");
        let mut payer = account(12_500_000);
        payer.currency = currency.into();
        prompt_names(&call.input(Input::PinLookup(PinLookup::Found(payer))))
    };
    assert_eq!(
        spoken("GBP"),
        [
            "you_have",
            "num_12",
            "pounds",
            "and",
            "num_50",
            "pence",
            "enter_destination"
        ]
    );
    assert_eq!(
        spoken("JPY"),
        [
            "you_have",
            "num_12",
            "point",
            "num_5",
            "num_0",
            "letter_j",
            "letter_p",
            "letter_y",
            "enter_destination"
        ]
    );
    assert_eq!(spoken("X1"), ["enter_destination"]);
}

#[test]
fn abort_tears_down_with_the_given_cause() {
    let mut call = call_in(Phase::Bridged, false);
    call.advance(30 * SECOND);
    let attempt = call.attempt();
    let end = call.input(Input::Abort {
        cause: DisconnectCause::Normal,
    });
    let normal = Release::from(DisconnectCause::Normal);
    assert!(end.contains(&Output::HangUpCarrier {
        attempt,
        release: normal.clone()
    }));
    assert!(end.contains(&Output::HangUpCaller { release: normal }));
    assert_eq!(
        settlement(&end),
        vec![(attempt, 30_000, DisconnectCause::Normal)]
    );
}

#[test]
fn end_leg_digits_end_the_call_but_keep_the_caller() {
    let mut call = call_in(Phase::Bridged, false);
    call.advance(45 * SECOND);
    let attempt = call.attempt();
    // A lone star (e.g. for the far end's IVR) does nothing.
    assert_eq!(call.dial("*1*"), vec![]);
    let outputs = call.dial("*");
    assert_eq!(outputs[0], Output::Unbridge { attempt });
    assert_eq!(
        outputs[1],
        Output::HangUpCarrier {
            attempt,
            release: Release::from(DisconnectCause::CallerHungUp)
        }
    );
    assert_eq!(
        settlement(&outputs),
        vec![(attempt, 45_000, DisconnectCause::CallerHungUp)]
    );
    assert_eq!(prompt_names(&outputs), vec!["enter_destination"]);
    assert_eq!(call.call.phase(), Phase::EnteringDestination);
    // Switched off, the same keys pass through untouched.
    let (mut call, _) = Harness::new(
        IvrConfig {
            end_leg_digits: None,
            ..IvrConfig::default()
        },
        None,
    );
    call.finish_prompt();
    call.dial("123456#");
    call.input(Input::PinLookup(PinLookup::Found(account(9_000_000))));
    let attempt = place_call(&mut call, "5551234#", 10 * MINUTE);
    call.input(Input::CarrierAnswered { attempt });
    assert_eq!(call.dial("****##"), vec![]);
    assert_eq!(call.call.phase(), Phase::Bridged);
}

#[test]
fn carrier_hanging_up_during_the_warning_stops_it() {
    let (mut call, _) = Harness::new(
        IvrConfig {
            warning: WarningKind::Prompt,
            ..IvrConfig::default()
        },
        None,
    );
    call.finish_prompt();
    call.dial("123456#");
    call.input(Input::PinLookup(PinLookup::Found(account(9_000_000))));
    let attempt = place_call(&mut call, "5551234#", 2 * MINUTE);
    call.input(Input::CarrierAnswered { attempt });
    let warning = call.advance(MINUTE);
    assert_eq!(prompt_names(&warning), vec!["credit_warning"]);
    let warning_id = call.last_playback();
    call.advance(10 * SECOND);
    let outputs = call.input(Input::CarrierHungUp { attempt });
    assert!(outputs.contains(&Output::StopPlayback {
        playback: warning_id
    }));
    assert_eq!(
        settlement(&outputs),
        vec![(attempt, 70_000, DisconnectCause::CarrierHungUp)]
    );
    // No credit timer survives the call; the entry timer waits for the prompt to end.
    assert_eq!(call.call.poll_timeout(), None);
    assert_eq!(call.advance(2 * MINUTE), vec![]);
}

#[test]
fn a_limit_shorter_than_the_warning_lead_has_no_warning() {
    let mut call = authenticated_pin_call(1_000_000);
    call.dial("5551234#");
    let attempt = call.attempt();
    let outputs = call.input(Input::Authorized {
        attempt,
        authorization: authorization(45 * SECOND, 45 * SECOND),
    });
    assert_eq!(
        prompt_names(&outputs),
        vec!["you_can_talk", "num_40", "num_5", "seconds"]
    );
    call.finish_prompt();
    call.input(Input::CarrierAnswered { attempt });
    let answered = call.elapsed();
    let outputs = call.advance(MINUTE);
    assert!(
        !outputs
            .iter()
            .any(|output| matches!(output, Output::PlayTone { .. } | Output::Play { .. }))
    );
    assert_eq!(
        call.times_of(|output| matches!(output, Output::HangUpCaller { .. })),
        vec![answered + 45 * SECOND]
    );
    assert_eq!(
        settlement(&outputs),
        vec![(attempt, 45_000, DisconnectCause::CreditExhausted)]
    );
}

#[test]
fn a_slow_authorization_is_abandoned_and_released() {
    let mut call = authenticated_pin_call(5_000_000);
    call.dial("5551234#");
    let attempt = call.attempt();
    let outputs = call.advance(10 * SECOND);
    assert_eq!(
        settlement(&outputs),
        vec![(attempt, 0, DisconnectCause::SystemError)]
    );
    assert_eq!(
        prompt_names(&outputs),
        vec!["call_failed", "enter_destination"]
    );
    // Its answer arriving afterwards changes nothing.
    assert_eq!(
        call.input(Input::Authorized {
            attempt,
            authorization: authorization(MINUTE, MINUTE),
        }),
        vec![]
    );
    assert_eq!(call.call.phase(), Phase::EnteringDestination);
}

#[test]
fn media_inactive_during_the_ivr_hangs_up_without_charge() {
    let mut call = call_in(Phase::Connecting, true);
    let attempt = call.attempt();
    let last_packet = call.now;
    call.advance(30 * SECOND);
    let outputs = call.input(Input::MediaInactive { last_packet });
    let media_timeout = Release::from(DisconnectCause::MediaTimeout);
    assert_eq!(
        outputs[..3],
        [
            Output::Unbridge { attempt },
            Output::CancelCarrier {
                attempt,
                release: media_timeout.clone()
            },
            Output::HangUpCaller {
                release: media_timeout
            },
        ]
    );
    assert_eq!(
        settlement(&outputs),
        vec![(attempt, 0, DisconnectCause::MediaTimeout)]
    );
    let Some(Output::CallRecord(record)) = outputs.last() else {
        panic!("{outputs:?}")
    };
    assert_eq!(record.cause, DisconnectCause::MediaTimeout);
    assert_eq!(record.q850, 102);
}

#[test]
fn a_ledger_that_cannot_answer_is_never_a_wrong_pin() {
    let (mut call, _) = Harness::pin_call();
    call.finish_prompt();
    let lookup = call.dial("123456#");
    assert!(
        lookup
            .iter()
            .any(|output| matches!(output, Output::LookupByPin { .. }))
    );
    let outputs = call.input(Input::PinLookup(PinLookup::Unavailable));
    assert!(
        !outputs
            .iter()
            .any(|output| matches!(output, Output::PinFailed { .. })),
        "no failed try is counted"
    );
    assert_eq!(prompt_names(&outputs), vec!["call_failed", "goodbye"]);
    call.finish_prompt();
    call.advance(20 * SECOND);
    let record = call.outputs().find_map(|output| match output {
        Output::CallRecord(record) => Some(record.cause),
        _ => None,
    });
    assert_eq!(record, Some(DisconnectCause::SystemError));
}
