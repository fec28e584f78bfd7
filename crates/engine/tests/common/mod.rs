//! A deterministic harness: one `Call` on a virtual clock, every output logged with its time.

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use talktime_engine::{
    AccountId, AccountInfo, AttemptId, Authorization, Call, CallId, CallSetup, CardId, Grammar,
    Input, IvrConfig, Language, LanguageBook, Output, PlaybackId, Prompt,
};
use talktime_pii::Pii;

pub const SECOND: Duration = Duration::from_secs(1);
pub const MINUTE: Duration = Duration::from_secs(60);

pub struct Harness {
    pub call: Call,
    pub start: Instant,
    pub now: Instant,
    /// Every output with the virtual time (since start) it was produced at.
    pub log: Vec<(Duration, Output)>,
}

pub fn prompts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../prompts")
}

/// Every shipped language's grammar (each `prompts/<code>/language.toml`), loaded once.
pub fn book() -> Arc<LanguageBook> {
    static BOOK: OnceLock<Arc<LanguageBook>> = OnceLock::new();
    BOOK.get_or_init(|| {
        let mut grammars = Vec::new();
        for entry in std::fs::read_dir(prompts_dir()).unwrap() {
            let path = entry.unwrap().path().join("language.toml");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let code = path
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap();
            let language = Language::from_code(code).unwrap();
            grammars.push(Grammar::from_toml(language, &text).unwrap());
        }
        Arc::new(LanguageBook::new(grammars))
    })
    .clone()
}

pub fn grammar(code: &str) -> &'static Grammar {
    static BOOK: OnceLock<Arc<LanguageBook>> = OnceLock::new();
    let book = BOOK.get_or_init(book);
    book.grammar(Language::from_code(code).unwrap()).unwrap()
}

pub fn prompt_file(prompt: &Prompt) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../prompts")
        .join(prompt.language.code())
        .join(format!("{}.wav", prompt.name))
}

impl Harness {
    pub fn new(ivr: IvrConfig, caller_id: Option<&str>) -> (Self, Vec<Output>) {
        let start = Instant::now();
        let call = Call::new(CallSetup {
            call_id: CallId("call-1".into()),
            caller_id: caller_id.map(|number| Pii::new(number.to_owned())),
            access_number: "18005550100".into(),
            ivr,
            languages: book(),
            now: start,
        })
        .unwrap();
        let mut harness = Harness {
            call,
            start,
            now: start,
            log: Vec::new(),
        };
        let first = harness.drain();
        (harness, first)
    }

    /// A call with PIN authentication (no caller ID) and one language.
    pub fn pin_call() -> (Self, Vec<Output>) {
        Harness::new(IvrConfig::default(), None)
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some(output) = self.call.poll_output() {
            if let Output::Play { prompts, .. } = &output {
                for prompt in prompts {
                    assert!(
                        prompt_file(prompt).is_file(),
                        "missing prompt file {:?}",
                        prompt_file(prompt)
                    );
                }
            }
            self.log.push((self.elapsed(), output.clone()));
            out.push(output);
        }
        out
    }

    pub fn input(&mut self, input: Input) -> Vec<Output> {
        self.call.handle_input(input, self.now);
        self.drain()
    }

    /// Moves the clock forward, waking the call at each of its deadlines on the way.
    pub fn advance(&mut self, by: Duration) -> Vec<Output> {
        let target = self.now + by;
        let mut out = Vec::new();
        while let Some(deadline) = self.call.poll_timeout() {
            if deadline > target {
                break;
            }
            self.now = deadline.max(self.now);
            self.call.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = target;
        out
    }

    /// The last Play or PlayTone.
    pub fn last_playback(&self) -> PlaybackId {
        self.log
            .iter()
            .rev()
            .find_map(|(_, output)| match output {
                Output::Play { playback, .. } | Output::PlayTone { playback, .. } => {
                    Some(*playback)
                }
                _ => None,
            })
            .expect("something was played")
    }

    /// Finishes the last prompt.
    pub fn finish_prompt(&mut self) -> Vec<Output> {
        let playback = self.last_playback();
        self.input(Input::PlaybackFinished { playback })
    }

    pub fn dial(&mut self, digits: &str) -> Vec<Output> {
        let mut out = Vec::new();
        for digit in digits.chars() {
            out.extend(self.input(Input::Digit(digit)));
        }
        out
    }

    /// The attempt of the last Authorize.
    pub fn attempt(&self) -> AttemptId {
        self.log
            .iter()
            .rev()
            .find_map(|(_, output)| match output {
                Output::Authorize { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .expect("an attempt was authorized")
    }

    pub fn outputs(&self) -> impl Iterator<Item = &Output> {
        self.log.iter().map(|(_, output)| output)
    }

    /// Times at which outputs matching `matches` were produced.
    pub fn times_of(&self, matches: impl Fn(&Output) -> bool) -> Vec<Duration> {
        self.log
            .iter()
            .filter(|(_, output)| matches(output))
            .map(|(at, _)| *at)
            .collect()
    }
}

/// Names of the prompts of every Play in `outputs`, joined.
pub fn prompt_names(outputs: &[Output]) -> Vec<&'static str> {
    outputs
        .iter()
        .flat_map(|output| match output {
            Output::Play { prompts, .. } => prompts.iter().map(|prompt| prompt.name).collect(),
            _ => Vec::new(),
        })
        .collect()
}

pub fn prompt_languages(outputs: &[Output]) -> Vec<Language> {
    outputs
        .iter()
        .flat_map(|output| match output {
            Output::Play { prompts, .. } => prompts.iter().map(|prompt| prompt.language).collect(),
            _ => Vec::new(),
        })
        .collect()
}

pub fn account(balance_micros: i64) -> AccountInfo {
    AccountInfo {
        account: AccountId(42),
        card: Some(CardId(7)),
        balance_micros,
        minimum_micros: 1_000_000,
        currency: "USD".into(),
        language: None,
        forward_destination: None,
    }
}

pub fn authorization(limit: Duration, announced: Duration) -> Authorization {
    Authorization {
        limit_ms: limit.as_millis() as u64,
        announced_limit_ms: announced.as_millis() as u64,
        reserved_micros: 3_450_000,
        limit_cause: talktime_engine::DisconnectCause::CreditExhausted,
    }
}

/// Drives a PIN call to destination entry (prompt finished) with the given balance.
pub fn authenticated_pin_call(balance_micros: i64) -> Harness {
    let (mut harness, _) = Harness::pin_call();
    harness.finish_prompt();
    harness.dial("123456#");
    harness.input(Input::PinLookup(talktime_engine::PinLookup::Found(
        account(balance_micros),
    )));
    harness.finish_prompt();
    harness
}

/// From destination entry: dial, authorize, skip the announcement; the carrier is ringing.
pub fn place_call(harness: &mut Harness, destination: &str, limit: Duration) -> AttemptId {
    harness.dial(destination);
    let attempt = harness.attempt();
    harness.input(Input::Authorized {
        attempt,
        authorization: authorization(limit, limit),
    });
    harness.finish_prompt();
    attempt
}
