//! The authorize endpoint (filled in below).
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub async fn start() -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}
pub async fn step() -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}
