//! Timestamps that remember the exact text they were read from.
//!
//! bd writes RFC 3339 with 0–9 fraction digits and any offset; a record Loom did not change must
//! keep its bytes, and even a changed record keeps the timestamps it did not touch verbatim. So a
//! [`Timestamp`] stores its original text next to the parsed instant; new timestamps are UTC in
//! Go's `RFC3339Nano` form (fraction trimmed of trailing zeros, `Z`).

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time as found on disk (or freshly minted by Loom).
#[derive(Clone)]
pub struct Timestamp {
    text: String,
    instant: Option<jiff::Timestamp>,
}

impl Timestamp {
    /// The current time, UTC, nanosecond precision.
    pub fn now() -> Self {
        Self::from_instant(jiff::Timestamp::now())
    }

    /// Wraps an instant, formatting it the way Go's `time.RFC3339Nano` does in UTC.
    pub fn from_instant(instant: jiff::Timestamp) -> Self {
        Self {
            text: format_rfc3339_nano(instant),
            instant: Some(instant),
        }
    }

    /// Keeps `text` verbatim; the instant is `None` when it is not valid RFC 3339.
    pub fn parse(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            instant: parse_rfc3339(text),
        }
    }

    /// Parses a user-supplied time: RFC 3339, or a plain date (`2026-12-01`, midnight UTC).
    pub fn parse_user(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some(instant) = parse_rfc3339(text) {
            return Some(Self::from_instant(instant));
        }
        let date: jiff::civil::Date = text.parse().ok()?;
        let instant = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
        Some(Self::from_instant(instant))
    }

    /// The text exactly as read (or as minted).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed instant, if the text was valid.
    pub fn instant(&self) -> Option<jiff::Timestamp> {
        self.instant
    }

    /// Nanoseconds since the Unix epoch, for ordering; invalid text sorts first.
    pub fn sort_key(&self) -> i128 {
        self.instant.map_or(i128::MIN, |t| t.as_nanosecond())
    }

    /// A timestamp strictly later than `previous` (if any): now, or just after `previous`
    /// when the clock has not moved past it (fast edits, clock skew).
    pub fn now_after(previous: Option<&Timestamp>) -> Self {
        let now = jiff::Timestamp::now();
        match previous.and_then(Timestamp::instant) {
            Some(prev) if now <= prev => {
                let bumped = prev
                    .checked_add(jiff::SignedDuration::from_millis(1))
                    .unwrap_or(prev);
                Self::from_instant(bumped)
            }
            _ => Self::from_instant(now),
        }
    }
}

fn parse_rfc3339(text: &str) -> Option<jiff::Timestamp> {
    // jiff accepts RFC 3339 / RFC 9557 with any offset and 0–9 fraction digits.
    text.parse::<jiff::Timestamp>().ok()
}

/// Go's `RFC3339Nano` in UTC: seconds, then a fraction with trailing zeros removed (none if
/// zero), then `Z`.
fn format_rfc3339_nano(instant: jiff::Timestamp) -> String {
    let secs = instant.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = instant.subsec_nanosecond();
    if nanos == 0 {
        return format!("{secs}Z");
    }
    let fraction = format!("{nanos:09}");
    format!("{secs}.{}Z", fraction.trim_end_matches('0'))
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for Timestamp {}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key()
            .cmp(&other.sort_key())
            .then_with(|| self.text.cmp(&other.text))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({:?})", self.text)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;
        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Ok(Timestamp::parse(v))
            }
        }
        deserializer.deserialize_str(TimestampVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_original_text_and_parses_offsets_and_fractions() {
        for text in [
            "2025-12-02T05:05:53Z",
            "2025-12-02T05:05:53.7Z",
            "2025-12-14T14:25:28.448654-08:00",
            "2025-12-14T14:25:28.123456789+05:30",
        ] {
            let t = Timestamp::parse(text);
            assert_eq!(t.as_str(), text);
            assert!(t.instant().is_some(), "{text} should parse");
        }
        let a = Timestamp::parse("2025-12-14T14:25:28-08:00");
        let b = Timestamp::parse("2025-12-14T22:25:28Z");
        assert_eq!(a.sort_key(), b.sort_key());
    }

    #[test]
    fn invalid_text_is_kept_and_sorts_first() {
        let t = Timestamp::parse("yesterday");
        assert_eq!(t.as_str(), "yesterday");
        assert!(t.instant().is_none());
        assert!(t < Timestamp::parse("1970-01-01T00:00:00Z"));
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        let t: jiff::Timestamp = "2024-01-02T03:04:05.006Z".parse().unwrap();
        assert_eq!(
            Timestamp::from_instant(t).as_str(),
            "2024-01-02T03:04:05.006Z"
        );
        let t: jiff::Timestamp = "2024-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(Timestamp::from_instant(t).as_str(), "2024-01-02T03:04:05Z");
        let t: jiff::Timestamp = "2024-01-02T03:04:05.123456789+02:00".parse().unwrap();
        assert_eq!(
            Timestamp::from_instant(t).as_str(),
            "2024-01-02T01:04:05.123456789Z"
        );
    }

    #[test]
    fn now_after_is_strictly_later() {
        let future = Timestamp::parse("2999-01-01T00:00:00Z");
        let next = Timestamp::now_after(Some(&future));
        assert!(next.sort_key() > future.sort_key());
        let past = Timestamp::parse("2000-01-01T00:00:00Z");
        assert!(Timestamp::now_after(Some(&past)).sort_key() > past.sort_key());
    }

    #[test]
    fn parses_user_dates() {
        assert_eq!(
            Timestamp::parse_user("2026-12-01").unwrap().as_str(),
            "2026-12-01T00:00:00Z"
        );
        assert!(Timestamp::parse_user("next week").is_none());
    }
}
