//! Random input sequences never panic, always end with the caller hung up exactly once and
//! settle every opened attempt exactly once.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use talktime_engine::{
    AccountInfo, AttemptId, CallerIdLookup, DisconnectCause, Input, IvrConfig, Language, Output,
    Phase, PinChangeOutcome, PinLookup, PlaybackId, Refusal, VoucherOutcome, WarningKind,
};
use talktime_pii::Pii;

#[derive(Debug, Clone)]
enum Action {
    /// Whatever moves the call forward in its current phase (so the deep states are reached).
    HappyStep {
        limit_ms: u64,
    },
    Digit(char),
    FinishPlayback,
    FinishStalePlayback(u64),
    Advance(u64),
    CallerIdFound {
        balance: i64,
        spanish: bool,
        forward: bool,
    },
    CallerIdNotRegistered,
    CallerIdRemembered,
    /// A service's answer: stored number, speed dial stored, voucher, PIN change.
    Service(u8),
    Pin(u8),
    Authorized {
        limit_ms: u64,
        skew: i8,
    },
    Refused {
        refusal: u8,
        skew: i8,
    },
    CarrierTrying {
        skew: i8,
    },
    Progress {
        early_media: bool,
        skew: i8,
    },
    Answered {
        skew: i8,
    },
    Failed {
        status: u16,
        failover: bool,
        skew: i8,
    },
    CarrierHungUp {
        skew: i8,
    },
    MediaInactive {
        silent_ms: u64,
    },
    CallerHungUp,
    Abort,
}

fn skew() -> impl Strategy<Value = i8> {
    prop_oneof![6 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (0u64..3_700_000).prop_map(|limit_ms| Action::HappyStep { limit_ms }),
        8 => prop::sample::select(vec!['0', '1', '2', '5', '9', '*', '#', 'A'])
            .prop_map(Action::Digit),
        6 => Just(Action::FinishPlayback),
        1 => (0u64..12).prop_map(Action::FinishStalePlayback),
        5 => prop_oneof![0u64..20_000, 0u64..4_000_000].prop_map(Action::Advance),
        1 => (-2_000_000i64..50_000_000, any::<bool>(), any::<bool>()).prop_map(
            |(balance, spanish, forward)| Action::CallerIdFound { balance, spanish, forward }
        ),
        1 => Just(Action::CallerIdNotRegistered),
        1 => Just(Action::CallerIdRemembered),
        1 => (0u8..14).prop_map(Action::Service),
        2 => (0u8..5).prop_map(Action::Pin),
        2 => (0u64..3_700_000, skew())
            .prop_map(|(limit_ms, skew)| Action::Authorized { limit_ms, skew }),
        1 => (0u8..5, skew()).prop_map(|(refusal, skew)| Action::Refused { refusal, skew }),
        1 => skew().prop_map(|skew| Action::CarrierTrying { skew }),
        1 => (any::<bool>(), skew())
            .prop_map(|(early_media, skew)| Action::Progress { early_media, skew }),
        2 => skew().prop_map(|skew| Action::Answered { skew }),
        1 => (prop::sample::select(vec![404u16, 480, 486, 487, 503]), any::<bool>(), skew())
            .prop_map(|(status, failover, skew)| Action::Failed { status, failover, skew }),
        1 => skew().prop_map(|skew| Action::CarrierHungUp { skew }),
        1 => (0u64..120_000).prop_map(|silent_ms| Action::MediaInactive { silent_ms }),
        1 => Just(Action::CallerHungUp),
        1 => Just(Action::Abort),
    ]
}

fn config() -> impl Strategy<Value = (IvrConfig, bool)> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        (any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                two_languages,
                prompt_warning,
                ani,
                announce,
                caller_id,
                (forwarding, welcome, recharge),
            )| {
                let config = IvrConfig {
                    languages: if two_languages {
                        vec![Language::ENGLISH, Language::SPANISH]
                    } else {
                        vec![Language::ENGLISH]
                    },
                    warning: if prompt_warning {
                        WarningKind::Prompt
                    } else {
                        WarningKind::Beep
                    },
                    ani_authentication: ani,
                    announce_balance: announce,
                    announce_talk_time: announce,
                    pin_min_length: 1,
                    // Forwarding needs ANI authentication.
                    forwarding: forwarding && ani,
                    forwarding_welcome: welcome,
                    // One call in eight is on a recharge line.
                    recharge_only: recharge && welcome && !forwarding,
                    ..IvrConfig::default()
                };
                (config, caller_id)
            },
        )
}

