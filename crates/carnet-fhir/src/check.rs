//! The structural walker behind [`check_resource`].

use serde_json::{Map, Value};

use crate::bolt;
use crate::elements::{Elem, Kind, Prim, Struct, Table, table};
use crate::primitives::{self, PrimError};
use crate::types::Issue;
use crate::{Severity, is_resource_type};

/// Checks a JSON resource against the R4 structure definitions, then lets fhirbolt's
/// strict parser have the last word.
///
/// Checked: resource type, unknown elements, JSON types, array vs single values,
/// primitive formats, `_x` primitive companions, required elements, one variant per
/// choice element; nested resources (`contained`, `Bundle.entry.resource`,
/// `Parameters.parameter.resource`) are checked the same way. Not checked: invariants
/// (FHIRPath constraints), terminology bindings, profiles, reference targets.
pub fn check_resource(value: &Value) -> Result<(), Vec<Issue>> {
    let table = match table() {
        Ok(t) => t,
        Err(e) => {
            return Err(vec![Issue {
                severity: Severity::Fatal,
                code: "exception",
                expression: None,
                diagnostics: format!("internal error: {e}"),
            }]);
        }
    };
    let mut w = Walker {
        table,
        issues: Vec::new(),
        path: String::with_capacity(128),
    };
    let Some(obj) = value.as_object() else {
        return Err(vec![Issue::found(
            "structure",
            None,
            format!("a resource must be a JSON object, not {}", json_kind(value)),
        )]);
    };
    w.resource(obj, true);
    if !w.issues.is_empty() {
        return Err(w.issues);
    }
    bolt::strict_check(value).map_err(|i| vec![i])
}

/// No R4 struct has more choice elements than this (ElementDefinition has 6).
const MAX_CHOICES: usize = 16;

struct Walker<'t> {
    table: &'t Table,
    issues: Vec<Issue>,
    /// The current FHIRPath expression; pushed to and truncated rather than reallocated.
    path: String,
}

