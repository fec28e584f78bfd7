//! Number normalization: what the caller dialled becomes E.164 digits (no `+`) before rating
//! and routing.

use serde::{Deserialize, Serialize};

/// E.164 allows at most 15 digits.
pub const MAX_E164_DIGITS: usize = 15;

/// Dialling rules of one access number's country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NumberRules {
    /// Prefixes announcing an international number, removed as they are (longest first).
    pub international_prefixes: Vec<String>,
    /// The trunk prefix of national numbers (`"0"` in the UK); replaced by `country_code`.
    pub national_prefix: Option<String>,
    /// Country code of the access number (`"44"`), prepended to national numbers.
    pub country_code: Option<String>,
    /// E.164 prefixes refused before any carrier is tried (premium-rate numbers: `"44909"`).
    pub blocked_prefixes: Vec<String>,
}

impl Default for NumberRules {
    fn default() -> Self {
        NumberRules {
            international_prefixes: vec!["00".into(), "011".into(), "+".into()],
            national_prefix: None,
            country_code: None,
            blocked_prefixes: Vec::new(),
        }
    }
}

/// Why a dialled number cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("no digits dialled")]
    Empty,
    #[error("{0:?} is not allowed in a dialled number")]
    BadCharacter(char),
    #[error("a national number was dialled but no country code is configured")]
    NoCountryCode,
    #[error("an international number cannot start with 0")]
    LeadingZero,
    #[error("{digits} digits is longer than E.164 allows ({MAX_E164_DIGITS})")]
    TooLong { digits: usize },
    #[error("destinations starting {prefix} are blocked")]
    BlockedPrefix { prefix: String },
}

/// Visual separators (RFC 3966) that are dropped before anything else.
fn is_separator(character: char) -> bool {
    matches!(character, ' ' | '-' | '.' | '(' | ')')
}

