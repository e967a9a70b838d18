//! Bulk Data `$export` over HTTP (docs/bulk.md): kick-off at system, `Patient` and
//! `Group/{id}` level, the status URL (`[base]/$export-status/{job}`: 202 with
//! `X-Progress`, the manifest, or the failure; `DELETE` cancels) and the output files
//! (`[base]/$export-file/{job}/{n}`, NDJSON). The token check at the edge leaves these
//! URLs to the handlers, which admit backend tokens only and, for a job, only the
//! client that started it (others get 404, as if it did not exist).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::error::{Error, Result};
use crate::fhir::form::parse_form;
use crate::fhir::outcome::{Issue, outcome};
use crate::http::respond;
use crate::policy::Access;
use crate::service::export::{self, Level, Status};
use crate::state::AppState;

/// Seconds a client is asked to wait between polls.
const RETRY_AFTER: &str = "2";

pub async fn system(
    State(state): State<AppState>,
    access: Access,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    kick_off(&state, &access, &headers, query, Level::System, None, "$export").await
}

/// `[base]/{type}/$export`: only `Patient`.
pub async fn type_level(
    State(state): State<AppState>,
    Path(res_type): Path<String>,
    access: Access,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    if res_type != "Patient" {
        return Err(Error::NotFound(format!("$export is not defined on {res_type}")));
    }
    kick_off(
        &state,
        &access,
        &headers,
        query,
        Level::Patient,
        None,
        "Patient/$export",
    )
    .await
}

/// `[base]/{type}/{id}/$export`: only `Group`.
pub async fn instance_level(
    State(state): State<AppState>,
    Path((res_type, id)): Path<(String, String)>,
    access: Access,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    if res_type != "Group" {
        return Err(Error::NotFound(format!(
            "$export is not defined on {res_type} instances"
        )));
    }
    let path = format!("Group/{id}/$export");
    kick_off(&state, &access, &headers, query, Level::Group, Some(&id), &path).await
}

async fn kick_off(
    state: &AppState,
    access: &Access,
    headers: &HeaderMap,
    query: Option<String>,
    level: Level,
    group: Option<&str>,
    path: &str,
) -> Result<Response> {
    let header_has = |name: header::HeaderName, want: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .unwrap_or("")
                .split([',', ';'])
                .any(|p| p.trim().eq_ignore_ascii_case(want))
        })
    };
    // Checked before the parameters so that a patient's token is a 403 whatever it sent.
    if !access
        .principal()
        .is_some_and(|p| matches!(p.actor, crate::auth::principal::Actor::System))
    {
        return Err(Error::Forbidden(
            "$export is for backend services (a client_credentials token with system/ scopes)".to_string(),
        ));
    }
    if !header_has(header::ACCEPT, "application/fhir+json") {
        return Err(Error::Invalid(vec![
            Issue::error("required", "$export needs 'Accept: application/fhir+json'").at("Accept"),
        ]));
    }
    if !header_has(header::HeaderName::from_static("prefer"), "respond-async") {
        return Err(Error::Invalid(vec![
            Issue::error("required", "$export is asynchronous: send 'Prefer: respond-async'").at("Prefer"),
        ]));
    }
    let query = query.unwrap_or_default();
    let pairs = parse_form(query.as_bytes())?;
    access.note_query(&format!("{path}?{query}"));
    let mut request = format!("{}/{path}", state.base_url());
    if !query.is_empty() {
        request = format!("{request}?{query}");
    }
    let id = export::kick_off(state, access, level, group, &pairs, request).await?;
    let mut resp = respond::value(
        StatusCode::ACCEPTED,
        &outcome(&[Issue::information("informational", format!("Export job {id} queued"))]),
    );
    let location = format!("{}/$export-status/{id}", state.base_url());
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    Ok(resp)
}

pub async fn status(State(state): State<AppState>, Path(id): Path<String>, access: Access) -> Result<Response> {
    Ok(match export::status(&state, &access, &id).await? {
        Status::Running {
            exported,
            types_done,
            types,
        } => {
            let mut resp = Response::new(axum::body::Body::empty());
            *resp.status_mut() = StatusCode::ACCEPTED;
            let progress = format!("exported {exported} resources, {types_done} of {types} types");
            if let Ok(v) = HeaderValue::from_str(&progress) {
                resp.headers_mut().insert("x-progress", v);
            }
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
            resp
        }
        Status::Done(manifest) => {
            let mut resp = respond::value(StatusCode::OK, &manifest);
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Status::Failed(message) => respond::value(
            StatusCode::INTERNAL_SERVER_ERROR,
            &outcome(&[Issue::error("exception", message)]),
        ),
    })
}

pub async fn cancel(State(state): State<AppState>, Path(id): Path<String>, access: Access) -> Result<Response> {
    export::cancel(&state, &access, &id).await?;
    Ok(respond::value(
        StatusCode::ACCEPTED,
        &outcome(&[Issue::information(
            "informational",
            format!("Export job {id} cancelled and its files deleted"),
        )]),
    ))
}

pub async fn file(
    State(state): State<AppState>,
    Path((id, n)): Path<(String, String)>,
    access: Access,
) -> Result<Response> {
    let n: i64 = n
        .parse()
        .map_err(|_| Error::NotFound(format!("No export file {id}/{n}")))?;
    let body = export::file(&state, &access, &id, n).await?;
    let mut resp = Response::new(axum::body::Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+ndjson"),
    );
    Ok(resp)
}
