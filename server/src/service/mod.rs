//! FHIR interactions independent of HTTP: the handlers and the Bundle processor both
//! call these, always inside a store transaction.

pub mod bundle;
pub mod conditional;
pub mod export;
pub mod history;
pub mod ids;
pub mod import;
pub mod read;
pub mod reindex;
pub mod validate;
pub mod write;
