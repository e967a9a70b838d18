//! The only crate that touches fhirbolt. Its generated R4 model is huge: every use of it
//! instantiates (de)serialisers for 146 resource types, which takes most of a release
//! build. Kept here behind non-generic functions, that happens once, and changes to
//! Carnet's own checks (`carnet-fhir`) never recompile it.
//!
//! Every call is strict (the lax modes silently drop data) and runs under
//! `catch_unwind`, because fhirbolt unwraps in a few places.

use std::panic::{AssertUnwindSafe, catch_unwind};

use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use serde_json::Value;

/// Why fhirbolt refused (or failed on) an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// fhirbolt's message, without serde's lists of expected names and positions.
    pub message: String,
    /// fhirbolt itself failed (a panic caught here) rather than refusing the input.
    pub panicked: bool,
}

fn strict() -> Option<DeserializationConfig> {
    Some(DeserializationConfig {
        mode: DeserializationMode::Strict,
    })
}

fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, Failure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(msg)) => Err(Failure {
            message: tidy(&msg),
            panicked: false,
        }),
        Err(_) => Err(Failure {
            message: "the FHIR parser failed on this input".to_owned(),
            panicked: true,
        }),
    }
}

fn parse_json(value: &Value) -> Result<Resource, Failure> {
    guarded(|| fhirbolt::json::from_json_value::<Resource>(value.clone(), strict()).map_err(|e| e.to_string()))
}

/// Whether fhirbolt's strict parser accepts the JSON resource.
pub fn check_json(value: &Value) -> Result<(), Failure> {
    parse_json(value).map(drop)
}

/// The JSON resource as FHIR XML (compact).
pub fn json_to_xml(value: &Value) -> Result<String, Failure> {
    let resource = parse_json(value)?;
    guarded(|| fhirbolt::xml::to_string(&resource, None).map_err(|e| e.to_string()))
}

/// FHIR XML as a JSON resource (decimals keep their text).
pub fn xml_to_json(xml: &[u8]) -> Result<Value, Failure> {
    let resource = guarded(|| fhirbolt::xml::from_slice::<Resource>(xml, strict()).map_err(|e| e.to_string()))?;
    guarded(|| fhirbolt::json::to_json_value(resource, None).map_err(|e| e.to_string()))
}

/// Drops serde's "expected one of ..." lists (dozens of names) and position suffixes.
fn tidy(msg: &str) -> String {
    let msg = msg.split(", expected one of").next().unwrap_or(msg);
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    msg.trim().to_owned()
}
