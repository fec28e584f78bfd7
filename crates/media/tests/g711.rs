//! G.711 against tables computed here from the recommendation's segment formulas.

#![allow(clippy::unwrap_used)] // tests may unwrap

use talktime_media::g711::{Law, alaw_decode, alaw_encode, mulaw_decode, mulaw_encode};

/// µ-law, G.711 Table 2 in 14-bit units: |y| = (2m + 33)·2^e − 33, codes transmitted inverted.
fn mulaw_reference(code: u8) -> i32 {
    let bits = !code;
    let sign = if bits & 0x80 != 0 { -1 } else { 1 };
    let e = i32::from((bits >> 4) & 7);
    let m = i32::from(bits & 0x0F);
    sign * (((2 * m + 33) * (1 << e)) - 33) * 4
}

/// A-law, G.711 Table 1 in 13-bit units: segment 0 is 2m + 1, others (2m + 33)·2^(e−1); even
/// bits inverted (XOR 0x55), sign bit 1 = positive.
fn alaw_reference(code: u8) -> i32 {
    let bits = code ^ 0x55;
    let sign = if bits & 0x80 != 0 { 1 } else { -1 };
    let e = i32::from((bits >> 4) & 7);
    let m = i32::from(bits & 0x0F);
    let magnitude = if e == 0 {
        2 * m + 1
    } else {
        (2 * m + 33) * (1 << (e - 1))
    };
    sign * magnitude * 8
}

#[test]
fn full_decode_tables_match_the_segment_formulas() {
    for code in 0..=255u8 {
        assert_eq!(
            i32::from(mulaw_decode(code)),
            mulaw_reference(code),
            "µ {code:#04x}"
        );
        assert_eq!(
            i32::from(alaw_decode(code)),
            alaw_reference(code),
            "A {code:#04x}"
        );
    }
}

#[test]
fn known_values() {
    assert_eq!(mulaw_decode(0xFF), 0);
    assert_eq!(mulaw_decode(0x7F), 0);
    assert_eq!(mulaw_decode(0x00), -32124);
    assert_eq!(mulaw_decode(0x80), 32124);
    assert_eq!(alaw_decode(0xD5), 8);
    assert_eq!(alaw_decode(0x55), -8);
    assert_eq!(alaw_decode(0xAA), 32256);
    assert_eq!(alaw_decode(0x2A), -32256);
    assert_eq!(mulaw_encode(0), 0xFF);
    assert_eq!(alaw_encode(0), 0xD5);
    assert_eq!(mulaw_encode(i16::MAX), 0x80);
    assert_eq!(mulaw_encode(i16::MIN), 0x00);
    assert_eq!(alaw_encode(i16::MAX), 0xAA);
    assert_eq!(alaw_encode(i16::MIN), 0x2A);
}

#[test]
fn encode_of_decode_is_identity_for_every_code() {
    for code in 0..=255u8 {
        assert_eq!(alaw_encode(alaw_decode(code)), code, "A {code:#04x}");
        // 0x7F is µ-law's "negative zero": it decodes to 0, which encodes as 0xFF.
        let expected = if code == 0x7F { 0xFF } else { code };
        assert_eq!(mulaw_encode(mulaw_decode(code)), expected, "µ {code:#04x}");
    }
}

#[test]
fn every_sample_quantizes_to_the_nearest_level_of_its_segment() {
    for x in i16::MIN..=i16::MAX {
        let value = i32::from(x);
        let mu = mulaw_encode(x);
        let exponent = i32::from((!mu >> 4) & 7);
        if value.abs() <= 32124 {
            let error = (value - i32::from(mulaw_decode(mu))).abs();
            assert!(error <= 1 << (exponent + 2), "µ {x}: error {error}");
        }
        let a = alaw_encode(x);
        let exponent = i32::from(((a ^ 0x55) >> 4) & 7);
        if value.abs() <= 32256 {
            let step = if exponent == 0 {
                16
            } else {
                16 << (exponent - 1)
            };
            let error = (value - i32::from(alaw_decode(a))).abs();
            assert!(error <= step / 2, "A {x}: error {error}");
        }
    }
}

#[test]
fn block_helpers_match_the_scalar_functions() {
    let samples: Vec<i16> = (0..320)
        .map(|i| ((i * 977) % 65536 - 32768) as i16)
        .collect();
    for law in [Law::MuLaw, Law::ALaw] {
        let mut codes = vec![0u8; samples.len()];
        law.encode_into(&samples, &mut codes);
        let mut decoded = vec![0i16; codes.len()];
        law.decode_into(&codes, &mut decoded);
        for ((sample, code), back) in samples.iter().zip(&codes).zip(&decoded) {
            assert_eq!(*code, law.encode(*sample));
            assert_eq!(*back, law.decode(*code));
        }
        assert!(law.decode(law.silence()).abs() <= 8);
    }
}
