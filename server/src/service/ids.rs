//! Resource types and logical ids as they appear in URLs.

use crate::error::{Error, Result};

pub fn check_type(res_type: &str) -> Result<()> {
    if carnet_fhir::is_resource_type(res_type) {
        Ok(())
    } else {
        Err(Error::NotFound(format!("Unknown resource type '{res_type}'")))
    }
}

/// FHIR ids: 1 to 64 of `[A-Za-z0-9-.]`. Checked before any lookup, so odd ids (path
/// traversal, SQL, huge strings) are refused up front.
pub fn check_id(id: &str) -> Result<()> {
    let ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_at(
            "value",
            "id",
            format!("'{}' is not a valid FHIR id", truncate(id, 80)),
        ))
    }
}

/// A new server id: a UUID of version 7, whose leading bits are the time. Ids made
/// one after the other sort together, so the rows that key on them (the `resources`
/// index on type and id, references to new resources, every AuditEvent) go to the
/// right edge of their B-trees instead of a random page each: fewer pages written a
/// commit. The 74 bits after the time are random, so ids still cannot be guessed.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
