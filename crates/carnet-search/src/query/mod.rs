//! Search URL parameters (https://hl7.org/fhir/R4/search.html) to a validated,
//! typed form. Criteria are ANDed; each criterion's values are ORed.

mod escape;
mod name;
mod render;
mod result;
mod value;

use crate::modifier::Modifier;
use crate::registry::{ParamType, Registry};
use crate::values::{DateRange, NumberValue, ReferenceValue};

pub use result::{Include, RESULT_PARAMS, ResultParams, SortKey, Summary, Total};

/// A parameter the server refuses (400) or, when lenient, ignored and reports back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct QueryError {
    /// The parameter name as the client wrote it (with modifier / chain).
    pub param: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedQuery {
    pub resource_type: Option<String>,
    /// ANDed.
    pub criteria: Vec<Criterion>,
    pub result: ResultParams,
    /// With `lenient`: the parameters dropped and why (for an OperationOutcome warning).
    pub ignored: Vec<QueryError>,
}

/// One hop before the parameter that finally tests values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainStep {
    /// `subject:Patient.` / `subject.`: follow reference parameter `param` of the
    /// current resources to resources of one of `target_types`.
    Forward {
        param: String,
        explicit_type: Option<String>,
        target_types: Vec<String>,
    },
    /// `_has:Observation:patient:`: the current resources are those referenced by
    /// `param` of some `source_type` resource matching the rest.
    Reverse { source_type: String, param: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    pub chain: Vec<ChainStep>,
    /// The types `param` is evaluated on: the searched type, the chain's last targets,
    /// or for system search `_type`'s types (`Resource` when none).
    pub resource_types: Vec<String>,
    /// The final parameter's code.
    pub param: String,
    pub param_type: ParamType,
    pub modifier: Option<Modifier>,
    /// ORed; never empty.
    pub values: Vec<QueryValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryValue {
    /// The value as sent (still escaped), for re-rendering.
    pub raw: String,
    pub value: SearchValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prefix {
    #[default]
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

impl Prefix {
    pub fn parse(s: &str) -> Option<Prefix> {
        Some(match s {
            "eq" => Prefix::Eq,
            "ne" => Prefix::Ne,
            "gt" => Prefix::Gt,
            "lt" => Prefix::Lt,
            "ge" => Prefix::Ge,
            "le" => Prefix::Le,
            "sa" => Prefix::Sa,
            "eb" => Prefix::Eb,
            "ap" => Prefix::Ap,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Prefix::Eq => "eq",
            Prefix::Ne => "ne",
            Prefix::Gt => "gt",
            Prefix::Lt => "lt",
            Prefix::Ge => "ge",
            Prefix::Le => "le",
            Prefix::Sa => "sa",
            Prefix::Eb => "eb",
            Prefix::Ap => "ap",
        }
    }
}

/// The system part of a token query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSystem {
    /// `code`: any system (or none).
    Any,
    /// `|code`: the value must have no system.
    None,
    /// `system|code` or `system|`.
    Is(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenQuery {
    pub system: TokenSystem,
    /// `None` for `system|` (any code in the system).
    pub code: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SearchValue {
    /// `:missing=true|false`
    Missing(bool),
    /// Unescaped, and [`crate::normalize`]d for the default/`:contains` matches.
    String {
        value: String,
        normalized: String,
    },
    Token(TokenQuery),
    /// Token `:text`: normalised text to match display/text.
    Text(String),
    /// Token `:of-type` (`type-system|type-code|value`).
    OfType {
        type_system: String,
        type_code: String,
        value: String,
    },
    /// `Type/id`, bare `id` (type from `:Type` or a single-target parameter), or an
    /// absolute URL / canonical (with `|version`).
    Reference(ReferenceValue),
    /// Reference `:identifier`.
    Identifier(TokenQuery),
    /// The range the date covers at its precision; the prefix says how to compare.
    Date {
        prefix: Prefix,
        range: DateRange,
    },
    Number {
        prefix: Prefix,
        number: NumberValue,
    },
    Quantity {
        prefix: Prefix,
        number: NumberValue,
        system: Option<String>,
        code: Option<String>,
    },
    /// Uri (also with `:above` / `:below`).
    Uri(String),
    /// `a$b`: one value per component, in the parameter's component order.
    Composite(Vec<SearchValue>),
}

/// Parses search parameters. `resource_type` is `None` for a system-level search.
/// `lenient` (`Prefer: handling=lenient`) drops bad parameters into `ignored`
/// instead of failing.
pub fn parse_query(
    registry: &Registry,
    resource_type: Option<&str>,
    pairs: &[(String, String)],
    lenient: bool,
) -> Result<ParsedQuery, Vec<QueryError>> {
    let mut errors = Vec::new();
    let mut query = ParsedQuery {
        resource_type: resource_type.map(str::to_owned),
        ..ParsedQuery::default()
    };
    if let Some(t) = resource_type
        && !crate::registry::is_resource_type(t)
    {
        return Err(vec![QueryError {
            param: "_type".into(),
            message: format!("unknown resource type {t}"),
        }]);
    }
    let (result_pairs, criteria_pairs): (Vec<_>, Vec<_>) = pairs.iter().partition(|(k, _)| result::is_result_param(k));
    for (key, val) in result_pairs {
        if let Err(message) = result::apply(registry, resource_type, &mut query.result, key, val) {
            errors.push(QueryError {
                param: key.clone(),
                message,
            });
        }
    }
    let base_types: Vec<String> = match resource_type {
        Some(t) => vec![t.to_owned()],
        None if !query.result.types.is_empty() => query.result.types.clone(),
        None => vec!["Resource".to_owned()],
    };
    for (key, val) in criteria_pairs {
        // An empty value means no criterion (R4 search §3.1.1.6).
        if val.is_empty() {
            continue;
        }
        match name::resolve(registry, &base_types, key).and_then(|target| value::criterion(registry, target, val)) {
            Ok(c) => query.criteria.push(c),
            Err(message) => errors.push(QueryError {
                param: key.clone(),
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(query)
    } else if lenient {
        query.ignored = errors;
        Ok(query)
    } else {
        Err(errors)
    }
}
