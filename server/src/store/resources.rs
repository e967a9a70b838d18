//! Resource versions: the queries behind read, vread, write and history.

use sqlx::Row;

use super::sql::{Bind, Kind, SqlQuery, execute, fetch_binds, fetch_i64};
use super::{StoreError, Tx};
use crate::on_conn;

/// Where a logical resource stands now.
#[derive(Debug, Clone)]
pub struct Current {
    pub pk: i64,
    pub version: i64,
    pub last_updated: i64,
    pub deleted: bool,
}

/// One version as stored: `content` is the JSON with `id` and `meta` already in it,
/// `None` for a delete.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub version: i64,
    pub last_updated: i64,
    pub content: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub seq: i64,
    pub res_type: String,
    pub res_id: String,
    pub version: i64,
    pub last_updated: i64,
    pub method: String,
    pub content: Option<Vec<u8>>,
}

/// Which versions a history request covers.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub res_type: Option<String>,
    pub res_id: Option<String>,
    /// Only versions written at or after this instant (epoch µs).
    pub since: Option<i64>,
    /// Only versions that were current at this instant (epoch µs).
    pub at: Option<i64>,
    /// Keyset cursor: only versions older than this global sequence number.
    pub before_seq: Option<i64>,
    pub limit: i64,
}

pub async fn current(tx: &mut Tx, res_type: &str, res_id: &str) -> Result<Option<Current>, StoreError> {
    head(tx, res_type, res_id, "").await
}

/// Like [`current`], but locks the row until the transaction ends so that concurrent
/// writers of one resource are serialised (SQLite's write transaction already is).
pub async fn current_for_update(tx: &mut Tx, res_type: &str, res_id: &str) -> Result<Option<Current>, StoreError> {
    let lock = if matches!(tx, Tx::Postgres(_)) {
        " FOR UPDATE"
    } else {
        ""
    };
    head(tx, res_type, res_id, lock).await
}

/// The head row, through `sql::fetch_binds`: in a SQLite write transaction it goes to
/// the connection's thread with the statements before it (`store::batched`). `deleted`
/// is a boolean on PostgreSQL and an integer on SQLite: read as a number on both.
async fn head(tx: &mut Tx, res_type: &str, res_id: &str, lock: &str) -> Result<Option<Current>, StoreError> {
    let binds = [
        Bind::Text(Some(res_type.to_string())),
        Bind::Text(Some(res_id.to_string())),
    ];
    let sql = format!(
        "SELECT pk, version, last_updated, CAST(CASE WHEN deleted THEN 1 ELSE 0 END AS BIGINT) \
         FROM resources WHERE res_type = $1 AND res_id = $2{lock}"
    );
    let rows = fetch_binds(tx, &sql, &binds, &[Kind::I64, Kind::I64, Kind::I64, Kind::I64]).await?;
    Ok(rows.first().and_then(|r| {
        Some(Current {
            pk: r[0].i64()?,
            version: r[1].i64()?,
            last_updated: r[2].i64()?,
            deleted: r[3].i64()? != 0,
        })
    }))
}

/// The current version with its content, in one round trip: the read path.
pub async fn read_current(tx: &mut Tx, res_type: &str, res_id: &str) -> Result<Option<StoredVersion>, StoreError> {
    let row = on_conn!(tx, |c| sqlx::query(
        "SELECT r.version, r.last_updated, v.content FROM resources r \
         JOIN resource_versions v ON v.pk = r.pk AND v.version = r.version \
         WHERE r.res_type = $1 AND r.res_id = $2"
    )
    .bind(res_type)
    .bind(res_id)
    .fetch_optional(c)
    .await?
    .map(|r| StoredVersion {
        version: r.get(0),
        last_updated: r.get(1),
        content: r.get(2),
    }));
    Ok(row)
}

pub async fn read_version(
    tx: &mut Tx,
    res_type: &str,
    res_id: &str,
    version: i64,
) -> Result<Option<StoredVersion>, StoreError> {
    let row = on_conn!(tx, |c| sqlx::query(
        "SELECT v.version, v.last_updated, v.content FROM resources r \
         JOIN resource_versions v ON v.pk = r.pk \
         WHERE r.res_type = $1 AND r.res_id = $2 AND v.version = $3"
    )
    .bind(res_type)
    .bind(res_id)
    .bind(version)
    .fetch_optional(c)
    .await?
    .map(|r| StoredVersion {
        version: r.get(0),
        last_updated: r.get(1),
        content: r.get(2),
    }));
    Ok(row)
}

