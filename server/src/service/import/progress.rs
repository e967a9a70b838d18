//! How far an import got, per input file (`import_progress`, by content hash).

use super::source::Source;
use crate::error::Result;
use crate::state::AppState;
use crate::store::Tx;
use crate::store::sql::{Bind, Kind, SqlQuery, execute, fetch};

pub struct Done {
    pub done_units: u64,
    pub finished: bool,
}

pub async fn get(state: &AppState, key: &str) -> Result<Option<Done>> {
    let mut conn = state.store().reader().await?;
    let mut q = SqlQuery::default();
    let k = q.text(key);
    q.sql = format!(
        "SELECT done_units, CAST(CASE WHEN finished THEN 1 ELSE 0 END AS BIGINT) FROM import_progress WHERE source_key = {k}"
    );
    let rows = fetch(&mut conn, &q, &[Kind::I64, Kind::I64]).await?;
    Ok(rows.first().map(|r| Done {
        done_units: r[0].i64().unwrap_or(0).max(0) as u64,
        finished: r[1].i64() == Some(1),
    }))
}

/// Records, in the transaction that stored them, that the units before `done_units`
/// are dealt with (`resources` stored and `rejected` refused among the new ones).
pub async fn advance(
    tx: &mut Tx,
    source: &Source,
    done_units: u64,
    resources: u64,
    rejected: u64,
    now: i64,
) -> Result<()> {
    execute(
        tx,
        "INSERT INTO import_progress (source_key, name, done_units, resources, rejected, finished, updated_at) \
         VALUES ($1, $2, $3, $4, $5, FALSE, $6) ON CONFLICT (source_key) DO UPDATE SET \
         name = excluded.name, done_units = excluded.done_units, \
         resources = import_progress.resources + excluded.resources, \
         rejected = import_progress.rejected + excluded.rejected, updated_at = excluded.updated_at",
        &[
            Bind::Text(Some(source.key.clone())),
            Bind::Text(Some(source.name.clone())),
            Bind::I64(Some(done_units as i64)),
            Bind::I64(Some(resources as i64)),
            Bind::I64(Some(rejected as i64)),
            Bind::I64(Some(now)),
        ],
    )
    .await?;
    Ok(())
}

/// In the transaction that stored a whole file: it is dealt with (group.rs).
pub async fn finish_in(tx: &mut Tx, source: &Source, resources: u64, now: i64) -> Result<()> {
    execute(
        tx,
        "INSERT INTO import_progress (source_key, name, done_units, resources, rejected, finished, updated_at) \
         VALUES ($1, $2, 0, $3, 0, TRUE, $4) ON CONFLICT (source_key) DO UPDATE SET \
         name = excluded.name, resources = import_progress.resources + excluded.resources, \
         finished = TRUE, updated_at = excluded.updated_at",
        &[
            Bind::Text(Some(source.key.clone())),
            Bind::Text(Some(source.name.clone())),
            Bind::I64(Some(resources as i64)),
            Bind::I64(Some(now)),
        ],
    )
    .await?;
    Ok(())
}

/// The whole file is dealt with: a later import skips it (unless forced).
pub async fn finish(state: &AppState, source: &Source) -> Result<()> {
    let mut tx = state.store().begin_write().await?;
    execute(
        &mut tx,
        "INSERT INTO import_progress (source_key, name, done_units, resources, rejected, finished, updated_at) \
         VALUES ($1, $2, 0, 0, 0, TRUE, $3) ON CONFLICT (source_key) DO UPDATE SET \
         finished = TRUE, updated_at = excluded.updated_at",
        &[
            Bind::Text(Some(source.key.clone())),
            Bind::Text(Some(source.name.clone())),
            Bind::I64(Some(state.now())),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
