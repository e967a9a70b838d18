//! OperationOutcome construction.

use serde_json::{Value, json};

/// One OperationOutcome issue: `code` is a FHIR IssueType code, `expression` the
/// FHIRPath of the element (or the search parameter) the issue is about. The same type
/// the structure checks report, so their issues pass through unchanged.
pub use carnet_fhir::{Issue, Severity};

pub fn outcome(issues: &[Issue]) -> Value {
    let issues: Vec<Value> = issues
        .iter()
        .map(|i| {
            let mut v = json!({
                "severity": i.severity.as_str(),
                "code": i.code,
                "diagnostics": i.diagnostics,
            });
            if let (Some(e), Some(obj)) = (&i.expression, v.as_object_mut()) {
                obj.insert("expression".into(), json!([e]));
            }
            v
        })
        .collect();
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}
