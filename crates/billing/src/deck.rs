//! Rate decks: longest-prefix matching over 100k+ destinations.
//!
//! A deck is immutable once built. Reloading means building a new deck off the call path and
//! swapping an `Arc<RateDeck>` (for example `RwLock<Arc<RateDeck>>` held by the shell: readers
//! clone the `Arc` and drop the lock at once). Calls already rated keep their own
//! [`crate::RatingContext`], which owns its values, so a reload never changes a running call's price.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;

use crate::tariff::{Rate, TariffError, TariffSettings};
use crate::time::{Date, LocalStart};

/// Longest prefix the index accepts; longer dialled numbers are matched on their first digits.
pub const MAX_PREFIX_DIGITS: usize = 17;

/// Errors while building a deck.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeckError {
    #[error("prefix {0:?} must be 1 to 17 digits")]
    InvalidPrefix(String),
    #[error("prefix {0:?} has two rates valid on the same day")]
    OverlappingValidity(String),
    #[error("rate for prefix {prefix:?}: {error}")]
    InvalidRate { prefix: String, error: TariffError },
    #[error("tariff settings: {0}")]
    InvalidSettings(TariffError),
}

/// All rate versions of one prefix (differing by validity dates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destination {
    pub prefix: String,
    pub rates: Vec<Rate>,
}

impl Destination {
    pub fn rate_on(&self, date: Date) -> Option<&Rate> {
        self.rates.iter().find(|rate| rate.is_valid_on(date))
    }
}

/// An immutable tariff: settings plus destinations indexed by prefix.
///
/// The index is one hash map keyed by (prefix length, prefix value); a lookup computes the
/// dialled number's prefix values digit by digit and probes only the lengths present in the
/// deck, longest first: at most 17 probes, no allocation.
#[derive(Debug, Clone)]
pub struct RateDeck {
    settings: TariffSettings,
    destinations: Vec<Destination>,
    index: HashMap<u64, u32, BuildHasherDefault<PrefixHasher>>,
    /// Bit `n` set when some prefix has `n` digits.
    lengths_present: u32,
}

impl RateDeck {
    /// Validates every rate and builds the index. Several rates may share a prefix when
    /// their validity periods do not overlap.
    pub fn build(
        settings: TariffSettings,
        rates: impl IntoIterator<Item = Rate>,
    ) -> Result<RateDeck, DeckError> {
        settings.validate().map_err(DeckError::InvalidSettings)?;
        let mut destinations: Vec<Destination> = Vec::new();
        let mut index: HashMap<u64, u32, BuildHasherDefault<PrefixHasher>> = HashMap::default();
        let mut lengths_present = 0u32;
        for rate in rates {
            let key = prefix_key(&rate.prefix)
                .ok_or_else(|| DeckError::InvalidPrefix(rate.prefix.clone()))?;
            rate.validate().map_err(|error| DeckError::InvalidRate {
                prefix: rate.prefix.clone(),
                error,
            })?;
            lengths_present |= 1 << rate.prefix.len();
            match index.get(&key) {
                Some(&position) => {
                    let destination = &mut destinations[position as usize];
                    if destination.rates.iter().any(|other| overlaps(other, &rate)) {
                        return Err(DeckError::OverlappingValidity(rate.prefix));
                    }
                    destination.rates.push(rate);
                }
                None => {
                    // u32 positions: a deck of four billion prefixes is out of scope.
                    let position = u32::try_from(destinations.len())
                        .map_err(|_| DeckError::InvalidPrefix(rate.prefix.clone()))?;
                    index.insert(key, position);
                    destinations.push(Destination {
                        prefix: rate.prefix.clone(),
                        rates: vec![rate],
                    });
                }
            }
        }
        Ok(RateDeck {
            settings,
            destinations,
            index,
            lengths_present,
        })
    }

    pub fn settings(&self) -> &TariffSettings {
        &self.settings
    }

    pub fn len(&self) -> usize {
        self.destinations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.destinations.is_empty()
    }

    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// The destination with the longest prefix of `number` (a leading `+` is ignored, matching
    /// stops at the first non-digit), whatever its validity dates.
    pub fn lookup(&self, number: &str) -> Option<&Destination> {
        self.longest_matches(number).next()
    }

