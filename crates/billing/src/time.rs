//! Calendar values passed in by the caller: the crate never reads a clock.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Errors for malformed dates and times of day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("invalid date {0}")]
    InvalidDate(String),
    #[error("invalid time of day {0}")]
    InvalidTime(String),
}

/// A local calendar date (proleptic Gregorian). Serialized as `"YYYY-MM-DD"`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

impl Date {
    pub fn new(year: i32, month: u8, day: u8) -> Result<Date, TimeError> {
        let invalid = || TimeError::InvalidDate(format!("{year:04}-{month:02}-{day:02}"));
        if !(1..=9999).contains(&year) || !(1..=12).contains(&month) {
            return Err(invalid());
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(invalid());
        }
        Ok(Date { year, month, day })
    }

    pub fn year(&self) -> i32 {
        self.year
    }
    pub fn month(&self) -> u8 {
        self.month
    }
    pub fn day(&self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before), by the civil-from-days algorithm.
    pub fn days_since_epoch(&self) -> i64 {
        let year = i64::from(self.year) - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month = i64::from(self.month);
        let day_of_year =
            (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The inverse of [`Date::days_since_epoch`] (days-from-civil in reverse).
    pub fn from_days_since_epoch(days: i64) -> Option<Date> {
        let shifted = days.checked_add(719_468)?;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_index + 2) / 5 + 1;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Date::new(
            i32::try_from(year).ok()?,
            u8::try_from(month).ok()?,
            u8::try_from(day).ok()?,
        )
        .ok()
    }

    pub fn weekday(&self) -> Weekday {
        // 1970-01-01 was a Thursday (index 3 counting Monday as 0).
        let index = (self.days_since_epoch() + 3).rem_euclid(7);
        Weekday::ALL[index as usize]
    }
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{:04}-{:02}-{:02}",
            self.year, self.month, self.day
        )
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Date({self})")
    }
}

impl std::str::FromStr for Date {
    type Err = TimeError;
    fn from_str(text: &str) -> Result<Date, TimeError> {
        let invalid = || TimeError::InvalidDate(text.to_owned());
        let mut parts = text.split('-');
        let (Some(year), Some(month), Some(day), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        Date::new(
            year.parse().map_err(|_| invalid())?,
            month.parse().map_err(|_| invalid())?,
            day.parse().map_err(|_| invalid())?,
        )
    }
}

impl TryFrom<String> for Date {
    type Error = TimeError;
    fn try_from(text: String) -> Result<Date, TimeError> {
        text.parse()
    }
}

impl From<Date> for String {
    fn from(date: Date) -> String {
        date.to_string()
    }
}

/// Day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
}

/// A wall-clock time of day, second resolution. Serialized as `"HH:MM:SS"` (`"HH:MM"` accepted).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeOfDay(u32);

impl TimeOfDay {
    pub const MIDNIGHT: TimeOfDay = TimeOfDay(0);

    pub fn new(hour: u8, minute: u8, second: u8) -> Result<TimeOfDay, TimeError> {
        if hour > 23 || minute > 59 || second > 59 {
            return Err(TimeError::InvalidTime(format!(
                "{hour:02}:{minute:02}:{second:02}"
            )));
        }
        Ok(TimeOfDay(
            u32::from(hour) * 3600 + u32::from(minute) * 60 + u32::from(second),
        ))
    }

    pub fn seconds_since_midnight(&self) -> u32 {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{:02}:{:02}:{:02}",
            self.0 / 3600,
            self.0 / 60 % 60,
            self.0 % 60
        )
    }
}

impl fmt::Debug for TimeOfDay {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "TimeOfDay({self})")
    }
}

impl std::str::FromStr for TimeOfDay {
    type Err = TimeError;
    fn from_str(text: &str) -> Result<TimeOfDay, TimeError> {
        let invalid = || TimeError::InvalidTime(text.to_owned());
        let fields: Vec<&str> = text.split(':').collect();
        if !(2..=3).contains(&fields.len()) {
            return Err(invalid());
        }
        let number = |field: &str| field.parse::<u8>().map_err(|_| invalid());
        let second = match fields.get(2) {
            Some(field) => number(field)?,
            None => 0,
        };
        TimeOfDay::new(number(fields[0])?, number(fields[1])?, second)
    }
}

impl TryFrom<String> for TimeOfDay {
    type Error = TimeError;
    fn try_from(text: String) -> Result<TimeOfDay, TimeError> {
        text.parse()
    }
}

