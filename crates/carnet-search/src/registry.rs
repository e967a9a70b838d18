//! The search parameters of every R4 resource type, compiled once from
//! `conformance/search-parameters.json`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use carnet_fhirpath::{BinaryOp, Expr, Function, types::RESOURCE_TYPES};

use crate::modifier::ModifierKind;

const R4_DEFINITIONS: &str = include_str!("../../../conformance/search-parameters.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl ParamType {
    pub fn parse(code: &str) -> Option<ParamType> {
        Some(match code {
            "number" => ParamType::Number,
            "date" => ParamType::Date,
            "string" => ParamType::String,
            "token" => ParamType::Token,
            "reference" => ParamType::Reference,
            "composite" => ParamType::Composite,
            "quantity" => ParamType::Quantity,
            "uri" => ParamType::Uri,
            "special" => ParamType::Special,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Number => "number",
            ParamType::Date => "date",
            ParamType::String => "string",
            ParamType::Token => "token",
            ParamType::Reference => "reference",
            ParamType::Composite => "composite",
            ParamType::Quantity => "quantity",
            ParamType::Uri => "uri",
            ParamType::Special => "special",
        }
    }

    /// Whether values take the `eq ne gt lt ge le sa eb ap` prefixes.
    pub fn takes_prefix(self) -> bool {
        matches!(self, ParamType::Number | ParamType::Date | ParamType::Quantity)
    }
}

/// One part of a composite parameter.
#[derive(Debug, Clone)]
pub struct Component {
    /// Canonical URL of the parameter that defines this part's type.
    pub definition: String,
    pub code: Option<String>,
    pub param_type: ParamType,
    /// Relative to each element the composite's own expression selects.
    pub expression: Expr,
}

/// A search parameter as it applies to one resource type.
#[derive(Debug, Clone)]
pub struct SearchParam {
    pub code: String,
    pub url: String,
    pub param_type: ParamType,
    /// Restricted to the branches that can match this resource type.
    pub expression: Option<Expr>,
    /// Shared by the parameter's copies for each base type (the clinical ones are long
    /// unions repeated on ~30 types).
    pub expression_text: Option<Arc<str>>,
    /// Resource types a reference parameter may point to; shared by the copies for each
    /// base type unless narrowed for one.
    pub targets: Arc<[String]>,
    pub components: Vec<Component>,
    /// False when the server cannot extract or evaluate it (`_text`, `_content`,
    /// `_query`, `near`, composites with unresolvable parts).
    pub supported: bool,
}

impl SearchParam {
    pub fn modifiers(&self) -> &'static [ModifierKind] {
        crate::modifier::allowed(self.param_type)
    }
}

#[derive(Debug, Default)]
struct TypeParams {
    order: Vec<usize>,
    by_code: HashMap<String, usize>,
    /// Parameters stored as the rows of others ([`Registry::stored_as`]).
    unions: HashMap<String, Union>,
    /// `order` less the unions: the parameters whose values are extracted.
    extracted: Vec<usize>,
}

/// A parameter whose values are the rows of others.
#[derive(Debug)]
struct Union {
    parts: Vec<String>,
    /// The type the parts' references must point to ([`Registry::restricted_to`]).
    only: Option<String>,
}

#[derive(Debug)]
pub struct Registry {
    params: Vec<SearchParam>,
    by_type: HashMap<String, TypeParams>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("search parameter definitions are not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("search parameter {id}: {message}")]
    Definition { id: String, message: String },
}

/// Concrete resource types (not the abstract `Resource` / `DomainResource`).
pub fn resource_types() -> impl Iterator<Item = &'static str> {
    RESOURCE_TYPES
        .iter()
        .copied()
        .filter(|t| !matches!(*t, "Resource" | "DomainResource"))
}

pub fn is_resource_type(name: &str) -> bool {
    !matches!(name, "Resource" | "DomainResource") && carnet_fhirpath::types::resource_type(name).is_some()
}

