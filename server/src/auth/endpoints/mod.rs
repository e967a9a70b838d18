//! The authorization server's HTTP endpoints, mounted under `/auth` (and the SMART
//! discovery document under the FHIR base).

pub mod account;
pub mod authorize;
pub mod discovery;
pub mod launch;
pub mod oauth;
pub mod token;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// Routes under `/auth` (public: each endpoint authenticates what it needs).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize::start).post(authorize::step))
        .route("/token", post(token::token))
        .route("/launch", post(launch::create))
        .route("/introspect", post(oauth::introspect))
        .route("/revoke", post(oauth::revoke))
        .route("/signout", post(oauth::sign_out))
        .route("/jwks", get(discovery::jwks))
        .route("/activate", get(account::activate_page).post(account::activate))
        .route("/reset", get(account::reset_page).post(account::reset))
        .route("/deactivate", get(account::deactivate_page).post(account::deactivate))
}
