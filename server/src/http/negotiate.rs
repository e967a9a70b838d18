//! Output negotiation as one middleware: handlers always produce compact FHIR JSON;
//! this layer refuses what cannot be produced (406) and turns JSON into XML or
//! pretty JSON when the client asked for it. Stored bytes pass through untouched in
//! the common case (compact JSON).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::Error;
use crate::fhir::form::parse_form;
use crate::fhir::format::{Format, Output, response_format};

/// Largest response this layer will buffer to convert; bigger ones are sent as JSON.
const MAX_CONVERT: usize = 256 * 1024 * 1024;

pub async fn negotiate(mut req: Request, next: Next) -> Response {
    // Export files are NDJSON whatever the client accepts (Bulk Data clients send
    // `Accept: application/fhir+ndjson`, which no FHIR format answers).
    if req.uri().path().contains("/$export-file/") {
        return next.run(req).await;
    }
    // A query string that does not decode is refused by the handler's own extractor.
    let query = parse_form(req.uri().query().unwrap_or("").as_bytes()).unwrap_or_default();
    let get = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let output = match response_format(accept, get("_format"), get("_pretty")) {
        Ok(o) => o,
        Err(what) => {
            return Error::NotAcceptable(format!(
                "Cannot produce '{what}': this server speaks application/fhir+json and application/fhir+xml"
            ))
            .into_response();
        }
    };
    req.extensions_mut().insert(output);
    let resp = next.run(req).await;
    if output == Output::default() {
        return resp;
    }
    let is_fhir_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/fhir+json"));
    if !is_fhir_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_CONVERT).await else {
        return Error::invalid("too-costly", "The response is too large to convert").into_response();
    };
    let converted = match convert(&bytes, output) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(output.format.content_type()),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(converted))
}

fn convert(json: &[u8], output: Output) -> Result<Vec<u8>, Error> {
    if json.is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(json)
        .map_err(|e| crate::store::StoreError::Corrupt(format!("response is not JSON: {e}")))?;
    match output.format {
        Format::Json => {
            serde_json::to_vec_pretty(&value).map_err(|e| crate::store::StoreError::Corrupt(e.to_string()).into())
        }
        Format::Xml => carnet_fhir::to_xml(&value, output.pretty)
            .map(String::into_bytes)
            .map_err(Error::Unprocessable),
    }
}
