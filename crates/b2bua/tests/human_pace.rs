//! Calls driven on a virtual clock the way the shell drives them: the only wake-ups are the
//! armed deadlines and the peers' events, and after every input the call's next deadline is
//! armed in place of the previous one. The caller keys digits at a human pace (400-600 ms
//! apart, with jitter); the call must end exactly at its credit limit, and a carrier that
//! rings forever must be given up at the no-answer timeout (issue 11).
//!
//! `ArmEarlierOnly` is the shell's former policy (push a deadline only when it is earlier than
//! the armed one): the same calls run past their limit with it, which shows what the tests
//! here catch.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use talktime_b2bua::Deadlines;
use talktime_engine::{
    AccountId, AccountInfo, Authorization, Call, CallId, CallSetup, CardId, DisconnectCause, Input,
    IvrConfig, Output, PinLookup, Tone,
};

/// How the shell keeps the calls' deadlines.
trait TimerPolicy: Default {
    /// Called after every input a call handled, with the call's next deadline.
    fn armed(&mut self, key: u64, due: Option<Instant>);
    fn next(&self) -> Option<Instant>;
    fn pop_due(&mut self, now: Instant) -> Option<u64>;
    /// Whether a popped call is armed again when its engine had nothing due (a stale entry).
    const REARMS_STALE_POPS: bool = true;
}

impl TimerPolicy for Deadlines<u64, Instant> {
    fn armed(&mut self, key: u64, due: Option<Instant>) {
        self.set(key, due);
    }
    fn next(&self) -> Option<Instant> {
        Deadlines::next(self)
    }
    fn pop_due(&mut self, now: Instant) -> Option<u64> {
        Deadlines::pop_due(self, now)
    }
}

/// The shell before issue 11: one heap entry per call, replaced only by an earlier one.
#[derive(Default)]
struct ArmEarlierOnly {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    armed: HashMap<u64, Instant>,
}

impl TimerPolicy for ArmEarlierOnly {
    const REARMS_STALE_POPS: bool = false;
    fn armed(&mut self, key: u64, due: Option<Instant>) {
        if let Some(due) = due
            && self.armed.get(&key).is_none_or(|armed| due < *armed)
        {
            self.armed.insert(key, due);
            self.heap.push(Reverse((due, key)));
        }
    }
    fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }
    fn pop_due(&mut self, now: Instant) -> Option<u64> {
        let Reverse((at, key)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        if self.armed.get(&key) == Some(&at) {
            self.armed.remove(&key);
        }
        Some(key)
    }
}

/// How the peers behave: prompt lengths, ledger delay, carrier ring time.
#[derive(Debug, Clone, Copy)]
struct Peers {
    prompt_ms: u64,
    ledger_ms: u64,
    /// `None`: the carrier rings forever.
    ring_ms: Option<u64>,
    limit_ms: u64,
}

/// One call, its peers and the shell's deadline handling on a virtual clock.
struct Switch<P: TimerPolicy> {
    start: Instant,
    now: Instant,
    call: Call,
    timers: P,
    peers: Peers,
    /// Peer events by time (the sequence number keeps same-time events in order).
    events: BTreeMap<(Instant, u64), Input>,
    sequence: u64,
    /// Every output with its virtual time since the start.
    log: Vec<(Duration, Output)>,
}

const KEY: u64 = 7;

impl<P: TimerPolicy> Switch<P> {
    fn new(ivr: IvrConfig, peers: Peers) -> Switch<P> {
        let start = Instant::now();
        let call = Call::new(CallSetup {
            call_id: CallId("call-1".into()),
            caller_id: None,
            access_number: "100".into(),
            ivr,
            languages: talktime_engine::LanguageBook::builtin(),
            now: start,
        })
        .unwrap();
        let mut switch = Switch {
            start,
            now: start,
            call,
            timers: P::default(),
            peers,
            events: BTreeMap::new(),
            sequence: 0,
            log: Vec::new(),
        };
        switch.after_input();
        switch
    }

    fn schedule(&mut self, after: Duration, input: Input) {
        self.sequence += 1;
        self.events.insert((self.now + after, self.sequence), input);
    }

    /// The caller's keys at these times since the start.
    fn keys(&mut self, presses: &[(Duration, char)]) {
        for (at, key) in presses {
            self.sequence += 1;
            self.events
                .insert((self.start + *at, self.sequence), Input::Digit(*key));
        }
    }

    /// What the shell does after every input: act on the outputs, arm the next deadline.
    fn after_input(&mut self) {
        while let Some(output) = self.call.poll_output() {
            self.peers_react(&output);
            self.log.push((self.now - self.start, output));
        }
        self.timers.armed(KEY, self.call.poll_timeout());
    }

