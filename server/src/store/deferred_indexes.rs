//! A bulk import into a database smaller than itself builds the search index's
//! indexes once, at its end, instead of entry by entry while it stores: each resource
//! adds ~25 index rows, and each of their value-index entries lands at a random place
//! in a B-tree that outgrows the page cache. Sorting them all at once is cheaper
//! (98,108 Synthea resources into SQLite: 49 s with the indexes, 17 s without them
//! plus 10 s to build them; benches/README.md).
//!
//! The statements that build them again are written to `deferred_indexes` in the
//! transaction that drops them, so an import killed in between leaves in the database
//! what it owes: the next `carnet serve` or `carnet import` builds it. Until then the
//! searches stay right, only slower (the `*_pk` indexes, which updates need to find a
//! resource's rows, are never dropped).

use futures::{StreamExt, TryStreamExt};

use super::sql::{Bind, Kind, SqlQuery, execute, fetch, fetch_i64};
use super::{Store, StoreError, Tx};

/// The search index's tables and the patient compartment's: their indexes other than
/// the `*_pk` ones and unique ones are deferred.
const TABLES: &str = "'idx_string', 'idx_token', 'idx_reference', 'idx_date', 'idx_number', \
                      'idx_quantity', 'idx_uri', 'patient_compartment'";

/// The deferrable indexes and their DDL, from the backend's catalog (SQLite's automatic
/// indexes have no `sql`).
fn catalog_query(backend: super::Backend) -> String {
    match backend {
        super::Backend::Sqlite => format!(
            "SELECT name, sql FROM sqlite_master \
             WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({TABLES}) \
               AND name NOT LIKE '%\\_pk' ESCAPE '\\' \
             ORDER BY name"
        ),
        super::Backend::Postgres => format!(
            "SELECT indexname::text, indexdef FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename IN ({TABLES}) \
               AND indexname NOT LIKE '%\\_pk' ESCAPE '\\' AND indexdef NOT LIKE 'CREATE UNIQUE%' \
             ORDER BY indexname"
        ),
    }
}

/// Drops the indexes and records how to build them; returns how many. Indexes an
/// earlier, interrupted import dropped stay recorded.
pub async fn defer(store: &Store) -> Result<usize, StoreError> {
    let mut tx = store.begin_write().await?;
    let found = list(&mut tx, &catalog_query(store.backend())).await?;
    for (name, ddl) in &found {
        execute(
            &mut tx,
            "INSERT INTO deferred_indexes (name, ddl) VALUES ($1, $2)",
            &[Bind::Text(Some(name.clone())), Bind::Text(Some(ddl.clone()))],
        )
        .await?;
        execute(&mut tx, &format!("DROP INDEX {}", quoted(name)), &[]).await?;
    }
    tx.commit().await?;
    Ok(found.len())
}

/// Builds every recorded index; returns how many. PostgreSQL builds as many at once as
/// there are cores; SQLite, whose writer is one connection, one after the other.
pub async fn build(store: &Store) -> Result<usize, StoreError> {
    let pending = {
        let mut tx = store.reader().await?;
        list(&mut tx, "SELECT name, ddl FROM deferred_indexes ORDER BY name").await?
    };
    let at_once = match store.backend() {
        super::Backend::Sqlite => 1,
        super::Backend::Postgres => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let count = pending.len();
    let builds = pending.into_iter().map(|(name, ddl)| {
        let store = store.clone();
        async move { build_one(&store, &name, &ddl).await }
    });
    futures::stream::iter(builds)
        .buffer_unordered(at_once)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(count)
}

/// Indexes recorded and not yet built.
pub async fn pending(store: &Store) -> Result<usize, StoreError> {
    let mut tx = store.reader().await?;
    let q = SqlQuery {
        sql: "SELECT COUNT(*) FROM deferred_indexes".to_string(),
        ..SqlQuery::default()
    };
    Ok(usize::try_from(fetch_i64(&mut tx, &q).await?).unwrap_or(0))
}

async fn build_one(store: &Store, name: &str, ddl: &str) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    if let Tx::Postgres(_) = tx {
        // The default (64 MB) sorts a million-row index in several runs on disk.
        execute(&mut tx, "SET LOCAL maintenance_work_mem = '256MB'", &[]).await?;
    }
    let sqlite = matches!(tx, Tx::Sqlite(_));
    if sqlite {
        // SQLite's sorter hands each run of SORT_RUN_KB to a helper thread to sort
        // while it reads on: with the writer's 64 MB cache, an index of ~1 M entries
        // was one run, sorted by one thread. 98,108 Synthea resources' 14 indexes:
        // 6.4 s that way, 3.7 s like this (benches/README.md, 2026-12-07).
        let helpers = std::thread::available_parallelism().map_or(1, |n| n.get() * 2).min(8);
        execute(&mut tx, &format!("PRAGMA threads = {helpers}"), &[]).await?;
        execute(&mut tx, &format!("PRAGMA cache_size = -{SORT_RUN_KB}"), &[]).await?;
    }
    let built = create(&mut tx, name, ddl).await;
    if sqlite {
        // The writer's settings back, whatever the outcome (the connection stays in the pool).
        execute(&mut tx, "PRAGMA threads = 0", &[]).await?;
        execute(
            &mut tx,
            &format!("PRAGMA cache_size = {}", super::connect::WRITER_CACHE),
            &[],
        )
        .await?;
    }
    built?;
    tx.commit().await
}

/// Sorter run size for SQLite's index builds (KiB): of 512 KB to 64 MB, 2 MB built the
/// indexes fastest.
const SORT_RUN_KB: u32 = 2048;

async fn create(tx: &mut Tx, name: &str, ddl: &str) -> Result<(), StoreError> {
    // The index may exist if someone built it by hand; building it is what counts.
    let ddl = ddl.replacen("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1);
    execute(tx, &ddl, &[]).await?;
    execute(
        tx,
        "DELETE FROM deferred_indexes WHERE name = $1",
        &[Bind::Text(Some(name.to_string()))],
    )
    .await
}

async fn list(tx: &mut Tx, sql: &str) -> Result<Vec<(String, String)>, StoreError> {
    let q = SqlQuery {
        sql: sql.to_string(),
        ..SqlQuery::default()
    };
    Ok(fetch(tx, &q, &[Kind::Text, Kind::Text])
        .await?
        .into_iter()
        .filter_map(|r| Some((r[0].text()?.to_string(), r[1].text()?.to_string())))
        .collect())
}

/// A name from the catalog as an SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_as_identifiers() {
        assert_eq!(quoted("idx_token_value"), "\"idx_token_value\"");
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
    }
}
