//! System values (decimals with their precision, partial dates and times) and the
//! items a collection holds: borrowed JSON nodes or computed values.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// A decimal kept as `mantissa × 10^-scale`, so `1.0` and `1.00` keep their precision
/// and comparisons are exact (no binary floating point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dec {
    pub(crate) m: i128,
    pub(crate) scale: u32,
}

const MAX_SCALE: u32 = 28;

impl Dec {
    pub(crate) fn int(i: i64) -> Dec {
        Dec {
            m: i128::from(i),
            scale: 0,
        }
    }

    /// Parses `-12.340`, `1e3`, `1.5E-2` (JSON numbers may carry an exponent).
    pub(crate) fn parse(s: &str) -> Option<Dec> {
        let (mant, exp) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
            None => (s, 0),
        };
        let (neg, digits) = match mant.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, mant.strip_prefix('+').unwrap_or(mant)),
        };
        let (int_part, frac) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        if int_part.is_empty() && frac.is_empty() {
            return None;
        }
        if !int_part.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut m: i128 = 0;
        for b in int_part.bytes().chain(frac.bytes()) {
            m = m.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        let mut scale = i64::try_from(frac.len()).ok()? - i64::from(exp);
        while scale < 0 {
            m = m.checked_mul(10)?;
            scale += 1;
        }
        let mut scale = u32::try_from(scale).ok()?;
        while scale > MAX_SCALE {
            m /= 10;
            scale -= 1;
        }
        Some(Dec {
            m: if neg { -m } else { m },
            scale,
        })
    }

    fn rescale(self, scale: u32) -> Option<i128> {
        let diff = scale.checked_sub(self.scale)?;
        self.m.checked_mul(10i128.checked_pow(diff)?)
    }

    fn aligned(a: Dec, b: Dec) -> Option<(i128, i128, u32)> {
        let s = a.scale.max(b.scale);
        Some((a.rescale(s)?, b.rescale(s)?, s))
    }

    pub(crate) fn cmp(a: Dec, b: Dec) -> Option<Ordering> {
        let (x, y, _) = Dec::aligned(a, b)?;
        Some(x.cmp(&y))
    }

    pub(crate) fn add(a: Dec, b: Dec) -> Option<Dec> {
        let (x, y, scale) = Dec::aligned(a, b)?;
        Some(Dec {
            m: x.checked_add(y)?,
            scale,
        })
    }

    pub(crate) fn neg(self) -> Dec {
        Dec {
            m: -self.m,
            scale: self.scale,
        }
    }

    pub(crate) fn mul(a: Dec, b: Dec) -> Option<Dec> {
        Some(
            Dec {
                m: a.m.checked_mul(b.m)?,
                scale: a.scale + b.scale,
            }
            .trim_to(MAX_SCALE),
        )
    }

    /// Division to eight decimal places, like the reference implementations.
    pub(crate) fn div(a: Dec, b: Dec) -> Option<Dec> {
        if b.m == 0 {
            return None;
        }
        const PLACES: u32 = 8;
        let num = a.m.checked_mul(10i128.checked_pow(PLACES + b.scale)?)?;
        let den = b.m.checked_mul(10i128.checked_pow(a.scale)?)?;
        Some(
            Dec {
                m: num / den,
                scale: PLACES,
            }
            .normalized(),
        )
    }

    /// Drops trailing zero decimals (for computed results, whose precision is arbitrary).
    pub(crate) fn normalized(mut self) -> Dec {
        while self.scale > 0 && self.m % 10 == 0 {
            self.m /= 10;
            self.scale -= 1;
        }
        self
    }

    fn trim_to(mut self, scale: u32) -> Dec {
        while self.scale > scale {
            self.m /= 10;
            self.scale -= 1;
        }
        self
    }

    /// Rounds half away from zero to `places` decimals.
    pub(crate) fn round(self, places: u32) -> Dec {
        if self.scale <= places {
            return self;
        }
        let div = 10i128.pow(self.scale - places);
        let q = self.m / div;
        let r = (self.m % div).abs();
        let q = if r * 2 >= div { q + self.m.signum() } else { q };
        Dec { m: q, scale: places }
    }

    pub(crate) fn truncate(self) -> i128 {
        self.m / 10i128.pow(self.scale)
    }

    pub(crate) fn floor(self) -> i128 {
        let t = self.truncate();
        if self.m < 0 && self.m % 10i128.pow(self.scale) != 0 {
            t - 1
        } else {
            t
        }
    }

    pub(crate) fn ceiling(self) -> i128 {
        let t = self.truncate();
        if self.m > 0 && self.m % 10i128.pow(self.scale) != 0 {
            t + 1
        } else {
            t
        }
    }

    pub(crate) fn as_int(self) -> Option<i64> {
        if self.m % 10i128.pow(self.scale) != 0 {
            return None;
        }
        i64::try_from(self.truncate()).ok()
    }

    /// Equivalence: equal when rounded to the precision of the less precise operand.
    pub(crate) fn equivalent(a: Dec, b: Dec) -> bool {
        let p = a.scale.min(b.scale);
        Dec::cmp(a.round(p), b.round(p)) == Some(Ordering::Equal)
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.m.unsigned_abs().to_string();
        let sign = if self.m < 0 { "-" } else { "" };
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (i, d) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{i}.{d}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TKind {
    Date,
    DateTime,
    Time,
}

/// A date, dateTime or time with its precision. `parts` is year, month, day, hour,
/// minute, second; `prec` is how many of them are known (counted from the year, so a
/// time's precision starts at 4), milliseconds belonging to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Temporal {
    pub(crate) kind: TKind,
    pub(crate) parts: [i32; 6],
    pub(crate) millis: u32,
    /// Whether milliseconds were written (for `toString`).
    pub(crate) has_millis: bool,
    pub(crate) prec: u8,
    /// Offset from UTC in minutes.
    pub(crate) tz: Option<i32>,
}

