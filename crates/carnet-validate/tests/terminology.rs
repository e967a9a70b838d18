//! `$expand` and `$validate-code` over the package's value sets and a local hierarchy.

use carnet_validate::{Coded, Registry, TerminologyError};
use serde_json::{Value, json};

fn codes(reg: &Registry, url: &str) -> Vec<String> {
    match reg.expand(url, None, 0, None) {
        Ok(e) => e.contains.into_iter().map(|c| c.code).collect(),
        Err(e) => panic!("{url}: {e}"),
    }
}

fn local() -> Registry {
    let mut reg = Registry::new();
    for text in [
        include_str!("data/CodeSystem-test-methods.json"),
        include_str!("data/ValueSet-test-methods.json"),
        include_str!("data/ValueSet-test-gender.json"),
    ] {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        if let Err(e) = reg.add(v) {
            panic!("{e}");
        }
    }
    reg
}

#[test]
fn expands_package_value_sets() {
    let reg = Registry::new();
    assert_eq!(
        codes(&reg, "http://hl7.org/fhir/ValueSet/administrative-gender"),
        ["male", "female", "other", "unknown"]
    );
    assert_eq!(
        codes(&reg, "http://hl7.org/fhir/ValueSet/observation-status|4.0.1"),
        [
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown"
        ]
    );
    let e = reg
        .expand("http://hl7.org/fhir/ValueSet/administrative-gender", None, 0, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.contains[0].system, "http://hl7.org/fhir/administrative-gender");
    assert_eq!(e.contains[0].display.as_deref(), Some("Male"));
    assert_eq!(e.version.as_deref(), Some("4.0.1"));
}

#[test]
fn expands_hierarchies() {
    // A package value set with an is-a filter: PRF and everything below it in
    // v3-ParticipationType (DIST, PPRF, SPRF).
    let reg = Registry::new();
    let mut got = codes(
        &reg,
        "http://terminology.hl7.org/ValueSet/v3-ParticipationPhysicalPerformer",
    );
    got.sort();
    assert_eq!(got, ["DIST", "PPRF", "PRF", "SPRF"]);
    // A whole code system with nested concepts: every level is in the expansion.
    let all = codes(&reg, "http://terminology.hl7.org/ValueSet/v3-ParticipationType");
    assert!(all.len() > 50 && all.contains(&"SPRF".to_owned()) && all.contains(&"PART".to_owned()));

    // Local: is-a chemistry, minus photometry; descendent-of excludes the root.
    let reg = local();
    assert_eq!(
        codes(&reg, "https://carnet.dev/fhir/ValueSet/test-methods"),
        ["chemistry", "immunoassay", "elisa"]
    );
    let vs = json!({"resourceType": "ValueSet", "url": "urn:x", "compose": {"include": [{
        "system": "https://carnet.dev/fhir/CodeSystem/test-methods",
        "filter": [{"property": "concept", "op": "descendent-of", "value": "immunoassay"}]}]}});
    let e = reg
        .expand_resource(&vs, None, 0, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        e.contains.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(),
        ["elisa"]
    );
    // A value set import with an exclude.
    assert_eq!(
        codes(&reg, "https://carnet.dev/fhir/ValueSet/test-gender"),
        ["male", "female"]
    );
}

#[test]
fn expand_filter_and_paging() {
    let reg = Registry::new();
    let url = "http://hl7.org/fhir/ValueSet/observation-status";
    let e = reg.expand(url, Some("CORR"), 0, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.total, 1);
    assert_eq!(e.contains[0].code, "corrected");
    let page = reg.expand(url, None, 2, Some(3)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.total, 8);
    assert_eq!(page.offset, 2);
    assert_eq!(
        page.contains.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(),
        ["final", "amended", "corrected"]
    );
    let vs = reg.value_set(url).cloned().unwrap_or(Value::Null);
    let out = page.to_value_set(&vs, "2026-01-01T00:00:00Z");
    assert_eq!(out["expansion"]["total"], 8);
    assert_eq!(out["expansion"]["contains"][0]["code"], "final");
    assert_eq!(out["url"], url);
}

