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
