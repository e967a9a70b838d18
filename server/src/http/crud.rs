//! Instance and type interactions: create, read, vread, update, patch, delete, and
//! their conditional forms. Thin: checks the request, calls the service, answers. Each
//! write transaction runs on the store's writer (`AppState::on_writer`), whole.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::error::{Error, Result};
use crate::fhir::summary::Shape;
use crate::http::extract::{Conditions, FhirBody, PatchBody, Query};
use crate::http::respond;
use crate::policy::patient_writes::{self, Write};
use crate::policy::{Access, release, visibility, write_scope};
use crate::service::conditional;
use crate::service::{ids, write};
use crate::state::AppState;
use crate::store::Tx;

fn shape(q: &Query) -> Result<Shape> {
    Shape::from_params(q.get("_summary"), q.get("_elements"))
        .map_err(|v| Error::invalid_at("value", "_summary", format!("Unsupported {v}")))
}

pub async fn create(
    State(state): State<AppState>,
    access: Access,
    Path(res_type): Path<String>,
    cond: Conditions,
    FhirBody(body): FhirBody,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    // A plain create is checked and indexed before its transaction (`write::Draft`);
    // its errors are reported where they were found before, after the R7 check.
    let draft = match cond.if_none_exist {
        Some(_) => None,
        None => {
            let id = ids::new_id();
            let draft = write::Draft::checked(&state, &res_type, &id, body.clone(), None);
            Some((id, draft))
        }
    };
    let (if_none_exist, prefer_return) = (cond.if_none_exist, cond.prefer_return);
    let work = move |state: AppState| async move {
        // Criteria are a search, planned for their values; the rest are lookups by key.
        let mut tx = if if_none_exist.is_some() {
            state.store().begin_write().await?
        } else {
            state.store().begin_keyed_write().await?
        };
        patient_writes::check(&access, &mut tx, Write::Create, &res_type, None, Some(&body)).await?;
        if let Some(criteria) = &if_none_exist
            && let Some(id) =
                conditional::at_most_one(&state, &access.match_scope(), &mut tx, &res_type, criteria).await?
        {
            // The resource exists already: nothing is created, the match is returned.
            let v = visibility::read(&access, &mut tx, &res_type, &id).await?;
            let content = v.content.unwrap_or_default();
            return Ok(respond::resource(StatusCode::OK, v.version, v.last_updated, content));
        }
        let w = match draft {
            Some((id, draft)) => write::create_drafted(&state, &mut tx, &res_type, &id, draft?).await?,
            None => write::create(&state, &mut tx, &res_type, body).await?,
        };
        access.note(&w.res_type, &w.id);
        write_scope::check_written(&access, &mut tx, &w).await?;
        tx.commit().await?;
        Ok(respond::written(state.base_url(), w, prefer_return))
    };
    state.on_writer(work).await
}

pub async fn read(
    State(state): State<AppState>,
    access: Access,
    Path((res_type, id)): Path<(String, String)>,
    cond: Conditions,
    q: Query,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    let shape = shape(&q)?;
    let mut conn = state.store().lookup().await?;
    let v = visibility::read(&access, &mut conn, &res_type, &id).await?;
    drop(conn);
    if let Some(inm) = &cond.if_none_match
        && (inm.trim() == "*" || crate::fhir::meta::parse_etag(inm) == Some(v.version))
    {
        return Ok(respond::not_modified(v.version, v.last_updated));
    }
    if let Some(since) = cond.if_modified_since {
        // HTTP dates have whole seconds: compare at that precision.
        if v.last_updated / 1_000_000 <= since / 1_000_000 {
            return Ok(respond::not_modified(v.version, v.last_updated));
        }
    }
    let body = respond::shape_bytes(v.content.unwrap_or_default(), &shape)?;
    Ok(respond::resource(StatusCode::OK, v.version, v.last_updated, body))
}

pub async fn vread(
    State(state): State<AppState>,
    access: Access,
    Path((res_type, id, vid)): Path<(String, String, String)>,
    q: Query,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    let shape = shape(&q)?;
    let mut conn = state.store().lookup().await?;
    let v = visibility::vread(&access, &mut conn, &res_type, &id, &vid).await?;
    let body = respond::shape_bytes(v.content.unwrap_or_default(), &shape)?;
    Ok(respond::resource(StatusCode::OK, v.version, v.last_updated, body))
}

pub async fn update(
    State(state): State<AppState>,
    access: Access,
    Path((res_type, id)): Path<(String, String)>,
    cond: Conditions,
    FhirBody(body): FhirBody,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    // Checked and indexed before the transaction, as a plain create is.
    let draft = write::Draft::checked(&state, &res_type, &id, body.clone(), Some(&id));
    let if_match = cond.if_match;
    let work = move |state: AppState| async move {
        let mut tx = state.store().begin_keyed_write().await?;
        patient_writes::check(&access, &mut tx, Write::Update, &res_type, Some(&id), Some(&body)).await?;
        let w = write::update_drafted(&state, &mut tx, &res_type, &id, draft, if_match).await?;
        write_scope::check_written(&access, &mut tx, &w).await?;
        tx.commit().await?;
        Ok(w)
    };
    let w = state.on_writer(work).await?;
    Ok(respond::written(state.base_url(), w, cond.prefer_return))
}

