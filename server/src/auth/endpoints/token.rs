//! The token endpoint: authorization_code (PKCE S256), refresh_token (rotating, 10
//! idle minutes) and client_credentials (SMART Backend Services, `private_key_jwt`).

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::clients::{self, Client, ClientKind};
use crate::auth::codes::{self, Kind, Redeemed};
use crate::auth::jwt::{self, AccessClaims};
use crate::auth::scopes::{ActorKind, Scopes};
use crate::auth::sessions::{self, Grant, RefreshOutcome};
use crate::error::Error;
use crate::state::AppState;

/// An OAuth 2.0 error answer (RFC 6749 §5.2). Descriptions never hold a secret.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> OAuthError {
        tracing::error!(error = %e, "token endpoint failure");
        OAuthError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "internal error".into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            axum::Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        no_store(resp.headers_mut());
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"carnet\""),
            );
        }
        resp
    }
}

pub fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

pub type Params = HashMap<String, String>;

fn param<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|s| !s.is_empty())
}

/// Authenticates the client of a token, introspection or revocation request:
/// `private_key_jwt`, `client_secret_basic`, `client_secret_post`, or a public client
/// naming itself (`none`), which only the authorization_code grant accepts.
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<(Client, bool), OAuthError> {
    let now = state.now();
    if let Some(assertion) = param(p, "client_assertion") {
        if param(p, "client_assertion_type") != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
            return Err(OAuthError::new("invalid_client", "unsupported client_assertion_type"));
        }
        // The issuer names the client; the signature is then checked against its keys.
        let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
            .map_err(|_| OAuthError::new("invalid_client", "malformed client assertion"))?;
        let client_id = claims["iss"].as_str().unwrap_or("").to_string();
        if param(p, "client_id").is_some_and(|c| c != client_id) {
            return Err(OAuthError::new(
                "invalid_client",
                "client_id does not match the assertion",
            ));
        }
        let client = clients::get(state.store(), &client_id)
            .await?
            .filter(|c| c.kind == ClientKind::Asymmetric)
            .ok_or_else(|| OAuthError::new("invalid_client", "unknown client"))?;
        let jwks = client
            .jwks
            .as_ref()
            .ok_or_else(|| OAuthError::new("invalid_client", "client has no keys"))?;
        let token_url = format!("{}/token", state.config().auth_url());
        let claims = jwt::verify_assertion(assertion, jwks, &client.client_id, &token_url, now).map_err(|e| {
            OAuthError::new(
                "invalid_client",
                format!("client assertion refused: {}", assertion_reason(&e)),
            )
        })?;
        if !clients::record_assertion_jti(
            state.store(),
            &client.client_id,
            &claims.jti,
            claims.exp.saturating_mul(1_000_000),
            now,
        )
        .await?
        {
            return Err(OAuthError::new(
                "invalid_client",
                "client assertion replayed (jti already used)",
            ));
        }
        return Ok((client, true));
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let dec = |x: &str| percent_encoding::percent_decode_str(x).decode_utf8_lossy().into_owned();
            Some((dec(id), dec(secret)))
        });
    let (client_id, secret) = match basic {
        Some((id, secret)) => (id, Some(secret)),
        None => match param(p, "client_id") {
            Some(id) => (id.to_string(), param(p, "client_secret").map(str::to_string)),
            None => return Err(OAuthError::new("invalid_client", "client authentication is required")),
        },
    };
    let client = clients::get(state.store(), &client_id)
        .await?
        .ok_or_else(|| OAuthError::new("invalid_client", "unknown client"))?;
    match (client.kind, secret) {
        (ClientKind::Symmetric, Some(s)) if client.check_secret(&s) => Ok((client, true)),
        (ClientKind::Public, None) => Ok((client, false)),
        _ => Err(OAuthError::new("invalid_client", "client authentication failed")),
    }
}

fn assertion_reason(e: &jwt::TokenError) -> &'static str {
    match e {
        jwt::TokenError::Expired => "expired",
        jwt::TokenError::WrongAudience => "aud must be the token endpoint URL",
        jwt::TokenError::WrongIssuer => "iss and sub must be the client id",
        jwt::TokenError::BadSignature => "signature does not match a registered key",
        _ => "malformed or unsupported algorithm (RS384, ES384)",
    }
}

#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patient: Option<String>,
    #[serde(rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    fhir_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    need_patient_banner: Option<bool>,
}

