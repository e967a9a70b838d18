//! OperationOutcome construction.

use serde_json::{Value, json};

/// One OperationOutcome issue: `code` is a FHIR IssueType code, `expression` the
/// FHIRPath of the element (or the search parameter) the issue is about. The same type
/// the structure checks report, so their issues pass through unchanged.
pub use carnet_fhir::{Issue, Severity};

pub fn outcome(issues: &[Issue]) -> Value {
    let issues: Vec<Value> = issues.iter().map(Issue::to_json).collect();
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}
