//! Decimal text to the value and the range its precision implies.

use crate::values::NumberValue;

/// `100` → [99.5, 100.5), `100.00` → [99.995, 100.005), `1e2` → [50, 150).
pub fn parse_number(text: &str) -> Option<NumberValue> {
    let value: f64 = text.parse().ok()?;
    if !value.is_finite() || text.contains(['i', 'I', 'n', 'N']) {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (lower.as_str(), 0),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    let half = 0.5 * 10f64.powi(exponent - decimals);
    Some(NumberValue {
        value: Some(value),
        text: Some(text.to_owned()),
        low: value - half,
        high: value + half,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_number;

    #[test]
    fn precision_ranges() {
        let n = parse_number("100").unwrap();
        assert_eq!((n.low, n.high), (99.5, 100.5));
        let n = parse_number("100.00").unwrap();
        assert!((n.low - 99.995).abs() < 1e-9 && (n.high - 100.005).abs() < 1e-9);
        let n = parse_number("1e2").unwrap();
        assert_eq!((n.low, n.high), (50.0, 150.0));
        let n = parse_number("-0.5").unwrap();
        assert!((n.low + 0.55).abs() < 1e-12);
        assert!(parse_number("abc").is_none());
        assert!(parse_number("NaN").is_none());
        assert!(parse_number("inf").is_none());
    }
}
