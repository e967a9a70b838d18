//! read, vread and the instance check of instance history under the policy: one query
//! that fetches the version and evaluates the scope's two halves on the same row, so
//! a hidden resource answers 404 (as if absent) and a refused one 403 (R4).

use super::Access;
use crate::error::{Error, Result};
use crate::service::{ids, read};
use crate::store::sql::{Cell, Kind, SqlQuery, fetch};
use crate::store::{StoredVersion, Tx};

/// `version`: `None` for the current one.
async fn fetch_governed(
    access: &Access,
    tx: &mut Tx,
    res_type: &str,
    id: &str,
    version: Option<i64>,
) -> Result<Option<(StoredVersion, bool, bool)>> {
    let scope = access.scope();
    let mut q = SqlQuery::default();
    let t = q.text(res_type);
    let i = q.text(id);
    let ver = match version {
        Some(v) => q.int(v),
        None => "r.version".to_string(),
    };
    let flag = |c: Option<String>| match c {
        Some(c) => format!("CAST(CASE WHEN {c} THEN 1 ELSE 0 END AS BIGINT)"),
        None => "CAST(1 AS BIGINT)".to_string(),
    };
    let visible = flag(scope.visible(&mut q, "r"));
    let allowed = flag(scope.not_refused(&mut q, "r"));
    q.sql = format!(
        "SELECT v.version, v.last_updated, v.content, {visible}, {allowed} FROM resources r \
         JOIN resource_versions v ON v.pk = r.pk AND v.version = {ver} WHERE r.res_type = {t} AND r.res_id = {i}"
    );
    let mut rows = fetch(tx, &q, &[Kind::I64, Kind::I64, Kind::Bytes, Kind::I64, Kind::I64]).await?;
    let Some(mut r) = rows.pop() else { return Ok(None) };
    let allowed = r.pop().and_then(|c| c.i64()) == Some(1);
    let visible = r.pop().and_then(|c| c.i64()) == Some(1);
    let content = match r.pop() {
        Some(Cell::Bytes(c)) => c,
        _ => None,
    };
    let v = StoredVersion {
        version: r[0].i64().unwrap_or(0),
        last_updated: r[1].i64().unwrap_or(0),
        content,
    };
    Ok(Some((v, visible, allowed)))
}

fn decide(
    access: &Access,
    res_type: &str,
    id: &str,
    found: Option<(StoredVersion, bool, bool)>,
    missing: impl FnOnce() -> Error,
) -> Result<StoredVersion> {
    match found {
        None | Some((_, false, _)) => Err(missing()),
        Some((_, true, false)) => Err(access.refused()),
        Some((v, true, true)) => {
            let _ = (res_type, id);
            Ok(v)
        }
    }
}

/// read: 404 hidden or absent, 403 refused, 410 deleted.
pub async fn read(access: &Access, tx: &mut Tx, res_type: &str, id: &str) -> Result<StoredVersion> {
    ids::check_id(id)?;
    access.note(res_type, id);
    if access.actor().is_none() {
        return read::read(tx, res_type, id).await;
    }
    let found = fetch_governed(access, tx, res_type, id, None).await?;
    let v = decide(access, res_type, id, found, || {
        Error::NotFound(format!("{res_type}/{id} not found"))
    })?;
    if v.content.is_none() {
        return Err(Error::Gone(format!("{res_type}/{id} was deleted")));
    }
    Ok(v)
}

pub async fn vread(access: &Access, tx: &mut Tx, res_type: &str, id: &str, version: &str) -> Result<StoredVersion> {
    ids::check_id(id)?;
    access.note(res_type, id);
    if access.actor().is_none() {
        return read::vread(tx, res_type, id, version).await;
    }
    let missing = || {
        Error::NotFound(format!(
            "{res_type}/{id} has no version '{}'",
            ids::truncate(version, 40)
        ))
    };
    let Ok(n) = version.parse::<i64>() else {
        return Err(missing());
    };
    let found = fetch_governed(access, tx, res_type, id, Some(n)).await?;
    let v = decide(access, res_type, id, found, missing)?;
    if v.content.is_none() {
        return Err(Error::Gone(format!("{res_type}/{id} version {n} is a deletion")));
    }
    Ok(v)
}

/// Instance history and `$release` start here: the resource must exist and be
/// visible (deleted ones too: their history stays readable).
pub async fn check_instance(access: &Access, tx: &mut Tx, res_type: &str, id: &str) -> Result<()> {
    ids::check_id(id)?;
    access.note(res_type, id);
    let found = fetch_governed(access, tx, res_type, id, None).await?;
    decide(access, res_type, id, found, || {
        Error::NotFound(format!("{res_type}/{id} not found"))
    })
    .map(|_| ())
}
