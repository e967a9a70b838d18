//! The only module that calls carnet-fhirpath, so that moving to its `Invariant` API
//! (being written in parallel) changes one file.
//!
//! Until then this uses the search-parameter subset (`parse` + `evaluate_at`): an
//! invariant it cannot parse or evaluate is reported by the caller as a `not-supported`
//! warning, never silently passed.

use carnet_fhirpath::{Expr, Node, types};
use serde_json::Value;

/// Whether this adapter runs a complete invariant engine; the interim one does not, and
/// the examples test then allows the failures listed as engine gaps.
pub(crate) const COMPLETE: bool = false;

/// A compiled invariant expression.
pub(crate) struct Invariant {
    expr: Expr,
}

impl Invariant {
    pub(crate) fn compile(source: &str) -> Result<Invariant, String> {
        carnet_fhirpath::parse(source)
            .map(|expr| Invariant { expr })
            .map_err(|e| e.to_string())
    }

    /// `Ok(true)` when satisfied; an empty result counts as satisfied (FHIR's rule for
    /// invariants whose context is absent). `root` is `%rootResource` (the container of a
    /// contained resource), `resource` is `%resource`; `focus_type` is a type name or, for
    /// a backbone element, its path (`Observation.referenceRange`).
    pub(crate) fn check(
        &self,
        root: &Value,
        resource: &Value,
        focus: &Value,
        focus_type: &str,
    ) -> Result<bool, String> {
        // The search subset has a single `%resource`.
        let _ = root;
        let node = Node {
            value: focus,
            type_name: types::type_specifier(focus_type),
        };
        let out = self.expr.evaluate_at(resource, node);
        match out.as_slice() {
            [] => Ok(true),
            [n] => match n.value {
                Value::Bool(b) => Ok(*b),
                _ => Err("the result is not a boolean".to_owned()),
            },
            _ => Err(format!("the result has {} items, not one boolean", out.len())),
        }
    }
}
