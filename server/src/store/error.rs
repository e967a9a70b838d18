use thiserror::Error;

/// Failures of the storage layer. SQL text and driver details stay in the log: the
/// HTTP edge turns these into a generic OperationOutcome.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored content is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database url: {0}")]
    UnsupportedUrl(String),
    #[error("the SQLite writer's thread failed: {0}")]
    WriterThread(String),
    #[error("could not prepare the data directory: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// True when the database could not be reached or dropped the connection (an
    /// outage, PostgreSQL restarting or shutting down, pools closed at shutdown, no
    /// connection free in time): the same request may succeed later (503, not 500).
    pub fn is_unreachable(&self) -> bool {
        match self {
            StoreError::Database(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // PostgreSQL's classes 08 (connection exception) and 57P (operator
                // intervention: shutdown, restart); SQLite's codes are numbers.
                sqlx::Error::Database(d) => d.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
                _ => false,
            },
            _ => false,
        }
    }

    /// True when the database refused a write because another one won a race (a unique
    /// key or a serialization failure): the operation can be retried as a whole.
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(e.kind(), sqlx::error::ErrorKind::UniqueViolation)
                    || matches!(e.code().as_deref(), Some("40001") | Some("40P01"))
            }
            _ => false,
        }
    }
}
