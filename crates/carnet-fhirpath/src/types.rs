//! Resolving type names (from choice-element suffixes, `as`/`is`/`ofType` and reference
//! strings) to the interned `&'static str` names nodes carry.

pub use crate::types_gen::{DATA_TYPES, RESOURCE_TYPES};

/// A resource type name, e.g. the `Patient` of `Patient/123`.
pub fn resource_type(name: &str) -> Option<&'static str> {
    RESOURCE_TYPES.binary_search(&name).ok().map(|i| RESOURCE_TYPES[i])
}

/// The data type a choice key's suffix names: `Quantity` in `valueQuantity`, `dateTime` in
/// `effectiveDateTime` (JSON upper-cases the first letter of primitive type names).
pub fn choice_suffix_type(suffix: &str) -> Option<&'static str> {
    let mut chars = suffix.chars();
    let first = chars.next().filter(char::is_ascii_uppercase)?;
    let rest = chars.as_str();
    DATA_TYPES.iter().copied().find(|t| {
        let mut tc = t.chars();
        tc.next().is_some_and(|c| c.to_ascii_uppercase() == first) && tc.as_str() == rest
    })
}

/// Resolves a type specifier written in an expression. The first letter is compared
/// case-insensitively because R4 definitions themselves write `value.as(DateTime)`.
pub fn type_specifier(name: &str) -> Option<&'static str> {
    let name = name
        .strip_prefix("FHIR.")
        .or_else(|| name.strip_prefix("System."))
        .unwrap_or(name);
    if let Some(t) = resource_type(name).or_else(|| DATA_TYPES.iter().copied().find(|t| *t == name)) {
        return Some(t);
    }
    let mut chars = name.chars();
    let first = chars.next()?;
    let rest = chars.as_str();
    DATA_TYPES.iter().copied().find(|t| {
        let mut tc = t.chars();
        tc.next().is_some_and(|c| c.eq_ignore_ascii_case(&first)) && tc.as_str() == rest
    })
}

/// Whether a value of type `actual` is also a `wanted` (FHIR's specialisations that
/// search expressions rely on, e.g. `Age` is a `Quantity`, `code` is a `string`).
pub fn is_a(actual: &str, wanted: &str) -> bool {
    if actual == wanted {
        return true;
    }
    match wanted {
        "Quantity" => matches!(
            actual,
            "Age" | "Count" | "Distance" | "Duration" | "SimpleQuantity" | "MoneyQuantity"
        ),
        "string" => matches!(actual, "code" | "id" | "markdown"),
        "uri" => matches!(actual, "canonical" | "url" | "uuid" | "oid"),
        "integer" => matches!(actual, "positiveInt" | "unsignedInt"),
        "DomainResource" => !matches!(actual, "Bundle" | "Binary" | "Parameters") && resource_type(actual).is_some(),
        "Resource" => resource_type(actual).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types_are_sorted() {
        assert!(RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(resource_type("Resource"), Some("Resource"));
        assert_eq!(resource_type("Patient"), Some("Patient"));
    }

    #[test]
    fn choice_suffixes() {
        assert_eq!(choice_suffix_type("Quantity"), Some("Quantity"));
        assert_eq!(choice_suffix_type("DateTime"), Some("dateTime"));
        assert_eq!(choice_suffix_type("String"), Some("string"));
        assert_eq!(choice_suffix_type("History"), None);
        assert_eq!(choice_suffix_type("quantity"), None);
    }

    #[test]
    fn specifiers() {
        assert_eq!(type_specifier("DateTime"), Some("dateTime"));
        assert_eq!(type_specifier("FHIR.Patient"), Some("Patient"));
        assert_eq!(type_specifier("Nope"), None);
        assert!(is_a("Age", "Quantity"));
        assert!(is_a("Patient", "DomainResource"));
        assert!(!is_a("Bundle", "DomainResource"));
    }
}
