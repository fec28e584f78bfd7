//! `Pii<T>`: personal data (PINs, card numbers, phone numbers) that redacts itself.
//!
//! `Debug` and `Display` never print the value, so a `tracing` field or an error message
//! that carries a `Pii` cannot leak it. Code that really needs the value (the ledger
//! comparing a PIN, the SIP layer writing a From header) calls [`Pii::expose`], which is easy
//! to grep for in review.

use std::fmt;

/// A value that must not appear in logs.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pii<T>(T);

impl<T> Pii<T> {
    /// Wraps a value.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value, for the few places that must use it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Pii<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T: AsRef<str>> Pii<T> {
    /// A log-safe hint: the last `keep` characters with the rest masked, as on a receipt
    /// (`****1234`). Phone numbers and card numbers are long enough for this to be safe;
    /// never call it on a PIN.
    pub fn masked_tail(&self, keep: usize) -> String {
        let text = self.0.as_ref();
        let count = text.chars().count();
        let shown = keep.min(count / 2);
        let mut out: String = "*".repeat(count - shown);
        out.extend(text.chars().skip(count - shown));
        out
    }
}

impl<T> fmt::Debug for Pii<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Pii(<redacted>)")
    }
}

impl<T> fmt::Display for Pii<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::Pii;

    #[test]
    fn debug_and_display_do_not_show_the_value() {
        let pin = Pii::new(String::from("4711080815"));
        assert!(!format!("{pin:?}").contains("4711"));
        assert!(!format!("{pin}").contains("4711"));
        assert_eq!(pin.expose(), "4711080815");
    }

    #[test]
    fn masked_tail_shows_at_most_half() {
        assert_eq!(Pii::new("15551234567").masked_tail(4), "*******4567");
        assert_eq!(Pii::new("1234").masked_tail(4), "**34");
        assert_eq!(Pii::new("").masked_tail(4), "");
    }

    #[test]
    fn a_struct_holding_pii_debugs_safely() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Card {
            pin: Pii<String>,
        }
        let card = Card {
            pin: Pii::new("998877".into()),
        };
        assert!(!format!("{card:?}").contains("998877"));
    }
}
