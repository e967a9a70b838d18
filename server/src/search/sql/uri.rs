//! Uri parameters: equality, `:below` (prefix) and `:above` (the stored uri is one of
//! the query's ancestors at `/` boundaries).

use carnet_search::Modifier;

use super::{SqlQuery, prefix_cond};
use crate::search::index::clip;

pub fn cond(q: &mut SqlQuery, a: &str, uri: &str, m: Option<&Modifier>) -> String {
    let col = format!("{a}.uri");
    match m {
        Some(Modifier::Below) => prefix_cond(q, &col, uri),
        Some(Modifier::Above) => q.in_list(&col, &ancestors(uri)),
        _ => format!("{col} = {}", q.text(&clip(uri))),
    }
}

/// `http://a/b/c` → `http://a/b/c`, `http://a/b`, `http://a`.
fn ancestors(uri: &str) -> Vec<String> {
    let floor = uri.find("://").map_or(0, |i| i + 3);
    let mut out = vec![clip(uri)];
    let mut cur = uri.trim_end_matches('/');
    while let Some(i) = cur.rfind('/') {
        if i < floor {
            break;
        }
        cur = &cur[..i];
        out.push(clip(cur));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ancestors() {
        assert_eq!(
            super::ancestors("http://a.org/b/c"),
            vec!["http://a.org/b/c", "http://a.org/b", "http://a.org"]
        );
    }
}
