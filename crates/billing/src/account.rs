//! Account-level charges: pure functions the ledger calls with instants as epoch milliseconds.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};
use crate::tariff::{TariffError, check_amount};

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 86_400_000;

/// A period of whole hours or days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Hours(u32),
    Days(u32),
}

impl Interval {
    pub fn as_ms(self) -> i64 {
        match self {
            Interval::Hours(hours) => i64::from(hours) * MS_PER_HOUR,
            Interval::Days(days) => i64::from(days) * MS_PER_DAY,
        }
    }
}

/// A fee charged every `every`, counted from an anchor instant (usually the first use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceFee {
    pub amount: Decimal,
    pub every: Interval,
}

/// When a card stops working. With both set, the earlier instant wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    /// Days after the first use.
    #[serde(default)]
    pub days_after_first_use: Option<u32>,
    /// A fixed instant (the caller turns a calendar date in the card's time zone into epoch ms).
    #[serde(default)]
    pub at_ms: Option<i64>,
}

/// Account (card) fees and expiry. Stored by the ledger as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPlan {
    pub currency: Currency,
    #[serde(default)]
    pub activation_fee: Option<Decimal>,
    #[serde(default)]
    pub maintenance: Option<MaintenanceFee>,
    #[serde(default)]
    pub expiry: Expiry,
}

/// Maintenance fees due in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceDue {
    /// Number of fee instants in `(after_ms, up_to_ms]`.
    pub count: u64,
    pub amount: Money,
    /// The first fee instant after `up_to_ms`.
    pub next_due_ms: i64,
}

