//! fhirbolt's verdicts (`carnet-fhirbolt`) as issues: what it refuses is located in the
//! resource where it can be, what makes it fail is an exception.

use carnet_fhirbolt::Failure;
use serde_json::Value;

use crate::types::{Issue, Severity};

fn issue(what: &str, f: Failure) -> Issue {
    if f.panicked {
        Issue {
            severity: Severity::Fatal,
            code: "exception",
            expression: None,
            diagnostics: format!("{what}: {}", f.message),
        }
    } else {
        Issue::found("structure", None, format!("{what}: {}", f.message))
    }
}

/// fhirbolt's strict parse as a backstop after our own walk.
pub fn strict_check(value: &Value) -> Result<(), Issue> {
    carnet_fhirbolt::check_json(value).map_err(|f| {
        let mut i = issue("invalid resource", f);
        i.expression = locate(value, &i.diagnostics);
        i
    })
}

pub fn json_to_xml(value: &Value) -> Result<String, Issue> {
    carnet_fhirbolt::json_to_xml(value).map_err(|f| {
        let mut i = issue("invalid resource", f);
        i.expression = locate(value, &i.diagnostics);
        i
    })
}

pub fn xml_to_json(xml: &[u8]) -> Result<Value, Issue> {
    carnet_fhirbolt::xml_to_json(xml).map_err(|f| issue("invalid FHIR XML", f))
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
