//! String parameters: prefix (default), `:exact` and `:contains`, all on the
//! normalised (case- and accent-folded) column so the index serves them.

use carnet_search::{Modifier, normalize};

use super::{SqlQuery, prefix_cond};

pub fn cond(q: &mut SqlQuery, a: &str, value: &str, normalized: &str, m: Option<&Modifier>) -> String {
    match m {
        Some(Modifier::Exact) => {
            // The prefix range narrows through the index; `exact` then decides.
            let range = prefix_cond(q, &format!("{a}.normalized"), &normalize(value));
            format!("({range} AND {a}.exact = {})", q.text(value))
        }
        Some(Modifier::Contains) => {
            let pattern = format!("%{}%", escape_like(normalized));
            format!("{a}.normalized LIKE {} ESCAPE '\\'", q.text(&pattern))
        }
        _ => prefix_cond(q, &format!("{a}.normalized"), normalized),
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
