//! Audit rows an older version left in a SQLite database, moved to the log's own file.
//!
//! Up to migration 0014 the log was a table of the database; a server stopped by a
//! crash could leave rows there that were never stored as AuditEvents. Migration 0015
//! renames that table to `audit_log_moved`; this moves its rows into the log file and
//! drops it. The two files commit separately, so each moved event gets an id made of
//! its old sequence number (never reused there: `AUTOINCREMENT`): if the move is cut
//! short after the log's commit and done again, the projector finds the same id twice
//! and stores the event once.

use serde_json::Value;
use sqlx::SqlitePool;

use super::StoreError;

pub async fn move_rows(database: &SqlitePool, log: &SqlitePool) -> Result<(), StoreError> {
    let exists: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_log_moved'")
            .fetch_optional(database)
            .await?;
    if exists.is_none() {
        return Ok(());
    }
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT seq, event FROM audit_log_moved ORDER BY seq")
        .fetch_all(database)
        .await?;
    if !rows.is_empty() {
        let mut tx = log.begin().await?;
        for (seq, event) in rows {
            let event = with_id(event, seq);
            sqlx::query("INSERT INTO audit_log (event) VALUES ($1)")
                .bind(event)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    sqlx::query("DROP TABLE audit_log_moved").execute(database).await?;
    Ok(())
}

/// The event with the id `moved-{seq}`, unless it has one; bytes that are not a JSON
/// object are moved as they are (the projector reports them).
fn with_id(event: Vec<u8>, seq: i64) -> Vec<u8> {
    match serde_json::from_slice::<Value>(&event) {
        Ok(Value::Object(mut map)) if !map.contains_key("id") => {
            map.insert("id".into(), Value::String(format!("moved-{seq}")));
            serde_json::to_vec(&Value::Object(map)).unwrap_or(event)
        }
        _ => event,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn moved_events_are_named_by_their_old_number_once() {
        let moved = super::with_id(br#"{"resourceType":"AuditEvent"}"#.to_vec(), 7);
        let v: serde_json::Value = serde_json::from_slice(&moved).unwrap_or_default();
        assert_eq!(v["id"], "moved-7");
        let kept = super::with_id(br#"{"resourceType":"AuditEvent","id":"a"}"#.to_vec(), 7);
        let v: serde_json::Value = serde_json::from_slice(&kept).unwrap_or_default();
        assert_eq!(v["id"], "a");
        assert_eq!(super::with_id(b"not json".to_vec(), 1), b"not json".to_vec());
    }
}
