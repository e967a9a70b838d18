//! Evaluation tests; the `hl7_*` cases are adapted from HL7's FHIRPath test suite
//! (tests-fhir-r4.xml) where they only use this subset.

use serde_json::{Value, json};

use crate::{Expr, parse};

fn patient() -> Value {
    serde_json::from_str(include_str!("../tests/fixtures/Patient-example.json")).unwrap()
}

fn observation() -> Value {
    serde_json::from_str(include_str!("../tests/fixtures/Observation-example.json")).unwrap()
}

fn compile(expr: &str) -> Expr {
    parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// The results rendered as JSON text, for compact assertions.
fn eval(expr: &str, res: &Value) -> Vec<String> {
    compile(expr)
        .evaluate(res)
        .iter()
        .map(|n| n.value.to_string())
        .collect()
}

fn eval_bool(expr: &str, res: &Value) -> Option<bool> {
    let out = compile(expr).evaluate(res);
    assert!(out.len() <= 1, "{expr}: {out:?}");
    out.first().map(|n| n.value.as_bool().unwrap())
}

#[test]
fn hl7_paths() {
    let p = patient();
    let given = vec![r#""Peter""#, r#""James""#, r#""Jim""#, r#""Peter""#, r#""James""#];
    assert_eq!(eval("name.given", &p), given);
    assert_eq!(eval("Patient.name.given", &p), given);
    assert!(eval("name.suffix", &p).is_empty());
    assert!(eval("name.given1", &p).is_empty());
    assert!(eval("Encounter.name.given", &p).is_empty());
    assert_eq!(eval("Patient.birthDate", &p), vec![r#""1974-12-25""#]);
    assert_eq!(eval("Patient.name[0].given", &p), vec![r#""Peter""#, r#""James""#]);
    assert_eq!(eval("Patient.name.first().given", &p), vec![r#""Peter""#, r#""James""#]);
    assert_eq!(eval("Patient.name.last().family", &p), vec![r#""Windsor""#]);
    assert_eq!(eval("Patient.`name`.given[2]", &p), vec![r#""Jim""#]);
}

#[test]
fn hl7_where_and_exists() {
    let p = patient();
    assert_eq!(compile("Patient.name.where(given = 'Jim')").evaluate(&p).len(), 1);
    assert_eq!(compile("Patient.name.where(given = 'X')").evaluate(&p).len(), 0);
    assert_eq!(eval_bool("Patient.name.exists()", &p), Some(true));
    assert_eq!(eval_bool("Patient.name.exists() = true", &p), Some(true));
    assert_eq!(eval_bool("Patient.name.exists(use = 'nickname')", &p), Some(false));
    assert_eq!(eval_bool("Patient.name.exists(use = 'official')", &p), Some(true));
    assert_eq!(eval_bool("Patient.name.given.empty()", &p), Some(false));
    assert_eq!(eval_bool("Patient.active.not()", &p), Some(false));
    assert_eq!(
        eval_bool("Patient.name.where(use != 'official').exists()", &p),
        Some(true)
    );
    assert_eq!(
        compile("Patient.telecom.where(system = 'phone' and use = 'mobile')")
            .evaluate(&p)
            .len(),
        1
    );
    assert_eq!(
        compile("Patient.telecom.where(use = 'home' or use = 'work')")
            .evaluate(&p)
            .len(),
        2
    );
}

#[test]
fn hl7_polymorphism() {
    let o = observation();
    assert_eq!(eval("Observation.value.unit", &o), vec![r#""lbs""#]);
    assert_eq!(eval_bool("Observation.value.is(Quantity)", &o), Some(true));
    assert_eq!(eval_bool("Observation.value is Quantity", &o), Some(true));
    assert_eq!(eval_bool("Observation.value is Period", &o), Some(false));
    assert_eq!(eval("Observation.value.as(Quantity).unit", &o), vec![r#""lbs""#]);
    assert_eq!(eval("(Observation.value as Quantity).unit", &o), vec![r#""lbs""#]);
    assert!(eval("(Observation.value as Period).unit", &o).is_empty());
    assert_eq!(eval("Observation.value.ofType(Quantity).unit", &o), vec![r#""lbs""#]);
    let typed = compile("Observation.value").evaluate(&o);
    assert_eq!(typed[0].type_name, Some("Quantity"));
    let eff = compile("Observation.effective").evaluate(&o);
    assert_eq!(eff[0].type_name, Some("dateTime"));
    assert_eq!(eval("Observation.effective as dateTime", &o), vec![r#""2016-03-28""#]);
    assert_eq!(eval("Observation.value.as(DateTime)", &o).len(), 0);
}

#[test]
fn hl7_boolean_logic() {
    let p = patient();
    for (expr, want) in [
        ("(true and true) = true", Some(true)),
        ("(true and false) = false", Some(true)),
        ("true or false", Some(true)),
        ("false or false", Some(false)),
        ("true xor true", Some(false)),
        ("false implies false", Some(true)),
        ("true implies false", Some(false)),
        ("Patient.gender = 'male'", Some(true)),
        ("Patient.gender != 'male'", Some(false)),
        ("Patient.nothing = 'male'", None),
        ("Patient.nothing and false", Some(false)),
        ("Patient.nothing and true", None),
        ("Patient.nothing or true", Some(true)),
        ("Patient.active = true", Some(true)),
        ("Patient.name.given = 'Peter'", Some(false)),
    ] {
        assert_eq!(eval_bool(expr, &p), want, "{expr}");
    }
}

#[test]
fn resolve_is_uses_the_reference_string() {
    let o = json!({"resourceType": "Observation",
        "subject": {"reference": "Patient/123"},
        "performer": [{"reference": "Practitioner/1"}, {"reference": "http://x.org/fhir/Patient/9/_history/2"},
                      {"reference": "urn:uuid:1234"}]});
    assert_eq!(
        compile("Observation.subject.where(resolve() is Patient)")
            .evaluate(&o)
            .len(),
        1
    );
    assert_eq!(
        compile("Observation.subject.where(resolve() is Group)")
            .evaluate(&o)
            .len(),
        0
    );
    let perf = eval("Observation.performer.where(resolve() is Patient).reference", &o);
    assert_eq!(perf, vec![r#""http://x.org/fhir/Patient/9/_history/2""#]);
}

#[test]
fn extension_and_indexer() {
    let r = json!({"resourceType": "Patient", "extension": [
        {"url": "http://a", "valueString": "A"}, {"url": "http://b", "valueCode": "B"}]});
    assert_eq!(eval("Patient.extension('http://b').value", &r), vec![r#""B""#]);
    assert_eq!(
        eval("Patient.extension.where(url = 'http://a').value", &r),
        vec![r#""A""#]
    );
    assert_eq!(
        compile("Patient.extension('http://b').value").evaluate(&r)[0].type_name,
        Some("code")
    );
    let b = json!({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Composition"}}, {}]});
    assert_eq!(compile("Bundle.entry[0].resource").evaluate(&b).len(), 1);
    assert!(compile("Bundle.entry[5].resource").evaluate(&b).is_empty());
}

#[test]
fn deceased_special_case() {
    let expr = "Patient.deceased.exists() and Patient.deceased != false";
    let alive = json!({"resourceType": "Patient"});
    let dead = json!({"resourceType": "Patient", "deceasedBoolean": true});
    let not_dead = json!({"resourceType": "Patient", "deceasedBoolean": false});
    let dated = json!({"resourceType": "Patient", "deceasedDateTime": "2020-01-01"});
    assert_eq!(eval_bool(expr, &alive), Some(false));
    assert_eq!(eval_bool(expr, &dead), Some(true));
    assert_eq!(eval_bool(expr, &not_dead), Some(false));
    assert_eq!(eval_bool(expr, &dated), Some(true));
}

#[test]
fn union_deduplicates_and_resource_roots() {
    let p = patient();
    assert_eq!(eval("Patient.gender | Patient.gender", &p).len(), 1);
    assert_eq!(eval("Resource.id", &p), vec![r#""example""#]);
    assert_eq!(eval("DomainResource.id", &p), vec![r#""example""#]);
    let comp = json!({"resourceType": "Observation", "code": {"text": "a"},
        "component": [{"code": {"text": "b"}}]});
    assert_eq!(
        eval("Observation.code.text | Observation.component.code.text", &comp).len(),
        2
    );
}

#[test]
fn relative_evaluation_with_resource_variable() {
    let m = json!({"resourceType": "MolecularSequence", "referenceSeq": {"chromosome": {"text": "1"}},
        "variant": [{"start": 5}]});
    let variant = compile("MolecularSequence.variant").evaluate(&m)[0];
    let chrom = compile("%resource.referenceSeq.chromosome").evaluate_at(&m, variant);
    assert_eq!(chrom.len(), 1);
    assert_eq!(compile("start").evaluate_at(&m, variant)[0].value.to_string(), "5");
}

#[test]
fn parse_errors() {
    for bad in ["", "a.", "a.where(", "a < b", "a.count()", "'x", "a[b]", "(a", "a b"] {
        assert!(parse(bad).is_err(), "{bad} should not parse");
    }
}

/// Every expression (and composite component expression) in the R4 definitions parses.
#[test]
fn every_r4_definition_parses() {
    let defs: Value = serde_json::from_str(include_str!("../../../conformance/search-parameters.json")).unwrap();
    let mut count = 0;
    for entry in defs["entry"].as_array().unwrap() {
        let sp = &entry["resource"];
        let comps = sp["component"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| &c["expression"]);
        for expr in std::iter::once(&sp["expression"]).chain(comps) {
            if let Some(e) = expr.as_str() {
                compile(e);
                count += 1;
            }
        }
    }
    assert!(count > 1400, "{count}");
}
