//! In-band DTMF detection (ITU-T Q.23 frequencies, Q.24 acceptance rules) for gateways that
//! send key tones as audio.
//!
//! The signal is cut into 10 ms sub-blocks (80 samples at 8 kHz). For each sub-block we take the
//! DFT at the eight DTMF frequencies (Goertzel-style single-bin transforms with precomputed
//! twiddles). A detection window is two consecutive sub-blocks (20 ms): its bin values are the
//! sum of the two sub-block values, and the phase advance between them measures the true
//! frequency of the tone to ±50 Hz, which is what lets us hold the Q.24 frequency tolerance
//! (accept ±1.5 %, reject ±3.5 %; we cut at ±2.5 %) that a 20 ms bin alone cannot resolve.
//!
//! A window counts as a digit when: each tone is above the level threshold; the strongest tone
//! of each group beats the rest of its group by 6 dB; the twist is within limits; the two tones
//! carry most of the window's energy (speech and noise spread theirs); neither tone has a strong
//! second harmonic (voice does); and both measured frequencies are within tolerance. A digit is
//! reported once after `min_windows` consecutive such windows (~40 ms of tone) and a new one is
//! accepted only after `pause_windows` windows without it (the inter-digit pause).

use std::time::Instant;

use crate::dtmf::{DtmfEvent, DtmfSource};

const SAMPLE_RATE: f32 = 8000.0;
const SUB_BLOCK: usize = 80;
const WINDOW: usize = 2 * SUB_BLOCK;
const LOW_GROUP: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const HIGH_GROUP: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Detector thresholds; the defaults follow Q.24 where it is specific.
#[derive(Debug, Clone, PartialEq)]
pub struct InbandConfig {
    /// Minimum level of each tone, in dB relative to a full-scale sine.
    pub min_tone_level_db: f32,
    /// How far the low tone may be above the high tone.
    pub max_low_over_high_db: f32,
    /// How far the high tone may be above the low tone.
    pub max_high_over_low_db: f32,
    /// Largest accepted frequency deviation, as a fraction (0.025 = 2.5 %).
    pub frequency_tolerance: f32,
    /// Share of the window energy the two tones must carry.
    pub min_tone_energy_share: f32,
    /// Largest second-harmonic level relative to its tone, in dB.
    pub max_second_harmonic_db: f32,
    /// Consecutive 20 ms windows (10 ms apart) needed to accept a digit: 2 spans 30 ms, so a
    /// 40 ms tone is accepted and a 20 ms one is not.
    pub min_windows: u32,
    /// Consecutive windows without the digit that end it: 4 needs a pause of roughly 30 ms,
    /// so a 10 ms dropout inside one key press is bridged while a 40 ms pause separates two.
    pub pause_windows: u32,
}

impl Default for InbandConfig {
    fn default() -> Self {
        Self {
            min_tone_level_db: -36.0,
            max_low_over_high_db: 8.0,
            max_high_over_low_db: 8.0,
            frequency_tolerance: 0.025,
            min_tone_energy_share: 0.7,
            max_second_harmonic_db: -15.0,
            min_windows: 2,
            pause_windows: 4,
        }
    }
}

/// Complex value of one DFT bin.
#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    re: f32,
    im: f32,
}

impl Bin {
    fn power(self) -> f32 {
        self.re * self.re + self.im * self.im
    }
}

/// The eight frequencies' twiddle tables for one sub-block.
#[derive(Debug, Clone)]
struct Twiddles {
    cos: Vec<[f32; SUB_BLOCK]>,
    sin: Vec<[f32; SUB_BLOCK]>,
    /// e^{-jω·80}: shifts the second sub-block's bin into the window's phase reference.
    shift: Vec<Bin>,
}

