//! Value set expansion over the CodeSystems and ValueSets the registry holds, and code
//! validation (`ValueSet/$expand`, `$validate-code`).

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

/// Why a value set could not be expanded or a code not checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TerminologyError {
    #[error("unknown value set {0}")]
    UnknownValueSet(String),
    #[error("unknown code system {0}")]
    UnknownCodeSystem(String),
    /// A code system held without its concepts (`content` other than complete), an
    /// unsupported filter, an include without system or value set...
    #[error("not supported: {0}")]
    NotSupported(String),
}

/// One code of an expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concept {
    pub system: String,
    pub version: Option<String>,
    pub code: String,
    pub display: Option<String>,
}

impl Concept {
    pub fn to_json(&self) -> Value {
        let mut v = json!({"system": self.system, "code": self.code});
        if let Some(obj) = v.as_object_mut() {
            if let Some(ver) = &self.version {
                obj.insert("version".to_owned(), json!(ver));
            }
            if let Some(d) = &self.display {
                obj.insert("display".to_owned(), json!(d));
            }
        }
        v
    }
}

/// A page of an expansion: `total` counts the concepts that passed the text filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    pub url: Option<String>,
    pub version: Option<String>,
    pub total: usize,
    pub offset: usize,
    pub contains: Vec<Concept>,
}

impl Expansion {
    /// The ValueSet resource `$expand` answers with; `value_set` is the definition
    /// (its compose is kept), `timestamp` the expansion time (a FHIR dateTime).
    pub fn to_value_set(&self, value_set: &Value, timestamp: &str) -> Value {
        let mut vs = value_set.clone();
        let contains: Vec<Value> = self.contains.iter().map(Concept::to_json).collect();
        let mut expansion = json!({
            "timestamp": timestamp,
            "total": self.total,
            "offset": self.offset,
        });
        if let Some(obj) = expansion.as_object_mut()
            && !contains.is_empty()
        {
            obj.insert("contains".to_owned(), Value::Array(contains));
        }
        if let Some(obj) = vs.as_object_mut() {
            obj.insert("expansion".to_owned(), expansion);
        } else {
            vs = json!({"resourceType": "ValueSet", "expansion": expansion});
        }
        vs
    }
}

/// A code to validate: code with optional system, version and display (one Coding).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coded<'a> {
    pub system: Option<&'a str>,
    pub version: Option<&'a str>,
    pub code: &'a str,
    pub display: Option<&'a str>,
}

impl<'a> Coded<'a> {
    /// From a Coding (`None` without code).
    pub fn from_coding(coding: &'a Value) -> Option<Coded<'a>> {
        Some(Coded {
            system: coding.get("system").and_then(Value::as_str),
            version: coding.get("version").and_then(Value::as_str),
            code: coding.get("code")?.as_str()?,
            display: coding.get("display").and_then(Value::as_str),
        })
    }

    /// The codings of a CodeableConcept that carry a code.
    pub fn from_codeable_concept(cc: &'a Value) -> Vec<Coded<'a>> {
        cc.get("coding")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Coded::from_coding).collect())
            .unwrap_or_default()
    }
}

/// The `$validate-code` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeValidation {
    pub result: bool,
    /// The display the code system (or value set) gives the code found.
    pub display: Option<String>,
    /// Why the result is false, or a note (a display that differs) when it is true.
    pub message: Option<String>,
}

impl CodeValidation {
    /// The `Parameters` resource `$validate-code` answers with.
    pub fn to_parameters(&self) -> Value {
        let mut params = vec![json!({"name": "result", "valueBoolean": self.result})];
        if let Some(m) = &self.message {
            params.push(json!({"name": "message", "valueString": m}));
        }
        if let Some(d) = &self.display {
            params.push(json!({"name": "display", "valueString": d}));
        }
        json!({"resourceType": "Parameters", "parameter": params})
    }
}

/// A full expansion with an index by code, cached by the registry.
#[derive(Debug)]
pub(crate) struct Expanded {
    pub concepts: Vec<Concept>,
    by_code: HashMap<String, Vec<usize>>,
}

impl Expanded {
    fn new(concepts: Vec<Concept>) -> Self {
        let mut by_code: HashMap<String, Vec<usize>> = HashMap::with_capacity(concepts.len());
        for (i, c) in concepts.iter().enumerate() {
            by_code.entry(c.code.clone()).or_default().push(i);
        }
        Expanded { concepts, by_code }
    }

