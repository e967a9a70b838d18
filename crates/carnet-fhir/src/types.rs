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
    pub(crate) fn found(code: &'static str, expression: Option<String>, diagnostics: String) -> Self {
        Issue {
            severity: Severity::Error,
            code,
            expression,
            diagnostics,
        }
    }

    /// An error issue without a location; add one with [`Issue::at`].
    pub fn error(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Self::with(Severity::Error, code, diagnostics)
    }

    pub fn warning(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Self::with(Severity::Warning, code, diagnostics)
    }

    pub fn information(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Self::with(Severity::Information, code, diagnostics)
    }

    fn with(severity: Severity, code: &'static str, diagnostics: impl Into<String>) -> Self {
        Issue {
            severity,
            code,
            expression: None,
            diagnostics: diagnostics.into(),
        }
    }

    /// The same issue, located at `expression` (a FHIRPath or a search parameter name).
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }
}
