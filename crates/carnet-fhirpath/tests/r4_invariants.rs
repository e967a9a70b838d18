//! Every invariant of the R4 core definitions compiles, and every base-resource and
//! datatype invariant holds on every official R4 example (the package is fetched by
//! scripts/fetch-fhir-packages.sh; `CARNET_FHIR_EXAMPLES` names its `package` dir).
// Test support: panicking on a missing package or bad JSON is the right failure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use carnet_fhirpath::{Focus, Invariant};
use serde_json::Value;

fn package_dir() -> PathBuf {
    let dir = std::env::var_os("CARNET_FHIR_EXAMPLES").expect(
        "CARNET_FHIR_EXAMPLES must name the hl7.fhir.r4.examples package dir (scripts/test.sh sets it; \
         scripts/fetch-fhir-packages.sh fetches it)",
    );
    PathBuf::from(dir)
}

fn load(prefix: &str) -> Vec<(String, Value)> {
    let dir = package_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "package.json" && !n.starts_with('.') && n.starts_with(prefix))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(&n)).expect("read");
            let v: Value = serde_json::from_str(&text).expect("json");
            (n, v)
        })
        .collect()
}

/// Core definitions: the resources, datatypes and primitives themselves (including the
/// abstract bases Element, Resource...), not profiles or logical models.
fn is_core(sd: &Value) -> bool {
    let kind = sd["kind"].as_str().unwrap_or("");
    let derivation = sd["derivation"].as_str();
    matches!(kind, "resource" | "complex-type" | "primitive-type") && derivation.is_none_or(|d| d == "specialization")
}

fn constraints(sd: &Value) -> impl Iterator<Item = (&str, &str)> {
    sd["snapshot"]["element"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["constraint"].as_array().into_iter().flatten())
        .filter_map(|c| Some((c["key"].as_str()?, c["expression"].as_str()?)))
}

#[test]
fn every_core_and_profile_constraint_compiles() {
    let sds = load("StructureDefinition-");
    let (mut core, mut core_sds, mut profile) = (0, 0, 0);
    let mut failures = Vec::new();
    for (name, sd) in &sds {
        let is_core = is_core(sd);
        core_sds += usize::from(is_core);
        for (key, expr) in constraints(sd) {
            if is_core {
                core += 1;
            } else {
                profile += 1;
            }
            if let Err(e) = Invariant::compile(expr) {
                failures.push(format!("{name} {key}: {e}: {expr}"));
            }
        }
    }
    println!("{core_sds} core definitions, {core} core constraints, {profile} in other definitions");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // 147 resources, 40 complex types, 20 primitives and the bases Element and
    // Resource; every snapshot repeats inherited constraints (ele-1 on every element).
    assert_eq!(core_sds, 209);
    assert_eq!(core, 8924);
    assert_eq!(profile, 5826);
}

/// One element of a snapshot, as the walker needs it.
struct Elem {
    types: Vec<String>,
    content_ref: Option<String>,
    constraints: Vec<(String, String)>,
}

/// Keys of `warning` constraints (best practice, e.g. dom-6 "should have a
/// narrative"): a `false` there is advice, not invalidity.
type Warnings = std::collections::HashSet<String>;

struct Defs {
    /// type name -> (element path -> element)
    types: HashMap<String, HashMap<String, Elem>>,
    compiled: HashMap<String, Invariant>,
    warnings: Warnings,
    /// Keys of the core definitions' constraints (a profile walk checks only the others).
    core_keys: Warnings,
}

fn type_code(t: &Value) -> String {
    let code = t["code"].as_str().unwrap_or("");
    // Element.id and the like: FHIRPath System types in the R4 snapshots.
    match code.strip_prefix("http://hl7.org/fhirpath/System.") {
        Some("String") => "string".into(),
        Some(other) => other.to_ascii_lowercase(),
        None => code.to_owned(),
    }
}