    /// The concept with this code (and system, when given).
    pub fn find(&self, system: Option<&str>, code: &str) -> Option<&Concept> {
        self.by_code
            .get(code)?
            .iter()
            .map(|&i| &self.concepts[i])
            .find(|c| system.is_none_or(|s| s == c.system))
    }

    pub fn page(
        &self,
        url: Option<&str>,
        version: Option<&str>,
        filter: Option<&str>,
        offset: usize,
        count: Option<usize>,
    ) -> Expansion {
        let needle = filter.map(str::to_lowercase).filter(|f| !f.is_empty());
        let matches = |c: &&Concept| {
            needle.as_ref().is_none_or(|n| {
                c.code.to_lowercase().contains(n.as_str())
                    || c.display
                        .as_ref()
                        .is_some_and(|d| d.to_lowercase().contains(n.as_str()))
            })
        };
        let total = self.concepts.iter().filter(matches).count();
        let contains = self
            .concepts
            .iter()
            .filter(matches)
            .skip(offset)
            .take(count.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Expansion {
            url: url.map(str::to_owned),
            version: version.map(str::to_owned),
            total,
            offset,
            contains,
        }
    }
}

/// What expansion needs from the registry.
pub(crate) trait Source {
    fn code_system(&self, url: &str) -> Option<&Value>;
    /// The cached expansion of another value set (for `valueSet` imports).
    fn expansion_of(&self, url: &str) -> Result<std::sync::Arc<Expanded>, TerminologyError>;
}

pub(crate) fn expand(src: &dyn Source, vs: &Value) -> Result<Expanded, TerminologyError> {
    let Some(compose) = vs.get("compose") else {
        // A value set given with its expansion only.
        if let Some(contains) = vs.pointer("/expansion/contains").and_then(Value::as_array) {
            let mut out = Vec::new();
            flatten_contains(contains, &mut out);
            return Ok(Expanded::new(out));
        }
        return Err(TerminologyError::NotSupported(format!(
            "value set {} has neither compose nor expansion",
            url_of(vs)
        )));
    };
    let mut out: Vec<Concept> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for inc in arr(compose.get("include")) {
        for c in part(src, inc)? {
            if seen.insert((c.system.clone(), c.code.clone())) {
                out.push(c);
            }
        }
    }
    let mut excluded: HashSet<(String, String)> = HashSet::new();
    for exc in arr(compose.get("exclude")) {
        for c in part(src, exc)? {
            excluded.insert((c.system, c.code));
        }
    }
    if !excluded.is_empty() {
        out.retain(|c| !excluded.contains(&(c.system.clone(), c.code.clone())));
    }
    Ok(Expanded::new(out))
}

fn flatten_contains(items: &[Value], out: &mut Vec<Concept>) {
    for c in items {
        if let (Some(system), Some(code)) = (
            c.get("system").and_then(Value::as_str),
            c.get("code").and_then(Value::as_str),
        ) {
            out.push(Concept {
                system: system.to_owned(),
                version: c.get("version").and_then(Value::as_str).map(str::to_owned),
                code: code.to_owned(),
                display: c.get("display").and_then(Value::as_str).map(str::to_owned),
            });
        }
        flatten_contains(arr(c.get("contains")), out);
    }
}

/// The concepts one `include`/`exclude` selects.
fn part(src: &dyn Source, inc: &Value) -> Result<Vec<Concept>, TerminologyError> {
    let imports = arr(inc.get("valueSet"))
        .iter()
        .filter_map(Value::as_str)
        .map(|u| src.expansion_of(u))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(system) = inc.get("system").and_then(Value::as_str) else {
        // Only imports: their intersection.
        let Some((first, rest)) = imports.split_first() else {
            return Err(TerminologyError::NotSupported(
                "an include with neither system nor valueSet".to_owned(),
            ));
        };
        return Ok(first
            .concepts
            .iter()
            .filter(|c| rest.iter().all(|e| e.find(Some(&c.system), &c.code).is_some()))
            .cloned()
            .collect());
    };
    let version = inc.get("version").and_then(Value::as_str).map(str::to_owned);
    let cs = src.code_system(system);
    let mut concepts = if let Some(list) = inc.get("concept").and_then(Value::as_array) {
        if inc.get("filter").is_some() {
            return Err(TerminologyError::NotSupported(format!(
                "include of {system} with both concepts and filters"
            )));
        }
        list.iter()
            .filter_map(|c| {
                let code = c.get("code")?.as_str()?;
                let display = c.get("display").and_then(Value::as_str).map(str::to_owned).or_else(|| {
                    cs.and_then(|cs| find_concept(arr(cs.get("concept")), code))
                        .and_then(display_of)
                });
                Some(Concept {
                    system: system.to_owned(),
                    version: version.clone(),
                    code: code.to_owned(),
                    display,
                })
            })
            .collect()
    } else {
        let cs = cs.ok_or_else(|| TerminologyError::UnknownCodeSystem(system.to_owned()))?;
        let content = cs.get("content").and_then(Value::as_str).unwrap_or("complete");
        if content != "complete" {
            return Err(TerminologyError::NotSupported(format!(
                "code system {system} is held with content '{content}', not its concepts"
            )));
        }
        let roots = arr(cs.get("concept"));
        let filters = arr(inc.get("filter"));
        let mut selected: Option<Vec<&Value>> = None;
        for f in filters {
            let property = f.get("property").and_then(Value::as_str).unwrap_or("");
            let op = f.get("op").and_then(Value::as_str).unwrap_or("");
            let value = f.get("value").and_then(Value::as_str).unwrap_or("");
            if property != "concept" || !matches!(op, "is-a" | "descendent-of") {
                return Err(TerminologyError::NotSupported(format!(
                    "filter {property} {op} {value} on {system}"
                )));
            }
            let Some(top) = find_concept(roots, value) else {
                return Err(TerminologyError::NotSupported(format!(
                    "filter on unknown code {system}#{value}"
                )));
            };
            let mut found = Vec::new();
            if op == "is-a" {
                found.push(top);
            }
            collect(arr(top.get("concept")), &mut found);
            selected = Some(match selected {
                None => found,
                Some(prev) => prev
                    .into_iter()
                    .filter(|c| found.iter().any(|f| std::ptr::eq(*f, *c)))
                    .collect(),
            });
        }
        let chosen = selected.unwrap_or_else(|| {
            let mut all = Vec::new();
            collect(roots, &mut all);
            all
        });
        chosen
            .into_iter()
            .filter_map(|c| {
                Some(Concept {
                    system: system.to_owned(),
                    version: version.clone(),
                    code: c.get("code")?.as_str()?.to_owned(),
                    display: display_of(c),
                })
            })
            .collect::<Vec<_>>()
    };
    if !imports.is_empty() {
        concepts.retain(|c| imports.iter().all(|e| e.find(Some(&c.system), &c.code).is_some()));
    }
    Ok(concepts)
}

fn display_of(c: &Value) -> Option<String> {
    c.get("display").and_then(Value::as_str).map(str::to_owned)
}

fn collect<'a>(concepts: &'a [Value], out: &mut Vec<&'a Value>) {
    for c in concepts {
        out.push(c);
        collect(arr(c.get("concept")), out);
    }
}