/// Signs an access token for a session.
pub async fn mint_access(
    state: &AppState,
    session_id: &str,
    client_id: &str,
    grant: &Grant,
) -> Result<(String, AccessClaims), Error> {
    let keys = crate::auth::server_keys(state).await?;
    let now_s = state.now().div_euclid(1_000_000);
    let claims = AccessClaims {
        iss: state.config().auth_url(),
        aud: state.base_url().to_string(),
        sub: grant.subject.clone(),
        exp: now_s + state.config().access_token_secs,
        iat: now_s,
        jti: crate::auth::b64url(&crate::auth::random_bytes::<16>()?),
        client_id: client_id.to_string(),
        scope: grant.scope.clone(),
        sid: session_id.to_string(),
        fhir_user: grant.fhir_user.clone(),
        patient: grant.patient.clone(),
    };
    Ok((jwt::sign(&keys, &claims)?, claims))
}

async fn id_token(state: &AppState, client_id: &str, grant: &Grant, nonce: Option<&str>) -> Result<String, Error> {
    let keys = crate::auth::server_keys(state).await?;
    let now_s = state.now().div_euclid(1_000_000);
    let mut claims = json!({
        "iss": state.config().auth_url(),
        "sub": grant.subject,
        "aud": client_id,
        "iat": now_s,
        "exp": now_s + state.config().access_token_secs,
    });
    if let Some(u) = &grant.fhir_user {
        claims["fhirUser"] = json!(format!("{}/{u}", state.base_url()));
    }
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    jwt::sign(&keys, &claims)
}

pub async fn token(State(state): State<AppState>, headers: HeaderMap, Form(p): Form<Params>) -> Response {
    match handle(&state, &headers, &p).await {
        Ok(v) => {
            let mut resp = axum::Json(v).into_response();
            no_store(resp.headers_mut());
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, p: &Params) -> Result<TokenResponse, OAuthError> {
    let grant_type =
        param(p, "grant_type").ok_or_else(|| OAuthError::new("invalid_request", "grant_type is required"))?;
    match grant_type {
        "client_credentials" => client_credentials(state, headers, p).await,
        "authorization_code" => authorization_code(state, headers, p).await,
        "refresh_token" => refresh(state, headers, p).await,
        _ => Err(OAuthError::new(
            "unsupported_grant_type",
            "supported: authorization_code, refresh_token, client_credentials",
        )),
    }
}

async fn client_credentials(state: &AppState, headers: &HeaderMap, p: &Params) -> Result<TokenResponse, OAuthError> {
    let (client, authenticated) = authenticate_client(state, headers, p).await?;
    if !authenticated {
        return Err(OAuthError::new(
            "unauthorized_client",
            "client_credentials needs a confidential client",
        ));
    }
    let requested = match param(p, "scope") {
        Some(s) => Scopes::parse(s).0,
        None => client.scopes.clone(),
    };
    let granted = requested.narrow(&client.scopes, ActorKind::System);
    if granted.resources.is_empty() {
        return Err(OAuthError::new(
            "invalid_scope",
            "no requested scope can be granted to this client (system/ scopes only)",
        ));
    }
    let grant = Grant {
        scope: granted.to_string(),
        fhir_user: None,
        patient: None,
        subject: client.client_id.clone(),
    };
    let now = state.now();
    let sid = sessions::create(state.store(), None, &client.client_id, &grant, now).await?;
    let (access_token, _) = mint_access(state, &sid, &client.client_id, &grant).await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.config().access_token_secs,
        scope: grant.scope,
        refresh_token: None,
        id_token: None,
        patient: None,
        fhir_user: None,
        need_patient_banner: None,
    })
}

/// RFC 7636 S256: BASE64URL(SHA256(verifier)) == challenge, compared in constant time.
pub fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    let valid_chars = verifier
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    if !(43..=128).contains(&verifier.len()) || !valid_chars {
        return false;
    }
    let computed = crate::auth::b64url(&Sha256::digest(verifier.as_bytes()));
    bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

