//! The checks every incoming resource passes before it is stored.

use serde_json::{Map, Value};

use crate::conformance;
use crate::error::{Error, Result};

/// The whole check of a write: [`structure`], then the base R4 rules and the profiles
/// the resource claims or the deployment requires (`conformance`): 422 on any error.
pub fn resource(
    rules: &conformance::Rules,
    res_type: &str,
    body: Value,
    expected_id: Option<&str>,
) -> Result<Map<String, Value>> {
    let value = structure(res_type, body, expected_id)?;
    conformance::enforce(rules, &value)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Error::invalid("structure", "The body must be a JSON object")),
    }
}

/// Checks the body is a `res_type` resource that the R4 model accepts and returns it (a
/// JSON object). `expected_id` is the URL id of an update: the body must carry the same.
pub fn structure(res_type: &str, body: Value, expected_id: Option<&str>) -> Result<Value> {
    let Value::Object(map) = body else {
        return Err(Error::invalid(
            "structure",
            "The body must be a JSON object holding a FHIR resource",
        ));
    };
    match map.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == res_type => {}
        Some(t) => {
            return Err(Error::invalid_at(
                "invalid",
                "resourceType",
                format!("The body holds a {t} but the URL is for {res_type}"),
            ));
        }
        None => {
            return Err(Error::invalid_at(
                "required",
                "resourceType",
                "The body has no resourceType",
            ));
        }
    }
    if let Some(expected) = expected_id {
        match map.get("id").and_then(Value::as_str) {
            Some(id) if id == expected => {}
            Some(id) => {
                return Err(Error::invalid_at(
                    "invalid",
                    format!("{res_type}.id"),
                    format!("The body's id '{id}' does not match the URL's id '{expected}'"),
                ));
            }
            None => {
                return Err(Error::invalid_at(
                    "required",
                    format!("{res_type}.id"),
                    "An update must carry the resource's id in the body",
                ));
            }
        }
    }
    let value = Value::Object(map);
    if let Err(issues) = carnet_fhir::check_resource(&value) {
        return Err(Error::Invalid(issues));
    }
    Ok(value)
}
