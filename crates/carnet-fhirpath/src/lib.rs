//! The FHIRPath subset that R4 SearchParameter expressions use, evaluated over
//! `serde_json::Value` resources in their JSON form.
//!
//! Supported: paths (with choice elements, `value` matching `valueQuantity`), `[n]`,
//! `|`, `=`, `!=`, `and`, `or`, `xor`, `implies`, `as`/`is` (operators and functions),
//! `ofType()`, `where()`, `exists()`, `empty()`, `not()`, `first()`, `last()`,
//! `resolve()` (typed from the reference string, no resolver), `extension('url')`,
//! `hasValue()`, `%resource`, `$this`, string/number/boolean literals.

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
