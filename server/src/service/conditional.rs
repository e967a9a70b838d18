//! Conditional interactions: the search criteria in `If-None-Exist` or a conditional
//! URL decide which resource a create, update or delete applies to.

use serde_json::Value;

use super::write::{self, Written};
use super::{ids, validate};
use crate::error::{Error, Result};
use crate::search::{self, AccessScope};
use crate::state::AppState;
use crate::store::Tx;

/// What the criteria matched.
#[derive(Debug, PartialEq, Eq)]
pub enum Matches {
    None,
    One(String),
    Many,
}

/// Resolves `criteria` (a query string such as `identifier=http://x|123`) against
/// `res_type`. Empty criteria are refused: they would match everything.
pub async fn resolve(
    state: &AppState,
    scope: &AccessScope,
    tx: &mut Tx,
    res_type: &str,
    criteria: &str,
) -> Result<Matches> {
    let pairs = criteria_pairs(criteria)?;
    if pairs.is_empty() {
        return Err(Error::PreconditionFailed(
            "A conditional interaction needs search criteria".to_string(),
        ));
    }
    // Writers resolving the same criteria take turns (see `lock_key`).
    crate::store::sql::serialize_on(tx, &lock_key(res_type, &pairs)).await?;
    let ids = search::find_ids(state, scope, tx, res_type, &pairs, 2).await?;
    Ok(match ids.len() {
        0 => Matches::None,
        1 => ids.into_iter().next().map_or(Matches::None, Matches::One),
        _ => Matches::Many,
    })
}

/// The search parameters of conditional criteria (`_format` and `_pretty` say nothing
/// about which resources match).
fn criteria_pairs(criteria: &str) -> Result<Vec<(String, String)>> {
    Ok(
        crate::fhir::form::parse_form(criteria.trim_start_matches('?').as_bytes())?
            .into_iter()
            .filter(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty"))
            .collect(),
    )
}

/// The lock that makes writers resolving the same criteria take turns until they
/// commit. On PostgreSQL (READ COMMITTED) two conditional creates of one identifier would otherwise
/// both see no match and both create (found by `tests/concurrency.rs`, also across two
/// processes): the second now waits on a lock keyed by the type and the criteria (in a
/// canonical order), then searches in a fresh snapshot that holds the first's resource.
/// Different criteria that match the same resource are not serialized.
fn lock_key(res_type: &str, pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    sorted.sort();
    format!("conditional {res_type}?{}", sorted.join("&"))
}

/// Takes, in one canonical order, the locks [`resolve`] would take for each
/// `(type, criteria)`: a transaction Bundle with several conditional entries calls it
/// first, so two Bundles naming the same criteria in opposite orders queue instead of
/// deadlocking (PostgreSQL would break the deadlock after a second by failing one with
/// 409). Taking a lock again later, entry by entry, is free: the session holds it.
pub async fn lock_all(tx: &mut Tx, criteria: &[(&str, &str)]) -> Result<()> {
    if !matches!(tx, Tx::Postgres(_)) {
        return Ok(());
    }
    let mut keys: Vec<String> = Vec::new();
    for (res_type, c) in criteria {
        // Criteria that do not parse are refused later, by the entry itself.
        let Ok(pairs) = criteria_pairs(c) else {
            continue;
        };
        if !pairs.is_empty() {
            keys.push(lock_key(res_type, &pairs));
        }
    }
    keys.sort();
    keys.dedup();
    for k in &keys {
        crate::store::sql::serialize_on(tx, k).await?;
    }
    Ok(())
}

/// The id the criteria matched, if any; several matches are refused (412). What a
/// conditional create (`If-None-Exist`) and a conditional delete need.
pub async fn at_most_one(
    state: &AppState,
    scope: &AccessScope,
    tx: &mut Tx,
    res_type: &str,
    criteria: &str,
) -> Result<Option<String>> {
    match resolve(state, scope, tx, res_type, criteria).await? {
        Matches::None => Ok(None),
        Matches::One(id) => Ok(Some(id)),
        Matches::Many => Err(many(res_type, criteria)),
    }
}

/// The one id the criteria matched: a conditional patch needs exactly one.
pub async fn exactly_one(
    state: &AppState,
    scope: &AccessScope,
    tx: &mut Tx,
    res_type: &str,
    criteria: &str,
) -> Result<String> {
    at_most_one(state, scope, tx, res_type, criteria)
        .await?
        .ok_or_else(|| Error::NotFound(format!("No {res_type} matches '{criteria}'")))
}

fn many(res_type: &str, criteria: &str) -> Error {
    Error::PreconditionFailed(format!("'{criteria}' matches more than one {res_type}"))
}

/// Where a conditional update writes. Decided apart from the write so that a
/// transaction can learn the id before it rewrites references to the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateTarget {
    /// The one resource the criteria matched.
    Match(String),
    /// No match: the id the body carries (update as create).
    BodyId(String),
    /// No match and no id in the body: a new resource under this server id.
    New(String),
}

impl UpdateTarget {
    pub fn id(&self) -> &str {
        match self {
            UpdateTarget::Match(id) | UpdateTarget::BodyId(id) | UpdateTarget::New(id) => id,
        }
    }
}

pub async fn update_target(
    state: &AppState,
    scope: &AccessScope,
    tx: &mut Tx,
    res_type: &str,
    criteria: &str,
    body: &Value,
) -> Result<UpdateTarget> {
    Ok(match at_most_one(state, scope, tx, res_type, criteria).await? {
        Some(id) => UpdateTarget::Match(id),
        None => match body.get("id").and_then(Value::as_str) {
            Some(id) => UpdateTarget::BodyId(id.to_string()),
            None => UpdateTarget::New(ids::new_id()),
        },
    })
}

/// Writes a conditional update to the target [`update_target`] chose.
pub async fn apply_update(
    state: &AppState,
    tx: &mut Tx,
    res_type: &str,
    target: &UpdateTarget,
    body: Value,
    if_match: Option<i64>,
) -> Result<Written> {
    match target {
        UpdateTarget::Match(id) => write::update(state, tx, res_type, id, with_id(body, id)?, if_match).await,
        UpdateTarget::BodyId(id) => write::update(state, tx, res_type, id, body, None).await,
        UpdateTarget::New(id) => {
            let resource = validate::resource(&state.config().profiles, res_type, body, None)?;
            write::create_checked(state, tx, res_type, resource, Some(id.clone())).await
        }
    }
}

/// `PUT [type]?criteria`.
pub async fn update(
    state: &AppState,
    scope: &AccessScope,
    tx: &mut Tx,
    res_type: &str,
    criteria: &str,
    body: Value,
    if_match: Option<i64>,
) -> Result<Written> {
    let target = update_target(state, scope, tx, res_type, criteria, &body).await?;
    apply_update(state, tx, res_type, &target, body, if_match).await
}

/// A conditional update's body may omit the id; if it has one it must be the match's.
fn with_id(mut body: Value, id: &str) -> Result<Value> {
    match body.get("id").and_then(Value::as_str) {
        Some(b) if b != id => Err(Error::invalid_at(
            "invalid",
            "id",
            format!("The body's id '{b}' is not the id of the resource the criteria matched ('{id}')"),
        )),
        _ => {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("id".into(), Value::String(id.to_string()));
            }
            Ok(body)
        }
    }
}
