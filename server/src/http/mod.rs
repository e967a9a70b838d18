//! The HTTP edge: routes, request extraction, negotiation and the error mapping.

pub mod bundle;
pub mod complete;
pub mod conformance;
pub mod crud;
pub mod error;
pub mod everything;
pub mod export;
pub mod extract;
pub mod history;
pub mod import;
pub mod metadata;
pub mod negotiate;
pub mod ops;
pub mod rate_limit;
pub mod respond;
pub mod search;
pub mod terminology;
pub mod validate;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::Error;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let fhir = Router::new()
        .route("/", get(search::system).post(bundle::process))
        .route("/_history", get(history::system))
        .route("/$import", post(import::import))
        // Bulk Data $export (docs/bulk.md).
        .route("/$export", get(export::system))
        .route("/{type}/$export", get(export::type_level))
        .route("/{type}/{id}/$export", get(export::instance_level))
        .route("/$export-status/{job}", get(export::status).delete(export::cancel))
        .route("/$export-file/{job}/{n}", get(export::file))
        .route(
            "/{type}",
            get(search::type_get)
                .post(crud::create)
                .put(crud::conditional_update)
                .delete(crud::conditional_delete)
                .patch(crud::conditional_patch),
        )
        .route("/{type}/_history", get(history::type_level))
        .route("/{type}/_search", post(search::type_post))
        .route("/{type}/$validate", post(validate::type_level))
        .route(
            "/{type}/{id}",
            get(crud::read)
                .put(crud::update)
                .delete(crud::delete)
                .patch(crud::patch),
        )
        .route("/{type}/{id}/_history", get(history::instance))
        .route(
            "/{type}/{id}/{compartment}",
            // Compartment search and `$release`, or `Patient/{id}/$everything`.
            get(everything::instance_get).post(everything::instance_post),
        )
        .route("/{type}/{id}/_history/{vid}", get(crud::vread))
        // Inside the token check: the verified caller, for the AuditEvent.
        .route_layer(axum::middleware::from_fn(crate::audit::identify))
        // Per OAuth client, once the token says which client this is.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::by_client,
        ))
        // Every route above needs a valid token whose scopes allow the interaction.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::middleware::require_token,
        ))
        // Around the token check: every interaction leaves an AuditEvent, refusals too.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::audit::layer))
        // Public: the CapabilityStatement, SMART discovery and the conformance resources.
        .route("/metadata", get(metadata::capability_statement))
        .merge(conformance::routes())
        .route(
            "/.well-known/smart-configuration",
            get(crate::auth::endpoints::discovery::smart_configuration),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(negotiate::negotiate));

    Router::new()
        .nest("/fhir", fhir)
        .nest("/auth", crate::auth::endpoints::routes())
        // Operators' endpoints: no token, no patient data (http/ops.rs).
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // Per remote address, before anything else is done for the request.
        .layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit::by_ip))
        // Counts every answer, refusals and 404s included.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        // A request that started is finished even if its client leaves (complete.rs).
        .layer(axum::middleware::from_fn(complete::run_to_completion))
        // Bodies are read by our own extractors against the configured limit (413).
        .layer(DefaultBodyLimit::disable())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // The path only: query strings can carry identifiers of patients.
            let span = tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
            // Continues the caller's trace (W3C traceparent) when traces are exported.
            let _ = span.set_parent(crate::telemetry::parent_context(req.headers()));
            span
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> Error {
    Error::NotFound("No such endpoint".to_string())
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed("This interaction is not supported on this URL".to_string())
}