fn skewed(harness: &Harness, skew: i8) -> AttemptId {
    let current = harness
        .outputs()
        .filter_map(|output| match output {
            Output::Authorize { attempt, .. } => Some(attempt.0),
            _ => None,
        })
        .last()
        .unwrap_or(1);
    AttemptId(current.saturating_add_signed(i32::from(skew)))
}

/// The last playback, or a stale id when nothing was played yet (a silent forwarding call).
fn last_playback(harness: &Harness) -> PlaybackId {
    let played = harness
        .outputs()
        .any(|output| matches!(output, Output::Play { .. } | Output::PlayTone { .. }));
    if played {
        harness.last_playback()
    } else {
        PlaybackId(0)
    }
}

/// A registered caller with a forward destination.
fn forwarded_account(balance: i64) -> AccountInfo {
    AccountInfo {
        forward_destination: Some(Pii::new("0044207946000".into())),
        ..account(balance)
    }
}

fn happy_step(harness: &Harness, limit_ms: u64) -> Vec<Input> {
    let digits = |text: &str| text.chars().map(Input::Digit).collect();
    let attempt = skewed(harness, 0);
    match harness.call.phase() {
        // Answer the caller-ID lookup (a late answer is ignored) with an account that has a
        // forward destination, so forwarding calls get past the welcome too.
        Phase::Welcome
            if harness
                .outputs()
                .any(|output| matches!(output, Output::LookupByCallerId { .. })) =>
        {
            vec![
                Input::CallerIdLookup(CallerIdLookup::Found(forwarded_account(7_500_000))),
                Input::PlaybackFinished {
                    playback: last_playback(harness),
                },
            ]
        }
        Phase::Welcome
        | Phase::AnnouncingBalance
        | Phase::AnnouncingTalkTime
        | Phase::Farewell
        | Phase::Bridged
        | Phase::Finished => vec![Input::PlaybackFinished {
            playback: last_playback(harness),
        }],
        Phase::ChoosingLanguage => digits("2"),
        Phase::EnteringPin => digits("1234#"),
        Phase::CheckingPin => vec![Input::PinLookup(PinLookup::Found(account(7_500_000)))],
        Phase::EnteringDestination => digits("0044201234567#"),
        Phase::Authorizing => vec![Input::Authorized {
            attempt,
            authorization: authorization(
                Duration::from_millis(limit_ms),
                Duration::from_millis(limit_ms / 60_000 * 60_000),
            ),
        }],
        Phase::Connecting => vec![Input::CarrierAnswered { attempt }],
        Phase::StoredNumbers => vec![
            Input::StoredNumber(Some(Pii::new("0044201234567".into()))),
            Input::SpeedDialStored(true),
        ],
        Phase::Recharging => {
            let mut inputs: Vec<Input> = digits("123456789012#");
            inputs.push(service_answer(4));
            inputs
        }
        Phase::ChangingPin => {
            let mut inputs: Vec<Input> = digits("4321#");
            inputs.extend(digits("4321#"));
            inputs.push(service_answer(10));
            inputs
        }
    }
}

/// Every answer a service can get, by number.
fn service_answer(which: u8) -> Input {
    match which {
        0 => Input::StoredNumber(None),
        1 => Input::StoredNumber(Some(Pii::new("+442071234567".into()))),
        2 => Input::SpeedDialStored(false),
        3 => Input::SpeedDialStored(true),
        4 => Input::VoucherRedeemed(VoucherOutcome::Credited {
            amount_micros: 5_000_000,
            balance_micros: 12_500_000,
        }),
        5 => Input::VoucherRedeemed(VoucherOutcome::Unknown),
        6 => Input::VoucherRedeemed(VoucherOutcome::AlreadyUsed),
        7 => Input::VoucherRedeemed(VoucherOutcome::NotUsable),
        8 => Input::VoucherRedeemed(VoucherOutcome::NotRefillable),
        9 => Input::VoucherRedeemed(VoucherOutcome::Unavailable),
        10 => Input::PinChanged(PinChangeOutcome::Changed),
        11 => Input::PinChanged(PinChangeOutcome::Taken),
        12 => Input::PinChanged(PinChangeOutcome::NotRefillable),
        _ => Input::PinChanged(PinChangeOutcome::Unavailable),
    }
}

