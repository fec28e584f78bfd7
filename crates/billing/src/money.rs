//! Exact decimal money and its integer micro-unit form at rest.

use std::fmt;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Micro-units in one currency unit: the ledger stores `amount × 1_000_000` as an `i64`.
pub const MICROS_PER_UNIT: i64 = 1_000_000;

/// The largest number of decimal places a tariff may round to: a rounded total always
/// converts to whole micro-units.
pub const MAX_DECIMAL_PLACES: u32 = 6;

/// Errors from money conversions and arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount {0} does not fit in i64 micro-units")]
    Overflow(Decimal),
    #[error("amount {0} has a fraction smaller than one micro-unit")]
    SubMicro(Decimal),
    #[error("arithmetic overflow")]
    ArithmeticOverflow,
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("invalid currency code {0:?}: expected three ASCII letters")]
    InvalidCurrency(String),
}

/// An ISO-4217-style currency code: three ASCII letters, stored upper-case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// US dollars, the default of [`crate::TariffSettings`].
    pub const USD: Currency = Currency(*b"USD");
    /// Euros.
    pub const EUR: Currency = Currency(*b"EUR");

    /// Parses a three-letter code; lower case is accepted and upper-cased.
    pub fn new(code: &str) -> Result<Currency, MoneyError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::InvalidCurrency(code.to_owned()));
        }
        Ok(Currency([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    /// Digits after the point of the currency's smallest unit (what card payment providers
    /// count in): 0 for the currencies that have no minor unit in ISO 4217 use, 3 for the
    /// dinars with fils, else 2.
    pub fn minor_unit_digits(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }

    /// An amount in micro-units as a count of the currency's smallest unit; `None` when it has
    /// a finer fraction (a payment provider could not charge it exactly).
    pub fn micros_to_minor_units(&self, micros: i64) -> Option<i64> {
        let per_unit = 10_i64.pow(6 - self.minor_unit_digits());
        (micros % per_unit == 0).then_some(micros / per_unit)
    }

    /// A count of the currency's smallest unit in micro-units.
    pub fn minor_units_to_micros(&self, minor: i64) -> Option<i64> {
        minor.checked_mul(10_i64.pow(6 - self.minor_unit_digits()))
    }

    /// The code as text, e.g. `"USD"`.
    pub fn as_str(&self) -> &str {
        // The constructor only admits ASCII letters, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Currency::new(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> String {
        currency.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Currency({})", self.as_str())
    }
}

/// An exact decimal amount in a currency. Serialized as `{"amount": "1.23", "currency": "USD"}`
/// (the amount is a string so no JSON reader turns it into a float).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Money {
        Money { amount, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money::new(Decimal::ZERO, currency)
    }

    /// Exact for every `i64`.
    pub fn from_micros(micros: i64, currency: Currency) -> Money {
        Money::new(Decimal::new(micros, 6), currency)
    }

    /// Exact conversion to micro-units; refuses amounts that are too large or that carry a
    /// fraction of a micro-unit (never rounds silently).
    pub fn to_micros(&self) -> Result<i64, MoneyError> {
        let scaled = self
            .amount
            .checked_mul(Decimal::from(MICROS_PER_UNIT))
            .ok_or(MoneyError::Overflow(self.amount))?;
        if !scaled.fract().is_zero() {
            return Err(MoneyError::SubMicro(self.amount));
        }
        scaled.to_i64().ok_or(MoneyError::Overflow(self.amount))
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::ArithmeticOverflow)?;
        Ok(Money::new(amount, self.currency))
    }

    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::ArithmeticOverflow)?;
        Ok(Money::new(amount, self.currency))
    }

    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    /// The crate's single rounding rule: `decimal_places` (at most 6), midpoint away from zero
    /// ("half-up" for the non-negative amounts rating produces). Used once per call, on the
    /// total; see the crate documentation.
    pub fn rounded(&self, decimal_places: u32) -> Money {
        Money::new(round_amount(self.amount, decimal_places), self.currency)
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

/// See [`Money::rounded`].
pub(crate) fn round_amount(amount: Decimal, decimal_places: u32) -> Decimal {
    amount.round_dp_with_strategy(
        decimal_places.min(MAX_DECIMAL_PLACES),
        RoundingStrategy::MidpointAwayFromZero,
    )
}

impl fmt::Display for Money {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_follow_the_currency() {
        let usd = Currency::USD;
        assert_eq!(usd.micros_to_minor_units(12_340_000), Some(1234));
        assert_eq!(usd.micros_to_minor_units(12_345_000), None);
        assert_eq!(usd.minor_units_to_micros(1234), Some(12_340_000));
        let yen = Currency::new("jpy").unwrap();
        assert_eq!(yen.micros_to_minor_units(500_000_000), Some(500));
        assert_eq!(yen.micros_to_minor_units(500_500_000), None);
        assert_eq!(
            Currency::new("KWD")
                .unwrap()
                .micros_to_minor_units(1_250_000),
            Some(1250)
        );
    }
    use rust_decimal_macros::dec;

    #[test]
    fn micros_round_trip_at_extremes() {
        for micros in [i64::MIN, -1, 0, 1, 999_999, 1_000_000, i64::MAX] {
            let money = Money::from_micros(micros, Currency::USD);
            assert_eq!(money.to_micros(), Ok(micros));
        }
    }

    #[test]
    fn sub_micro_and_overflow_are_errors() {
        let tiny = Money::new(dec!(0.0000001), Currency::USD);
        assert_eq!(tiny.to_micros(), Err(MoneyError::SubMicro(dec!(0.0000001))));
        let huge = Money::new(dec!(10000000000000), Currency::USD);
        assert!(matches!(huge.to_micros(), Err(MoneyError::Overflow(_))));
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        let money = Money::new(dec!(0.00005), Currency::USD);
        assert_eq!(money.rounded(4).amount, dec!(0.0001));
        let money = Money::new(dec!(0.00015), Currency::USD);
        assert_eq!(money.rounded(4).amount, dec!(0.0002));
        let money = Money::new(dec!(0.000049999), Currency::USD);
        assert_eq!(money.rounded(4).amount, dec!(0.0000));
    }

    #[test]
    fn currency_codes_are_validated_and_serialized_as_text() {
        assert_eq!(Currency::new("eur"), Ok(Currency::EUR));
        assert!(Currency::new("EURO").is_err());
        assert!(Currency::new("E1R").is_err());
        let json = serde_json::to_string(&Money::new(dec!(1.50), Currency::EUR)).unwrap();
        assert_eq!(json, r#"{"amount":"1.50","currency":"EUR"}"#);
        let back: Money = serde_json::from_str(&json).unwrap();
        assert_eq!(back.amount, dec!(1.5));
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1","currency":"X"}"#).is_err());
    }

    #[test]
    fn currency_mismatch_is_refused() {
        let usd = Money::new(dec!(1), Currency::USD);
        let eur = Money::new(dec!(1), Currency::EUR);
        assert!(matches!(
            usd.checked_add(&eur),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(usd.checked_sub(&usd).unwrap().amount, dec!(0));
    }
}
