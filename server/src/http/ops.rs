//! Endpoints for operators, outside the FHIR base and without a token: liveness
//! (`/health`), readiness (`/ready`) and Prometheus metrics (`/metrics`). They reveal no
//! patient data; a deployment that does not want its metrics public keeps `/metrics`
//! behind its proxy.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use crate::fhir::outcome::{Issue, outcome};
use crate::http::respond;
use crate::state::AppState;

/// A database that does not answer `SELECT 1` within this is not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process runs and answers HTTP.
pub async fn health() -> Response {
    plain_json(StatusCode::OK, &json!({"status": "ok"}))
}

/// Readiness: 200 when the database answers a trivial query, else 503 with an
/// OperationOutcome (the driver's error is logged, not shown).
pub async fn ready(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, state.store().ping()).await {
        Ok(Ok(())) => plain_json(StatusCode::OK, &json!({"status": "ready"})),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database did not answer");
            not_ready("The database does not answer")
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer in time");
            not_ready("The database did not answer in time")
        }
    }
}

fn not_ready(text: &str) -> Response {
    let mut resp = respond::value(
        StatusCode::SERVICE_UNAVAILABLE,
        &outcome(&[Issue::error("transient", text)]),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp
}

fn plain_json(status: StatusCode, v: &serde_json::Value) -> Response {
    let mut resp = Response::new(Body::from(serde_json::to_vec(v).unwrap_or_default()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The Prometheus text exposition format (0.0.4).
pub async fn metrics(State(state): State<AppState>) -> Response {
    // A scrape must answer even when the database does not (/ready says that).
    let jobs = crate::service::export::job_counts(&state).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "/metrics: cannot count export jobs");
        Default::default()
    });
    let backlog = crate::audit::projection::backlog(&state).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "/metrics: cannot count the audit log");
        -1
    });
    let mut resp = Response::new(Body::from(crate::metrics::render(&state, jobs, backlog)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
