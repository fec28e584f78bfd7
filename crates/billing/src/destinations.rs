//! Which destinations a tariff or an account may call (toll fraud: a card sold for calls to
//! Mexico should not reach premium-rate numbers elsewhere).
//!
//! The rule: among the prefixes of both lists that match the number, the longest decides; a
//! denied one refuses, an allowed one permits. When nothing matches, the number is permitted
//! only if the allow-list is empty. So `allowed = ["52"]` with `denied = ["52900"]` reaches
//! Mexico except its 900 numbers, and `denied = ["1900"]` alone blocks one range.

use serde::{Deserialize, Serialize};

use crate::deck::MAX_PREFIX_DIGITS;
use crate::tariff::TariffError;

/// Allowed and denied destination prefixes (E.164 digits, no `+`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationPolicy {
    pub allowed: Vec<String>,
    pub denied: Vec<String>,
}

/// The most prefixes one list may hold (a policy is checked on every authorization).
pub const MAX_POLICY_PREFIXES: usize = 1000;

impl DestinationPolicy {
    /// No list: every destination the tariff rates is permitted.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty() && self.denied.is_empty()
    }

    /// Whether `number` (E.164 digits) may be called.
    pub fn permits(&self, number: &str) -> bool {
        let longest = |prefixes: &[String]| {
            prefixes
                .iter()
                .filter(|prefix| number.starts_with(prefix.as_str()))
                .map(String::len)
                .max()
        };
        match (longest(&self.allowed), longest(&self.denied)) {
            (_, None) if self.allowed.is_empty() => true,
            (allowed, None) => allowed.is_some(),
            (None, Some(_)) => false,
            (Some(allowed), Some(denied)) => allowed > denied,
        }
    }

    /// Prefixes are 1 to 15 digits; a prefix in both lists is ambiguous and refused.
    pub fn validate(&self) -> Result<(), TariffError> {
        check_prefixes("allowed", &self.allowed)?;
        check_prefixes("denied", &self.denied)?;
        if let Some(both) = self
            .allowed
            .iter()
            .find(|prefix| self.denied.contains(prefix))
        {
            return Err(TariffError::Invalid {
                field: "destinations",
                reason: format!("prefix {both} is both allowed and denied"),
            });
        }
        Ok(())
    }

    /// Reads a comma-separated list of prefixes (`"1900, 44"`); a leading `+` is dropped.
    pub fn parse_list(text: &str) -> Vec<String> {
        text.split(',')
            .map(|prefix| prefix.trim().trim_start_matches('+').to_owned())
            .filter(|prefix| !prefix.is_empty())
            .collect()
    }
}

fn check_prefixes(field: &'static str, prefixes: &[String]) -> Result<(), TariffError> {
    if prefixes.len() > MAX_POLICY_PREFIXES {
        return Err(TariffError::Invalid {
            field,
            reason: format!("at most {MAX_POLICY_PREFIXES} prefixes"),
        });
    }
    for prefix in prefixes {
        let digits = !prefix.is_empty() && prefix.bytes().all(|byte| byte.is_ascii_digit());
        if !digits || prefix.len() > MAX_PREFIX_DIGITS {
            return Err(TariffError::Invalid {
                field,
                reason: format!("{prefix:?} is not a prefix of 1 to {MAX_PREFIX_DIGITS} digits"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], denied: &[&str]) -> DestinationPolicy {
        DestinationPolicy {
            allowed: allowed.iter().map(|p| p.to_string()).collect(),
            denied: denied.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn an_empty_policy_permits_everything() {
        assert!(policy(&[], &[]).permits("4420"));
    }

    #[test]
    fn the_longest_matching_prefix_decides() {
        let mexico = policy(&["52"], &["52900"]);
        assert!(mexico.permits("5215512345678"));
        assert!(!mexico.permits("52900123456"));
        assert!(!mexico.permits("4420123"));
        let open_but_premium = policy(&["19005"], &["1900"]);
        assert!(open_but_premium.permits("19005550100"));
        assert!(!open_but_premium.permits("19001234567"));
        assert!(!open_but_premium.permits("12125550100"));
        let deny_only = policy(&[], &["1900"]);
        assert!(deny_only.permits("12125550100"));
        assert!(!deny_only.permits("19001234567"));
    }

    #[test]
    fn bad_prefixes_are_refused_by_name() {
        assert!(policy(&["4x"], &[]).validate().is_err());
        assert!(policy(&[], &[""]).validate().is_err());
        assert!(policy(&["44"], &["44"]).validate().is_err());
        assert!(policy(&["44"], &["4490"]).validate().is_ok());
        assert_eq!(
            DestinationPolicy::parse_list(" +1900, 44 ,,"),
            vec!["1900".to_string(), "44".to_string()]
        );
    }
}
