//! `GET /metadata`: the CapabilityStatement, generated from what the server supports.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::Error;
use crate::fhir::instant::format_micros;
use crate::http::respond;
use crate::state::AppState;

pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn capability_statement(State(state): State<AppState>) -> Response {
    let catalog = crate::conformance::catalog::get().ok();
    let resources: Vec<ResourceEntry<'_>> = carnet_fhir::RESOURCE_TYPES
        .iter()
        .map(|t| resource_entry(t, catalog))
        .collect();
    let statement = Statement {
        head: json!({
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
        }),
        rest: [Rest {
            mode: "server",
            security: security(&state),
            resource: resources,
            interaction: codes(&["transaction", "batch", "history-system", "search-system"]),
            search_param: search_params("Resource", true),
            operation: vec![operation(
                "export",
                "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
            )],
        }],
    };
    match serde_json::to_vec(&statement) {
        Ok(body) => respond::json(StatusCode::OK, body),
        Err(e) => Error::Internal(format!("CapabilityStatement: {e}")).into_response(),
    }
}

/// The statement is written straight from these structs, not built as a `Value`: its
/// ~2,600 `searchParam` entries made a tree of several megabytes, which the allocator
/// kept for the process after the first `/metadata`.
#[derive(Serialize)]
struct Statement<'a> {
    #[serde(flatten)]
    head: Value,
    rest: [Rest<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rest<'a> {
    mode: &'static str,
    security: Value,
    resource: Vec<ResourceEntry<'a>>,
    interaction: Vec<Code>,
    search_param: Vec<Param<'a>>,
    operation: Vec<Operation>,
}

#[derive(Serialize)]
struct Code {
    code: &'static str,
}

#[derive(Serialize)]
struct Operation {
    name: &'static str,
    definition: String,
}

#[derive(Serialize)]
struct Param<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    definition: Option<&'a str>,
    #[serde(rename = "type")]
    param_type: &'static str,
}

/// One `rest.resource`. FHIR arrays are never empty, so empty lists are left out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceEntry<'a> {
    #[serde(rename = "type")]
    res_type: &'a str,
    profile: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    supported_profile: Vec<&'a str>,
    interaction: Vec<Code>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    behaviour: Option<Behaviour>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    operation: Vec<Operation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    search_param: Vec<Param<'a>>,
}

/// What a stored type does on writes (the catalog's built-in types take none).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Behaviour {
    versioning: &'static str,
    read_history: bool,
    update_create: bool,
    conditional_create: bool,
    conditional_read: &'static str,
    conditional_update: bool,
    conditional_delete: &'static str,
}

fn codes(list: &[&'static str]) -> Vec<Code> {
    list.iter().map(|&code| Code { code }).collect()
}

fn operation(name: &'static str, definition: impl Into<String>) -> Operation {
    Operation {
        name,
        definition: definition.into(),
    }
}

/// One `rest.resource`: what the server does with this type. AuditEvents are never
/// changed through the API (policy R5), so they advertise no update, patch or delete.
fn resource_entry<'a>(t: &'a str, catalog: Option<&'a crate::conformance::catalog::Catalog>) -> ResourceEntry<'a> {
    if catalog.is_some() && crate::conformance::catalog::is_catalog_type(t) {
        return catalog_entry(t);
    }
    let interaction: &[&str] = if t == "AuditEvent" {
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
    // Operations on the type: $validate on all, $everything on Patient, Bulk Data
    // $export at Patient and Group level (docs/bulk.md).
    let mut operations = vec![operation(
        "validate",
        "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    )];
    if t == "Patient" {
        operations.push(operation(
            "everything",
            "http://hl7.org/fhir/OperationDefinition/Patient-everything",
        ));
    }
    let export = match t {
        "Patient" => Some("patient-export"),
        "Group" => Some("group-export"),
        _ => None,
    };
    if let Some(name) = export {
        operations.push(operation(
            "export",
            format!("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{name}"),
        ));
    }
    ResourceEntry {
        res_type: t,
        profile: format!("http://hl7.org/fhir/StructureDefinition/{t}"),
        // The profiles the server holds and enforces for this type (docs/validation.md).
        supported_profile: catalog.map(|c| c.profiles_of(t)).unwrap_or_default(),
        interaction: codes(interaction),
        behaviour: Some(Behaviour {
            versioning: "versioned-update",
            read_history: true,
            update_create: true,
            conditional_create: true,
            conditional_read: "not-supported",
            conditional_update: true,
            conditional_delete: "single",
        }),
        operation: operations,
        search_param: search_params(t, false),
    }
}

/// The conformance resources: built in, so read and search only, plus the terminology
/// operations on ValueSet and CodeSystem.
fn catalog_entry(t: &str) -> ResourceEntry<'_> {
    let param = |name, param_type| Param {
        name,
        definition: None,
        param_type,
    };
    let operations = match t {
        "ValueSet" => vec![
            operation("expand", "http://hl7.org/fhir/OperationDefinition/ValueSet-expand"),
            operation(
                "validate-code",
                "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
            ),
        ],
        "CodeSystem" => vec![operation(
            "validate-code",
            "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code",
        )],
        _ => Vec::new(),
    };
    ResourceEntry {
        res_type: t,
        profile: format!("http://hl7.org/fhir/StructureDefinition/{t}"),
        supported_profile: Vec::new(),
        interaction: codes(&["read", "search-type"]),
        behaviour: None,
        operation: operations,
        search_param: vec![
            param("_id", "token"),
            param("url", "uri"),
            param("version", "token"),
            param("status", "token"),
            param("name", "string"),
            param("title", "string"),
        ],
    }
}

/// The supported search parameters of `res_type`, from the registry searches use.
/// Those of every resource (`_id`, `_lastUpdated`, `_tag`, …) are listed once, at
/// `rest.searchParam` (`common`), not again under each type.
fn search_params(res_type: &str, common: bool) -> Vec<Param<'static>> {
    let registry = carnet_search::Registry::r4();
    registry
        .params_for(res_type)
        .filter(|p| p.supported)
        .filter(|p| common || registry.param("Resource", &p.code).is_none())
        .map(|p| Param {
            name: &p.code,
            definition: Some(&p.url),
            param_type: p.param_type.as_str(),
        })
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