    fn peers_react(&mut self, output: &Output) {
        let ms = Duration::from_millis;
        let peers = self.peers;
        match output {
            Output::Play { playback, .. } => self.schedule(
                ms(peers.prompt_ms),
                Input::PlaybackFinished {
                    playback: *playback,
                },
            ),
            Output::PlayTone {
                playback,
                tone: Tone::WarningBeep,
            } => self.schedule(
                ms(200),
                Input::PlaybackFinished {
                    playback: *playback,
                },
            ),
            Output::LookupByPin { .. } => self.schedule(
                ms(peers.ledger_ms),
                Input::PinLookup(PinLookup::Found(account())),
            ),
            Output::Authorize { attempt, .. } => self.schedule(
                ms(peers.ledger_ms),
                Input::Authorized {
                    attempt: *attempt,
                    authorization: Authorization {
                        limit_ms: peers.limit_ms,
                        announced_limit_ms: peers.limit_ms,
                        reserved_micros: 800_000,
                        limit_cause: talktime_engine::DisconnectCause::CreditExhausted,
                    },
                },
            ),
            Output::PlaceCall { attempt, .. } => {
                let carrier = "carrier".to_owned();
                self.schedule(
                    Duration::ZERO,
                    Input::CarrierTrying {
                        attempt: *attempt,
                        carrier,
                    },
                );
                if let Some(ring) = peers.ring_ms {
                    self.schedule(ms(ring), Input::CarrierAnswered { attempt: *attempt });
                }
            }
            _ => {}
        }
    }

    /// Runs the clock to `until`, waking only for peer events and armed deadlines.
    fn run_until(&mut self, until: Duration) {
        let until = self.start + until;
        loop {
            let event = self.events.first_key_value().map(|((at, _), _)| *at);
            let timer = self.timers.next();
            let Some(next) = [event, timer].into_iter().flatten().min() else {
                break;
            };
            if next > until {
                break;
            }
            self.now = next;
            if event == Some(next) {
                let (_, input) = self.events.pop_first().unwrap();
                self.call.handle_input(input, self.now);
                self.after_input();
                continue;
            }
            while let Some(key) = self.timers.pop_due(self.now) {
                assert_eq!(key, KEY);
                if self.call.poll_timeout().is_some_and(|due| due <= self.now) {
                    self.call.handle_timeout(self.now);
                    self.after_input();
                } else if P::REARMS_STALE_POPS {
                    self.after_input();
                }
            }
        }
        self.now = self.now.max(until);
    }

    fn first_time(&self, matches: impl Fn(&Output) -> bool) -> Option<Duration> {
        self.log
            .iter()
            .find(|(_, output)| matches(output))
            .map(|(at, _)| *at)
    }

    fn answered_at(&self) -> Option<Duration> {
        self.first_time(|output| matches!(output, Output::Bridge { .. }))
    }

    fn carrier_hung_up_at(&self) -> Option<Duration> {
        self.first_time(|output| matches!(output, Output::HangUpCarrier { .. }))
    }

    fn caller_hung_up_at(&self) -> Option<Duration> {
        self.first_time(|output| matches!(output, Output::HangUpCaller { .. }))
    }

    fn cancelled_at(&self) -> Option<Duration> {
        self.first_time(|output| matches!(output, Output::CancelCarrier { .. }))
    }

    fn placed_at(&self) -> Option<Duration> {
        self.first_time(|output| matches!(output, Output::PlaceCall { .. }))
    }

    fn end_cause(&self) -> Option<DisconnectCause> {
        self.log.iter().find_map(|(_, output)| match output {
            Output::CallRecord(record) => Some(record.cause),
            _ => None,
        })
    }
}

fn account() -> AccountInfo {
    AccountInfo {
        account: AccountId(1),
        card: Some(CardId(1)),
        balance_micros: 800_000,
        minimum_micros: 0,
        currency: "USD".into(),
        language: None,
        forward_destination: None,
    }
}

fn ivr() -> IvrConfig {
    IvrConfig {
        warning_lead_ms: 2_000,
        inter_digit_timeout_ms: 3_000,
        first_digit_timeout_ms: 8_000,
        no_answer_timeout_ms: 30_000,
        ..IvrConfig::default()
    }
}

const PIN: &str = "1234567890#";
const DESTINATION: &str = "0015551234567#";

/// PIN then destination, each key `gaps[i]` after the one before, with a pause between the
/// two; returns the presses and when the last one happened.
fn human_keys(first_at: Duration, pause: Duration, gaps: &[Duration]) -> Vec<(Duration, char)> {
    let mut at = first_at;
    let mut presses = Vec::new();
    let mut gaps = gaps.iter().cycle();
    for key in PIN.chars() {
        presses.push((at, key));
        at += *gaps.next().unwrap();
    }
    at += pause;
    for key in DESTINATION.chars() {
        presses.push((at, key));
        at += *gaps.next().unwrap();
    }
    presses
}