fn digits(s: &str, n: usize) -> Option<(i32, &str)> {
    if s.len() < n || !s.as_bytes()[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

impl Temporal {
    /// `YYYY[-MM[-DD]]`, optionally followed by `T` and a (possibly partial) time with
    /// timezone, which makes it a dateTime. `Z` or `±hh:mm` timezones.
    pub(crate) fn parse_date_time(s: &str) -> Option<Temporal> {
        let mut t = Temporal {
            kind: TKind::Date,
            parts: [0, 1, 1, 0, 0, 0],
            millis: 0,
            has_millis: false,
            prec: 1,
            tz: None,
        };
        let (y, mut rest) = digits(s, 4)?;
        t.parts[0] = y;
        for idx in 1..3 {
            let Some(r) = rest.strip_prefix('-') else { break };
            let (v, r) = digits(r, 2)?;
            t.parts[idx] = v;
            t.prec += 1;
            rest = r;
        }
        if let Some(r) = rest.strip_prefix('T') {
            t.kind = TKind::DateTime;
            if r.is_empty() {
                return t.valid().then_some(t);
            }
            if t.prec < 3 {
                return None;
            }
            rest = t.parse_time_into(r)?;
            rest = t.parse_tz(rest)?;
        } else if !rest.is_empty() {
            return None;
        }
        (rest.is_empty() && t.valid()).then_some(t)
    }

    /// An FHIR `dateTime`/`instant` string: like a literal, but `2015-02-07T13:28:17Z`
    /// only (no bare `T`), and a date alone is also accepted.
    pub(crate) fn parse_fhir(s: &str) -> Option<Temporal> {
        if s.ends_with('T') {
            return None;
        }
        Temporal::parse_date_time(s)
    }

    /// `hh[:mm[:ss[.fff]]]`
    pub(crate) fn parse_time(s: &str) -> Option<Temporal> {
        let mut t = Temporal {
            kind: TKind::Time,
            parts: [0, 1, 1, 0, 0, 0],
            millis: 0,
            has_millis: false,
            prec: 3,
            tz: None,
        };
        let rest = t.parse_time_into(s)?;
        (rest.is_empty() && t.valid()).then_some(t)
    }

    fn parse_time_into<'s>(&mut self, s: &'s str) -> Option<&'s str> {
        let (h, mut rest) = digits(s, 2)?;
        self.parts[3] = h;
        self.prec = 4;
        for idx in 4..6 {
            let Some(r) = rest.strip_prefix(':') else { break };
            let (v, r) = digits(r, 2)?;
            self.parts[idx] = v;
            self.prec += 1;
            rest = r;
        }
        if self.prec == 6
            && let Some(r) = rest.strip_prefix('.')
        {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            let frac = &r[..n];
            let ms: String = frac.chars().chain("000".chars()).take(3).collect();
            self.millis = ms.parse().ok()?;
            self.has_millis = true;
            rest = &r[n..];
        }
        Some(rest)
    }

    fn parse_tz<'s>(&mut self, s: &'s str) -> Option<&'s str> {
        if let Some(r) = s.strip_prefix('Z') {
            self.tz = Some(0);
            return Some(r);
        }
        let sign = match s.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Some(s),
        };
        let (h, r) = digits(&s[1..], 2)?;
        let r = r.strip_prefix(':')?;
        let (m, r) = digits(r, 2)?;
        self.tz = Some(sign * (h * 60 + m));
        Some(r)
    }

    fn valid(&self) -> bool {
        let [_, mo, d, h, mi, s] = self.parts;
        (1..=12).contains(&mo)
            && (1..=31).contains(&d)
            && (0..=23).contains(&h)
            && (0..=59).contains(&mi)
            && (0..=60).contains(&s)
    }

    /// The same instant in UTC (only meaningful with a time and a timezone).
    pub(crate) fn utc(&self) -> Temporal {
        let Some(tz) = self.tz else { return *self };
        if self.kind != TKind::DateTime || self.prec < 4 {
            return *self;
        }
        let [y, mo, d, h, mi, s] = self.parts;
        let minutes = days_from_civil(y, mo, d) * 1440 + i64::from(h * 60 + mi) - i64::from(tz);
        let (days, rem) = (minutes.div_euclid(1440), minutes.rem_euclid(1440));
        let (y, mo, d) = civil_from_days(days);
        let rem = i32::try_from(rem).unwrap_or(0);
        Temporal {
            parts: [y, mo, d, rem / 60, rem % 60, s],
            tz: Some(0),
            ..*self
        }
    }

    /// FHIRPath ordering: component by component down to the coarser precision; equal
    /// so far but with different precisions is unknown (`None`).
    pub(crate) fn compare(a: &Temporal, b: &Temporal) -> Option<Ordering> {
        if (a.kind == TKind::Time) != (b.kind == TKind::Time) {
            return None;
        }
        let (a, b) = if a.tz.is_some() && b.tz.is_some() {
            (a.utc(), b.utc())
        } else {
            (*a, *b)
        };
        let start = if a.kind == TKind::Time { 3 } else { 0 };
        let common = usize::from(a.prec.min(b.prec));
        for i in start..common {
            match a.parts[i].cmp(&b.parts[i]) {
                Ordering::Equal => {}
                other => return Some(other),
            }
        }
        if a.prec != b.prec {
            return None;
        }
        if common == 6 {
            return Some(a.millis.cmp(&b.millis));
        }
        Some(Ordering::Equal)
    }
}

