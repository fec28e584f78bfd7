//! Fixture helpers: run sox / espeak-ng into a temporary directory (never committed).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "talktime-media-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(tool: &str, args: &[&str]) {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "`{tool}` could not be run ({error}); install it with \
             `apt-get install -y sox espeak-ng libsox-fmt-mp3` (CI installs them)"
            )
        });
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn sox(args: &[&str]) {
    run("sox", args);
}

pub fn espeak(args: &[&str]) {
    run("espeak-ng", args);
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Reads a 16-bit mono WAV written by sox.
pub fn read_wav_i16(path: &Path) -> (u32, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let rate = reader.spec().sample_rate;
    let samples = reader.samples::<i16>().map(Result::unwrap).collect();
    (rate, samples)
}

/// Frequency (Hz, 5 Hz steps) with the most power, by a Goertzel scan.
pub fn dominant_frequency(samples: &[i16], rate: u32) -> f64 {
    let mut best = (0.0, 0.0);
    let mut frequency = 50.0;
    while frequency < f64::from(rate) / 2.0 - 50.0 {
        let power = goertzel_power(samples, rate, frequency);
        if power > best.1 {
            best = (frequency, power);
        }
        frequency += 5.0;
    }
    best.0
}

pub fn goertzel_power(samples: &[i16], rate: u32, frequency: f64) -> f64 {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * frequency / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for x in samples {
        let s0 = f64::from(*x) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coefficient * s1 * s2
}
