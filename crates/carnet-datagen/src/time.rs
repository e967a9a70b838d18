//! Civil dates without a date library: days since 1970-01-01 ↔ (year, month, day).

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD`.
pub fn date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A local time in Québec: `-04:00` from April to October (close enough to DST for
/// test data), `-05:00` otherwise.
pub fn offset(day: i64) -> &'static str {
    let (_, m, _) = civil_from_days(day);
    if (4..=10).contains(&m) { "-04:00" } else { "-05:00" }
}

/// `YYYY-MM-DDThh:mm:00±hh:mm` for `minute` minutes after local midnight of `day`.
pub fn date_time(day: i64, minute: i64) -> String {
    let day = day + minute.div_euclid(1440);
    let minute = minute.rem_euclid(1440);
    format!("{}T{:02}:{:02}:00{}", date(day), minute / 60, minute % 60, offset(day))
}

/// Like [`date_time`] with milliseconds, as `issued` (an instant) is usually written.
pub fn instant(day: i64, minute: i64, second: i64) -> String {
    let day = day + minute.div_euclid(1440);
    let minute = minute.rem_euclid(1440);
    format!(
        "{}T{:02}:{:02}:{:02}.000{}",
        date(day),
        minute / 60,
        minute % 60,
        second.rem_euclid(60),
        offset(day)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(date(days_from_civil(2024, 2, 29)), "2024-02-29");
        for z in -800_000..800_000 {
            if z % 997 == 0 {
                let (y, m, d) = civil_from_days(z);
                assert_eq!(days_from_civil(y, m, d), z);
            }
        }
        assert_eq!(
            date_time(days_from_civil(2025, 1, 2), 8 * 60 + 5),
            "2025-01-02T08:05:00-05:00"
        );
        assert_eq!(
            instant(days_from_civil(2025, 6, 2), 23 * 60 + 30 + 45, 7),
            "2025-06-03T00:15:07.000-04:00"
        );
    }
}
