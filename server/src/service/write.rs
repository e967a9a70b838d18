//! Create, update, patch and delete: each writes a new version, its search index rows
//! and the resource's head row inside the caller's transaction.

use std::collections::HashMap;

use carnet_search::Registry;
use serde_json::{Map, Value};

use super::{ids, validate};
use crate::error::{Error, Result};
use crate::fhir::meta;
use crate::policy::maintain;
use crate::search;
use crate::search::index::IndexRows;
use crate::state::AppState;
use crate::store::bulk::{self, ColType, Rows};
use crate::store::sql::{Bind, Kind};
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
    let resource = validate::resource(&state.config().profiles, res_type, body, None)?;
    create_checked(state, tx, res_type, resource, None).await
}

/// Creates a [`Draft`] made before the transaction under the id it was made for.
pub async fn create_drafted(state: &AppState, tx: &mut Tx, res_type: &str, id: &str, draft: Draft) -> Result<Written> {
    let now = state.now();
    let pk = resources::insert_head(tx, res_type, id, now)
        .await?
        .ok_or_else(|| Error::Conflict(format!("{res_type}/{id} already exists")))?;
    store_version(state, tx, pk, res_type, id, 1, now, "POST", draft, true).await
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
    let draft = Draft::of(res_type, &id, resource);
    create_drafted(state, tx, res_type, &id, draft).await
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
    let draft = Draft::checked(state, res_type, id, body, Some(id));
    update_drafted(state, tx, res_type, id, draft, if_match).await
}

/// [`update`] of a body checked and indexed before the transaction ([`Draft::checked`]
/// with `id`): its errors come where `update`'s validation would report them.
pub async fn update_drafted(
    state: &AppState,
    tx: &mut Tx,
    res_type: &str,
    id: &str,
    draft: Result<Draft>,
    if_match: Option<i64>,
) -> Result<Written> {
    ids::check_id(id)?;
    store_update(state, tx, res_type, id, draft?, if_match, "PUT").await
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
    store_update(
        state,
        tx,
        res_type,
        id,
        Draft::of(res_type, id, resource),
        if_match,
        method,
    )
    .await
}