impl Walker<'_> {
    fn issue(&mut self, code: &'static str, diagnostics: String) {
        self.issues
            .push(Issue::found(code, Some(self.path.clone()), diagnostics));
    }

    /// Checks a resource; `self.path` is where it sits (empty at the root).
    fn resource(&mut self, obj: &Map<String, Value>, root: bool) {
        let rt = match obj.get("resourceType") {
            Some(Value::String(s)) => s.as_str(),
            other => {
                let base = self.path.len();
                self.push_field("resourceType");
                let (code, msg) = match other {
                    None => ("required", "the resource has no resourceType".to_owned()),
                    Some(v) => (
                        "structure",
                        format!("resourceType must be a string, not {}", json_kind(v)),
                    ),
                };
                self.issue(code, msg);
                self.path.truncate(base);
                return;
            }
        };
        let def = if is_resource_type(rt) { self.table.get(rt) } else { None };
        let Some(def) = def else {
            let base = self.path.len();
            self.push_field("resourceType");
            let code = if root { "not-supported" } else { "structure" };
            self.issue(code, format!("unknown resource type '{}'", clip(rt)));
            self.path.truncate(base);
            return;
        };
        let base = self.path.len();
        if root {
            self.path.push_str(rt);
        } else {
            self.path.push_str(".ofType(");
            self.path.push_str(rt);
            self.path.push(')');
        }
        self.object(def, obj, true);
        self.path.truncate(base);
    }

    fn push_field(&mut self, name: &str) {
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
    }

    fn push_index(&mut self, i: usize) {
        use std::fmt::Write;
        let _ = write!(self.path, "[{i}]");
    }

    /// Checks the properties of an object of type `def`; `self.path` points at it.
    fn object(&mut self, def: &Struct, obj: &Map<String, Value>, is_resource: bool) {
        if obj.is_empty() {
            self.issue(
                "structure",
                "objects must have content (empty objects are not allowed)".to_owned(),
            );
            return;
        }
        let mut choice_seen: [Option<&str>; MAX_CHOICES] = [None; MAX_CHOICES];
        for (key, val) in obj {
            if is_resource && key == "resourceType" {
                continue;
            }
            if let Some(name) = key.strip_prefix('_') {
                self.companion(def, obj, name, val);
                continue;
            }
            let Some(elem) = def.elems.get(key.as_str()) else {
                let base = self.path.len();
                self.push_field(key);
                self.issue("structure", format!("unknown element '{}' in {}", clip(key), def.name));
                self.path.truncate(base);
                continue;
            };
            if let Some(c) = elem.choice {
                self.note_choice(def, &mut choice_seen, c, key);
            }
            self.element(elem, key, val, obj);
        }
        self.required(def, obj);
    }

    fn note_choice<'k>(&mut self, def: &Struct, seen: &mut [Option<&'k str>; MAX_CHOICES], c: u16, key: &'k str) {
        let Some(slot) = seen.get_mut(c as usize) else {
            return;
        };
        match slot {
            None => *slot = Some(key),
            Some(first) => {
                let first = first.to_owned();
                let name = def.choices.get(c as usize).map_or("", String::as_str);
                let base = self.path.len();
                self.push_field(key);
                self.issue(
                    "structure",
                    format!("{name} can only have one value, but both '{first}' and '{key}' are present"),
                );
                self.path.truncate(base);
            }
        }
    }

    fn required(&mut self, def: &Struct, obj: &Map<String, Value>) {
        for req in &def.required {
            if !req.keys.iter().any(|k| obj.contains_key(k.as_str())) {
                let base = self.path.len();
                self.push_field(&req.name);
                self.issue(
                    "required",
                    format!(
                        "{}.{} is required (minimum cardinality 1) but missing",
                        def.name, req.name
                    ),
                );
                self.path.truncate(base);
            }
        }
    }

    /// One property: cardinality shape, then each value.
    fn element(&mut self, elem: &Elem, key: &str, val: &Value, obj: &Map<String, Value>) {
        let base = self.path.len();
        self.push_field(key);
        let is_prim = matches!(elem.kind, Kind::Prim(_));
        match val {
            Value::Array(items) => {
                if !elem.repeats {
                    self.issue(
                        "structure",
                        format!("'{key}' has a maximum cardinality of 1 and must not be an array"),
                    );
                } else if items.is_empty() {
                    self.issue("structure", format!("array '{key}' must not be empty"));
                }
                for (i, item) in items.iter().enumerate() {
                    let len = self.path.len();
                    self.push_index(i);
                    if item.is_null() {
                        let has_ext = companion_array(obj, key)
                            .and_then(|c| c.get(i))
                            .is_some_and(|c| !c.is_null());
                        if !is_prim || !has_ext {
                            self.issue(
                                "structure",
                                "null is only allowed in a primitive array whose '_' companion has an entry at the same index".to_owned(),
                            );
                        }
                    } else {
                        self.value(elem.kind, item);
                    }
                    self.path.truncate(len);
                }
            }
            Value::Null => {
                self.issue("structure", format!("'{key}' must not be null"));
            }
            _ => {
                if elem.repeats {
                    self.issue(
                        "structure",
                        format!("'{key}' repeats (maximum cardinality *) and must be an array"),
                    );
                }
                self.value(elem.kind, val);
            }
        }
        self.path.truncate(base);
    }

    /// One value of type `kind`; `self.path` points at it.
    fn value(&mut self, kind: Kind, val: &Value) {
        match kind {
            Kind::Prim(p) => self.primitive(p, val),
            Kind::Struct(id) => {
                let Some(def) = self.table.by_id(id) else {
                    return;
                };
                match val {
                    Value::Object(o) => self.object(def, o, false),
                    other => self.issue(
                        "structure",
                        format!(
                            "expected a JSON object ({}), not {}",
                            type_label(&def.name),
                            json_kind(other)
                        ),
                    ),
                }
            }
            Kind::Resource => match val {
                Value::Object(o) => self.resource(o, false),
                other => self.issue(
                    "structure",
                    format!("expected a resource (JSON object), not {}", json_kind(other)),
                ),
            },
        }
    }

    fn primitive(&mut self, p: Prim, val: &Value) {
        match primitives::check(p, val) {
            Ok(()) => {}
            Err(PrimError::JsonType(want)) => self.issue(
                "structure",
                format!("a {} must be {}, not {}", p.name(), want, json_kind(val)),
            ),
            Err(PrimError::Value(msg)) => self.issue("value", msg),
        }
    }

    /// A `_name` companion of primitive `name`: `{id?, extension?}`, or an array of those
    /// (or nulls) matching the primitive's array.
    fn companion(&mut self, def: &Struct, obj: &Map<String, Value>, name: &str, val: &Value) {
        let base = self.path.len();
        self.push_field("_");
        self.path.push_str(name);
        let elem = def.elems.get(name);
        match elem {
            Some(e) if matches!(e.kind, Kind::Prim(_)) => {
                let main = obj.get(name);
                match (val, e.repeats) {
                    (Value::Object(o), false) => self.companion_object(o),
                    (Value::Array(items), true) => {
                        if let Some(Value::Array(m)) = main
                            && m.len() != items.len()
                        {
                            self.issue(
                                "structure",
                                format!(
                                    "'_{name}' must have as many entries as '{name}' ({} vs {})",
                                    items.len(),
                                    m.len()
                                ),
                            );
                        }
                        for (i, item) in items.iter().enumerate() {
                            let len = self.path.len();
                            self.push_index(i);
                            match item {
                                Value::Null => {
                                    let has_value = match main {
                                        Some(Value::Array(m)) => m.get(i).is_some_and(|v| !v.is_null()),
                                        _ => false,
                                    };
                                    if !has_value {
                                        self.issue(
                                            "structure",
                                            "a null entry needs a value at the same index of the primitive array"
                                                .to_owned(),
                                        );
                                    }
                                }
                                Value::Object(o) => self.companion_object(o),
                                other => self.issue(
                                    "structure",
                                    format!("expected a JSON object or null, not {}", json_kind(other)),
                                ),
                            }
                            self.path.truncate(len);
                        }
                    }
                    (Value::Array(_), false) => self.issue(
                        "structure",
                        format!("'_{name}' must be a JSON object because '{name}' has a maximum cardinality of 1"),
                    ),
                    (Value::Object(_), true) => self.issue(
                        "structure",
                        format!("'_{name}' must be an array because '{name}' repeats"),
                    ),
                    (other, _) => self.issue(
                        "structure",
                        format!(
                            "'_{name}' must be a JSON object (id/extension), not {}",
                            json_kind(other)
                        ),
                    ),
                }
            }
            Some(_) => self.issue(
                "structure",
                format!("'_{name}' is only allowed for primitive elements, and '{name}' is not one"),
            ),
            None => self.issue(
                "structure",
                format!("unknown element '_{}' in {}", clip(name), def.name),
            ),
        }
        self.path.truncate(base);
    }

    fn companion_object(&mut self, o: &Map<String, Value>) {
        let Some(element) = self.table.get("Element") else {
            return;
        };
        self.object(element, o, false);
    }
}

/// Only called when a primitive array holds a `null`, so the allocation is rare.
fn companion_array<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Vec<Value>> {
    obj.get(&format!("_{key}")).and_then(Value::as_array)
}

/// "Observation.component" reads better as "BackboneElement Observation.component".
fn type_label(name: &str) -> String {
    if name.contains('.') {
        format!("backbone element {name}")
    } else {
        name.to_owned()
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
