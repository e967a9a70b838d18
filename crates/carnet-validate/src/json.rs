//! Value comparisons for `fixed[x]` (exact) and `pattern[x]` (contains at least).

use serde_json::Value;

/// Exact equality, numbers compared as decimals (`1.0` = `1`).
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => decimal_equal(&x.to_string(), &y.to_string()),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// Whether `value` holds at least the content of `pattern`: every property of the pattern
/// is in the value, and every item of a pattern array matches some item of the value's.
pub(crate) fn contains(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::Object(p), Value::Object(v)) => p.iter().all(|(k, pv)| v.get(k).is_some_and(|vv| contains(pv, vv))),
        (Value::Array(p), Value::Array(v)) => p.iter().all(|pi| v.iter().any(|vi| contains(pi, vi))),
        // A repeating element given a single pattern item.
        (Value::Object(_), Value::Array(v)) => v.iter().any(|vi| contains(pattern, vi)),
        _ => equal(pattern, value),
    }
}

fn decimal_equal(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pattern_is_contained() {
        let p = json!({"coding": [{"system": "s", "code": "c"}]});
        assert!(contains(
            &p,
            &json!({"coding": [{"system": "x", "code": "y"}, {"system": "s", "code": "c", "display": "C"}], "text": "t"})
        ));
        assert!(!contains(&p, &json!({"coding": [{"system": "s", "code": "d"}]})));
        assert!(!contains(&p, &json!({"text": "t"})));
        assert!(equal(&json!(1.0), &json!(1)));
        assert!(!equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }
}
