//! Create, update, patch and delete: each writes a new version, its search index rows
//! and the resource's head row inside the caller's transaction.

use serde_json::{Map, Value};

use super::{ids, validate};
use crate::error::{Error, Result};
use crate::fhir::meta;
use crate::search;
use crate::state::AppState;
use crate::store::{Tx, resources};

/// A version that was just written.
#[derive(Debug, Clone)]
pub struct Written {
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub last_updated: i64,
    /// The stored JSON, as a read will return it.
    pub content: Vec<u8>,
    /// True when this write created the resource (201), false for a new version (200).
    pub created: bool,
}

#[derive(Debug, Clone)]
pub struct Deleted {
    /// The version id of the delete, `None` when the resource was already deleted.
    pub version: Option<i64>,
}

pub async fn create(state: &AppState, tx: &mut Tx, res_type: &str, body: Value) -> Result<Written> {
    let resource = validate::resource(res_type, body, None)?;
    create_checked(state, tx, res_type, resource, None).await
}

/// Stores a validated resource under a new server id (or `id` when the caller already
/// chose it, as a transaction does for its `urn:uuid:` entries).
pub async fn create_checked(
    state: &AppState,
    tx: &mut Tx,
    res_type: &str,
    resource: Map<String, Value>,
    id: Option<String>,
) -> Result<Written> {
    let id = id.unwrap_or_else(ids::new_id);
    let now = state.now();
    let pk = resources::insert_head(tx, res_type, &id, now)
        .await?
        .ok_or_else(|| Error::Conflict(format!("{res_type}/{id} already exists")))?;
    store_version(state, tx, pk, res_type, &id, 1, now, "POST", resource, true).await
}

/// `PUT [type]/[id]`: a new version, or the first one when the id is new (update as
/// create). `if_match` is the version the client last saw.
pub async fn update(
    state: &AppState,
    tx: &mut Tx,
    res_type: &str,
    id: &str,
    body: Value,
    if_match: Option<i64>,
) -> Result<Written> {
    ids::check_id(id)?;
    let resource = validate::resource(res_type, body, Some(id))?;
    update_checked(state, tx, res_type, id, resource, if_match, "PUT").await
}

pub async fn update_checked(
    state: &AppState,
    tx: &mut Tx,
    res_type: &str,
    id: &str,
    resource: Map<String, Value>,
    if_match: Option<i64>,
    method: &str,
) -> Result<Written> {
    let now = state.now();
    // Two rounds at most: if a concurrent writer creates the same id between our
    // lookup and our insert, the second round finds it and makes a new version.
    for _ in 0..2 {
        match resources::current_for_update(tx, res_type, id).await? {
            None => {
                if if_match.is_some() {
                    return Err(Error::PreconditionFailed(format!(
                        "If-Match was given but {res_type}/{id} does not exist"
                    )));
                }
                if let Some(pk) = resources::insert_head(tx, res_type, id, now).await? {
                    return store_version(state, tx, pk, res_type, id, 1, now, method, resource, true).await;
                }
            }
            Some(cur) => {
                check_if_match(res_type, id, if_match, cur.version)?;
                let now = now.max(cur.last_updated);
                let version = cur.version + 1;
                resources::update_head(tx, cur.pk, version, now, false).await?;
                return store_version(
                    state,
                    tx,
                    cur.pk,
                    res_type,
                    id,
                    version,
                    now,
                    method,
                    resource,
                    cur.deleted,
                )
                .await;
            }
        }
    }
    Err(Error::Conflict(format!(
        "{res_type}/{id} was changed concurrently; retry"
    )))
}

/// `PATCH [type]/[id]` with a JSON Patch document.
pub async fn patch(
    state: &AppState,
    tx: &mut Tx,
    res_type: &str,
    id: &str,
    patch: Value,
    if_match: Option<i64>,
) -> Result<Written> {
    ids::check_id(id)?;
    let patch: json_patch::Patch = serde_json::from_value(patch)
        .map_err(|e| Error::invalid("structure", format!("Not a JSON Patch document: {e}")))?;
    let cur = resources::current_for_update(tx, res_type, id).await?;
    let Some(cur) = cur.filter(|c| !c.deleted) else {
        return Err(Error::NotFound(format!("{res_type}/{id} not found")));
    };
    check_if_match(res_type, id, if_match, cur.version)?;
    let stored = resources::read_version(tx, res_type, id, cur.version)
        .await?
        .and_then(|v| v.content)
        .ok_or_else(|| Error::NotFound(format!("{res_type}/{id} not found")))?;
    let mut doc: Value = serde_json::from_slice(&stored)
        .map_err(|e| crate::store::StoreError::Corrupt(format!("{res_type}/{id}: {e}")))?;
    json_patch::patch(&mut doc, &patch).map_err(|e| {
        Error::Unprocessable(vec![crate::fhir::outcome::Issue::error(
            "processing",
            format!("The patch cannot be applied: {e}"),
        )])
    })?;
    // meta.versionId/lastUpdated are the server's: whatever the patch did to them is redone.
    let resource = validate::resource(res_type, doc, Some(id))?;
    update_checked(state, tx, res_type, id, resource, Some(cur.version), "PATCH").await
}

pub async fn delete(state: &AppState, tx: &mut Tx, res_type: &str, id: &str, if_match: Option<i64>) -> Result<Deleted> {
    ids::check_id(id)?;
    let Some(cur) = resources::current_for_update(tx, res_type, id).await? else {
        return Err(Error::NotFound(format!("{res_type}/{id} not found")));
    };
    check_if_match(res_type, id, if_match, cur.version)?;
    if cur.deleted {
        return Ok(Deleted { version: None });
    }
    let now = state.now().max(cur.last_updated);
    let version = cur.version + 1;
    resources::update_head(tx, cur.pk, version, now, true).await?;
    resources::insert_version(tx, cur.pk, res_type, version, now, "DELETE", None).await?;
    search::index::clear(tx, cur.pk).await?;
    crate::policy::maintain::on_delete(tx, cur.pk, res_type).await?;
    Ok(Deleted { version: Some(version) })
}

fn check_if_match(res_type: &str, id: &str, if_match: Option<i64>, current: i64) -> Result<()> {
    match if_match {
        Some(v) if v != current => Err(Error::PreconditionFailed(format!(
            "{res_type}/{id} is at version {current}, not {v}: it was changed since you read it"
        ))),
        _ => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn store_version(
    state: &AppState,
    tx: &mut Tx,
    pk: i64,
    res_type: &str,
    id: &str,
    version: i64,
    now: i64,
    method: &str,
    resource: Map<String, Value>,
    created: bool,
) -> Result<Written> {
    let stamped = Value::Object(meta::stamp(resource, id, version, now));
    let content = serde_json::to_vec(&stamped)
        .map_err(|e| Error::invalid("structure", format!("The resource cannot be serialised: {e}")))?;
    resources::insert_version(tx, pk, res_type, version, now, method, Some(&content)).await?;
    search::index::replace(tx, pk, res_type, &stamped).await?;
    crate::policy::maintain::on_write(tx, &state.config().policy, pk, res_type, id, &stamped, now).await?;
    Ok(Written {
        res_type: res_type.to_string(),
        id: id.to_string(),
        version,
        last_updated: now,
        content,
        created,
    })
}
