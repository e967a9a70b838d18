//! Five failed attempts in a row (password, code or reset) lock an account until the
//! care team unlocks it (`carnet account unlock`). Counted in the database, so every
//! process sees the same count.

use sqlx::Row;

use crate::error::Error;
use crate::on_conn;
use crate::store::Store;

pub const MAX_FAILURES: i64 = 5;

/// Records a failure; true when the account is (now) locked.
pub async fn record_failure(store: &Store, account_id: &str) -> Result<bool, Error> {
    let mut tx = store.begin_write().await?;
    let failures: i64 = on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_accounts SET failed_attempts = failed_attempts + 1 WHERE id = $1 RETURNING failed_attempts"
    )
    .bind(account_id)
    .fetch_optional(c)
    .await?
    .map(|r| r.get::<i64, _>(0))
    .unwrap_or(0));
    let locked = failures >= MAX_FAILURES;
    if locked {
        on_conn!(&mut tx, |c| sqlx::query(
            "UPDATE auth_accounts SET locked = $1 WHERE id = $2"
        )
        .bind(true)
        .bind(account_id)
        .execute(c)
        .await?
        .rows_affected());
    }
    tx.commit().await?;
    if locked {
        tracing::warn!(account = %account_id, "account locked after repeated failures");
    }
    Ok(locked)
}

/// A complete success (signed in, activated, reset) starts the count again.
pub async fn reset(store: &Store, account_id: &str) -> Result<(), Error> {
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_accounts SET failed_attempts = 0 WHERE id = $1"
    )
    .bind(account_id)
    .execute(c)
    .await?
    .rows_affected());
    tx.commit().await?;
    Ok(())
}

pub async fn unlock(store: &Store, account_id: &str) -> Result<bool, Error> {
    let mut tx = store.begin_write().await?;
    let n = on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_accounts SET failed_attempts = 0, locked = $1 WHERE id = $2"
    )
    .bind(false)
    .bind(account_id)
    .execute(c)
    .await?
    .rows_affected());
    tx.commit().await?;
    Ok(n == 1)
}
