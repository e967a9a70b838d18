//! Building FHIR responses: headers every resource response carries, and what a write
//! returns according to `Prefer`.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::fhir::instant::http_date;
use crate::fhir::meta::etag;
use crate::fhir::outcome::{Issue, outcome};
use crate::fhir::summary::Shape;
use crate::http::extract::Return;
use crate::service::write::Written;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

pub fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    resp
}

pub fn value(status: StatusCode, v: &Value) -> Response {
    json(status, serde_json::to_vec(v).unwrap_or_default())
}

fn set(resp: &mut Response, name: header::HeaderName, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        resp.headers_mut().insert(name, v);
    }
}

/// Applies `_summary`/`_elements` to stored bytes; the bytes go out untouched when the
/// whole resource is wanted.
pub fn shape_bytes(content: Vec<u8>, shape: &Shape) -> Result<Vec<u8>> {
    if shape.is_full() {
        return Ok(content);
    }
    let v: Value = serde_json::from_slice(&content).map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
    serde_json::to_vec(&shape.apply(v)).map_err(|e| Error::from(crate::store::StoreError::Corrupt(e.to_string())))
}

/// A resource version with its ETag and Last-Modified.
pub fn resource(status: StatusCode, version: i64, last_updated: i64, body: Vec<u8>) -> Response {
    let mut resp = json(status, body);
    set(&mut resp, header::ETAG, &etag(version));
    set(&mut resp, header::LAST_MODIFIED, &http_date(last_updated));
    resp
}

pub fn not_modified(version: i64, last_updated: i64) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    set(&mut resp, header::ETAG, &etag(version));
    set(&mut resp, header::LAST_MODIFIED, &http_date(last_updated));
    resp
}

/// The answer to a create or update: 201 with `Location` for a new resource, 200
/// otherwise; the body follows `Prefer: return=`.
pub fn written(base: &str, w: Written, prefer: Return) -> Response {
    let status = if w.created { StatusCode::CREATED } else { StatusCode::OK };
    let location = format!("{base}/{}/{}/_history/{}", w.res_type, w.id, w.version);
    let mut resp = match prefer {
        Return::Representation => resource(status, w.version, w.last_updated, w.content),
        Return::Minimal => {
            let mut r = resource(status, w.version, w.last_updated, Vec::new());
            r.headers_mut().remove(header::CONTENT_TYPE);
            r
        }
        Return::OperationOutcome => {
            let what = if w.created { "created" } else { "updated" };
            let oo = outcome(&[Issue::information(
                "informational",
                format!("{}/{} {what} as version {}", w.res_type, w.id, w.version),
            )]);
            resource(
                status,
                w.version,
                w.last_updated,
                serde_json::to_vec(&oo).unwrap_or_default(),
            )
        }
    };
    let name = if w.created {
        header::LOCATION
    } else {
        header::CONTENT_LOCATION
    };
    set(&mut resp, name, &location);
    resp
}

pub fn deleted(version: Option<i64>, prefer: Return, message: String) -> Response {
    let mut resp = match prefer {
        Return::OperationOutcome | Return::Representation => value(
            StatusCode::OK,
            &outcome(&[Issue::information("informational", message)]),
        ),
        Return::Minimal => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
    };
    if let Some(v) = version {
        set(&mut resp, header::ETAG, &etag(v));
    }
    resp
}
