//! Decoding uploaded prompt files to 8 kHz mono: format sniffing, WAV (via hound, G.711 WAV by
//! our own code), MP3 (via symphonia), downmix and a windowed-sinc resampler.

use std::io::Cursor;

use crate::g711::Law;

/// Why an audio file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    #[error("unknown audio format (first bytes {first_bytes}); expected WAV (RIFF/WAVE) or MP3")]
    UnknownFormat { first_bytes: String },
    #[error("corrupt WAV: {0}")]
    CorruptWav(String),
    #[error(
        "truncated WAV: the data chunk declares {declared} bytes but only {present} are present"
    )]
    TruncatedWav { declared: u64, present: u64 },
    #[error("unsupported WAV encoding: format tag {format_tag:#06x} with {bits} bits per sample")]
    UnsupportedWav { format_tag: u16, bits: u16 },
    #[error("MP3 could not be decoded: {0}")]
    Mp3(String),
    #[error("the file holds no audio samples")]
    NoAudio,
    #[error("sample rate {0} Hz is outside 4000..=384000 Hz")]
    UnsupportedRate(u32),
    #[error("the audio runs past {max_seconds} s, the longest prompt accepted")]
    TooLong { max_seconds: u32 },
}

/// The longest prompt decoded. Decoding stops as soon as a file runs past it, so a small MP3
/// that would decode to gigabytes costs no more than this much audio.
pub const MAX_PROMPT_SECONDS: u32 = 600;

/// True when `samples` interleaved samples at this rate and channel count exceed the cap.
fn past_the_cap(samples: usize, sample_rate: u32, channels: u16) -> bool {
    let per_second = u64::from(sample_rate.max(1)) * u64::from(channels.max(1));
    u64::try_from(samples).unwrap_or(u64::MAX) > per_second * u64::from(MAX_PROMPT_SECONDS)
}

/// Decoded audio before conversion: interleaved samples in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    pub sample_rate: u32,
    pub channels: u16,
    pub samples: Vec<f32>,
}

/// The container a file really is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SniffedFormat {
    Wav,
    Mp3,
}

/// Identifies a file by magic bytes, never by name.
pub fn sniff(bytes: &[u8]) -> Result<SniffedFormat, AudioError> {
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        return Ok(SniffedFormat::Wav);
    }
    let mpeg_sync = bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0;
    if bytes.starts_with(b"ID3") || mpeg_sync {
        return Ok(SniffedFormat::Mp3);
    }
    let first_bytes = bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    Err(AudioError::UnknownFormat { first_bytes })
}

/// Decodes a WAV or MP3 file held in memory.
pub fn decode(bytes: &[u8]) -> Result<DecodedAudio, AudioError> {
    let decoded = match sniff(bytes)? {
        SniffedFormat::Wav => decode_wav(bytes)?,
        SniffedFormat::Mp3 => decode_mp3(bytes)?,
    };
    if decoded.samples.is_empty() || decoded.channels == 0 {
        return Err(AudioError::NoAudio);
    }
    if !SUPPORTED_RATES.contains(&decoded.sample_rate) {
        return Err(AudioError::UnsupportedRate(decoded.sample_rate));
    }
    if past_the_cap(decoded.samples.len(), decoded.sample_rate, decoded.channels) {
        return Err(AudioError::TooLong {
            max_seconds: MAX_PROMPT_SECONDS,
        });
    }
    Ok(decoded)
}

/// Decodes and converts to 8 kHz mono 16-bit.
pub fn decode_to_8k_mono(bytes: &[u8]) -> Result<Vec<i16>, AudioError> {
    let decoded = decode(bytes)?;
    let mono = downmix(&decoded.samples, decoded.channels);
    let resampled = resample(&mono, decoded.sample_rate, 8000);
    Ok(resampled.iter().map(|x| to_i16(*x)).collect())
}

fn to_i16(x: f32) -> i16 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Bounds the resampler's kernel, whose length grows with the rate ratio.
const SUPPORTED_RATES: std::ops::RangeInclusive<u32> = 4000..=384_000;

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_FLOAT: u16 = 3;
const WAVE_FORMAT_ALAW: u16 = 6;
const WAVE_FORMAT_MULAW: u16 = 7;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

