//! Lexical checks of R4 primitive values (the regexes of the spec, hand-written for speed).

use serde_json::Value;

use crate::elements::Prim;

/// Why a primitive value was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PrimError {
    /// Wrong JSON type (e.g. a string for a boolean): an IssueType `structure`.
    JsonType(&'static str),
    /// Right JSON type, bad content: an IssueType `value`.
    Value(String),
}

/// Longest decimal text accepted: far beyond the 18 digits R4 asks servers to keep.
const MAX_DECIMAL_TEXT: usize = 64;

/// Checks one JSON value (not `null`, not an array) against primitive type `p`.
pub fn check(p: Prim, v: &Value) -> Result<(), PrimError> {
    match p {
        Prim::Boolean => match v {
            Value::Bool(_) => Ok(()),
            _ => Err(PrimError::JsonType("a JSON boolean")),
        },
        Prim::Integer | Prim::UnsignedInt | Prim::PositiveInt => check_integer(p, v),
        Prim::Decimal => match v {
            // serde_json only produces numbers matching the R4 decimal regex; beyond a
            // double's range a value could be neither compared nor searched.
            Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) && n.to_string().len() <= MAX_DECIMAL_TEXT => {
                Ok(())
            }
            Value::Number(n) => Err(PrimError::Value(format!(
                "{} is out of range for decimal (at most {MAX_DECIMAL_TEXT} characters, within ±1.7e308)",
                clip(&n.to_string())
            ))),
            _ => Err(PrimError::JsonType("a JSON number")),
        },
        _ => match v {
            Value::String(s) => check_string(p, s).map_err(PrimError::Value),
            _ => Err(PrimError::JsonType("a JSON string")),
        },
    }
}

fn check_integer(p: Prim, v: &Value) -> Result<(), PrimError> {
    let Value::Number(n) = v else {
        return Err(PrimError::JsonType("a JSON number"));
    };
    let Some(i) = n.as_i64() else {
        return Err(PrimError::Value(format!(
            "{} is not a valid {} (must be a whole number)",
            n,
            p.name()
        )));
    };
    let min = match p {
        Prim::Integer => i64::from(i32::MIN),
        Prim::UnsignedInt => 0,
        _ => 1,
    };
    if i < min || i > i64::from(i32::MAX) {
        return Err(PrimError::Value(format!(
            "{i} is out of range for {} ({min}..{})",
            p.name(),
            i32::MAX
        )));
    }
    // With arbitrary_precision, "1.0" or "1e2" may still convert; R4 wants plain digits.
    let text = n.to_string();
    let digits = text.strip_prefix('-').unwrap_or(&text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PrimError::Value(format!(
            "{text} is not a valid {} (must be a whole number)",
            p.name()
        )));
    }
    Ok(())
}

fn check_string(p: Prim, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!(
            "empty string is not a valid {} (leave the element out instead)",
            p.name()
        ));
    }
    let ok = match p {
        Prim::String | Prim::Markdown => {
            // R4: no characters below U+0020 other than tab, CR and LF.
            if let Some(c) = s.chars().find(|&c| c < ' ' && !matches!(c, '\t' | '\r' | '\n')) {
                return Err(format!(
                    "the {} contains an illegal control character (U+{:04X})",
                    p.name(),
                    c as u32
                ));
            }
            true
        }
        Prim::Code => is_code(s),
        Prim::Id => s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
        Prim::Uri | Prim::Url | Prim::Canonical => !s.bytes().any(is_regex_ws),
        Prim::Oid => is_oid(s),
        Prim::Uuid => is_uuid(s),
        Prim::Base64Binary => is_base64(s),
        Prim::Date => is_date(s),
        Prim::DateTime => is_date_time(s, false),
        Prim::Instant => is_date_time(s, true),
        Prim::Time => is_time(s.as_bytes()),
        Prim::Xhtml => is_xhtml_div(s),
        Prim::Boolean | Prim::Integer | Prim::UnsignedInt | Prim::PositiveInt | Prim::Decimal => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("'{}' is not a valid {}{}", clip(s), p.name(), hint(p)))
    }
}

