//! Per-access-number IVR configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A language the IVR can speak, named by its code (ISO 639-1, or 639-2 where there is no
/// two-letter code). Languages are data: its prompts are `prompts/<code>/*.wav` and its
/// grammar (how numbers, money and durations are said, and its key in the language menu) is
/// `prompts/<code>/language.toml`, loaded into a [`crate::speech::LanguageBook`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language {
    code: [u8; 3],
    length: u8,
}

impl Language {
    pub const ENGLISH: Language = Language {
        code: *b"en\0",
        length: 2,
    };
    pub const SPANISH: Language = Language {
        code: *b"es\0",
        length: 2,
    };

    /// A code of two or three ASCII letters (any case; kept lower-case).
    pub fn from_code(code: &str) -> Option<Self> {
        let bytes = code.as_bytes();
        if !(2..=3).contains(&bytes.len()) || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        let mut stored = [0u8; 3];
        for (slot, byte) in stored.iter_mut().zip(bytes) {
            *slot = byte.to_ascii_lowercase();
        }
        Some(Language {
            code: stored,
            length: bytes.len() as u8,
        })
    }

    /// The code, which is also the directory name under `prompts/`.
    pub fn code(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.code[..usize::from(self.length)]).unwrap_or("??")
    }
}

impl std::fmt::Debug for Language {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.code())
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.code())
    }
}

impl Serialize for Language {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Language::from_code(&code).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{code:?} is not a language code (two or three letters, e.g. \"fr\")"
            ))
        })
    }
}

/// How the caller is warned that the credit is about to run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// A short beep mixed over the conversation.
    Beep,
    /// The `credit_warning` prompt ("You have one minute remaining.").
    Prompt,
}

/// The IVR behaviour of one access number. Durations are milliseconds so the TOML stays plain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IvrConfig {
    /// Languages offered, the first being the default. More than one plays a language menu.
    pub languages: Vec<Language>,
    /// Shortest PIN accepted; shorter entries count as a failed try without a lookup.
    pub pin_min_length: usize,
    /// Longest PIN; entry ends by itself when this many digits are in.
    pub pin_max_length: usize,
    /// Failed PIN tries before goodbye and hang-up.
    pub max_pin_tries: u32,
    /// Prompts replayed for silence (no digit at all) before giving up.
    pub max_no_input: u32,
    /// Destination entries refused in a row (invalid, blocked, no credit) before goodbye.
    pub max_destination_tries: u32,
    /// Silence allowed after a prompt ends before the first digit.
    pub first_digit_timeout_ms: u64,
    /// Silence allowed between digits; it ends PIN and destination entry like `#`.
    pub inter_digit_timeout_ms: u64,
    /// Longest destination as dialled (with its `00`/`011` prefix); entry ends by itself there.
    pub max_destination_length: usize,
    /// Say "you have twelve dollars and fifty cents" after authentication.
    pub announce_balance: bool,
    /// Say "you can talk for thirty-four minutes" before connecting.
    pub announce_talk_time: bool,
    /// How long before the talk-time limit the warning plays.
    pub warning_lead_ms: u64,
    /// Beep or prompt for the warning.
    pub warning: WarningKind,
    /// Recognise registered callers by caller ID (ANI) and skip the PIN.
    pub ani_authentication: bool,
    /// How long the carrier may ring before the attempt is cancelled as unanswered.
    pub no_answer_timeout_ms: u64,
    /// How long a lookup or authorization may take before the engine gives up on it.
    pub request_timeout_ms: u64,
    /// Longest the goodbye prompt may take before the caller is hung up anyway.
    pub farewell_timeout_ms: u64,
    /// Keys that end the carrier leg during a call and return the caller to destination
    /// entry for another call on the same card (seed 001). `None` disables it.
    pub end_leg_digits: Option<String>,
    /// DID forwarding (seed 003): a caller recognised by caller ID whose account has a
    /// forward destination is connected straight to it, with no prompts beyond the optional
    /// balance and talk-time announcements, and the call ends with the carrier leg. Everyone
    /// else gets the normal IVR. Needs `ani_authentication`.
    pub forwarding: bool,
    /// With `forwarding`: play the welcome before connecting. When off, nothing is played
    /// while the caller ID is looked up, and callers who fall back to the IVR hear the welcome
    /// in front of its first prompt instead.
    pub forwarding_welcome: bool,
    /// Tell a caller whose PIN is right that the card is in use or expired. Off (the
    /// default), such a PIN gets the same "invalid PIN" as a wrong one and counts as a failed
    /// try, so a guesser never learns that a PIN exists; the ledger's log and the CDR keep the
    /// real reason for the operator.
    pub reveal_card_state: bool,
    /// A balance line (issue 21): once the caller is known (PIN or caller ID) the balance and
    /// the last call's cost and length are announced, then goodbye; no destination is asked.
    pub balance_only: bool,
    /// A recharge line (issue 21): once the caller is known, a voucher code is asked; its
    /// value is added, the new balance said, then goodbye.
    pub recharge_only: bool,
    /// A retail recharge line (issue 16): a reseller's agent keys its agent PIN (never
    /// recognised by caller ID), then a customer's number, an amount in cents and 1 to
    /// confirm; the amount moves from the reseller's credit to the customer, once.
    pub retail: bool,
    /// Remember the language a caller chooses (on the card and under the caller ID) and
    /// skip the language menu on their next call.
    pub remember_language: bool,
    /// Service codes at the destination prompt: `#` alone redials the last number, a lone
    /// key `1`-`9` calls that speed dial, `*1`-`*9` stores the last number under that key.
    pub speed_dial: bool,
    /// `*0` at the destination prompt recharges with a voucher.
    pub voucher_recharge: bool,
    /// `*00` at the destination prompt changes a refillable card's PIN (PIN callers only: a
    /// caller ID can be spoofed, a PIN just keyed cannot).
    pub pin_change: bool,
    /// `*01` at the destination prompt reads out a one-time code that logs the caller into
    /// the customer portal with the number they call from.
    pub portal_code: bool,
}

