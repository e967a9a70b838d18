//! Typed index values: what extraction produces for each (resource, parameter) pair and
//! what the SQL layer stores. Ranges let one comparison handle every precision.

/// One indexed value of one parameter of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry<'r> {
    /// The parameter's code, e.g. `birthdate`.
    pub param: &'r str,
    pub value: IndexValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    String(StringValue),
    Token(TokenValue),
    Reference(ReferenceValue),
    Date(DateRange),
    Number(NumberValue),
    Quantity(QuantityValue),
    Uri(UriValue),
    /// One element's values of each component, in the parameter's component order. A
    /// value matches when, for every component, one of that component's values of the
    /// same element does: the element is the unit, not each combination of its values
    /// (an Observation with two codings and one quantity stores three values, not the
    /// four of two combinations).
    Composite(Vec<Vec<IndexValue>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringValue {
    /// [`crate::normalize`]d: lower case, accents stripped. Default search is a prefix
    /// match on this, `:contains` a substring match.
    pub normalized: String,
    /// As written, for `:exact`.
    pub exact: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenValue {
    pub system: Option<String>,
    pub code: Option<String>,
    /// Normalised Coding.display / CodeableConcept.text / Identifier.type.text, for `:text`.
    pub text: Option<String>,
    /// An Identifier.type coding, for `:of-type` (`type-system|type-code|value`).
    pub of_type_system: Option<String>,
    pub of_type_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReferenceValue {
    /// From `Type/id`, or the tail of an absolute URL when it has that shape.
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// Absolute URLs, `urn:uuid:`/`urn:oid:`, `#contained` and canonicals (without
    /// `|version`).
    pub url: Option<String>,
    /// The `|version` of a canonical, or the `_history` version of a reference.
    pub version: Option<String>,
    /// Reference.identifier, for `:identifier` (system and code as a token).
    pub identifier: Option<TokenValue>,
}

/// A closed range of UTC epoch microseconds: both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub low: i64,
    pub high: i64,
}

impl DateRange {
    /// Open ends of a Period.
    pub const MIN: i64 = i64::MIN;
    pub const MAX: i64 = i64::MAX;
}

/// A number with the range its written precision implies: `100` covers `[99.5, 100.5)`.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberValue {
    /// None for a Range, which only has bounds.
    pub value: Option<f64>,
    /// The decimal as written (serde_json keeps the text), for exact storage.
    pub text: Option<String>,
    /// Inclusive.
    pub low: f64,
    /// Exclusive, except for a Range's `high`, which is inclusive.
    pub high: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuantityValue {
    pub number: NumberValue,
    pub system: Option<String>,
    pub code: Option<String>,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriValue {
    pub uri: String,
}
