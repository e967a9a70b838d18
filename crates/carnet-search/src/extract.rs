//! From a resource to its typed index entries: each parameter's expression selects
//! nodes, and each node becomes zero or more values of the parameter's type. The node's
//! FHIR type (from a choice suffix or `as`) decides the shape when known; otherwise the
//! JSON shape does.

use carnet_fhirpath::{Node, reference_type};
use serde_json::{Map, Value};

use crate::datetime::parse_range;
use crate::normalize::normalize;
use crate::number::parse_number;
use crate::registry::{ParamType, Registry, SearchParam};
use crate::values::*;

type Push<'s> = &'s mut dyn FnMut(IndexValue);

impl Registry {
    /// Every index entry of `resource` (a `resource_type`), in parameter order; none
    /// for the parameters stored as the rows of others ([`Registry::stored_as`]).
    pub fn extract<'r>(&'r self, resource_type: &str, resource: &Value) -> Vec<IndexEntry<'r>> {
        let mut out = Vec::new();
        for param in self.extracted_for(resource_type) {
            extract_param(param, resource, &mut out);
        }
        out
    }
}

/// Appends one parameter's entries, without duplicates (union branches can overlap).
pub fn extract_param<'r>(param: &'r SearchParam, resource: &Value, out: &mut Vec<IndexEntry<'r>>) {
    let Some(expr) = param.expression.as_ref().filter(|_| param.supported) else {
        return;
    };
    let start = out.len();
    let mut push = |value: IndexValue| {
        if !out[start..].iter().any(|e| e.value == value) {
            out.push(IndexEntry {
                param: &param.code,
                value,
            });
        }
    };
    if param.param_type == ParamType::Composite {
        expr.for_each(resource, &mut |n| composite(param, resource, n, &mut push));
    } else {
        expr.for_each(resource, &mut |n| node_values(param.param_type, n, &mut push));
    }
}

/// The component values drawn from one element, each component's as a list.
fn composite(param: &SearchParam, resource: &Value, element: Node<'_>, push: Push<'_>) {
    let mut parts: Vec<Vec<IndexValue>> = Vec::with_capacity(param.components.len());
    for comp in &param.components {
        let mut values = Vec::new();
        comp.expression.for_each_at(resource, element, &mut |n| {
            node_values(comp.param_type, n, &mut |v| {
                if !values.contains(&v) {
                    values.push(v);
                }
            })
        });
        if values.is_empty() {
            return;
        }
        parts.push(values);
    }
    push(IndexValue::Composite(parts));
}

/// The values one selected node contributes to a parameter of type `param_type`.
pub fn node_values(param_type: ParamType, node: Node<'_>, push: Push<'_>) {
    match param_type {
        ParamType::String => strings(node.value, push),
        ParamType::Token => tokens(node, push),
        ParamType::Reference => references(node.value, push),
        ParamType::Date => dates(node, push),
        ParamType::Number => numbers(node.value, push),
        ParamType::Quantity => quantities(node, push),
        ParamType::Uri => {
            if let Some(uri) = node.value.as_str() {
                push(IndexValue::Uri(UriValue { uri: uri.to_owned() }));
            }
        }
        ParamType::Composite | ParamType::Special => {}
    }
}

fn str_of<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// HumanName and Address parts that string search covers.
const NAME_AND_ADDRESS_PARTS: &[&str] = &[
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
];