/// What the registry reads of a SearchParameter (serde skips the rest), borrowed from
/// the text where it has no escapes: only what is kept is copied, so building the R4
/// registry no longer peaks at twice its size (a process keeps that memory).
#[derive(serde::Deserialize)]
struct Def<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    expression: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    base: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    target: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    component: Vec<DefComponent<'a>>,
}

#[derive(serde::Deserialize)]
struct DefComponent<'a> {
    #[serde(borrow)]
    definition: Option<Cow<'a, str>>,
    #[serde(borrow)]
    expression: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct DefBundle<'a> {
    #[serde(default, borrow)]
    entry: Vec<DefEntry<'a>>,
}

#[derive(serde::Deserialize)]
struct DefEntry<'a> {
    #[serde(borrow)]
    resource: Option<Def<'a>>,
}

impl Registry {
    /// The R4 registry compiled into the binary, built on first use.
    pub fn r4() -> &'static Registry {
        static R4: OnceLock<Registry> = OnceLock::new();
        R4.get_or_init(|| match Registry::from_json(R4_DEFINITIONS) {
            Ok(r) => r,
            // The file is ours and checked by tests; an empty registry beats a panic.
            Err(_) => Registry {
                params: Vec::new(),
                by_type: HashMap::new(),
            },
        })
    }

    /// Builds a registry from a Bundle (or JSON array) of SearchParameter resources.
    ///
    /// Only the elements a search needs are read (into [`Def`]): parsed whole, the R4
    /// definitions made a ~15 MB tree of which the process kept the memory.
    pub fn from_json(text: &str) -> Result<Registry, RegistryError> {
        let defs: Vec<Def> = if text.trim_start().starts_with('[') {
            serde_json::from_str(text)?
        } else {
            let bundle: DefBundle = serde_json::from_str(text)?;
            bundle.entry.into_iter().filter_map(|e| e.resource).collect()
        };
        let by_url: HashMap<&str, &Def> = defs.iter().filter_map(|d| Some((d.url.as_deref()?, d))).collect();
        let mut reg = Registry {
            params: Vec::new(),
            by_type: HashMap::new(),
        };
        for def in &defs {
            reg.add(def, &by_url)?;
        }
        reg.find_unions();
        Ok(reg)
    }

    /// Finds, on each type, the parameters whose expression is the union of other
    /// parameters' expressions (of the same type and components): R4's
    /// `Observation.combo-code` is `code | component.code`, the `code` and
    /// `component-code` parameters. Their values are exactly those of their parts, so
    /// they are not extracted and stored again: a search reads their parts' rows. On
    /// Synthea-style data that is a third of the token rows and half the quantity rows.
    fn find_unions(&mut self) {
        for entry in self.by_type.values_mut() {
            let params: Vec<&SearchParam> = entry.order.iter().filter_map(|&i| self.params.get(i)).collect();
            let branches: Vec<Vec<&Expr>> = params
                .iter()
                .map(|p| match (&p.expression, p.supported) {
                    (Some(e), true) if p.param_type != ParamType::Special => union_branches(e),
                    _ => Vec::new(),
                })
                .collect();
            // Fewest branches first, so that a part that is itself a union is known
            // before the parameters made of it.
            let mut by_size: Vec<usize> = (0..params.len()).filter(|&i| branches[i].len() > 1).collect();
            by_size.sort_by_key(|&i| branches[i].len());
            for i in by_size {
                let (parts, only) = match partition(i, &params, &branches) {
                    Some(parts) => (parts, None),
                    None => match restricted_partition(i, &params, &branches) {
                        Some((parts, t)) => (parts, Some(t)),
                        None => continue,
                    },
                };
                // A part that is itself a union is read as its parts, unless either
                // is restricted: a union carries one restriction at most, so it then
                // keeps rows of its own.
                let stored = parts.iter().try_fold(Vec::new(), |mut stored, &part| {
                    let code = &params[part].code;
                    match entry.unions.get(code) {
                        None => stored.push(code.clone()),
                        Some(inner) if only.is_none() && inner.only.is_none() => {
                            stored.extend(inner.parts.iter().cloned())
                        }
                        Some(_) => return None,
                    }
                    Some(stored)
                });
                if let Some(parts) = stored {
                    entry.unions.insert(params[i].code.clone(), Union { parts, only });
                }
            }
            let unions = &entry.unions;
            entry.extracted = entry
                .order
                .iter()
                .copied()
                .filter(|&i| self.params.get(i).is_some_and(|p| !unions.contains_key(&p.code)))
                .collect();
        }
    }

    fn add(&mut self, def: &Def<'_>, by_url: &HashMap<&str, &Def<'_>>) -> Result<(), RegistryError> {
        let id = def.id.as_deref().unwrap_or_default().to_owned();
        let bad = |message: String| RegistryError::Definition {
            id: id.clone(),
            message,
        };
        let code = def
            .code
            .as_deref()
            .map(str::to_owned)
            .ok_or_else(|| bad("no code".into()))?;
        let param_type = def
            .kind
            .as_deref()
            .and_then(ParamType::parse)
            .ok_or_else(|| bad("missing or unknown type".into()))?;
        let expression_text: Option<Arc<str>> = def.expression.as_deref().map(Arc::from);
        let expression = match expression_text.as_deref() {
            Some(e) => Some(carnet_fhirpath::parse(e).map_err(|e| bad(e.to_string()))?),
            None => None,
        };
        let mut components = Vec::new();
        let mut supported = expression.is_some() && param_type != ParamType::Special;
        for comp in &def.component {
            let definition = comp.definition.as_deref().unwrap_or_default();
            let target = by_url.get(definition);
            let part_type = target.and_then(|t| t.kind.as_deref()).and_then(ParamType::parse);
            let expr = comp
                .expression
                .as_deref()
                .map(carnet_fhirpath::parse)
                .transpose()
                .map_err(|e| bad(e.to_string()))?;
            match (part_type, expr) {
                (Some(param_type), Some(expression)) => components.push(Component {
                    definition: definition.to_owned(),
                    code: target.and_then(|t| t.code.as_deref()).map(str::to_owned),
                    param_type,
                    expression,
                }),
                _ => supported = false,
            }
        }
        let all_targets: Arc<[String]> = def.target.iter().map(|t| t.to_string()).collect();
        let url = def.url.as_deref().unwrap_or_default().to_owned();
        for base in &def.base {
            let base: &str = base;
            let abstract_base = base == "Resource" || base == "DomainResource";
            let expression = match (&expression, abstract_base) {
                (Some(e), false) => specialize(e, base),
                (e, _) => e.clone(),
            };
            let targets = match expression.as_ref().and_then(resolved_types) {
                Some(only) if !all_targets.iter().all(|t| only.contains(&t.as_str())) => all_targets
                    .iter()
                    .filter(|t| only.contains(&t.as_str()))
                    .cloned()
                    .collect(),
                _ => all_targets.clone(),
            };
            let param = SearchParam {
                code: code.clone(),
                url: url.clone(),
                param_type,
                expression,
                expression_text: expression_text.clone(),
                targets,
                components: components.clone(),
                supported,
            };
            let idx = self.params.len();
            self.params.push(param);
            if abstract_base {
                let applies: Vec<&str> = resource_types()
                    .filter(|t| base == "Resource" || carnet_fhirpath::types::is_a(t, "DomainResource"))
                    .chain(std::iter::once("Resource"))
                    .collect();
                for t in applies {
                    self.index(t, &code, idx);
                }
            } else {
                self.index(base, &code, idx);
            }
        }
        Ok(())
    }

    fn index(&mut self, resource_type: &str, code: &str, idx: usize) {
        let entry = self.by_type.entry(resource_type.to_owned()).or_default();
        if !entry.by_code.contains_key(code) {
            entry.order.push(idx);
            entry.by_code.insert(code.to_owned(), idx);
        }
    }

    /// `resource_type` may be `"Resource"` for the parameters every type has.
    pub fn param(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        let t = self.by_type.get(resource_type)?;
        t.by_code.get(code).and_then(|&i| self.params.get(i))
    }

    /// The parameters whose index rows hold the values of `code` on `resource_type`:
    /// `None` when it has rows of its own, its parts when it is the union of others
    /// (`combo-code` on Observation: `code` and `component-code`).
    pub fn stored_as(&self, resource_type: &str, code: &str) -> Option<&[String]> {
        self.by_type
            .get(resource_type)?
            .unions
            .get(code)
            .map(|u| u.parts.as_slice())
    }

    /// The type a union's parts must reference for their rows to be its own:
    /// AuditEvent's `patient` is `agent.who.where(resolve() is Patient) |
    /// entity.what.where(resolve() is Patient)`, the rows of `agent` and `entity` that
    /// point to a Patient.
    pub fn restricted_to(&self, resource_type: &str, code: &str) -> Option<&str> {
        self.by_type.get(resource_type)?.unions.get(code)?.only.as_deref()
    }

    /// The parameters of `resource_type` whose values a write extracts and stores:
    /// all but the unions of others ([`Registry::stored_as`]).
    pub fn extracted_for(&self, resource_type: &str) -> impl Iterator<Item = &SearchParam> {
        self.listed(resource_type, |t| &t.extracted)
    }

    pub fn params_for(&self, resource_type: &str) -> impl Iterator<Item = &SearchParam> {
        self.listed(resource_type, |t| &t.order)
    }

    /// The parameters of `resource_type` in one of its lists.
    fn listed(&self, resource_type: &str, list: fn(&TypeParams) -> &Vec<usize>) -> impl Iterator<Item = &SearchParam> {
        self.by_type
            .get(resource_type)
            .into_iter()
            .flat_map(move |t| list(t).iter())
            .filter_map(|&i| self.params.get(i))
    }

    /// All parameter definitions (one per base type).
    pub fn all(&self) -> &[SearchParam] {
        &self.params
    }
}