fn to_inputs(harness: &Harness, action: &Action) -> Vec<Input> {
    if let Action::HappyStep { limit_ms } = action {
        return happy_step(harness, *limit_ms);
    }
    to_input(harness, action).into_iter().collect()
}

fn to_input(harness: &Harness, action: &Action) -> Option<Input> {
    let input = match action {
        Action::HappyStep { .. } => return None,
        Action::Digit(digit) => Input::Digit(*digit),
        Action::FinishPlayback => Input::PlaybackFinished {
            playback: last_playback(harness),
        },
        Action::FinishStalePlayback(id) => Input::PlaybackFinished {
            playback: PlaybackId(*id),
        },
        Action::Advance(_) => return None,
        Action::CallerIdFound {
            balance,
            spanish,
            forward,
        } => {
            let mut found = if *forward {
                forwarded_account(*balance)
            } else {
                account(*balance)
            };
            found.language = spanish.then_some(Language::SPANISH);
            Input::CallerIdLookup(CallerIdLookup::Found(found))
        }
        Action::CallerIdNotRegistered => Input::CallerIdLookup(CallerIdLookup::NotRegistered),
        Action::CallerIdRemembered => {
            Input::CallerIdLookup(CallerIdLookup::Remembered(Language::SPANISH))
        }
        Action::Service(which) => service_answer(*which),
        Action::Pin(answer) => Input::PinLookup(match answer {
            0 => PinLookup::Found(account(7_500_000)),
            1 => PinLookup::Rejected,
            2 => PinLookup::LockedOut,
            3 => PinLookup::CardInUse,
            _ => PinLookup::CardExpired,
        }),
        Action::Authorized { limit_ms, skew } => Input::Authorized {
            attempt: skewed(harness, *skew),
            authorization: authorization(
                Duration::from_millis(*limit_ms),
                Duration::from_millis(limit_ms / 60_000 * 60_000),
            ),
        },
        Action::Refused { refusal, skew } => Input::AuthorizationRefused {
            attempt: skewed(harness, *skew),
            refusal: match refusal {
                0 => Refusal::NoCredit,
                1 => Refusal::UnknownDestination,
                2 => Refusal::BlockedDestination,
                3 => Refusal::Unavailable,
                _ => Refusal::CardInUse,
            },
        },
        Action::CarrierTrying { skew } => Input::CarrierTrying {
            attempt: skewed(harness, *skew),
            carrier: "carrier".into(),
        },
        Action::Progress { early_media, skew } => Input::CarrierProgress {
            attempt: skewed(harness, *skew),
            early_media: *early_media,
        },
        Action::Answered { skew } => Input::CarrierAnswered {
            attempt: skewed(harness, *skew),
        },
        Action::Failed {
            status,
            failover,
            skew,
        } => Input::CarrierFailed {
            attempt: skewed(harness, *skew),
            sip_status: *status,
            failover: *failover,
        },
        Action::CarrierHungUp { skew } => Input::CarrierHungUp {
            attempt: skewed(harness, *skew),
        },
        Action::MediaInactive { silent_ms } => Input::MediaInactive {
            last_packet: harness
                .now
                .checked_sub(Duration::from_millis(*silent_ms))
                .unwrap_or(harness.start),
        },
        Action::CallerHungUp => Input::CallerHungUp,
        Action::Abort => Input::Abort {
            cause: DisconnectCause::Normal,
        },
    };
    Some(input)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_inputs_end_cleanly(
        (config, with_caller_id) in config(),
        actions in prop::collection::vec(action(), 0..80),
    ) {
        let caller_id = with_caller_id.then_some("15551234567");
        let (mut harness, _) = Harness::new(config, caller_id);
        let mut caller_ends = 0;
        for action in &actions {
            if let Action::Advance(milliseconds) = action {
                harness.advance(Duration::from_millis(*milliseconds));
                continue;
            }
            for input in to_inputs(&harness, action) {
                let was_running = !harness.call.is_finished();
                if input == Input::CallerHungUp && was_running {
                    caller_ends += 1;
                }
                harness.input(input);
            }
        }
        // Whatever happened, the caller eventually leaves (if the call is still up).
        if !harness.call.is_finished() {
            caller_ends += 1;
            harness.input(Input::CallerHungUp);
        }
        prop_assert!(harness.call.is_finished());
        prop_assert_eq!(harness.call.poll_timeout(), None);
        let outputs: Vec<Output> = harness.outputs().cloned().collect();

        caller_ends += outputs
            .iter()
            .filter(|output| matches!(output, Output::HangUpCaller { .. }))
            .count();
        prop_assert_eq!(caller_ends, 1, "{:?}", outputs);

        let records = outputs
            .iter()
            .filter(|output| matches!(output, Output::CallRecord(_)))
            .count();
        prop_assert_eq!(records, 1);
        prop_assert!(matches!(outputs.last(), Some(Output::CallRecord(_))));

        // The limit the engine placed each call with; unplaced attempts bill nothing.
        let limits: BTreeMap<AttemptId, u64> = outputs
            .iter()
            .filter_map(|output| match output {
                Output::PlaceCall { attempt, limit_ms, .. } => Some((*attempt, *limit_ms)),
                _ => None,
            })
            .collect();
        let mut opened = Vec::new();
        let mut settled = Vec::new();
        let mut recorded = Vec::new();
        for output in &outputs {
            match output {
                Output::Authorize { attempt, .. } => opened.push(*attempt),
                Output::Settle(settlement) => {
                    settled.push(settlement.attempt);
                    // Nothing is ever billed past the authorized limit.
                    let limit = limits.get(&settlement.attempt).copied().unwrap_or(0);
                    prop_assert!(settlement.answered_ms <= limit, "{:?}", settlement);
                }
                Output::AttemptRecord(record) => recorded.push(record.attempt),
                _ => {}
            }
        }
        prop_assert_eq!(&opened, &settled);
        prop_assert_eq!(&opened, &recorded);

        // A carrier leg is released at most once.
        for attempt in &opened {
            let releases = outputs
                .iter()
                .filter(|output| matches!(output,
                    Output::CancelCarrier { attempt: released, .. }
                    | Output::HangUpCarrier { attempt: released, .. } if released == attempt))
                .count();
            prop_assert!(releases <= 1);
        }

        // Playback ids are never reused.
        let mut playbacks: Vec<PlaybackId> = outputs
            .iter()
            .filter_map(|output| match output {
                Output::Play { playback, .. } | Output::PlayTone { playback, .. } => {
                    Some(*playback)
                }
                _ => None,
            })
            .collect();
        let count = playbacks.len();
        playbacks.dedup();
        prop_assert_eq!(playbacks.len(), count);
    }
}

