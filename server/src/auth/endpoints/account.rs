//! Account pages (filled in below).
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub async fn activate_page() -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}
pub async fn activate() -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}
pub async fn reset_page() -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}
pub async fn reset() -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}
pub async fn deactivate_page() -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}
pub async fn deactivate() -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}