/// The branches of a top-level union (`a | b | c`), or the expression itself.
fn union_branches(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::Binary(BinaryOp::Union, a, b) => {
            let mut out = union_branches(a);
            out.extend(union_branches(b));
            out
        }
        e => vec![e],
    }
}

/// Other parameters of the same kind whose branches, together and without overlap,
/// are exactly the branches of parameter `i`.
fn partition(i: usize, params: &[&SearchParam], branches: &[Vec<&Expr>]) -> Option<Vec<usize>> {
    let whole = &branches[i];
    let p = params[i];
    let mut candidates: Vec<usize> = (0..params.len())
        .filter(|&j| {
            let q = params[j];
            j != i
                && !branches[j].is_empty()
                && branches[j].len() < whole.len()
                && q.param_type == p.param_type
                && same_targets(q, p)
                && same_components(q, p)
                && branches[j].iter().all(|b| whole.contains(b))
        })
        .collect();
    candidates.sort_by_key(|&j| std::cmp::Reverse(branches[j].len()));
    let mut covered: Vec<&Expr> = Vec::new();
    let mut parts = Vec::new();
    for j in candidates {
        if branches[j].iter().any(|b| covered.contains(b)) {
            continue;
        }
        covered.extend(branches[j].iter().copied());
        parts.push(j);
    }
    (parts.len() > 1 && covered.len() == whole.len()).then_some(parts)
}