impl Twiddles {
    fn new(frequencies: &[f32]) -> Self {
        let mut cos = Vec::with_capacity(frequencies.len());
        let mut sin = Vec::with_capacity(frequencies.len());
        let mut shift = Vec::with_capacity(frequencies.len());
        for frequency in frequencies {
            let omega = 2.0 * std::f64::consts::PI * f64::from(*frequency) / 8000.0;
            let mut c = [0f32; SUB_BLOCK];
            let mut s = [0f32; SUB_BLOCK];
            for m in 0..SUB_BLOCK {
                c[m] = (omega * m as f64).cos() as f32;
                s[m] = (omega * m as f64).sin() as f32;
            }
            cos.push(c);
            sin.push(s);
            let advance = omega * SUB_BLOCK as f64;
            shift.push(Bin {
                re: advance.cos() as f32,
                im: -advance.sin() as f32,
            });
        }
        Self { cos, sin, shift }
    }
}

fn dft_bin(samples: &[f32], cos: &[f32; SUB_BLOCK], sin: &[f32; SUB_BLOCK]) -> Bin {
    // Eight independent partial sums so the compiler can use SIMD lanes (a single running sum
    // is a dependency chain it may not reorder).
    const LANES: usize = 8;
    let mut re = [0f32; LANES];
    let mut im = [0f32; LANES];
    for ((x, c), s) in samples
        .chunks_exact(LANES)
        .zip(cos.chunks_exact(LANES))
        .zip(sin.chunks_exact(LANES))
    {
        for lane in 0..LANES {
            re[lane] += x[lane] * c[lane];
            im[lane] -= x[lane] * s[lane];
        }
    }
    Bin {
        re: re.iter().sum(),
        im: im.iter().sum(),
    }
}

/// Streaming DTMF tone detector for one 8 kHz audio stream.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    config: InbandConfig,
    twiddles: Twiddles,
    pending: [f32; SUB_BLOCK],
    pending_len: usize,
    /// The previous sub-block: samples, bins, energy.
    previous: Option<([f32; SUB_BLOCK], [Bin; 8], f32)>,
    candidate: Option<char>,
    hits: u32,
    misses: u32,
    reported: bool,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new(InbandConfig::default())
    }
}

impl InbandDetector {
    pub fn new(config: InbandConfig) -> Self {
        let frequencies: Vec<f32> = LOW_GROUP.iter().chain(&HIGH_GROUP).copied().collect();
        Self {
            config,
            twiddles: Twiddles::new(&frequencies),
            pending: [0.0; SUB_BLOCK],
            pending_len: 0,
            previous: None,
            candidate: None,
            hits: 0,
            misses: 0,
            reported: false,
        }
    }

    /// Feeds 8 kHz linear samples; any block size. Calls `report` for each new digit.
    pub fn process(&mut self, samples: &[i16], now: Instant, mut report: impl FnMut(DtmfEvent)) {
        for sample in samples {
            self.pending[self.pending_len] = f32::from(*sample) / 32768.0;
            self.pending_len += 1;
            if self.pending_len == SUB_BLOCK {
                self.pending_len = 0;
                let block = self.pending;
                if let Some(digit) = self.sub_block(&block) {
                    report(DtmfEvent {
                        digit,
                        source: DtmfSource::Inband,
                        at: now,
                    });
                }
            }
        }
    }

    /// Analyses one sub-block; returns a digit when one is newly accepted.
    fn sub_block(&mut self, block: &[f32; SUB_BLOCK]) -> Option<char> {
        let mut bins = [Bin::default(); 8];
        for (index, bin) in bins.iter_mut().enumerate() {
            *bin = dft_bin(block, &self.twiddles.cos[index], &self.twiddles.sin[index]);
        }
        let energy: f32 = block.iter().map(|x| x * x).sum();
        let window_digit = self.previous.as_ref().and_then(
            |(previous_samples, previous_bins, previous_energy)| {
                self.classify(
                    previous_samples,
                    block,
                    previous_bins,
                    &bins,
                    previous_energy + energy,
                )
            },
        );
        self.previous = Some((*block, bins, energy));
        self.advance(window_digit)
    }

