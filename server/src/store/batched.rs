//! SQLite transactions send the statements whose results nobody reads in batches.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands it one statement
//! at a time, so every statement is a round trip between that thread and the async
//! task: under a CRUD mix the writer's thread ran ~27 µs, then waited ~30 µs for the
//! next statement, ~28 times for an update (`perf sched timehist`, benches/README.md).
//! The writer is held all the while, so those waits bounded the server's writes.
//! Inserts, updates and deletes are therefore kept here and sent as one text, in the
//! order they were issued, when the transaction next reads (any fetch, or `on_conn!`)
//! or commits. An error of a kept statement is reported there, and the transaction,
//! which then fails as a whole, is rolled back as before.

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
    tx: Transaction<'static, Sqlite>,
    sql: String,
    binds: Vec<Bind>,
}

impl SqliteTx {
    pub fn new(tx: Transaction<'static, Sqlite>) -> SqliteTx {
        SqliteTx {
            tx,
            sql: String::new(),
            binds: Vec::new(),
        }
    }

    /// The connection, for a statement whose result is read: call [`SqliteTx::flush`]
    /// first, so that it sees every statement issued before it.
    pub fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    /// Keeps a statement with anonymous `?` placeholders and its values.
    pub(super) fn defer(&mut self, sql: &str, binds: &[Bind]) {
        self.sql.push_str(sql);
        self.sql.push_str(";\n");
        self.binds.extend_from_slice(binds);
    }

    /// Sends the kept statements.
    pub async fn flush(&mut self) -> Result<(), sqlx::Error> {
        if self.sql.is_empty() {
            return Ok(());
        }
        let sql = std::mem::take(&mut self.sql);
        let binds = std::mem::take(&mut self.binds);
        run_joined(&mut self.tx, &sql, &binds, sql.len() <= KEPT_TEXT).await
    }

    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.flush().await?;
        self.tx.commit().await
    }
}
