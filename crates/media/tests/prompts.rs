//! Uploaded-file handling: real files made by sox, sniffed by content, converted to 8 kHz.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::time::Duration;

use common::{TempDir, dominant_frequency, goertzel_power, path_str, sox};
use talktime_media::audio::{SniffedFormat, decode, sniff};
use talktime_media::{AudioError, Law, Prompt, PromptCache};

fn make(dir: &TempDir, name: &str, args_before_name: &[&str], effects: &[&str]) -> Vec<u8> {
    let path = dir.path(name);
    let mut args: Vec<&str> = args_before_name.to_vec();
    args.push(path_str(&path));
    args.extend_from_slice(effects);
    sox(&args);
    std::fs::read(path).unwrap()
}

/// A 1 kHz sine of `seconds` in the given format.
fn sine(dir: &TempDir, name: &str, format: &[&str], seconds: &str) -> Vec<u8> {
    let mut args = vec!["-n"];
    args.extend_from_slice(format);
    make(
        dir,
        name,
        &args,
        &["synth", seconds, "sine", "1000", "gain", "-n", "-6"],
    )
}

fn assert_converted_sine(prompt: &Prompt, seconds: f64, what: &str) {
    let duration = prompt.duration().as_secs_f64();
    assert!(
        (duration - seconds).abs() <= 0.021,
        "{what}: duration {duration} s, expected {seconds} s"
    );
    let samples = prompt.samples();
    let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
    let peak = dominant_frequency(middle, 8000);
    assert!(
        (peak - 1000.0).abs() <= 5.0,
        "{what}: dominant frequency {peak} Hz"
    );
    let rms =
        (middle.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / middle.len() as f64).sqrt();
    let expected_rms = 32767.0 * 10f64.powf(-6.0 / 20.0) / 2f64.sqrt();
    assert!(
        (rms / expected_rms - 1.0).abs() < 0.05,
        "{what}: level changed, rms {rms}, expected {expected_rms}"
    );
}

#[test]
fn wav_encodings_rates_and_channel_counts_convert_to_8khz() {
    let dir = TempDir::new("prompt-formats");
    let cases: &[(&str, &[&str])] = &[
        (
            "pcm16-48k-stereo.wav",
            &["-r", "48000", "-c", "2", "-b", "16"],
        ),
        (
            "pcm8-11k.wav",
            &[
                "-r",
                "11025",
                "-c",
                "1",
                "-b",
                "8",
                "-e",
                "unsigned-integer",
            ],
        ),
        ("pcm24-44k.wav", &["-r", "44100", "-c", "1", "-b", "24"]),
        ("pcm32-16k-6ch.wav", &["-r", "16000", "-c", "6", "-b", "32"]),
        (
            "float-22k.wav",
            &["-r", "22050", "-c", "2", "-e", "floating-point", "-b", "32"],
        ),
        ("mulaw-8k.wav", &["-r", "8000", "-c", "1", "-e", "u-law"]),
        ("alaw-8k.wav", &["-r", "8000", "-c", "1", "-e", "a-law"]),
        (
            "mulaw-16k-stereo.wav",
            &["-r", "16000", "-c", "2", "-e", "u-law"],
        ),
        ("pcm16-6k.wav", &["-r", "6000", "-c", "1", "-b", "16"]),
    ];
    for (name, format) in cases {
        let bytes = sine(&dir, name, format, "1.5");
        assert_eq!(sniff(&bytes).unwrap(), SniffedFormat::Wav, "{name}");
        let prompt = Prompt::from_file_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_converted_sine(&prompt, 1.5, name);
    }
}

#[test]
fn g711_wav_is_decoded_by_our_own_code_exactly() {
    let dir = TempDir::new("prompt-g711");
    let bytes = sine(
        &dir,
        "mu.wav",
        &["-r", "8000", "-c", "1", "-e", "u-law"],
        "0.5",
    );
    let decoded = decode(&bytes).unwrap();
    assert_eq!((decoded.sample_rate, decoded.channels), (8000, 1));
    // Every sample is a µ-law level (the file's codes decoded, nothing else done to them).
    for sample in &decoded.samples {
        let as_i16 = (*sample * 32768.0) as i16;
        assert_eq!(Law::MuLaw.decode(Law::MuLaw.encode(as_i16)), as_i16);
    }
}

#[test]
fn mp3_is_found_by_content_even_when_named_wav() {
    let dir = TempDir::new("prompt-mp3");
    let bytes = sine(&dir, "sine.mp3", &["-r", "44100", "-c", "2"], "2");
    let disguised = dir.path("upload.wav");
    std::fs::write(&disguised, &bytes).unwrap();
    let bytes = std::fs::read(&disguised).unwrap();
    assert_eq!(sniff(&bytes).unwrap(), SniffedFormat::Mp3);
    let prompt = Prompt::from_file_bytes(&bytes).unwrap();
    // MP3 adds encoder delay and padding (about one frame each end).
    let duration = prompt.duration().as_secs_f64();
    assert!((2.0..2.2).contains(&duration), "mp3 duration {duration}");
    let samples = prompt.samples();
    let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
    let peak = dominant_frequency(middle, 8000);
    assert!(
        (peak - 1000.0).abs() <= 5.0,
        "mp3 dominant frequency {peak}"
    );
}

