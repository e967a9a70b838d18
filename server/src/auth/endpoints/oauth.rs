//! Token introspection (RFC 7662), revocation (RFC 7009) and sign-out.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::token::{OAuthError, Params, authenticate_client, no_store};
use crate::auth::middleware::{self, AuthFailure};
use crate::auth::sessions;
use crate::state::AppState;

/// RFC 7662: any authenticated confidential client may ask; an inactive, unknown or
/// malformed token is `{"active": false}`.
pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, Form(p): Form<Params>) -> Response {
    let result = async {
        let (_, authenticated) = authenticate_client(&state, &headers, &p).await?;
        if !authenticated {
            return Err(OAuthError::new(
                "invalid_client",
                "introspection needs a confidential client",
            ));
        }
        let token = p.get("token").map(String::as_str).unwrap_or("");
        let body = match middleware::verify(&state, token).await {
            Ok(pr) => {
                let mut v = json!({
                    "active": true,
                    "scope": pr.scopes.to_string(),
                    "client_id": pr.client_id,
                    "sub": pr.subject,
                    "exp": pr.expires_at.div_euclid(1_000_000),
                    "iss": pr.issuer,
                    "aud": state.base_url(),
                    "token_type": "Bearer",
                    "jti": pr.token_id,
                });
                if let Some(u) = &pr.fhir_user {
                    v["fhirUser"] = json!(u);
                }
                if let Some(pt) = pr.actor.context_patient() {
                    v["patient"] = json!(pt);
                }
                v
            }
            Err(AuthFailure::Internal(e)) => return Err(e.into()),
            Err(_) => json!({"active": false}),
        };
        Ok(body)
    }
    .await;
    match result {
        Ok(v) => {
            let mut r = axum::Json(v).into_response();
            no_store(r.headers_mut());
            r
        }
        Err(e) => e.into_response(),
    }
}

/// RFC 7009: revoking a refresh token ends its session (and every access token of it);
/// revoking an access token ends that token. Unknown tokens are not an error.
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, Form(p): Form<Params>) -> Response {
    let result = async {
        let (client, _) = authenticate_client(&state, &headers, &p).await?;
        let token = p.get("token").map(String::as_str).unwrap_or("");
        revoke_any(&state, token, Some(&client.client_id)).await?;
        Ok::<_, OAuthError>(())
    }
    .await;
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn revoke_any(state: &AppState, token: &str, client_id: Option<&str>) -> Result<(), OAuthError> {
    let now = state.now();
    if let Some(sid) = sessions::session_of_refresh(state.store(), token).await? {
        let owner = sessions::get(state.store(), &sid).await?.map(|s| s.client_id);
        if client_id.is_none() || owner.as_deref() == client_id {
            sessions::revoke_session(state.store(), &sid, now).await?;
            state.auth().cache.forget_session(&sid);
        }
        return Ok(());
    }
    if let Ok(pr) = middleware::verify_uncached(state, token).await
        && (client_id.is_none() || Some(pr.client_id.as_str()) == client_id)
    {
        sessions::revoke_token(state.store(), &pr.token_id, pr.expires_at, now).await?;
        state.auth().cache.forget_token(&pr.token_id);
    }
    Ok(())
}

/// Sign-out: the bearer of an access token ends its whole session.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = middleware::bearer(&headers) else {
        return AuthFailure::Missing.into_response();
    };
    match middleware::verify(&state, token).await {
        Ok(pr) => {
            if let Some(sid) = &pr.session_id {
                if let Err(e) = sessions::revoke_session(state.store(), sid, state.now()).await {
                    return e.into_response();
                }
                state.auth().cache.forget_session(sid);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(f) => f.into_response(),
    }
}
