//! Storage: one API over SQLite and PostgreSQL.
//!
//! Both backends run the same SQL (`$n` placeholders work on both), so each query is
//! written once and expanded for each backend by the [`on_conn!`] macro. Everything the
//! server knows lives here: two processes on one PostgreSQL see the same state.

pub mod batched;
pub mod bulk;
pub mod checkpoint;
mod connect;
pub mod deferred_indexes;
mod error;
mod legacy_log;
mod periodic;
pub mod readers;
pub mod resources;
pub mod sql;
pub mod statistics;
mod writer_thread;

pub use connect::{Backend, PoolStats, Store, audit_log_path, redact as connect_redacted};
pub use error::StoreError;
pub use resources::{Current, HistoryEntry, HistoryQuery, StoredVersion};

use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Sqlite, Transaction};

/// A database session on either backend: a transaction, or for single-statement reads
/// a plain pooled connection (saving the BEGIN/COMMIT round trips on the hot read
/// path). Every write happens inside a transaction, so a failed request (or a failed
/// transaction Bundle) leaves nothing behind.
pub enum Tx {
    Sqlite(batched::SqliteTx),
    Postgres(Transaction<'static, Postgres>),
    SqliteConn(SqliteConn),
    PostgresConn(PoolConnection<Postgres>),
}

/// A plain SQLite connection: from sqlx's pool (the audit log's readers), or one of
/// [`readers::Readers`] (lookups by key and other single-statement reads), which goes
/// back without sqlx's ping.
pub enum SqliteConn {
    Pooled(PoolConnection<Sqlite>),
    Reader(readers::Reader),
}

impl std::ops::Deref for SqliteConn {
    type Target = sqlx::SqliteConnection;

    fn deref(&self) -> &sqlx::SqliteConnection {
        match self {
            SqliteConn::Pooled(c) => c,
            SqliteConn::Reader(c) => c,
        }
    }
}

impl std::ops::DerefMut for SqliteConn {
    fn deref_mut(&mut self) -> &mut sqlx::SqliteConnection {
        match self {
            SqliteConn::Pooled(c) => c,
            SqliteConn::Reader(c) => c,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
            Tx::SqliteConn(_) | Tx::PostgresConn(_) => {}
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) | Tx::SqliteConn(_) => Backend::Sqlite,
            Tx::Postgres(_) | Tx::PostgresConn(_) => Backend::Postgres,
        }
    }
}

/// Runs the same block against whichever backend `$tx` holds; `$c` is bound to a
/// `&mut` connection of the concrete type, so the query code is written once.
#[macro_export]
macro_rules! on_conn {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                t.flush().await?;
                let $c = t.conn()?;
                $body
            }
            $crate::store::Tx::SqliteConn(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::Tx::PostgresConn(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