/// Reference parameters whose whole expressions, each narrowed by the same
/// `.where(resolve() is T)`, are exactly the branches of parameter `i`; and `T`.
fn restricted_partition(i: usize, params: &[&SearchParam], branches: &[Vec<&Expr>]) -> Option<(Vec<usize>, String)> {
    let p = params[i];
    if p.param_type != ParamType::Reference {
        return None;
    }
    let mut narrowed: Vec<(&Expr, &str)> = Vec::new();
    for b in &branches[i] {
        narrowed.push(resolved_as(b)?);
    }
    let t = narrowed.first()?.1;
    if narrowed.iter().any(|(_, u)| *u != t) {
        return None;
    }
    let mut parts = Vec::new();
    for (inner, _) in &narrowed {
        let j = (0..params.len()).find(|&j| {
            let q = params[j];
            j != i
                && q.supported
                && q.param_type == ParamType::Reference
                && q.components.is_empty()
                && q.expression.as_ref() == Some(*inner)
                && (q.targets.iter().any(|x| x == t) || q.targets.is_empty())
        })?;
        if parts.contains(&j) {
            return None;
        }
        parts.push(j);
    }
    (parts.len() > 1).then(|| (parts, t.to_string()))
}

/// `x.where(resolve() is T)` as `x` and `T`.
fn resolved_as(expr: &Expr) -> Option<(&Expr, &str)> {
    match expr {
        Expr::Call(inner, Function::Where(crit)) => match &**crit {
            Expr::Is(r, t) if matches!(&**r, Expr::Call(_, Function::Resolve)) => Some((&**inner, t.name.as_str())),
            _ => None,
        },
        _ => None,
    }
}