fn peers(limit_ms: u64) -> Peers {
    Peers {
        prompt_ms: 1_800,
        ledger_ms: 4,
        // Answered before the destination's inter-digit deadline would have passed: the
        // deadline that moves later and was lost before issue 11.
        ring_ms: Some(100),
        limit_ms,
    }
}

/// 400-600 ms between keys, uneven as a person's.
fn jittered_gaps() -> Vec<Duration> {
    [430, 560, 410, 600, 480, 520, 455, 590, 400, 505, 545]
        .into_iter()
        .map(Duration::from_millis)
        .collect()
}

fn human_pin_call<P: TimerPolicy>(peers: Peers) -> Switch<P> {
    let mut switch = Switch::<P>::new(ivr(), peers);
    let keys = human_keys(
        Duration::from_millis(2_500),
        Duration::from_millis(2_500),
        &jittered_gaps(),
    );
    switch.keys(&keys);
    switch.run_until(Duration::from_secs(120));
    switch
}

#[test]
fn a_human_paced_pin_call_ends_exactly_at_its_credit_limit() {
    let switch = human_pin_call::<Deadlines<u64, Instant>>(peers(30_000));
    let answered = switch.answered_at().expect("the carrier answered");
    let limit = answered + Duration::from_millis(30_000);
    assert_eq!(
        switch.carrier_hung_up_at(),
        Some(limit),
        "{:#?}",
        switch.log
    );
    assert_eq!(switch.caller_hung_up_at(), Some(limit));
    assert_eq!(switch.end_cause(), Some(DisconnectCause::CreditExhausted));
    let warning = switch.first_time(|output| {
        matches!(
            output,
            Output::PlayTone {
                tone: Tone::WarningBeep,
                ..
            }
        )
    });
    assert_eq!(warning, Some(limit - Duration::from_millis(2_000)));
}

#[test]
fn the_former_arm_earlier_only_policy_lets_the_same_call_run_past_its_limit() {
    let switch = human_pin_call::<ArmEarlierOnly>(peers(30_000));
    let limit = switch.answered_at().expect("answered") + Duration::from_millis(30_000);
    let hung_up = switch.carrier_hung_up_at().unwrap_or(Duration::MAX);
    assert!(
        hung_up > limit + Duration::from_secs(5),
        "the lost deadline this file guards against: limit {limit:?}, hung up {hung_up:?}"
    );
}

#[test]
fn a_carrier_that_rings_forever_is_given_up_at_the_no_answer_timeout() {
    let switch = human_pin_call::<Deadlines<u64, Instant>>(Peers {
        ring_ms: None,
        ..peers(30_000)
    });
    let placed = switch.placed_at().expect("the call was placed");
    assert_eq!(
        switch.cancelled_at(),
        Some(placed + Duration::from_millis(30_000)),
        "{:#?}",
        switch.log
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the pace of the keys, the prompts, the ledger and the carrier, an answered
    /// call ends at its limit to the millisecond and an unanswered one at the no-answer timeout.
    #[test]
    fn every_call_ends_at_its_deadline(
        gaps in prop::collection::vec(50u64..2_900, 1..12),
        first_after_prompts in 0u64..7_000,
        pause_after_prompts in 0u64..7_000,
        prompt_ms in 10u64..6_000,
        ledger_ms in 0u64..2_000,
        ring_ms in prop::option::weighted(0.8, 0u64..40_000),
        limit_ms in 3_000u64..600_000,
    ) {
        let gaps: Vec<Duration> = gaps.into_iter().map(Duration::from_millis).collect();
        let mut switch = Switch::<Deadlines<u64, Instant>>::new(
            ivr(),
            Peers { prompt_ms, ledger_ms, ring_ms, limit_ms },
        );
        // A person keys after the prompts that ask (welcome, enter PIN; the balance and
        // talk-time announcements and the destination prompt after the ledger's answer).
        let first = 2 * prompt_ms + first_after_prompts;
        let pause = ledger_ms + 3 * prompt_ms + pause_after_prompts;
        switch.keys(&human_keys(
            Duration::from_millis(first),
            Duration::from_millis(pause),
            &gaps,
        ));
        switch.run_until(Duration::from_secs(900));
        let placed = switch.placed_at();
        prop_assert!(placed.is_some(), "{:#?}", switch.log);
        match switch.answered_at() {
            Some(answered) => {
                let limit = answered + Duration::from_millis(limit_ms);
                prop_assert_eq!(switch.carrier_hung_up_at(), Some(limit));
                prop_assert_eq!(switch.caller_hung_up_at(), Some(limit));
                prop_assert_eq!(switch.end_cause(), Some(DisconnectCause::CreditExhausted));
            }
            None => {
                let placed = placed.unwrap_or_default();
                prop_assert_eq!(
                    switch.cancelled_at(),
                    Some(placed + Duration::from_millis(30_000))
                );
            }
        }
        prop_assert!(switch.call.is_finished(), "the call ended");
        prop_assert_eq!(switch.timers.next(), None, "nothing left armed");
    }
}
