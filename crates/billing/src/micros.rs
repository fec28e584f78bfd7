//! Exact decimal text <-> integer micro-units, without floating point.

use crate::MICROS_PER_UNIT;

/// Digits after the decimal point that micros can hold.
pub const MAX_FRACTION_DIGITS: usize = 6;

/// Why a decimal string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Nothing but whitespace.
    #[error("empty value")]
    Empty,
    /// A character that is not a digit, a leading `-` or one `.`.
    #[error("not a decimal number: {0:?}")]
    NotADecimal(String),
    /// More than six digits after the point.
    #[error("more than {MAX_FRACTION_DIGITS} fractional digits: {0:?}")]
    TooPrecise(String),
    /// Does not fit in i64 micros.
    #[error("out of range: {0:?}")]
    OutOfRange(String),
}

/// Parses `"0.0125"` into `12_500` micros, exactly. Accepts an optional leading `-`, digits,
/// and an optional `.` followed by 1 to 6 digits; surrounding whitespace is ignored.
pub fn parse_micros(text: &str) -> Result<i64, DecimalError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DecimalError::Empty);
    }
    let not_decimal = || DecimalError::NotADecimal(trimmed.to_owned());
    let (negative, unsigned) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|part| !all_digits(part)) {
        return Err(not_decimal());
    }
    let fraction = fraction.unwrap_or("");
    if fraction.len() > MAX_FRACTION_DIGITS {
        return Err(DecimalError::TooPrecise(trimmed.to_owned()));
    }
    let out_of_range = || DecimalError::OutOfRange(trimmed.to_owned());
    let mut micros: i64 = 0;
    for digit in whole.bytes() {
        micros = micros
            .checked_mul(10)
            .and_then(|value| value.checked_add(i64::from(digit - b'0')))
            .ok_or_else(out_of_range)?;
    }
    micros = micros
        .checked_mul(MICROS_PER_UNIT)
        .ok_or_else(out_of_range)?;
    let mut scale = MICROS_PER_UNIT;
    for digit in fraction.bytes() {
        scale /= 10;
        micros = micros
            .checked_add(i64::from(digit - b'0') * scale)
            .ok_or_else(out_of_range)?;
    }
    Ok(if negative { -micros } else { micros })
}

/// Formats micros as a decimal with the trailing zeros of the fraction removed
/// (`12_500` -> `"0.0125"`, `2_000_000` -> `"2"`).
pub fn format_micros(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let magnitude = micros.unsigned_abs();
    let unit = MICROS_PER_UNIT.unsigned_abs();
    let whole = magnitude / unit;
    let fraction = magnitude % unit;
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{fraction:06}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_values() {
        assert_eq!(parse_micros("0.0125"), Ok(12_500));
        assert_eq!(parse_micros("1"), Ok(1_000_000));
        assert_eq!(parse_micros(" 12.5 "), Ok(12_500_000));
        assert_eq!(parse_micros("0.000001"), Ok(1));
        assert_eq!(parse_micros("-3.25"), Ok(-3_250_000));
        assert_eq!(parse_micros("007.10"), Ok(7_100_000));
    }

    #[test]
    fn rejects_what_is_not_an_exact_decimal() {
        assert_eq!(parse_micros(""), Err(DecimalError::Empty));
        assert!(matches!(
            parse_micros("1."),
            Err(DecimalError::NotADecimal(_))
        ));
        assert!(matches!(
            parse_micros(".5"),
            Err(DecimalError::NotADecimal(_))
        ));
        assert!(matches!(
            parse_micros("1,5"),
            Err(DecimalError::NotADecimal(_))
        ));
        assert!(matches!(
            parse_micros("1e3"),
            Err(DecimalError::NotADecimal(_))
        ));
        assert!(matches!(
            parse_micros("+1"),
            Err(DecimalError::NotADecimal(_))
        ));
        assert!(matches!(
            parse_micros("--1"),
            Err(DecimalError::NotADecimal(_))
        ));
        assert_eq!(
            parse_micros("0.0000001"),
            Err(DecimalError::TooPrecise("0.0000001".into()))
        );
        assert!(matches!(
            parse_micros("99999999999999"),
            Err(DecimalError::OutOfRange(_))
        ));
    }

    #[test]
    fn format_round_trips() {
        for micros in [0, 1, 12_500, 2_000_000, -3_250_000, 123_456_789_012] {
            assert_eq!(parse_micros(&format_micros(micros)), Ok(micros));
        }
        assert_eq!(format_micros(12_500), "0.0125");
        assert_eq!(format_micros(-1), "-0.000001");
    }
}