fn same_targets(a: &SearchParam, b: &SearchParam) -> bool {
    let mut x = a.targets.to_vec();
    let mut y = b.targets.to_vec();
    x.sort();
    y.sort();
    x == y
}

fn same_components(a: &SearchParam, b: &SearchParam) -> bool {
    a.components.len() == b.components.len()
        && a.components
            .iter()
            .zip(&b.components)
            .all(|(x, y)| x.param_type == y.param_type && x.expression == y.expression)
}

/// Drops union branches rooted at another resource type, so a parameter shared by 30
/// types (`clinical-patient`) evaluates one branch on each write, not 30.
fn specialize(expr: &Expr, resource_type: &str) -> Option<Expr> {
    match expr {
        Expr::Binary(BinaryOp::Union, a, b) => match (specialize(a, resource_type), specialize(b, resource_type)) {
            (Some(a), Some(b)) => Some(Expr::Binary(BinaryOp::Union, Box::new(a), Box::new(b))),
            (one, other) => one.or(other),
        },
        e => match root_type(e) {
            Some(t) if t != resource_type && t != "Resource" && t != "DomainResource" => None,
            _ => Some(e.clone()),
        },
    }
}

/// The types named by `where(resolve() is T)` when every union branch ends with one:
/// R4 lists `Patient` and `Group` as targets of `patient`, but its expression only
/// keeps references to Patients, so `patient=123` must mean `Patient/123`.
fn resolved_types(expr: &Expr) -> Option<Vec<&str>> {
    match expr {
        Expr::Binary(BinaryOp::Union, a, b) => {
            let mut types = resolved_types(a)?;
            types.extend(resolved_types(b)?);
            Some(types)
        }
        Expr::Call(_, Function::Where(crit)) => match &**crit {
            Expr::Is(inner, t) if matches!(&**inner, Expr::Call(_, Function::Resolve)) => Some(vec![t.name.as_str()]),
            _ => None,
        },
        _ => None,
    }
}

