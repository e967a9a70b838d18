//! The compiled form of a full FHIRPath expression.

use super::value::{Dec, Temporal};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum E {
    /// The input collection: the implicit start of a path.
    Input,
    /// `$this`
    This,
    /// `$index`
    Index,
    /// `$total`
    Total,
    Var(Var),
    /// `{}`
    Empty,
    Bool(bool),
    Str(String),
    Int(i64),
    Dec(Dec),
    Temporal(Temporal),
    Quantity(Dec, String),
    Member(Box<E>, String),
    Indexer(Box<E>, Box<E>),
    Call(Box<E>, Func, Vec<E>),
    Bin(Op, Box<E>, Box<E>),
    Neg(Box<E>),
    Is(Box<E>, String),
    As(Box<E>, String),
    /// `ofType(T)`: like `as`, but over a collection without the singleton rule.
    OfType(Box<E>, String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Var {
    Context,
    Resource,
    RootResource,
    Ucum,
    Sct,
    Loinc,
    /// `%vs-name` / `%ext-name` and any other: a URL the spec derives from the name.
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Implies,
    Or,
    Xor,
    And,
    In,
    Contains,
    Eq,
    Ne,
    Equiv,
    NotEquiv,
    Lt,
    Gt,
    Le,
    Ge,
    Union,
    Add,
    Sub,
    Concat,
    Mul,
    Div,
    IntDiv,
    Mod,
}

macro_rules! funcs {
    ($($variant:ident = $name:literal),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Func { $($variant),* }

        impl Func {
            pub(crate) fn from_name(name: &str) -> Option<Func> {
                match name { $($name => Some(Func::$variant),)* _ => None }
            }
        }
    };
}

funcs! {
    Empty = "empty", Exists = "exists", All = "all", AllTrue = "allTrue", AnyTrue = "anyTrue",
    AllFalse = "allFalse", AnyFalse = "anyFalse", SubsetOf = "subsetOf", SupersetOf = "supersetOf",
    Count = "count", Distinct = "distinct", IsDistinct = "isDistinct", Where = "where",
    Select = "select", Repeat = "repeat", Single = "single", First = "first", Last = "last",
    Tail = "tail", Skip = "skip", Take = "take", Intersect = "intersect", Exclude = "exclude",
    Union = "union", Combine = "combine", Iif = "iif", Not = "not", HasValue = "hasValue",
    GetValue = "getValue", Children = "children", Descendants = "descendants", Trace = "trace",
    Matches = "matches", ReplaceMatches = "replaceMatches", StartsWith = "startsWith",
    EndsWith = "endsWith", Contains = "contains", Length = "length", Substring = "substring",
    Lower = "lower", Upper = "upper", Replace = "replace", IndexOf = "indexOf", ToChars = "toChars",
    Trim = "trim", Split = "split", Join = "join",
    ToString = "toString", ToInteger = "toInteger", ToDecimal = "toDecimal",
    ToBoolean = "toBoolean", ToDate = "toDate", ToDateTime = "toDateTime", ToTime = "toTime",
    ToQuantity = "toQuantity", ConvertsToString = "convertsToString",
    ConvertsToInteger = "convertsToInteger", ConvertsToDecimal = "convertsToDecimal",
    ConvertsToBoolean = "convertsToBoolean", ConvertsToDate = "convertsToDate",
    ConvertsToDateTime = "convertsToDateTime", ConvertsToTime = "convertsToTime",
    ConvertsToQuantity = "convertsToQuantity", Extension = "extension", Resolve = "resolve",
    Today = "today", Now = "now", TimeOfDay = "timeOfDay", MemberOf = "memberOf",
    ConformsTo = "conformsTo", HtmlChecks = "htmlChecks", LowBoundary = "lowBoundary",
    HighBoundary = "highBoundary", Abs = "abs", Ceiling = "ceiling", Floor = "floor",
    Round = "round", Truncate = "truncate", Aggregate = "aggregate",
}
