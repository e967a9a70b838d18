//! `carnet reindex`: rebuilds everything derived from the stored resources (search index
//! rows and the policy tables: compartments, result publication facts, Consent
//! decisions) from their current versions. Needed after a change of the settings that
//! decide at write time (sensitivity labels and value set), after an upgrade that
//! changes what is indexed, or on a database written before a table existed.
//! Resources are read and re-derived a batch at a time, each batch replaced in one
//! transaction, so the server can keep running.

use serde_json::Value;

use super::write::Derived;
use crate::error::{Error, Result};
use crate::policy::maintain;
use crate::search::index::{self, Table};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::sql::{Bind, Cell, Kind, SqlQuery, execute, fetch};

/// Resources re-derived per transaction.
const BATCH: i64 = 1000;

/// Rebuilds the derived rows of the current resources of `types` (all when empty);
/// `on_progress(done, total)` after each batch. Returns how many were rebuilt.
pub async fn reindex(state: &AppState, types: &[String], on_progress: &(dyn Fn(u64, u64) + Sync)) -> Result<u64> {
    let total = {
        let mut q = SqlQuery::default();
        let filter = type_filter(&mut q, types);
        q.sql = format!("SELECT COUNT(*) FROM resources r WHERE r.deleted = FALSE{filter}");
        let mut conn = state.store().reader().await?;
        fetch(&mut conn, &q, &[Kind::I64]).await?[0][0]
            .i64()
            .unwrap_or(0)
            .max(0) as u64
    };
    let mut done = 0u64;
    let mut after = 0i64;
    loop {
        let rows = {
            let mut q = SqlQuery::default();
            let a = q.int(after);
            let filter = type_filter(&mut q, types);
            let limit = q.int(BATCH);
            q.sql = format!(
                "SELECT r.pk, r.res_type, r.res_id, r.last_updated, v.content FROM resources r \
                 JOIN resource_versions v ON v.pk = r.pk AND v.version = r.version \
                 WHERE r.deleted = FALSE AND r.pk > {a}{filter} ORDER BY r.pk LIMIT {limit}"
            );
            let mut conn = state.store().reader().await?;
            fetch(
                &mut conn,
                &q,
                &[Kind::I64, Kind::Text, Kind::Text, Kind::I64, Kind::Bytes],
            )
            .await?
        };
        let Some(last) = rows.last().and_then(|r| r[0].i64()) else {
            break;
        };
        after = last;
        let items: Vec<Item> = rows.into_iter().map(Item::of).collect::<Result<_>>()?;
        rebuild(state, &items).await?;
        done += items.len() as u64;
        on_progress(done, total);
    }
    if done > 0 {
        state.store().analyze().await?;
    }
    Ok(done)
}

fn type_filter(q: &mut SqlQuery, types: &[String]) -> String {
    if types.is_empty() {
        String::new()
    } else {
        format!(" AND {}", q.in_list("r.res_type", types))
    }
}

/// One current version and what derives from it.
struct Item {
    pk: i64,
    res_type: String,
    last_updated: i64,
    resource: Value,
    derived: Derived,
}

impl Item {
    fn of(row: Vec<Cell>) -> Result<Item> {
        let corrupt = |what: &str| Error::Store(StoreError::Corrupt(what.to_string()));
        let (Some(pk), Some(res_type), Some(id), Some(last_updated)) =
            (row[0].i64(), row[1].text(), row[2].text(), row[3].i64())
        else {
            return Err(corrupt("a resources row without its columns"));
        };
        let Cell::Bytes(Some(content)) = &row[4] else {
            return Err(corrupt(&format!("{res_type}/{id} has no content")));
        };
        let resource: Value = serde_json::from_slice(content).map_err(|e| corrupt(&format!("{res_type}/{id}: {e}")))?;
        let derived = Derived::of(res_type, id, &resource);
        Ok(Item {
            pk,
            res_type: res_type.to_string(),
            last_updated,
            resource,
            derived,
        })
    }
}

/// Replaces the derived rows of a batch in one transaction.
async fn rebuild(state: &AppState, items: &[Item]) -> Result<()> {
    let mut tx = state.store().begin_write().await?;
    let mut q = SqlQuery::default();
    let pks: Vec<String> = items.iter().map(|i| q.bind(Bind::I64(Some(i.pk)))).collect();
    let in_pks = pks.join(", ");
    for t in Table::ALL {
        execute(
            &mut tx,
            &format!("DELETE FROM {} WHERE pk IN ({in_pks})", t.name()),
            &q.binds,
        )
        .await?;
    }
    execute(
        &mut tx,
        &format!("DELETE FROM patient_compartment WHERE pk IN ({in_pks})"),
        &q.binds,
    )
    .await?;
    let index_items: Vec<(i64, &str, &index::IndexRows)> = items
        .iter()
        .map(|i| (i.pk, i.res_type.as_str(), &i.derived.index))
        .collect();
    index::insert(&mut tx, &index_items).await?;
    let written: Vec<maintain::Written<'_>> = items
        .iter()
        .map(|i| maintain::Written {
            pk: i.pk,
            res_type: &i.res_type,
            resource: &i.resource,
            compartment: &i.derived.compartment,
        })
        .collect();
    let now = items.iter().map(|i| i.last_updated).max().unwrap_or_default();
    maintain::on_create(&mut tx, &state.config().policy, &written, now).await?;
    tx.commit().await?;
    Ok(())
}
