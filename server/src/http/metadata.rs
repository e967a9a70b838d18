//! `GET /metadata`: the CapabilityStatement, generated from what the server supports.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::fhir::instant::format_micros;
use crate::http::respond;
use crate::state::AppState;

pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn capability_statement(State(state): State<AppState>) -> Response {
    respond::value(StatusCode::OK, &build(&state))
}

fn build(state: &AppState) -> Value {
    let resources: Vec<Value> = carnet_fhir::RESOURCE_TYPES
        .iter()
        .map(|t| {
            json!({
                "type": t,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                "interaction": [
                    {"code": "read"}, {"code": "vread"}, {"code": "update"}, {"code": "patch"},
                    {"code": "delete"}, {"code": "history-instance"}, {"code": "history-type"},
                    {"code": "create"}
                ],
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": "single",
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_micros(state.now()),
        "publisher": "Carnet",
        "kind": "instance",
        "software": { "name": "Carnet", "version": SOFTWARE_VERSION },
        "implementation": { "description": "Carnet FHIR R4 server", "url": state.base_url() },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml", "json", "xml"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [
                {"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}
            ]
        }]
    })
}
