//! The only module that calls carnet-fhirpath's invariant evaluator, so the validator
//! depends on one small surface of it. Expressions are compiled once, on first use.

use carnet_fhirpath::Focus;
use serde_json::Value;

/// The engine evaluates every R4 invariant (carnet-fhirpath's tests run all of them on
/// the official package), so the examples test keeps no list of engine gaps.
pub(crate) const COMPLETE: bool = true;

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

    /// `Ok(true)` when satisfied; an empty result counts as satisfied (see
    /// carnet-fhirpath). `root` is `%rootResource`, `resource` the (possibly contained)
    /// resource the element belongs to.
    pub(crate) fn check(
        &self,
        root: &Value,
        resource: &Value,
        focus: &Value,
        focus_type: &str,
    ) -> Result<bool, String> {
        self.inner
            .check_focus(&Focus {
                root,
                resource,
                value: focus,
                primitive_ext: None,
                type_name: focus_type,
            })
            .map_err(|e| e.to_string())
    }
}
