//! Request parts the handlers need, read once and checked: the body as a FHIR
//! resource, the query string, and the conditional / Prefer headers.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde_json::Value;

use crate::error::Error;
use crate::fhir::form::parse_form;
use crate::fhir::format::{Format, request_format};
use crate::fhir::meta::parse_etag;
use crate::state::AppState;

/// A FHIR resource body, JSON or XML by `Content-Type`, within the configured size.
pub struct FhirBody(pub Value);

/// A JSON Patch body (`application/json-patch+json`).
pub enum PatchBody {
    JsonPatch(Value),
}

async fn read_limited(body: Body, limit: usize, headers: &HeaderMap) -> Result<bytes::Bytes, Error> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(Error::PayloadTooLarge(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.into_inner().is::<http_body_util::LengthLimitError>() {
            Error::PayloadTooLarge(limit)
        } else {
            Error::invalid("structure", "The request body could not be read")
        }
    })
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

pub fn parse_resource(bytes: &[u8], format: Format) -> Result<Value, Error> {
    if bytes.is_empty() {
        return Err(Error::invalid("required", "The request has no body"));
    }
    match format {
        Format::Json => serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid("structure", format!("The body is not valid JSON: {e}"))),
        Format::Xml => carnet_fhir::from_xml(bytes).map_err(Error::Invalid),
    }
}

impl FromRequest<AppState> for FhirBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let format = request_format(content_type(&parts.headers))
            .map_err(|ct| Error::UnsupportedMediaType(format!("Content-Type '{ct}' is not a FHIR format")))?;
        let bytes = read_limited(body, state.config().body_limit, &parts.headers).await?;
        Ok(FhirBody(parse_resource(&bytes, format)?))
    }
}

/// A FHIR resource body that may be absent (an operation called without one).
pub struct OptionalFhirBody(pub Option<Value>);

impl FromRequest<AppState> for OptionalFhirBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = read_limited(body, state.config().body_limit, &parts.headers).await?;
        if bytes.is_empty() {
            return Ok(OptionalFhirBody(None));
        }
        let format = request_format(content_type(&parts.headers))
            .map_err(|ct| Error::UnsupportedMediaType(format!("Content-Type '{ct}' is not a FHIR format")))?;
        Ok(OptionalFhirBody(Some(parse_resource(&bytes, format)?)))
    }
}

impl FromRequest<AppState> for PatchBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let ct = content_type(&parts.headers).unwrap_or("").to_ascii_lowercase();
        if !ct.starts_with("application/json-patch+json") {
            return Err(Error::UnsupportedMediaType(format!(
                "PATCH needs Content-Type application/json-patch+json, not '{ct}'"
            )));
        }
        let bytes = read_limited(body, state.config().body_limit, &parts.headers).await?;
        let v = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid("structure", format!("The patch is not valid JSON: {e}")))?;
        Ok(PatchBody::JsonPatch(v))
    }
}

/// The decoded query string as ordered pairs (repeated names kept: they mean AND).
pub struct Query(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Query(parse_form(parts.uri.query().unwrap_or("").as_bytes())?))
    }
}

impl Query {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// `Prefer: return=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

/// The headers that change what a write or read does.
#[derive(Debug, Default)]
pub struct Conditions {
    pub if_match: Option<i64>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<i64>,
    pub if_none_exist: Option<String>,
    pub prefer_return: Return,
    pub lenient: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Conditions {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let h = &parts.headers;
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        let if_match = match get("if-match") {
            None => None,
            Some(v) => Some(parse_etag(v).ok_or_else(|| {
                Error::invalid("value", format!("If-Match '{v}' is not a version ETag such as W/\"3\""))
            })?),
        };
        let mut c = Conditions {
            if_match,
            if_none_match: get("if-none-match").map(str::to_string),
            if_modified_since: get("if-modified-since").and_then(crate::fhir::instant::parse_http_date),
            if_none_exist: get("if-none-exist").map(str::to_string),
            ..Conditions::default()
        };
        for prefer in h.get_all("prefer").iter().filter_map(|v| v.to_str().ok()) {
            for part in prefer.split([',', ';']).map(str::trim) {
                match part {
                    "return=minimal" => c.prefer_return = Return::Minimal,
                    "return=representation" => c.prefer_return = Return::Representation,
                    "return=OperationOutcome" => c.prefer_return = Return::OperationOutcome,
                    "handling=lenient" => c.lenient = true,
                    "handling=strict" => c.lenient = false,
                    _ => {}
                }
            }
        }
        Ok(c)
    }
}
