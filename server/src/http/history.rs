//! `_history` handlers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::error::Result;
use crate::http::extract::Query;
use crate::http::respond;
use crate::policy::Access;
use crate::service::history::{HistoryParams, history};
use crate::service::ids;
use crate::state::AppState;

pub async fn instance(
    State(state): State<AppState>,
    access: Access,
    Path((res_type, id)): Path<(String, String)>,
    q: Query,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    ids::check_id(&id)?;
    let params = HistoryParams::from_pairs(&q.0)?;
    let mut tx = state.store().begin_read().await?;
    let path = format!("{res_type}/{id}/_history");
    let body = history(&state, &access, &mut tx, Some(&res_type), Some(&id), &params, &path).await?;
    Ok(respond::json(StatusCode::OK, body))
}

pub async fn type_level(
    State(state): State<AppState>,
    access: Access,
    Path(res_type): Path<String>,
    q: Query,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    let params = HistoryParams::from_pairs(&q.0)?;
    let mut tx = state.store().begin_read().await?;
    let path = format!("{res_type}/_history");
    let body = history(&state, &access, &mut tx, Some(&res_type), None, &params, &path).await?;
    Ok(respond::json(StatusCode::OK, body))
}

pub async fn system(State(state): State<AppState>, access: Access, q: Query) -> Result<Response> {
    let params = HistoryParams::from_pairs(&q.0)?;
    let mut tx = state.store().begin_read().await?;
    let body = history(&state, &access, &mut tx, None, None, &params, "_history").await?;
    Ok(respond::json(StatusCode::OK, body))
}
