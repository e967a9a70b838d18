//! Validation against the snapshot of a constraining StructureDefinition.

use std::collections::HashMap;

use carnet_fhirpath::types::choice_suffix_type;
use serde_json::{Map, Value};

use crate::base::check_binding;
use crate::json;
use crate::registry::Registry;
use crate::rules::{Constraint, base};
use crate::{Seg, Severity, Sink};

const CORE: &str = "http://hl7.org/fhir/StructureDefinition/";

pub(crate) struct Profile {
    /// `StructureDefinition.version`: the definition itself is not kept (its snapshot
    /// is several times the compiled nodes; whoever serves it holds its text).
    pub version: Option<String>,
    url: String,
    type_name: String,
    /// Element definitions as a tree; `nodes[0]` is the root.
    nodes: Vec<Node>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Discriminator {
    Value,
    Pattern,
    Exists,
    Type,
}

struct Slicing {
    discriminators: Vec<(Discriminator, String)>,
    closed: bool,
}

struct Node {
    /// The last path segment: `coding`, `value[x]`.
    name: String,
    /// `_name`: where a primitive's extensions sit in JSON.
    ext_key: String,
    slice_name: Option<String>,
    min: u64,
    /// `None` for `*`.
    max: Option<u64>,
    types: Vec<String>,
    /// `type.profile` of the first type: an extension slice's URL.
    type_profile: Option<String>,
    /// `type.targetProfile` of Reference types: what a reference may point to.
    target_profiles: Vec<String>,
    fixed: Option<Value>,
    pattern: Option<Value>,
    binding: Option<(bool, String)>,
    /// The profile's own invariants (those of the base definitions are the base pass's).
    constraints: Vec<Constraint>,
    slicing: Option<Slicing>,
    children: Vec<usize>,
    slices: Vec<usize>,
}

impl Profile {
    pub fn compile(definition: &Value) -> Result<Profile, String> {
        let url = definition
            .get("url")
            .and_then(Value::as_str)
            .ok_or("no url")?
            .to_owned();
        let type_name = definition
            .get("type")
            .and_then(Value::as_str)
            .ok_or("no type")?
            .to_owned();
        let elements = definition
            .pointer("/snapshot/element")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or("no snapshot (only profiles with a snapshot can be used)")?;
        let base_keys = &base().rules.base_keys;
        let mut nodes: Vec<Node> = Vec::with_capacity(elements.len());
        let mut by_id: HashMap<String, usize> = HashMap::with_capacity(elements.len());
        for (i, e) in elements.iter().enumerate() {
            let path = e.get("path").and_then(Value::as_str).ok_or("element without path")?;
            let id = e.get("id").and_then(Value::as_str).unwrap_or(path).to_owned();
            let node = compile_node(e, path, base_keys)?;
            let index = nodes.len();
            if i > 0 {
                let (parent, last) = id
                    .rsplit_once('.')
                    .ok_or_else(|| format!("element {id} outside the root"))?;
                match last.split_once(':') {
                    Some((name, _)) => {
                        let sliced = format!("{parent}.{name}");
                        // A re-slice (`a:b/c`) is attached to the element it slices.
                        let target = match last.rsplit_once('/') {
                            Some((outer, _)) => format!("{parent}.{outer}"),
                            None => sliced,
                        };
                        let &t = by_id
                            .get(&target)
                            .ok_or_else(|| format!("slice {id} before its element"))?;
                        nodes[t].slices.push(index);
                    }
                    None => {
                        let &p = by_id
                            .get(parent)
                            .ok_or_else(|| format!("element {id} before its parent"))?;
                        nodes[p].children.push(index);
                    }
                }
            }
            by_id.insert(id, index);
            nodes.push(node);
        }
        // R4 lets a profile constrain one type of a choice (`value[x]:valueQuantity`)
        // without declaring the slicing: that is slicing by type.
        for n in &mut nodes {
            if n.slicing.is_none() && n.name.ends_with("[x]") && !n.slices.is_empty() {
                n.slicing = Some(Slicing {
                    discriminators: vec![(Discriminator::Type, "$this".to_owned())],
                    closed: false,
                });
            }
        }
        Ok(Profile {
            version: definition.get("version").and_then(Value::as_str).map(str::to_owned),
            url,
            type_name,
            nodes,
        })
    }

