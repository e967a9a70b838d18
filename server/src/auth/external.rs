//! Trusting an external OpenID Connect provider: its access tokens (signed JWTs whose
//! claims carry `scope`, `fhirUser` and `patient`) are accepted in place of Carnet's own
//! when their issuer, audience and signature check out against the configured JWKS
//! (a file or an http(s) URL, read at first use and again when a token names a key it
//! does not hold).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

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

/// How long an unknown `kid` waits before the JWKS is fetched again: a provider rotates
/// its keys rarely, and a flood of tokens with made-up `kid`s must not become a flood of
/// requests to it.
const REFETCH_AFTER_MICROS: i64 = 60 * 1_000_000;

pub struct External {
    pub issuer: String,
    pub audience: String,
    source: Source,
    jwks: RwLock<Arc<JwkSet>>,
    /// When the JWKS was last read (clock microseconds).
    fetched_at: Mutex<i64>,
}

enum Source {
    File(PathBuf),
    Url { url: String, client: reqwest::Client },
}

impl Source {
    async fn read(&self) -> Result<JwkSet, Error> {
        let text = match self {
            Source::Url { url, client } => {
                let resp = client
                    .get(url.as_str())
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| Error::Unavailable(format!("cannot fetch the external JWKS: {e}")))?;
                resp.text()
                    .await
                    .map_err(|e| Error::Unavailable(format!("cannot read the external JWKS: {e}")))?
            }
            Source::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| Error::Internal(format!("cannot read the external JWKS file: {e}")))?,
        };
        serde_json::from_str(&text).map_err(|_| Error::Internal("the external JWKS is not a JWK Set".into()))
    }
}

/// An HTTPS client trusting the public web roots plus the configured CA file, on the
/// same aws-lc-rs crypto as the rest of the server (no second TLS stack).
fn https_client(ca: Option<&std::path::Path>) -> Result<reqwest::Client, Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| Error::Internal(format!("cannot read --external-jwks-ca {}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| Error::Internal(format!("bad certificate in {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| Error::Internal(format!("unusable CA certificate in {}: {e}", path.display())))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Internal(format!("HTTP client set-up: {e}")))
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

pub async fn load(config: &Config, now: i64) -> Result<Option<External>, Error> {
    let (Some(issuer), Some(source)) = (&config.external_issuer, &config.external_jwks) else {
        return Ok(None);
    };
    let source = if source.starts_with("https://") || source.starts_with("http://") {
        Source::Url {
            url: source.clone(),
            client: https_client(config.external_jwks_ca.as_deref())?,
        }
    } else {
        Source::File(PathBuf::from(source))
    };
    let jwks = source.read().await?;
    Ok(Some(External {
        issuer: issuer.clone(),
        audience: config
            .external_audience
            .clone()
            .unwrap_or_else(|| config.base_url.clone()),
        source,
        jwks: RwLock::new(Arc::new(jwks)),
        fetched_at: Mutex::new(now),
    }))
}

impl External {
    fn current(&self) -> Arc<JwkSet> {
        match self.jwks.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key a token names; an unknown `kid` reads the JWKS again (key rotation), at
    /// most once a minute.
    async fn key_for(&self, kid: Option<&str>, now: i64) -> Result<Option<jsonwebtoken::jwk::Jwk>, Error> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None => set.keys.first().cloned(),
        };
        if let Some(jwk) = find(&self.current()) {
            return Ok(Some(jwk));
        }
        {
            let mut at = self
                .fetched_at
                .lock()
                .map_err(|_| Error::Internal("JWKS lock poisoned".into()))?;
            if now - *at < REFETCH_AFTER_MICROS {
                return Ok(None);
            }
            *at = now;
        }
        let fresh = Arc::new(self.source.read().await?);
        tracing::info!(
            keys = fresh.keys.len(),
            "external JWKS read again for an unknown key id"
        );
        let found = find(&fresh);
        if let Ok(mut g) = self.jwks.write() {
            *g = fresh;
        }
        Ok(found)
    }

    pub async fn verify(&self, token: &str, now: i64) -> Result<Principal, ExternalFailure> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !ALGS.contains(&header.alg) {
            return Err(TokenError::Malformed.into());
        }
        let jwk = self
            .key_for(header.kid.as_deref(), now)
            .await
            .map_err(ExternalFailure::Fetch)?
            .ok_or(TokenError::BadSignature)?;
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| TokenError::BadSignature)?;
        if key.family() != header.alg.family() {
            return Err(TokenError::Malformed.into());
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

/// A token refused, or the provider's JWKS out of reach.
pub enum ExternalFailure {
    Token(TokenError),
    Fetch(Error),
}

impl From<TokenError> for ExternalFailure {
    fn from(e: TokenError) -> Self {
        ExternalFailure::Token(e)
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
