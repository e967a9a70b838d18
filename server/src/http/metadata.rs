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
    let catalog = crate::conformance::catalog::get().ok();
    let resources: Vec<Value> = carnet_fhir::RESOURCE_TYPES
        .iter()
        .map(|t| resource_entry(t, catalog))
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_micros(state.now()),
        "publisher": "Carnet",
        "kind": "instance",
        "software": { "name": "Carnet", "version": SOFTWARE_VERSION },
        "implementation": { "description": "Carnet FHIR R4 server", "url": state.base_url() },
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml", "json", "xml"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "security": security(state),
            "resource": resources,
            "interaction": [
                {"code": "transaction"}, {"code": "batch"}, {"code": "history-system"},
                {"code": "search-system"}
            ],
            "searchParam": search_params("Resource", true),
            "operation": [{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}]
        }]
    })
}

/// One `rest.resource`: what the server does with this type. AuditEvents are never
/// changed through the API (policy R5), so they advertise no update, patch or delete.
fn resource_entry(t: &str, catalog: Option<&crate::conformance::catalog::Catalog>) -> Value {
    if catalog.is_some() && crate::conformance::catalog::is_catalog_type(t) {
        return catalog_entry(t);
    }
    let codes: &[&str] = if t == "AuditEvent" {
        &[
            "read",
            "vread",
            "history-instance",
            "history-type",
            "create",
            "search-type",
        ]
    } else {
        &[
            "read",
            "vread",
            "update",
            "patch",
            "delete",
            "history-instance",
            "history-type",
            "create",
            "search-type",
        ]
    };
    let mut entry = json!({
        "type": t,
        "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
        "interaction": codes.iter().map(|c| json!({"code": c})).collect::<Vec<_>>(),
        "versioning": "versioned-update",
        "readHistory": true,
        "updateCreate": true,
        "conditionalCreate": true,
        "conditionalRead": "not-supported",
        "conditionalUpdate": true,
        "conditionalDelete": "single",
    });
    // The profiles the server holds and enforces for this type (docs/validation.md).
    let profiles = catalog.map(|c| c.profiles_of(t)).unwrap_or_default();
    if let (false, Some(obj)) = (profiles.is_empty(), entry.as_object_mut()) {
        obj.insert("supportedProfile".into(), json!(profiles));
    }
    // Operations on the type: $validate on all, $everything on Patient, Bulk Data
    // $export at Patient and Group level (docs/bulk.md).
    let mut ops =
        vec![json!({"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"})];
    if t == "Patient" {
        ops.push(
            json!({"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}),
        );
    }
    let export = match t {
        "Patient" => Some("patient-export"),
        "Group" => Some("group-export"),
        _ => None,
    };
    if let Some(name) = export {
        ops.push(json!({"name": "export", "definition": format!("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{name}")}));
    }
    if let (false, Some(obj)) = (ops.is_empty(), entry.as_object_mut()) {
        obj.insert("operation".into(), Value::Array(ops));
    }
    // FHIR arrays are never empty: a type without search parameters has none listed.
    let params = search_params(t, false);
    if let (false, Some(obj)) = (params.is_empty(), entry.as_object_mut()) {
        obj.insert("searchParam".into(), Value::Array(params));
    }
    entry
}

/// The conformance resources: built in, so read and search only, plus the terminology
/// operations on ValueSet and CodeSystem.
fn catalog_entry(t: &str) -> Value {
    let mut entry = json!({
        "type": t,
        "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": [
            {"name": "_id", "type": "token"}, {"name": "url", "type": "uri"},
            {"name": "version", "type": "token"}, {"name": "status", "type": "token"},
            {"name": "name", "type": "string"}, {"name": "title", "type": "string"}
        ],
    });
    let ops = match t {
        "ValueSet" => json!([
            {"name": "expand", "definition": "http://hl7.org/fhir/OperationDefinition/ValueSet-expand"},
            {"name": "validate-code", "definition": "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code"}
        ]),
        "CodeSystem" => json!([
            {"name": "validate-code", "definition": "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code"}
        ]),
        _ => Value::Null,
    };
    if let (false, Some(obj)) = (ops.is_null(), entry.as_object_mut()) {
        obj.insert("operation".into(), ops);
    }
    entry
}

/// The supported search parameters of `res_type`, from the registry searches use.
/// Those of every resource (`_id`, `_lastUpdated`, `_tag`, …) are listed once, at
/// `rest.searchParam` (`common`), not again under each type.
fn search_params(res_type: &str, common: bool) -> Vec<Value> {
    let registry = carnet_search::Registry::r4();
    registry
        .params_for(res_type)
        .filter(|p| p.supported)
        .filter(|p| common || registry.param("Resource", &p.code).is_none())
        .map(|p| json!({"name": p.code, "definition": p.url, "type": p.param_type.as_str()}))
        .collect()
}

/// `rest.security`: SMART on FHIR, with the OAuth endpoints in the SMART extension.
fn security(state: &AppState) -> Value {
    let auth = state.config().auth_url();
    json!({
        "cors": false,
        "service": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR",
                "display": "SMART-on-FHIR"
            }],
            "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)"
        }],
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [
                {"url": "token", "valueUri": format!("{auth}/token")},
                {"url": "authorize", "valueUri": format!("{auth}/authorize")},
                {"url": "introspect", "valueUri": format!("{auth}/introspect")},
                {"url": "revoke", "valueUri": format!("{auth}/revoke")},
                {"url": "manage", "valueUri": format!("{auth}/deactivate")}
            ]
        }]
    })
}
