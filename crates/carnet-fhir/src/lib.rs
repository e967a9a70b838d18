//! FHIR R4 structure checks and XML <-> JSON conversion.
//!
//! fhirbolt's generated R4 model is huge; every use of it sits behind the three plain
//! functions of `carnet-fhirbolt`, so it is monomorphised and compiled once, there,
//! while this crate (and the rest of the server) works with `serde_json::Value`.
//!
//! fhirbolt's strict parser only checks the JSON shape it needs to fill its structs
//! (it accepts bad dates, bad codes, arrays for single elements...), so
//! [`check_resource`] first walks the JSON against a table of R4 element definitions
//! generated from the official package (`scripts/gen-r4-elements.py`), and only then
//! asks fhirbolt as a backstop.

mod bolt;
mod check;
mod elements;
mod flags;
mod primitives;
mod resource_types;
mod types;
mod xml;

pub use check::check_resource;
pub use flags::{is_mandatory_element, is_summary_element};
pub use resource_types::RESOURCE_TYPES;
pub use types::{Issue, Severity};
pub use xml::{from_xml, to_xml};

/// Whether `name` is a concrete R4 resource type (case-sensitive).
pub fn is_resource_type(name: &str) -> bool {
    RESOURCE_TYPES.binary_search(&name).is_ok()
}