fn days_from_civil(y: i32, m: i32, d: i32) -> i64 {
    let y = i64::from(if m <= 2 { y - 1 } else { y });
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i32, i32, i32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        i32::try_from(y).unwrap_or(0),
        i32::try_from(m).unwrap_or(1),
        i32::try_from(d).unwrap_or(1),
    )
}

impl fmt::Display for Temporal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [y, mo, d, h, mi, s] = self.parts;
        if self.kind != TKind::Time {
            write!(f, "{y:04}")?;
            if self.prec >= 2 {
                write!(f, "-{mo:02}")?;
            }
            if self.prec >= 3 {
                write!(f, "-{d:02}")?;
            }
            if self.kind == TKind::DateTime {
                f.write_str("T")?;
            }
        }
        if self.prec >= 4 {
            write!(f, "{h:02}")?;
        }
        if self.prec >= 5 {
            write!(f, ":{mi:02}")?;
        }
        if self.prec >= 6 {
            write!(f, ":{s:02}")?;
            if self.has_millis {
                write!(f, ".{:03}", self.millis)?;
            }
        }
        if self.kind == TKind::DateTime
            && self.prec >= 4
            && let Some(tz) = self.tz
        {
            if tz == 0 {
                f.write_str("Z")?;
            } else {
                let sign = if tz < 0 { '-' } else { '+' };
                write!(f, "{sign}{:02}:{:02}", tz.abs() / 60, tz.abs() % 60)?;
            }
        }
        Ok(())
    }
}