    pub fn validate(&self, registry: &Registry, resource: &Value, sink: &mut Sink) {
        let rt = resource.get("resourceType").and_then(Value::as_str).unwrap_or("");
        if rt != self.type_name {
            sink.push(
                Severity::Error,
                "processing",
                None,
                format!("profile {} applies to {}, not {rt}", self.url, self.type_name),
            );
            return;
        }
        let mut cx = Cx {
            nodes: &self.nodes,
            registry,
            resource,
            sink,
        };
        let mut path = vec![Seg { name: rt, index: None }];
        cx.item(0, resource, rt, &mut path);
    }
}

/// The base pass checks the base definition's bindings wherever the element occurs; a
/// snapshot that repeats one unchanged (often with `|4.0.1` added to the value set) must
/// not report the same code twice. Bindings of choice elements are the profile pass's.
fn base_binding_repeated(e: &Value, required: bool, value_set: &str) -> bool {
    let unversioned = |u: &str| u.split('|').next().unwrap_or(u).to_owned();
    let Some((owner, name)) = e
        .pointer("/base/path")
        .and_then(Value::as_str)
        .and_then(|p| p.rsplit_once('.'))
    else {
        return false;
    };
    let rules = &base().rules;
    let Some(i) = rules.struct_named(owner) else {
        return false;
    };
    rules.structs[i]
        .elements
        .iter()
        .find(|el| el.name == name && matches!(el.kind, crate::rules::Kind::Single(_)))
        .and_then(|el| el.binding.as_ref())
        .is_some_and(|b| b.required == required && unversioned(&b.value_set) == unversioned(value_set))
}

fn compile_node(e: &Value, path: &str, base_keys: &std::collections::HashSet<String>) -> Result<Node, String> {
    let last = path.rsplit('.').next().unwrap_or(path);
    let max = match e.get("max").and_then(Value::as_str) {
        None | Some("*") => None,
        Some(m) => Some(m.parse::<u64>().map_err(|_| format!("{path}: bad max {m}"))?),
    };
    let types: Vec<String> = arr(e.get("type"))
        .iter()
        .filter_map(|t| t.get("code").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let type_profile = arr(e.get("type"))
        .first()
        .and_then(|t| arr(t.get("profile")).first())
        .and_then(Value::as_str)
        .map(str::to_owned);
    let target_profiles = arr(e.get("type"))
        .iter()
        .filter(|t| t.get("code").and_then(Value::as_str) == Some("Reference"))
        .flat_map(|t| arr(t.get("targetProfile")))
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let mut fixed = None;
    let mut pattern = None;
    if let Value::Object(obj) = e {
        for (k, v) in obj {
            if k.starts_with("fixed") {
                fixed = Some(v.clone());
            } else if k.starts_with("pattern") {
                pattern = Some(v.clone());
            }
        }
    }
    let binding = e
        .get("binding")
        .and_then(|b| {
            let strength = b.get("strength").and_then(Value::as_str)?;
            let vs = b.get("valueSet").and_then(Value::as_str)?;
            matches!(strength, "required" | "extensible").then(|| (strength == "required", vs.to_owned()))
        })
        .filter(|(required, vs)| !base_binding_repeated(e, *required, vs));
    let constraints = arr(e.get("constraint"))
        .iter()
        .filter_map(|c| {
            let key = c.get("key")?.as_str()?;
            let expression = c.get("expression")?.as_str()?;
            if base_keys.contains(key) {
                return None;
            }
            Some(Constraint::new(
                key.to_owned(),
                c.get("severity").and_then(Value::as_str) != Some("warning"),
                c.get("human").and_then(Value::as_str).unwrap_or("").to_owned(),
                expression.to_owned(),
            ))
        })
        .collect();
    let slicing = match e.get("slicing") {
        None => None,
        Some(s) => {
            let mut discriminators = Vec::new();
            for d in arr(s.get("discriminator")) {
                let kind = match d.get("type").and_then(Value::as_str) {
                    Some("value") => Discriminator::Value,
                    Some("pattern") => Discriminator::Pattern,
                    Some("exists") => Discriminator::Exists,
                    Some("type") => Discriminator::Type,
                    other => return Err(format!("{path}: slicing by {} is not supported", other.unwrap_or("?"))),
                };
                let p = d.get("path").and_then(Value::as_str).unwrap_or("$this").to_owned();
                discriminators.push((kind, p));
            }
            Some(Slicing {
                discriminators,
                closed: s.get("rules").and_then(Value::as_str) == Some("closed"),
            })
        }
    };
    Ok(Node {
        name: last.to_owned(),
        ext_key: format!("_{last}"),
        slice_name: e.get("sliceName").and_then(Value::as_str).map(str::to_owned),
        min: e.get("min").and_then(Value::as_u64).unwrap_or(0),
        max,
        types,
        type_profile,
        target_profiles,
        fixed,
        pattern,
        binding,
        constraints,
        slicing,
        children: Vec::new(),
        slices: Vec::new(),
    })
}

fn arr(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// One value of an element in the instance.
struct Item<'a> {
    key: &'a str,
    index: Option<usize>,
    value: &'a Value,
    /// For a choice element, the type the key's suffix names.
    type_name: Option<&'static str>,
}

struct Cx<'a, 's> {
    nodes: &'a [Node],
    registry: &'a Registry,
    resource: &'a Value,
    sink: &'s mut Sink,
}

impl<'a> Cx<'a, '_> {
    /// Checks one value against the element definition `ni`; `path` ends at the value.
    fn item(&mut self, ni: usize, value: &'a Value, type_name: &str, path: &mut Vec<Seg<'a>>) {
        let nodes = self.nodes;
        let n = &nodes[ni];
        if let Some(f) = &n.fixed
            && !json::equal(f, value)
        {
            self.sink.at(
                Severity::Error,
                "value",
                path,
                format!("the value must be exactly {f}, found {value}"),
            );
        }
        if let Some(p) = &n.pattern
            && !json::contains(p, value)
        {
            self.sink.at(
                Severity::Error,
                "value",
                path,
                format!("the value must contain {p}, found {value}"),
            );
        }
        if let Some((required, vs)) = &n.binding {
            check_binding(self.registry, *required, vs, value, type_name, path, self.sink, true);
        }
        if !n.target_profiles.is_empty()
            && let Some(target) = value
                .get("reference")
                .and_then(Value::as_str)
                .and_then(carnet_fhirpath::reference_type)
        {
            self.check_target(n, target, path);
        }
        for c in &n.constraints {
            self.sink
                .invariant(c, (self.resource, self.resource), value, type_name, path);
        }
        if let Value::Object(obj) = value {
            for &ci in &n.children {
                self.element(ci, obj, path);
            }
        }
    }

    fn element(&mut self, ci: usize, obj: &'a Map<String, Value>, path: &mut Vec<Seg<'a>>) {
        let nodes = self.nodes;
        let c = &nodes[ci];
        let items = gather(c, obj);
        let base_name = c.name.strip_suffix("[x]").unwrap_or(&c.name);
        let count = items.len() as u64;
        if count < c.min {
            path.push(Seg {
                name: base_name,
                index: None,
            });
            self.sink.at(
                Severity::Error,
                "required",
                path,
                format!("minimum required = {}, found {count}", c.min),
            );
            path.pop();
        }
        if let Some(max) = c.max
            && count > max
        {
            let key = items.first().map_or(base_name, |i| i.key);
            path.push(Seg { name: key, index: None });
            self.sink.at(
                Severity::Error,
                "structure",
                path,
                format!("maximum allowed = {max}, found {count}"),
            );
            path.pop();
        }
        let mut per_slice = vec![0u64; c.slices.len()];
        for it in &items {
            path.push(Seg {
                name: it.key,
                index: it.index,
            });
            let type_name = it
                .type_name
                .unwrap_or_else(|| c.types.first().map_or("Element", String::as_str));
            if let Some(t) = it.type_name
                && !c.types.is_empty()
                && !c.types.iter().any(|a| a == t)
            {
                // Named as the choice element and the type (`Observation.value.ofType(Period)`),
                // as validators report a type refused by a profile.
                let mut at = crate::render(&path[..path.len() - 1]);
                at.push_str(&format!(".{base_name}.ofType({t})"));
                self.sink.push(
                    Severity::Error,
                    "structure",
                    Some(at),
                    format!("type {t} is not allowed here (allowed: {})", c.types.join(", ")),
                );
            }
            let mut target = ci;
            if let Some(slicing) = &c.slicing {
                match c.slices.iter().position(|&s| self.matches(slicing, s, it)) {
                    Some(k) => {
                        per_slice[k] += 1;
                        target = c.slices[k];
                    }
                    None if slicing.closed => self.sink.at(
                        Severity::Error,
                        "structure",
                        path,
                        "the value matches no slice, and the slicing is closed".to_owned(),
                    ),
                    None => {}
                }
            }
            self.item(target, it.value, type_name, path);
            path.pop();
        }
        for (k, &si) in c.slices.iter().enumerate() {
            let s = &nodes[si];
            let name = s.slice_name.as_deref().unwrap_or("?");
            let found = per_slice[k];
            let problem = if found < s.min {
                Some((
                    "required",
                    format!("slice '{name}': minimum required = {}, found {found}", s.min),
                ))
            } else if s.max.is_some_and(|m| found > m) {
                Some((
                    "structure",
                    format!(
                        "slice '{name}': maximum allowed = {}, found {found}",
                        s.max.unwrap_or(0)
                    ),
                ))
            } else {
                None
            };
            if let Some((code, msg)) = problem {
                path.push(Seg {
                    name: base_name,
                    index: None,
                });
                self.sink.at(Severity::Error, code, path, msg);
                path.pop();
            }
        }
    }

    /// A literal reference (`Group/1`) must name a type one of the target profiles is on;
    /// references whose type cannot be read (`#id`, `urn:uuid:`) or profiles the registry
    /// does not hold are not judged.
    fn check_target(&mut self, n: &Node, target: &str, path: &[Seg<'_>]) {
        let mut allowed: Vec<&str> = Vec::with_capacity(n.target_profiles.len());
        for url in &n.target_profiles {
            let t = match url.strip_prefix(CORE) {
                Some(t) if !t.contains('/') && carnet_fhirpath::types::resource_type(t).is_some() => t,
                _ => match self.registry.profile(url) {
                    Some(p) => p.type_name.as_str(),
                    None => return,
                },
            };
            if t == target
                || t == "Resource"
                || (t == "DomainResource" && !matches!(target, "Bundle" | "Binary" | "Parameters"))
            {
                return;
            }
            allowed.push(t);
        }
        self.sink.at(
            Severity::Error,
            "structure",
            path,
            format!("the reference points to a {target}; allowed: {}", allowed.join(", ")),
        );
    }

    /// Whether an instance value belongs to slice `si`: every discriminator agrees.
    fn matches(&self, slicing: &Slicing, si: usize, it: &Item<'_>) -> bool {
        let slice = &self.nodes[si];
        slicing.discriminators.iter().all(|(kind, p)| {
            if *kind == Discriminator::Type {
                return it.type_name.is_some_and(|t| slice.types.iter().any(|a| a == t))
                    || (it.type_name.is_none() && slice.types.len() == 1);
            }
            let targets = self.descend(si, p);
            let mut found: Vec<&Value> = Vec::new();
            select(it.value, p, &mut found);
            match kind {
                Discriminator::Exists => {
                    let must = targets.iter().any(|&t| self.nodes[t].min > 0);
                    let never = !targets.is_empty() && targets.iter().all(|&t| self.nodes[t].max == Some(0));
                    if must {
                        !found.is_empty()
                    } else if never {
                        found.is_empty()
                    } else {
                        true
                    }
                }
                _ => {
                    let mut expected: Vec<Value> = targets
                        .iter()
                        .filter_map(|&t| {
                            let n = &self.nodes[t];
                            n.fixed.clone().or_else(|| n.pattern.clone())
                        })
                        .collect();
                    // An extension slice names its URL through the extension's profile.
                    if expected.is_empty()
                        && p == "url"
                        && slice.types.iter().any(|t| t == "Extension")
                        && let Some(u) = &slice.type_profile
                    {
                        expected.push(Value::String(u.clone()));
                    }
                    expected
                        .iter()
                        .any(|want| found.iter().any(|v| json::contains(want, v)))
                }
            }
        })
    }

    /// The element definitions at `path` below node `ni` (`$this` is the node itself).
    /// Where the path crosses a sliced element, its slices are followed too: the values a
    /// discriminator names often sit in nested slices (`code.coding:SBPCode.code`).
    fn descend(&self, ni: usize, path: &str) -> Vec<usize> {
        let mut at = vec![ni];
        for seg in path.split('.').filter(|s| *s != "$this") {
            let mut next = Vec::new();
            for &n in &at {
                for &c in &self.nodes[n].children {
                    let node = &self.nodes[c];
                    if node.name == seg || node.name.strip_suffix("[x]") == Some(seg) {
                        next.push(c);
                        next.extend(node.slices.iter().copied());
                    }
                }
            }
            at = next;
        }
        at
    }
}

/// The values of element `c` in `obj`, with their keys and indexes.
fn gather<'a>(c: &Node, obj: &'a Map<String, Value>) -> Vec<Item<'a>> {
    let mut out = Vec::new();
    if let Some(base) = c.name.strip_suffix("[x]") {
        for (k, v) in obj {
            if let Some(t) = k.strip_prefix(base).and_then(choice_suffix_type) {
                out.push(Item {
                    key: k,
                    index: None,
                    value: v,
                    type_name: Some(t),
                });
            }
        }
        return out;
    }
    let Some((key, v)) = obj.get_key_value(c.name.as_str()) else {
        // A primitive present only through its extensions (`_birthDate`).
        if let Some((key, v)) = obj.get_key_value(c.ext_key.as_str()) {
            let n = v.as_array().map_or(1, Vec::len);
            for i in 0..n {
                out.push(Item {
                    key,
                    index: v.is_array().then_some(i),
                    value: &Value::Null,
                    type_name: None,
                });
            }
        }
        return out;
    };
    match v {
        Value::Array(items) => out.extend(items.iter().enumerate().map(|(i, value)| Item {
            key,
            index: Some(i),
            value,
            type_name: None,
        })),
        value => out.push(Item {
            key,
            index: None,
            value,
            type_name: None,
        }),
    }
    out
}

/// The values at a discriminator path (`coding.code`, `$this`), arrays flattened.
fn select<'a>(v: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    let mut current: Vec<&'a Value> = vec![v];
    for seg in path.split('.').filter(|s| *s != "$this") {
        let mut next = Vec::new();
        for c in current {
            match c.get(seg) {
                Some(Value::Array(a)) => next.extend(a.iter()),
                Some(x) => next.push(x),
                None => {}
            }
        }
        current = next;
    }
    out.extend(current);
}