/// The resource type a path starts with (`Observation` in `(Observation.value as X)`).
fn root_type(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Member(inner, name) if **inner == Expr::This => name
            .starts_with(|c: char| c.is_ascii_uppercase())
            .then_some(name.as_str()),
        Expr::Member(inner, _)
        | Expr::Index(inner, _)
        | Expr::Call(inner, _)
        | Expr::As(inner, _)
        | Expr::Is(inner, _) => root_type(inner),
        Expr::Binary(_, a, _) => root_type(a),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    /// The unions found in the R4 definitions: Observation's six `combo-*` parameters
    /// (each the union of a parameter on the Observation and one on its components),
    /// AuditEvent's `patient` (its `agent` and `entity` that reference a Patient), and
    /// nothing else.
    #[test]
    fn r4_unions_are_the_observation_combos_and_the_audit_patient() {
        let r = super::Registry::r4();
        let mut found: Vec<String> = Vec::new();
        for t in super::resource_types() {
            for p in r.params_for(t) {
                if let Some(parts) = r.stored_as(t, &p.code) {
                    found.push(format!("{t}.{} = {}", p.code, parts.join(" | ")));
                }
            }
        }
        found.sort();
        assert_eq!(
            found,
            [
                "AuditEvent.patient = agent | entity",
                "Observation.combo-code = code | component-code",
                "Observation.combo-code-value-concept = code-value-concept | component-code-value-concept",
                "Observation.combo-code-value-quantity = code-value-quantity | component-code-value-quantity",
                "Observation.combo-data-absent-reason = component-data-absent-reason | data-absent-reason",
                "Observation.combo-value-concept = component-value-concept | value-concept",
                "Observation.combo-value-quantity = component-value-quantity | value-quantity",
            ]
        );
        assert!(r.extracted_for("Observation").all(|p| !p.code.starts_with("combo-")));
        assert!(r.extracted_for("Observation").any(|p| p.code == "component-code"));
        assert_eq!(r.restricted_to("AuditEvent", "patient"), Some("Patient"));
        assert_eq!(r.restricted_to("Observation", "combo-code"), None);
        assert!(r.extracted_for("AuditEvent").all(|p| p.code != "patient"));
    }

    /// A restricted union needs every branch narrowed to the same type, each the whole
    /// expression of another reference parameter.
    #[test]
    fn a_restricted_union_needs_one_type_and_whole_parts() {
        let defs = serde_json::json!([
            {"id": "a", "url": "u:a", "code": "a", "type": "reference", "base": ["AuditEvent"], "expression": "AuditEvent.agent.who", "target": ["Patient", "Device"]},
            {"id": "e", "url": "u:e", "code": "e", "type": "reference", "base": ["AuditEvent"], "expression": "AuditEvent.entity.what", "target": ["Patient", "Observation"]},
            {"id": "p", "url": "u:p", "code": "p", "type": "reference", "base": ["AuditEvent"], "target": ["Patient"],
             "expression": "AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.entity.what.where(resolve() is Patient)"},
            {"id": "m", "url": "u:m", "code": "m", "type": "reference", "base": ["AuditEvent"], "target": ["Patient", "Device"],
             "expression": "AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.entity.what.where(resolve() is Device)"},
            {"id": "n", "url": "u:n", "code": "n", "type": "reference", "base": ["AuditEvent"], "target": ["Patient"],
             "expression": "AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.source.observer.where(resolve() is Patient)"}
        ]);
        let r = super::Registry::from_json(&defs.to_string()).expect("definitions");
        assert_eq!(
            r.stored_as("AuditEvent", "p"),
            Some(&["a".to_string(), "e".to_string()][..])
        );
        assert_eq!(r.restricted_to("AuditEvent", "p"), Some("Patient"));
        assert_eq!(r.stored_as("AuditEvent", "m"), None);
        assert_eq!(r.stored_as("AuditEvent", "n"), None);
        assert!(r.extracted_for("AuditEvent").any(|p| p.code == "m"));
    }

    /// A union is found only when its parts cover every branch, without overlap, with
    /// the same components: one branch short is no union.
    #[test]
    fn a_partial_cover_is_no_union() {
        let defs = serde_json::json!([
            {"id": "a", "url": "u:a", "code": "a", "type": "token", "base": ["Observation"], "expression": "Observation.code"},
            {"id": "b", "url": "u:b", "code": "b", "type": "token", "base": ["Observation"], "expression": "Observation.category"},
            {"id": "ab", "url": "u:ab", "code": "ab", "type": "token", "base": ["Observation"], "expression": "Observation.code | Observation.category"},
            {"id": "abc", "url": "u:abc", "code": "abc", "type": "token", "base": ["Observation"], "expression": "Observation.code | Observation.category | Observation.method"},
            {"id": "s", "url": "u:s", "code": "s", "type": "string", "base": ["Observation"], "expression": "Observation.code"}
        ]);
        let r = super::Registry::from_json(&defs.to_string()).expect("definitions");
        assert_eq!(
            r.stored_as("Observation", "ab"),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        assert_eq!(r.stored_as("Observation", "abc"), None);
        assert_eq!(r.stored_as("Observation", "a"), None);
    }
}
