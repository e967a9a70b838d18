//! FHIR-level helpers that know nothing of HTTP or SQL: outcomes, instants, `meta`,
//! formats and resource shaping.

pub mod bundle;
pub mod form;
pub mod format;
pub mod instant;
pub mod meta;
pub mod outcome;
pub mod summary;
