//! Dialled destinations brought to the form rating and routing expect.

/// Longest international number after the `+` (E.164 allows 15 digits).
pub const MAX_INTERNATIONAL_DIGITS: usize = 15;

/// Why a dialled string is not a destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("no digits were dialled")]
    Empty,
    #[error("a destination may hold only digits after an optional leading +")]
    NotDigits,
    #[error("an international number has at most {MAX_INTERNATIONAL_DIGITS} digits")]
    TooLong,
}

/// International prefixes, longest first so `011` is not read as `0` + `11`.
const INTERNATIONAL_PREFIXES: [&str; 2] = ["011", "00"];

/// Normalizes a dialled destination: `00` and `011` become the international `+` form,
/// a leading `+` is kept, and anything else (a national number) is passed on unchanged as
/// digits for the rate deck to match.
pub fn normalize_destination(dialled: &str) -> Result<String, DestinationError> {
    let dialled = dialled.trim();
    let international = dialled.strip_prefix('+').or_else(|| {
        INTERNATIONAL_PREFIXES
            .iter()
            .find_map(|prefix| dialled.strip_prefix(prefix))
    });
    let digits = international.unwrap_or(dialled);
    if digits.is_empty() {
        return Err(DestinationError::Empty);
    }
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(DestinationError::NotDigits);
    }
    match international {
        Some(_) if digits.len() > MAX_INTERNATIONAL_DIGITS => Err(DestinationError::TooLong),
        Some(_) => Ok(format!("+{digits}")),
        None => Ok(digits.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_table() {
        let table = [
            ("0044207946000", Ok("+44207946000")),
            ("01144207946000", Ok("+44207946000")),
            ("+44207946000", Ok("+44207946000")),
            ("+", Err(DestinationError::Empty)),
            ("00", Err(DestinationError::Empty)),
            ("011", Err(DestinationError::Empty)),
            ("", Err(DestinationError::Empty)),
            ("5551234", Ok("5551234")),
            ("0301234567", Ok("0301234567")),
            ("00*49", Err(DestinationError::NotDigits)),
            ("+1234567890123456", Err(DestinationError::TooLong)),
            ("00123456789012345", Ok("+123456789012345")),
        ];
        for (dialled, expected) in table {
            assert_eq!(
                normalize_destination(dialled),
                expected.map(str::to_owned),
                "{dialled}"
            );
        }
    }
}
