//! `POST [base]/Observation/{id}/$release` (and DiagnosticReport): a practitioner
//! publishes a result to the patient (R2, R3). Recorded on the result as a `meta.tag`
//! in a new version, so other systems see it; releasing again writes nothing.

use serde_json::{Value, json};

use super::Access;
use super::maintain::{RELEASE_CODE, RELEASE_SYSTEM, has_release_tag};
use super::visibility;
use crate::auth::principal::Actor;
use crate::error::{Error, Result};
use crate::service::write::{self, Written};
use crate::state::AppState;
use crate::store::{StoreError, Tx};

/// The released result's current version; `None` in `Ok` when it was released already
/// (nothing written).
pub async fn release(
    state: &AppState,
    access: &Access,
    tx: &mut Tx,
    res_type: &str,
    id: &str,
) -> Result<(Option<Written>, Vec<u8>, i64, i64)> {
    if !matches!(res_type, "Observation" | "DiagnosticReport") {
        return Err(Error::NotFound(format!("$release is not defined on {res_type}")));
    }
    if !matches!(access.actor(), Some(Actor::Practitioner { .. }) | None) {
        visibility::check_instance(access, tx, res_type, id).await?;
        return Err(access.forbidden("release-practitioner"));
    }
    // Concurrent releases of one result take turns (PostgreSQL: the row is locked until
    // commit; SQLite's writer is already alone), so the later ones read the released
    // version and write nothing, instead of failing their version check with 412
    // (found by `tests/concurrency.rs`).
    crate::store::resources::current_for_update(tx, res_type, id).await?;
    let v = visibility::read(access, tx, res_type, id).await?;
    let content = v.content.unwrap_or_default();
    let mut doc: Value =
        serde_json::from_slice(&content).map_err(|e| StoreError::Corrupt(format!("{res_type}/{id}: {e}")))?;
    if has_release_tag(&doc) {
        return Ok((None, content, v.version, v.last_updated));
    }
    let tag = json!({"system": RELEASE_SYSTEM, "code": RELEASE_CODE, "display": "Released to the patient"});
    match doc["meta"]["tag"].as_array_mut() {
        Some(tags) => tags.push(tag),
        None => doc["meta"]["tag"] = json!([tag]),
    }
    let Value::Object(map) = doc else {
        return Err(Error::Internal(format!("{res_type}/{id} is not an object")));
    };
    let w = write::update_checked(state, tx, res_type, id, map, Some(v.version), "PUT").await?;
    let (c, ver, lu) = (w.content.clone(), w.version, w.last_updated);
    Ok((Some(w), c, ver, lu))
}