fn defs() -> Defs {
    let mut types = HashMap::new();
    let mut compiled = HashMap::new();
    let mut warnings = Warnings::new();
    let mut core_keys = Warnings::new();
    for (_, sd) in load("StructureDefinition-") {
        let core = is_core(&sd);
        // Profiles on resources are keyed by their URL; logical models are skipped.
        let profile = sd["derivation"] == "constraint" && sd["kind"] == "resource";
        if !core && !profile {
            continue;
        }
        let mut elems = HashMap::new();
        for e in sd["snapshot"]["element"].as_array().into_iter().flatten() {
            if e.get("sliceName").is_some() {
                continue;
            }
            let path = e["path"].as_str().unwrap().to_owned();
            let constraints: Vec<(String, String)> = e["constraint"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    if c["severity"] == "warning" {
                        warnings.insert(c["key"].as_str()?.to_owned());
                    }
                    Some((c["key"].as_str()?.to_owned(), c["expression"].as_str()?.to_owned()))
                })
                .collect();
            for (key, expr) in &constraints {
                if core {
                    core_keys.insert(key.clone());
                }
                compiled
                    .entry(expr.clone())
                    .or_insert_with(|| Invariant::compile(expr).unwrap());
            }
            elems.insert(
                path,
                Elem {
                    types: e["type"].as_array().into_iter().flatten().map(type_code).collect(),
                    content_ref: e["contentReference"]
                        .as_str()
                        .map(|r| r.trim_start_matches('#').to_owned()),
                    constraints,
                },
            );
        }
        let name = if core { &sd["type"] } else { &sd["url"] };
        types.insert(name.as_str().unwrap().to_owned(), elems);
    }
    Defs {
        types,
        compiled,
        warnings,
        core_keys,
    }
}

#[derive(Default)]
struct Tally {
    evaluations: usize,
    /// Evaluations whose result was empty (satisfied, but not by a `true`).
    empty: usize,
    by_key: BTreeMap<String, usize>,
    /// (file, key, element path) of every `false`.
    failures: Vec<(String, String, String)>,
    errors: Vec<String>,
    empty_by_key: BTreeMap<String, usize>,
    ele1_compared: usize,
    unknown_elements: BTreeMap<String, usize>,
}

struct Walker<'d> {
    defs: &'d Defs,
    /// Walking with a profile: only constraints the profile adds are checked.
    profile_only: bool,
    file: String,
    tally: Tally,
}

/// Where an element is: the resource around it and its definition.
#[derive(Clone, Copy)]
struct At<'v> {
    root: &'v Value,
    resource: &'v Value,
}

fn is_primitive(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_lowercase())
}

