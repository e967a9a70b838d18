//! The base pass: walks a resource with the generated R4 tables, evaluating invariants
//! where their definitions put them and checking bindings of coded elements.

use serde_json::Value;

use crate::registry::Registry;
use crate::rules::{Elem, Rules, Target, Ty, base};
use crate::{Seg, Severity, Sink};

pub(crate) fn validate(registry: &Registry, resource: &Value, sink: &mut Sink) {
    let b = base();
    if let Some(e) = &b.load_error {
        sink.push(
            Severity::Error,
            "exception",
            None,
            format!("built-in R4 rules unavailable: {e}"),
        );
        return;
    }
    let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
        sink.push(
            Severity::Error,
            "structure",
            None,
            "not a resource (no resourceType)".to_owned(),
        );
        return;
    };
    let mut w = Walker {
        rules: &b.rules,
        registry,
        sink,
    };
    let mut path = vec![Seg { name: rt, index: None }];
    w.resource(resource, resource, &mut path);
}

struct Walker<'r, 's> {
    rules: &'r Rules,
    registry: &'r Registry,
    sink: &'s mut Sink,
}

impl<'r> Walker<'r, '_> {
    /// `path` already ends with the segment naming `res`; `root` is `%rootResource`
    /// (the container, for a contained resource; else `res` itself).
    fn resource<'a>(&mut self, root: &'a Value, res: &'a Value, path: &mut Vec<Seg<'a>>) {
        let Some(rt) = res.get("resourceType").and_then(Value::as_str) else {
            return;
        };
        // An unknown type is carnet-fhir's to report.
        if let Some(si) = self.rules.struct_named(rt) {
            self.object((root, res), res, si, path);
        }
    }

    /// `res` is (`%rootResource`, `%resource`).
    fn object<'a>(&mut self, res: (&'a Value, &'a Value), value: &'a Value, si: usize, path: &mut Vec<Seg<'a>>) {
        let Value::Object(obj) = value else { return };
        let rules: &'r Rules = self.rules;
        let s = &rules.structs[si];
        for &ci in &s.constraints {
            self.sink.invariant(&rules.constraints[ci], res, value, &s.focus, path);
        }
        for (key, v) in obj {
            if let Some(name) = key.strip_prefix('_') {
                self.primitive_extensions(res, name, v, path);
                continue;
            }
            let Some((e, ty)) = s.find(key) else { continue };
            match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        path.push(Seg {
                            name: key,
                            index: Some(i),
                        });
                        self.element(res, item, e, ty, path);
                        path.pop();
                    }
                }
                _ => {
                    path.push(Seg { name: key, index: None });
                    self.element(res, v, e, ty, path);
                    path.pop();
                }
            }
        }
    }

    /// The extensions of a primitive (`_birthDate`, or `_given` with one item per
    /// value), walked as Extensions at `birthDate.extension[0]`.
    fn primitive_extensions<'a>(
        &mut self,
        res: (&'a Value, &'a Value),
        name: &'a str,
        v: &'a Value,
        path: &mut Vec<Seg<'a>>,
    ) {
        let Some(ext) = self.rules.struct_named("Extension") else {
            return;
        };
        let items: Vec<(Option<usize>, &'a Value)> = match v {
            Value::Array(a) => a.iter().enumerate().map(|(i, x)| (Some(i), x)).collect(),
            x => vec![(None, x)],
        };
        for (index, item) in items {
            let Some(list) = item.get("extension").and_then(Value::as_array) else {
                continue;
            };
            path.push(Seg { name, index });
            for (j, x) in list.iter().enumerate() {
                path.push(Seg {
                    name: "extension",
                    index: Some(j),
                });
                self.object(res, x, ext, path);
                path.pop();
            }
            path.pop();
        }
    }

    fn element<'a>(
        &mut self,
        res: (&'a Value, &'a Value),
        item: &'a Value,
        e: &'r Elem,
        ty: &'r Ty,
        path: &mut Vec<Seg<'a>>,
    ) {
        let rules: &'r Rules = self.rules;
        for &ci in &e.constraints {
            self.sink.invariant(&rules.constraints[ci], res, item, &ty.name, path);
        }
        if let Some(b) = &e.binding {
            check_binding(
                self.registry,
                b.required,
                &b.value_set,
                item,
                &ty.name,
                path,
                self.sink,
                false,
            );
        }
        match ty.target {
            Target::Struct(si) => self.object(res, item, si, path),
            // A contained resource keeps its container as `%rootResource`; a Bundle
            // entry's or a Parameters' resource stands on its own.
            Target::Resource if e.name == "contained" => self.resource(res.0, item, path),
            Target::Resource => self.resource(item, item, path),
            Target::Primitive => {}
        }
    }
}

/// Checks a `code`, `Coding` or `CodeableConcept` against a value set. Bindings to value
/// sets that cannot be expanded are reported only for profiles (`report_unexpandable`):
/// the base tables only keep bindings the package lets us enumerate.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_binding(
    registry: &Registry,
    required: bool,
    value_set: &str,
    item: &Value,
    type_name: &str,
    path: &[Seg<'_>],
    sink: &mut Sink,
    report_unexpandable: bool,
) {
    let exp = match registry.expanded(value_set) {
        Ok(e) => e,
        Err(err) => {
            if report_unexpandable {
                sink.at(
                    Severity::Warning,
                    "not-supported",
                    path,
                    format!("binding to {value_set} not checked: {err}"),
                );
            }
            return;
        }
    };
    let severity = if required { Severity::Error } else { Severity::Warning };
    let strength = if required { "required" } else { "extensible" };
    match type_name {
        "code" => {
            if let Some(code) = item.as_str()
                && exp.find(None, code).is_none()
            {
                sink.at(
                    severity,
                    "code-invalid",
                    path,
                    format!("the code '{code}' is not in the value set {value_set} ({strength} binding)"),
                );
            }
        }
        "Coding" => {
            if let Some(code) = item.get("code").and_then(Value::as_str) {
                let system = item.get("system").and_then(Value::as_str);
                if exp.find(system, code).is_none() {
                    sink.at(
                        severity,
                        "code-invalid",
                        path,
                        format!(
                            "the code '{}#{code}' is not in the value set {value_set} ({strength} binding)",
                            system.unwrap_or("")
                        ),
                    );
                }
            }
        }
        "CodeableConcept" => {
            let codings = item
                .get("coding")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            let coded: Vec<(Option<&str>, &str)> = codings
                .iter()
                .filter_map(|c| Some((c.get("system").and_then(Value::as_str), c.get("code")?.as_str()?)))
                .collect();
            if coded.iter().any(|(s, c)| exp.find(*s, c).is_some()) {
                return;
            }
            // Extensible allows text or codes from elsewhere when nothing fits; a required
            // binding needs one of its codes.
            if coded.is_empty() && !required {
                return;
            }
            let shown: Vec<String> = coded.iter().map(|(s, c)| format!("{}#{c}", s.unwrap_or(""))).collect();
            let what = if shown.is_empty() {
                "no code".to_owned()
            } else {
                format!("none of the codes {}", shown.join(", "))
            };
            sink.at(
                severity,
                "code-invalid",
                path,
                format!("{what} is in the value set {value_set} ({strength} binding)"),
            );
        }
        _ => {}
    }
}
