//! Sessions (one sign-in, or one client_credentials grant), their rotating refresh
//! tokens, and revocation. Access tokens carry the session id (`sid`) and their `jti`;
//! a token is revoked when its session is or when its `jti` is listed.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::Error;
use crate::on_conn;
use crate::store::Store;

/// What a session was granted: every token it issues carries this.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    pub scope: String,
    #[serde(default)]
    pub fhir_user: Option<String>,
    #[serde(default)]
    pub patient: Option<String>,
    /// `sub`: the account id, or the client id for a backend client.
    pub subject: String,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub account_id: Option<String>,
    pub client_id: String,
    pub grant: Grant,
    pub revoked: bool,
}

pub async fn create(
    store: &Store,
    account_id: Option<&str>,
    client_id: &str,
    grant: &Grant,
    now: i64,
) -> Result<String, Error> {
    let id = super::random_token()?;
    create_with_id(store, &id, account_id, client_id, grant, now).await?;
    Ok(id)
}

/// Creates a session whose id was chosen earlier (when its authorization code was
/// issued, so that a replayed code can revoke it).
pub async fn create_with_id(
    store: &Store,
    id: &str,
    account_id: Option<&str>,
    client_id: &str,
    grant: &Grant,
    now: i64,
) -> Result<(), Error> {
    let data = serde_json::to_string(grant).map_err(|_| Error::Internal("cannot encode a grant".into()))?;
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |c| {
        sqlx::query(
        "INSERT INTO auth_sessions (id, account_id, client_id, grant_data, created_at, last_active) VALUES ($1, $2, $3, $4, $5, $5)"
    )
    .bind(id)
    .bind(account_id)
    .bind(client_id)
    .bind(data)
    .bind(now)
    .execute(c)
    .await?
    .rows_affected()
    });
    tx.commit().await?;
    Ok(())
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Session>, Error> {
    let mut tx = store.reader().await?;
    let row = on_conn!(&mut tx, |c| sqlx::query(
        "SELECT id, account_id, client_id, grant_data, revoked_at FROM auth_sessions WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(c)
    .await?
    .map(|r| {
        (
            r.get::<String, _>(0),
            r.get::<Option<String>, _>(1),
            r.get::<String, _>(2),
            r.get::<String, _>(3),
            r.get::<Option<i64>, _>(4),
        )
    }));
    let Some((id, account_id, client_id, data, revoked_at)) = row else {
        return Ok(None);
    };
    let grant: Grant = serde_json::from_str(&data).map_err(|_| Error::Internal("stored grant is unreadable".into()))?;
    Ok(Some(Session {
        id,
        account_id,
        client_id,
        grant,
        revoked: revoked_at.is_some(),
    }))
}

/// Issues a new refresh token for the session, valid for the idle timeout.
pub async fn issue_refresh(store: &Store, session_id: &str, now: i64) -> Result<String, Error> {
    let token = super::random_token()?;
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |c| sqlx::query(
        "INSERT INTO auth_refresh_tokens (token_hash, session_id, expires_at, created_at) VALUES ($1, $2, $3, $4)"
    )
    .bind(super::hash_secret(&token))
    .bind(session_id)
    .bind(now + super::REFRESH_IDLE_MICROS)
    .bind(now)
    .execute(c)
    .await?
    .rows_affected());
    on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_sessions SET last_active = $1 WHERE id = $2"
    )
    .bind(now)
    .bind(session_id)
    .execute(c)
    .await?
    .rows_affected());
    tx.commit().await?;
    Ok(token)
}

#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The session the token belonged to; the token is now used.
    Ok(String),
    Unknown,
    Expired,
    /// A used token presented again: the session has been revoked.
    Replayed,
}

/// Marks a refresh token used (once: two concurrent uses cannot both win).
pub async fn use_refresh(store: &Store, token: &str, now: i64) -> Result<RefreshOutcome, Error> {
    let hash = super::hash_secret(token);
    let mut tx = store.begin_write().await?;
    let row = on_conn!(&mut tx, |c| sqlx::query(
        "SELECT session_id, expires_at, used_at FROM auth_refresh_tokens WHERE token_hash = $1"
    )
    .bind(&hash)
    .fetch_optional(c)
    .await?
    .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1), r.get::<Option<i64>, _>(2))));
    let Some((session_id, expires_at, used_at)) = row else {
        return Ok(RefreshOutcome::Unknown);
    };
    if used_at.is_some() {
        on_conn!(&mut tx, |c| sqlx::query(
            "UPDATE auth_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
        )
        .bind(now)
        .bind(&session_id)
        .execute(c)
        .await?
        .rows_affected());
        tx.commit().await?;
        return Ok(RefreshOutcome::Replayed);
    }
    if expires_at <= now {
        return Ok(RefreshOutcome::Expired);
    }
    let n = on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL"
    )
    .bind(now)
    .bind(&hash)
    .execute(c)
    .await?
    .rows_affected());
    tx.commit().await?;
    Ok(if n == 1 {
        RefreshOutcome::Ok(session_id)
    } else {
        RefreshOutcome::Replayed
    })
}

/// The session a refresh token belongs to, without using it (revocation, introspection).
pub async fn session_of_refresh(store: &Store, token: &str) -> Result<Option<String>, Error> {
    let mut tx = store.reader().await?;
    let id = on_conn!(&mut tx, |c| sqlx::query(
        "SELECT session_id FROM auth_refresh_tokens WHERE token_hash = $1"
    )
    .bind(super::hash_secret(token))
    .fetch_optional(c)
    .await?
    .map(|r| r.get::<String, _>(0)));
    Ok(id)
}

pub async fn revoke_session(store: &Store, session_id: &str, now: i64) -> Result<(), Error> {
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
    )
    .bind(now)
    .bind(session_id)
    .execute(c)
    .await?
    .rows_affected());
    tx.commit().await?;
    Ok(())
}

/// Ends every session of an account (deactivation, lockout).
pub async fn revoke_account(store: &Store, account_id: &str, now: i64) -> Result<(), Error> {
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_sessions SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL"
    )
    .bind(now)
    .bind(account_id)
    .execute(c)
    .await?
    .rows_affected());
    tx.commit().await?;
    Ok(())
}

/// Revokes one access token (RFC 7009) until it would have expired anyway.
pub async fn revoke_token(store: &Store, jti: &str, expires_at: i64, now: i64) -> Result<(), Error> {
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |c| sqlx::query(
        "DELETE FROM auth_revoked_tokens WHERE expires_at < $1"
    )
    .bind(now)
    .execute(c)
    .await?
    .rows_affected());
    on_conn!(&mut tx, |c| sqlx::query(
        "INSERT INTO auth_revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    )
    .bind(jti)
    .bind(expires_at)
    .execute(c)
    .await?
    .rows_affected());
    tx.commit().await?;
    Ok(())
}

/// One indexed round trip: is this token's session ended or its `jti` revoked?
pub async fn is_revoked(store: &Store, session_id: &str, jti: &str) -> Result<bool, Error> {
    let mut tx = store.lookup().await?;
    let (session_revoked, jti_revoked) = on_conn!(&mut tx, |c| sqlx::query(
        "SELECT (SELECT COUNT(*) FROM auth_sessions WHERE id = $1 AND revoked_at IS NULL), \
                (SELECT COUNT(*) FROM auth_revoked_tokens WHERE jti = $2)"
    )
    .bind(session_id)
    .bind(jti)
    .fetch_one(c)
    .await
    .map(|r| (r.get::<i64, _>(0) == 0, r.get::<i64, _>(1) > 0))?);
    Ok(session_revoked || jti_revoked)
}