    /// The rate to use for a call to `number` starting on `date`: the longest prefix that has a
    /// rate valid that day (a longer prefix whose rates are all expired falls back to shorter).
    pub fn find(&self, number: &str, date: Date) -> Option<&Rate> {
        self.longest_matches(number)
            .find_map(|destination| destination.rate_on(date))
    }

    /// Matching destinations, longest prefix first.
    fn longest_matches<'deck>(
        &'deck self,
        number: &str,
    ) -> impl Iterator<Item = &'deck Destination> + 'deck {
        let digits = number.strip_prefix('+').unwrap_or(number).as_bytes();
        let mut values = [0u64; MAX_PREFIX_DIGITS + 1];
        let mut length = 0;
        for &byte in digits.iter().take(MAX_PREFIX_DIGITS) {
            if !byte.is_ascii_digit() {
                break;
            }
            values[length + 1] = values[length] * 10 + u64::from(byte - b'0');
            length += 1;
        }
        (1..=length).rev().filter_map(move |prefix_length| {
            if self.lengths_present & (1 << prefix_length) == 0 {
                return None;
            }
            let key = ((prefix_length as u64) << 57) | values[prefix_length];
            self.index
                .get(&key)
                .map(|&position| &self.destinations[position as usize])
        })
    }
}

/// One carrier's offer for a number, as found by [`least_cost_routes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CarrierOffer<'deck, Carrier> {
    pub carrier: Carrier,
    pub rate: &'deck Rate,
    /// The buy rate in force at the call's start (time-of-day period applied).
    pub buy_per_minute: rust_decimal::Decimal,
}

/// Least-cost routing: every carrier deck with a rate for `number` on the start date, cheapest
/// buy rate first (ties keep the given carrier order, so priorities can break them).
pub fn least_cost_routes<'deck, Carrier>(
    carriers: impl IntoIterator<Item = (Carrier, &'deck RateDeck)>,
    number: &str,
    start: &LocalStart,
) -> Vec<CarrierOffer<'deck, Carrier>> {
    let mut offers: Vec<CarrierOffer<'deck, Carrier>> = carriers
        .into_iter()
        .filter_map(|(carrier, deck)| {
            let rate = deck.find(number, start.date)?;
            let buy_per_minute = rate
                .periods
                .iter()
                .find(|period| period.matches(start))
                .and_then(|period| period.buy_per_minute)
                .unwrap_or(rate.buy_per_minute);
            Some(CarrierOffer {
                carrier,
                rate,
                buy_per_minute,
            })
        })
        .collect();
    offers.sort_by_key(|offer| offer.buy_per_minute);
    offers
}

fn overlaps(left: &Rate, right: &Rate) -> bool {
    let left_starts_before_right_ends = match (left.valid_from, right.valid_until) {
        (Some(from), Some(until)) => from <= until,
        _ => true,
    };
    let right_starts_before_left_ends = match (right.valid_from, left.valid_until) {
        (Some(from), Some(until)) => from <= until,
        _ => true,
    };
    left_starts_before_right_ends && right_starts_before_left_ends
}

/// `(length << 57) | value`; 10^17 < 2^57 so lengths never collide.
fn prefix_key(prefix: &str) -> Option<u64> {
    if prefix.is_empty()
        || prefix.len() > MAX_PREFIX_DIGITS
        || !prefix.bytes().all(|byte| byte.is_ascii_digit())
    {
        return None;
    }
    let value = prefix
        .bytes()
        .fold(0u64, |value, byte| value * 10 + u64::from(byte - b'0'));
    Some(((prefix.len() as u64) << 57) | value)
}

