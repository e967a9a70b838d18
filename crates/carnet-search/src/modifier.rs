//! Search modifiers (`name:modifier=value`) and which parameter types accept them.

use crate::registry::ParamType;

/// A modifier as the registry describes what a parameter type accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModifierKind {
    Missing,
    Exact,
    Contains,
    Text,
    Not,
    OfType,
    Above,
    Below,
    Identifier,
    /// `:[Type]` on a reference parameter.
    Type,
}

/// A parsed modifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modifier {
    Missing,
    Exact,
    Contains,
    Text,
    Not,
    OfType,
    Above,
    Below,
    Identifier,
    /// `subject:Patient=123`: the reference must point to this resource type.
    Type(String),
}

impl Modifier {
    pub fn kind(&self) -> ModifierKind {
        match self {
            Modifier::Missing => ModifierKind::Missing,
            Modifier::Exact => ModifierKind::Exact,
            Modifier::Contains => ModifierKind::Contains,
            Modifier::Text => ModifierKind::Text,
            Modifier::Not => ModifierKind::Not,
            Modifier::OfType => ModifierKind::OfType,
            Modifier::Above => ModifierKind::Above,
            Modifier::Below => ModifierKind::Below,
            Modifier::Identifier => ModifierKind::Identifier,
            Modifier::Type(_) => ModifierKind::Type,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Modifier::Missing => "missing",
            Modifier::Exact => "exact",
            Modifier::Contains => "contains",
            Modifier::Text => "text",
            Modifier::Not => "not",
            Modifier::OfType => "of-type",
            Modifier::Above => "above",
            Modifier::Below => "below",
            Modifier::Identifier => "identifier",
            Modifier::Type(t) => t,
        }
    }

    /// Modifiers the spec defines but this server refuses (they need terminology
    /// services or hierarchy knowledge), so the error can say so.
    pub(crate) fn is_known_unsupported(name: &str) -> bool {
        matches!(name, "in" | "not-in" | "iterate")
    }

    pub(crate) fn parse(name: &str) -> Option<Modifier> {
        Some(match name {
            "missing" => Modifier::Missing,
            "exact" => Modifier::Exact,
            "contains" => Modifier::Contains,
            "text" => Modifier::Text,
            "not" => Modifier::Not,
            "of-type" => Modifier::OfType,
            "above" => Modifier::Above,
            "below" => Modifier::Below,
            "identifier" => Modifier::Identifier,
            t if crate::registry::is_resource_type(t) => Modifier::Type(t.to_owned()),
            _ => return None,
        })
    }
}

/// What each parameter type accepts. Token `:above`/`:below` (subsumption) and
/// reference `:above`/`:below` need hierarchies we do not have, so they are absent.
pub fn allowed(param_type: ParamType) -> &'static [ModifierKind] {
    use ModifierKind::*;
    match param_type {
        ParamType::String => &[Missing, Exact, Contains],
        ParamType::Token => &[Missing, Not, Text, OfType],
        ParamType::Reference => &[Missing, Identifier, Type],
        ParamType::Uri => &[Missing, Above, Below],
        ParamType::Number | ParamType::Date | ParamType::Quantity | ParamType::Composite => &[Missing],
        ParamType::Special => &[],
    }
}
