//! Storage: one API over SQLite and PostgreSQL.
//!
//! Both backends run the same SQL (`$n` placeholders work on both), so each query is
//! written once and expanded for each backend by the [`on_conn!`] macro. Everything the
//! server knows lives here: two processes on one PostgreSQL see the same state.

mod connect;
mod error;
pub mod resources;

pub use connect::{Backend, Store};
pub use error::StoreError;
pub use resources::{Current, HistoryEntry, HistoryQuery, StoredVersion};

use sqlx::{Postgres, Sqlite, Transaction};

/// A database transaction on either backend. Every write happens inside one, so a
/// failed request (or a failed transaction Bundle) leaves nothing behind.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
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
                let $c = &mut **t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