impl Walker<'_> {
    fn check(
        &mut self,
        at: At<'_>,
        value: &Value,
        ext: Option<&Value>,
        ty: &str,
        path: &str,
        cons: &[(String, String)],
    ) {
        for (key, expr) in cons {
            if self.profile_only && self.defs.core_keys.contains(key) {
                continue;
            }
            let inv = &self.defs.compiled[expr];
            let focus = Focus {
                root: at.root,
                resource: at.resource,
                value,
                primitive_ext: ext,
                type_name: ty,
            };
            self.tally.evaluations += 1;
            *self.tally.by_key.entry(key.clone()).or_default() += 1;
            let result = inv.evaluate(&focus);
            if key == "ele-1" && self.tally.evaluations.is_multiple_of(7) {
                // A sample of ele-1 results through the general evaluator too.
                let general = inv.clone().without_shortcuts().evaluate(&focus);
                assert_eq!(result, general, "{} ele-1 at {path}", self.file);
                self.tally.ele1_compared += 1;
            }
            match result {
                Ok(Some(true)) => {}
                Ok(None) => {
                    self.tally.empty += 1;
                    *self.tally.empty_by_key.entry(key.clone()).or_default() += 1;
                }
                Ok(Some(false)) => self
                    .tally
                    .failures
                    .push((self.file.clone(), key.clone(), path.to_owned())),
                Err(e) => self
                    .tally
                    .errors
                    .push(format!("{} {key} at {path}: {e} [{expr}]", self.file)),
            }
        }
    }

    fn resource(&mut self, root: &Value, res: &Value, path: &str) {
        let Some(rt) = res["resourceType"].as_str() else { return };
        let at = At { root, resource: res };
        let Some(elems) = self.defs.types.get(rt) else {
            *self.tally.unknown_elements.entry(rt.to_owned()).or_default() += 1;
            return;
        };
        if let Some(e) = elems.get(rt) {
            self.check(at, res, None, rt, path, &e.constraints);
        }
        self.children(at, rt, rt, res, path);
    }

    /// Walks the properties of a complex value whose definition is `def_path` in the
    /// definitions of `def_type`.
    fn children(&mut self, at: At<'_>, def_type: &str, def_path: &str, obj: &Value, path: &str) {
        let Some(map) = obj.as_object() else { return };
        for (key, v) in map {
            if key == "resourceType" {
                continue;
            }
            let (name, is_ext) = match key.strip_prefix('_') {
                Some(k) => (k, true),
                None => (key.as_str(), false),
            };
            if is_ext && map.contains_key(name) {
                continue;
            }
            let Some((elem_path, ty)) = self.find(def_type, def_path, name) else {
                *self
                    .tally
                    .unknown_elements
                    .entry(format!("{def_path}.{name}"))
                    .or_default() += 1;
                continue;
            };
            let (value, ext) = if is_ext {
                (None, Some(v))
            } else {
                (Some(v), map.get(&format!("_{name}")))
            };
            let values: Vec<&Value> = match value {
                Some(Value::Array(a)) => a.iter().collect(),
                Some(v) => vec![v],
                None => Vec::new(),
            };
            let exts: Vec<Option<&Value>> = match ext {
                Some(Value::Array(a)) => a.iter().map(|e| Some(e).filter(|e| !e.is_null())).collect(),
                Some(e) => vec![Some(e)],
                None => Vec::new(),
            };
            static NULL: Value = Value::Null;
            for i in 0..values.len().max(exts.len()) {
                let item = values.get(i).copied().unwrap_or(&NULL);
                let item_ext = exts.get(i).copied().flatten();
                let here = format!("{path}.{name}[{i}]");
                self.element(at, def_type, &elem_path, &ty, item, item_ext, &here);
            }
        }
    }

    /// The definition path and concrete type of property `name` under `def_path`.
    fn find(&self, def_type: &str, def_path: &str, name: &str) -> Option<(String, String)> {
        let elems = self.defs.types.get(def_type)?;
        let direct = format!("{def_path}.{name}");
        if let Some(e) = elems.get(&direct) {
            if let Some(r) = &e.content_ref {
                return Some((r.clone(), "BackboneElement".into()));
            }
            let ty = e.types.first().cloned().unwrap_or_else(|| "BackboneElement".into());
            return Some((direct, ty));
        }
        // A choice element: `valueQuantity` is `value[x]` with type Quantity.
        for (p, e) in elems {
            let Some(base) = p.strip_suffix("[x]") else { continue };
            let Some(stem) = base.strip_prefix(def_path).and_then(|b| b.strip_prefix('.')) else {
                continue;
            };
            if stem.contains('.') {
                continue;
            }
            if let Some(suffix) = name.strip_prefix(stem)
                && let Some(t) = e.types.iter().find(|t| {
                    let mut c = t.chars();
                    c.next()
                        .is_some_and(|f| f.to_ascii_uppercase().to_string() + c.as_str() == suffix)
                })
            {
                return Some((p.clone(), t.clone()));
            }
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn element(
        &mut self,
        at: At<'_>,
        def_type: &str,
        elem_path: &str,
        ty: &str,
        value: &Value,
        ext: Option<&Value>,
        path: &str,
    ) {
        let defs = self.defs;
        let elem = &defs.types[def_type][elem_path];
        let backbone = matches!(ty, "BackboneElement" | "Element")
            && defs.types[def_type].keys().any(|k| {
                k.len() > elem_path.len() && k.starts_with(elem_path) && k.as_bytes()[elem_path.len()] == b'.'
            });
        let focus_type = if backbone { elem_path } else { ty };
        let mut keys: Vec<&str> = elem.constraints.iter().map(|(k, _)| k.as_str()).collect();
        self.check(at, value, ext, focus_type, path, &elem.constraints);
        if ty == "Resource" {
            // Contained resources keep their container as %rootResource; resources in
            // a Bundle or Parameters are their own root.
            let root = if elem_path.ends_with(".contained") {
                at.root
            } else {
                value
            };
            self.resource(root, value, path);
            return;
        }
        if backbone {
            self.children(at, def_type, elem_path, value, path);
            return;
        }
        // The type's own invariants (qty-3 on every Quantity...), then its elements.
        if let Some(type_elems) = defs.types.get(ty)
            && let Some(root_elem) = type_elems.get(ty)
        {
            let own: Vec<(String, String)> = root_elem
                .constraints
                .iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .cloned()
                .collect();
            keys.clear();
            self.check(at, value, ext, ty, path, &own);
            if is_primitive(ty) {
                if let Some(e) = ext {
                    self.children(at, "Element", "Element", e, path);
                }
            } else {
                self.children(at, ty, ty, value, path);
            }
        } else {
            *self.tally.unknown_elements.entry(format!("type {ty}")).or_default() += 1;
        }
    }
}

/// (example file, constraint key) pairs that are genuinely invalid per R4, each
/// checked by reading the example.
const KNOWN_INVALID: &[(&str, &str, &str)] = &[
    (
        "Bundle-dataelements.json",
        "bdl-7",
        "the same fullUrl (e.g. .../de-Quantity.value) appears on two entries, neither with a meta.versionId",
    ),
    // The four logical models of the spec's pattern pages: kind logical, abstract
    // false and no baseDefinition, which sdf-4 forbids.
    (
        "StructureDefinition-Definition.json",
        "sdf-4",
        "logical model, abstract false, no baseDefinition",
    ),
    (
        "StructureDefinition-Event.json",
        "sdf-4",
        "logical model, abstract false, no baseDefinition",
    ),
    (
        "StructureDefinition-FiveWs.json",
        "sdf-4",
        "logical model, abstract false, no baseDefinition",
    ),
    (
        "StructureDefinition-Request.json",
        "sdf-4",
        "logical model, abstract false, no baseDefinition",
    ),
];

#[test]
fn every_core_invariant_holds_on_every_official_example() {
    let defs = defs();
    let started = Instant::now();
    let mut walker = Walker {
        defs: &defs,
        profile_only: false,
        file: String::new(),
        tally: Tally::default(),
    };
    let files = load("");
    let mut resources = 0;
    for (name, res) in &files {
        if res.get("resourceType").is_none() {
            continue;
        }
        resources += 1;
        walker.file.clone_from(name);
        let rt = res["resourceType"].as_str().unwrap_or("");
        walker.resource(res, res, rt);
    }
    let t = walker.tally;
    println!(
        "{resources} resources, {} evaluations ({} empty) in {:?}; {} keys, ele-1 {}, ext-1 {}",
        t.evaluations,
        t.empty,
        started.elapsed(),
        t.by_key.len(),
        t.by_key.get("ele-1").copied().unwrap_or(0),
        t.by_key.get("ext-1").copied().unwrap_or(0),
    );
    println!("ele-1: {} results compared with the general evaluator", t.ele1_compared);
    assert!(t.ele1_compared > 300_000);
    let mut empty_keys: Vec<_> = t.empty_by_key.iter().collect();
    empty_keys.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
    println!(
        "empty results by key (top 15): {:?}",
        &empty_keys[..empty_keys.len().min(15)]
    );
    assert!(
        t.unknown_elements.is_empty(),
        "elements without a definition: {:?}",
        t.unknown_elements
    );
    for e in t.errors.iter().take(50) {
        println!("ERROR {e}");
    }
    let mut by_key: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, k, _) in &t.failures {
        *by_key.entry(k.as_str()).or_default() += 1;
    }
    println!("false results by key: {by_key:?}");
    let unexpected: Vec<_> = t
        .failures
        .iter()
        .filter(|(_, k, _)| std::env::var("SHOWALL").is_ok() || !defs.warnings.contains(k))
        .filter(|(f, k, _)| !KNOWN_INVALID.iter().any(|(kf, kk, _)| kf == f && kk == k))
        .collect();
    let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &unexpected {
        let n = shown.entry(f.1.as_str()).or_default();
        *n += 1;
        if *n <= 5 {
            println!("FAIL {} {} at {}", f.0, f.1, f.2);
        }
    }
    assert!(t.errors.is_empty(), "{} evaluation errors", t.errors.len());
    assert!(unexpected.is_empty(), "{} unexpected failures", unexpected.len());
    // Every listed exception still fails (the list is not stale).
    for (f, k, why) in KNOWN_INVALID {
        assert!(
            t.failures.iter().any(|(ff, kk, _)| ff == f && kk == k),
            "{f} {k} no longer fails ({why})"
        );
    }
    assert!(resources > 5000, "{resources}");
}

