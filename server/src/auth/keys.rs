//! The server's token signing key: ECDSA P-256 (ES256), generated on first start and
//! kept in the database so that every process signs and verifies with the same key.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};
use sqlx::Row;

use crate::error::Error;
use crate::on_conn;
use crate::store::Store;

/// The algorithm of this server's tokens (carnet-jwt verifies with the same).
pub use carnet_jwt::ALG;

pub struct Keys {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public JWK, as published at the JWKS URL.
    pub public_jwk: Value,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Keys {
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk] })
    }
}

fn generate() -> Result<(Vec<u8>, Value, String), Error> {
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &aws_lc_rs::rand::SystemRandom::new())
        .map_err(|_| Error::Internal("cannot generate a signing key".into()))?;
    let der = doc.as_ref().to_vec();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        .map_err(|_| Error::Internal("generated signing key is unreadable".into()))?;
    let point = pair.public_key().as_ref();
    // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
    if point.len() != 65 {
        return Err(Error::Internal("unexpected public key encoding".into()));
    }
    let x = super::b64url(&point[1..33]);
    let y = super::b64url(&point[33..65]);
    let kid = super::b64url(&super::random_bytes::<12>()?);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"});
    Ok((der, jwk, kid))
}

fn from_row(kid: String, der: Vec<u8>, jwk_text: &str) -> Result<Keys, Error> {
    let public_jwk: Value =
        serde_json::from_str(jwk_text).map_err(|_| Error::Internal("stored public key is unreadable".into()))?;
    let (Some(x), Some(y)) = (public_jwk["x"].as_str(), public_jwk["y"].as_str()) else {
        return Err(Error::Internal("stored public key is incomplete".into()));
    };
    let decoding =
        DecodingKey::from_ec_components(x, y).map_err(|_| Error::Internal("stored public key is invalid".into()))?;
    Ok(Keys {
        kid,
        encoding: EncodingKey::from_ec_der(&der),
        decoding,
        public_jwk,
    })
}

/// Reads the current key, creating it first if there is none. Two processes starting
/// together both try the insert; `ON CONFLICT DO NOTHING` keeps the first, and both
/// then read that one.
pub async fn load_or_create(store: &Store, now: i64) -> Result<Keys, Error> {
    let (der, jwk, kid) = generate()?;
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |c| sqlx::query(
        "INSERT INTO auth_keys (slot, kid, alg, private_der, public_jwk, created_at) \
         VALUES ('current', $1, 'ES256', $2, $3, $4) ON CONFLICT (slot) DO NOTHING"
    )
    .bind(&kid)
    .bind(&der)
    .bind(jwk.to_string())
    .bind(now)
    .execute(c)
    .await?
    .rows_affected());
    let row = on_conn!(&mut tx, |c| sqlx::query(
        "SELECT kid, private_der, public_jwk FROM auth_keys WHERE slot = 'current'"
    )
    .fetch_one(c)
    .await
    .map(|r| (r.get::<String, _>(0), r.get::<Vec<u8>, _>(1), r.get::<String, _>(2)))?);
    tx.commit().await?;
    from_row(row.0, row.1, &row.2)
}
