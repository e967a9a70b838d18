//! The R4 resource type names. The list itself lives once, in `carnet-fhirpath` (the
//! lightest crate, whose type namespace also holds the abstract bases); this is its
//! concrete part. `elements::tests` checks it against the generated element table.

use std::sync::LazyLock;

/// Every concrete R4 resource type, sorted (byte order) so it can be binary-searched.
pub static RESOURCE_TYPES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    carnet_fhirpath::types::RESOURCE_TYPES
        .iter()
        .copied()
        .filter(|t| !matches!(*t, "Resource" | "DomainResource"))
        .collect()
});
