//! The live-calls view (issue 15): a snapshot of every prepaid call the core carries, copied
//! out by the shell at intervals (the console reads the copy, never the core), and the
//! operator's hang-up.

use serde::Serialize;
use talktime_engine::{DisconnectCause, Input};

use crate::switch::Switch;

/// One call as the console shows it. Numbers are masked: their last four digits only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveCall {
    /// The switch's key for the call (what a hang-up names).
    pub key: u64,
    pub call_id: String,
    /// The paying account, once the caller is authorized.
    pub account: Option<i64>,
    pub access_number: String,
    pub caller_id: Option<String>,
    pub destination: Option<String>,
    /// The IVR step or `Bridged`.
    pub phase: String,
    pub carrier: Option<String>,
    pub started_ms: i64,
    pub answered_ms: Option<i64>,
    /// The credit limit of the talk time, once authorized.
    pub limit_ms: Option<u64>,
    pub codec: String,
    /// The destination's description in the tariff ("United Kingdom - Mobile").
    pub description: Option<String>,
    /// The sell rate per minute at the start, decimal text.
    pub rate_per_minute: Option<String>,
    /// What the talk time so far costs (with its currency), as the bill will say.
    pub cost_so_far: Option<String>,
}

/// `****4567`: enough to tell calls apart, not to read a number.
pub fn mask(number: &str) -> String {
    let digits: Vec<char> = number.chars().collect();
    let shown = digits.len().min(4);
    let hidden = digits.len() - shown;
    let tail: String = digits[hidden..].iter().collect();
    format!("{}{tail}", "*".repeat(hidden.min(8)))
}

impl Switch {
    /// Every prepaid call now, oldest first.
    pub fn live_calls(&self) -> Vec<LiveCall> {
        let mut calls: Vec<LiveCall> = self
            .sessions
            .iter()
            .map(|(key, session)| session.live(*key, self.now.epoch_ms))
            .collect();
        calls.sort_by_key(|call| (call.started_ms, call.key));
        calls
    }

    /// Ends a call as the operator asked: BYE on both legs, billed, CDR cause `operator`.
    /// False when no such call is up.
    pub(crate) fn hang_up_for_operator(&mut self, key: u64) -> bool {
        if !self.sessions.contains_key(&key) {
            return false;
        }
        self.feed(
            key,
            Input::Abort {
                cause: DisconnectCause::Operator,
            },
        );
        true
    }

    /// Ends every call of `account` as [`Switch::hang_up_for_operator`] does; returns how
    /// many.
    pub(crate) fn hang_up_account_for_operator(&mut self, account: i64) -> usize {
        let keys: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, session)| session.account() == Some(account))
            .map(|(key, _)| *key)
            .collect();
        keys.iter()
            .filter(|key| self.hang_up_for_operator(**key))
            .count()
    }
}