fn hint(p: Prim) -> &'static str {
    match p {
        Prim::Id => " (1-64 characters from A-Z, a-z, 0-9, '-' and '.')",
        Prim::Code => " (no leading, trailing or repeated whitespace)",
        Prim::Uri | Prim::Url | Prim::Canonical => " (no whitespace allowed)",
        Prim::Oid => " (expected urn:oid:...)",
        Prim::Uuid => " (expected urn:uuid: and a lower-case UUID)",
        Prim::Date => " (expected YYYY, YYYY-MM or YYYY-MM-DD)",
        Prim::DateTime => " (expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.sss] with a timezone)",
        Prim::Instant => " (expected YYYY-MM-DDThh:mm:ss[.sss] with a timezone)",
        Prim::Time => " (expected hh:mm:ss[.sss])",
        Prim::Xhtml => " (expected an XHTML <div> element)",
        _ => "",
    }
}

/// Shortens a value quoted in a message so a huge bad value cannot bloat the outcome.
fn clip(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// `\s` of the spec's regexes (XML Schema, Java): ASCII whitespace only, so a
/// no-break space inside a code is not whitespace.
fn is_regex_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0B' | b'\x0C')
}

/// `[^\s]+(\s[^\s]+)*`
fn is_code(s: &str) -> bool {
    let mut prev_ws = true;
    for b in s.bytes() {
        let ws = is_regex_ws(b);
        if ws && prev_ws {
            return false;
        }
        prev_ws = ws;
    }
    !prev_ws
}

/// `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`
fn is_oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut parts = rest.split('.');
    if !matches!(parts.next(), Some("0" | "1" | "2")) {
        return false;
    }
    let mut n = 0;
    for part in parts {
        n += 1;
        let b = part.as_bytes();
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
            return false;
        }
    }
    n > 0
}

/// `urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
fn is_uuid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let b = rest.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// `(\s*([0-9a-zA-Z\+/\=]){4}\s*)+`, with padding only at the end.
fn is_base64(s: &str) -> bool {
    let mut n = 0usize;
    let mut pad = 0usize;
    for b in s.bytes() {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'=' => pad += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if pad == 0 => {}
            _ => return false,
        }
        n += 1;
    }
    n > 0 && n.is_multiple_of(4) && pad <= 2
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0')))
}

/// `([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?`
/// plus the day actually existing in that month.
fn is_date(s: &str) -> bool {
    date_prefix(s.as_bytes()) == Some(s.len())
}

