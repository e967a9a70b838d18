//! FHIR date, dateTime and instant text to the UTC microsecond range it covers.
//!
//! A value without a time zone (any date, or a dateTime with a time but no offset, which
//! FHIR forbids but servers receive) is read as UTC: the server cannot know the
//! sender's zone, and UTC keeps indexing and querying consistent with each other.

use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

use crate::values::DateRange;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// The closed range `text` covers at its precision, or `None` when malformed.
pub fn parse_range(text: &str) -> Option<DateRange> {
    let (date_part, time_part) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut fields = date_part.split('-');
    let year: i32 = digits(fields.next()?, 4)?;
    let month: Option<u8> = match fields.next() {
        Some(m) => Some(digits(m, 2)?),
        None => None,
    };
    let day: Option<u8> = match fields.next() {
        Some(d) => Some(digits(d, 2)?),
        None => None,
    };
    if fields.next().is_some() {
        return None;
    }
    let Some(time_part) = time_part else {
        if year == 0 {
            return None;
        }
        let (start, end) = match (month, day) {
            (None, None) => (ymd(year, 1, 1)?, ymd(year + 1, 1, 1)?),
            (Some(m), None) => {
                let start = ymd(year, m, 1)?;
                let end = if m == 12 {
                    ymd(year + 1, 1, 1)?
                } else {
                    ymd(year, m + 1, 1)?
                };
                (start, end)
            }
            (Some(m), Some(d)) => {
                let start = ymd(year, m, d)?;
                (start, start.next_day()?)
            }
            (None, Some(_)) => return None,
        };
        return Some(DateRange {
            low: day_micros(start),
            high: day_micros(end) - 1,
        });
    };
    let date = ymd(year, month?, day?)?;
    let (clock, offset) = split_offset(time_part)?;
    let mut hms = clock.split(':');
    let hour: u8 = digits(hms.next()?, 2)?;
    let minute: u8 = digits(hms.next()?, 2)?;
    let (second, fraction) = match hms.next() {
        Some(s) => {
            let (whole, frac) = s.split_once('.').map_or((s, None), |(w, f)| (w, Some(f)));
            (Some(digits::<u8>(whole, 2)?), frac)
        }
        None => (None, None),
    };
    if hms.next().is_some() {
        return None;
    }
    let time = Time::from_hms(hour, minute, second.unwrap_or(0)).ok()?;
    let local = PrimitiveDateTime::new(date, time).assume_offset(offset);
    let base = i64::try_from(local.unix_timestamp_nanos() / 1000).ok()?;
    let (low, width) = match (second, fraction) {
        (None, _) => (base, 60 * MICROS_PER_SECOND),
        (Some(_), None) => (base, MICROS_PER_SECOND),
        (Some(_), Some(f)) => {
            if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Beyond microseconds the extra digits cannot be represented; truncate.
            let used = &f[..f.len().min(6)];
            let micros: i64 = used.parse().ok()?;
            let scale = 10i64.pow(6 - used.len() as u32);
            (base + micros * scale, scale)
        }
    };
    Some(DateRange {
        low,
        high: low + width - 1,
    })
}

fn digits<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

fn ymd(year: i32, month: u8, day: u8) -> Option<Date> {
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn day_micros(d: Date) -> i64 {
    (d.midnight().assume_utc().unix_timestamp()) * MICROS_PER_SECOND
}

/// Splits `10:30:00+01:00` / `10:30:00Z` / `10:30:00` into the clock and its offset.
fn split_offset(t: &str) -> Option<(&str, UtcOffset)> {
    if let Some(clock) = t.strip_suffix('Z') {
        return Some((clock, UtcOffset::UTC));
    }
    match t.rfind(['+', '-']) {
        Some(i) => {
            let (clock, off) = t.split_at(i);
            let sign: i8 = if off.starts_with('-') { -1 } else { 1 };
            let (h, m) = off[1..].split_once(':')?;
            let h: i8 = digits(h, 2)?;
            let m: i8 = digits(m, 2)?;
            Some((clock, UtcOffset::from_hms(sign * h, sign * m, 0).ok()?))
        }
        None => Some((t, UtcOffset::UTC)),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    const DAY: i64 = 86_400_000_000;

    #[test]
    fn precisions() {
        // 2016-01-01T00:00:00Z = 1451606400 s
        let y = parse_range("2016").unwrap();
        assert_eq!(y.low, 1_451_606_400_000_000);
        assert_eq!(y.high, y.low + 366 * DAY - 1);
        let m = parse_range("2016-02").unwrap();
        assert_eq!(m.high - m.low + 1, 29 * DAY);
        let d = parse_range("2016-03-28").unwrap();
        assert_eq!(d.high - d.low + 1, DAY);
        let min = parse_range("2016-01-01T10:30+01:00").unwrap();
        assert_eq!(min.low, 1_451_606_400_000_000 + 9 * 3_600_000_000 + 30 * 60_000_000);
        assert_eq!(min.high - min.low + 1, 60_000_000);
        let s = parse_range("2016-01-01T00:00:00Z").unwrap();
        assert_eq!((s.low, s.high), (1_451_606_400_000_000, 1_451_606_400_999_999));
        let ms = parse_range("2016-01-01T00:00:00.25-00:00").unwrap();
        assert_eq!((ms.low, ms.high), (1_451_606_400_250_000, 1_451_606_400_259_999));
        let dec = parse_range("2016-12").unwrap();
        assert_eq!(dec.high + 1, parse_range("2017").unwrap().low);
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "16",
            "2016-13",
            "2016-02-30",
            "2016-1-01",
            "2016-01-01T25:00Z",
            "2016-01-01T10",
            "2016-01-01T10:00:00.Z",
            "2016-01-01T10:00+1",
            "abcd",
            "2016-01-01-01",
            "0000",
        ] {
            assert!(parse_range(bad).is_none(), "{bad}");
        }
    }
}
