//! `ValueSet/$expand`, `ValueSet/$validate-code` and `CodeSystem/$validate-code` over
//! the value sets and code systems the server holds (its own and the R4 ones its
//! validator uses). GET with query parameters, or POST with a `Parameters` body; at
//! type level with `url`, or at instance level on a catalog id. Public, like the
//! conformance resources.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use carnet_validate::{Coded, TerminologyError};
use serde_json::Value;

use crate::conformance::catalog;
use crate::error::{Error, Result};
use crate::fhir::instant::format_micros;
use crate::http::extract::{OptionalFhirBody, Query};
use crate::http::respond;
use crate::service::ids;
use crate::state::AppState;

/// The operation's parameters by name: query string values as JSON strings, a
/// `Parameters` body's `value[x]` or `resource` as given.
struct Params(Vec<(String, Value)>);

impl Params {
    fn read(q: Query, body: Option<Value>, known: &[&str]) -> Result<Params> {
        let mut out: Vec<(String, Value)> = q.0.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        if let Some(b) = body {
            if b["resourceType"] != "Parameters" {
                return Err(Error::invalid_at(
                    "structure",
                    "resourceType",
                    "The operation takes a Parameters resource",
                ));
            }
            for p in b["parameter"].as_array().into_iter().flatten() {
                let Some(name) = p["name"].as_str() else {
                    return Err(Error::invalid("required", "A parameter has no name"));
                };
                let value = p
                    .as_object()
                    .and_then(|o| o.iter().find(|(k, _)| k.starts_with("value") || *k == "resource"))
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Value::Null);
                out.push((name.to_string(), value));
            }
        }
        for (name, _) in &out {
            // `_format`/`_pretty` are the negotiation layer's.
            if !known.contains(&name.as_str()) && !name.starts_with('_') {
                return Err(Error::invalid_at(
                    "not-supported",
                    name.clone(),
                    format!("Unknown parameter '{}'", ids::truncate(name, 64)),
                ));
            }
        }
        Ok(Params(out))
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    fn number(&self, name: &str) -> Result<Option<usize>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_u64().and_then(|n| usize::try_from(n).ok())),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid_at("value", name.to_string(), format!("'{name}' must be a whole number"))),
            Some(_) => Err(Error::invalid_at(
                "value",
                name.to_string(),
                format!("'{name}' must be a number"),
            )),
        }
    }
}

fn terminology_error(e: TerminologyError) -> Error {
    match e {
        TerminologyError::UnknownValueSet(u) => Error::NotFound(format!("This server holds no value set {u}")),
        TerminologyError::UnknownCodeSystem(u) => Error::NotFound(format!("This server holds no code system {u}")),
        TerminologyError::NotSupported(m) => Error::NotSupported(m),
    }
}

const EXPAND: &[&str] = &[
    "url",
    "valueSet",
    "valueSetVersion",
    "filter",
    "offset",
    "count",
    "displayLanguage",
    "includeDesignations",
    "activeOnly",
];
const VALIDATE_CODE: &[&str] = &[
    "url",
    "valueSetVersion",
    "code",
    "system",
    "systemVersion",
    "version",
    "display",
    "coding",
    "codeableConcept",
];

/// `ValueSet/$expand` (type level): by `url`, or a `valueSet` given in the body.
pub async fn expand_type(
    State(state): State<AppState>,
    q: Query,
    OptionalFhirBody(body): OptionalFhirBody,
) -> Result<Response> {
    let p = Params::read(q, body, EXPAND)?;
    let reg = catalog()?.registry();
    let (filter, offset, count) = (p.str("filter"), p.number("offset")?.unwrap_or(0), p.number("count")?);
    let (exp, definition) = match (p.str("url"), p.get("valueSet")) {
        (_, Some(vs)) if vs.is_object() => (reg.expand_resource(vs, filter, offset, count), vs.clone()),
        (Some(url), _) => {
            let def = reg.value_set(url).cloned().unwrap_or(Value::Null);
            (reg.expand(url, filter, offset, count), def)
        }
        _ => {
            return Err(Error::invalid_at(
                "required",
                "url",
                "$expand needs a url or a valueSet",
            ));
        }
    };
    let exp = exp.map_err(terminology_error)?;
    Ok(respond::value(
        StatusCode::OK,
        &exp.to_value_set(&definition, &format_micros(state.now())),
    ))
}

/// `ValueSet/{id}/$expand`.
pub async fn expand_instance(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Query,
    OptionalFhirBody(body): OptionalFhirBody,
) -> Result<Response> {
    let p = Params::read(q, body, EXPAND)?;
    let vs = held("ValueSet", &id)?;
    let exp = catalog()?
        .registry()
        .expand_resource(
            &vs,
            p.str("filter"),
            p.number("offset")?.unwrap_or(0),
            p.number("count")?,
        )
        .map_err(terminology_error)?;
    Ok(respond::value(
        StatusCode::OK,
        &exp.to_value_set(&vs, &format_micros(state.now())),
    ))
}

fn held(res_type: &str, id: &str) -> Result<Value> {
    catalog()?
        .read(res_type, id)
        .map(|e| e.resource())
        .ok_or_else(|| Error::NotFound(format!("{res_type}/{} not found", ids::truncate(id, 64))))
}

/// The codes to check: `coding`, `codeableConcept`, or `code` with `system`/`display`.
fn codings(p: &Params) -> Result<Vec<Coded<'_>>> {
    if let Some(c) = p.get("coding") {
        return Ok(Coded::from_coding(c).into_iter().collect());
    }
    if let Some(cc) = p.get("codeableConcept") {
        return Ok(Coded::from_codeable_concept(cc));
    }
    let Some(code) = p.str("code") else {
        return Err(Error::invalid_at(
            "required",
            "code",
            "$validate-code needs a code, a coding or a codeableConcept",
        ));
    };
    Ok(vec![Coded {
        system: p.str("system"),
        version: p.str("systemVersion").or(p.str("version")),
        code,
        display: p.str("display"),
    }])
}

/// `ValueSet/$validate-code` and `ValueSet/{id}/$validate-code`.
pub async fn value_set_validate_code(
    id: Option<Path<String>>,
    q: Query,
    OptionalFhirBody(body): OptionalFhirBody,
) -> Result<Response> {
    validate_code("ValueSet", id, q, body)
}

/// `CodeSystem/$validate-code` and `CodeSystem/{id}/$validate-code`; the type level
/// also takes the code system's url as `system`.
pub async fn code_system_validate_code(
    id: Option<Path<String>>,
    q: Query,
    OptionalFhirBody(body): OptionalFhirBody,
) -> Result<Response> {
    validate_code("CodeSystem", id, q, body)
}

fn validate_code(res_type: &str, id: Option<Path<String>>, q: Query, body: Option<Value>) -> Result<Response> {
    let p = Params::read(q, body, VALIDATE_CODE)?;
    let url = match &id {
        Some(Path(id)) => held(res_type, id)?["url"].as_str().unwrap_or_default().to_string(),
        None => p
            .str("url")
            .or(if res_type == "CodeSystem" {
                p.str("system")
            } else {
                None
            })
            .ok_or_else(|| Error::invalid_at("required", "url", format!("$validate-code needs the {res_type}'s url")))?
            .to_string(),
    };
    let codes = codings(&p)?;
    let registry = catalog()?.registry();
    let answer = if res_type == "ValueSet" {
        registry.validate_code_in_value_set(&url, &codes)
    } else {
        registry.validate_code_in_code_system(&url, &codes)
    }
    .map_err(terminology_error)?;
    Ok(respond::value(StatusCode::OK, &answer.to_parameters()))
}