#[test]
fn unsupported_expansions_are_errors() {
    let reg = Registry::new();
    // SNOMED CT is held only as a stub (content not-present).
    assert!(matches!(
        reg.expand("http://hl7.org/fhir/ValueSet/route-codes", None, 0, None),
        Err(TerminologyError::NotSupported(_))
    ));
    let vs = json!({"resourceType": "ValueSet", "compose": {"include": [{"system": "http://example.org/cs"}]}});
    assert!(matches!(
        reg.expand_resource(&vs, None, 0, None),
        Err(TerminologyError::UnknownCodeSystem(_))
    ));
    assert!(matches!(
        reg.expand("http://example.org/nope", None, 0, None),
        Err(TerminologyError::UnknownValueSet(_))
    ));
    let vs = json!({"resourceType": "ValueSet", "compose": {"include": [{
        "system": "http://hl7.org/fhir/administrative-gender",
        "filter": [{"property": "display", "op": "regex", "value": "M.*"}]}]}});
    assert!(matches!(
        reg.expand_resource(&vs, None, 0, None),
        Err(TerminologyError::NotSupported(_))
    ));
}

#[test]
fn validate_code_against_value_sets() {
    let reg = Registry::new();
    let vs = "http://hl7.org/fhir/ValueSet/administrative-gender";
    let sys = "http://hl7.org/fhir/administrative-gender";
    let ok = |c: Coded<'_>| {
        reg.validate_code_in_value_set(vs, &[c])
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let r = ok(Coded {
        system: Some(sys),
        code: "male",
        ..Coded::default()
    });
    assert!(r.result);
    assert_eq!(r.display.as_deref(), Some("Male"));
    assert_eq!(r.message, None);
    let r = ok(Coded {
        system: Some(sys),
        code: "bogus",
        ..Coded::default()
    });
    assert!(!r.result);
    assert!(r.message.as_deref().unwrap_or_default().contains("bogus"));
    // Right code, wrong system.
    assert!(
        !ok(Coded {
            system: Some("http://example.org"),
            code: "male",
            ..Coded::default()
        })
        .result
    );
    // A display that differs: valid, with a note.
    let r = ok(Coded {
        system: Some(sys),
        code: "female",
        display: Some("Woman"),
        ..Coded::default()
    });
    assert!(r.result);
    assert!(r.message.as_deref().unwrap_or_default().contains("Female"));
    // A CodeableConcept passes when one coding is in the value set.
    let cc = json!({"coding": [{"system": "http://example.org", "code": "x"}, {"system": sys, "code": "other"}]});
    let r = reg
        .validate_code_in_value_set(vs, &Coded::from_codeable_concept(&cc))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.result);
    assert_eq!(r.display.as_deref(), Some("Other"));
    let p = r.to_parameters();
    assert_eq!(p["parameter"][0]["name"], "result");
    assert_eq!(p["parameter"][0]["valueBoolean"], true);
}

#[test]
fn validate_code_against_code_systems() {
    let reg = local();
    let cs = "https://carnet.dev/fhir/CodeSystem/test-methods";
    let r = reg
        .validate_code_in_code_system(
            cs,
            &[Coded {
                code: "elisa",
                ..Coded::default()
            }],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.result);
    assert_eq!(r.display.as_deref(), Some("ELISA"));
    let coding = json!({"system": cs, "code": "nope"});
    let r = reg
        .validate_code_in_code_system(cs, &Coded::from_coding(&coding).into_iter().collect::<Vec<_>>())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.result);
    assert!(matches!(
        reg.validate_code_in_code_system("http://snomed.info/sct", &[]),
        Err(TerminologyError::UnknownCodeSystem(_) | TerminologyError::NotSupported(_))
    ));
}

#[test]
fn every_base_binding_expands() {
    // The generator keeps only bindings it could enumerate; the Rust expansion must agree.
    let reg = Registry::new();
    let data = include_str!("../data/r4-rules.json");
    let doc: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    let mut urls: Vec<&str> = doc["structs"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .flat_map(|s| s["e"].as_array().into_iter().flatten())
        .filter_map(|e| e[2][1].as_str())
        .collect();
    urls.sort_unstable();
    urls.dedup();
    assert!(urls.len() > 200, "{}", urls.len());
    let failed: Vec<String> = urls
        .iter()
        .filter_map(|u| reg.expand(u, None, 0, Some(0)).err().map(|e| format!("{u}: {e}")))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}
