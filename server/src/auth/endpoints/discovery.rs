//! `[base]/.well-known/smart-configuration` and the JWKS of the server's signing keys.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::state::AppState;

pub const CAPABILITIES: &[&str] = &[
    "launch-standalone",
    "launch-ehr",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-standalone-patient",
    "context-ehr-patient",
    "permission-v1",
    "permission-v2",
    "permission-patient",
    "permission-user",
    "permission-offline",
    "sso-openid-connect",
    "authorize-post",
];

pub fn document(state: &AppState) -> Value {
    let auth = state.config().auth_url();
    json!({
        "issuer": auth,
        "jwks_uri": format!("{auth}/jwks"),
        "authorization_endpoint": format!("{auth}/authorize"),
        "token_endpoint": format!("{auth}/token"),
        "introspection_endpoint": format!("{auth}/introspect"),
        "revocation_endpoint": format!("{auth}/revoke"),
        "management_endpoint": format!("{auth}/deactivate"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": [
            "openid", "fhirUser", "launch", "launch/patient", "offline_access", "online_access",
            "patient/*.rs", "patient/*.read", "user/*.cruds", "user/*.*", "system/*.cruds", "system/*.*"
        ],
        "capabilities": CAPABILITIES,
    })
}

pub async fn smart_configuration(State(state): State<AppState>) -> Response {
    Json(document(&state)).into_response()
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    match crate::auth::server_keys(&state).await {
        Ok(keys) => ([(header::CACHE_CONTROL, "public, max-age=300")], Json(keys.jwks())).into_response(),
        Err(e) => e.into_response(),
    }
}
