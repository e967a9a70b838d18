//! Deliberately broken resources, each breaking exactly one rule, each expected to get its
//! specific issue (severity, code, expression) and nothing else. The valid starting points
//! are checked to be clean first.

use std::sync::OnceLock;

use carnet_validate::{Issue, Registry, Severity, validate};
use serde_json::{Value, json};

const OBS: &str = "https://carnet.dev/fhir/StructureDefinition/test-observation";
const PAT: &str = "https://carnet.dev/fhir/StructureDefinition/test-patient";

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let mut r = Registry::new();
        for text in [
            include_str!("data/StructureDefinition-test-observation.json"),
            include_str!("data/StructureDefinition-test-patient.json"),
            include_str!("data/CodeSystem-test-methods.json"),
            include_str!("data/ValueSet-test-methods.json"),
            include_str!("data/ValueSet-test-interpretation.json"),
            include_str!("data/ValueSet-test-gender.json"),
        ] {
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            if let Err(e) = r.add(v) {
                panic!("test data rejected: {e}");
            }
        }
        r
    })
}

fn narrative() -> Value {
    json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"})
}

fn mmol(v: f64) -> Value {
    json!({"value": v, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"})
}

fn lab() -> Value {
    json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]})
}

fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "glucose",
        "text": narrative(),
        "status": "final",
        "category": [lab()],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
        "subject": {"reference": "Patient/p1"},
        "issued": "2026-01-01T10:00:00Z",
        "valueQuantity": mmol(5.4),
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N"}]}],
        "method": {"coding": [{"system": "https://carnet.dev/fhir/CodeSystem/test-methods", "code": "elisa"}]},
        "referenceRange": [{"low": mmol(3.9), "high": mmol(6.1)}]
    })
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "text": narrative(),
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": {"city": "Québec"}}],
        "identifier": [
            {"system": "https://ramq.gouv.qc.ca/nam", "value": "TREM12345678",
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "JHN"}]}},
            {"system": "https://example.org/mrn", "value": "42"}
        ],
        "gender": "female",
        "birthDate": "1980-02-03"
    })
}

/// Every issue but the `not-supported` warnings of invariants the current FHIRPath engine
/// cannot evaluate (they are about the engine, not the resource).
fn problems(r: &Value, profiles: &[&str]) -> Vec<Issue> {
    validate(registry(), r, profiles)
        .into_iter()
        .filter(|i| i.code != "not-supported")
        .collect()
}

#[track_caller]
fn expect_only(r: &Value, profiles: &[&str], severity: Severity, code: &str, expression: &str, diag: &str) {
    let found = problems(r, profiles);
    assert_eq!(found.len(), 1, "expected exactly one issue, got {found:#?}");
    let i = &found[0];
    assert_eq!(i.severity, severity, "{i:#?}");
    assert_eq!(i.code, code, "{i:#?}");
    assert_eq!(i.expression.as_deref(), Some(expression), "{i:#?}");
    assert!(
        i.diagnostics.contains(diag),
        "diagnostics {:?} lack {diag:?}",
        i.diagnostics
    );
}

fn set(mut r: Value, key: &str, v: Value) -> Value {
    if let Some(o) = r.as_object_mut() {
        o.insert(key.to_owned(), v);
    }
    r
}

fn remove(mut r: Value, key: &str) -> Value {
    if let Some(o) = r.as_object_mut() {
        o.shift_remove(key);
    }
    r
}

#[test]
fn valid_resources_are_clean() {
    assert_eq!(problems(&observation(), &[]), vec![]);
    assert_eq!(problems(&observation(), &[OBS]), vec![]);
    assert_eq!(problems(&patient(), &[]), vec![]);
    assert_eq!(problems(&patient(), &[PAT]), vec![]);
}

// --- base R4 rules ---

#[test]
fn base_required_binding_on_code() {
    let r = set(observation(), "status", json!("bogus"));
    expect_only(
        &r,
        &[],
        Severity::Error,
        "code-invalid",
        "Observation.status",
        "'bogus'",
    );
    let p = set(patient(), "gender", json!("f"));
    expect_only(
        &p,
        &[],
        Severity::Error,
        "code-invalid",
        "Patient.gender",
        "administrative-gender",
    );
}