    /// The digit a 20 ms window holds, if it passes every test.
    fn classify(
        &self,
        first: &[f32; SUB_BLOCK],
        second: &[f32; SUB_BLOCK],
        first_bins: &[Bin; 8],
        second_bins: &[Bin; 8],
        energy: f32,
    ) -> Option<char> {
        if energy <= f32::EPSILON {
            return None;
        }
        let window_bin = |index: usize| {
            let (a, b, shift) = (
                first_bins[index],
                second_bins[index],
                self.twiddles.shift[index],
            );
            Bin {
                re: a.re + b.re * shift.re - b.im * shift.im,
                im: a.im + b.re * shift.im + b.im * shift.re,
            }
        };
        let powers: [f32; 8] = std::array::from_fn(|i| window_bin(i).power());
        let (low, low_nominal) = strongest(&powers[..4]);
        let (high, high_nominal) = strongest(&powers[4..]);
        let config = &self.config;

        let beats_group = |group: &[f32], best: usize, best_power: f32| {
            group
                .iter()
                .enumerate()
                .all(|(i, p)| i == best || best_power >= 4.0 * p)
        };
        if !beats_group(&powers[..4], low, low_nominal)
            || !beats_group(&powers[4..], high, high_nominal)
        {
            return None;
        }
        // Measure both tones' true frequencies; then take their power at that frequency, so a
        // tone 1.5 % off (up to half a bin) is not penalised in the level and energy tests.
        let mut measured = [0f32; 2];
        for (slot, (index, nominal)) in [(low, LOW_GROUP[low]), (high + 4, HIGH_GROUP[high])]
            .into_iter()
            .enumerate()
        {
            let deviation = self.frequency_deviation(first_bins[index], second_bins[index], index);
            if (deviation / nominal).abs() > config.frequency_tolerance {
                return None;
            }
            measured[slot] = nominal + deviation;
        }
        let mut window = [0f32; WINDOW];
        window[..SUB_BLOCK].copy_from_slice(first);
        window[SUB_BLOCK..].copy_from_slice(second);
        let low_power = complex_at(&window, measured[0]).power();
        let high_power = complex_at(&window, measured[1]).power();

        // Amplitude of a sine from its bin power: A = 2|X|/N.
        let level_db = |power: f32| 10.0 * (4.0 * power / (WINDOW * WINDOW) as f32).log10();
        if level_db(low_power) < config.min_tone_level_db
            || level_db(high_power) < config.min_tone_level_db
        {
            return None;
        }
        let twist_db = 10.0 * (high_power / low_power).log10();
        if twist_db > config.max_high_over_low_db || -twist_db > config.max_low_over_high_db {
            return None;
        }
        // A sine's share of the energy is 2|X|²/(N·E).
        let share = 2.0 * (low_power + high_power) / (WINDOW as f32 * energy);
        if share < config.min_tone_energy_share {
            return None;
        }
        if !self.harmonics_are_weak(window, measured, low_power, high_power) {
            return None;
        }
        Some(KEYPAD[low][high])
    }

    /// Voice has harmonics, DTMF has none. The low tone's second harmonic lies within ~70 Hz of
    /// a high-group tone (2·770 = 1540 vs 1477), so the fitted high tone is subtracted before
    /// measuring it; otherwise its own leakage would look like a harmonic.
    fn harmonics_are_weak(
        &self,
        mut window: [f32; WINDOW],
        measured: [f32; 2],
        low_power: f32,
        high_power: f32,
    ) -> bool {
        let limit = 10f32.powf(self.config.max_second_harmonic_db / 10.0);
        let high_harmonic = complex_at(&window, 2.0 * measured[1]).power();
        let fitted = complex_at(&window, measured[1]);
        let (a, b) = (
            2.0 * fitted.re / WINDOW as f32,
            -2.0 * fitted.im / WINDOW as f32,
        );
        subtract_sinusoid(&mut window, measured[1], a, b);
        let low_harmonic = complex_at(&window, 2.0 * measured[0]).power();
        low_harmonic <= limit * low_power && high_harmonic <= limit * high_power
    }

