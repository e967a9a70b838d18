//! From a unit to resources ready to store: the same strict R4 check a POST or PUT
//! runs, ids and `urn:uuid:` references resolved, index rows and compartments derived.
//! No I/O, so units are checked on every core while the previous chunk is written.

use std::collections::HashMap;

use serde_json::Value;

use super::source::Body;
use crate::conformance::Rules;
use crate::error::Error;
use crate::service::bundle::refs;
use crate::service::write::NewResource;
use crate::service::{ids, validate};

/// A checked unit.
pub enum Checked {
    /// Resources to store together (one, or a whole transaction Bundle).
    Ready(Vec<Ready>),
    /// A transaction Bundle that needs the full Bundle processor: conditional creates
    /// or references, deletes, patches, reads.
    Bundle(Value),
}

pub struct Ready {
    pub new: NewResource,
    /// The id came from the input: the resource may exist already, and is then updated.
    pub keyed: bool,
}

/// Why a unit is refused: what (e.g. `Patient/12`, or the entry) and the reason.
pub type Refusal = (Option<String>, String);

pub fn check(body: Body, now: i64, rules: &Rules) -> Result<Checked, Refusal> {
    match body {
        Body::Resource(v) => one(v, now, rules, None).map(|r| Checked::Ready(vec![r])),
        Body::Transaction(v) => transaction(v, now, rules),
    }
}

fn one(v: Value, now: i64, rules: &Rules, assigned: Option<String>) -> Result<Ready, Refusal> {
    let res_type = v["resourceType"].as_str().unwrap_or_default().to_string();
    ids::check_type(&res_type).map_err(|e| (None, reason(&e)))?;
    let given = v.get("id").and_then(Value::as_str).map(str::to_string);
    let what = given.as_ref().map(|id| format!("{res_type}/{id}"));
    if let Some(id) = &given {
        ids::check_id(id).map_err(|e| (what.clone(), reason(&e)))?;
    }
    let keyed = assigned.is_none() && given.is_some();
    let id = assigned.or(given);
    let map = validate::resource(rules, &res_type, v, None).map_err(|e| (what.clone(), reason(&e)))?;
    let new = NewResource::prepare(&res_type, map, id, now).map_err(|e| (what, reason(&e)))?;
    Ok(Ready { new, keyed })
}

/// A transaction Bundle made only of creates (`POST`) and updates of literal ids
/// (`PUT Type/id`) whose references are literal or to other entries is checked here;
/// anything else goes to the Bundle processor.
fn transaction(bundle: Value, now: i64, rules: &Rules) -> Result<Checked, Refusal> {
    let Some(entries) = bundle.get("entry").and_then(Value::as_array) else {
        return Ok(Checked::Ready(Vec::new()));
    };
    // (id, from the input?, resource)
    let mut plan: Vec<(String, bool, Value)> = Vec::with_capacity(entries.len());
    let mut rewrites: HashMap<String, String> = HashMap::new();
    for e in entries {
        let request = &e["request"];
        let Some(resource) = e.get("resource").filter(|r| r.is_object()) else {
            return Ok(Checked::Bundle(bundle));
        };
        let res_type = resource["resourceType"].as_str().unwrap_or_default();
        let conditional = request.get("ifNoneExist").is_some() || request.get("ifMatch").is_some();
        let url = request["url"].as_str().unwrap_or_default();
        let (id, keyed) = match request["method"].as_str() {
            Some("POST") if !conditional && url == res_type => (ids::new_id(), false),
            Some("PUT") if !conditional && !url.contains('?') => match url.split_once('/') {
                Some((t, id)) if t == res_type && resource["id"].as_str() == Some(id) => (id.to_string(), true),
                _ => return Ok(Checked::Bundle(bundle)),
            },
            _ => return Ok(Checked::Bundle(bundle)),
        };
        if let Some(full) = e["fullUrl"].as_str() {
            rewrites.insert(full.to_string(), format!("{res_type}/{id}"));
        }
        plan.push((id, keyed, resource.clone()));
    }
    let mut ready = Vec::with_capacity(plan.len());
    for (i, (id, keyed, mut resource)) in plan.into_iter().enumerate() {
        let mut problem: Option<String> = None;
        let mut needs_processor = false;
        refs::visit(&resource, &mut |s| {
            if rewrites.contains_key(s) {
                return;
            }
            if s.starts_with("urn:uuid:") || s.starts_with("urn:oid:") {
                problem.get_or_insert_with(|| format!("the reference '{s}' names no entry of this Bundle"));
            } else if s.split_once('?').is_some_and(|(t, _)| carnet_fhir::is_resource_type(t)) {
                needs_processor = true;
            }
        });
        if needs_processor {
            return Ok(Checked::Bundle(bundle));
        }
        let at = Some(format!("Bundle.entry[{i}]"));
        if let Some(p) = problem {
            return Err((at, p));
        }
        refs::visit_mut(&mut resource, &mut |s| {
            if let Some(new) = rewrites.get(s.as_str()) {
                s.clone_from(new);
            }
        });
        let r = one(resource, now, rules, Some(id)).map_err(|(what, why)| {
            let what = match what {
                Some(w) => format!("Bundle.entry[{i}] ({w})"),
                None => format!("Bundle.entry[{i}]"),
            };
            (Some(what), why)
        })?;
        ready.push(Ready { keyed, ..r });
    }
    Ok(Checked::Ready(ready))
}

/// The reasons of a refusal on one line: each issue's location and text.
pub fn reason(e: &Error) -> String {
    match e {
        // Why it was refused: the errors; warnings (`dom-6`...) would only bury them.
        Error::Invalid(issues) | Error::Unprocessable(issues) => issues
            .iter()
            .filter(|i| i.is_error())
            .map(|i| match &i.expression {
                Some(x) => format!("{x}: {}", i.diagnostics),
                None => i.diagnostics.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