#[test]
fn base_extensible_binding_warns() {
    let r = set(
        observation(),
        "interpretation",
        json!([{"coding": [{"system": "http://example.org/interp", "code": "odd"}]}]),
    );
    expect_only(
        &r,
        &[],
        Severity::Warning,
        "code-invalid",
        "Observation.interpretation[0]",
        "observation-interpretation",
    );
}

#[test]
fn base_required_binding_in_a_datatype() {
    let mut q = mmol(5.4);
    q["comparator"] = json!("~");
    let r = set(observation(), "valueQuantity", q);
    expect_only(
        &r,
        &[],
        Severity::Error,
        "code-invalid",
        "Observation.valueQuantity.comparator",
        "quantity-comparator",
    );
}

#[test]
fn base_invariant_obs_6() {
    let r = set(observation(), "dataAbsentReason", json!({"text": "lost"}));
    expect_only(&r, &[], Severity::Error, "invariant", "Observation", "obs-6:");
    // The test profile's snapshot repeats obs-6: reported once, by the base pass.
    expect_only(&r, &[OBS], Severity::Error, "invariant", "Observation", "obs-6:");
}

#[test]
fn base_datatype_invariant_at_depth() {
    let mut r = observation();
    let mut q = mmol(1.0);
    if let Some(o) = q.as_object_mut() {
        o.shift_remove("system");
    }
    r["component"] = json!([
        {"code": {"text": "a"}, "valueQuantity": mmol(1.0)},
        {"code": {"text": "b"}, "valueQuantity": q}
    ]);
    expect_only(
        &r,
        &[],
        Severity::Error,
        "invariant",
        "Observation.component[1].valueQuantity",
        "qty-3:",
    );
}

#[test]
fn base_backbone_invariant_obs_3() {
    let r = set(
        observation(),
        "referenceRange",
        json!([{"low": mmol(3.9)}, {"appliesTo": [{"text": "adults"}]}]),
    );
    expect_only(
        &r,
        &[],
        Severity::Error,
        "invariant",
        "Observation.referenceRange[1]",
        "obs-3:",
    );
}

#[test]
fn base_quantity_profile_invariant_sqty_1() {
    let mut low = mmol(3.9);
    low["comparator"] = json!(">");
    let r = set(observation(), "referenceRange", json!([{"low": low}]));
    expect_only(
        &r,
        &[],
        Severity::Error,
        "invariant",
        "Observation.referenceRange[0].low",
        "sqty-1:",
    );
}

#[test]
fn base_rules_apply_inside_bundle_entries() {
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": patient()},
            {"fullUrl": "urn:uuid:2", "resource": set(observation(), "status", json!("bogus"))}
        ]
    });
    expect_only(
        &bundle,
        &[],
        Severity::Error,
        "code-invalid",
        "Bundle.entry[1].resource.status",
        "'bogus'",
    );
}

/// per-1 (`start <= end`) needs comparison operators: with an engine that has them the
/// failure is an `invariant` error; without, it must be a visible `not-supported` warning
/// at the same place, never a silent pass.
#[test]
fn base_invariant_per_1_is_never_silent() {
    let r = set(
        observation(),
        "effectivePeriod",
        json!({"start": "2026-02-01", "end": "2026-01-01"}),
    );
    let issues = validate(registry(), &r, &[]);
    let per1: Vec<&Issue> = issues.iter().filter(|i| i.diagnostics.starts_with("per-1:")).collect();
    assert_eq!(per1.len(), 1, "{issues:#?}");
    assert_eq!(per1[0].expression.as_deref(), Some("Observation.effectivePeriod"));
    assert!(
        (per1[0].severity, per1[0].code) == (Severity::Error, "invariant")
            || (per1[0].severity, per1[0].code) == (Severity::Warning, "not-supported"),
        "{:#?}",
        per1[0]
    );
    assert_eq!(
        issues
            .iter()
            .filter(|i| i.severity == Severity::Error && i.code != "invariant")
            .count(),
        0
    );
}

// --- profiles ---

