//! The only module that calls carnet-fhirpath's invariant evaluator, so the validator
//! depends on one small surface of it.

use serde_json::Value;

/// A compiled invariant expression.
pub(crate) struct Invariant {
    inner: carnet_fhirpath::Invariant,
}

impl Invariant {
    pub(crate) fn compile(source: &str) -> Result<Invariant, String> {
        carnet_fhirpath::Invariant::compile(source)
            .map(|inner| Invariant { inner })
            .map_err(|e| e.to_string())
    }

    /// `Ok(true)` when satisfied; an empty result counts as satisfied (FHIR's rule for
    /// invariants whose context is absent, see carnet-fhirpath).
    pub(crate) fn check(&self, resource: &Value, focus: &Value, focus_type: &str) -> Result<bool, String> {
        self.inner
            .check(resource, focus, focus_type)
            .map_err(|e| e.to_string())
    }
}