    /// Measured minus nominal frequency, in Hz, from the phase advance between sub-blocks.
    fn frequency_deviation(&self, first: Bin, second: Bin, index: usize) -> f32 {
        let shift = self.twiddles.shift[index];
        // second · e^{-jω80} · conj(first): its angle is (ω_true − ω)·80.
        let shifted = Bin {
            re: second.re * shift.re - second.im * shift.im,
            im: second.re * shift.im + second.im * shift.re,
        };
        let product = Bin {
            re: shifted.re * first.re + shifted.im * first.im,
            im: shifted.im * first.re - shifted.re * first.im,
        };
        let angle = product.im.atan2(product.re);
        angle * SAMPLE_RATE / (2.0 * std::f32::consts::PI * SUB_BLOCK as f32)
    }

    fn advance(&mut self, window_digit: Option<char>) -> Option<char> {
        match window_digit {
            Some(digit) if Some(digit) == self.candidate => {
                self.misses = 0;
                self.hits += 1;
            }
            // A different digit straight after a reported one needs a pause first.
            Some(digit) if !self.reported => {
                self.candidate = Some(digit);
                self.hits = 1;
                self.misses = 0;
            }
            _ => {
                self.misses += 1;
                if self.misses >= self.config.pause_windows {
                    self.candidate = None;
                    self.hits = 0;
                    self.reported = false;
                } else if !self.reported {
                    self.hits = 0;
                }
            }
        }
        if !self.reported && self.hits >= self.config.min_windows {
            self.reported = true;
            return self.candidate;
        }
        None
    }
}

fn strongest(powers: &[f32]) -> (usize, f32) {
    powers.iter().copied().enumerate().fold(
        (0, f32::MIN),
        |best, (i, p)| if p > best.1 { (i, p) } else { best },
    )
}

const LANES: usize = 8;

/// cos(ωn), sin(ωn) for eight consecutive n at once, advanced by 8ω per step. The eight lanes
/// are independent, so the loops using them vectorise instead of forming one long dependency
/// chain (a Goertzel recurrence is latency-bound). 20 rotations per window drift far less than
/// the detector's tolerances.
struct LanePhasor {
    cos: [f32; LANES],
    sin: [f32; LANES],
    step_cos: f32,
    step_sin: f32,
}

impl LanePhasor {
    fn new(frequency: f32) -> Self {
        let omega = 2.0 * std::f32::consts::PI * frequency / SAMPLE_RATE;
        let (one_sin, one_cos) = omega.sin_cos();
        let (step_sin, step_cos) = (omega * LANES as f32).sin_cos();
        let mut cos = [1f32; LANES];
        let mut sin = [0f32; LANES];
        for lane in 1..LANES {
            cos[lane] = cos[lane - 1] * one_cos - sin[lane - 1] * one_sin;
            sin[lane] = sin[lane - 1] * one_cos + cos[lane - 1] * one_sin;
        }
        Self {
            cos,
            sin,
            step_cos,
            step_sin,
        }
    }

    fn advance(&mut self) {
        for lane in 0..LANES {
            let cos = self.cos[lane] * self.step_cos - self.sin[lane] * self.step_sin;
            self.sin[lane] = self.sin[lane] * self.step_cos + self.cos[lane] * self.step_sin;
            self.cos[lane] = cos;
        }
    }
}

/// The DFT of a window at an arbitrary frequency, as a complex value.
fn complex_at(window: &[f32; WINDOW], frequency: f32) -> Bin {
    let mut phasor = LanePhasor::new(frequency);
    let mut re = [0f32; LANES];
    let mut im = [0f32; LANES];
    for chunk in window.chunks_exact(LANES) {
        for lane in 0..LANES {
            re[lane] += chunk[lane] * phasor.cos[lane];
            im[lane] -= chunk[lane] * phasor.sin[lane];
        }
        phasor.advance();
    }
    Bin {
        re: re.iter().sum(),
        im: im.iter().sum(),
    }
}

/// Removes a sinusoid `a·cos(ωn) + b·sin(ωn)` from the window.
fn subtract_sinusoid(window: &mut [f32; WINDOW], frequency: f32, a: f32, b: f32) {
    let mut phasor = LanePhasor::new(frequency);
    for chunk in window.chunks_exact_mut(LANES) {
        for ((x, cos), sin) in chunk.iter_mut().zip(&phasor.cos).zip(&phasor.sin) {
            *x -= a * cos + b * sin;
        }
        phasor.advance();
    }
}