#[test]
fn profile_cardinality_min() {
    let r = remove(observation(), "subject");
    expect_only(
        &r,
        &[OBS],
        Severity::Error,
        "required",
        "Observation.subject",
        "minimum required = 1",
    );
    let p = remove(patient(), "birthDate");
    expect_only(
        &p,
        &[PAT],
        Severity::Error,
        "required",
        "Patient.birthDate",
        "minimum required = 1",
    );
}

#[test]
fn profile_reference_target() {
    let r = set(observation(), "subject", json!({"reference": "Group/g1"}));
    expect_only(
        &r,
        &[OBS],
        Severity::Error,
        "structure",
        "Observation.subject",
        "points to a Group",
    );
    // Absolute URLs are typed the same way; unresolvable forms are not judged.
    let r = set(
        observation(),
        "subject",
        json!({"reference": "https://example.org/fhir/Patient/p1"}),
    );
    assert_eq!(problems(&r, &[OBS]), vec![]);
    let r = set(
        observation(),
        "subject",
        json!({"reference": "urn:uuid:0d3f5a3e-5f0f-4a8e-9d2b-8e1b0f0c2a11"}),
    );
    assert_eq!(problems(&r, &[OBS]), vec![]);
}

#[test]
fn profile_wrong_choice_type() {
    let r = set(remove(observation(), "valueQuantity"), "valueBoolean", json!(true));
    expect_only(
        &r,
        &[OBS],
        Severity::Error,
        "structure",
        "Observation.value.ofType(boolean)",
        "type boolean is not allowed",
    );
}

#[test]
fn profile_fixed_value() {
    let r = set(observation(), "status", json!("preliminary"));
    expect_only(
        &r,
        &[OBS],
        Severity::Error,
        "value",
        "Observation.status",
        "exactly \"final\"",
    );
}

#[test]
fn profile_pattern_value() {
    let r = set(
        observation(),
        "code",
        json!({"coding": [{"system": "http://snomed.info/sct", "code": "33747003"}]}),
    );
    expect_only(&r, &[OBS], Severity::Error, "value", "Observation.code", "must contain");
}

#[test]
fn profile_required_binding() {
    // photometry is a chemistry method, but the value set excludes it.
    let r = set(
        observation(),
        "method",
        json!({"coding": [{"system": "https://carnet.dev/fhir/CodeSystem/test-methods", "code": "photometry"}]}),
    );
    expect_only(
        &r,
        &[OBS],
        Severity::Error,
        "code-invalid",
        "Observation.method",
        "test-methods",
    );
    // "other" is in the base binding (administrative-gender), not the profile's.
    let p = set(patient(), "gender", json!("other"));
    expect_only(
        &p,
        &[PAT],
        Severity::Error,
        "code-invalid",
        "Patient.gender",
        "test-gender",
    );
}

#[test]
fn profile_extensible_binding_warns() {
    // HH is in the base value set (observation-interpretation), not the profile's.
    let r = set(
        observation(),
        "interpretation",
        json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "HH"}]}]),
    );
    expect_only(
        &r,
        &[OBS],
        Severity::Warning,
        "code-invalid",
        "Observation.interpretation[0]",
        "test-interpretation",
    );
}

#[test]
fn profile_slice_cardinality() {
    let r = set(observation(), "category", json!([lab(), lab()]));
    expect_only(
        &r,
        &[OBS],
        Severity::Error,
        "structure",
        "Observation.category",
        "slice 'laboratory': maximum allowed = 1",
    );
    let imaging = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "imaging"}]});
    let r = set(observation(), "category", json!([imaging]));
    expect_only(
        &r,
        &[OBS],
        Severity::Error,
        "required",
        "Observation.category",
        "slice 'laboratory': minimum required = 1",
    );
    let p = set(
        patient(),
        "identifier",
        json!([{"system": "https://example.org/mrn", "value": "42"}]),
    );
    expect_only(
        &p,
        &[PAT],
        Severity::Error,
        "required",
        "Patient.identifier",
        "slice 'ramq'",
    );
}

#[test]
fn profile_closed_slicing() {
    let vital = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]});
    let r = set(observation(), "category", json!([lab(), vital]));
    expect_only(
        &r,
        &[OBS],
        Severity::Error,
        "structure",
        "Observation.category[1]",
        "matches no slice",
    );
}