impl Default for IvrConfig {
    fn default() -> Self {
        Self {
            languages: vec![Language::ENGLISH],
            pin_min_length: 4,
            pin_max_length: 12,
            max_pin_tries: 3,
            max_no_input: 3,
            max_destination_tries: 3,
            first_digit_timeout_ms: 10_000,
            inter_digit_timeout_ms: 5_000,
            max_destination_length: 20,
            announce_balance: true,
            announce_talk_time: true,
            warning_lead_ms: 60_000,
            warning: WarningKind::Beep,
            ani_authentication: true,
            no_answer_timeout_ms: 60_000,
            request_timeout_ms: 10_000,
            farewell_timeout_ms: 15_000,
            end_leg_digits: Some("**".into()),
            forwarding: false,
            forwarding_welcome: false,
            reveal_card_state: false,
            balance_only: false,
            recharge_only: false,
            retail: false,
            remember_language: true,
            speed_dial: true,
            voucher_recharge: true,
            pin_change: true,
            portal_code: true,
        }
    }
}

/// An [`IvrConfig`] that cannot drive a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the IVR offers no language")]
    NoLanguage,
    #[error("language {0} is offered twice")]
    DuplicateLanguage(Language),
    #[error("language {0} has no grammar (prompts/{0}/language.toml)")]
    UnknownLanguage(Language),
    #[error("languages {0} and {1} both use menu key {2}")]
    SameMenuDigit(Language, Language, char),
    #[error("PIN length bounds {min}..={max} are invalid (need 1 <= min <= max)")]
    PinLength { min: usize, max: usize },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("end_leg_digits must be one or more of 0-9, * and #")]
    EndLegDigits,
    #[error("forwarding recognises callers by caller ID and needs ani_authentication")]
    ForwardingWithoutAni,
    #[error("an access number is at most one of a balance line, a recharge line and forwarding")]
    OneSpecialLine,
}

