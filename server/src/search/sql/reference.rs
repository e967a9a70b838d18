//! Reference parameters: `id`, `Type/id`, absolute URLs (this server's are local),
//! canonicals with `|version`, `:Type` (resolved by the parser) and `:identifier`.

use carnet_search::SearchValue;

use super::SqlQuery;
use super::token::token;
use crate::search::index::clip;

pub fn cond(q: &mut SqlQuery, a: &str, v: &SearchValue, targets: &[String], base: &str) -> String {
    let r = match v {
        SearchValue::Identifier(t) => return token(q, a, "id_system", "id_value", t),
        SearchValue::Reference(r) => r,
        _ => return "1 = 0".to_string(),
    };
    let local = match &r.url {
        None => true,
        Some(u) => !base.is_empty() && u.starts_with(&format!("{base}/")) && r.target_id.is_some(),
    };
    if !local {
        let url = r.url.as_deref().unwrap_or_default();
        let mut c = format!("{a}.url = {}", q.text(&clip(url)));
        if let Some(ver) = &r.version {
            c = format!("({c} AND {a}.version = {})", q.text(&clip(ver)));
        }
        return c;
    }
    match (&r.target_type, &r.target_id) {
        (Some(t), Some(id)) => {
            format!(
                "({a}.target_type = {} AND {a}.target_id = {})",
                q.text(t),
                q.text(&clip(id))
            )
        }
        (None, Some(id)) => {
            // The type is unknown: naming the possible targets keeps the index usable.
            let id = q.text(&clip(id));
            if targets.is_empty() {
                format!("{a}.target_id = {id}")
            } else {
                format!(
                    "({} AND {a}.target_id = {id})",
                    q.in_list(&format!("{a}.target_type"), targets)
                )
            }
        }
        _ => "1 = 0".to_string(),
    }
}