struct WavLayout {
    format_tag: u16,
    channels: u16,
    sample_rate: u32,
    bits: u16,
    data: std::ops::Range<usize>,
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    bytes
        .get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Walks the RIFF chunks ourselves: hound does not read G.711 and does not say clearly when a
/// file was cut short.
fn wav_layout(bytes: &[u8]) -> Result<WavLayout, AudioError> {
    let corrupt = |what: &str| AudioError::CorruptWav(what.to_string());
    let mut offset = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while offset + 8 <= bytes.len() {
        let id = &bytes[offset..offset + 4];
        let size = read_u32(bytes, offset + 4).ok_or_else(|| corrupt("chunk header"))?;
        let body = offset + 8;
        if id == b"fmt " {
            let fmt = bytes
                .get(body..body + (size as usize).min(40))
                .filter(|f| f.len() >= 16)
                .ok_or_else(|| corrupt("fmt chunk shorter than 16 bytes"))?;
            let mut tag = read_u16(fmt, 0).unwrap_or_default();
            if tag == WAVE_FORMAT_EXTENSIBLE {
                // The sub-format GUID starts with the real format tag.
                tag = read_u16(fmt, 24).ok_or_else(|| corrupt("extensible fmt chunk too short"))?;
            }
            format = Some((
                tag,
                read_u16(fmt, 2).unwrap_or_default(),
                read_u32(fmt, 4).unwrap_or_default(),
                read_u16(fmt, 14).unwrap_or_default(),
            ));
        } else if id == b"data" {
            let (format_tag, channels, sample_rate, bits) =
                format.ok_or_else(|| corrupt("data chunk before the fmt chunk"))?;
            if channels == 0 {
                return Err(corrupt("zero channels"));
            }
            if !SUPPORTED_RATES.contains(&sample_rate) {
                return Err(AudioError::UnsupportedRate(sample_rate));
            }
            let present = bytes.len() - body;
            // 0 and 0xFFFFFFFF are written by streaming encoders that could not seek back.
            let declared = match size {
                0 | u32::MAX => present,
                size => size as usize,
            };
            if declared > present {
                return Err(AudioError::TruncatedWav {
                    declared: declared as u64,
                    present: present as u64,
                });
            }
            return Ok(WavLayout {
                format_tag,
                channels,
                sample_rate,
                bits,
                data: body..body + declared,
            });
        }
        // Chunks are padded to even sizes.
        offset = body
            .checked_add(size as usize + (size as usize & 1))
            .ok_or_else(|| corrupt("chunk size overflows"))?;
    }
    Err(match format {
        None => corrupt("no fmt chunk"),
        Some(_) => corrupt("no data chunk"),
    })
}

fn decode_wav(bytes: &[u8]) -> Result<DecodedAudio, AudioError> {
    let layout = wav_layout(bytes)?;
    let data = &bytes[layout.data.clone()];
    let samples = match (layout.format_tag, layout.bits) {
        (WAVE_FORMAT_MULAW, 8) => g711_samples(data, Law::MuLaw),
        (WAVE_FORMAT_ALAW, 8) => g711_samples(data, Law::ALaw),
        (WAVE_FORMAT_PCM, 8 | 16 | 24 | 32) | (WAVE_FORMAT_FLOAT, 32) => hound_samples(bytes)?,
        (format_tag, bits) => return Err(AudioError::UnsupportedWav { format_tag, bits }),
    };
    Ok(DecodedAudio {
        sample_rate: layout.sample_rate,
        channels: layout.channels,
        samples,
    })
}

fn g711_samples(data: &[u8], law: Law) -> Vec<f32> {
    data.iter()
        .map(|code| f32::from(law.decode(*code)) / 32768.0)
        .collect()
}

fn hound_samples(bytes: &[u8]) -> Result<Vec<f32>, AudioError> {
    let corrupt = |error: hound::Error| AudioError::CorruptWav(error.to_string());
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(corrupt)?;
    let spec = reader.spec();
    match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<Vec<_>, _>>()
                .map_err(corrupt)
        }
    }
}

