//! Prompts converted once to ready G.711 frames, and the sans-IO prompt player.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audio::{AudioError, decode_to_8k_mono};
use crate::g711::Law;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// The packet interval.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(20);

/// A prompt ready to send: 8 kHz samples and both G.711 encodings, padded with silence to a
/// whole number of 20 ms frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    samples: Vec<i16>,
    mulaw: Vec<u8>,
    alaw: Vec<u8>,
}

impl Prompt {
    /// Decodes an uploaded file (WAV or MP3, sniffed by content).
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, AudioError> {
        Ok(Self::from_samples(decode_to_8k_mono(bytes)?))
    }

    /// From 8 kHz mono samples.
    pub fn from_samples(mut samples: Vec<i16>) -> Self {
        let padded = samples.len().div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES;
        samples.resize(padded, 0);
        let encode = |law: Law| samples.iter().map(|s| law.encode(*s)).collect();
        Self {
            mulaw: encode(Law::MuLaw),
            alaw: encode(Law::ALaw),
            samples,
        }
    }

    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    pub fn frame_count(&self) -> usize {
        self.samples.len() / FRAME_SAMPLES
    }

    pub fn duration(&self) -> Duration {
        FRAME_INTERVAL * u32::try_from(self.frame_count()).unwrap_or(u32::MAX)
    }

    /// Frame `index` encoded with `law`.
    pub fn frame(&self, law: Law, index: usize) -> Option<&[u8]> {
        let encoded = match law {
            Law::MuLaw => &self.mulaw,
            Law::ALaw => &self.alaw,
        };
        encoded.get(index * FRAME_SAMPLES..(index + 1) * FRAME_SAMPLES)
    }
}

/// Prompts by name, converted once at load time and shared by every call.
#[derive(Debug, Clone, Default)]
pub struct PromptCache {
    prompts: HashMap<String, Arc<Prompt>>,
}

impl PromptCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Converts and stores a file's bytes under `name` (the shell reads the file).
    pub fn load(&mut self, name: &str, bytes: &[u8]) -> Result<Arc<Prompt>, AudioError> {
        let prompt = Arc::new(Prompt::from_file_bytes(bytes)?);
        self.prompts.insert(name.to_string(), Arc::clone(&prompt));
        Ok(prompt)
    }

    pub fn insert(&mut self, name: &str, prompt: Prompt) -> Arc<Prompt> {
        let prompt = Arc::new(prompt);
        self.prompts.insert(name.to_string(), Arc::clone(&prompt));
        prompt
    }

    pub fn get(&self, name: &str) -> Option<Arc<Prompt>> {
        self.prompts.get(name).cloned()
    }

    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

/// A tone generated in code: one or two frequencies with an on/off cadence.
#[derive(Debug, Clone, PartialEq)]
pub struct Tone {
    pub frequencies: Vec<f32>,
    /// Level of each frequency, dB relative to full scale.
    pub level_db: f32,
    pub on: Duration,
    /// Zero for a continuous tone.
    pub off: Duration,
    pub total: Duration,
}

impl Tone {
    /// US ringback: 440 + 480 Hz, 2 s on, 4 s off.
    pub fn ringback_us(total: Duration) -> Self {
        Self::cadence(
            &[440.0, 480.0],
            Duration::from_secs(2),
            Duration::from_secs(4),
            total,
        )
    }

    /// European (ETSI) ringback: 425 Hz, 1 s on, 4 s off.
    pub fn ringback_eu(total: Duration) -> Self {
        Self::cadence(
            &[425.0],
            Duration::from_secs(1),
            Duration::from_secs(4),
            total,
        )
    }

    /// The low-credit warning beep: 1 kHz for 300 ms.
    pub fn warning_beep() -> Self {
        let length = Duration::from_millis(300);
        Self::cadence(&[1000.0], length, Duration::ZERO, length)
    }

    pub fn cadence(frequencies: &[f32], on: Duration, off: Duration, total: Duration) -> Self {
        Self {
            frequencies: frequencies.to_vec(),
            level_db: -13.0,
            on,
            off,
            total,
        }
    }

    /// Whether sample `n` (from the tone's start) falls in an "on" part of the cadence.
    fn is_on(&self, n: u64) -> bool {
        let period = (self.on + self.off).as_micros() as u64;
        if self.off.is_zero() || period == 0 {
            return true;
        }
        let at_micros = n * 1_000_000 / 8000;
        at_micros % period < self.on.as_micros() as u64
    }

    fn frames(&self) -> u64 {
        (self.total.as_micros() / FRAME_INTERVAL.as_micros()) as u64
    }

    /// Fills one frame. Each frequency's phase is computed once per frame from the absolute
    /// sample index (so there is no drift over a long tone) and then advanced by rotation.
    fn fill(&self, first_sample: u64, out: &mut [i16; FRAME_SAMPLES]) {
        // Cadences are whole 20 ms frames, so one test per frame is enough.
        if !self.is_on(first_sample) {
            out.fill(0);
            return;
        }
        let amplitude = 32767.0 * 10f64.powf(f64::from(self.level_db) / 20.0);
        let mut sum = [0f64; FRAME_SAMPLES];
        for frequency in &self.frequencies {
            let omega = 2.0 * std::f64::consts::PI * f64::from(*frequency) / 8000.0;
            // Reduce the phase modulo one period before the trig call, for precision.
            let cycles = f64::from(*frequency) * first_sample as f64 / 8000.0;
            let phase = 2.0 * std::f64::consts::PI * cycles.fract();
            let (mut sin, mut cos) = phase.sin_cos();
            let (step_sin, step_cos) = omega.sin_cos();
            for value in sum.iter_mut() {
                *value += sin;
                let next_sin = sin * step_cos + cos * step_sin;
                cos = cos * step_cos - sin * step_sin;
                sin = next_sin;
            }
        }
        for (sample, value) in out.iter_mut().zip(sum) {
            // Round half away from zero without a libm call; `as` saturates.
            let scaled = amplitude * value;
            *sample = (scaled + 0.5f64.copysign(scaled)) as i16;
        }
    }
}

