//! Token parameters: `code`, `system|code`, `|code`, `system|`, `:text`, `:of-type`.
//! (`:not` is applied by the caller around the whole criterion.)

use carnet_search::{SearchValue, TokenQuery, TokenSystem};

use super::{SqlQuery, prefix_cond};
use crate::search::index::clip;

pub fn cond(q: &mut SqlQuery, a: &str, v: &SearchValue) -> String {
    match v {
        SearchValue::Token(t) => token(q, a, "system", "code", t),
        SearchValue::Text(text) => prefix_cond(q, &format!("{a}.text"), text),
        SearchValue::OfType {
            type_system,
            type_code,
            value,
        } => format!(
            "({a}.type_system = {} AND {a}.type_code = {} AND {a}.code = {})",
            q.text(&clip(type_system)),
            q.text(&clip(type_code)),
            q.text(&clip(value))
        ),
        _ => "1 = 0".to_string(),
    }
}

/// A token query against a system and a code column (also Reference `:identifier`).
pub fn token(q: &mut SqlQuery, a: &str, system_col: &str, code_col: &str, t: &TokenQuery) -> String {
    let mut parts = Vec::new();
    if let Some(code) = &t.code {
        parts.push(format!("{a}.{code_col} = {}", q.text(&clip(code))));
    }
    match &t.system {
        TokenSystem::Any => {}
        TokenSystem::None => parts.push(format!("{a}.{system_col} IS NULL")),
        TokenSystem::Is(s) => parts.push(format!("{a}.{system_col} = {}", q.text(&clip(s)))),
    }
    if parts.is_empty() {
        return "1 = 1".to_string();
    }
    format!("({})", parts.join(" AND "))
}