impl From<TimeOfDay> for String {
    fn from(time: TimeOfDay) -> String {
        time.to_string()
    }
}

/// The call's local start time, as plain values chosen by the caller (the switch converts
/// its clock and the card's time zone). Decides time-of-day periods and rate validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LocalStart {
    pub date: Date,
    pub time: TimeOfDay,
}

impl LocalStart {
    pub fn new(date: Date, time: TimeOfDay) -> LocalStart {
        LocalStart { date, time }
    }

    pub fn weekday(&self) -> Weekday {
        self.date.weekday()
    }

    /// The local time `offset_minutes` east of UTC at `unix_ms` (epoch milliseconds), as the
    /// switch's clock gives it. Out-of-range instants (before year 1, after 9999) are `None`.
    pub fn from_unix_ms(unix_ms: i64, offset_minutes: i32) -> Option<LocalStart> {
        let local_seconds = unix_ms
            .div_euclid(1000)
            .checked_add(i64::from(offset_minutes) * 60)?;
        let days = local_seconds.div_euclid(86_400);
        let seconds = u32::try_from(local_seconds.rem_euclid(86_400)).ok()?;
        let date = Date::from_days_since_epoch(days)?;
        let hour = u8::try_from(seconds / 3600).ok()?;
        let minute = u8::try_from(seconds / 60 % 60).ok()?;
        let second = u8::try_from(seconds % 60).ok()?;
        let time = TimeOfDay::new(hour, minute, second).ok()?;
        Some(LocalStart { date, time })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_since_epoch_round_trips_over_four_centuries() {
        for days in (-200_000..200_000).step_by(7) {
            let date = Date::from_days_since_epoch(days).unwrap();
            assert_eq!(date.days_since_epoch(), days, "{date}");
        }
    }

    #[test]
    fn local_start_from_unix_ms_applies_the_offset() {
        // 2025-11-23T18:30:05Z.
        let instant = 1_763_922_605_000;
        let utc = LocalStart::from_unix_ms(instant, 0).unwrap();
        assert_eq!(utc.date.to_string(), "2025-11-23");
        assert_eq!(utc.time.to_string(), "18:30:05");
        let tokyo = LocalStart::from_unix_ms(instant, 9 * 60).unwrap();
        assert_eq!(tokyo.date.to_string(), "2025-11-24");
        assert_eq!(tokyo.time.to_string(), "03:30:05");
        let new_york = LocalStart::from_unix_ms(instant, -5 * 60).unwrap();
        assert_eq!(new_york.time.to_string(), "13:30:05");
        assert_eq!(
            LocalStart::from_unix_ms(-1, 0).unwrap().time.to_string(),
            "23:59:59"
        );
    }

    #[test]
    fn weekdays_of_known_dates() {
        assert_eq!(Date::new(1970, 1, 1).unwrap().weekday(), Weekday::Thursday);
        assert_eq!(Date::new(2000, 2, 29).unwrap().weekday(), Weekday::Tuesday);
        assert_eq!(
            Date::new(2024, 12, 25).unwrap().weekday(),
            Weekday::Wednesday
        );
        assert_eq!(
            Date::new(1969, 12, 31).unwrap().weekday(),
            Weekday::Wednesday
        );
        assert_eq!(Date::new(2024, 3, 1).unwrap().days_since_epoch(), 19_783);
    }

    #[test]
    fn invalid_dates_and_times_are_refused() {
        assert!(Date::new(2023, 2, 29).is_err());
        assert!(Date::new(2024, 13, 1).is_err());
        assert!("2024-02-30".parse::<Date>().is_err());
        assert!("24:00".parse::<TimeOfDay>().is_err());
        assert_eq!(
            "08:30"
                .parse::<TimeOfDay>()
                .unwrap()
                .seconds_since_midnight(),
            30_600
        );
    }

    #[test]
    fn serde_forms_are_text() {
        let start = LocalStart::new(
            Date::new(2024, 3, 1).unwrap(),
            TimeOfDay::new(8, 5, 9).unwrap(),
        );
        let json = serde_json::to_string(&start).unwrap();
        assert_eq!(json, r#"{"date":"2024-03-01","time":"08:05:09"}"#);
        assert_eq!(serde_json::from_str::<LocalStart>(&json).unwrap(), start);
    }
}
