//! SQLite transactions send their statements to the connection's thread together.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands it one command at
//! a time, so every statement is a round trip between that thread and the async task:
//! under a CRUD mix the writer's thread ran ~27 µs, then waited ~30 µs for the next
//! statement, ~28 times for an update (`perf sched timehist`, benches/README.md). The
//! writer is held all the while, so those waits bounded the server's writes.
//!
//! A write transaction therefore keeps the statements whose results nobody reads
//! (inserts, updates and deletes of a few values) and sends them as one text, in the
//! order they were issued, with the next statement that is read, or with its `COMMIT`;
//! its `BEGIN IMMEDIATE` goes with the first of them. An update is two calls of the
//! writer's thread: `BEGIN` with the read of the head row, then everything it writes
//! with the `COMMIT`. An error of a kept statement is reported with the statement it
//! was sent with; the transaction fails as a whole either way and is rolled back.

use std::borrow::Cow;

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, Transaction};

use super::sql::{Bind, run_joined};

/// Statements with more values than this are sent at once (after those kept): one of
/// them is already worth its round trip, and a batch of large ones (a Bundle's, or the
/// audit projector's, index rows) would be a new text to parse at each commit, where
/// each alone stays prepared in the connection's statement cache.
const MAX_KEPT_BINDS: usize = 64;

/// Whether a statement with these values is kept for the next batch.
pub(super) fn worth_keeping(binds: &[Bind]) -> bool {
    binds.len() <= MAX_KEPT_BINDS
}

/// Joined texts up to this length stay prepared in the connection's statement cache:
/// a CRUD write repeats the same few, and preparing them again each time would cost
/// what the batch saves.
const KEPT_TEXT: usize = 16 * 1024;

pub struct SqliteTx {
    inner: Inner,
    sql: String,
    binds: Vec<Bind>,
}

enum Inner {
    /// A read-only snapshot: sqlx's own transaction, begun at once, rolled back when
    /// dropped.
    Snapshot(Option<Transaction<'static, Sqlite>>),
    /// A write transaction whose `BEGIN` and `COMMIT` go with the kept statements.
    Write {
        conn: Option<PoolConnection<Sqlite>>,
        /// `BEGIN` was sent: until `committed`, dropping rolls back.
        begun: bool,
        committed: bool,
    },
}

impl SqliteTx {
    pub fn snapshot(tx: Transaction<'static, Sqlite>) -> SqliteTx {
        SqliteTx {
            inner: Inner::Snapshot(Some(tx)),
            sql: String::new(),
            binds: Vec::new(),
        }
    }

    /// A write transaction on `conn`, begun by `begin` with its first statement.
    pub fn write(conn: PoolConnection<Sqlite>, begin: &str) -> SqliteTx {
        SqliteTx {
            inner: Inner::Write {
                conn: Some(conn),
                begun: false,
                committed: false,
            },
            sql: format!("{begin};\n"),
            binds: Vec::new(),
        }
    }

    /// The connection, for a statement whose result is read: call [`SqliteTx::flush`]
    /// (or take the kept statements with [`SqliteTx::join`]) first, so that it runs
    /// after every statement issued before it.
    pub fn conn(&mut self) -> Result<&mut SqliteConnection, sqlx::Error> {
        match &mut self.inner {
            Inner::Snapshot(Some(tx)) => Ok(&mut **tx),
            Inner::Write { conn: Some(c), .. } => Ok(&mut **c),
            // Taken only by `commit` and `drop`, which consume the transaction.
            Inner::Snapshot(None) | Inner::Write { conn: None, .. } => Err(sqlx::Error::PoolClosed),
        }
    }

    /// Keeps a statement with anonymous `?` placeholders and its values.
    pub(super) fn defer(&mut self, sql: &str, binds: &[Bind]) {
        self.sql.push_str(sql);
        self.sql.push_str(";\n");
        self.binds.extend_from_slice(binds);
    }

    pub(super) fn has_kept(&self) -> bool {
        !self.sql.is_empty()
    }

    /// The kept statements followed by `sql` (anonymous placeholders), and their values
    /// followed by `binds`, to send as one text; the kept statements are then gone.
    /// `Err` gives the statement back when the text would be too long to keep prepared
    /// ([`KEPT_TEXT`]): the caller flushes, then sends it alone.
    #[allow(clippy::type_complexity)]
    pub(super) fn join<'a>(
        &mut self,
        sql: Cow<'a, str>,
        binds: Cow<'a, [Bind]>,
    ) -> Result<(Cow<'a, str>, Cow<'a, [Bind]>), (Cow<'a, str>, Cow<'a, [Bind]>)> {
        if self.sql.is_empty() {
            return Ok((sql, binds));
        }
        if self.sql.len() + sql.len() > KEPT_TEXT {
            return Err((sql, binds));
        }
        self.sending();
        let mut joined = std::mem::take(&mut self.sql);
        joined.push_str(&sql);
        let mut values = std::mem::take(&mut self.binds);
        values.extend_from_slice(&binds);
        Ok((Cow::Owned(joined), Cow::Owned(values)))
    }