pub(crate) fn find_concept<'a>(concepts: &'a [Value], code: &str) -> Option<&'a Value> {
    for c in concepts {
        if c.get("code").and_then(Value::as_str) == Some(code) {
            return Some(c);
        }
        if let Some(found) = find_concept(arr(c.get("concept")), code) {
            return Some(found);
        }
    }
    None
}

pub(crate) fn arr(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

pub(crate) fn url_of(v: &Value) -> &str {
    v.get("url").and_then(Value::as_str).unwrap_or("(no url)")
}

/// Checks codings against an expansion: true when one is found (with the right display
/// if one was given, else a note in `message`).
pub(crate) fn validate_in(exp: &Expanded, what: &str, codings: &[Coded<'_>]) -> CodeValidation {
    if codings.is_empty() {
        return CodeValidation {
            result: false,
            display: None,
            message: Some("no code to validate".to_owned()),
        };
    }
    for c in codings {
        if let Some(found) = exp.find(c.system, c.code) {
            let message = match (c.display, &found.display) {
                (Some(given), Some(known)) if given != known => Some(format!(
                    "the display '{given}' differs from the display of {}#{}: '{known}'",
                    found.system, found.code
                )),
                _ => None,
            };
            return CodeValidation {
                result: true,
                display: found.display.clone(),
                message,
            };
        }
    }
    let shown: Vec<String> = codings
        .iter()
        .map(|c| format!("{}#{}", c.system.unwrap_or(""), c.code))
        .collect();
    CodeValidation {
        result: false,
        display: None,
        message: Some(format!("{} not found in {what}", shown.join(", "))),
    }
}
