//! Instants as UTC milliseconds since the Unix epoch, and their text forms.
//!
//! The API promises millisecond resolution: finer fractions in input are truncated.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// One second in milliseconds.
pub const SECOND_MS: i64 = 1_000;
/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// One week in milliseconds.
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// An instant: UTC milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

/// Why a text is not an event time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an RFC 3339 time like 2026-10-31T00:00:00Z, got {0:?}")]
pub struct TimestampError(pub String);

impl Timestamp {
    /// The earliest representable instant; compares before every real one.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest representable instant.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// Returns the instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Returns the milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Returns this instant moved by `millis` (negative moves back), saturating at the ends.
    pub const fn add_millis(self, millis: i64) -> Self {
        Timestamp(self.0.saturating_add(millis))
    }

    /// Parses an event time: RFC 3339 with `Z` or an offset, or a zone-less
    /// `YYYY-MM-DDTHH:MM:SS[.fraction]` read as UTC.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let parsed = DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .or_else(|_| {
                NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
            })
            .map_err(|_| TimestampError(text.to_owned()))?;
        Ok(Timestamp(parsed.timestamp_millis()))
    }

    /// Formats as RFC 3339 UTC with milliseconds, e.g. `2026-10-31T00:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        match Utc.timestamp_millis_opt(self.0).single() {
            Some(time) => time.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => format!("@{}ms", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zone_less_times_as_utc() {
        let t = Timestamp::parse("2023-10-31T00:00:00").unwrap();
        assert_eq!(t.as_millis(), 1_698_710_400_000);
        assert_eq!(Timestamp::parse("2023-10-31T00:00:00Z").unwrap(), t);
    }

    #[test]
    fn parses_offsets_and_truncates_to_milliseconds() {
        let t = Timestamp::parse("2023-10-31T02:00:00.1239+02:00").unwrap();
        assert_eq!(t.as_millis(), 1_698_710_400_123);
        let plain = Timestamp::parse("2023-10-31T00:00:00.5").unwrap();
        assert_eq!(plain.as_millis(), 1_698_710_400_500);
    }

    #[test]
    fn rejects_text_that_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2023-10-31",
            "2023-13-01T00:00:00",
            "2023-10-31 00:00:00",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_rfc3339_with_milliseconds() {
        let t = Timestamp::from_millis(1_698_710_400_123);
        assert_eq!(t.to_string(), "2023-10-31T00:00:00.123Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
    }
}
