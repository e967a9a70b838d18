//! FHIRPath over `serde_json::Value` resources in their R4 JSON form, in two engines.
//!
//! # The streaming subset ([`parse`], [`Expr`])
//!
//! What R4 SearchParameter expressions use, evaluated on the write path without
//! allocating: paths (with choice elements, `value` matching `valueQuantity`), `[n]`,
//! `|`, `=`, `!=`, `and`, `or`, `xor`, `implies`, `as`/`is` (operators and functions),
//! `ofType()`, `where()`, `exists()`, `empty()`, `not()`, `first()`, `last()`,
//! `resolve()` (typed from the reference string, no resolver), `extension('url')`,
//! `hasValue()`, `%resource`, `$this`, string/number/boolean literals.
//!
//! # The full evaluator ([`Invariant`])
//!
//! For `ElementDefinition.constraint.expression`: every invariant of the R4 core
//! definitions compiles and runs (see `tests/r4_invariants.rs`). Collections of
//! borrowed JSON nodes (with their FHIR type when known: from a choice suffix, a
//! `resourceType`, `as`/`ofType`, or the focus type the caller gives) and computed
//! System values: Boolean, Integer, Decimal (exact, with its precision: `1.0 = 1.00`,
//! `1.01 ~ 1.0`), String, Date/DateTime/Time (partial precision; comparing `@2012` with
//! `@2012-04` is empty; timezones normalised when both sides have one) and Quantity.
//!
//! * Grammar: the whole FHIRPath N1 expression grammar: literals (`@2015-02-04T14:34Z`,
//!   `@T12:00`, `4 'mg'`, `3 days`, `{}`), `$this`, `$index`, `$total`, `%context`,
//!   `%resource`, `%rootResource`, `%ucum`, `%sct`, `%loinc`, `%vs-x`, `%ext-x`, indexers,
//!   unary `+ -`, `* / div mod`, `+ - &`, `is as`, `|`, `< > <= >=`, `= ~ != !~`,
//!   `in contains`, `and`, `or xor`, `implies`, `//` and `/* */` comments.
//! * Functions: existence (`empty exists all allTrue anyTrue allFalse anyFalse subsetOf
//!   supersetOf count distinct isDistinct`), filtering (`where select repeat ofType`),
//!   subsetting (`single first last tail skip take intersect exclude`), combining
//!   (`union combine`), conversion (`iif toBoolean toInteger toDecimal toString toDate
//!   toDateTime toTime toQuantity convertsToX`), strings (`indexOf substring startsWith
//!   endsWith contains upper lower replace matches replaceMatches length toChars trim
//!   split join`), math (`abs ceiling floor round truncate`), tree (`children
//!   descendants`), utility (`trace today now timeOfDay aggregate`), `not`, `is`, `as`,
//!   and the FHIR additions `extension(url)`, `hasValue`, `getValue`, `resolve`,
//!   `memberOf`, `conformsTo`, `htmlChecks`, `lowBoundary`, `highBoundary`.
//!
//! Approximations, chosen because the evaluator sees JSON without element definitions
//! or servers:
//!
//! * `matches()` finds the pattern anywhere in the string (FHIRPath's definition;
//!   anchor with `^...$` for a whole-string match); Rust `regex` syntax, `.` matches
//!   newlines.
//! * Untyped JSON values (an element reached by name, whose FHIR type the evaluator
//!   cannot know) are typed by their JSON kind: `is(dateTime)` holds for a string that
//!   reads as a dateTime, the string family (`code`, `uri`, `canonical`...) for any
//!   string, and two untyped strings that both read as dates are compared as dates.
//!   Choice elements are recognised only under R4's choice element names, and a few
//!   plain elements that look like choices (`sourceId`, `effectiveTime`...) are
//!   excluded; keys that are a choice in one type and a plain element in another
//!   (`valueQuantity`, `effectivePeriod`) are read as choices.
//! * `resolve()`: a `#id` reference gives the contained resource; a reference inside a
//!   Bundle gives the entry with that fullUrl; otherwise the Reference itself, typed by
//!   the resource type its string names (so `resolve() is Patient` works).
//! * `memberOf()`: there is no terminology service here, so it is always empty
//!   (unknown), which leaves an invariant using it satisfied. Binding checks belong to
//!   the validator, which holds the value sets.
//! * `conformsTo(url)`: true/false for the base definitions
//!   (`http://hl7.org/fhir/StructureDefinition/<Type>`), empty for other profiles.
//! * `htmlChecks()`: a tag scanner for the R4 narrative rules: a root `div` in the
//!   XHTML namespace, well nested, only the allowed formatting elements and attributes,
//!   no `javascript:` URLs (not a full XML parser: entities are not checked).
//! * Arithmetic on dates takes whole calendar units; decimal division gives 8 places.
//!
//! An empty result counts as a satisfied invariant; see [`Invariant::check`].

mod ast;
mod eval;
mod full;
mod lexer;
mod parser;
pub mod types;
mod types_gen;

pub use ast::{BinaryOp, Expr, Function, Literal, TypeSpec};
pub use eval::{Node, reference_type};
pub use full::{EvalError, Focus, Invariant};
pub use parser::parse;

/// Why an expression did not compile; `offset` is a byte offset into the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("FHIRPath parse error at {offset}: {message}")]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

impl ParseError {
    fn new(offset: usize, message: &str) -> Self {
        ParseError {
            offset,
            message: message.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
