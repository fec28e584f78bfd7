//! `/metrics` in the Prometheus text format (issue 18). The core loop publishes a copy of the
//! switch's counters and gauges a few times a second; ledger tasks time their requests into
//! histograms; the RADIUS task publishes its counters. Rendering happens in the HTTP task, so
//! a scrape never touches the core. Labels are configuration names (access numbers, carriers,
//! causes, methods): never a caller's number, a destination or a PIN.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use talktime_b2bua::counters::{Counters, Gauges};

/// Upper bounds of the ledger latency buckets, in milliseconds.
const BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];

/// A latency histogram with fixed buckets, safe to fill from any task.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_MS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS_MS) {
            if micros <= bound * 1000 {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS_MS) {
            let seconds = bound as f64 / 1000.0;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{seconds}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1_000_000.0;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Ledger request kinds timed separately.
#[derive(Debug, Clone, Copy)]
pub enum LedgerKind {
    Lookup,
    Authorize,
    Settle,
    Other,
}

/// The RADIUS service's numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct RadiusNumbers {
    pub counters: talktime_radius::Counters,
    pub accepts: u64,
    pub rejects: u64,
    pub accounting: u64,
}

/// The window of the calls-per-second figure.
const CALL_RATE_WINDOW: Duration = Duration::from_secs(60);

/// How long the core keeps copying the live calls after the console last read them.
const LIVE_CALLS_INTEREST: Duration = Duration::from_secs(10);

/// Everything `/metrics` shows.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Each core thread's copy of its switch's numbers, by core (`/metrics` shows the sum).
    switch: Mutex<Vec<(Counters, Gauges)>>,
    radius: Mutex<RadiusNumbers>,
    ledger: [Histogram; 4],
    settlements_waiting: AtomicU64,
    /// Each core's calls up, by core.
    live_calls: Mutex<Vec<Vec<talktime_b2bua::monitor::LiveCall>>>,
    carriers: Mutex<Vec<talktime_routing::CarrierStatus>>,
    /// When the console last read the live calls: the core copies them out only while
    /// someone looks (a copy of every call costs allocations on the core loop).
    live_calls_read: Mutex<Option<std::time::Instant>>,
    mails_sent: AtomicU64,
    mails_failed: AtomicU64,
    media: Mutex<Vec<std::sync::Arc<crate::media_workers::MediaStats>>>,
    /// (when, calls started since start) over the last minute, for the calls-per-second
    /// figure of the dashboard.
    started_samples: Mutex<std::collections::VecDeque<(std::time::Instant, u64)>>,
}

