//! R4 search parameters: the registry of definitions, extraction of typed index values
//! from resources, and parsing of search URLs. Storage and SQL live elsewhere.

mod datetime;
mod extract;
mod modifier;
mod normalize;
mod number;
pub mod query;
mod registry;
mod values;

pub use datetime::parse_range as parse_date_range;
pub use extract::{extract_param, node_values, parse_reference};
pub use modifier::{Modifier, ModifierKind, allowed as allowed_modifiers};
pub use normalize::normalize;
pub use number::parse_number;
pub use query::{
    ChainStep, Criterion, Include, ParsedQuery, Prefix, QueryError, QueryValue, ResultParams, SearchValue, SortKey,
    Summary, TokenQuery, TokenSystem, Total, parse_query,
};
pub use registry::{Component, ParamType, Registry, RegistryError, SearchParam, is_resource_type, resource_types};
pub use values::*;
