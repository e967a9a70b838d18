//! Number and quantity comparisons. Stored values are points (`low = high = value`)
//! or, for a Range, its bounds. The query value carries the range its precision
//! implies (`100` is `[99.5, 100.5)`): `eq`/`ne` use that range, the ordering
//! prefixes the value itself, `ap` ±10 % of it.

use carnet_search::{NumberValue, Prefix};

use super::SqlQuery;
use crate::search::index::clip;

pub fn cond(q: &mut SqlQuery, a: &str, prefix: Prefix, n: &NumberValue) -> String {
    let v = n.value.unwrap_or(n.low);
    let (low, high) = (format!("{a}.low"), format!("{a}.high"));
    match prefix {
        Prefix::Eq => format!("({low} >= {} AND {high} < {})", q.float(n.low), q.float(n.high)),
        Prefix::Ne => format!("({low} < {} OR {high} >= {})", q.float(n.low), q.float(n.high)),
        Prefix::Gt => format!("{high} > {}", q.float(v)),
        Prefix::Lt => format!("{low} < {}", q.float(v)),
        Prefix::Ge => format!("{high} >= {}", q.float(v)),
        Prefix::Le => format!("{low} <= {}", q.float(v)),
        Prefix::Sa => format!("{low} > {}", q.float(n.high)),
        Prefix::Eb => format!("{high} < {}", q.float(n.low)),
        Prefix::Ap => {
            let d = (v * 0.1).abs();
            format!("({low} >= {} AND {high} <= {})", q.float(v - d), q.float(v + d))
        }
    }
}

/// `value|system|code`, `value||code` (code or unit), or a bare value.
pub fn quantity(
    q: &mut SqlQuery,
    a: &str,
    prefix: Prefix,
    n: &NumberValue,
    system: Option<&str>,
    code: Option<&str>,
) -> String {
    let mut parts = vec![cond(q, a, prefix, n)];
    match (system, code) {
        (Some(s), Some(c)) => {
            parts.push(format!("{a}.system = {}", q.text(&clip(s))));
            parts.push(format!("{a}.code = {}", q.text(&clip(c))));
        }
        (Some(s), None) => parts.push(format!("{a}.system = {}", q.text(&clip(s)))),
        (None, Some(c)) => {
            let c = q.text(&clip(c));
            parts.push(format!("({a}.code = {c} OR {a}.unit = {c})"));
        }
        (None, None) => {}
    }
    format!("({})", parts.join(" AND "))
}