/// A fast hasher for the index's `u64` keys (the splitmix64 finaliser); keys come from the
/// operator's deck, not from callers, so flooding resistance is not needed.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn rate(prefix: &str, description: &str) -> Rate {
        let mut rate = Rate::new(prefix, dec!(0.10), 60, 60);
        rate.description = description.to_owned();
        rate
    }

    fn deck() -> RateDeck {
        RateDeck::build(
            TariffSettings::default(),
            vec![
                rate("1", "USA"),
                rate("44", "UK"),
                rate("447", "UK mobile"),
                rate("4475", "UK mobile premium"),
                rate("91", "India"),
            ],
        )
        .unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let deck = deck();
        let describe = |number| deck.lookup(number).map(|d| d.prefix.as_str());
        assert_eq!(describe("447700900123"), Some("447"));
        assert_eq!(describe("+447512345678"), Some("4475"));
        assert_eq!(describe("442071234567"), Some("44"));
        assert_eq!(describe("4"), None);
        assert_eq!(describe("33123"), None);
        assert_eq!(describe(""), None);
        assert_eq!(describe("12#3"), Some("1"));
        assert_eq!(describe("123456789012345678901234"), Some("1"));
    }

    #[test]
    fn invalid_prefixes_and_overlaps_are_refused() {
        let settings = TariffSettings::default();
        assert!(matches!(
            RateDeck::build(settings.clone(), vec![rate("4a", "x")]),
            Err(DeckError::InvalidPrefix(_))
        ));
        assert!(matches!(
            RateDeck::build(settings.clone(), vec![rate("44", "a"), rate("44", "b")]),
            Err(DeckError::OverlappingValidity(_))
        ));
        let mut zero_increment = rate("44", "x");
        zero_increment.increment_seconds = 0;
        assert!(matches!(
            RateDeck::build(settings, vec![zero_increment]),
            Err(DeckError::InvalidRate { .. })
        ));
    }

    #[test]
    fn validity_dates_choose_the_version_and_fall_back() {
        let january = Date::new(2025, 1, 15).unwrap();
        let march = Date::new(2025, 3, 15).unwrap();
        let mut old = rate("447", "old");
        old.valid_until = Some(Date::new(2025, 1, 31).unwrap());
        let mut new = rate("447", "new");
        new.valid_from = Some(Date::new(2025, 2, 1).unwrap());
        let mut expired = rate("4475", "expired");
        expired.valid_until = Some(Date::new(2024, 12, 31).unwrap());
        let deck = RateDeck::build(
            TariffSettings::default(),
            vec![rate("44", "UK"), old, new, expired],
        )
        .unwrap();
        assert_eq!(deck.find("447700", january).unwrap().description, "old");
        assert_eq!(deck.find("447700", march).unwrap().description, "new");
        // 4475 exists but expired: falls back to the 447 rate valid that day.
        assert_eq!(deck.find("447512", march).unwrap().description, "new");
        assert_eq!(deck.len(), 3);
    }

    #[test]
    fn deck_can_be_shared_across_threads_behind_an_arc() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<std::sync::Arc<RateDeck>>();
        let shared = std::sync::Arc::new(deck());
        let reader = std::sync::Arc::clone(&shared);
        let found = std::thread::spawn(move || reader.lookup("4475").map(|d| d.prefix.clone()))
            .join()
            .unwrap();
        assert_eq!(found.as_deref(), Some("4475"));
    }

    #[test]
    fn least_cost_orders_carriers_by_buy_rate() {
        let with_buy = |prefix: &str, buy| {
            let mut rate = rate(prefix, "x");
            rate.buy_per_minute = buy;
            rate
        };
        let settings = TariffSettings::default;
        let expensive = RateDeck::build(settings(), vec![with_buy("44", dec!(0.03))]).unwrap();
        let cheap = RateDeck::build(settings(), vec![with_buy("447", dec!(0.01))]).unwrap();
        let other = RateDeck::build(settings(), vec![with_buy("33", dec!(0.001))]).unwrap();
        let start = LocalStart::new(
            Date::new(2025, 5, 1).unwrap(),
            crate::time::TimeOfDay::MIDNIGHT,
        );
        let offers = least_cost_routes(
            [("a", &expensive), ("b", &cheap), ("c", &other)],
            "447700900123",
            &start,
        );
        let order: Vec<&str> = offers.iter().map(|offer| offer.carrier).collect();
        assert_eq!(order, vec!["b", "a"]);
        assert_eq!(offers[0].rate.prefix, "447");
    }
}