async fn store_update(
    state: &AppState,
    tx: &mut Tx,
    res_type: &str,
    id: &str,
    draft: Draft,
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
                    return store_version(state, tx, pk, res_type, id, 1, now, method, draft, true).await;
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
                    draft,
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
    let resource = validate::resource(&state.config().profiles, res_type, doc, Some(id))?;
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
    maintain::on_delete(tx, cur.pk, res_type).await?;
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

/// What a stored version adds besides its content: search index rows and the policy's
/// compartment, both derived from one extraction of its search parameters.
pub struct Derived {
    pub index: IndexRows,
    pub compartment: Vec<String>,
}

impl Derived {
    pub fn of(res_type: &str, id: &str, stamped: &Value) -> Derived {
        let entries = Registry::r4().extract(res_type, stamped);
        Derived {
            index: IndexRows::of(res_type, &entries),
            compartment: maintain::compartment(res_type, id, &entries),
        }
    }
}

/// A checked resource with its search index and compartment already extracted.
/// Checking and extracting are most of a write's CPU and need no store, so the busiest
/// write paths do them before their transaction: on SQLite all that runs inside one
/// holds the database's only writer, which every other write waits for. Stamping
/// (version, `lastUpdated`) and serialising wait for the transaction, which fixes both.
pub struct Draft {
    /// Stamped provisionally (version 1, time 0): extraction reads `resourceType` and
    /// `id`, never `meta.versionId` or `meta.lastUpdated` (`_lastUpdated` is a column
    /// of `resources`, `search::index`), so the final stamp changes no derived row.
    resource: Map<String, Value>,
    derived: Derived,
}

impl Draft {
    /// `resource`, already checked, under `id`.
    pub fn of(res_type: &str, id: &str, resource: Map<String, Value>) -> Draft {
        let stamped = Value::Object(meta::stamp(resource, id, 1, 0));
        let derived = Derived::of(res_type, id, &stamped);
        let resource = match stamped {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Draft { resource, derived }
    }

    /// `body` checked as a write of `res_type` would check it (`expected_id`: the id an
    /// update's URL names), then [`Draft::of`] under `id`.
    pub fn checked(
        state: &AppState,
        res_type: &str,
        id: &str,
        body: Value,
        expected_id: Option<&str>,
    ) -> Result<Draft> {
        let resource = validate::resource(&state.config().profiles, res_type, body, expected_id)?;
        Ok(Draft::of(res_type, id, resource))
    }
}

/// `resource` as stored at `version` and `now`, and its JSON.
fn stamped(resource: Map<String, Value>, id: &str, version: i64, now: i64) -> Result<(Value, Vec<u8>)> {
    let stamped = Value::Object(meta::stamp(resource, id, version, now));
    let content = serde_json::to_vec(&stamped)
        .map_err(|e| Error::invalid("structure", format!("The resource cannot be serialised: {e}")))?;
    Ok((stamped, content))
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
    draft: Draft,
    created: bool,
) -> Result<Written> {
    let Draft { resource, derived } = draft;
    let (stamped, content) = stamped(resource, id, version, now)?;
    resources::insert_version(tx, pk, res_type, version, now, method, Some(&content)).await?;
    let written = maintain::Written {
        pk,
        res_type,
        resource: &stamped,
        compartment: &derived.compartment,
    };
    if version == 1 {
        // A head row just inserted (rows of `resources` are never removed, so its pk
        // is new): nothing to clear first, which on SQLite is eight statements.
        search::index::insert(tx, &[(pk, res_type, &derived.index)]).await?;
        maintain::on_create(tx, &state.config().policy, std::slice::from_ref(&written), now).await?;
    } else {
        search::index::replace(tx, pk, res_type, &derived.index).await?;
        maintain::on_write(tx, &state.config().policy, &written, now).await?;
    }
    Ok(Written {
        res_type: res_type.to_string(),
        id: id.to_string(),
        version,
        last_updated: now,
        content,
        created,
    })
}

/// A resource ready to be created by [`create_many`]: checked (or built by the server
/// itself, like an AuditEvent), stamped, serialised and indexed, with no I/O, so that
/// the costly part can run before (and beside) the transaction that stores it.
pub struct NewResource {
    pub res_type: String,
    pub id: String,
    pub content: Vec<u8>,
    pub stamped: Value,
    pub derived: Derived,
    pub last_updated: i64,
}

impl NewResource {
    /// Version 1 of `resource` under `id` (a new server id when `None`), stored at `now`.
    pub fn prepare(res_type: &str, resource: Map<String, Value>, id: Option<String>, now: i64) -> Result<NewResource> {
        let id = id.unwrap_or_else(ids::new_id);
        // Stamped once, at its final values: the projector's path, where a draft's
        // provisional stamp would be work done twice.
        let (stamped, content) = stamped(resource, &id, 1, now)?;
        let derived = Derived::of(res_type, &id, &stamped);
        Ok(NewResource::version_one(res_type, id, (stamped, content), derived, now))
    }

    /// Version 1 of a [`Draft`] made under `id`, stored at `now`.
    pub fn drafted(res_type: &str, id: String, draft: Draft, now: i64) -> Result<NewResource> {
        let Draft { resource, derived } = draft;
        let version = stamped(resource, &id, 1, now)?;
        Ok(NewResource::version_one(res_type, id, version, derived, now))
    }

    fn version_one(
        res_type: &str,
        id: String,
        (stamped, content): (Value, Vec<u8>),
        derived: Derived,
        now: i64,
    ) -> NewResource {
        NewResource {
            res_type: res_type.to_string(),
            id,
            content,
            stamped,
            derived,
            last_updated: now,
        }
    }
}

const HEAD_COLUMNS: &[(&str, ColType)] = &[
    ("res_type", ColType::Text),
    ("res_id", ColType::Text),
    ("version", ColType::I64),
    ("last_updated", ColType::I64),
    ("deleted", ColType::Bool),
];

const VERSION_COLUMNS: &[(&str, ColType)] = &[
    ("pk", ColType::I64),
    ("res_type", ColType::Text),
    ("version", ColType::I64),
    ("last_updated", ColType::I64),
    ("method", ColType::Text),
    ("content", ColType::Bytes),
];

/// Creates many resources in the caller's transaction with a few statements per table
/// instead of a few per resource: the path of the audit trail and of imports. Fails
/// with a conflict, writing nothing the caller keeps, if any type/id already exists.
pub async fn create_many(state: &AppState, tx: &mut Tx, items: &[&NewResource], method: &str) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut heads = Rows::new("resources", HEAD_COLUMNS);
    heads.reserve(items.len());
    for n in items {
        heads.push([
            Bind::Text(Some(n.res_type.clone())),
            Bind::Text(Some(n.id.clone())),
            Bind::I64(Some(1)),
            Bind::I64(Some(n.last_updated)),
            Bind::Bool(false),
        ]);
    }
    let returned = bulk::insert_returning(
        tx,
        &heads,
        "ON CONFLICT (res_type, res_id) DO NOTHING RETURNING pk, res_type, res_id",
        &[Kind::I64, Kind::Text, Kind::Text],
    )
    .await?;
    // RETURNING order is not promised: match rows back by type and id.
    let pks: HashMap<(&str, &str), i64> = returned
        .iter()
        .filter_map(|r| Some(((r[1].text()?, r[2].text()?), r[0].i64()?)))
        .collect();
    let mut versions = Rows::new("resource_versions", VERSION_COLUMNS);
    versions.reserve(items.len());
    let mut index = Vec::with_capacity(items.len());
    let mut policy = Vec::with_capacity(items.len());
    for n in items {
        let Some(&pk) = pks.get(&(n.res_type.as_str(), n.id.as_str())) else {
            return Err(Error::Conflict(format!("{}/{} already exists", n.res_type, n.id)));
        };
        versions.push([
            Bind::I64(Some(pk)),
            Bind::Text(Some(n.res_type.clone())),
            Bind::I64(Some(1)),
            Bind::I64(Some(n.last_updated)),
            Bind::Text(Some(method.to_string())),
            Bind::Bytes(Some(n.content.clone())),
        ]);
        index.push((pk, n.res_type.as_str(), &n.derived.index));
        policy.push(maintain::Written {
            pk,
            res_type: &n.res_type,
            resource: &n.stamped,
            compartment: &n.derived.compartment,
        });
    }
    bulk::insert(tx, &versions, "").await?;
    search::index::insert(tx, &index).await?;
    let now = items.iter().map(|n| n.last_updated).max().unwrap_or_default();
    maintain::on_create(tx, &state.config().policy, &policy, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Derived, Draft, stamped};

    /// A draft is indexed before its version and time are known: its rows must be
    /// those of the resource as finally stamped (tags, profile and source included).
    #[test]
    fn a_draft_has_the_rows_of_the_final_version() {
        let body = json!({
            "resourceType": "Observation",
            "meta": {"tag": [{"system": "http://example.org/t", "code": "t1"}],
                     "profile": ["http://example.org/p"], "source": "http://example.org/s",
                     "versionId": "7", "lastUpdated": "2001-01-01T00:00:00Z"},
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-01-01",
            "valueQuantity": {"value": 5, "system": "http://unitsofmeasure.org", "code": "mg"}
        });
        let serde_json::Value::Object(map) = body else {
            panic!("an object")
        };
        let draft = Draft::of("Observation", "o1", map.clone());
        let (final_version, _) = stamped(map, "o1", 3, 1_796_672_325_672_000).expect("serialised");
        let direct = Derived::of("Observation", "o1", &final_version);
        assert_eq!(format!("{:?}", draft.derived.index), format!("{:?}", direct.index));
        assert_eq!(draft.derived.compartment, direct.compartment);
        assert_eq!(draft.derived.compartment, ["p1"]);
        let tokens = direct.index.counts().into_iter().find(|(t, _)| *t == "idx_token");
        assert!(tokens.is_some_and(|(_, n)| n >= 3), "{:?}", direct.index.counts());
    }
}
