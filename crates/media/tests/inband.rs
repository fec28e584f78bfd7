//! In-band DTMF detection on audio made by sox (tones + white noise) and espeak-ng (speech,
//! including digits spoken as words, which must not trigger).

#![allow(clippy::disallowed_methods)] // the clock of a test or a benchmark is real
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::Instant;

use common::{TempDir, espeak, path_str, read_wav_i16, sox};
use talktime_media::{DtmfSource, InbandDetector, Law};

const ALL_DIGITS: &str = "123A456B789C*0#D";

fn frequencies(digit: char) -> (u32, u32) {
    let row = "123A456B789C*0#D".find(digit).unwrap();
    (
        [697, 770, 852, 941][row / 4],
        [1209, 1336, 1477, 1633][row % 4],
    )
}

/// Detected digits, feeding the samples through G.711 first (the real path) in 20 ms packets.
fn detect(samples: &[i16], law: Option<Law>) -> String {
    let mut detector = InbandDetector::default();
    let now = Instant::now();
    let mut heard = String::new();
    for packet in samples.chunks(160) {
        let coded: Vec<i16> = match law {
            Some(law) => packet.iter().map(|s| law.decode(law.encode(*s))).collect(),
            None => packet.to_vec(),
        };
        detector.process(&coded, now, |event| {
            assert_eq!(event.source, DtmfSource::Inband);
            heard.push(event.digit);
        });
    }
    heard
}

struct ToneSpec {
    low: f64,
    high: f64,
    /// Peak level of the dual tone after normalisation, dBFS (each tone is ~6 dB lower).
    peak_db: f64,
    /// Extra attenuation of the high tone (twist), dB.
    high_attenuation_db: f64,
    seconds: f64,
}

fn tone_file(dir: &TempDir, name: &str, spec: &ToneSpec) -> String {
    let stereo = dir.path(&format!("{name}-2.wav"));
    let mono = dir.path(&format!("{name}.wav"));
    let length = format!("{}", spec.seconds);
    let (low, high) = (format!("{}", spec.low), format!("{}", spec.high));
    sox(&[
        "-n",
        "-r",
        "8000",
        "-b",
        "16",
        "-c",
        "2",
        path_str(&stereo),
        "synth",
        &length,
        "sine",
        &low,
        "sine",
        &high,
    ]);
    let high_gain = format!("{}", 10f64.powf(-spec.high_attenuation_db / 20.0));
    let peak = format!("{}", spec.peak_db);
    sox(&[
        path_str(&stereo),
        "-c",
        "1",
        path_str(&mono),
        "remix",
        &format!("1,2v{high_gain}"),
        "gain",
        "-n",
        &peak,
    ]);
    path_str(&mono).to_string()
}

/// Tones for `digits` separated by `gap` seconds of silence, with white noise of amplitude
/// `noise` (0 = none) over everything.
fn digit_sequence(
    dir: &TempDir,
    digits: &str,
    peak_db: f64,
    seconds: f64,
    gap: f64,
    noise: f64,
) -> Vec<i16> {
    let gap_file = dir.path("gap.wav");
    sox(&[
        "-n",
        "-r",
        "8000",
        "-b",
        "16",
        "-c",
        "1",
        path_str(&gap_file),
        "trim",
        "0",
        &format!("{gap}"),
    ]);
    let mut inputs = vec![path_str(&gap_file).to_string()];
    for (index, digit) in digits.chars().enumerate() {
        let (low, high) = frequencies(digit);
        let spec = ToneSpec {
            low: low.into(),
            high: high.into(),
            peak_db,
            high_attenuation_db: 0.0,
            seconds,
        };
        inputs.push(tone_file(dir, &format!("d{index}"), &spec));
        inputs.push(path_str(&gap_file).to_string());
    }
    let sequence = dir.path("sequence.wav");
    let mut args: Vec<&str> = inputs.iter().map(String::as_str).collect();
    args.push(path_str(&sequence));
    sox(&args);
    if noise == 0.0 {
        return read_wav_i16(&sequence).1;
    }
    let total = read_wav_i16(&sequence).1.len() as f64 / 8000.0;
    let noise_file = dir.path("noise.wav");
    sox(&[
        "-n",
        "-r",
        "8000",
        "-b",
        "16",
        "-c",
        "1",
        path_str(&noise_file),
        "synth",
        &format!("{total}"),
        "whitenoise",
        "vol",
        &format!("{noise}"),
    ]);
    let mixed = dir.path("mixed.wav");
    sox(&[
        "-m",
        "-v",
        "1",
        path_str(&sequence),
        "-v",
        "1",
        path_str(&noise_file),
        path_str(&mixed),
    ]);
    read_wav_i16(&mixed).1
}