/// One thing the player plays.
#[derive(Debug, Clone, PartialEq)]
pub enum PlayItem {
    Prompt(Arc<Prompt>),
    /// No packets are sent (RFC 3551 silence suppression); the next talk spurt has the marker
    /// bit set and a timestamp that counts the gap.
    Silence(Duration),
    Tone(Tone),
}

/// A frame to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// 160 bytes of G.711.
    pub payload: &'a [u8],
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    /// When this frame was due (start + n·20 ms).
    pub due: Instant,
}

/// Plays a list of items in 20 ms frames. Frame slot n is due at `start + n·20 ms`, computed
/// from the start instant (never by adding intervals), so pacing does not drift however late
/// the caller polls. Sequence numbers count sent packets; timestamps count slots (160 per
/// slot), so silence shows up as a timestamp gap.
#[derive(Debug, Clone)]
pub struct PromptPlayer {
    law: Law,
    start: Instant,
    items: VecDeque<PlayItem>,
    /// Slot index within the current item.
    position: u64,
    /// Global slot index of the next frame.
    slot: u64,
    sequence: u16,
    first_timestamp: u32,
    marker_pending: bool,
    barge_in: bool,
    stopped: bool,
    tone_buffer: [u8; FRAME_SAMPLES],
}

impl PromptPlayer {
    pub fn new(law: Law, items: impl IntoIterator<Item = PlayItem>, start: Instant) -> Self {
        Self {
            law,
            start,
            items: items.into_iter().collect(),
            position: 0,
            slot: 0,
            sequence: 0,
            first_timestamp: 0,
            marker_pending: true,
            barge_in: false,
            stopped: false,
            tone_buffer: [0; FRAME_SAMPLES],
        }
    }

    /// Whether a digit stops playback (for menus; not for announcements that must be heard).
    pub fn with_barge_in(mut self, barge_in: bool) -> Self {
        self.barge_in = barge_in;
        self
    }

    /// Appends items (the next words of a sentence).
    pub fn enqueue(&mut self, items: impl IntoIterator<Item = PlayItem>) {
        self.items.extend(items);
    }

    /// A digit arrived; returns true if playback stopped because of it.
    pub fn on_digit(&mut self) -> bool {
        if self.barge_in && !self.is_finished() {
            self.stop();
            return true;
        }
        false
    }

    pub fn stop(&mut self) {
        self.stopped = true;
        self.items.clear();
    }

    pub fn is_finished(&self) -> bool {
        self.stopped || self.items.is_empty()
    }

    /// Moves a start that is still ahead to `now` at the latest (the listener was heard
    /// before the wait for it ran out); a player that began is left alone.
    pub fn start_by(&mut self, now: Instant) {
        if self.slot == 0 && self.start > now {
            self.start = now;
        }
    }

    /// The instant frame slot 0 is due.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// When the next frame slot is due (`None` when finished).
    pub fn next_due(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        Some(self.slot_time(self.slot))
    }

    fn slot_time(&self, slot: u64) -> Instant {
        self.start + FRAME_INTERVAL * u32::try_from(slot).unwrap_or(u32::MAX)
    }

    /// The next frame if its slot is due at `now`; call until `None`. Silence slots are
    /// consumed without a frame.
    pub fn poll(&mut self, now: Instant) -> Option<Frame<'_>> {
        loop {
            if self.is_finished() || now < self.slot_time(self.slot) {
                return None;
            }
            let item_frames = match self.items.front()? {
                PlayItem::Prompt(prompt) => prompt.frame_count() as u64,
                PlayItem::Silence(length) => {
                    length.as_micros().div_ceil(FRAME_INTERVAL.as_micros()) as u64
                }
                PlayItem::Tone(tone) => tone.frames(),
            };
            if self.position >= item_frames {
                self.items.pop_front();
                self.position = 0;
                continue;
            }
            let sends = match self.items.front()? {
                PlayItem::Silence(_) => false,
                PlayItem::Tone(tone) => tone.is_on(self.position * FRAME_SAMPLES as u64),
                PlayItem::Prompt(_) => true,
            };
            let slot = self.slot;
            let position = self.position;
            self.slot += 1;
            self.position += 1;
            if !sends {
                self.marker_pending = true;
                continue;
            }
            return self.frame_at(slot, position);
        }
    }

    fn frame_at(&mut self, slot: u64, position: u64) -> Option<Frame<'_>> {
        let marker = std::mem::take(&mut self.marker_pending);
        let sequence = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        // Timestamps wrap modulo 2^32 by design.
        let timestamp = self
            .first_timestamp
            .wrapping_add((slot as u32).wrapping_mul(FRAME_SAMPLES as u32));
        let due = self.slot_time(slot);
        let law = self.law;
        let payload: &[u8] = match self.items.front()? {
            PlayItem::Prompt(prompt) => prompt.frame(law, position as usize)?,
            PlayItem::Tone(tone) => {
                let mut samples = [0i16; FRAME_SAMPLES];
                tone.fill(position * FRAME_SAMPLES as u64, &mut samples);
                law.encode_into(&samples, &mut self.tone_buffer);
                &self.tone_buffer
            }
            PlayItem::Silence(_) => return None,
        };
        Some(Frame {
            payload,
            marker,
            sequence,
            timestamp,
            due,
        })
    }
}
