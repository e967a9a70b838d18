//! The compiled form of an expression.

/// A compiled FHIRPath expression (the subset used by R4 search parameters).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The focus: `$this`, or the implicit start of a path.
    This,
    /// `%resource` / `%rootResource` / `%context`: the resource being evaluated.
    Resource,
    Literal(Literal),
    /// `focus.name`; a leading upper-case name may also be a resource type filter.
    Member(Box<Expr>, String),
    /// `focus[n]`
    Index(Box<Expr>, usize),
    /// `focus.fn(...)`
    Call(Box<Expr>, Function),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `focus as Type`, `focus.as(Type)`, `focus.ofType(Type)`
    As(Box<Expr>, TypeSpec),
    /// `focus is Type`, `focus.is(Type)`
    Is(Box<Expr>, TypeSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Boolean(bool),
    /// Kept as text so comparisons follow decimal, not binary, semantics.
    Number(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Union,
    Equals,
    NotEquals,
    And,
    Or,
    Xor,
    Implies,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Function {
    Where(Box<Expr>),
    Exists(Option<Box<Expr>>),
    Empty,
    Not,
    First,
    Last,
    /// Without a resolver: yields the Reference itself, typed by its `reference` string.
    Resolve,
    /// `extension('url')`
    Extension(String),
    HasValue,
}

/// A type name as written, with the interned name when it is a known FHIR type.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeSpec {
    pub name: String,
    pub known: Option<&'static str>,
}