#[test]
fn every_digit_once_at_several_levels_durations_and_noise() {
    let dir = TempDir::new("dtmf-levels");
    // Peak -4 dBFS: each tone about -10 dBFS; peak -24: each tone about -30 dBFS.
    for peak_db in [-4.0, -14.0, -24.0] {
        for seconds in [0.045, 0.07, 0.2] {
            for noise in [0.0, 0.01, 0.04] {
                let samples = digit_sequence(&dir, ALL_DIGITS, peak_db, seconds, 0.06, noise);
                for law in [Some(Law::MuLaw), Some(Law::ALaw), None] {
                    let heard = detect(&samples, law);
                    assert_eq!(
                        heard, ALL_DIGITS,
                        "peak {peak_db} dBFS, {seconds} s tones, noise {noise}, {law:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn repeated_digit_with_a_pause_counts_twice() {
    let dir = TempDir::new("dtmf-repeat");
    let samples = digit_sequence(&dir, "5500", -10.0, 0.08, 0.06, 0.01);
    assert_eq!(detect(&samples, Some(Law::MuLaw)), "5500");
}

fn single_tone_heard(spec: ToneSpec) -> String {
    let dir = TempDir::new("dtmf-single");
    let file = tone_file(&dir, "tone", &spec);
    let (_, mut samples) = read_wav_i16(std::path::Path::new(&file));
    // Silence before and after, so the detector sees the tone start and end.
    let mut padded = vec![0i16; 800];
    padded.append(&mut samples);
    padded.extend(std::iter::repeat_n(0, 800));
    detect(&padded, Some(Law::MuLaw))
}

#[test]
fn frequency_tolerance_accepts_1_5_percent_and_rejects_3_5_percent() {
    for factor in [0.985, 1.0, 1.015] {
        let heard = single_tone_heard(ToneSpec {
            low: 852.0 * factor,
            high: 1477.0 * factor,
            peak_db: -10.0,
            high_attenuation_db: 0.0,
            seconds: 0.1,
        });
        assert_eq!(heard, "9", "deviation factor {factor}");
    }
    for factor in [0.965, 1.035, 1.05] {
        let heard = single_tone_heard(ToneSpec {
            low: 852.0 * factor,
            high: 1477.0 * factor,
            peak_db: -10.0,
            high_attenuation_db: 0.0,
            seconds: 0.1,
        });
        assert_eq!(heard, "", "deviation factor {factor}");
    }
    // Only one of the two tones off frequency is enough to reject.
    let heard = single_tone_heard(ToneSpec {
        low: 852.0,
        high: 1477.0 * 1.04,
        peak_db: -10.0,
        high_attenuation_db: 0.0,
        seconds: 0.1,
    });
    assert_eq!(heard, "");
}

#[test]
fn twist_and_duration_limits() {
    let accepted = single_tone_heard(ToneSpec {
        low: 770.0,
        high: 1336.0,
        peak_db: -10.0,
        high_attenuation_db: 4.0,
        seconds: 0.1,
    });
    assert_eq!(accepted, "5");
    let too_much_twist = single_tone_heard(ToneSpec {
        low: 770.0,
        high: 1336.0,
        peak_db: -10.0,
        high_attenuation_db: 12.0,
        seconds: 0.1,
    });
    assert_eq!(too_much_twist, "");
    let too_short = single_tone_heard(ToneSpec {
        low: 770.0,
        high: 1336.0,
        peak_db: -10.0,
        high_attenuation_db: 0.0,
        seconds: 0.02,
    });
    assert_eq!(too_short, "");
    let too_quiet = single_tone_heard(ToneSpec {
        low: 770.0,
        high: 1336.0,
        peak_db: -50.0,
        high_attenuation_db: 0.0,
        seconds: 0.1,
    });
    assert_eq!(too_quiet, "");
    let single_frequency = single_tone_heard(ToneSpec {
        low: 770.0,
        high: 770.0,
        peak_db: -10.0,
        high_attenuation_db: 0.0,
        seconds: 0.1,
    });
    assert_eq!(single_frequency, "");
}

const SENTENCES: &[&str] = &[
    "Please enter your PIN number followed by the pound key.",
    "One two three four five six seven eight nine zero star pound.",
    "You have twelve dollars and fifty cents remaining on your card.",
    "Dial zero one one four four two zero seven nine four six zero nine five eight.",
    "Hello? Hello, can you hear me? I am calling about the invoice from last Tuesday.",
    "Seven seven seven, eight eight eight, nine nine nine, zero zero zero.",
    "The quick brown fox jumps over the lazy dog while the phone keeps ringing.",
    "Press one for English, press two for Spanish, or stay on the line for an operator.",
];

#[test]
fn no_digits_in_a_minute_of_speech() {
    let dir = TempDir::new("dtmf-speech");
    let mut speech: Vec<i16> = Vec::new();
    let voices = ["en-us", "en+f3", "en-gb+m3", "es", "en-us+f4"];
    let mut index = 0;
    while speech.len() < 60 * 8000 {
        let voice = voices[index % voices.len()];
        let text = SENTENCES[index % SENTENCES.len()];
        let raw = dir.path(&format!("raw{index}.wav"));
        let converted = dir.path(&format!("speech{index}.wav"));
        espeak(&["-v", voice, "-s", "160", "-w", path_str(&raw), text]);
        sox(&[
            path_str(&raw),
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            path_str(&converted),
            "gain",
            "-n",
            "-1",
        ]);
        speech.extend(read_wav_i16(&converted).1);
        index += 1;
    }
    assert!(speech.len() >= 60 * 8000);
    for law in [Some(Law::MuLaw), Some(Law::ALaw), None] {
        assert_eq!(detect(&speech, law), "", "false digits in speech ({law:?})");
    }
    // Quieter talkers (-10 and -26 dB).
    for gain in [0.3, 0.05] {
        let quiet: Vec<i16> = speech
            .iter()
            .map(|s| (f64::from(*s) * gain) as i16)
            .collect();
        assert_eq!(
            detect(&quiet, Some(Law::MuLaw)),
            "",
            "false digits at gain {gain}"
        );
    }
    // A key pressed between sentences, after a minute of speech, is still caught once.
    let tone = digit_sequence(&dir, "7", -12.0, 0.12, 0.05, 0.0);
    let mut mixed = speech[..5 * 8000].to_vec();
    mixed.extend(&tone);
    mixed.extend(&speech[5 * 8000..10 * 8000]);
    assert_eq!(detect(&mixed, Some(Law::MuLaw)), "7");
}

#[test]
fn a_short_dropout_is_bridged_and_a_real_pause_separates_digits() {
    let dir = TempDir::new("dtmf-pause");
    let dropout = digit_sequence(&dir, "55", -10.0, 0.08, 0.008, 0.0);
    assert_eq!(
        detect(&dropout[64..dropout.len() - 64], Some(Law::MuLaw)),
        "5"
    );
    let pause = digit_sequence(&dir, "55", -10.0, 0.08, 0.04, 0.0);
    assert_eq!(detect(&pause, Some(Law::MuLaw)), "55");
}
