//! Tax profiles: an ordered list of percentage and fixed taxes.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::tariff::{TariffError, check_amount, check_percent};

/// Most taxes a profile may hold.
pub const MAX_TAXES: usize = 16;

/// What one tax adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxKind {
    /// A percentage of the tax base.
    Percent(Decimal),
    /// A fixed amount per charged call.
    Fixed(Decimal),
}

/// One tax of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tax {
    pub name: String,
    pub kind: TaxKind,
    /// A compound percentage tax is computed on the pre-tax subtotal plus every tax listed
    /// before it; a simple one on the pre-tax subtotal only. Ignored for fixed taxes.
    #[serde(default)]
    pub compound: bool,
}

/// Taxes applied in list order to every call with a positive pre-tax subtotal.
///
/// Example: subtotal 10.00, `[5 % simple, 10 % compound, 0.25 fixed]` gives
/// 0.50, then (10.00 + 0.50) × 10 % = 1.05, then 0.25: taxes 1.80.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxProfile {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub taxes: Vec<Tax>,
}

/// A computed tax line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxLine {
    pub name: String,
    pub amount: Decimal,
}

impl TaxProfile {
    pub fn none() -> TaxProfile {
        TaxProfile::default()
    }

    /// At most [`MAX_TAXES`] taxes of at most 100 % each: even all compounding, the taxed
    /// amount stays far inside `Decimal`'s range.
    pub fn validate(&self) -> Result<(), TariffError> {
        if self.taxes.len() > MAX_TAXES {
            return Err(TariffError::Invalid {
                field: "taxes",
                reason: format!("at most {MAX_TAXES} taxes per profile"),
            });
        }
        for tax in &self.taxes {
            match tax.kind {
                TaxKind::Percent(percent) => {
                    check_percent("taxes.percent", percent)?;
                    if percent > Decimal::ONE_HUNDRED {
                        return Err(TariffError::Invalid {
                            field: "taxes.percent",
                            reason: format!("{percent} exceeds 100"),
                        });
                    }
                }
                TaxKind::Fixed(amount) => check_amount("taxes.fixed", amount)?,
            }
        }
        Ok(())
    }

    /// Exact tax lines for a pre-tax subtotal (nothing when the subtotal is zero).
    /// Crate-private: only validated profiles reach it.
    pub(crate) fn apply(&self, subtotal: Decimal) -> Vec<TaxLine> {
        let mut lines = Vec::with_capacity(self.taxes.len());
        if subtotal <= Decimal::ZERO {
            return lines;
        }
        let mut taxes_so_far = Decimal::ZERO;
        for tax in &self.taxes {
            let amount = match tax.kind {
                TaxKind::Percent(percent) => {
                    let base = if tax.compound {
                        subtotal + taxes_so_far
                    } else {
                        subtotal
                    };
                    base * percent / Decimal::ONE_HUNDRED
                }
                TaxKind::Fixed(amount) => amount,
            };
            taxes_so_far += amount;
            lines.push(TaxLine {
                name: tax.name.clone(),
                amount,
            });
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn tax(name: &str, kind: TaxKind, compound: bool) -> Tax {
        Tax {
            name: name.to_owned(),
            kind,
            compound,
        }
    }

    /// Hand-computed: the example in the `TaxProfile` documentation.
    #[test]
    fn simple_then_compound_then_fixed() {
        let profile = TaxProfile {
            name: "example".to_owned(),
            taxes: vec![
                tax("state", TaxKind::Percent(dec!(5)), false),
                tax("federal", TaxKind::Percent(dec!(10)), true),
                tax("911", TaxKind::Fixed(dec!(0.25)), false),
            ],
        };
        let lines = profile.apply(dec!(10.00));
        let amounts: Vec<Decimal> = lines.iter().map(|line| line.amount).collect();
        assert_eq!(amounts, vec![dec!(0.50), dec!(1.05), dec!(0.25)]);
        assert!(profile.apply(Decimal::ZERO).is_empty());
    }

    #[test]
    fn oversized_profiles_are_refused() {
        let many = TaxProfile {
            name: String::new(),
            taxes: vec![tax("t", TaxKind::Percent(dec!(1)), true); MAX_TAXES + 1],
        };
        assert!(many.validate().is_err());
        let steep = TaxProfile {
            name: String::new(),
            taxes: vec![tax("t", TaxKind::Percent(dec!(100.01)), false)],
        };
        assert!(steep.validate().is_err());
        let worst = TaxProfile {
            name: String::new(),
            taxes: vec![tax("t", TaxKind::Percent(dec!(100)), true); MAX_TAXES],
        };
        assert!(worst.validate().is_ok());
        let total: Decimal = worst.apply(dec!(1000000000)).iter().map(|l| l.amount).sum();
        assert_eq!(
            total,
            dec!(1000000000) * Decimal::from((1u64 << MAX_TAXES) - 1)
        );
    }

    #[test]
    fn serde_shape() {
        let json = r#"{"name":"EU","taxes":[{"name":"VAT","kind":{"percent":"21"}}]}"#;
        let profile: TaxProfile = serde_json::from_str(json).unwrap();
        assert_eq!(profile.taxes[0].kind, TaxKind::Percent(dec!(21)));
        assert!(!profile.taxes[0].compound);
    }
}
