//! Search endpoints: type level (`GET [type]`, `POST [type]/_search`), system level
//! (`GET [base]`) and Patient compartment (`GET Patient/[id]/[type]`).

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;

use crate::error::{Error, Result};
use crate::http::extract::{Conditions, Query};
use crate::http::respond;
use crate::policy::Access;
use crate::search::{self, SearchRequest};
use crate::service::ids;
use crate::state::AppState;

async fn run(state: &AppState, access: &Access, req: SearchRequest) -> Result<Response> {
    let body = search::search_as(state, access, req).await?;
    Ok(respond::json(StatusCode::OK, body))
}

pub async fn type_get(
    State(state): State<AppState>,
    access: Access,
    Path(res_type): Path<String>,
    cond: Conditions,
    q: Query,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    let path = res_type.clone();
    run(
        &state,
        &access,
        SearchRequest {
            res_type: Some(res_type),
            pairs: q.0,
            lenient: cond.lenient,
            compartment: None,
            path,
        },
    )
    .await
}

/// `POST [type]/_search`: form body parameters, after those of the URL.
pub async fn type_post(
    State(state): State<AppState>,
    access: Access,
    Path(res_type): Path<String>,
    cond: Conditions,
    q: Query,
    req: Request,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(Error::UnsupportedMediaType(format!(
            "_search takes application/x-www-form-urlencoded, not '{ct}'"
        )));
    }
    let limit = state.config().body_limit;
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| Error::PayloadTooLarge(limit))?;
    let mut pairs = q.0;
    pairs.extend(crate::fhir::form::parse_form(&bytes)?);
    if pairs.len() > crate::fhir::form::MAX_PARAMETERS {
        return Err(Error::invalid(
            "too-costly",
            format!("More than {} parameters", crate::fhir::form::MAX_PARAMETERS),
        ));
    }
    let path = res_type.clone();
    run(
        &state,
        &access,
        SearchRequest {
            res_type: Some(res_type),
            pairs,
            lenient: cond.lenient,
            compartment: None,
            path,
        },
    )
    .await
}

pub async fn system(State(state): State<AppState>, access: Access, cond: Conditions, q: Query) -> Result<Response> {
    run(
        &state,
        &access,
        SearchRequest {
            res_type: None,
            pairs: q.0,
            lenient: cond.lenient,
            compartment: None,
            path: String::new(),
        },
    )
    .await
}

/// `GET Patient/[id]/[type]`: resources of `type` in that patient's compartment.
pub async fn compartment(
    State(state): State<AppState>,
    access: Access,
    Path((owner, id, res_type)): Path<(String, String, String)>,
    cond: Conditions,
    q: Query,
) -> Result<Response> {
    if owner != "Patient" {
        return Err(Error::NotFound(format!(
            "No compartment search on {owner}: only Patient compartments"
        )));
    }
    ids::check_id(&id)?;
    ids::check_type(&res_type)?;
    if search::compartment_params(&res_type).is_none() {
        return Err(Error::NotFound(format!("{res_type} is not in the Patient compartment")));
    }
    let path = format!("Patient/{id}/{res_type}");
    run(
        &state,
        &access,
        SearchRequest {
            res_type: Some(res_type),
            pairs: q.0,
            lenient: cond.lenient,
            compartment: Some(id),
            path,
        },
    )
    .await
}
