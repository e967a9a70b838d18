//! Access tokens: signing here (the keys are the server's), verification in
//! `carnet-jwt` (apart so the parsing of untrusted tokens can be fuzzed alone).

use jsonwebtoken::Header;
use serde::Serialize;

pub use carnet_jwt::{
    ASSERTION_ALGS, AccessClaims, AssertionClaims, TokenError, check_expiry, pinned_validation, verify_assertion,
};

use super::keys::{ALG, Keys};
use crate::error::Error;

pub fn sign<T: Serialize>(keys: &Keys, claims: &T) -> Result<String, Error> {
    let mut header = Header::new(ALG);
    header.kid = Some(keys.kid.clone());
    header.typ = Some("JWT".into());
    jsonwebtoken::encode(&header, claims, &keys.encoding).map_err(|_| Error::Internal("cannot sign a token".into()))
}

/// Verifies one of this server's access tokens (everything but revocation).
pub fn verify_access(
    keys: &Keys,
    token: &str,
    audience: &str,
    issuer: &str,
    now: i64,
) -> Result<AccessClaims, TokenError> {
    carnet_jwt::verify_access(&keys.kid, &keys.decoding, token, audience, issuer, now)
}