/// The generator must actually reach the deep states, or the property above proves little.
#[test]
fn random_sequences_reach_bridged_calls_and_credit_exhaustion() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (config(), prop::collection::vec(action(), 0..80));
    let (mut authorized, mut bridged, mut exhausted, mut forwarded) = (0, 0, 0, 0);
    let mut recharged = 0;
    for _ in 0..512 {
        let ((config, with_caller_id), actions) = strategy.new_tree(&mut runner).unwrap().current();
        let (mut harness, _) = Harness::new(config, with_caller_id.then_some("15551234567"));
        for action in &actions {
            if let Action::Advance(milliseconds) = action {
                harness.advance(Duration::from_millis(*milliseconds));
            } else {
                for input in to_inputs(&harness, action) {
                    harness.input(input);
                }
            }
        }
        let seen = |wanted: fn(&Output) -> bool| harness.outputs().any(wanted);
        authorized += usize::from(seen(|output| matches!(output, Output::Authorize { .. })));
        bridged += usize::from(seen(|output| matches!(output, Output::Bridge { .. })));
        exhausted += usize::from(seen(|output| {
            matches!(output, Output::Settle(settlement)
                if settlement.cause == DisconnectCause::CreditExhausted)
        }));
        recharged += usize::from(seen(|output| {
            matches!(output, Output::RedeemVoucher { .. })
        }));
        let asked_destination = prompt_names(&harness.outputs().cloned().collect::<Vec<_>>())
            .contains(&"enter_destination");
        forwarded += usize::from(
            !asked_destination && seen(|output| matches!(output, Output::PlaceCall { .. })),
        );
    }
    assert!(forwarded >= 10, "forwarded in {forwarded} of 512");
    assert!(authorized >= 50, "authorized in {authorized} of 512");
    assert!(bridged >= 15, "bridged in {bridged} of 512");
    assert!(exhausted >= 3, "credit exhausted in {exhausted} of 512");
    assert!(recharged >= 5, "voucher entered in {recharged} of 512");
}
