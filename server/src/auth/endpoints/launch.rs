//! EHR launch contexts: the EHR registers the patient (and practitioner) an app is
//! launched on, gets an opaque `launch` id (stored hashed in `auth_codes`, single use,
//! 5 minutes) and opens the app with it; the authorize endpoint resolves it.
//!
//! `POST /auth/launch` with a bearer token and a form `patient` (`Patient/123` or
//! `123`): a practitioner's token registers a launch for themself; a backend
//! (`system/`) token names the practitioner with `practitioner` (optional: then any
//! practitioner who signs in gets the context).

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::codes::{self, Kind, Redeemed};
use crate::auth::middleware::{self, AuthFailure};
use crate::auth::principal::Actor;
use crate::error::Error;
use crate::state::AppState;

/// How long a launch id may wait for the app's authorization request.
pub const LAUNCH_MICROS: i64 = 5 * 60 * 1_000_000;

/// A resolved launch context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Patient id.
    pub patient: String,
    /// Practitioner id, when the launch is for one practitioner only.
    pub practitioner: Option<String>,
}

fn id_of<'a>(reference: &'a str, ty: &str) -> Option<&'a str> {
    let id = reference
        .strip_prefix(ty)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(reference);
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

fn bad(text: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_request", "error_description": text})),
    )
        .into_response()
}

/// POST `/auth/launch`.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let Some(token) = middleware::bearer(&headers) else {
        return AuthFailure::Missing.into_response();
    };
    let principal = match middleware::verify(&state, token).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(patient) = f.get("patient").and_then(|p| id_of(p, "Patient")) else {
        return bad("patient (Patient/<id>) is required");
    };
    let practitioner = match (&principal.actor, f.get("practitioner").filter(|p| !p.is_empty())) {
        (Actor::Practitioner { id, .. }, _) => Some(id.clone()),
        (Actor::System, Some(p)) => match id_of(p, "Practitioner") {
            Some(p) => Some(p.to_string()),
            None => return bad("practitioner must be Practitioner/<id>"),
        },
        (Actor::System, None) => None,
        _ => {
            return Error::Forbidden("only a practitioner or the EHR's backend can register a launch".into())
                .into_response();
        }
    };
    match register(&state, patient, practitioner.as_deref()).await {
        Ok(launch) => {
            let mut r = axum::Json(json!({
                "launch": launch,
                "patient": format!("Patient/{patient}"),
                "expires_in": LAUNCH_MICROS / 1_000_000,
            }))
            .into_response();
            super::token::no_store(r.headers_mut());
            r
        }
        Err(e) => e.into_response(),
    }
}

/// Stores a launch context and returns its opaque id.
pub async fn register(state: &AppState, patient: &str, practitioner: Option<&str>) -> Result<String, Error> {
    let launch = crate::auth::random_token()?;
    codes::issue(
        state.store(),
        Kind::Launch,
        &launch,
        "",
        &json!({"patient": patient, "practitioner": practitioner}),
        LAUNCH_MICROS,
        state.now(),
        false,
    )
    .await?;
    Ok(launch)
}

/// Resolves (and uses up) a launch id; `None` when unknown, used or expired.
pub async fn resolve(state: &AppState, launch: &str) -> Result<Option<Context>, Error> {
    match codes::redeem(state.store(), Kind::Launch, launch, "", state.now()).await? {
        Redeemed::Ok { data, .. } => Ok(data["patient"].as_str().map(|p| Context {
            patient: p.to_string(),
            practitioner: data["practitioner"].as_str().map(str::to_string),
        })),
        _ => Ok(None),
    }
}
