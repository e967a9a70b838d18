//! The only module that touches fhirbolt. Every call is strict (the lax modes silently
//! drop data) and runs under `catch_unwind`, because fhirbolt unwraps in a few places.

use std::panic::{AssertUnwindSafe, catch_unwind};

use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use serde_json::Value;

use crate::types::{Issue, Severity};

fn strict() -> Option<DeserializationConfig> {
    Some(DeserializationConfig {
        mode: DeserializationMode::Strict,
    })
}

fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, Issue> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(msg)) => Err(Issue::found("structure", None, format!("{what}: {msg}"))),
        Err(_) => Err(Issue {
            severity: Severity::Fatal,
            code: "exception",
            expression: None,
            diagnostics: format!("{what}: the FHIR parser failed on this input"),
        }),
    }
}

/// Strictly parses a JSON resource into fhirbolt's model.
pub fn parse_json(value: &Value) -> Result<Resource, Issue> {
    guarded("invalid resource", || {
        fhirbolt::json::from_json_value::<Resource>(value.clone(), strict()).map_err(|e| tidy(&e.to_string()))
    })
    .map_err(|mut issue| {
        issue.expression = locate(value, &issue.diagnostics);
        issue
    })
}

/// fhirbolt's strict parse as a backstop after our own walk.
pub fn strict_check(value: &Value) -> Result<(), Issue> {
    parse_json(value).map(drop)
}

pub fn parse_xml(xml: &[u8]) -> Result<Resource, Issue> {
    guarded("invalid FHIR XML", || {
        fhirbolt::xml::from_slice::<Resource>(xml, strict()).map_err(|e| tidy(&e.to_string()))
    })
}

pub fn write_xml(resource: &Resource) -> Result<String, Issue> {
    guarded("cannot convert to XML", || {
        fhirbolt::xml::to_string(resource, None).map_err(|e| tidy(&e.to_string()))
    })
}

pub fn write_json(resource: Resource) -> Result<Value, Issue> {
    guarded("cannot convert to JSON", || {
        fhirbolt::json::to_json_value(resource, None).map_err(|e| tidy(&e.to_string()))
    })
}

/// Drops serde's "expected one of ..." lists (dozens of names) and position suffixes.
fn tidy(msg: &str) -> String {
    let msg = msg.split(", expected one of").next().unwrap_or(msg);
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    msg.trim().to_owned()
}

/// Best-effort path for a fhirbolt message naming a field in backticks: the first place
/// (depth-first) where that property appears. fhirbolt reports no paths itself.
fn locate(value: &Value, msg: &str) -> Option<String> {
    let root = value.get("resourceType").and_then(Value::as_str)?.to_owned();
    let field = msg.split('`').nth(1);
    let found = field.and_then(|f| {
        let f = f.rsplit('.').next().unwrap_or(f);
        let mut path = root.clone();
        find_key(value, f, &mut path).then_some(path)
    });
    Some(found.unwrap_or(root))
}

fn find_key(v: &Value, key: &str, path: &mut String) -> bool {
    let base = path.len();
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                path.push('.');
                path.push_str(k);
                if k == key || find_key(child, key, path) {
                    return true;
                }
                path.truncate(base);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                if find_key(child, key, path) {
                    return true;
                }
                path.truncate(base);
            }
        }
        _ => {}
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_field_is_located() {
        let v = json!({"resourceType": "Patient", "name": [{"family": "x", "bogus": 1}]});
        let e = strict_check(&v).unwrap_err();
        assert_eq!(e.expression.as_deref(), Some("Patient.name[0].bogus"), "{e:?}");
        assert!(e.diagnostics.contains("bogus"), "{e:?}");
    }
}
