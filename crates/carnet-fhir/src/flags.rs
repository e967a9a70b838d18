//! Which top-level elements `_summary` keeps: the R4 `isSummary` flags and the
//! mandatory (min ≥ 1) elements, from the same generated table as the checker.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::elements::{DATA, table};

fn summary_table() -> &'static HashMap<String, Vec<String>> {
    static SUMMARY: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    SUMMARY.get_or_init(|| {
        let doc: Value = serde_json::from_str(DATA).unwrap_or(Value::Null);
        doc.get("summary")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let names = v
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                            .unwrap_or_default();
                        (k.clone(), names)
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// `valueQuantity` is the `value` element; `_birthDate` follows `birthDate`.
fn matches(element: &str, json_key: &str) -> bool {
    let key = json_key.strip_prefix('_').unwrap_or(json_key);
    key == element
        || (key.len() > element.len()
            && key.starts_with(element)
            && key[element.len()..].starts_with(|c: char| c.is_ascii_uppercase()))
}

/// Whether the top-level JSON member `json_key` of a `resource_type` is a summary element.
pub fn is_summary_element(resource_type: &str, json_key: &str) -> bool {
    summary_table()
        .get(resource_type)
        .is_some_and(|names| names.iter().any(|n| matches(n, json_key)))
}

/// Whether the top-level JSON member `json_key` of a `resource_type` is mandatory (min ≥ 1).
pub fn is_mandatory_element(resource_type: &str, json_key: &str) -> bool {
    let key = json_key.strip_prefix('_').unwrap_or(json_key);
    table()
        .ok()
        .and_then(|t| t.get(resource_type))
        .is_some_and(|s| s.required.iter().any(|r| r.keys.iter().any(|k| k == key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert!(is_summary_element("Patient", "name"));
        assert!(is_summary_element("Patient", "birthDate"));
        assert!(is_summary_element("Patient", "_birthDate"));
        assert!(!is_summary_element("Patient", "photo"));
        assert!(is_summary_element("Observation", "valueQuantity"));
        assert!(!is_summary_element("Observation", "referenceRange"));
        assert!(is_mandatory_element("Observation", "status"));
        assert!(is_mandatory_element("Observation", "code"));
        assert!(!is_mandatory_element("Observation", "subject"));
        assert!(!is_mandatory_element("Patient", "name"));
    }
}