#[test]
fn profile_slice_content() {
    // The RAMQ slice (matched on system) requires a value.
    let p = set(
        patient(),
        "identifier",
        json!([{"system": "https://ramq.gouv.qc.ca/nam"}]),
    );
    expect_only(
        &p,
        &[PAT],
        Severity::Error,
        "required",
        "Patient.identifier[0].value",
        "minimum required = 1",
    );
}

#[test]
fn profile_extension_slice_by_url() {
    let place =
        json!({"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": {"city": "Lévis"}});
    let mut p = patient();
    if let Some(a) = p["extension"].as_array_mut() {
        a.push(place);
    }
    expect_only(
        &p,
        &[PAT],
        Severity::Error,
        "structure",
        "Patient.extension",
        "slice 'birthPlace': maximum allowed = 1",
    );
}

#[test]
fn profile_invariant() {
    let r = remove(observation(), "issued");
    expect_only(
        &r,
        &[OBS],
        Severity::Error,
        "invariant",
        "Observation",
        "tobs-1: An observation needs",
    );
    let p = set(patient(), "deceasedBoolean", json!(true));
    expect_only(&p, &[PAT], Severity::Error, "invariant", "Patient", "tpat-1:");
}

#[test]
fn unknown_or_mismatched_profile() {
    let found = problems(&observation(), &["https://carnet.dev/fhir/StructureDefinition/nope"]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].severity, found[0].code), (Severity::Error, "not-found"));
    let found = problems(&observation(), &[PAT]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].severity, found[0].code), (Severity::Error, "processing"));
    // A version that is held, and one that is not.
    assert!(problems(&observation(), &[&format!("{OBS}|0.1.0")]).is_empty());
    assert_eq!(problems(&observation(), &[&format!("{OBS}|9")]).len(), 1);
}

#[test]
fn issues_render_as_operation_outcome() {
    let r = set(observation(), "status", json!("bogus"));
    let oo = carnet_validate::operation_outcome(&problems(&r, &[]));
    assert_eq!(oo["issue"][0]["expression"][0], "Observation.status");
    assert_eq!(oo["issue"][0]["code"], "code-invalid");
    assert_eq!(oo["issue"][0]["severity"], "error");
}

#[test]
fn profile_exists_discriminator() {
    // Telecom sliced on whether `period` exists: at most one current (period-less) entry.
    let sd = json!({
        "resourceType": "StructureDefinition", "url": "https://carnet.dev/fhir/StructureDefinition/test-exists",
        "name": "TestExists", "status": "draft", "kind": "resource", "abstract": false, "type": "Patient",
        "derivation": "constraint",
        "snapshot": {"element": [
            {"id": "Patient", "path": "Patient", "min": 0, "max": "*"},
            {"id": "Patient.telecom", "path": "Patient.telecom", "min": 0, "max": "*", "type": [{"code": "ContactPoint"}],
             "slicing": {"discriminator": [{"type": "exists", "path": "period"}], "rules": "open"}},
            {"id": "Patient.telecom:current", "path": "Patient.telecom", "sliceName": "current", "min": 0, "max": "1",
             "type": [{"code": "ContactPoint"}]},
            {"id": "Patient.telecom:current.period", "path": "Patient.telecom.period", "min": 0, "max": "0",
             "type": [{"code": "Period"}]},
            {"id": "Patient.telecom:past", "path": "Patient.telecom", "sliceName": "past", "min": 0, "max": "*",
             "type": [{"code": "ContactPoint"}]},
            {"id": "Patient.telecom:past.period", "path": "Patient.telecom.period", "min": 1, "max": "1",
             "type": [{"code": "Period"}]}
        ]}
    });
    let mut reg = Registry::new();
    if let Err(e) = reg.add(sd) {
        panic!("{e}");
    }
    let url = "https://carnet.dev/fhir/StructureDefinition/test-exists";
    let phone = |period: bool| {
        let mut t = json!({"system": "phone", "value": "418-555-0000"});
        if period {
            t["period"] = json!({"end": "2020-01-01"});
        }
        t
    };
    let ok = set(patient(), "telecom", json!([phone(false), phone(true), phone(true)]));
    let found: Vec<Issue> = validate(&reg, &ok, &[url])
        .into_iter()
        .filter(|i| i.code != "not-supported")
        .collect();
    assert_eq!(found, vec![]);
    let two_current = set(patient(), "telecom", json!([phone(false), phone(true), phone(false)]));
    let found: Vec<Issue> = validate(&reg, &two_current, &[url])
        .into_iter()
        .filter(|i| i.code != "not-supported")
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].code, "structure");
    assert_eq!(found[0].expression.as_deref(), Some("Patient.telecom"));
    assert!(found[0].diagnostics.contains("slice 'current': maximum allowed = 1"));
}