#[test]
fn resampling_removes_content_above_the_telephone_band() {
    let dir = TempDir::new("prompt-alias");
    // 6 kHz at 48 kHz would fold to 2 kHz if not low-passed before decimation.
    let bytes = make(
        &dir,
        "high.wav",
        &["-n", "-r", "48000", "-c", "1", "-b", "16"],
        &["synth", "1", "sine", "6000", "gain", "-n", "-6"],
    );
    let prompt = Prompt::from_file_bytes(&bytes).unwrap();
    let samples = &prompt.samples()[1000..7000];
    let folded = goertzel_power(samples, 8000, 2000.0);
    let full_scale_sine = (32767.0 * 0.5 * samples.len() as f64 / 2.0).powi(2);
    let attenuation_db = 10.0 * (folded / full_scale_sine).log10();
    assert!(
        attenuation_db < -60.0,
        "alias only {attenuation_db} dB down"
    );
}

#[test]
fn broken_files_are_refused_with_a_reason() {
    let dir = TempDir::new("prompt-broken");
    let good = sine(
        &dir,
        "good.wav",
        &["-r", "8000", "-c", "1", "-b", "16"],
        "1",
    );

    let truncated = &good[..good.len() / 2];
    match Prompt::from_file_bytes(truncated).unwrap_err() {
        AudioError::TruncatedWav { declared, present } => {
            assert_eq!(declared, 16000);
            assert!(present < declared);
        }
        other => panic!("expected TruncatedWav, got {other:?}"),
    }
    let error = Prompt::from_file_bytes(truncated).unwrap_err().to_string();
    assert!(error.contains("truncated"), "{error}");

    let mut no_fmt = good.clone();
    no_fmt[12..16].copy_from_slice(b"junk");
    assert!(matches!(
        Prompt::from_file_bytes(&no_fmt),
        Err(AudioError::CorruptWav(_))
    ));

    let header_only = &good[..20];
    assert!(matches!(
        Prompt::from_file_bytes(header_only),
        Err(AudioError::CorruptWav(_))
    ));

    let mut adpcm = good.clone();
    adpcm[20..22].copy_from_slice(&2u16.to_le_bytes()); // MS ADPCM format tag
    assert_eq!(
        Prompt::from_file_bytes(&adpcm).unwrap_err(),
        AudioError::UnsupportedWav {
            format_tag: 2,
            bits: 16
        }
    );

    match Prompt::from_file_bytes(b"just some text, not audio").unwrap_err() {
        AudioError::UnknownFormat { first_bytes } => {
            assert_eq!(first_bytes, "6a 75 73 74 20 73 6f 6d")
        }
        other => panic!("expected UnknownFormat, got {other:?}"),
    }
    assert!(matches!(
        Prompt::from_file_bytes(&[]),
        Err(AudioError::UnknownFormat { .. })
    ));

    let ogg = make(
        &dir,
        "x.ogg",
        &["-n", "-r", "8000", "-c", "1"],
        &["synth", "0.2", "sine", "440"],
    );
    assert!(matches!(
        Prompt::from_file_bytes(&ogg),
        Err(AudioError::UnknownFormat { .. })
    ));

    let mut garbage_mp3 = vec![0xFFu8, 0xFB];
    garbage_mp3.extend(std::iter::repeat_n(0x11u8, 300));
    let error = Prompt::from_file_bytes(&garbage_mp3).unwrap_err();
    assert!(
        matches!(error, AudioError::Mp3(_) | AudioError::NoAudio),
        "{error:?}"
    );
}

#[test]
fn absurd_sample_rates_are_refused() {
    let dir = TempDir::new("prompt-rate");
    let mut bytes = sine(
        &dir,
        "ok.wav",
        &["-r", "8000", "-c", "1", "-b", "16"],
        "0.1",
    );
    bytes[24..28].copy_from_slice(&4_000_000_000u32.to_le_bytes());
    assert_eq!(
        Prompt::from_file_bytes(&bytes).unwrap_err(),
        AudioError::UnsupportedRate(4_000_000_000)
    );
    bytes[24..28].copy_from_slice(&100u32.to_le_bytes());
    assert_eq!(
        Prompt::from_file_bytes(&bytes).unwrap_err(),
        AudioError::UnsupportedRate(100)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
    /// Whatever follows a valid RIFF/WAVE or MP3 start, decoding returns instead of panicking.
    #[test]
    fn arbitrary_uploads_never_panic(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        kind in 0u8..3,
    ) {
        let mut bytes = match kind {
            0 => b"RIFF\x00\x10\x00\x00WAVEfmt ".to_vec(),
            1 => vec![0xFF, 0xFB, 0x90, 0x64],
            _ => b"ID3".to_vec(),
        };
        bytes.extend(body);
        let _ = Prompt::from_file_bytes(&bytes);
    }
}

#[test]
fn the_shipped_prompts_all_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prompts");
    let mut cache = PromptCache::new();
    for language in ["en", "es"] {
        for entry in std::fs::read_dir(root.join(language)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "wav") {
                let name = format!("{language}/{}", path.file_stem().unwrap().to_string_lossy());
                let prompt = cache.load(&name, &std::fs::read(&path).unwrap()).unwrap();
                assert!(
                    prompt.duration() > Duration::from_millis(100),
                    "{name} is empty"
                );
            }
        }
    }
    assert!(cache.len() > 20, "only {} prompts", cache.len());
    assert!(cache.get("en/cents").is_some());
}
