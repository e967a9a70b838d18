//! OperationOutcome construction.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// One OperationOutcome issue: `code` is a FHIR IssueType code, `expression` the
/// FHIRPath of the element (or the search parameter) the issue is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub severity: Severity,
    pub code: &'static str,
    pub diagnostics: String,
    pub expression: Option<String>,
}

impl Issue {
    pub fn error(code: &'static str, diagnostics: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    pub fn information(code: &'static str, diagnostics: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Information,
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    pub fn warning(code: &'static str, diagnostics: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Warning,
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    pub fn at(mut self, expression: impl Into<String>) -> Issue {
        self.expression = Some(expression.into());
        self
    }
}

impl From<carnet_fhir::Issue> for Issue {
    fn from(i: carnet_fhir::Issue) -> Issue {
        Issue {
            severity: match i.severity {
                carnet_fhir::Severity::Fatal => Severity::Fatal,
                carnet_fhir::Severity::Error => Severity::Error,
                carnet_fhir::Severity::Warning => Severity::Warning,
                carnet_fhir::Severity::Information => Severity::Information,
            },
            code: i.code,
            diagnostics: i.diagnostics,
            expression: i.expression,
        }
    }
}

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