/// Parses YYYY[-MM[-DD]] and returns how many bytes it used.
fn date_prefix(b: &[u8]) -> Option<usize> {
    let year = digits(b.get(0..4)?)?;
    if year == 0 {
        return None;
    }
    if b.len() == 4 || b[4] != b'-' {
        return Some(4);
    }
    let month = digits(b.get(5..7)?)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    if b.len() == 7 || b[7] != b'-' {
        return Some(7);
    }
    let day = digits(b.get(8..10)?)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(10)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// dateTime: a date, or a full date with `Thh:mm:ss[.f+]` and a mandatory timezone.
/// instant: only the latter.
fn is_date_time(s: &str, instant: bool) -> bool {
    let b = s.as_bytes();
    let Some(n) = date_prefix(b) else {
        return false;
    };
    if n == b.len() {
        return !instant;
    }
    if n != 10 || b[n] != b'T' {
        return false;
    }
    let rest = &b[n + 1..];
    let tz_at = rest
        .iter()
        .position(|&c| matches!(c, b'Z' | b'+' | b'-'))
        .unwrap_or(rest.len());
    is_time(&rest[..tz_at]) && is_timezone(&rest[tz_at..])
}

/// `([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?`
fn is_time(b: &[u8]) -> bool {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let (Some(h), Some(m), Some(s)) = (digits(&b[0..2]), digits(&b[3..5]), digits(&b[6..8])) else {
        return false;
    };
    if h > 23 || m > 59 || s > 60 {
        return false;
    }
    match &b[8..] {
        [] => true,
        [b'.', frac @ ..] => !frac.is_empty() && frac.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// `Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)`
fn is_timezone(b: &[u8]) -> bool {
    match b {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let (Some(h), Some(m)) = (digits(&[*h1, *h2]), digits(&[*m1, *m2])) else {
                return false;
            };
            (h <= 13 && m <= 59) || (h == 14 && m == 0)
        }
        _ => false,
    }
}

/// A cheap sanity check only: full XHTML well-formedness is checked when converting to XML.
fn is_xhtml_div(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("<div") && t.ends_with('>')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(p: Prim, v: Value) -> bool {
        check(p, &v).is_ok()
    }

    #[test]
    fn dates() {
        for good in ["2020", "2020-02", "2020-02-29", "0001", "1900-12-31"] {
            assert!(ok(Prim::Date, json!(good)), "{good}");
        }
        for bad in [
            "20",
            "0000",
            "2019-02-29",
            "2020-13",
            "2020-1-01",
            "2020-01-32",
            "2020-01-01T10:00:00Z",
            "2020-00",
            "",
        ] {
            assert!(!ok(Prim::Date, json!(bad)), "{bad}");
        }
    }

    #[test]
    fn date_times_and_instants() {
        for good in [
            "2020",
            "2020-02-29T10:00:00Z",
            "2020-02-29T23:59:60.123+14:00",
            "2015-02-07T13:28:17-05:00",
        ] {
            assert!(ok(Prim::DateTime, json!(good)), "{good}");
        }
        for bad in [
            "2020-02-29T10:00:00",
            "2020-02-29T10:00Z",
            "2020-02-29T24:00:00Z",
            "2020-02T10:00:00Z",
            "2020-01-01T10:00:00+15:00",
            "2020-01-01T10:00:00.Z",
        ] {
            assert!(!ok(Prim::DateTime, json!(bad)), "{bad}");
        }
        assert!(ok(Prim::Instant, json!("2015-02-07T13:28:17.239+02:00")));
        assert!(!ok(Prim::Instant, json!("2015-02-07")));
        assert!(!ok(Prim::Instant, json!("2015-02-07T13:28:17")));
        assert!(ok(Prim::Time, json!("13:28:17.5")));
        assert!(!ok(Prim::Time, json!("13:28")));
    }

    #[test]
    fn numbers() {
        let n = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert!(ok(Prim::Integer, n("-2147483648")));
        assert!(!ok(Prim::Integer, n("2147483648")));
        assert!(!ok(Prim::Integer, n("1.0")));
        assert!(!ok(Prim::Integer, json!("1")));
        assert!(ok(Prim::UnsignedInt, n("0")));
        assert!(!ok(Prim::UnsignedInt, n("-1")));
        assert!(!ok(Prim::PositiveInt, n("0")));
        assert!(ok(Prim::Decimal, n("60.50")));
        assert!(!ok(Prim::Decimal, json!("abc")));
        assert!(!ok(Prim::Boolean, json!("true")));
    }

    #[test]
    fn strings() {
        assert!(ok(Prim::Code, json!("final")));
        assert!(ok(Prim::Code, json!("a b")));
        for bad in [" final", "final ", "a  b", ""] {
            assert!(!ok(Prim::Code, json!(bad)), "{bad:?}");
        }
        assert!(ok(Prim::Id, json!("example-1.2")));
        assert!(!ok(Prim::Id, json!("has_underscore")));
        assert!(!ok(Prim::Id, json!("x".repeat(65))));
        assert!(ok(Prim::Uri, json!("http://a/b")));
        assert!(!ok(Prim::Uri, json!("http://a b")));
        assert!(ok(Prim::Oid, json!("urn:oid:1.2.840.113619")));
        assert!(!ok(Prim::Oid, json!("urn:oid:1.02")));
        assert!(!ok(Prim::Oid, json!("1.2.3")));
        assert!(ok(Prim::Uuid, json!("urn:uuid:a76d9bbf-f293-4fb7-ad4c-2851cac77162")));
        assert!(!ok(Prim::Uuid, json!("urn:uuid:A76D9BBF-F293-4FB7-AD4C-2851CAC77162")));
        assert!(ok(Prim::Base64Binary, json!("aGVsbG8=")));
        assert!(ok(Prim::Base64Binary, json!("aGVs\nbG8=")));
        assert!(!ok(Prim::Base64Binary, json!("aGVsbG8")));
        assert!(!ok(Prim::Base64Binary, json!("a=Vs")));
        assert!(!ok(Prim::String, json!("")));
        assert!(!ok(Prim::String, json!("bell\u{7}")));
        assert!(ok(Prim::String, json!("tab\tnewline\n")));
    }
}