/// A borrowed JSON element: `value` is `Null` for a primitive that only has
/// extensions; `ext` is the `_name` companion object of a primitive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node<'a> {
    pub(crate) value: &'a Value,
    pub(crate) ext: Option<&'a Value>,
    pub(crate) ty: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub(crate) enum Item<'a> {
    Node(Node<'a>),
    Bool(bool),
    Int(i64),
    Dec(Dec),
    Str(String),
    Temporal(Temporal),
    Quantity(Dec, String),
}

/// A system value read from an item, borrowing strings from the JSON.
#[derive(Debug, Clone)]
pub(crate) enum Prim<'x> {
    Bool(bool),
    Int(i64),
    Dec(Dec),
    Str(&'x str),
    Temporal(Temporal),
    Quantity(Dec, &'x str),
}

pub(crate) const INTEGER_TYPES: &[&str] = &["integer", "positiveInt", "unsignedInt"];

impl<'a> Item<'a> {
    pub(crate) fn node(value: &'a Value, ty: Option<&'a str>) -> Item<'a> {
        Item::Node(Node { value, ext: None, ty })
    }

    /// The FHIR (or System) type name, when known.
    pub(crate) fn type_name(&self) -> Option<&str> {
        match self {
            Item::Node(n) => n.ty.or_else(|| n.value.get("resourceType").and_then(Value::as_str)),
            Item::Bool(_) => Some("Boolean"),
            Item::Int(_) => Some("Integer"),
            Item::Dec(_) => Some("Decimal"),
            Item::Str(_) => Some("String"),
            Item::Temporal(t) => Some(match t.kind {
                TKind::Date => "Date",
                TKind::DateTime => "DateTime",
                TKind::Time => "Time",
            }),
            Item::Quantity(..) => Some("Quantity"),
        }
    }

    /// The value as a System primitive; JSON strings typed as dates become dates.
    pub(crate) fn prim(&self) -> Option<Prim<'_>> {
        Some(match self {
            Item::Bool(b) => Prim::Bool(*b),
            Item::Int(i) => Prim::Int(*i),
            Item::Dec(d) => Prim::Dec(*d),
            Item::Str(s) => Prim::Str(s),
            Item::Temporal(t) => Prim::Temporal(*t),
            Item::Quantity(v, u) => Prim::Quantity(*v, u),
            Item::Node(n) => match n.value {
                Value::Bool(b) => Prim::Bool(*b),
                Value::Number(num) => {
                    let text = num.to_string();
                    let integral = !text.contains(['.', 'e', 'E']);
                    let typed_decimal = n.ty == Some("decimal");
                    match text.parse::<i64>() {
                        Ok(i) if integral && !typed_decimal => Prim::Int(i),
                        _ => Prim::Dec(Dec::parse(&text)?),
                    }
                }
                Value::String(s) => match n.ty {
                    Some("date" | "dateTime" | "instant") => match Temporal::parse_fhir(s) {
                        Some(t) => Prim::Temporal(t),
                        None => Prim::Str(s),
                    },
                    Some("time") => match Temporal::parse_time(s) {
                        Some(t) => Prim::Temporal(t),
                        None => Prim::Str(s),
                    },
                    _ => Prim::Str(s),
                },
                Value::Object(o) if is_quantity_node(n) => {
                    let v = o.get("value").and_then(|v| Dec::parse(&v.to_string()))?;
                    let unit = o
                        .get("code")
                        .or_else(|| o.get("unit"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    Prim::Quantity(v, unit)
                }
                _ => return None,
            },
        })
    }
}

fn is_quantity_node(n: &Node<'_>) -> bool {
    match n.ty {
        Some(t) => matches!(
            t,
            "Quantity" | "SimpleQuantity" | "Age" | "Count" | "Distance" | "Duration" | "MoneyQuantity"
        ),
        // Untyped objects with a numeric `value` are quantities in every R4 invariant
        // that compares them (Range.low/high).
        None => n.value.get("value").is_some_and(Value::is_number),
    }
}
