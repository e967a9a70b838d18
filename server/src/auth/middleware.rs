//! The token check on FHIR routes: a valid bearer token (signature, expiry on the
//! server's clock, audience = the FHIR base URL, issuer, revocation) becomes a
//! [`Principal`] in the request's extensions; then the interaction derived from the
//! method and path must be allowed by a granted scope.
//!
//! The scope check here covers plain REST calls. Transaction/batch entries and the
//! data-access rules (compartments, restrictions) belong to the service layer, which
//! reads the same `Principal` from the request (see docs/auth.md).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::cache::{self, Entry};
use super::jwt::TokenError;
use super::principal::{Actor, Interaction, Principal};
use super::scopes::Scopes;
use crate::error::Error;
use crate::fhir::outcome::{Issue, outcome};
use crate::state::AppState;

/// Why a request carries no usable token.
#[derive(Debug)]
pub enum AuthFailure {
    Missing,
    Invalid(TokenError),
    Internal(Error),
}

impl IntoResponse for AuthFailure {
    fn into_response(self) -> Response {
        let (challenge, text) = match &self {
            // RFC 6750 §3.1: no error code when the request had no credentials at all.
            AuthFailure::Missing => ("Bearer realm=\"carnet\"".to_string(), "An access token is required"),
            AuthFailure::Invalid(e) => (
                format!(
                    "Bearer realm=\"carnet\", error=\"invalid_token\", error_description=\"{}\"",
                    e.describe()
                ),
                e.describe(),
            ),
            AuthFailure::Internal(_) => {
                if let AuthFailure::Internal(e) = self {
                    return e.into_response();
                }
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let body = serde_json::to_vec(&outcome(&[Issue::error("login", text)])).unwrap_or_default();
        let mut resp = (StatusCode::UNAUTHORIZED, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(req: &axum::http::HeaderMap) -> Option<&str> {
    let v = req.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Verifies a bearer token, through the cache when it was seen before.
pub async fn verify(state: &AppState, token: &str) -> Result<Arc<Principal>, AuthFailure> {
    let now = state.now();
    let key = cache::key(token);
    let auth = state.auth();
    if let Some(entry) = auth.cache.get(&key) {
        if entry.principal.expires_at <= now {
            auth.cache.remove(&key);
            return Err(AuthFailure::Invalid(TokenError::Expired));
        }
        if now - entry.checked_at < cache::RECHECK_MICROS {
            return Ok(entry.principal);
        }
        if revoked(state, &entry.principal).await? {
            auth.cache.remove(&key);
            return Err(AuthFailure::Invalid(TokenError::Revoked));
        }
        auth.cache.put(
            key,
            Entry {
                principal: entry.principal.clone(),
                checked_at: now,
            },
            now,
        );
        return Ok(entry.principal);
    }
    let principal = Arc::new(verify_uncached(state, token).await?);
    if revoked(state, &principal).await? {
        return Err(AuthFailure::Invalid(TokenError::Revoked));
    }
    auth.cache.put(
        key,
        Entry {
            principal: principal.clone(),
            checked_at: now,
        },
        now,
    );
    Ok(principal)
}

async fn revoked(state: &AppState, p: &Principal) -> Result<bool, AuthFailure> {
    // Tokens of an external issuer have no session here: only their expiry applies.
    let Some(sid) = &p.session_id else { return Ok(false) };
    super::sessions::is_revoked(state.store(), sid, &p.token_id)
        .await
        .map_err(AuthFailure::Internal)
}

/// Signature, issuer, audience and expiry; no cache, no revocation check.
pub async fn verify_uncached(state: &AppState, token: &str) -> Result<Principal, AuthFailure> {
    let keys = super::server_keys(state).await.map_err(AuthFailure::Internal)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Invalid(TokenError::Malformed))?;
    let ours = header.kid.as_deref().is_none_or(|k| k == keys.kid);
    if !ours && let Some(ext) = super::external_issuer(state).await.map_err(AuthFailure::Internal)? {
        return ext.verify(token, state.now()).await.map_err(|e| match e {
            super::external::ExternalFailure::Token(t) => AuthFailure::Invalid(t),
            super::external::ExternalFailure::Fetch(e) => AuthFailure::Internal(e),
        });
    }
    let issuer = state.config().auth_url();
    let claims = super::jwt::verify_access(&keys, token, state.base_url(), &issuer, state.now())
        .map_err(AuthFailure::Invalid)?;
    let actor = Actor::from_claims(claims.fhir_user.as_deref(), claims.patient.as_deref())
        .ok_or(AuthFailure::Invalid(TokenError::Unknown))?;
    Ok(Principal {
        actor,
        client_id: claims.client_id,
        subject: claims.sub,
        fhir_user: claims.fhir_user,
        scopes: Scopes::parse(&claims.scope).0,
        session_id: Some(claims.sid),
        token_id: claims.jti,
        issuer: claims.iss,
        expires_at: claims.exp.saturating_mul(1_000_000),
        remote_addr: None,
    })
}

/// Axum middleware on the FHIR routes (all but `metadata` and the SMART discovery).
pub async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(token) = bearer(req.headers()) else {
        return AuthFailure::Missing.into_response();
    };
    let principal = match verify(&state, token).await {
        Ok(p) => p,
        Err(f) => return f.into_response(),
    };
    let mut principal = (*principal).clone();
    principal.remote_addr = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let path = req.uri().path().to_string();
    let if_none_exist = req.headers().contains_key("if-none-exist");
    for (interaction, ty) in classify(req.method(), &path, if_none_exist) {
        if let Err(e) = principal.check(interaction, &ty) {
            return e.into_response();
        }
    }
    req.extensions_mut().insert(Arc::new(principal));
    next.run(req).await
}

/// What a plain REST request does, from its method and path (relative to the FHIR
/// base): each listed (interaction, type) must be allowed. Conditional interactions
/// also search. `*` stands for a system-wide interaction.
pub fn classify(method: &Method, path: &str, if_none_exist: bool) -> Vec<(Interaction, String)> {
    let rest = path.strip_prefix("/fhir").unwrap_or(path);
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    // `$everything` only reads, even when POSTed (parameters in the body); `$validate`
    // stores nothing.
    let op = |name: &str| Interaction::Operation {
        name: name.to_string(),
        write: *method != Method::GET && !matches!(name, "$everything" | "$validate"),
    };
    let m = method.clone();
    let one = |i: Interaction, t: &str| vec![(i, t.to_string())];
    match segs.as_slice() {
        // $export decides in its handler: backend tokens reading the exported types,
        // and for a job's status and files the client that started it.
        ["$export-status", ..] | ["$export-file", ..] => Vec::new(),
        [.., "$export"] if m == Method::GET => Vec::new(),
        // transaction / batch: each entry is checked by the service layer; at the edge
        // only a caller with a write scope on every type may send one.
        [] if m == Method::GET => one(Interaction::Search, "*"),
        [] => vec![(Interaction::Create, "*".into()), (Interaction::Update, "*".into())],
        ["_history"] => one(Interaction::HistoryType, "*"),
        [name] if name.starts_with('$') => one(op(name), "*"),
        [ty] => match m {
            Method::GET => one(Interaction::Search, ty),
            Method::POST if if_none_exist => {
                vec![
                    (Interaction::Create, ty.to_string()),
                    (Interaction::Search, ty.to_string()),
                ]
            }
            Method::POST => one(Interaction::Create, ty),
            Method::PUT => vec![
                (Interaction::Update, ty.to_string()),
                (Interaction::Search, ty.to_string()),
            ],
            Method::PATCH => vec![
                (Interaction::Patch, ty.to_string()),
                (Interaction::Search, ty.to_string()),
            ],
            Method::DELETE => vec![
                (Interaction::Delete, ty.to_string()),
                (Interaction::Search, ty.to_string()),
            ],
            _ => one(Interaction::Read, ty),
        },
        [ty, "_search"] => one(Interaction::Search, ty),
        [ty, "_history"] => one(Interaction::HistoryType, ty),
        [ty, name] if name.starts_with('$') => one(op(name), ty),
        [ty, _id] => match m {
            Method::PUT => one(Interaction::Update, ty),
            Method::PATCH => one(Interaction::Patch, ty),
            Method::DELETE => one(Interaction::Delete, ty),
            _ => one(Interaction::Read, ty),
        },
        [ty, _id, "_history"] => one(Interaction::HistoryInstance, ty),
        [ty, _id, "_history", _vid] => one(Interaction::Vread, ty),
        [ty, _id, name] if name.starts_with('$') => one(op(name), ty),
        // Compartment search: `Patient/1/Observation` searches Observations.
        [_ty, _id, target] if m == Method::GET => one(Interaction::Search, target),
        // Anything else is answered 404 by the router; still require some scope on it.
        [ty, ..] => one(Interaction::Read, ty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_paths() {
        assert_eq!(
            classify(&Method::GET, "/fhir/Patient/1", false),
            vec![(Interaction::Read, "Patient".to_string())]
        );
        assert_eq!(
            classify(&Method::GET, "/fhir/Patient", false),
            vec![(Interaction::Search, "Patient".to_string())]
        );
        assert_eq!(
            classify(&Method::GET, "/fhir/Patient/1/_history/2", false),
            vec![(Interaction::Vread, "Patient".to_string())]
        );
        assert_eq!(
            classify(&Method::GET, "/fhir/_history", false),
            vec![(Interaction::HistoryType, "*".to_string())]
        );
        assert_eq!(classify(&Method::POST, "/fhir/Observation", true).len(), 2);
    }
}
