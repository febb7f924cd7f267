//! Timestamps are stored as UTC milliseconds and shown as RFC 3339.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::Millis;

/// RFC 3339 in UTC with millisecond precision, e.g. `2025-11-05T09:30:00.123Z`.
pub fn rfc3339(ms: Millis) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Reads an RFC 3339 timestamp (any offset) as UTC milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The UTC calendar day of a timestamp as `YYYYMMDD`.
pub fn yyyymmdd(ms: Millis) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_and_days() {
        let ms = 1_762_335_000_123;
        let text = rfc3339(ms);
        assert_eq!(text, "2025-11-05T09:30:00.123Z");
        assert_eq!(yyyymmdd(ms), "20251105");
        assert_eq!(parse_rfc3339(&text), Some(ms));
        assert_eq!(parse_rfc3339("2025-11-05T18:30:00.123+09:00"), Some(ms));
        assert_eq!(parse_rfc3339("next tuesday"), None);
    }
}
