//! Cost of the engine per call: setting a call up, and a whole PIN call from INVITE to CDR.

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use talktime_engine::{
    AccountId, AccountInfo, AttemptId, Authorization, Call, CallId, CallSetup, CardId, Input,
    IvrConfig, Output, PinLookup, PlaybackId,
};
use talktime_pii::Pii;

/// Feeds a call the way the shell would and counts its outputs.
struct Driver {
    call: Call,
    now: Instant,
    outputs: usize,
    last_playback: Option<PlaybackId>,
}

impl Driver {
    fn new(now: Instant) -> Option<Self> {
        let call = Call::new(CallSetup {
            call_id: CallId("bench".into()),
            caller_id: Some(Pii::new("15551234567".into())),
            access_number: "18005550100".into(),
            ivr: IvrConfig {
                ani_authentication: false,
                ..IvrConfig::default()
            },
            languages: talktime_engine::LanguageBook::builtin(),
            now,
        })
        .ok()?;
        let mut driver = Driver {
            call,
            now,
            outputs: 0,
            last_playback: None,
        };
        driver.drain();
        Some(driver)
    }

    fn drain(&mut self) {
        while let Some(output) = self.call.poll_output() {
            if let Output::Play { playback, .. } | Output::PlayTone { playback, .. } = output {
                self.last_playback = Some(playback);
            }
            self.outputs += 1;
        }
    }

    fn input(&mut self, input: Input) {
        self.call.handle_input(input, self.now);
        self.drain();
    }

    fn finish_prompt(&mut self) {
        if let Some(playback) = self.last_playback {
            self.input(Input::PlaybackFinished { playback });
        }
    }

    fn dial(&mut self, digits: &str) {
        for digit in digits.chars() {
            self.input(Input::Digit(digit));
        }
    }
}

/// Welcome, PIN, balance, destination, authorization, talk time, answer, credit warning,
/// credit exhausted: 27 inputs, 2 timer wakes and 18 outputs.
fn whole_call(start: Instant) -> usize {
    let Some(mut driver) = Driver::new(start) else {
        return 0;
    };
    driver.finish_prompt();
    driver.finish_prompt();
    driver.dial("123456#");
    driver.input(Input::PinLookup(PinLookup::Found(AccountInfo {
        account: AccountId(1),
        card: Some(CardId(1)),
        balance_micros: 12_500_000,
        minimum_micros: 1_000_000,
        currency: "USD".into(),
        language: None,
        forward_destination: None,
    })));
    driver.finish_prompt();
    driver.dial("0044207946000#");
    let attempt = AttemptId(1);
    driver.input(Input::Authorized {
        attempt,
        authorization: Authorization {
            limit_ms: 2_070_000,
            announced_limit_ms: 2_040_000,
            reserved_micros: 3_450_000,
            limit_cause: talktime_engine::DisconnectCause::CreditExhausted,
        },
    });
    driver.finish_prompt();
    driver.input(Input::CarrierAnswered { attempt });
    while let Some(deadline) = driver.call.poll_timeout() {
        driver.now = deadline;
        driver.call.handle_timeout(deadline);
        driver.drain();
    }
    driver.now += Duration::from_secs(1);
    driver.input(Input::CallerHungUp);
    if !driver.call.is_finished() {
        return 0;
    }
    driver.outputs
}

fn benches(criterion: &mut Criterion) {
    let start = Instant::now();
    // The scenario must really run to the end, or the figure means nothing.
    let outputs = whole_call(start);
    assert_eq!(outputs, 18, "the call did not run to its end");
    criterion.bench_function("call set-up (Call::new and first outputs)", |bencher| {
        bencher.iter(|| black_box(Driver::new(black_box(start)).map(|driver| driver.outputs)))
    });
    criterion.bench_function("whole PIN call until credit exhausted", |bencher| {
        bencher.iter(|| black_box(whole_call(black_box(start))))
    });
}

criterion_group!(engine, benches);
criterion_main!(engine);