    /// Sends the kept statements.
    pub async fn flush(&mut self) -> Result<(), sqlx::Error> {
        if self.sql.is_empty() {
            return Ok(());
        }
        self.sending();
        let sql = std::mem::take(&mut self.sql);
        let binds = std::mem::take(&mut self.binds);
        run_joined(self.conn()?, &sql, &binds, sql.len() <= KEPT_TEXT).await
    }

    /// What is kept is about to be sent: with it, the `BEGIN` of a write transaction.
    fn sending(&mut self) {
        if let Inner::Write { begun, .. } = &mut self.inner {
            *begun = true;
        }
    }

    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        match &mut self.inner {
            Inner::Snapshot(tx) => {
                let tx = tx.take().ok_or(sqlx::Error::PoolClosed)?;
                tx.commit().await
            }
            Inner::Write { .. } => {
                self.defer("COMMIT", &[]);
                self.flush().await?;
                if let Inner::Write { committed, .. } = &mut self.inner {
                    *committed = true;
                }
                Ok(())
            }
        }
    }
}

impl Drop for SqliteTx {
    /// A write transaction dropped before its commit is rolled back before its
    /// connection goes back to the pool (what sqlx's own transaction does).
    fn drop(&mut self) {
        if let Inner::Write {
            conn,
            begun: true,
            committed: false,
        } = &mut self.inner
            && let Some(conn) = conn.take()
        {
            roll_back(conn);
        }
    }
}

/// Rolls back the transaction open on `conn`, then releases it. The task owns the
/// connection meanwhile, so no other transaction can take it first; without a runtime
/// (the process is ending) the connection is closed, which rolls back too.
fn roll_back(mut conn: PoolConnection<Sqlite>) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            drop(runtime.spawn(async move {
                use sqlx::Executor as _;
                if conn.execute("ROLLBACK").await.is_err() {
                    // Unknown state (or no transaction: its `BEGIN` had failed): the
                    // connection is not reused.
                    conn.close_on_drop();
                }
            }));
        }
        Err(_) => conn.close_on_drop(),
    }
}

#[cfg(test)]
mod tests {
    use crate::store::sql::{Bind, execute};
    use crate::store::{Store, Tx, resources};

    async fn store() -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("carnet-batched-{}", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}", dir.join("carnet.db").display());
        (Store::connect(&url, 2).await.unwrap(), dir)
    }

    async fn close(store: Store, dir: std::path::PathBuf) {
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A write transaction that has inserted the head row of `Patient/{id}`, and its pk.
    async fn with_head(store: &Store, id: &str) -> (Tx, i64) {
        let mut tx = store.begin_write().await.unwrap();
        let pk = resources::insert_head(&mut tx, "Patient", id, 1)
            .await
            .unwrap()
            .unwrap();
        (tx, pk)
    }

    async fn head(store: &Store, id: &str) -> Option<resources::Current> {
        let mut r = store.reader().await.unwrap();
        resources::current(&mut r, "Patient", id).await.unwrap()
    }

    /// Kept statements reach the database with the commit, in the order issued.
    #[tokio::test]
    async fn kept_statements_are_committed_in_order() {
        let (store, dir) = store().await;
        let (mut tx, pk) = with_head(&store, "a").await;
        resources::update_head(&mut tx, pk, 2, 5, false).await.unwrap();
        resources::update_head(&mut tx, pk, 3, 7, true).await.unwrap();
        assert!(matches!(&tx, Tx::Sqlite(t) if t.has_kept()));
        tx.commit().await.unwrap();
        let h = head(&store, "a").await.unwrap();
        assert_eq!((h.version, h.last_updated, h.deleted), (3, 7, true));
        close(store, dir).await;
    }

    /// A transaction dropped before its commit leaves nothing, and frees the writer.
    #[tokio::test]
    async fn a_dropped_transaction_is_rolled_back() {
        let (store, dir) = store().await;
        let (mut tx, pk) = with_head(&store, "b").await;
        resources::update_head(&mut tx, pk, 2, 5, false).await.unwrap();
        drop(tx);
        with_head(&store, "c").await.0.commit().await.unwrap();
        assert!(head(&store, "b").await.is_none());
        assert!(head(&store, "c").await.is_some());
        close(store, dir).await;
    }

    /// A kept statement that fails makes the commit fail, and nothing of its
    /// transaction is stored.
    #[tokio::test]
    async fn a_failing_kept_statement_fails_the_commit() {
        let (store, dir) = store().await;
        let (mut tx, _) = with_head(&store, "d").await;
        // The same type and id again, without `ON CONFLICT`: kept, then refused.
        execute(
            &mut tx,
            "INSERT INTO resources (res_type, res_id, version, last_updated, deleted) VALUES ($1, $2, 1, 1, FALSE)",
            &[Bind::Text(Some("Patient".into())), Bind::Text(Some("d".into()))],
        )
        .await
        .unwrap();
        assert!(tx.commit().await.is_err());
        assert!(head(&store, "d").await.is_none());
        with_head(&store, "e").await.0.commit().await.unwrap();
        assert!(head(&store, "e").await.is_some());
        close(store, dir).await;
    }
}
