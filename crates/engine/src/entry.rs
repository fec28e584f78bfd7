//! Collecting digits after a prompt: barge-in, `#`, `*`, first-digit and inter-digit timeouts.

use std::time::{Duration, Instant};

use crate::event::PlaybackId;

/// What a digit or a timeout did to an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryStep {
    /// Still collecting.
    Pending,
    /// `#`, the inter-digit timeout or the maximum length ended the entry.
    Complete(String),
    /// Nothing was entered (first-digit timeout or a lone `#`).
    NoInput,
}

/// One prompt-and-collect: the prompt plays, digits may interrupt it, then the timers run.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The prompt still playing, if any.
    prompt: Option<PlaybackId>,
    digits: String,
    deadline: Option<Instant>,
    max_length: usize,
    /// Service codes are allowed: a lone `#` completes as `"#"` and a `*` before any digit
    /// starts a code (`*0`, `*5`) instead of clearing.
    codes: bool,
}

pub(crate) fn deadline_after(now: Instant, timeout: Duration) -> Option<Instant> {
    now.checked_add(timeout)
}

impl Entry {
    pub(crate) fn new(prompt: PlaybackId, max_length: usize) -> Self {
        Self {
            prompt: Some(prompt),
            digits: String::new(),
            deadline: None,
            max_length: max_length.max(1),
            codes: false,
        }
    }

    /// The same entry, taking service codes when `codes` is on.
    pub(crate) fn with_codes(mut self, codes: bool) -> Self {
        self.codes = codes;
        self
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Takes the prompt that is still playing: a digit barges in and the caller stops it.
    pub(crate) fn take_prompt(&mut self) -> Option<PlaybackId> {
        self.prompt.take()
    }

    /// The prompt ended: the caller now has `first_digit` to start typing.
    pub(crate) fn prompt_finished(
        &mut self,
        playback: PlaybackId,
        now: Instant,
        first_digit: Duration,
        inter_digit: Duration,
    ) {
        if self.prompt != Some(playback) {
            return;
        }
        self.prompt = None;
        let timeout = if self.digits.is_empty() {
            first_digit
        } else {
            inter_digit
        };
        self.deadline = deadline_after(now, timeout);
    }

    /// A key press. `#` ends the entry, `*` clears it and starts over.
    pub(crate) fn digit(
        &mut self,
        digit: char,
        now: Instant,
        first_digit: Duration,
        inter_digit: Duration,
    ) -> EntryStep {
        match digit {
            '#' if self.digits.is_empty() && self.codes => EntryStep::Complete("#".into()),
            '#' if self.digits.is_empty() => EntryStep::NoInput,
            '*' if self.digits.is_empty() && self.codes => self.push(digit, now, inter_digit),
            '#' => EntryStep::Complete(std::mem::take(&mut self.digits)),
            '*' => {
                self.digits.clear();
                if self.prompt.is_none() {
                    self.deadline = deadline_after(now, first_digit);
                }
                EntryStep::Pending
            }
            _ => self.push(digit, now, inter_digit),
        }
    }

    fn push(&mut self, digit: char, now: Instant, inter_digit: Duration) -> EntryStep {
        self.digits.push(digit);
        if self.digits.len() >= self.max_length {
            return EntryStep::Complete(std::mem::take(&mut self.digits));
        }
        if self.prompt.is_none() {
            self.deadline = deadline_after(now, inter_digit);
        }
        EntryStep::Pending
    }

    /// The first-digit or inter-digit timer.
    pub(crate) fn timeout(&mut self, now: Instant) -> EntryStep {
        match self.deadline {
            Some(deadline) if deadline <= now => {
                self.deadline = None;
                if self.digits.is_empty() {
                    EntryStep::NoInput
                } else {
                    EntryStep::Complete(std::mem::take(&mut self.digits))
                }
            }
            _ => EntryStep::Pending,
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests start their virtual clock from a real instant
mod tests {
    use super::*;

    const FIRST: Duration = Duration::from_secs(10);
    const INTER: Duration = Duration::from_secs(5);

    #[test]
    fn hash_ends_and_star_clears() {
        let start = Instant::now();
        let mut entry = Entry::new(PlaybackId(1), 10);
        entry.prompt_finished(PlaybackId(1), start, FIRST, INTER);
        assert_eq!(entry.deadline(), Some(start + FIRST));
        assert_eq!(entry.digit('1', start, FIRST, INTER), EntryStep::Pending);
        assert_eq!(entry.deadline(), Some(start + INTER));
        assert_eq!(entry.digit('*', start, FIRST, INTER), EntryStep::Pending);
        assert_eq!(entry.digit('2', start, FIRST, INTER), EntryStep::Pending);
        assert_eq!(
            entry.digit('#', start, FIRST, INTER),
            EntryStep::Complete("2".into())
        );
    }

    #[test]
    fn timers_wait_for_the_prompt_and_end_the_entry() {
        let start = Instant::now();
        let mut entry = Entry::new(PlaybackId(7), 10);
        assert_eq!(entry.deadline(), None);
        assert_eq!(entry.take_prompt(), Some(PlaybackId(7)));
        assert_eq!(entry.digit('4', start, FIRST, INTER), EntryStep::Pending);
        assert_eq!(entry.deadline(), Some(start + INTER));
        assert_eq!(entry.timeout(start + INTER / 2), EntryStep::Pending);
        assert_eq!(
            entry.timeout(start + INTER),
            EntryStep::Complete("4".into())
        );
        let mut silent = Entry::new(PlaybackId(8), 10);
        silent.prompt_finished(PlaybackId(99), start, FIRST, INTER);
        assert_eq!(silent.deadline(), None, "another playback's end is ignored");
        silent.prompt_finished(PlaybackId(8), start, FIRST, INTER);
        assert_eq!(silent.timeout(start + FIRST), EntryStep::NoInput);
    }

    #[test]
    fn codes_take_a_lone_hash_and_a_leading_star() {
        let start = Instant::now();
        let mut entry = Entry::new(PlaybackId(1), 20).with_codes(true);
        entry.prompt_finished(PlaybackId(1), start, FIRST, INTER);
        assert_eq!(
            entry.digit('#', start, FIRST, INTER),
            EntryStep::Complete("#".into())
        );
        assert_eq!(entry.digit('*', start, FIRST, INTER), EntryStep::Pending);
        assert_eq!(entry.digit('3', start, FIRST, INTER), EntryStep::Pending);
        assert_eq!(
            entry.digit('#', start, FIRST, INTER),
            EntryStep::Complete("*3".into())
        );
        entry.digit('4', start, FIRST, INTER);
        entry.digit('*', start, FIRST, INTER);
        assert_eq!(
            entry.timeout(start + FIRST),
            EntryStep::NoInput,
            "* after digits clears"
        );
    }

    #[test]
    fn maximum_length_completes_and_lone_hash_is_no_input() {
        let start = Instant::now();
        let mut entry = Entry::new(PlaybackId(1), 3);
        assert_eq!(entry.digit('#', start, FIRST, INTER), EntryStep::NoInput);
        entry.digit('1', start, FIRST, INTER);
        entry.digit('2', start, FIRST, INTER);
        assert_eq!(
            entry.digit('3', start, FIRST, INTER),
            EntryStep::Complete("123".into())
        );
    }
}