async fn authorization_code(state: &AppState, headers: &HeaderMap, p: &Params) -> Result<TokenResponse, OAuthError> {
    let (client, _) = authenticate_client(state, headers, p).await?;
    let code = param(p, "code").ok_or_else(|| OAuthError::new("invalid_request", "code is required"))?;
    let now = state.now();
    let data = match codes::redeem(state.store(), Kind::Authorization, code, "", now).await? {
        Redeemed::Ok { data, .. } => data,
        Redeemed::Used { data } => {
            // RFC 6749 §4.1.2: a code used twice revokes what it issued.
            if let Some(sid) = data["session"].as_str() {
                sessions::revoke_session(state.store(), sid, now).await?;
                state.auth().cache.forget_session(sid);
            }
            return Err(OAuthError::new("invalid_grant", "authorization code already used"));
        }
        Redeemed::Expired => return Err(OAuthError::new("invalid_grant", "authorization code expired")),
        Redeemed::Unknown => return Err(OAuthError::new("invalid_grant", "unknown authorization code")),
    };
    if data["client_id"].as_str() != Some(client.client_id.as_str()) {
        return Err(OAuthError::new(
            "invalid_grant",
            "authorization code was issued to another client",
        ));
    }
    if param(p, "redirect_uri") != data["redirect_uri"].as_str() {
        return Err(OAuthError::new(
            "invalid_grant",
            "redirect_uri does not match the authorization request",
        ));
    }
    let verifier =
        param(p, "code_verifier").ok_or_else(|| OAuthError::new("invalid_request", "code_verifier is required"))?;
    if !pkce_ok(verifier, data["code_challenge"].as_str().unwrap_or("")) {
        return Err(OAuthError::new("invalid_grant", "PKCE verification failed"));
    }
    let grant: Grant = serde_json::from_value(data["grant"].clone())
        .map_err(|_| OAuthError::from(Error::Internal("stored grant is unreadable".into())))?;
    let account_id = data["account"].as_str();
    let sid = data["session"]
        .as_str()
        .ok_or_else(|| OAuthError::from(Error::Internal("code without session".into())))?;
    sessions::create_with_id(state.store(), sid, account_id, &client.client_id, &grant, now).await?;
    let refresh_token = Some(sessions::issue_refresh(state.store(), sid, now).await?);
    let scopes = Scopes::parse(&grant.scope).0;
    let id_token = if scopes.has("openid") && (scopes.has("fhirUser") || scopes.has("profile")) {
        Some(id_token(state, &client.client_id, &grant, data["nonce"].as_str()).await?)
    } else {
        None
    };
    let (access_token, _) = mint_access(state, sid, &client.client_id, &grant).await?;
    let patient = if scopes.has("launch/patient") || scopes.has("launch") {
        grant.patient.clone()
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.config().access_token_secs,
        scope: grant.scope.clone(),
        refresh_token,
        id_token,
        need_patient_banner: patient.as_ref().map(|_| true),
        patient,
        fhir_user: grant.fhir_user.clone(),
    })
}

async fn refresh(state: &AppState, headers: &HeaderMap, p: &Params) -> Result<TokenResponse, OAuthError> {
    let (client, _) = authenticate_client(state, headers, p).await?;
    let token =
        param(p, "refresh_token").ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is required"))?;
    let now = state.now();
    let sid = match sessions::use_refresh(state.store(), token, now).await? {
        RefreshOutcome::Ok(sid) => sid,
        RefreshOutcome::Expired => {
            return Err(OAuthError::new(
                "invalid_grant",
                "refresh token expired (10 idle minutes)",
            ));
        }
        RefreshOutcome::Replayed => {
            return Err(OAuthError::new(
                "invalid_grant",
                "refresh token already used; the session is revoked",
            ));
        }
        RefreshOutcome::Unknown => return Err(OAuthError::new("invalid_grant", "unknown refresh token")),
    };
    let session = sessions::get(state.store(), &sid)
        .await?
        .ok_or_else(|| OAuthError::new("invalid_grant", "unknown session"))?;
    if session.revoked {
        return Err(OAuthError::new("invalid_grant", "the session has ended"));
    }
    if session.client_id != client.client_id {
        return Err(OAuthError::new(
            "invalid_grant",
            "refresh token was issued to another client",
        ));
    }
    if let Some(account_id) = &session.account_id {
        let ok = crate::auth::accounts::by_id(state.store(), account_id)
            .await?
            .is_some_and(|a| a.status == crate::auth::accounts::Status::Active && !a.locked);
        if !ok {
            sessions::revoke_session(state.store(), &sid, now).await?;
            return Err(OAuthError::new("invalid_grant", "the account is locked or deactivated"));
        }
    }
    let mut grant = session.grant.clone();
    if let Some(s) = param(p, "scope") {
        let (asked, rejected) = Scopes::parse(s);
        let had = Scopes::parse(&grant.scope).0;
        if !rejected.is_empty() || !had.covers(&asked) {
            return Err(OAuthError::new(
                "invalid_scope",
                "a refresh may only ask for scopes already granted",
            ));
        }
        grant.scope = asked.to_string();
    }
    let refresh_token = Some(sessions::issue_refresh(state.store(), &sid, now).await?);
    let (access_token, _) = mint_access(state, &sid, &client.client_id, &grant).await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.config().access_token_secs,
        scope: grant.scope.clone(),
        refresh_token,
        id_token: None,
        need_patient_banner: None,
        patient: grant.patient.clone(),
        fhir_user: grant.fhir_user.clone(),
    })
}