#[test]
fn profiles_without_snapshot_or_of_other_kinds_are_refused() {
    let mut reg = Registry::new();
    let no_snapshot = json!({"resourceType": "StructureDefinition", "url": "urn:x", "type": "Patient"});
    assert!(matches!(
        reg.add(no_snapshot),
        Err(carnet_validate::RegistryError::InvalidProfile { .. })
    ));
    assert!(matches!(
        reg.add(json!({"resourceType": "Patient", "url": "urn:y"})),
        Err(carnet_validate::RegistryError::UnsupportedType(_))
    ));
    assert!(matches!(
        reg.add(json!({"resourceType": "ValueSet"})),
        Err(carnet_validate::RegistryError::MissingUrl(_))
    ));
}

#[test]
fn registry_is_shareable_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Registry>();
    // Concurrent validations share the expansion cache.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert_eq!(problems(&observation(), &[OBS]), vec![]));
        }
    });
}

#[test]
fn profile_type_slice_without_declared_slicing() {
    let sd = json!({
        "resourceType": "StructureDefinition", "url": "https://carnet.dev/fhir/StructureDefinition/test-ucum",
        "name": "TestUcum", "status": "draft", "kind": "resource", "abstract": false, "type": "Observation",
        "derivation": "constraint",
        "snapshot": {"element": [
            {"id": "Observation", "path": "Observation", "min": 0, "max": "*"},
            {"id": "Observation.value[x]", "path": "Observation.value[x]", "min": 0, "max": "1",
             "type": [{"code": "Quantity"}, {"code": "string"}]},
            {"id": "Observation.value[x]:valueQuantity", "path": "Observation.value[x]", "sliceName": "valueQuantity",
             "min": 0, "max": "1", "type": [{"code": "Quantity"}]},
            {"id": "Observation.value[x]:valueQuantity.system", "path": "Observation.value[x].system", "min": 1, "max": "1",
             "type": [{"code": "uri"}], "fixedUri": "http://unitsofmeasure.org"}
        ]}
    });
    let mut reg = Registry::new();
    if let Err(e) = reg.add(sd) {
        panic!("{e}");
    }
    let url = "https://carnet.dev/fhir/StructureDefinition/test-ucum";
    let only = |r: &Value| -> Vec<Issue> {
        validate(&reg, r, &[url])
            .into_iter()
            .filter(|i| i.code != "not-supported")
            .collect()
    };
    assert_eq!(only(&observation()), vec![]);
    assert_eq!(
        only(&set(
            remove(observation(), "valueQuantity"),
            "valueString",
            json!("high")
        )),
        vec![]
    );
    let mut q = mmol(5.4);
    q["system"] = json!("http://example.org/units");
    let found = only(&set(observation(), "valueQuantity", q));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].severity, found[0].code), (Severity::Error, "value"));
    assert_eq!(found[0].expression.as_deref(), Some("Observation.valueQuantity.system"));
}

#[test]
fn base_rules_reach_extensions_of_primitives() {
    // ext-1: an extension has a value or extensions, not both.
    let bad =
        json!({"url": "http://example.org/x", "valueString": "a", "extension": [{"url": "y", "valueBoolean": true}]});
    let p = set(patient(), "_birthDate", json!({"extension": [bad]}));
    expect_only(
        &p,
        &[],
        Severity::Error,
        "invariant",
        "Patient.birthDate.extension[0]",
        "ext-1:",
    );
}
