//! What the switch counts for monitoring (issue 18): plain integers kept by the sans-IO core,
//! copied out by the shell for `/metrics`. Labels are configuration names (access numbers,
//! carriers, causes, methods), never a caller's number or a PIN.

use std::collections::BTreeMap;

/// Counters since start, and the gauges of the moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// INVITEs to an access number that became calls, by access number.
    pub calls_started: BTreeMap<String, u64>,
    /// INVITEs refused before a call began, by reason (`admission`, `untrusted`, `stopping`,
    /// `lease`, `not_found`, `start_error`).
    pub calls_refused: BTreeMap<&'static str, u64>,
    /// Calls ended, by CDR cause.
    pub calls_ended: BTreeMap<&'static str, u64>,
    /// INVITEs sent to carriers and their answers (2xx), by carrier: ASR's inputs.
    pub carrier_attempts: BTreeMap<String, u64>,
    pub carrier_answers: BTreeMap<String, u64>,
    /// Talk time billed, in milliseconds, and answered attempts settled: ACD's inputs.
    pub billed_ms: u64,
    pub answered_calls: u64,
    /// Wrong PINs (each try), and PIN answers held back by the PIN alarm.
    pub pin_failures: u64,
    pub pin_answers_delayed: u64,
    /// SIP requests received, by method (unknown methods together as `other`, so a peer
    /// inventing names cannot grow the table), and responses sent, by status class.
    pub requests_received: BTreeMap<&'static str, u64>,
    pub responses_sent: BTreeMap<&'static str, u64>,
    /// Datagrams that did not parse.
    pub unparseable: u64,
    /// Alarms raised, by kind (`pin_failures`, `short_calls`, `account_spend`).
    pub alarms_raised: BTreeMap<&'static str, u64>,
    /// Callbacks by outcome (`answered`, `no_answer`, `busy`, `failed`, `not_registered`,
    /// `refused`, `unroutable`, `stopping`).
    pub callbacks: BTreeMap<&'static str, u64>,
}

impl Counters {
    /// Adds another core's counts to these (the node's `/metrics` is the sum of its cores).
    pub fn absorb(&mut self, other: &Counters) {
        fn merge<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
            for (key, value) in from {
                *into.entry(key.clone()).or_default() += value;
            }
        }
        merge(&mut self.calls_started, &other.calls_started);
        merge(&mut self.calls_refused, &other.calls_refused);
        merge(&mut self.calls_ended, &other.calls_ended);
        merge(&mut self.carrier_attempts, &other.carrier_attempts);
        merge(&mut self.carrier_answers, &other.carrier_answers);
        self.billed_ms += other.billed_ms;
        self.answered_calls += other.answered_calls;
        self.pin_failures += other.pin_failures;
        self.pin_answers_delayed += other.pin_answers_delayed;
        merge(&mut self.requests_received, &other.requests_received);
        merge(&mut self.responses_sent, &other.responses_sent);
        self.unparseable += other.unparseable;
        merge(&mut self.alarms_raised, &other.alarms_raised);
        merge(&mut self.callbacks, &other.callbacks);
    }

    pub(crate) fn add<K: Ord>(map: &mut BTreeMap<K, u64>, key: K) {
        *map.entry(key).or_default() += 1;
    }

    /// A method's label without allocating (this runs for every request received).
    pub(crate) fn method_label(method: &talktime_sip::Method) -> &'static str {
        method.standard_name().unwrap_or("other")
    }

    pub(crate) fn status_class(status: u16) -> &'static str {
        match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "6xx",
        }
    }
}

/// The gauges of the moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    pub calls_up: usize,
    pub ivr_sessions: usize,
    pub ledger_in_flight: usize,
    pub transactions: usize,
    pub dialogs: usize,
    pub transactions_refused_full: u64,
    pub stray_responses: u64,
    pub retransmissions: u64,
}

impl Gauges {
    /// Adds another core's gauges to these.
    pub fn absorb(&mut self, other: &Gauges) {
        self.calls_up += other.calls_up;
        self.ivr_sessions += other.ivr_sessions;
        self.ledger_in_flight += other.ledger_in_flight;
        self.transactions += other.transactions;
        self.dialogs += other.dialogs;
        self.transactions_refused_full += other.transactions_refused_full;
        self.stray_responses += other.stray_responses;
        self.retransmissions += other.retransmissions;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        let mut counters = Counters::default();
        for name in ["FOO", "BAR", "BAZ"] {
            let method = talktime_sip::Method::parse(name).unwrap();
            Counters::add(
                &mut counters.requests_received,
                Counters::method_label(&method),
            );
        }
        Counters::add(
            &mut counters.requests_received,
            Counters::method_label(&talktime_sip::Method::Invite),
        );
        assert_eq!(counters.requests_received.len(), 2);
        assert_eq!(counters.requests_received["other"], 3);
    }
}
