//! `$validate` (type and instance level): the checks a write would make, without
//! storing anything. The answer is 200 with an OperationOutcome listing every issue (or
//! one informational issue when there is none); only a request the operation cannot
//! read (not JSON, not a resource, an unknown mode or profile) is an error status.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use crate::conformance;
use crate::error::{Error, Result};
use crate::fhir::outcome::Issue;
use crate::http::extract::{OptionalFhirBody, Query};
use crate::http::respond;
use crate::policy::{Access, visibility};
use crate::service::{ids, validate};
use crate::state::AppState;

pub const OPERATION: &str = "$validate";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No mode: is the resource valid?
    Plain,
    Create,
    Update,
    Delete,
}

struct Request {
    resource: Option<Value>,
    mode: Mode,
    profile: Option<String>,
}

fn mode(s: &str) -> Result<Mode> {
    match s {
        "create" => Ok(Mode::Create),
        "update" => Ok(Mode::Update),
        "delete" => Ok(Mode::Delete),
        "" => Ok(Mode::Plain),
        other => Err(Error::invalid_at(
            "value",
            "mode",
            format!("Unknown mode '{}' (create, update or delete)", ids::truncate(other, 40)),
        )),
    }
}

/// The body is the resource itself, or a `Parameters` with `resource`, `mode` and
/// `profile`; query parameters `mode` and `profile` work too.
fn request(q: &Query, body: Option<Value>) -> Result<Request> {
    let mut r = Request {
        resource: None,
        mode: mode(q.get("mode").unwrap_or(""))?,
        profile: q.get("profile").map(str::to_string),
    };
    match body {
        Some(Value::Object(p)) if p.get("resourceType").and_then(Value::as_str) == Some("Parameters") => {
            for param in p.get("parameter").and_then(Value::as_array).into_iter().flatten() {
                match param["name"].as_str() {
                    Some("resource") => r.resource = param.get("resource").cloned(),
                    Some("mode") => r.mode = mode(param["valueCode"].as_str().unwrap_or(""))?,
                    Some("profile") => {
                        r.profile = param["valueUri"]
                            .as_str()
                            .or(param["valueCanonical"].as_str())
                            .map(str::to_string)
                    }
                    Some(other) => {
                        return Err(Error::invalid_at(
                            "not-supported",
                            "Parameters.parameter.name",
                            format!("$validate has no parameter '{}'", ids::truncate(other, 40)),
                        ));
                    }
                    None => return Err(Error::invalid("required", "A parameter has no name")),
                }
            }
        }
        other => r.resource = other,
    }
    if let Some(p) = &r.profile
        && conformance::catalog()?.by_url("StructureDefinition", p).is_none()
    {
        return Err(Error::invalid_at(
            "not-found",
            "profile",
            format!("This server holds no profile {}", ids::truncate(p, 200)),
        ));
    }
    Ok(r)
}

/// `POST [type]/$validate`.
pub async fn type_level(
    State(state): State<AppState>,
    Path(res_type): Path<String>,
    q: Query,
    OptionalFhirBody(body): OptionalFhirBody,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    let (state, res_type, q) = (&state, res_type.as_str(), &q);
    let r = request(q, body)?;
    if r.mode == Mode::Delete {
        return Err(Error::invalid_at(
            "value",
            "mode",
            "mode=delete needs a resource: use [type]/[id]/$validate",
        ));
    }
    let Some(resource) = r.resource else {
        return Err(Error::invalid("required", "$validate needs a resource to validate"));
    };
    Ok(answer(check(state, res_type, resource, None, r.profile.as_deref())?))
}

/// `POST|GET [type]/[id]/$validate`: `update` checks the body as that resource's next
/// version, `delete` whether the resource can be deleted; GET or a body-less POST
/// validates the stored resource. The stored resource is read through the policy, so
/// this says nothing about a resource the caller could not read.
pub async fn instance_level(
    state: &AppState,
    access: &Access,
    res_type: &str,
    id: &str,
    q: &Query,
    body: Option<Value>,
) -> Result<Response> {
    ids::check_type(res_type)?;
    ids::check_id(id)?;
    let r = request(q, body)?;
    let mut conn = state.store().reader().await?;
    let stored = visibility::read(access, &mut conn, res_type, id).await;
    drop(conn);
    match (r.mode, r.resource) {
        (Mode::Delete, _) => {
            stored?;
            Ok(answer(Vec::new()))
        }
        (Mode::Create, _) => Err(Error::invalid_at(
            "value",
            "mode",
            "mode=create is for [type]/$validate, not an existing resource",
        )),
        (_, Some(resource)) => {
            // An update may create the resource: only a refusal of the read matters.
            match stored {
                Ok(_) | Err(Error::NotFound(_)) | Err(Error::Gone(_)) => {}
                Err(e) => return Err(e),
            }
            Ok(answer(check(
                state,
                res_type,
                resource,
                Some(id),
                r.profile.as_deref(),
            )?))
        }
        (_, None) => {
            let v = stored?;
            let resource: Value = serde_json::from_slice(v.content.as_deref().unwrap_or_default())
                .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
            Ok(answer(check(state, res_type, resource, None, r.profile.as_deref())?))
        }
    }
}

/// Every issue a write of `resource` would meet: the structural ones first (a write
/// stops at those), then the base rules and profiles.
fn check(
    state: &AppState,
    res_type: &str,
    resource: Value,
    id: Option<&str>,
    profile: Option<&str>,
) -> Result<Vec<Issue>> {
    let checked = match validate::structure(res_type, resource, id) {
        Ok(value) => value,
        Err(Error::Invalid(issues)) => return Ok(issues),
        Err(e) => return Err(e),
    };
    let profiles = conformance::profiles_for(&state.config().profiles, &checked, profile)?;
    conformance::validate(&checked, &profiles)
}

fn answer(issues: Vec<Issue>) -> Response {
    respond::value(StatusCode::OK, &carnet_validate::operation_outcome(&issues))
}