/// `PUT [type]?criteria`.
pub async fn conditional_update(
    State(state): State<AppState>,
    access: Access,
    Path(res_type): Path<String>,
    cond: Conditions,
    q: Query,
    FhirBody(body): FhirBody,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    let criteria = criteria(&q);
    let if_match = cond.if_match;
    let work = move |state: AppState| async move {
        let mut tx = state.store().begin_write().await?;
        let target =
            conditional::update_target(&state, &access.match_scope(), &mut tx, &res_type, &criteria, &body).await?;
        let kind = if matches!(target, conditional::UpdateTarget::Match(_)) {
            Write::Update
        } else {
            Write::Create
        };
        patient_writes::check(&access, &mut tx, kind, &res_type, Some(target.id()), Some(&body)).await?;
        let w = conditional::apply_update(&state, &mut tx, &res_type, &target, body, if_match).await?;
        write_scope::check_written(&access, &mut tx, &w).await?;
        tx.commit().await?;
        Ok(w)
    };
    let w = state.on_writer(work).await?;
    Ok(respond::written(state.base_url(), w, cond.prefer_return))
}

fn criteria(q: &Query) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &q.0 {
        if !matches!(k.as_str(), "_format" | "_pretty") {
            ser.append_pair(k, v);
        }
    }
    ser.finish()
}

pub async fn patch(
    State(state): State<AppState>,
    access: Access,
    Path((res_type, id)): Path<(String, String)>,
    cond: Conditions,
    PatchBody::JsonPatch(doc): PatchBody,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    let if_match = cond.if_match;
    let work = move |state: AppState| async move {
        let tx = state.store().begin_write().await?;
        patch_and_commit(&state, &access, tx, &res_type, &id, doc, if_match).await
    };
    let w = state.on_writer(work).await?;
    Ok(respond::written(state.base_url(), w, cond.prefer_return))
}

/// What the two forms of patch share once the target is known.
async fn patch_and_commit(
    state: &AppState,
    access: &Access,
    mut tx: Tx,
    res_type: &str,
    id: &str,
    doc: serde_json::Value,
    if_match: Option<i64>,
) -> Result<write::Written> {
    patient_writes::check(access, &mut tx, Write::Patch, res_type, Some(id), None).await?;
    let w = write::patch(state, &mut tx, res_type, id, doc, if_match).await?;
    write_scope::check_written(access, &mut tx, &w).await?;
    tx.commit().await?;
    Ok(w)
}

pub async fn conditional_patch(
    State(state): State<AppState>,
    access: Access,
    Path(res_type): Path<String>,
    cond: Conditions,
    q: Query,
    PatchBody::JsonPatch(doc): PatchBody,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    let criteria = criteria(&q);
    let if_match = cond.if_match;
    let work = move |state: AppState| async move {
        let mut tx = state.store().begin_write().await?;
        let id = conditional::exactly_one(&state, &access.match_scope(), &mut tx, &res_type, &criteria).await?;
        patch_and_commit(&state, &access, tx, &res_type, &id, doc, if_match).await
    };
    let w = state.on_writer(work).await?;
    Ok(respond::written(state.base_url(), w, cond.prefer_return))
}

pub async fn delete(
    State(state): State<AppState>,
    access: Access,
    Path((res_type, id)): Path<(String, String)>,
    cond: Conditions,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    let if_match = cond.if_match;
    let work = move |state: AppState| async move {
        let mut tx = state.store().begin_keyed_write().await?;
        patient_writes::check(&access, &mut tx, Write::Delete, &res_type, Some(&id), None).await?;
        let d = write::delete(&state, &mut tx, &res_type, &id, if_match).await?;
        tx.commit().await?;
        let msg = match d.version {
            Some(_) => format!("{res_type}/{id} deleted"),
            None => format!("{res_type}/{id} was already deleted"),
        };
        Ok((d.version, msg))
    };
    let (version, msg) = state.on_writer(work).await?;
    Ok(respond::deleted(version, cond.prefer_return, msg))
}

/// `DELETE [type]?criteria`: deletes the one match; several matches are refused (412).
pub async fn conditional_delete(
    State(state): State<AppState>,
    access: Access,
    Path(res_type): Path<String>,
    cond: Conditions,
    q: Query,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    let criteria = criteria(&q);
    let if_match = cond.if_match;
    let work = move |state: AppState| async move {
        let mut tx = state.store().begin_write().await?;
        if res_type == "AuditEvent" {
            patient_writes::check(&access, &mut tx, Write::Delete, &res_type, None, None).await?;
        }
        let Some(id) = conditional::at_most_one(&state, &access.match_scope(), &mut tx, &res_type, &criteria).await?
        else {
            return Ok((None, format!("No {res_type} matches '{criteria}'")));
        };
        patient_writes::check(&access, &mut tx, Write::Delete, &res_type, Some(&id), None).await?;
        let d = write::delete(&state, &mut tx, &res_type, &id, if_match).await?;
        tx.commit().await?;
        Ok((d.version, format!("{res_type}/{id} deleted")))
    };
    let (version, msg) = state.on_writer(work).await?;
    Ok(respond::deleted(version, cond.prefer_return, msg))
}

/// `POST [type]/[id]/$release` (Observation, DiagnosticReport): see `policy::release`.
pub async fn release(
    State(state): State<AppState>,
    access: Access,
    Path((res_type, id, op)): Path<(String, String, String)>,
) -> Result<Response> {
    ids::check_type(&res_type)?;
    if op != "$release" {
        return Err(Error::NotFound(format!(
            "Unknown operation '{}'",
            ids::truncate(&op, 40)
        )));
    }
    let work = move |state: AppState| async move {
        let mut tx = state.store().begin_write().await?;
        let released = release::release(&state, &access, &mut tx, &res_type, &id).await?;
        tx.commit().await?;
        Ok(released)
    };
    let (_, content, version, last_updated) = state.on_writer(work).await?;
    Ok(respond::resource(StatusCode::OK, version, last_updated, content))
}
