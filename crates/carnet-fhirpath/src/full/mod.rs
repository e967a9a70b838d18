//! The full evaluator, for invariants (`ElementDefinition.constraint.expression`).

mod ast;
mod eval;
mod html;
mod parser;
mod value;

use std::fmt;

use serde_json::Value;

use crate::ParseError;
use value::{Item, Node};

/// A compiled invariant expression.
#[derive(Debug, Clone)]
pub struct Invariant {
    expr: ast::E,
    /// A native form of the invariants found on (nearly) every element.
    shortcut: Option<Shortcut>,
}

/// `ele-1` runs on every element of every resource: its native form skips building
/// the `children()` collection. Same result as the general evaluation (tested).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shortcut {
    /// `hasValue() or (children().count() > id.count())`
    Ele1,
}

const ELE_1: &str = "hasValue() or (children().count() > id.count())";

/// Whether a JSON property holds at least one item.
fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(items) => items.iter().any(|i| !i.is_null()),
        _ => true,
    }
}

fn ele_1(value: &Value, ext: Option<&Value>) -> bool {
    match value {
        Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
        Value::Object(obj) => obj.iter().any(|(k, v)| {
            if matches!(k.as_str(), "resourceType" | "id" | "_id") {
                return false;
            }
            match k.strip_prefix('_') {
                // A companion counts with its primitive, below.
                Some(base) if obj.contains_key(base) => false,
                Some(_) => present(v),
                None => present(v) || obj.get(&format!("_{k}")).is_some_and(present),
            }
        }),
        _ => ext
            .and_then(Value::as_object)
            .is_some_and(|e| e.iter().any(|(k, v)| k != "id" && present(v))),
    }
}

/// Why an invariant could not be evaluated (a type error, a function given a
/// collection where it needs one item, a bad regular expression...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub message: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FHIRPath evaluation error: {}", self.message)
    }
}

impl std::error::Error for EvalError {}

/// The element an invariant is evaluated on, with what surrounds it.
#[derive(Debug, Clone, Copy)]
pub struct Focus<'a> {
    /// `%rootResource`: the outermost resource (the container of a contained one).
    pub root: &'a Value,
    /// `%resource`: the resource the element belongs to.
    pub resource: &'a Value,
    /// The element's JSON value; for a primitive, the primitive (`Null` when it only
    /// has extensions).
    pub value: &'a Value,
    /// A primitive's `_name` companion (its `id` and `extension`), if any.
    pub primitive_ext: Option<&'a Value>,
    /// The element's type: a type name (`Quantity`, `string`, `Observation`) or, for a
    /// backbone element, its path (`Observation.referenceRange`).
    pub type_name: &'a str,
}

impl Invariant {
    pub fn compile(source: &str) -> Result<Invariant, ParseError> {
        Ok(Invariant {
            expr: parser::parse(source)?,
            shortcut: (source.trim() == ELE_1).then_some(Shortcut::Ele1),
        })
    }

    /// The same invariant without native shortcuts (to test that they agree).
    #[doc(hidden)]
    pub fn without_shortcuts(mut self) -> Invariant {
        self.shortcut = None;
        self
    }

    /// Evaluates the invariant with `focus` (the JSON value of the element the
    /// constraint is on, typed `focus_type`, e.g. "Observation",
    /// "Observation.referenceRange", "Quantity", "string") as `$this`/`%context` and
    /// `resource` as `%resource`/`%rootResource`. `Ok(true)` = satisfied.
    ///
    /// An empty result counts as satisfied: FHIR R4 says an invariant is violated when
    /// its expression evaluates to `false` ("the expression SHALL evaluate to true";
    /// <https://hl7.org/fhir/R4/conformance-rules.html#constraints>), and in FHIRPath an
    /// empty result means "unknown" (three-valued logic,
    /// <http://hl7.org/fhirpath/N1/#boolean-logic>), e.g. `low <= high` when one side
    /// has no value; the reference validator also reports only a `false` result. A
    /// result that is not a single boolean follows singleton evaluation (one item =
    /// true); more than one item is an error.
    pub fn check(&self, resource: &Value, focus: &Value, focus_type: &str) -> Result<bool, EvalError> {
        self.check_focus(&Focus {
            root: resource,
            resource,
            value: focus,
            primitive_ext: None,
            type_name: focus_type,
        })
    }

    /// [`Invariant::check`] with a distinct `%rootResource` (for elements inside a
    /// contained resource) and a primitive's extensions.
    pub fn check_focus(&self, focus: &Focus<'_>) -> Result<bool, EvalError> {
        Ok(self.evaluate(focus)?.unwrap_or(true))
    }

    /// The expression's result read as a boolean: `None` when empty.
    pub fn evaluate(&self, focus: &Focus<'_>) -> Result<Option<bool>, EvalError> {
        if self.shortcut == Some(Shortcut::Ele1) {
            return Ok(Some(ele_1(focus.value, focus.primitive_ext)));
        }
        let result = eval::evaluate(&self.expr, &context(focus))?;
        eval::truth(&result)
    }

    /// The result as strings (for tests and diagnostics): each item's `toString()`
    /// form, or its JSON text for complex values.
    pub fn evaluate_strings(&self, focus: &Focus<'_>) -> Result<Vec<String>, EvalError> {
        let result = eval::evaluate(&self.expr, &context(focus))?;
        Ok(result.iter().map(eval::display).collect())
    }
}

#[cfg(test)]
mod tests;

/// The evaluation context of an invariant: `$this` is the element, typed.
fn context<'a>(focus: &Focus<'a>) -> eval::Ctx<'a> {
    eval::Ctx {
        root: focus.root,
        resource: focus.resource,
        context: Item::Node(Node {
            value: focus.value,
            ext: focus.primitive_ext,
            ty: Some(focus.type_name),
        }),
    }
}
