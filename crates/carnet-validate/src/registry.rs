//! The conformance resources the server holds: the base R4 CodeSystems and ValueSets
//! (built in) and the StructureDefinitions, ValueSets and CodeSystems added at start-up.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::profile::Profile;
use crate::rules::{Lazy, base};
use crate::terminology::{self, CodeValidation, Coded, Expanded, Expansion, Source, TerminologyError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("the registry holds StructureDefinitions, ValueSets and CodeSystems, not {0}")]
    UnsupportedType(String),
    #[error("a {0} without url")]
    MissingUrl(&'static str),
    #[error("StructureDefinition {url}: {reason}")]
    InvalidProfile { url: String, reason: String },
}

type Cached = Arc<Result<Arc<Expanded>, TerminologyError>>;

pub struct Registry {
    /// Added resources by URL, each with its versions (newest added last).
    structure_definitions: HashMap<String, Vec<Arc<Profile>>>,
    value_sets: HashMap<String, Vec<Value>>,
    code_systems: HashMap<String, Vec<Value>>,
    base_value_sets: &'static HashMap<&'static str, &'static Lazy>,
    base_code_systems: &'static HashMap<&'static str, &'static Lazy>,
    /// Expansions by value set URL, dropped whenever a resource is added.
    cache: RwLock<HashMap<String, Cached>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

fn base_index(list: &'static [Lazy]) -> HashMap<&'static str, &'static Lazy> {
    list.iter().map(|v| (v.url, v)).collect()
}

impl Registry {
    /// A registry holding the base R4 CodeSystems and ValueSets.
    pub fn new() -> Self {
        static VS: std::sync::OnceLock<HashMap<&'static str, &'static Lazy>> = std::sync::OnceLock::new();
        static CS: std::sync::OnceLock<HashMap<&'static str, &'static Lazy>> = std::sync::OnceLock::new();
        Registry {
            structure_definitions: HashMap::new(),
            value_sets: HashMap::new(),
            code_systems: HashMap::new(),
            base_value_sets: VS.get_or_init(|| base_index(&base().value_sets)),
            base_code_systems: CS.get_or_init(|| base_index(&base().code_systems)),
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Adds a StructureDefinition (with snapshot), ValueSet or CodeSystem. A resource with
    /// the URL and version of one already held replaces it.
    pub fn add(&mut self, r: Value) -> Result<(), RegistryError> {
        let rt = r.get("resourceType").and_then(Value::as_str).unwrap_or("").to_owned();
        let (url, version) = match (
            r.get("url").and_then(Value::as_str),
            r.get("version").and_then(Value::as_str),
        ) {
            (Some(u), v) => (u.to_owned(), v.map(str::to_owned)),
            (None, _) => {
                return Err(match rt.as_str() {
                    "StructureDefinition" => RegistryError::MissingUrl("StructureDefinition"),
                    "ValueSet" => RegistryError::MissingUrl("ValueSet"),
                    "CodeSystem" => RegistryError::MissingUrl("CodeSystem"),
                    _ => RegistryError::UnsupportedType(rt),
                });
            }
        };
        let same_version = |v: &Value| v.get("version").and_then(Value::as_str) == version.as_deref();
        match rt.as_str() {
            "StructureDefinition" => {
                let p = Profile::compile(&r).map_err(|reason| RegistryError::InvalidProfile {
                    url: url.clone(),
                    reason,
                })?;
                let list = self.structure_definitions.entry(url).or_default();
                list.retain(|p| p.version != version);
                list.push(Arc::new(p));
            }
            "ValueSet" => {
                let list = self.value_sets.entry(url).or_default();
                list.retain(|v| !same_version(v));
                list.push(r);
            }
            "CodeSystem" => {
                let list = self.code_systems.entry(url).or_default();
                list.retain(|v| !same_version(v));
                list.push(r);
            }
            _ => return Err(RegistryError::UnsupportedType(rt)),
        }
        if let Ok(mut c) = self.cache.write() {
            c.clear();
        }
        Ok(())
    }

    /// Whether a StructureDefinition was added with this canonical URL (`url` or
    /// `url|version`). The base R4 definitions are compiled into the rules, not held.
    pub fn has_structure_definition(&self, url: &str) -> bool {
        self.profile(url).is_some()
    }

    pub(crate) fn profile(&self, url: &str) -> Option<&Arc<Profile>> {
        let (u, v) = split(url);
        pick(self.structure_definitions.get(u)?, v, |p| p.version.as_deref())
    }

    /// A ValueSet (added, else base R4) by canonical URL, optionally `|version`.
    pub fn value_set(&self, url: &str) -> Option<&Value> {
        let (u, v) = split(url);
        if let Some(found) = self.value_sets.get(u).and_then(|l| pick(l, v, version_of)) {
            return Some(found);
        }
        self.base_value_sets
            .get(u)
            .filter(|vs| v.is_none_or(|v| vs.version == Some(v)))
            .map(|vs| vs.get())
    }

    /// A CodeSystem (added, else base R4) by canonical URL, optionally `|version`.
    pub fn code_system(&self, url: &str) -> Option<&Value> {
        let (u, v) = split(url);
        if let Some(found) = self.code_systems.get(u).and_then(|l| pick(l, v, version_of)) {
            return Some(found);
        }
        self.base_code_systems
            .get(u)
            .filter(|cs| v.is_none_or(|v| cs.version == Some(v)))
            .map(|cs| cs.get())
    }

    /// The full expansion of a held value set, computed once.
    pub(crate) fn expanded(&self, url: &str) -> Result<Arc<Expanded>, TerminologyError> {
        if let Ok(c) = self.cache.read()
            && let Some(hit) = c.get(url)
        {
            return (**hit).clone();
        }
        let result = self.expand_uncached(url);
        if let Ok(mut c) = self.cache.write() {
            c.insert(url.to_owned(), Arc::new(result.clone()));
        }
        result
    }

    fn expand_uncached(&self, url: &str) -> Result<Arc<Expanded>, TerminologyError> {
        thread_local! {
            static EXPANDING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
        }
        let vs = self
            .value_set(url)
            .ok_or_else(|| TerminologyError::UnknownValueSet(url.to_owned()))?;
        if EXPANDING.with(|s| s.borrow().iter().any(|u| u == url)) {
            return Err(TerminologyError::NotSupported(format!(
                "value set {url} imports itself"
            )));
        }
        EXPANDING.with(|s| s.borrow_mut().push(url.to_owned()));
        let result = terminology::expand(self, vs).map(Arc::new);
        EXPANDING.with(|s| s.borrow_mut().pop());
        result
    }

    /// `ValueSet/$expand` of a held value set: `filter` keeps codes or displays containing
    /// the text (case-insensitive); `offset`/`count` page the result.
    pub fn expand(
        &self,
        url: &str,
        filter: Option<&str>,
        offset: usize,
        count: Option<usize>,
    ) -> Result<Expansion, TerminologyError> {
        let exp = self.expanded(url)?;
        let vs = self.value_set(url);
        let version = vs.and_then(|v| v.get("version")).and_then(Value::as_str);
        Ok(exp.page(Some(split(url).0), version, filter, offset, count))
    }

    /// `$expand` of a ValueSet given in full (an instance read from the store, or the
    /// `valueSet` parameter); its imports and code systems come from the registry.
    pub fn expand_resource(
        &self,
        value_set: &Value,
        filter: Option<&str>,
        offset: usize,
        count: Option<usize>,
    ) -> Result<Expansion, TerminologyError> {
        let exp = terminology::expand(self, value_set)?;
        let url = value_set.get("url").and_then(Value::as_str);
        let version = value_set.get("version").and_then(Value::as_str);
        Ok(exp.page(url, version, filter, offset, count))
    }

    /// `ValueSet/$validate-code`: is one of `codings` (one for code+system or a Coding,
    /// several for a CodeableConcept) in the value set?
    pub fn validate_code_in_value_set(
        &self,
        value_set_url: &str,
        codings: &[Coded<'_>],
    ) -> Result<CodeValidation, TerminologyError> {
        let exp = self.expanded(value_set_url)?;
        Ok(terminology::validate_in(
            &exp,
            &format!("value set {value_set_url}"),
            codings,
        ))
    }

    /// `CodeSystem/$validate-code`: is the code defined by the code system? Codings of
    /// other systems are ignored (a CodeableConcept passes when one of its codings is).
    pub fn validate_code_in_code_system(
        &self,
        system_url: &str,
        codings: &[Coded<'_>],
    ) -> Result<CodeValidation, TerminologyError> {
        let cs = self
            .code_system(system_url)
            .ok_or_else(|| TerminologyError::UnknownCodeSystem(system_url.to_owned()))?;
        let content = cs.get("content").and_then(Value::as_str).unwrap_or("complete");
        if content != "complete" {
            return Err(TerminologyError::NotSupported(format!(
                "code system {system_url} is held with content '{content}'"
            )));
        }
        let base_url = split(system_url).0;
        let mine: Vec<Coded<'_>> = codings
            .iter()
            .filter(|c| c.system.is_none_or(|s| s == base_url))
            .copied()
            .collect();
        let concepts = terminology::arr(cs.get("concept"));
        for c in &mine {
            if let Some(found) = terminology::find_concept(concepts, c.code) {
                let known = found.get("display").and_then(Value::as_str);
                let message = match (c.display, known) {
                    (Some(given), Some(k)) if given != k => Some(format!(
                        "the display '{given}' differs from the display of {}: '{k}'",
                        c.code
                    )),
                    _ => None,
                };
                return Ok(CodeValidation {
                    result: true,
                    display: known.map(str::to_owned),
                    message,
                });
            }
        }
        let shown: Vec<&str> = codings.iter().map(|c| c.code).collect();
        Ok(CodeValidation {
            result: false,
            display: None,
            message: Some(format!(
                "{} not found in code system {system_url}",
                if shown.is_empty() {
                    "no code".to_owned()
                } else {
                    shown.join(", ")
                }
            )),
        })
    }
}

impl Source for Registry {
    fn code_system(&self, url: &str) -> Option<&Value> {
        Registry::code_system(self, url)
    }
    fn expansion_of(&self, url: &str) -> Result<Arc<Expanded>, TerminologyError> {
        self.expanded(url)
    }
}

fn split(url: &str) -> (&str, Option<&str>) {
    match url.split_once('|') {
        Some((u, v)) => (u, Some(v)),
        None => (url, None),
    }
}

/// The entry with `version`, or the last added when no version is asked for.
fn pick<'a, T>(list: &'a [T], version: Option<&str>, version_of: impl Fn(&T) -> Option<&str>) -> Option<&'a T> {
    match version {
        None => list.last(),
        Some(v) => list.iter().rev().find(|x| version_of(x) == Some(v)),
    }
}

fn version_of(r: &Value) -> Option<&str> {
    r.get("version").and_then(Value::as_str)
}