impl AccountPlan {
    pub fn validate(&self) -> Result<(), TariffError> {
        if let Some(fee) = self.activation_fee {
            check_amount("activation_fee", fee)?;
        }
        if let Some(maintenance) = &self.maintenance {
            check_amount("maintenance.amount", maintenance.amount)?;
            if maintenance.every.as_ms() <= 0 {
                return Err(TariffError::Invalid {
                    field: "maintenance.every",
                    reason: "must be positive".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The activation fee, charged once: due only when the card has never been used.
    /// Pass it to the first call as a [`crate::AccountFee`] so talk time accounts for it.
    pub fn activation_fee_due(&self, first_used_at_ms: Option<i64>) -> Option<Money> {
        match (first_used_at_ms, self.activation_fee) {
            (None, Some(fee)) if fee > Decimal::ZERO => Some(Money::new(fee, self.currency)),
            _ => None,
        }
    }

    /// Maintenance fees fall due at `anchor_ms + k × every` for k = 1, 2, …; this counts
    /// those in `(after_ms, up_to_ms]`, so consecutive windows never count one twice.
    /// The ledger passes the last instant it charged up to as `after_ms`.
    /// `Ok(None)` when the plan has no maintenance fee.
    pub fn maintenance_due(
        &self,
        anchor_ms: i64,
        after_ms: i64,
        up_to_ms: i64,
    ) -> Result<Option<MaintenanceDue>, TariffError> {
        self.validate()?;
        let Some(maintenance) = self.maintenance.as_ref() else {
            return Ok(None);
        };
        let period = maintenance.every.as_ms();
        // Number of fee instants at or before `instant` (k ≥ 1); i128 so no input overflows.
        let period = i128::from(period);
        let due_by = |instant: i64| -> i128 {
            let elapsed = i128::from(instant) - i128::from(anchor_ms);
            if elapsed < 0 { 0 } else { elapsed / period }
        };
        let count = (due_by(up_to_ms) - due_by(after_ms.max(anchor_ms))).max(0);
        let count = u64::try_from(count).unwrap_or(u64::MAX);
        let next_due = i128::from(anchor_ms) + (due_by(up_to_ms) + 1) * period;
        let next_due_ms = i64::try_from(next_due).unwrap_or(i64::MAX);
        // Validated amount ≤ 10^6 times count < 2^63: far inside Decimal's range.
        Ok(Some(MaintenanceDue {
            count,
            amount: Money::new(maintenance.amount * Decimal::from(count), self.currency),
            next_due_ms,
        }))
    }

    /// When the card expires, if it does (`None` for a never-used card with only a
    /// first-use rule).
    pub fn expires_at_ms(&self, first_used_at_ms: Option<i64>) -> Option<i64> {
        let after_first_use = match (self.expiry.days_after_first_use, first_used_at_ms) {
            (Some(days), Some(first_use)) => {
                Some(first_use.saturating_add(i64::from(days) * MS_PER_DAY))
            }
            _ => None,
        };
        match (after_first_use, self.expiry.at_ms) {
            (Some(left), Some(right)) => Some(left.min(right)),
            (left, right) => left.or(right),
        }
    }

    /// Expired at `now_ms` (the expiry instant itself counts as expired).
    pub fn is_expired(&self, first_used_at_ms: Option<i64>, now_ms: i64) -> bool {
        self.expires_at_ms(first_used_at_ms)
            .is_some_and(|expiry| now_ms >= expiry)
    }
}

/// The instants `anchor_ms + k × period_ms` (k = 1, 2, ...) in `(after_ms, up_to_ms]`, oldest
/// first, at most `max`: the maintenance periods a scheduler books, one posting each, so a
/// switch that was down catches up with one charge per period and never charges one twice.
pub fn due_instants(
    anchor_ms: i64,
    period_ms: i64,
    after_ms: i64,
    up_to_ms: i64,
    max: usize,
) -> Vec<i64> {
    if period_ms <= 0 || up_to_ms <= after_ms {
        return Vec::new();
    }
    let (anchor, period) = (i128::from(anchor_ms), i128::from(period_ms));
    let index_at = |instant: i64| -> i128 {
        let elapsed = i128::from(instant) - anchor;
        if elapsed < 0 { 0 } else { elapsed / period }
    };
    let (first, last) = (index_at(after_ms.max(anchor_ms)) + 1, index_at(up_to_ms));
    (first..=last)
        .take(max)
        .filter_map(|k| i64::try_from(anchor + k * period).ok())
        .collect()
}

/// A free-minute package: seconds usable on destinations starting with one of `prefixes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeMinutePackage {
    pub name: String,
    pub prefixes: Vec<String>,
}

impl FreeMinutePackage {
    /// Whether the package covers a dialled number (leading `+` ignored).
    pub fn applies_to(&self, number: &str) -> bool {
        let number = number.strip_prefix('+').unwrap_or(number);
        self.prefixes
            .iter()
            .any(|prefix| !prefix.is_empty() && number.starts_with(prefix.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn due_instants_count_each_period_once_across_windows() {
        // Every 10 from 100: 110, 120, 130 in (100, 135]; then 140 in (130, 145].
        assert_eq!(due_instants(100, 10, 100, 135, 99), vec![110, 120, 130]);
        assert_eq!(due_instants(100, 10, 130, 145, 99), vec![140]);
        assert_eq!(due_instants(100, 10, 145, 149, 99), Vec::<i64>::new());
        assert_eq!(
            due_instants(100, 10, 0, 1_000, 3),
            vec![110, 120, 130],
            "capped"
        );
        assert!(due_instants(100, 0, 0, 1_000, 3).is_empty());
    }

    const HOUR: i64 = MS_PER_HOUR;
    const DAY: i64 = MS_PER_DAY;

    fn plan() -> AccountPlan {
        AccountPlan {
            currency: Currency::USD,
            activation_fee: Some(dec!(0.39)),
            maintenance: Some(MaintenanceFee {
                amount: dec!(0.49),
                every: Interval::Days(7),
            }),
            expiry: Expiry {
                days_after_first_use: Some(90),
                at_ms: None,
            },
        }
    }

    #[test]
    fn activation_only_before_first_use() {
        assert_eq!(plan().activation_fee_due(None).unwrap().amount, dec!(0.39));
        assert_eq!(plan().activation_fee_due(Some(0)), None);
    }

    /// Hand-computed: weekly 0.49 from day 0; window (day 3, day 22] holds days 7, 14, 21.
    #[test]
    fn weekly_maintenance_counts_each_instant_once() {
        let anchor = 1_700_000_000_000;
        let due = plan()
            .maintenance_due(anchor, anchor + 3 * DAY, anchor + 22 * DAY)
            .unwrap()
            .unwrap();
        assert_eq!(due.count, 3);
        assert_eq!(due.amount.amount, dec!(1.47));
        assert_eq!(due.next_due_ms, anchor + 28 * DAY);
        // The next window starts where this one ended: day 21 is not counted again.
        let next = plan()
            .maintenance_due(anchor, anchor + 22 * DAY, anchor + 28 * DAY)
            .unwrap()
            .unwrap();
        assert_eq!(next.count, 1);
        // Exactly at an instant counts; just before does not.
        let at = plan()
            .maintenance_due(anchor, anchor, anchor + 7 * DAY)
            .unwrap()
            .unwrap();
        assert_eq!(at.count, 1);
        let before = plan()
            .maintenance_due(anchor, anchor, anchor + 7 * DAY - 1)
            .unwrap()
            .unwrap();
        assert_eq!(before.count, 0);
    }

    /// Hand-computed: a 6-hour fee over 25 hours is due at 6, 12, 18 and 24 h.
    #[test]
    fn hourly_maintenance() {
        let mut plan = plan();
        plan.maintenance = Some(MaintenanceFee {
            amount: dec!(0.10),
            every: Interval::Hours(6),
        });
        let due = plan.maintenance_due(0, 0, 25 * HOUR).unwrap().unwrap();
        assert_eq!(due.count, 4);
        assert_eq!(due.amount.amount, dec!(0.40));
        assert_eq!(
            plan.maintenance_due(0, 30 * HOUR, 20 * HOUR)
                .unwrap()
                .unwrap()
                .count,
            0
        );
    }

    #[test]
    fn no_maintenance_and_invalid_plans() {
        let mut plan = plan();
        plan.maintenance = None;
        assert_eq!(plan.maintenance_due(0, 0, DAY), Ok(None));
        plan.maintenance = Some(MaintenanceFee {
            amount: dec!(-1),
            every: Interval::Days(1),
        });
        assert!(plan.maintenance_due(0, 0, DAY).is_err());
        plan.maintenance = Some(MaintenanceFee {
            amount: dec!(1),
            every: Interval::Hours(0),
        });
        assert!(plan.maintenance_due(0, 0, DAY).is_err());
        // Extreme instants do not overflow.
        plan.maintenance = Some(MaintenanceFee {
            amount: dec!(1),
            every: Interval::Hours(1),
        });
        let due = plan
            .maintenance_due(i64::MIN, i64::MIN, i64::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(due.count, u64::MAX / 3_600_000);
        assert_eq!(due.next_due_ms, i64::MAX);
    }

    /// Hand-computed: 90 days after first use, or a fixed date, whichever comes first.
    #[test]
    fn expiry_after_first_use_or_fixed_date() {
        let first_use = 1_000 * DAY;
        let plan = plan();
        assert_eq!(plan.expires_at_ms(None), None);
        assert_eq!(plan.expires_at_ms(Some(first_use)), Some(1_090 * DAY));
        assert!(!plan.is_expired(Some(first_use), 1_090 * DAY - 1));
        assert!(plan.is_expired(Some(first_use), 1_090 * DAY));
        let mut fixed = plan.clone();
        fixed.expiry.at_ms = Some(1_050 * DAY);
        assert_eq!(fixed.expires_at_ms(Some(first_use)), Some(1_050 * DAY));
        assert_eq!(fixed.expires_at_ms(None), Some(1_050 * DAY));
        assert!(fixed.is_expired(None, 1_050 * DAY));
    }

    #[test]
    fn package_prefix_match() {
        let package = FreeMinutePackage {
            name: "India 100".to_owned(),
            prefixes: vec!["91".to_owned(), "880".to_owned()],
        };
        assert!(package.applies_to("+919812345678"));
        assert!(package.applies_to("8801712345678"));
        assert!(!package.applies_to("441234"));
    }

    #[test]
    fn plan_round_trips_as_json() {
        let json = serde_json::to_string(&plan()).unwrap();
        assert_eq!(serde_json::from_str::<AccountPlan>(&json).unwrap(), plan());
    }
}
