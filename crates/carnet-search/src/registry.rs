//! The search parameters of every R4 resource type, compiled once from
//! `conformance/search-parameters.json`.

use std::collections::HashMap;
use std::sync::OnceLock;

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
    pub expression_text: Option<String>,
    /// Resource types a reference parameter may point to.
    pub targets: Vec<String>,
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

/// What the registry reads of a SearchParameter (serde skips the rest).
#[derive(serde::Deserialize)]
struct Def {
    id: Option<String>,
    url: Option<String>,
    code: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    expression: Option<String>,
    #[serde(default)]
    base: Vec<String>,
    #[serde(default)]
    target: Vec<String>,
    #[serde(default)]
    component: Vec<DefComponent>,
}

#[derive(serde::Deserialize)]
struct DefComponent {
    definition: Option<String>,
    expression: Option<String>,
}

#[derive(serde::Deserialize)]
struct DefBundle {
    #[serde(default)]
    entry: Vec<DefEntry>,
}

#[derive(serde::Deserialize)]
struct DefEntry {
    resource: Option<Def>,
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
        Ok(reg)
    }

    fn add(&mut self, def: &Def, by_url: &HashMap<&str, &Def>) -> Result<(), RegistryError> {
        let id = def.id.clone().unwrap_or_default();
        let bad = |message: String| RegistryError::Definition {
            id: id.clone(),
            message,
        };
        let code = def.code.clone().ok_or_else(|| bad("no code".into()))?;
        let param_type = def
            .kind
            .as_deref()
            .and_then(ParamType::parse)
            .ok_or_else(|| bad("missing or unknown type".into()))?;
        let expression_text = def.expression.clone();
        let expression = match &expression_text {
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
                    code: target.and_then(|t| t.code.clone()),
                    param_type,
                    expression,
                }),
                _ => supported = false,
            }
        }
        let targets = &def.target;
        let url = def.url.clone().unwrap_or_default();
        for base in &def.base {
            let base = base.as_str();
            let abstract_base = base == "Resource" || base == "DomainResource";
            let expression = match (&expression, abstract_base) {
                (Some(e), false) => specialize(e, base),
                (e, _) => e.clone(),
            };
            let targets = match expression.as_ref().and_then(resolved_types) {
                Some(only) => targets.iter().filter(|t| only.contains(&t.as_str())).cloned().collect(),
                None => targets.clone(),
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

    pub fn params_for(&self, resource_type: &str) -> impl Iterator<Item = &SearchParam> {
        self.by_type
            .get(resource_type)
            .into_iter()
            .flat_map(|t| t.order.iter())
            .filter_map(|&i| self.params.get(i))
    }

    /// All parameter definitions (one per base type).
    pub fn all(&self) -> &[SearchParam] {
        &self.params
    }
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