/// Inserts the head row of a new logical resource; `None` when another writer created
/// the same type/id first (the caller then treats the write as an update).
pub async fn insert_head(
    tx: &mut Tx,
    res_type: &str,
    res_id: &str,
    last_updated: i64,
) -> Result<Option<i64>, StoreError> {
    let binds = [
        Bind::Text(Some(res_type.to_string())),
        Bind::Text(Some(res_id.to_string())),
        Bind::I64(Some(last_updated)),
    ];
    let rows = fetch_binds(
        tx,
        "INSERT INTO resources (res_type, res_id, version, last_updated, deleted) \
         VALUES ($1, $2, 1, $3, FALSE) ON CONFLICT (res_type, res_id) DO NOTHING RETURNING pk",
        &binds,
        &[Kind::I64],
    )
    .await?;
    Ok(rows.first().and_then(|r| r[0].i64()))
}

pub async fn update_head(
    tx: &mut Tx,
    pk: i64,
    version: i64,
    last_updated: i64,
    deleted: bool,
) -> Result<(), StoreError> {
    execute(
        tx,
        "UPDATE resources SET version = $2, last_updated = $3, deleted = $4 WHERE pk = $1",
        &[
            Bind::I64(Some(pk)),
            Bind::I64(Some(version)),
            Bind::I64(Some(last_updated)),
            Bind::Bool(deleted),
        ],
    )
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_version(
    tx: &mut Tx,
    pk: i64,
    res_type: &str,
    version: i64,
    last_updated: i64,
    method: &str,
    content: Option<&[u8]>,
) -> Result<(), StoreError> {
    execute(
        tx,
        "INSERT INTO resource_versions (pk, res_type, version, last_updated, method, content) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            Bind::I64(Some(pk)),
            Bind::Text(Some(res_type.to_string())),
            Bind::I64(Some(version)),
            Bind::I64(Some(last_updated)),
            Bind::Text(Some(method.to_string())),
            Bind::Bytes(content.map(<[u8]>::to_vec)),
        ],
    )
    .await
}

/// Versions newest first, by global write order, for instance/type/system history.
pub async fn history(tx: &mut Tx, q: &HistoryQuery) -> Result<Vec<HistoryEntry>, StoreError> {
    // Fixed SQL fragments chosen by which filters are present; all values are bound.
    let mut sql = String::from(
        "SELECT v.seq, v.res_type, r.res_id, v.version, v.last_updated, v.method, v.content \
         FROM resource_versions v JOIN resources r ON r.pk = v.pk WHERE 1=1",
    );
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if q.res_type.is_some() {
        sql += &format!(" AND v.res_type = {}", next());
    }
    if q.res_id.is_some() {
        sql += &format!(" AND r.res_id = {}", next());
    }
    if q.since.is_some() {
        sql += &format!(" AND v.last_updated >= {}", next());
    }
    if q.at.is_some() {
        let p = next();
        sql += &format!(
            " AND v.last_updated <= {p} AND NOT EXISTS (SELECT 1 FROM resource_versions n \
             WHERE n.pk = v.pk AND n.version = v.version + 1 AND n.last_updated <= {p})"
        );
    }
    if q.before_seq.is_some() {
        sql += &format!(" AND v.seq < {}", next());
    }
    sql += &format!(" ORDER BY v.seq DESC LIMIT {}", next());
    let rows = on_conn!(tx, |c| {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(t) = &q.res_type {
            query = query.bind(t.as_str());
        }
        if let Some(id) = &q.res_id {
            query = query.bind(id.as_str());
        }
        if let Some(s) = q.since {
            query = query.bind(s);
        }
        if let Some(a) = q.at {
            query = query.bind(a);
        }
        if let Some(b) = q.before_seq {
            query = query.bind(b);
        }
        query
            .bind(q.limit)
            .fetch_all(c)
            .await?
            .into_iter()
            .map(|r| HistoryEntry {
                seq: r.get(0),
                res_type: r.get(1),
                res_id: r.get(2),
                version: r.get(3),
                last_updated: r.get(4),
                method: r.get(5),
                content: r.get(6),
            })
            .collect::<Vec<_>>()
    });
    Ok(rows)
}

/// How many resources are stored (deleted ones included), to weigh a bulk load
/// against what is there.
pub async fn count(tx: &mut Tx) -> Result<i64, StoreError> {
    let q = SqlQuery {
        sql: "SELECT COUNT(*) FROM resources".to_string(),
        ..SqlQuery::default()
    };
    fetch_i64(tx, &q).await
}
