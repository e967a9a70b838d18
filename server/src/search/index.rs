//! Search index rows, written in the same transaction as the version they describe.

use serde_json::Value;

use crate::store::{StoreError, Tx};

/// Replaces the index rows of resource `pk` with those extracted from `resource`.
pub async fn replace(_tx: &mut Tx, _pk: i64, _res_type: &str, _resource: &Value) -> Result<(), StoreError> {
    Ok(())
}

/// Removes the index rows of a deleted resource.
pub async fn clear(_tx: &mut Tx, _pk: i64) -> Result<(), StoreError> {
    Ok(())
}
