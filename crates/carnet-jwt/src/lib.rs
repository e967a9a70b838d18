//! Verification of Carnet's access tokens (signed JWTs) and of SMART client assertions:
//! the parsing of untrusted tokens, apart from the server so it can be fuzzed alone
//! (fuzz/). Verification pins the algorithm, the audience and the issuer; expiry is
//! checked against the caller's clock, not the system time, so tests can move time.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// The algorithm of Carnet's own tokens.
pub const ALG: Algorithm = Algorithm::ES256;

/// The claims of the access tokens this server issues.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    /// The session the token belongs to.
    pub sid: String,
    #[serde(rename = "fhirUser", default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
}

/// Why a token was refused. Never carries the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    WrongAudience,
    WrongIssuer,
    Expired,
    Revoked,
    Unknown,
}

impl TokenError {
    pub fn describe(&self) -> &'static str {
        match self {
            TokenError::Malformed => "The access token is malformed or uses an unsupported algorithm",
            TokenError::BadSignature => "The access token's signature is invalid",
            TokenError::WrongAudience => "The access token is for another audience",
            TokenError::WrongIssuer => "The access token is from an untrusted issuer",
            TokenError::Expired => "The access token has expired",
            TokenError::Revoked => "The access token has been revoked",
            TokenError::Unknown => "The access token is not valid",
        }
    }
}

fn map_jwt_error(e: &jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        _ => TokenError::Malformed,
    }
}

/// A validation that pins one algorithm, the audience and the issuer, and leaves the
/// expiry to [`check_expiry`] (the server's clock).
pub fn pinned_validation(alg: Algorithm, audience: &str, issuer: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_audience(&[audience]);
    v.set_issuer(&[issuer]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.leeway = 0;
    v
}

/// `exp` (epoch seconds) against now (epoch microseconds).
pub fn check_expiry(exp: i64, now_micros: i64) -> Result<(), TokenError> {
    if exp.saturating_mul(1_000_000) <= now_micros {
        Err(TokenError::Expired)
    } else {
        Ok(())
    }
}

/// Verifies one of this server's access tokens (everything but revocation) with its
/// signing key's id and public key.
pub fn verify_access(
    kid: &str,
    key: &DecodingKey,
    token: &str,
    audience: &str,
    issuer: &str,
    now: i64,
) -> Result<AccessClaims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != ALG {
        return Err(TokenError::Malformed);
    }
    if header.kid.as_deref().is_some_and(|k| k != kid) {
        return Err(TokenError::BadSignature);
    }
    let data = jsonwebtoken::decode::<AccessClaims>(token, key, &pinned_validation(ALG, audience, issuer))
        .map_err(|e| map_jwt_error(&e))?;
    check_expiry(data.claims.exp, now)?;
    Ok(data.claims)
}

/// The claims of a client assertion (RFC 7523, SMART Backend Services).
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    pub exp: i64,
    pub jti: String,
}

/// Algorithms accepted for client assertions (SMART Backend Services).
pub const ASSERTION_ALGS: [Algorithm; 2] = [Algorithm::RS384, Algorithm::ES384];

/// Verifies a client assertion against one of the client's registered keys. Replay
/// (`jti`) is checked by the caller, in the database.
pub fn verify_assertion(
    assertion: &str,
    jwks: &jsonwebtoken::jwk::JwkSet,
    client_id: &str,
    token_url: &str,
    now: i64,
) -> Result<AssertionClaims, TokenError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| TokenError::Malformed)?;
    if !ASSERTION_ALGS.contains(&header.alg) {
        return Err(TokenError::Malformed);
    }
    let candidates: Vec<&jsonwebtoken::jwk::Jwk> = match header.kid.as_deref() {
        Some(kid) => jwks.find(kid).into_iter().collect(),
        None => jwks.keys.iter().collect(),
    };
    let mut validation = pinned_validation(header.alg, token_url, client_id);
    validation.sub = Some(client_id.to_string());
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "jti"]);
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
        if key.family() != header.alg.family() {
            continue;
        }
        match jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) {
            Ok(data) => {
                check_expiry(data.claims.exp, now)?;
                // SMART: an assertion's exp is no more than five minutes away.
                if data.claims.exp.saturating_mul(1_000_000) > now + 6 * 60 * 1_000_000 {
                    return Err(TokenError::Malformed);
                }
                return Ok(data.claims);
            }
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => continue,
            Err(e) => return Err(map_jwt_error(&e)),
        }
    }
    Err(TokenError::BadSignature)
}
