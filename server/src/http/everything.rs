//! `Patient/{id}/$everything` (GET, and POST with a Parameters or form body). It shares
//! the `/{type}/{id}/{segment}` routes with compartment search (GET), `$release` (POST)
//! and `$validate`, so the two handlers here pick by the last segment.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::fhir::form::{MAX_PARAMETERS, parse_form};
use crate::fhir::format::request_format;
use crate::http::extract::{Conditions, OptionalFhirBody, Query, parse_resource};
use crate::http::{crud, respond, search, validate};
use crate::policy::Access;
use crate::search::everything::{EverythingParams, everything};
use crate::service::ids;
use crate::state::AppState;

const OPERATION: &str = "$everything";

/// `GET [type]/[id]/$everything`, else compartment search.
pub async fn instance_get(
    state: State<AppState>,
    access: Access,
    Path((owner, id, segment)): Path<(String, String, String)>,
    cond: Conditions,
    q: Query,
) -> Result<Response> {
    if segment == validate::OPERATION {
        return validate::instance_level(&state, &access, &owner, &id, &q, None).await;
    }
    if segment != OPERATION {
        return search::compartment(state, access, Path((owner, id, segment)), cond, q).await;
    }
    run(&state, &access, &owner, &id, &q.0, cond.lenient).await
}

/// `POST [type]/[id]/$everything`, else the other instance operations (`$release`).
pub async fn instance_post(
    state: State<AppState>,
    access: Access,
    Path((owner, id, segment)): Path<(String, String, String)>,
    cond: Conditions,
    q: Query,
    req: Request,
) -> Result<Response> {
    if segment == validate::OPERATION {
        let OptionalFhirBody(body) = OptionalFhirBody::from_request(req, &state).await?;
        return validate::instance_level(&state, &access, &owner, &id, &q, body).await;
    }
    if segment != OPERATION {
        return crud::release(state, access, Path((owner, id, segment))).await;
    }
    let mut pairs = q.0;
    pairs.extend(body_parameters(&state, req).await?);
    run(&state, &access, &owner, &id, &pairs, cond.lenient).await
}

async fn run(
    state: &AppState,
    access: &Access,
    owner: &str,
    id: &str,
    pairs: &[(String, String)],
    lenient: bool,
) -> Result<Response> {
    ids::check_type(owner)?;
    if owner != "Patient" {
        return Err(Error::NotFound(format!("{owner} has no operation {OPERATION}")));
    }
    ids::check_id(id)?;
    let params = EverythingParams::from_pairs(pairs, lenient)?;
    let body = everything(state, access, id, &params).await?;
    Ok(respond::json(StatusCode::OK, body))
}

/// The parameters of a POSTed body: none, a form, or a FHIR `Parameters` resource whose
/// `value[x]` are taken as their text (what the query string would carry).
async fn body_parameters(state: &AppState, req: Request) -> Result<Vec<(String, String)>> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let limit = state.config().body_limit;
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| Error::PayloadTooLarge(limit))?;
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let ct_lower = ct.as_deref().unwrap_or("").to_ascii_lowercase();
    if ct_lower.starts_with("application/x-www-form-urlencoded") {
        return parse_form(&bytes);
    }
    let format = request_format(ct.as_deref())
        .map_err(|ct| Error::UnsupportedMediaType(format!("Content-Type '{ct}' is not a FHIR format")))?;
    let v = parse_resource(&bytes, format)?;
    if v["resourceType"] != "Parameters" {
        return Err(Error::invalid(
            "structure",
            format!("{OPERATION} takes a Parameters resource"),
        ));
    }
    let mut out = Vec::new();
    for p in v["parameter"].as_array().into_iter().flatten() {
        let Some(name) = p["name"].as_str() else {
            return Err(Error::invalid("required", "A parameter has no name"));
        };
        let value = p
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.starts_with("value")))
            .map(|(_, v)| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(Error::invalid_at(
                    "value",
                    name.to_string(),
                    format!("Parameter '{}' must have a primitive value", ids::truncate(name, 64)),
                )),
            })
            .transpose()?
            .unwrap_or_default();
        out.push((name.to_string(), value));
        if out.len() > MAX_PARAMETERS {
            return Err(Error::invalid(
                "too-costly",
                format!("More than {MAX_PARAMETERS} parameters"),
            ));
        }
    }
    Ok(out)
}
