//! Single-use codes: activation (`A-000000`, 7 days), sign-in and reset (6 digits,
//! 10 minutes, a new one invalidates the last), authorization codes (2 minutes).
//! Stored hashed; redeeming marks the row used in the same statement that checks it.

use serde_json::Value;
use sqlx::Row;

use crate::error::Error;
use crate::on_conn;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Activation,
    SignIn,
    Reset,
    Authorization,
    /// EHR launch contexts (`endpoints::launch`), found by the opaque id alone.
    Launch,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Activation => "activation",
            Kind::SignIn => "signin",
            Kind::Reset => "reset",
            Kind::Authorization => "authz",
            Kind::Launch => "launch",
        }
    }
}

pub fn activation_code() -> Result<String, Error> {
    let letter = char::from(b'A' + u8::try_from(super::random_below(26)?).unwrap_or(0));
    Ok(format!("{letter}-{:06}", super::random_below(1_000_000)?))
}

pub fn six_digits() -> Result<String, Error> {
    Ok(format!("{:06}", super::random_below(1_000_000)?))
}

#[allow(clippy::too_many_arguments)]
/// Stores a code. With `replace`, earlier unused codes of this kind for this subject
/// stop working ("resend invalidates the last").
pub async fn issue(
    store: &Store,
    kind: Kind,
    code: &str,
    subject: &str,
    data: &Value,
    lifetime: i64,
    now: i64,
    replace: bool,
) -> Result<(), Error> {
    let mut tx = store.begin_write().await?;
    if replace {
        on_conn!(&mut tx, |c| sqlx::query(
            "UPDATE auth_codes SET used_at = $1 WHERE subject = $2 AND kind = $3 AND used_at IS NULL"
        )
        .bind(now)
        .bind(subject)
        .bind(kind.as_str())
        .execute(c)
        .await?
        .rows_affected());
    }
    // Keep the table small: forget codes long past their expiry.
    on_conn!(&mut tx, |c| sqlx::query("DELETE FROM auth_codes WHERE expires_at < $1")
        .bind(now - 24 * 3600 * 1_000_000)
        .execute(c)
        .await?
        .rows_affected());
    on_conn!(&mut tx, |c| {
        sqlx::query(
        "INSERT INTO auth_codes (code_hash, kind, subject, data, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
    )
    .bind(hash(kind, code, subject))
    .bind(kind.as_str())
    .bind(subject)
    .bind(data.to_string())
    .bind(now + lifetime)
    .bind(now)
    .execute(c)
    .await?
    .rows_affected()
    });
    tx.commit().await?;
    Ok(())
}

/// Codes that are only unique within a subject (6 digits) are hashed with it.
fn hash(kind: Kind, code: &str, subject: &str) -> String {
    match kind {
        Kind::SignIn | Kind::Reset => super::hash_secret(&format!("{subject}\u{0}{code}")),
        Kind::Activation | Kind::Authorization | Kind::Launch => super::hash_secret(code),
    }
}

#[derive(Debug)]
pub enum Redeemed {
    Ok {
        subject: String,
        data: Value,
    },
    /// Unknown, or for another subject.
    Unknown,
    Expired,
    /// Already used (or replaced by a newer one): `data` lets the caller react, e.g.
    /// revoke what an authorization code issued when it is replayed.
    Used {
        data: Value,
    },
}

/// Redeems a code once. `subject` binds sign-in and reset codes to their owner;
/// activation and authorization codes are found by the code alone.
pub async fn redeem(store: &Store, kind: Kind, code: &str, subject: &str, now: i64) -> Result<Redeemed, Error> {
    let h = hash(kind, code, subject);
    let mut tx = store.begin_write().await?;
    let row = on_conn!(&mut tx, |c| sqlx::query(
        "SELECT subject, data, expires_at, used_at FROM auth_codes WHERE code_hash = $1 AND kind = $2"
    )
    .bind(&h)
    .bind(kind.as_str())
    .fetch_optional(c)
    .await?
    .map(|r| (
        r.get::<String, _>(0),
        r.get::<String, _>(1),
        r.get::<i64, _>(2),
        r.get::<Option<i64>, _>(3)
    )));
    let Some((found_subject, data, expires_at, used_at)) = row else {
        return Ok(Redeemed::Unknown);
    };
    let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
    if used_at.is_some() {
        return Ok(Redeemed::Used { data });
    }
    if expires_at <= now {
        return Ok(Redeemed::Expired);
    }
    let n = on_conn!(&mut tx, |c| sqlx::query(
        "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL"
    )
    .bind(now)
    .bind(&h)
    .execute(c)
    .await?
    .rows_affected());
    tx.commit().await?;
    if n != 1 {
        return Ok(Redeemed::Used { data });
    }
    Ok(Redeemed::Ok {
        subject: found_subject,
        data,
    })
}