impl Metrics {
    /// The core loop's copy of the switch's numbers.
    pub fn publish_switch(&self, core: usize, counters: &Counters, gauges: Gauges) {
        let started: u64 = match self.switch.lock() {
            Ok(mut held) => {
                if held.len() <= core {
                    held.resize_with(core + 1, Default::default);
                }
                held[core].0.clone_from(counters);
                held[core].1 = gauges;
                held.iter()
                    .map(|(counters, _)| counters.calls_started.values().sum::<u64>())
                    .sum()
            }
            Err(_) => return,
        };
        if let Ok(mut samples) = self.started_samples.lock() {
            let now = std::time::Instant::now();
            samples.push_back((now, started));
            while samples
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > CALL_RATE_WINDOW)
            {
                samples.pop_front();
            }
        }
    }

    /// New calls per second over the last minute (or since start, when younger), in
    /// hundredths (no float: 250 is 2.5 calls/s).
    pub fn calls_per_second_hundredths(&self) -> u64 {
        let Ok(samples) = self.started_samples.lock() else {
            return 0;
        };
        let (Some(first), Some(last)) = (samples.front(), samples.back()) else {
            return 0;
        };
        let elapsed_ms = last.0.duration_since(first.0).as_millis().max(1);
        let calls = u128::from(last.1.saturating_sub(first.1));
        u64::try_from(calls * 100_000 / elapsed_ms).unwrap_or(u64::MAX)
    }

    /// The media threads' own counters, read at each scrape.
    pub fn set_media(&self, stats: Vec<std::sync::Arc<crate::media_workers::MediaStats>>) {
        if let Ok(mut held) = self.media.lock() {
            *held = stats;
        }
    }

    pub fn publish_radius(&self, numbers: RadiusNumbers) {
        if let Ok(mut held) = self.radius.lock() {
            *held = numbers;
        }
    }

    pub fn ledger_took(&self, kind: LedgerKind, took: Duration) {
        self.ledger[kind as usize].observe(took);
    }

    /// Whether the console read the live calls in the last [`LIVE_CALLS_INTEREST`].
    pub fn live_calls_wanted(&self) -> bool {
        self.live_calls_read
            .lock()
            .ok()
            .and_then(|read| *read)
            .is_some_and(|read| read.elapsed() < LIVE_CALLS_INTEREST)
    }

    /// The core loop's copy of the calls up, for the console's live view.
    /// Every carrier's health and calls, for the console's carriers page.
    pub fn publish_carriers(&self, carriers: Vec<talktime_routing::CarrierStatus>) {
        if let Ok(mut held) = self.carriers.lock() {
            *held = carriers;
        }
    }

    /// The carriers at the last copy.
    pub fn carriers(&self) -> Vec<talktime_routing::CarrierStatus> {
        self.carriers
            .lock()
            .map(|held| held.clone())
            .unwrap_or_default()
    }

    pub fn publish_calls(&self, core: usize, calls: Vec<talktime_b2bua::monitor::LiveCall>) {
        if let Ok(mut held) = self.live_calls.lock() {
            if held.len() <= core {
                held.resize_with(core + 1, Vec::new);
            }
            held[core] = calls;
        }
    }

    /// The calls up at the last copy (the first read after a quiet spell may be a few hundred
    /// milliseconds old: it starts the copies again).
    pub fn live_calls(&self) -> Vec<talktime_b2bua::monitor::LiveCall> {
        if let Ok(mut read) = self.live_calls_read.lock() {
            *read = Some(std::time::Instant::now());
        }
        self.live_calls
            .lock()
            .map(|held| held.concat())
            .unwrap_or_default()
    }

    /// The switch's gauges at the last copy (calls up, in the IVR, ...), all cores together.
    pub fn gauges(&self) -> Gauges {
        self.switch_total().1
    }

    /// Every core's numbers added up.
    fn switch_total(&self) -> (Counters, Gauges) {
        let mut total = (Counters::default(), Gauges::default());
        if let Ok(held) = self.switch.lock() {
            for (counters, gauges) in held.iter() {
                total.0.absorb(counters);
                total.1.absorb(gauges);
            }
        }
        total
    }

    /// Calls started on each core thread since start, by core.
    fn calls_started_by_core(&self) -> Vec<u64> {
        self.switch
            .lock()
            .map(|held| {
                held.iter()
                    .map(|(counters, _)| counters.calls_started.values().sum())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One mail attempt: sent, or failed (it stays queued).
    pub fn count_mail(&self, sent: bool) {
        let counter = if sent {
            &self.mails_sent
        } else {
            &self.mails_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_settlements_waiting(&self, waiting: usize) {
        self.settlements_waiting
            .store(waiting as u64, Ordering::Relaxed);
    }

    /// The text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        let (counters, gauges) = self.switch_total();
        render_switch(&mut out, &counters, &gauges);
        header(
            &mut out,
            "talktime_core_calls_started_total",
            "counter",
            "Calls started on each core thread ([sip] core_threads).",
        );
        for (core, started) in self.calls_started_by_core().iter().enumerate() {
            let _ = writeln!(
                out,
                "talktime_core_calls_started_total{{core=\"{core}\"}} {started}"
            );
        }
        for (kind, name) in ["lookup", "authorize", "settle", "other"]
            .iter()
            .enumerate()
        {
            if kind == 0 {
                header(
                    &mut out,
                    "talktime_ledger_request_seconds",
                    "histogram",
                    "Ledger request latency by kind.",
                );
            }
            self.ledger[kind].render(
                &mut out,
                "talktime_ledger_request_seconds",
                &format!("kind=\"{name}\""),
            );
        }
        counter(
            &mut out,
            "talktime_mails_sent_total",
            "Notification mails the SMTP server took.",
            self.mails_sent.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "talktime_mail_failures_total",
            "Notification mail attempts that failed (the mail stays queued and is retried).",
            self.mails_failed.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "talktime_settlements_waiting",
            "Settlements the database refused for now, being retried.",
            self.settlements_waiting.load(Ordering::Relaxed),
        );
        if let Ok(media) = self.media.lock() {
            let sum = |pick: fn(&crate::media_workers::MediaStats) -> &AtomicU64| {
                media
                    .iter()
                    .map(|stats| pick(stats).load(Ordering::Relaxed))
                    .sum::<u64>()
            };
            counter(
                &mut out,
                "talktime_rtp_relayed_total",
                "RTP packets relayed between a call's legs.",
                sum(|stats| &stats.relayed),
            );
            counter(
                &mut out,
                "talktime_rtp_dropped_total",
                "RTP packets dropped (strangers, malformed, before the bridge).",
                sum(|stats| &stats.dropped),
            );
            counter(
                &mut out,
                "talktime_rtp_generated_total",
                "Packets the switch made (prompt frames, tones, DTMF events).",
                sum(|stats| &stats.generated),
            );
            gauge(
                &mut out,
                "talktime_media_threads",
                "Threads carrying RTP.",
                media.len() as u64,
            );
            header(
                &mut out,
                "talktime_media_busy_seconds_total",
                "counter",
                "Time each media thread spent working; its rate is the thread's load (1 = full).",
            );
            for (thread, stats) in media.iter().enumerate() {
                let busy = stats.busy_micros.load(Ordering::Relaxed) as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "talktime_media_busy_seconds_total{{thread=\"{thread}\"}} {busy}"
                );
            }
        }
        if let Ok(radius) = self.radius.lock() {
            render_radius(&mut out, &radius);
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A labelled counter family; label values are escaped as the format requires.
fn family<'a, K: AsRef<str> + 'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (&'a K, &'a u64)>,
) {
    header(out, name, "counter", help);
    for (key, value) in values {
        let _ = writeln!(
            out,
            "{name}{{{label}=\"{}\"}} {value}",
            escape(key.as_ref())
        );
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_switch(out: &mut String, counters: &Counters, gauges: &Gauges) {
    gauge(
        out,
        "talktime_calls_up",
        "Calls up now (IVR and connected).",
        gauges.calls_up as u64,
    );
    gauge(
        out,
        "talktime_ivr_sessions",
        "Calls in the IVR now.",
        gauges.ivr_sessions as u64,
    );
    gauge(
        out,
        "talktime_ledger_in_flight",
        "Ledger requests not yet answered (the core's queue depth).",
        gauges.ledger_in_flight as u64,
    );
    gauge(
        out,
        "talktime_sip_transactions",
        "SIP transactions kept.",
        gauges.transactions as u64,
    );
    gauge(
        out,
        "talktime_sip_dialogs",
        "SIP dialogs kept.",
        gauges.dialogs as u64,
    );
    counter(
        out,
        "talktime_sip_transactions_refused_full_total",
        "New requests answered 503 because the transaction table was full.",
        gauges.transactions_refused_full,
    );
    counter(
        out,
        "talktime_sip_stray_responses_total",
        "Responses that matched no transaction.",
        gauges.stray_responses,
    );
    counter(
        out,
        "talktime_sip_retransmissions_total",
        "Requests and responses sent again by SIP timers (loss toward peers).",
        gauges.retransmissions,
    );
    counter(
        out,
        "talktime_sip_unparseable_total",
        "Datagrams that were not SIP.",
        counters.unparseable,
    );
    family(
        out,
        "talktime_sip_requests_received_total",
        "SIP requests received, by method.",
        "method",
        counters.requests_received.iter(),
    );
    family(
        out,
        "talktime_sip_responses_sent_total",
        "SIP responses sent, by status class.",
        "class",
        counters.responses_sent.iter(),
    );
    family(
        out,
        "talktime_calls_started_total",
        "Calls started, by access number.",
        "access_number",
        counters.calls_started.iter(),
    );
    family(
        out,
        "talktime_calls_refused_total",
        "INVITEs refused before a call began, by reason.",
        "reason",
        counters.calls_refused.iter(),
    );
    family(
        out,
        "talktime_calls_ended_total",
        "Calls ended, by CDR cause.",
        "cause",
        counters.calls_ended.iter(),
    );
    family(
        out,
        "talktime_carrier_attempts_total",
        "INVITEs sent to carriers, by carrier (ASR's denominator).",
        "carrier",
        counters.carrier_attempts.iter(),
    );
    family(
        out,
        "talktime_carrier_answers_total",
        "Carrier answers (2xx), by carrier (ASR's numerator).",
        "carrier",
        counters.carrier_answers.iter(),
    );
    counter(
        out,
        "talktime_answered_calls_total",
        "Answered attempts settled (ACD's denominator).",
        counters.answered_calls,
    );
    header(
        out,
        "talktime_talk_seconds_total",
        "counter",
        "Talk time of answered calls, in seconds (ACD's numerator).",
    );
    let _ = writeln!(
        out,
        "talktime_talk_seconds_total {}",
        counters.billed_ms as f64 / 1000.0
    );
    counter(
        out,
        "talktime_pin_failures_total",
        "Wrong PINs.",
        counters.pin_failures,
    );
    counter(
        out,
        "talktime_pin_answers_delayed_total",
        "PIN answers held back by the PIN alarm.",
        counters.pin_answers_delayed,
    );
}

fn render_radius(out: &mut String, radius: &RadiusNumbers) {
    counter(
        out,
        "talktime_radius_accepts_total",
        "RADIUS Access-Accepts sent.",
        radius.accepts,
    );
    counter(
        out,
        "talktime_radius_rejects_total",
        "RADIUS Access-Rejects sent.",
        radius.rejects,
    );
    counter(
        out,
        "talktime_radius_accounting_total",
        "RADIUS Accounting-Responses sent.",
        radius.accounting,
    );
    let dropped = radius.counters;
    header(
        out,
        "talktime_radius_dropped_total",
        "counter",
        "RADIUS datagrams dropped, by reason.",
    );
    for (reason, value) in [
        ("unknown_client", dropped.unknown_client),
        ("malformed", dropped.malformed),
        ("bad_authenticator", dropped.bad_authenticator),
        (
            "missing_message_authenticator",
            dropped.missing_message_authenticator,
        ),
        ("in_progress", dropped.in_progress),
        ("unsupported", dropped.unsupported),
        ("overloaded", dropped.overloaded),
    ] {
        let _ = writeln!(
            out,
            "talktime_radius_dropped_total{{reason=\"{reason}\"}} {value}"
        );
    }
    counter(
        out,
        "talktime_radius_duplicates_answered_total",
        "RADIUS duplicates answered again from the cache.",
        dropped.duplicates_answered,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_help_type_and_escaped_labels() {
        let metrics = Metrics::default();
        let mut counters = Counters::default();
        counters.calls_started.insert("1\"00".into(), 3);
        metrics.publish_switch(0, &counters, Gauges::default());
        metrics.ledger_took(LedgerKind::Settle, Duration::from_millis(3));
        let text = metrics.render();
        assert!(text.contains("talktime_calls_started_total{access_number=\"1\\\"00\"} 3"));
        assert!(text.contains("# TYPE talktime_ledger_request_seconds histogram"));
        assert!(
            text.contains("talktime_ledger_request_seconds_bucket{kind=\"settle\",le=\"0.005\"} 1")
        );
        assert!(
            text.contains("talktime_ledger_request_seconds_bucket{kind=\"settle\",le=\"0.002\"} 0")
        );
    }
}
