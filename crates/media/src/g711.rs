//! ITU-T G.711 µ-law and A-law, written from the recommendation's segment definitions.
//!
//! Decoding uses 256-entry tables built at compile time; encoding searches the segment of the
//! magnitude (8 segments, 16 steps each) and rounds by truncation exactly as G.711 Table 1/2.

/// Which G.711 law a stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU, payload type 0).
    MuLaw,
    /// A-law (PCMA, payload type 8).
    ALaw,
}

impl Law {
    /// The code for silence (decodes to 0, or the smallest step for A-law).
    pub const fn silence(self) -> u8 {
        match self {
            Law::MuLaw => 0xFF,
            Law::ALaw => 0xD5,
        }
    }

    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::MuLaw => mulaw_encode(sample),
            Law::ALaw => alaw_encode(sample),
        }
    }

    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::MuLaw => mulaw_decode(code),
            Law::ALaw => alaw_decode(code),
        }
    }

    /// Encodes a block of samples into `out` (same length).
    pub fn encode_into(self, samples: &[i16], out: &mut [u8]) {
        for (code, sample) in out.iter_mut().zip(samples) {
            *code = self.encode(*sample);
        }
    }

    /// Decodes a block of codes into `out` (same length).
    pub fn decode_into(self, codes: &[u8], out: &mut [i16]) {
        let table = match self {
            Law::MuLaw => &MULAW_DECODE,
            Law::ALaw => &ALAW_DECODE,
        };
        for (sample, code) in out.iter_mut().zip(codes) {
            *sample = table[usize::from(*code)];
        }
    }
}

const MULAW_BIAS: i32 = 0x84; // 33 in 14-bit units, scaled to 16-bit
const MULAW_CLIP: i32 = 32635;

const fn mulaw_decode_formula(code: u8) -> i16 {
    let inverted = !code;
    let exponent = ((inverted >> 4) & 0x07) as i32;
    let mantissa = (inverted & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS;
    if inverted & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_formula(code: u8) -> i16 {
    let toggled = code ^ 0x55;
    let exponent = ((toggled >> 4) & 0x07) as i32;
    let mantissa = (toggled & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    // In A-law the sign bit set means positive.
    if toggled & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_table(law: Law) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = match law {
            Law::MuLaw => mulaw_decode_formula(code as u8),
            Law::ALaw => alaw_decode_formula(code as u8),
        };
        code += 1;
    }
    table
}

static MULAW_DECODE: [i16; 256] = build_table(Law::MuLaw);
static ALAW_DECODE: [i16; 256] = build_table(Law::ALaw);

/// µ-law code to linear 16-bit sample.
pub fn mulaw_decode(code: u8) -> i16 {
    MULAW_DECODE[usize::from(code)]
}

/// A-law code to linear 16-bit sample.
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Linear 16-bit sample to µ-law code.
pub fn mulaw_encode(sample: i16) -> u8 {
    let value = i32::from(sample);
    let sign: u8 = if value < 0 { 0x80 } else { 0 };
    let magnitude = value.abs().min(MULAW_CLIP) + MULAW_BIAS;
    // Segment = position of the highest set bit above bit 7.
    let exponent = (31 - magnitude.leading_zeros()).saturating_sub(7).min(7);
    let mantissa = ((magnitude >> (exponent + 3)) & 0x0F) as u8;
    !(sign | ((exponent as u8) << 4) | mantissa)
}

/// Linear 16-bit sample to A-law code.
pub fn alaw_encode(sample: i16) -> u8 {
    let value = i32::from(sample);
    // A-law works on 13-bit magnitudes; the sign bit set means positive.
    let (sign, magnitude) = if value >= 0 {
        (0x80u8, value >> 3)
    } else {
        (0x00u8, (-value - 1) >> 3)
    };
    let magnitude = magnitude.min(0x0FFF);
    let code = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let exponent = (31 - magnitude.leading_zeros()) - 4; // 1..=7
        let mantissa = ((magnitude >> exponent) & 0x0F) as u8;
        ((exponent as u8) << 4) | mantissa
    };
    (sign | code) ^ 0x55
}
