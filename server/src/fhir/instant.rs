//! FHIR `instant` values as epoch microseconds, the unit the store uses.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Formats epoch microseconds as a FHIR instant with millisecond precision in UTC,
/// e.g. `2026-11-23T10:15:00.123Z`.
pub fn format_micros(micros: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// HTTP-date for `Last-Modified`.
pub fn http_date(micros: i64) -> String {
    let secs = u64::try_from(micros.div_euclid(1_000_000)).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

pub fn parse_http_date(s: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_micros()).ok()
}

/// Parses a FHIR instant or dateTime (as used by `_since` and `_at`). A value without
/// a time is taken as the start of that day/month/year in UTC.
pub fn parse_instant(s: &str) -> Option<i64> {
    let full = if s.len() == 4 {
        format!("{s}-01-01T00:00:00Z")
    } else if s.len() == 7 {
        format!("{s}-01T00:00:00Z")
    } else if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    let dt = OffsetDateTime::parse(&full, &Rfc3339).ok()?;
    let utc = dt.to_offset(UtcOffset::UTC);
    i64::try_from(utc.unix_timestamp_nanos() / 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = parse_instant("2026-11-23T10:15:00.123Z").unwrap();
        assert_eq!(format_micros(m), "2026-11-23T10:15:00.123Z");
        assert_eq!(parse_instant("2026-11-23"), parse_instant("2026-11-23T00:00:00Z"));
        assert_eq!(
            parse_instant("2026-11-23T12:00:00+02:00"),
            parse_instant("2026-11-23T10:00:00Z")
        );
        assert!(parse_instant("yesterday").is_none());
    }
}