/// Walks one resource and returns the `false` results as (key, path), plus errors.
fn violations(defs: &Defs, res: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let mut walker = Walker {
        defs,
        profile_only: false,
        file: "case".into(),
        tally: Tally::default(),
    };
    let rt = res["resourceType"].as_str().unwrap();
    walker.resource(res, res, rt);
    let t = walker.tally;
    (t.failures.into_iter().map(|(_, k, p)| (k, p)).collect(), t.errors)
}

/// Deliberately broken resources, each breaking one invariant: the walker reports
/// exactly that key at that element (and nothing else but the dom-6 narrative advice).
#[test]
fn broken_resources_fail_the_invariant_they_break() {
    use serde_json::json;
    let defs = defs();
    let div = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"});
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "pat-1",
            "Patient.contact[0]",
            json!({"resourceType": "Patient", "text": div, "contact": [{"gender": "male"}]}),
        ),
        (
            "obs-6",
            "Observation",
            json!({"resourceType": "Observation", "text": div, "status": "final", "code": {"text": "x"},
                   "valueString": "a", "dataAbsentReason": {"text": "b"}}),
        ),
        (
            "obs-3",
            "Observation.referenceRange[0]",
            json!({"resourceType": "Observation", "text": div, "status": "final", "code": {"text": "x"},
                   "referenceRange": [{"appliesTo": [{"text": "adults"}]}]}),
        ),
        (
            "per-1",
            "Observation.effectivePeriod[0]",
            json!({"resourceType": "Observation", "text": div, "status": "final", "code": {"text": "x"},
                   "effectivePeriod": {"start": "2020-02-01T10:00:00+01:00", "end": "2020-02-01T09:30:00+01:00"}}),
        ),
        (
            "ele-1",
            "Patient.name[0]",
            json!({"resourceType": "Patient", "text": div, "name": [{}]}),
        ),
        (
            "ext-1",
            "Patient.extension[0]",
            json!({"resourceType": "Patient", "text": div, "extension": [{"url": "http://x",
                   "valueString": "a", "extension": [{"url": "y", "valueString": "b"}]}]}),
        ),
        (
            "dom-3",
            "Patient",
            json!({"resourceType": "Patient", "text": div, "contained": [{"resourceType": "Organization", "id": "o1", "name": "x"}]}),
        ),
        (
            // o2, inside o1, is also referenced by nothing in o1.
            "dom-2 dom-3",
            "Patient Patient.contained[0]",
            json!({"resourceType": "Patient", "text": div, "managingOrganization": {"reference": "#o1"},
                   "contained": [{"resourceType": "Organization", "id": "o1", "name": "x",
                                  "contained": [{"resourceType": "Organization", "id": "o2", "name": "y"}]}]}),
        ),
        (
            // txt-1 and txt-2 both read htmlChecks() in R4.
            "txt-1 txt-2",
            "Patient.text[0].div[0]",
            json!({"resourceType": "Patient", "text": {"status": "generated",
                   "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>x()</script></div>"}}),
        ),
        (
            "qty-3",
            "Observation.valueQuantity[0]",
            json!({"resourceType": "Observation", "text": div, "status": "final", "code": {"text": "x"},
                   "valueQuantity": {"value": 1, "code": "mg"}}),
        ),
        (
            "rng-2",
            "Observation.valueRange[0]",
            json!({"resourceType": "Observation", "text": div, "status": "final", "code": {"text": "x"},
                   "valueRange": {"low": {"value": 5, "unit": "mg"}, "high": {"value": 4.5, "unit": "mg"}}}),
        ),
        (
            "ref-1",
            "Observation.subject[0]",
            json!({"resourceType": "Observation", "text": div, "status": "final", "code": {"text": "x"},
                   "subject": {"reference": "#nowhere"}}),
        ),
        (
            "bdl-11",
            "Bundle",
            json!({"resourceType": "Bundle", "type": "document", "timestamp": "2020-01-01T00:00:00Z",
                   "identifier": {"system": "urn:x", "value": "1"},
                   "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "text": div}}]}),
        ),
        (
            "tim-9",
            "MedicationRequest.dosageInstruction[0].timing[0].repeat[0]",
            json!({"resourceType": "MedicationRequest", "text": div, "status": "active", "intent": "order",
                   "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Patient/1"},
                   "dosageInstruction": [{"timing": {"repeat": {"offset": 30, "when": ["C"]}}}]}),
        ),
        (
            "que-2",
            "Questionnaire",
            json!({"resourceType": "Questionnaire", "text": div, "status": "draft",
                   "item": [{"linkId": "1", "type": "string"}, {"linkId": "1", "type": "boolean"}]}),
        ),
        (
            "app-3",
            "Appointment",
            json!({"resourceType": "Appointment", "text": div, "status": "booked",
                   "participant": [{"actor": {"reference": "Patient/1"}, "status": "accepted"}]}),
        ),
        (
            "cnt-3",
            "Patient.extension[0].valueCount[0]",
            json!({"resourceType": "Patient", "text": div, "extension": [{"url": "http://x",
                   "valueCount": {"value": 1.5, "system": "http://unitsofmeasure.org", "code": "1"}}]}),
        ),
        (
            "age-1",
            "Condition.onsetAge[0]",
            json!({"resourceType": "Condition", "text": div, "subject": {"reference": "Patient/1"},
                   "onsetAge": {"value": -1, "system": "http://unitsofmeasure.org", "code": "a"}}),
        ),
        (
            "con-3",
            "Condition",
            json!({"resourceType": "Condition", "text": div, "subject": {"reference": "Patient/1"},
                   "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                             "code": "problem-list-item"}]}]}),
        ),
    ];
    let mut bad = Vec::new();
    for (key, path, res) in &cases {
        let (fails, errors) = violations(&defs, res);
        let fails: Vec<_> = fails.into_iter().filter(|(k, _)| k != "dom-6").collect();
        let paths: Vec<&str> = path.split(' ').collect();
        let want: Vec<_> = key
            .split(' ')
            .enumerate()
            .map(|(i, k)| (k.to_owned(), paths[i.min(paths.len() - 1)].to_owned()))
            .collect();
        if fails != want || !errors.is_empty() {
            bad.push(format!("{key}: want {want:?}, got {fails:?} errors {errors:?}"));
        }
    }
    assert!(bad.is_empty(), "\n{}", bad.join("\n"));
    // The same resources, repaired, are clean: the cases above fail for their reason.
    let (fails, errors) = violations(
        &defs,
        &json!({"resourceType": "Patient", "text": div, "managingOrganization": {"reference": "#o1"},
               "contained": [{"resourceType": "Organization", "id": "o1", "name": "x"}],
               "contact": [{"gender": "male", "name": {"family": "x"}}]}),
    );
    let fails: Vec<_> = fails.into_iter().filter(|(k, _)| k != "dom-6").collect();
    assert!(fails.is_empty() && errors.is_empty(), "{fails:?} {errors:?}");
}

/// The constraints the package's resource profiles add (vitalsigns' vs-1..3, the
/// shareable ValueSet/CodeSystem rules...) hold on the examples that claim them.
#[test]
fn profile_invariants_hold_on_examples_claiming_the_profile() {
    let defs = defs();
    let mut walker = Walker {
        defs: &defs,
        profile_only: true,
        file: String::new(),
        tally: Tally::default(),
    };
    let mut claimed = 0;
    for (name, res) in load("") {
        let profiles = res["meta"]["profile"].as_array().cloned().unwrap_or_default();
        let rt = res["resourceType"].as_str().unwrap_or("").to_owned();
        for url in profiles.iter().filter_map(Value::as_str) {
            let Some(elems) = defs.types.get(url) else { continue };
            claimed += 1;
            walker.file.clone_from(&name);
            let at = At {
                root: &res,
                resource: &res,
            };
            if let Some(e) = elems.get(&rt) {
                walker.check(at, &res, None, &rt, &rt, &e.constraints);
            }
            walker.children(at, url, &rt, &res, &rt);
        }
    }
    let t = walker.tally;
    println!(
        "{claimed} profile claims, {} evaluations of profile constraints: {:?}",
        t.evaluations, t.by_key
    );
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    let unexpected: Vec<_> = t
        .failures
        .iter()
        .filter(|(_, k, _)| !defs.warnings.contains(k))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    assert!(claimed >= 1943, "{claimed}");
    // vs-1..3 are evaluated on the 12 vital-signs examples.
    assert!(t.by_key.get("vs-2").copied().unwrap_or(0) >= 12, "{:?}", t.by_key);
}