/// A phone number as caller IDs are kept and matched (digits, no `+`), from what an operator,
/// a reseller or a customer typed: separators dropped, an optional leading `+`, 6-20 digits (the shortest numbers in use with their country code have 7).
/// `None` for anything else. The switch reads a SIP caller ID to the same digits.
pub fn caller_id_digits(typed: &str) -> Option<String> {
    let typed = typed.trim();
    let typed = typed.strip_prefix('+').unwrap_or(typed);
    let digits: String = typed.chars().filter(|c| !is_separator(*c)).collect();
    let valid = (6..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then_some(digits)
}

/// The E.164 digits (without `+`) for what the caller dialled.
///
/// Separators (space, `-`, `.`, parentheses) are dropped; then an international prefix
/// (longest first) is removed, or a national prefix is replaced by the country code; a
/// number with neither is taken as already international. Blocked prefixes are matched
/// against the result. Any other character (`*`, `#`, letters, a `+` not in front) is refused.
pub fn normalize(dialled: &str, rules: &NumberRules) -> Result<String, NormalizeError> {
    let compact: String = dialled
        .trim()
        .chars()
        .filter(|&character| !is_separator(character))
        .collect();
    if compact.is_empty() {
        return Err(NormalizeError::Empty);
    }
    let number = to_international(&compact, rules)?;
    check_digits(&number)?;
    if let Some(prefix) = blocked_prefix(&number, rules) {
        return Err(NormalizeError::BlockedPrefix {
            prefix: prefix.to_owned(),
        });
    }
    Ok(number)
}

fn to_international(compact: &str, rules: &NumberRules) -> Result<String, NormalizeError> {
    let international = rules
        .international_prefixes
        .iter()
        .filter(|prefix| !prefix.is_empty() && compact.starts_with(prefix.as_str()))
        .max_by_key(|prefix| prefix.len());
    if let Some(prefix) = international {
        return Ok(compact[prefix.len()..].to_owned());
    }
    if let Some(national) = rules.national_prefix.as_deref().filter(|p| !p.is_empty())
        && let Some(rest) = compact.strip_prefix(national)
    {
        let country_code = rules
            .country_code
            .as_deref()
            .ok_or(NormalizeError::NoCountryCode)?;
        return Ok(format!("{country_code}{rest}"));
    }
    Ok(compact.to_owned())
}

fn check_digits(number: &str) -> Result<(), NormalizeError> {
    if let Some(bad) = number.chars().find(|character| !character.is_ascii_digit()) {
        return Err(NormalizeError::BadCharacter(bad));
    }
    if number.is_empty() {
        return Err(NormalizeError::Empty);
    }
    if number.starts_with('0') {
        return Err(NormalizeError::LeadingZero);
    }
    if number.len() > MAX_E164_DIGITS {
        return Err(NormalizeError::TooLong {
            digits: number.len(),
        });
    }
    Ok(())
}

fn blocked_prefix<'rules>(number: &str, rules: &'rules NumberRules) -> Option<&'rules str> {
    rules
        .blocked_prefixes
        .iter()
        .filter(|prefix| !prefix.is_empty() && number.starts_with(prefix.as_str()))
        .max_by_key(|prefix| prefix.len())
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn typed_caller_ids_become_the_digits_the_switch_matches() {
        assert_eq!(
            caller_id_digits(" +44 (20) 7946-0000 ").as_deref(),
            Some("442079460000")
        );
        assert_eq!(caller_id_digits("15550100").as_deref(), Some("15550100"));
        assert_eq!(caller_id_digits("123"), None);
        assert_eq!(caller_id_digits("+1 555"), None);
        assert_eq!(caller_id_digits("12a4567"), None);
        assert_eq!(caller_id_digits("++4420794600"), None);
        assert_eq!(caller_id_digits(&"1".repeat(21)), None);
    }

    fn uk() -> NumberRules {
        NumberRules {
            national_prefix: Some("0".into()),
            country_code: Some("44".into()),
            blocked_prefixes: vec!["44909".into(), "1900".into()],
            ..NumberRules::default()
        }
    }

    #[test]
    fn international_prefixes_are_removed() {
        let rules = uk();
        assert_eq!(normalize("00919812345678", &rules).unwrap(), "919812345678");
        assert_eq!(
            normalize("011919812345678", &rules).unwrap(),
            "919812345678"
        );
        assert_eq!(normalize("+919812345678", &rules).unwrap(), "919812345678");
    }

    #[test]
    fn national_prefix_becomes_the_country_code() {
        assert_eq!(normalize("07700900123", &uk()).unwrap(), "447700900123");
    }

    #[test]
    fn national_number_without_country_code_is_refused() {
        let rules = NumberRules {
            national_prefix: Some("0".into()),
            ..NumberRules::default()
        };
        assert_eq!(
            normalize("07700900123", &rules),
            Err(NormalizeError::NoCountryCode)
        );
    }

    #[test]
    fn number_without_prefix_is_taken_as_international() {
        assert_eq!(normalize("447700900123", &uk()).unwrap(), "447700900123");
    }

    #[test]
    fn separators_are_dropped() {
        assert_eq!(
            normalize(" +44 (20) 7946-0.018 ", &uk()).unwrap(),
            "442079460018"
        );
    }

    #[test]
    fn blocked_premium_prefixes_are_refused_in_any_dialled_form() {
        let rules = uk();
        let blocked = Err(NormalizeError::BlockedPrefix {
            prefix: "44909".into(),
        });
        assert_eq!(normalize("09098790000", &rules), blocked);
        assert_eq!(normalize("+449098790000", &rules), blocked);
        assert_eq!(normalize("00449098790000", &rules), blocked);
        assert!(matches!(
            normalize("0111900555", &rules),
            Err(NormalizeError::BlockedPrefix { .. })
        ));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let rules = uk();
        assert_eq!(normalize("", &rules), Err(NormalizeError::Empty));
        assert_eq!(normalize(" - ", &rules), Err(NormalizeError::Empty));
        assert_eq!(normalize("00", &rules), Err(NormalizeError::Empty));
        assert_eq!(
            normalize("44*77", &rules),
            Err(NormalizeError::BadCharacter('*'))
        );
        assert_eq!(
            normalize("4477#", &rules),
            Err(NormalizeError::BadCharacter('#'))
        );
        assert_eq!(
            normalize("44+77", &rules),
            Err(NormalizeError::BadCharacter('+'))
        );
        assert_eq!(
            normalize("abc", &rules),
            Err(NormalizeError::BadCharacter('a'))
        );
        assert_eq!(
            normalize("000123", &rules),
            Err(NormalizeError::LeadingZero)
        );
        assert_eq!(
            normalize("+4412345678901234", &rules),
            Err(NormalizeError::TooLong { digits: 16 })
        );
        assert_eq!(normalize("+441234567890123", &rules).unwrap().len(), 15);
    }

    proptest! {
        #[test]
        fn output_is_short_e164_digits_and_stable(dialled in "[0-9+ #*()-]{0,20}") {
            let rules = uk();
            if let Ok(number) = normalize(&dialled, &rules) {
                prop_assert!(number.bytes().all(|byte| byte.is_ascii_digit()));
                prop_assert!(!number.is_empty() && number.len() <= MAX_E164_DIGITS);
                prop_assert!(!number.starts_with('0'));
                prop_assert_eq!(normalize(&number, &rules), Ok(number.clone()));
                prop_assert_eq!(normalize(&format!("+{number}"), &rules), Ok(number));
            }
        }
    }
}