fn strings(v: &Value, push: Push<'_>) {
    let mut one = |s: &str| {
        push(IndexValue::String(StringValue {
            normalized: normalize(s),
            exact: s.to_owned(),
        }));
    };
    match v {
        Value::String(s) => one(s),
        Value::Object(obj) => {
            for part in NAME_AND_ADDRESS_PARTS {
                match obj.get(*part) {
                    Some(Value::String(s)) => one(s),
                    Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(&mut one),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

const CONTACT_SYSTEMS: &[&str] = &["phone", "fax", "email", "pager", "url", "sms", "other"];

fn tokens(node: Node<'_>, push: Push<'_>) {
    let code = |code: String| TokenValue {
        code: Some(code),
        ..TokenValue::default()
    };
    let obj = match node.value {
        Value::Bool(b) => return push(IndexValue::Token(code(b.to_string()))),
        Value::String(s) => return push(IndexValue::Token(code(s.clone()))),
        Value::Number(n) => return push(IndexValue::Token(code(n.to_string()))),
        Value::Object(obj) => obj,
        _ => return,
    };
    let shape = node.type_name.unwrap_or_else(|| {
        if obj.contains_key("coding") {
            "CodeableConcept"
        } else if obj.contains_key("value") {
            let system = str_of(obj, "system");
            let usage = str_of(obj, "use");
            let contact = system.is_some_and(|s| CONTACT_SYSTEMS.contains(&s))
                || (system.is_none() && matches!(usage, Some("home" | "work" | "mobile")));
            if contact { "ContactPoint" } else { "Identifier" }
        } else if obj.contains_key("code") || obj.contains_key("system") {
            "Coding"
        } else {
            "CodeableConcept"
        }
    });
    match shape {
        "CodeableConcept" => {
            for c in obj.get("coding").and_then(Value::as_array).into_iter().flatten() {
                if let Some(c) = c.as_object() {
                    push(IndexValue::Token(coding(c)));
                }
            }
            if let Some(text) = str_of(obj, "text") {
                push(IndexValue::Token(TokenValue {
                    text: Some(normalize(text)),
                    ..TokenValue::default()
                }));
            }
        }
        "Coding" => push(IndexValue::Token(coding(obj))),
        "Identifier" => identifier_tokens(obj, push),
        "ContactPoint" => {
            if let Some(value) = str_of(obj, "value") {
                push(IndexValue::Token(TokenValue {
                    system: owned(str_of(obj, "use")),
                    code: Some(value.to_owned()),
                    ..TokenValue::default()
                }));
            }
        }
        _ => {}
    }
}

fn coding(c: &Map<String, Value>) -> TokenValue {
    TokenValue {
        system: owned(str_of(c, "system")),
        code: owned(str_of(c, "code")),
        text: str_of(c, "display").map(normalize),
        ..TokenValue::default()
    }
}

/// One token per Identifier.type coding (so `:of-type` can match any of them), or one
/// without type when it has none.
fn identifier_tokens(obj: &Map<String, Value>, push: Push<'_>) {
    let base = TokenValue {
        system: owned(str_of(obj, "system")),
        code: owned(str_of(obj, "value")),
        text: obj
            .get("type")
            .and_then(|t| t.get("text"))
            .and_then(Value::as_str)
            .map(normalize),
        ..TokenValue::default()
    };
    if base.system.is_none() && base.code.is_none() && base.text.is_none() {
        return;
    }
    let types = obj.get("type").and_then(|t| t.get("coding")).and_then(Value::as_array);
    let mut any = false;
    for c in types.into_iter().flatten() {
        any = true;
        push(IndexValue::Token(TokenValue {
            of_type_system: owned(c.get("system").and_then(Value::as_str)),
            of_type_code: owned(c.get("code").and_then(Value::as_str)),
            ..base.clone()
        }));
    }
    if !any {
        push(IndexValue::Token(base));
    }
}

fn references(v: &Value, push: Push<'_>) {
    match v {
        Value::String(s) => push(IndexValue::Reference(parse_reference(s))),
        // An embedded resource (Bundle.entry[0].resource) is not a reference.
        Value::Object(obj) if !obj.contains_key("resourceType") => {
            let mut r = str_of(obj, "reference").map(parse_reference).unwrap_or_default();
            if let Some(id) = obj.get("identifier").and_then(Value::as_object) {
                r.identifier = Some(TokenValue {
                    system: owned(str_of(id, "system")),
                    code: owned(str_of(id, "value")),
                    ..TokenValue::default()
                });
            }
            if r != ReferenceValue::default() {
                push(IndexValue::Reference(r));
            }
        }
        _ => {}
    }
}

/// `Patient/1`, `Patient/1/_history/2`, `http://x/fhir/Patient/1`, `urn:uuid:…`,
/// `#contained`, or a canonical `http://x/ValueSet/y|1.0`.
pub fn parse_reference(s: &str) -> ReferenceValue {
    let absolute = s.contains("://") || s.starts_with("urn:") || s.starts_with('#');
    let (body, version) = match s.split_once('|') {
        Some((b, v)) if absolute => (b, Some(v.to_owned())),
        _ => (s, None),
    };
    let mut r = ReferenceValue {
        version,
        ..ReferenceValue::default()
    };
    if absolute {
        r.url = Some(body.to_owned());
    }
    if s.starts_with("urn:") || s.starts_with('#') {
        return r;
    }
    if let Some(t) = reference_type(body) {
        let (path, history) = match body.split_once("/_history/") {
            Some((p, h)) => (p, Some(h)),
            None => (body, None),
        };
        if let Some(id) = path.rsplit('/').next() {
            r.target_type = Some(t.to_owned());
            r.target_id = Some(id.to_owned());
            if let Some(h) = history {
                r.version = Some(h.to_owned());
            }
        }
    } else if !absolute {
        r.url = Some(body.to_owned());
    }
    r
}

fn dates(node: Node<'_>, push: Push<'_>) {
    let obj = match node.value {
        Value::String(s) => {
            if let Some(r) = parse_range(s) {
                push(IndexValue::Date(r));
            }
            return;
        }
        Value::Object(obj) => obj,
        _ => return,
    };
    let is_timing = node.type_name == Some("Timing") || obj.contains_key("event") || obj.contains_key("repeat");
    let range = if is_timing { timing(obj) } else { period(obj) };
    if let Some(r) = range {
        push(IndexValue::Date(r));
    }
}

/// A Period's range; an absent end is open.
fn period(obj: &Map<String, Value>) -> Option<DateRange> {
    let start = str_of(obj, "start").and_then(parse_range);
    let end = str_of(obj, "end").and_then(parse_range);
    if start.is_none() && end.is_none() {
        return None;
    }
    Some(DateRange {
        low: start.map_or(DateRange::MIN, |r| r.low),
        high: end.map_or(DateRange::MAX, |r| r.high),
    })
}

/// From the earliest to the latest event, widened by `repeat.boundsPeriod`.
fn timing(obj: &Map<String, Value>) -> Option<DateRange> {
    let events = obj.get("event").and_then(Value::as_array).into_iter().flatten();
    let bounds = obj
        .get("repeat")
        .and_then(|r| r.get("boundsPeriod"))
        .and_then(Value::as_object)
        .and_then(period);
    events
        .filter_map(|e| e.as_str().and_then(parse_range))
        .chain(bounds)
        .reduce(|a, b| DateRange {
            low: a.low.min(b.low),
            high: a.high.max(b.high),
        })
}

fn numbers(v: &Value, push: Push<'_>) {
    match v {
        Value::Number(n) => {
            if let Some(n) = parse_number(&n.to_string()) {
                push(IndexValue::Number(n));
            }
        }
        Value::Object(obj) => {
            if let Some(r) = range(obj) {
                push(IndexValue::Number(r));
            }
        }
        _ => {}
    }
}

/// A Range's bounds (inclusive at both ends; absent ends open).
fn range(obj: &Map<String, Value>) -> Option<NumberValue> {
    let bound = |k: &str| {
        obj.get(k)
            .and_then(|q| q.get("value"))
            .and_then(Value::as_number)
            .map(|n| n.to_string())
    };
    let low = bound("low").and_then(|t| t.parse::<f64>().ok());
    let high = bound("high").and_then(|t| t.parse::<f64>().ok());
    if low.is_none() && high.is_none() {
        return None;
    }
    Some(NumberValue {
        value: None,
        text: None,
        low: low.unwrap_or(f64::MIN),
        high: high.unwrap_or(f64::MAX),
    })
}

fn quantities(node: Node<'_>, push: Push<'_>) {
    let obj = match node.value {
        Value::Number(n) => {
            if let Some(number) = parse_number(&n.to_string()) {
                push(IndexValue::Quantity(QuantityValue {
                    number,
                    system: None,
                    code: None,
                    unit: None,
                }));
            }
            return;
        }
        Value::Object(obj) => obj,
        _ => return,
    };
    if node.type_name == Some("SampledData") || obj.contains_key("origin") {
        return;
    }
    if node.type_name == Some("Range") || obj.contains_key("low") || obj.contains_key("high") {
        if let Some(number) = range(obj) {
            let unit_of = obj.get("low").or_else(|| obj.get("high")).and_then(Value::as_object);
            push(IndexValue::Quantity(QuantityValue {
                number,
                system: unit_of.and_then(|u| owned(str_of(u, "system"))),
                code: unit_of.and_then(|u| owned(str_of(u, "code"))),
                unit: unit_of.and_then(|u| owned(str_of(u, "unit"))),
            }));
        }
        return;
    }
    let Some(number) = obj
        .get("value")
        .and_then(Value::as_number)
        .and_then(|n| parse_number(&n.to_string()))
    else {
        return;
    };
    // Money has a currency instead of a UCUM unit; search treats it as an ISO 4217 code.
    let (system, code) = match str_of(obj, "currency") {
        Some(cur) => (Some("urn:iso:std:iso:4217".to_owned()), Some(cur.to_owned())),
        None => (owned(str_of(obj, "system")), owned(str_of(obj, "code"))),
    };
    push(IndexValue::Quantity(QuantityValue {
        number,
        system,
        code,
        unit: owned(str_of(obj, "unit")),
    }));
}
