//! Trusting an external OpenID Connect provider: its access tokens (signed JWTs whose
//! claims carry `scope`, `fhirUser` and `patient`) are accepted in place of Carnet's own
//! when their issuer, audience and signature check out against the configured JWKS
//! (a file, or a URL read once at first use).

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

use super::jwt::{TokenError, check_expiry, pinned_validation};
use super::principal::{Actor, Principal};
use super::scopes::Scopes;
use crate::config::Config;
use crate::error::Error;

/// Algorithms accepted from the external issuer (asymmetric only: a shared-secret
/// algorithm would let anyone holding the public JWKS forge tokens).
const ALGS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::PS256,
];

pub struct External {
    pub issuer: String,
    pub audience: String,
    pub jwks: JwkSet,
}

#[derive(Debug, Deserialize)]
struct ExternalClaims {
    iss: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(rename = "fhirUser", default)]
    fhir_user: Option<String>,
    #[serde(default)]
    patient: Option<String>,
}

pub async fn load(config: &Config) -> Result<Option<External>, Error> {
    let (Some(issuer), Some(source)) = (&config.external_issuer, &config.external_jwks) else {
        return Ok(None);
    };
    let text = if source.starts_with("http://") || source.starts_with("https://") {
        let resp = reqwest::get(source.as_str())
            .await
            .map_err(|e| Error::Internal(format!("cannot fetch the external JWKS: {e}")))?;
        resp.text()
            .await
            .map_err(|e| Error::Internal(format!("cannot read the external JWKS: {e}")))?
    } else {
        std::fs::read_to_string(source)
            .map_err(|e| Error::Internal(format!("cannot read the external JWKS file: {e}")))?
    };
    let jwks: JwkSet =
        serde_json::from_str(&text).map_err(|_| Error::Internal("the external JWKS is not a JWK Set".into()))?;
    Ok(Some(External {
        issuer: issuer.clone(),
        audience: config
            .external_audience
            .clone()
            .unwrap_or_else(|| config.base_url.clone()),
        jwks,
    }))
}

impl External {
    pub fn verify(&self, token: &str, now: i64) -> Result<Principal, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !ALGS.contains(&header.alg) {
            return Err(TokenError::Malformed);
        }
        let jwk = match header.kid.as_deref() {
            Some(kid) => self.jwks.find(kid),
            None => self.jwks.keys.first(),
        }
        .ok_or(TokenError::BadSignature)?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|_| TokenError::BadSignature)?;
        if key.family() != header.alg.family() {
            return Err(TokenError::Malformed);
        }
        let data = jsonwebtoken::decode::<ExternalClaims>(
            token,
            &key,
            &pinned_validation(header.alg, &self.audience, &self.issuer),
        )
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAudience => TokenError::WrongAudience,
            jsonwebtoken::errors::ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
            _ => TokenError::Malformed,
        })?;
        let c = data.claims;
        check_expiry(c.exp, now)?;
        let fhir_user = c.fhir_user.as_deref().map(relative_reference);
        let actor = Actor::from_claims(fhir_user.as_deref(), c.patient.as_deref()).ok_or(TokenError::Unknown)?;
        // The same narrowing as for our own tokens: the actor's kind bounds the scopes.
        let kind = match &actor {
            Actor::Patient { .. } | Actor::Representative { .. } => super::scopes::ActorKind::PatientFacing,
            Actor::Practitioner { .. } => super::scopes::ActorKind::Practitioner,
            Actor::System => super::scopes::ActorKind::System,
        };
        let requested = Scopes::parse(&c.scope).0;
        let scopes = requested.narrow(&requested, kind);
        Ok(Principal {
            actor,
            client_id: c.client_id.or(c.azp).unwrap_or_default(),
            subject: c.sub,
            fhir_user,
            scopes,
            session_id: None,
            token_id: c.jti.unwrap_or_default(),
            issuer: c.iss,
            expires_at: c.exp.saturating_mul(1_000_000),
            remote_addr: None,
        })
    }
}

/// `https://ehr.example/fhir/Patient/123` → `Patient/123`.
fn relative_reference(url: &str) -> String {
    let mut parts = url.rsplit('/');
    match (parts.next(), parts.next()) {
        (Some(id), Some(ty)) => format!("{ty}/{id}"),
        _ => url.to_string(),
    }
}
