//! The issue type shared by every check, shaped after R4 `OperationOutcome.issue`.

/// `OperationOutcome.issue.severity`.
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

/// One problem found in a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    /// An R4 IssueType code (`structure`, `value`, `required`, `invalid`, `not-supported`...).
    pub code: &'static str,
    /// FHIRPath-style location, e.g. `Observation.component[1].valueQuantity.value`.
    pub expression: Option<String>,
    pub diagnostics: String,
}

impl Issue {
    pub(crate) fn error(code: &'static str, expression: Option<String>, diagnostics: String) -> Self {
        Issue {
            severity: Severity::Error,
            code,
            expression,
            diagnostics,
        }
    }
}