fn decode_mp3(bytes: &[u8]) -> Result<DecodedAudio, AudioError> {
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::errors::Error;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;

    let failed = |error: Error| AudioError::Mp3(error.to_string());
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            source,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(failed)?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| AudioError::Mp3("no audio track".into()))?;
    let track_id = track.id;
    let parameters = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| AudioError::Mp3("no audio codec parameters".into()))?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(parameters, &AudioDecoderOptions::default())
        .map_err(failed)?;
    let mut samples = Vec::new();
    let mut sample_rate = 0;
    let mut channels = 0u16;
    let mut scratch: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(Error::IoError(_)) => break, // a cut-off last frame ends the file
            Err(error) => return Err(failed(error)),
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buffer) => {
                sample_rate = buffer.spec().rate();
                channels = u16::try_from(buffer.num_planes()).unwrap_or(u16::MAX);
                scratch.clear();
                scratch.resize(buffer.samples_interleaved(), 0.0);
                buffer.copy_to_slice_interleaved(&mut scratch);
                samples.extend_from_slice(&scratch);
                if past_the_cap(samples.len(), sample_rate, channels) {
                    return Err(AudioError::TooLong {
                        max_seconds: MAX_PROMPT_SECONDS,
                    });
                }
            }
            // A damaged frame is skipped, as every player does.
            Err(Error::DecodeError(_)) => continue,
            Err(error) => return Err(failed(error)),
        }
    }
    Ok(DecodedAudio {
        sample_rate,
        channels,
        samples,
    })
}

/// Averages interleaved channels to mono.
pub fn downmix(samples: &[f32], channels: u16) -> Vec<f32> {
    let channels = usize::from(channels.max(1));
    samples
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// Windowed-sinc resampler with a tabulated kernel (Blackman window, 16 zero crossings each
/// side), low-pass at 92 % of the lower Nyquist frequency so nothing above 3.7 kHz folds back
/// into telephone audio.
pub fn resample(input: &[f32], from_rate: u32, to_rate: u32) -> Vec<f32> {
    if from_rate == to_rate || input.is_empty() || from_rate == 0 || to_rate == 0 {
        return input.to_vec();
    }
    let ratio = f64::from(to_rate) / f64::from(from_rate);
    // Cutoff in cycles per input sample.
    let cutoff = 0.5 * ratio.min(1.0) * 0.92;
    let kernel = Kernel::new(cutoff);
    let output_len = (input.len() as f64 * ratio).round() as usize;
    let step = f64::from(from_rate) / f64::from(to_rate);
    (0..output_len)
        .map(|n| {
            let center = n as f64 * step;
            let first = (center - kernel.half_width).ceil().max(0.0) as usize;
            let last = ((center + kernel.half_width).floor() as usize).min(input.len() - 1);
            let mut sum = 0.0f64;
            for (k, x) in input.iter().enumerate().take(last + 1).skip(first) {
                sum += f64::from(*x) * kernel.at((center - k as f64).abs());
            }
            sum as f32
        })
        .collect()
}

struct Kernel {
    half_width: f64,
    /// Kernel values at `RESOLUTION` points per input sample over [0, half_width].
    table: Vec<f64>,
}

const ZERO_CROSSINGS: f64 = 16.0;
const RESOLUTION: f64 = 256.0;

impl Kernel {
    fn new(cutoff: f64) -> Self {
        let half_width = ZERO_CROSSINGS / (2.0 * cutoff);
        let points = (half_width * RESOLUTION).ceil() as usize + 2;
        let table = (0..points)
            .map(|i| {
                let t = i as f64 / RESOLUTION;
                if t > half_width {
                    return 0.0;
                }
                let x = 2.0 * cutoff * t;
                let sinc = if x == 0.0 {
                    1.0
                } else {
                    (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                };
                // Blackman window over [-half_width, half_width].
                let phase = std::f64::consts::PI * (t / half_width + 1.0);
                let window = 0.42 - 0.5 * phase.cos() + 0.08 * (2.0 * phase).cos();
                2.0 * cutoff * sinc * window
            })
            .collect();
        Self { half_width, table }
    }

    fn at(&self, distance: f64) -> f64 {
        let position = distance * RESOLUTION;
        let index = position.floor() as usize;
        let fraction = position - index as f64;
        match (self.table.get(index), self.table.get(index + 1)) {
            (Some(a), Some(b)) => a + (b - a) * fraction,
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn a_prompt_longer_than_the_cap_is_refused_while_it_decodes() {
        assert!(!past_the_cap(8_000 * 600, 8_000, 1));
        assert!(past_the_cap(8_000 * 600 + 1, 8_000, 1));
        assert!(past_the_cap(48_000 * 2 * 601, 48_000, 2));
    }
}