impl IvrConfig {
    /// Checks the bounds a call relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let Some(_) = self.languages.first() else {
            return Err(ConfigError::NoLanguage);
        };
        for (index, language) in self.languages.iter().enumerate() {
            if self.languages[..index].contains(language) {
                return Err(ConfigError::DuplicateLanguage(*language));
            }
        }
        if self.pin_min_length == 0 || self.pin_min_length > self.pin_max_length {
            return Err(ConfigError::PinLength {
                min: self.pin_min_length,
                max: self.pin_max_length,
            });
        }
        if let Some(digits) = &self.end_leg_digits
            && (digits.is_empty()
                || !digits
                    .chars()
                    .all(|key| matches!(key, '0'..='9' | '*' | '#')))
        {
            return Err(ConfigError::EndLegDigits);
        }
        if self.forwarding && !self.ani_authentication {
            return Err(ConfigError::ForwardingWithoutAni);
        }
        let special = [
            self.balance_only,
            self.recharge_only,
            self.forwarding,
            self.retail,
        ];
        if special.iter().filter(|on| **on).count() > 1 {
            return Err(ConfigError::OneSpecialLine);
        }
        let positive = [
            ("max_pin_tries", u64::from(self.max_pin_tries)),
            ("max_no_input", u64::from(self.max_no_input)),
            (
                "max_destination_tries",
                u64::from(self.max_destination_tries),
            ),
            ("max_destination_length", self.max_destination_length as u64),
            ("first_digit_timeout_ms", self.first_digit_timeout_ms),
            ("inter_digit_timeout_ms", self.inter_digit_timeout_ms),
            ("no_answer_timeout_ms", self.no_answer_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("farewell_timeout_ms", self.farewell_timeout_ms),
        ];
        match positive.into_iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(ConfigError::Zero(name)),
            None => Ok(()),
        }
    }

    /// Every language offered has a grammar in `book`, and each its own menu key.
    pub fn check_languages(&self, book: &crate::speech::LanguageBook) -> Result<(), ConfigError> {
        let mut keys: Vec<(char, Language)> = Vec::new();
        for &language in &self.languages {
            let grammar = book
                .grammar(language)
                .ok_or(ConfigError::UnknownLanguage(language))?;
            let key = grammar.menu_digit();
            if let Some((_, other)) = keys.iter().find(|(taken, _)| *taken == key) {
                return Err(ConfigError::SameMenuDigit(*other, language, key));
            }
            keys.push((key, language));
        }
        Ok(())
    }

    /// The default language (the first offered).
    pub fn default_language(&self) -> Language {
        self.languages.first().copied().unwrap_or(Language::ENGLISH)
    }

    pub(crate) fn first_digit_timeout(&self) -> Duration {
        Duration::from_millis(self.first_digit_timeout_ms)
    }

    pub(crate) fn inter_digit_timeout(&self) -> Duration {
        Duration::from_millis(self.inter_digit_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(IvrConfig::default().validate(), Ok(()));
    }

    #[test]
    fn invalid_configs_are_named() {
        let empty = IvrConfig {
            languages: vec![],
            ..IvrConfig::default()
        };
        assert_eq!(empty.validate(), Err(ConfigError::NoLanguage));
        let twice = IvrConfig {
            languages: vec![Language::SPANISH, Language::ENGLISH, Language::SPANISH],
            ..IvrConfig::default()
        };
        assert_eq!(
            twice.validate(),
            Err(ConfigError::DuplicateLanguage(Language::SPANISH))
        );
        let pins = IvrConfig {
            pin_min_length: 8,
            pin_max_length: 6,
            ..IvrConfig::default()
        };
        assert_eq!(
            pins.validate(),
            Err(ConfigError::PinLength { min: 8, max: 6 })
        );
        let tries = IvrConfig {
            max_pin_tries: 0,
            ..IvrConfig::default()
        };
        assert_eq!(tries.validate(), Err(ConfigError::Zero("max_pin_tries")));
        let keys = IvrConfig {
            end_leg_digits: Some("*A".into()),
            ..IvrConfig::default()
        };
        assert_eq!(keys.validate(), Err(ConfigError::EndLegDigits));
        let forwarding = IvrConfig {
            forwarding: true,
            ani_authentication: false,
            ..IvrConfig::default()
        };
        assert_eq!(
            forwarding.validate(),
            Err(ConfigError::ForwardingWithoutAni)
        );
        let forwarding = IvrConfig {
            forwarding: true,
            ..IvrConfig::default()
        };
        assert_eq!(forwarding.validate(), Ok(()));
    }

    #[test]
    fn deserializes_with_defaults_for_missing_fields() {
        let config: IvrConfig = serde_json::from_str(
            r#"{"languages": ["es", "en"], "warning": "prompt", "end_leg_digits": null}"#,
        )
        .unwrap();
        assert_eq!(config.languages, vec![Language::SPANISH, Language::ENGLISH]);
        assert_eq!(config.warning, WarningKind::Prompt);
        assert_eq!(config.end_leg_digits, None);
        assert_eq!(config.max_pin_tries, 3);
        assert_eq!(config.warning_lead_ms, 60_000);
        assert_eq!(config.default_language(), Language::SPANISH);
        assert!(!config.forwarding);
        assert!(!config.forwarding_welcome);
        let forwarding: IvrConfig =
            serde_json::from_str(r#"{"forwarding": true, "forwarding_welcome": true}"#).unwrap();
        assert!(forwarding.forwarding && forwarding.forwarding_welcome);
        assert!(serde_json::from_str::<IvrConfig>(r#"{"pin_tries": 3}"#).is_err());
        assert!(serde_json::from_str::<IvrConfig>(r#"{"languages": ["f1"]}"#).is_err());
        let french: IvrConfig = serde_json::from_str(r#"{"languages": ["FR"]}"#).unwrap();
        assert_eq!(french.languages[0].code(), "fr");
    }

    #[test]
    fn language_codes_are_two_or_three_letters() {
        assert_eq!(Language::from_code("ES"), Some(Language::SPANISH));
        assert_eq!(
            Language::from_code("fil").map(|l| l.to_string()),
            Some("fil".into())
        );
        for bad in ["", "e", "engl", "e1", "é"] {
            assert_eq!(Language::from_code(bad), None, "{bad}");
        }
    }
}
