//! One deliberately broken resource per refusal rule of `check_resource`.
// The helpers below are test code too: a panic is the failure report.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use carnet_fhir::{Issue, Severity, check_resource};
use serde_json::{Value, json};

fn issues(v: Value) -> Vec<Issue> {
    check_resource(&v).expect_err("should be refused")
}

/// Asserts that the resource is refused with exactly one issue, at `expr` with `code`.
#[track_caller]
fn refused(v: Value, expr: &str, code: &str) -> Issue {
    let issues = issues(v);
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let i = issues.into_iter().next().unwrap();
    assert_eq!(i.expression.as_deref(), Some(expr), "{i:#?}");
    assert_eq!(i.code, code, "{i:#?}");
    assert_eq!(i.severity, Severity::Error);
    assert!(!i.diagnostics.is_empty());
    i
}

fn obs(extra: Value) -> Value {
    let mut o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    o
}

fn patient(extra: Value) -> Value {
    let mut o = json!({"resourceType": "Patient"});
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    o
}

#[test]
fn valid_minimal_resources_pass() {
    check_resource(&obs(json!({}))).unwrap();
    check_resource(&patient(json!({"birthDate": "1990-02-28", "_birthDate": {"id": "b"}}))).unwrap();
}

#[test]
fn not_an_object() {
    let i = issues(json!(["Patient"]));
    assert_eq!(i.len(), 1);
    assert_eq!(i[0].code, "structure");
    assert_eq!(i[0].expression, None);
}

#[test]
fn no_or_bad_resource_type() {
    refused(json!({"id": "x"}), "resourceType", "required");
    refused(json!({"resourceType": "Nonsense"}), "resourceType", "not-supported");
    refused(json!({"resourceType": "patient"}), "resourceType", "not-supported");
    refused(json!({"resourceType": 7}), "resourceType", "structure");
    // Abstract types are not resources one can send.
    refused(
        json!({"resourceType": "DomainResource"}),
        "resourceType",
        "not-supported",
    );
}

#[test]
fn unknown_elements() {
    refused(patient(json!({"foo": 1})), "Patient.foo", "structure");
    refused(
        patient(json!({"name": [{"family": "x", "bogus": "y"}]})),
        "Patient.name[0].bogus",
        "structure",
    );
    refused(
        patient(json!({"contact": [{"gender": "male", "bogus": true}]})),
        "Patient.contact[0].bogus",
        "structure",
    );
    // A choice element needs its type suffix.
    refused(obs(json!({"value": 3})), "Observation.value", "structure");
    refused(obs(json!({"valueFoo": 3})), "Observation.valueFoo", "structure");
    // resourceType only belongs at the top of a resource.
    refused(
        patient(json!({"name": [{"resourceType": "HumanName"}]})),
        "Patient.name[0].resourceType",
        "structure",
    );
    // contentReference: Questionnaire.item.item is a Questionnaire.item.
    refused(
        json!({"resourceType": "Questionnaire", "status": "draft", "item": [{"linkId": "1", "type": "group",
            "item": [{"linkId": "1.1", "type": "string", "bogus": 1}]}]}),
        "Questionnaire.item[0].item[0].bogus",
        "structure",
    );
}

#[test]
fn wrong_json_types() {
    refused(patient(json!({"active": "true"})), "Patient.active", "structure");
    refused(
        obs(json!({"valueInteger": "5"})),
        "Observation.valueInteger",
        "structure",
    );
    refused(
        patient(json!({"gender": {"code": "male"}})),
        "Patient.gender",
        "structure",
    );
    refused(patient(json!({"name": ["Smith"]})), "Patient.name[0]", "structure");
    refused(
        patient(json!({"name": [{"given": [1]}]})),
        "Patient.name[0].given[0]",
        "structure",
    );
    refused(
        obs(json!({"valueQuantity": {"value": "abc"}})),
        "Observation.valueQuantity.value",
        "structure",
    );
    refused(
        obs(
            json!({"component": [{"code": {"text": "a"}}, {"code": {"text": "b"}, "valueQuantity": {"value": "60.5"}}]}),
        ),
        "Observation.component[1].valueQuantity.value",
        "structure",
    );
    refused(patient(json!({"gender": null})), "Patient.gender", "structure");
    refused(patient(json!({"name": [{}]})), "Patient.name[0]", "structure");
}

#[test]
fn array_versus_single() {
    refused(patient(json!({"gender": ["male"]})), "Patient.gender", "structure");
    refused(obs(json!({"code": [{"text": "x"}]})), "Observation.code", "structure");
    refused(patient(json!({"name": {"family": "x"}})), "Patient.name", "structure");
    refused(
        patient(json!({"name": [{"given": "Peter"}]})),
        "Patient.name[0].given",
        "structure",
    );
    refused(patient(json!({"name": []})), "Patient.name", "structure");
}

#[test]
fn bad_primitive_values() {
    let cases: Vec<(Value, &str)> = vec![
        (patient(json!({"id": "bad_id!"})), "Patient.id"),
        (patient(json!({"id": "x".repeat(65)})), "Patient.id"),
        (patient(json!({"birthDate": "1990-13-01"})), "Patient.birthDate"),
        (patient(json!({"birthDate": "1990-02-30"})), "Patient.birthDate"),
        (
            patient(json!({"deceasedDateTime": "2020-01-01T10:00:00"})),
            "Patient.deceasedDateTime",
        ),
        (obs(json!({"issued": "2020-01-01"})), "Observation.issued"),
        (obs(json!({"valueTime": "25:00:00"})), "Observation.valueTime"),
        (obs(json!({"valueInteger": 2147483648i64})), "Observation.valueInteger"),
        (
            json!({"resourceType": "Bundle", "type": "searchset", "total": -1}),
            "Bundle.total",
        ),
        (
            json!({"resourceType": "MedicationStatement", "status": "active", "medicationCodeableConcept": {"text": "x"},
                "subject": {"reference": "Patient/1"}, "dosage": [{"timing": {"repeat": {"count": 0}}}]}),
            "MedicationStatement.dosage[0].timing.repeat.count",
        ),
        (patient(json!({"gender": " male"})), "Patient.gender"),
        (patient(json!({"gender": ""})), "Patient.gender"),
        (patient(json!({"implicitRules": "http://a b"})), "Patient.implicitRules"),
        (
            patient(json!({"photo": [{"url": "http://a b"}]})),
            "Patient.photo[0].url",
        ),
        (
            json!({"resourceType": "Questionnaire", "status": "draft", "derivedFrom": ["http://x y"]}),
            "Questionnaire.derivedFrom[0]",
        ),
        (
            patient(json!({"extension": [{"url": "http://e", "valueOid": "1.2.3"}]})),
            "Patient.extension[0].valueOid",
        ),
        (
            patient(json!({"extension": [{"url": "http://e", "valueUuid": "urn:uuid:1234"}]})),
            "Patient.extension[0].valueUuid",
        ),
        (patient(json!({"photo": [{"data": "@@@@"}]})), "Patient.photo[0].data"),
        (patient(json!({"name": [{"family": ""}]})), "Patient.name[0].family"),
        (obs(json!({"note": [{"text": ""}]})), "Observation.note[0].text"),
        (
            patient(json!({"text": {"status": "generated", "div": "no markup"}})),
            "Patient.text.div",
        ),
    ];
    for (v, expr) in cases {
        refused(v, expr, "value");
    }
}

#[test]
fn primitive_extension_companions() {
    refused(patient(json!({"_birthDate": "x"})), "Patient._birthDate", "structure");
    refused(
        patient(json!({"_birthDate": {"foo": 1}})),
        "Patient._birthDate.foo",
        "structure",
    );
    refused(
        patient(json!({"_birthDate": {"extension": [{"valueString": "no url"}]}})),
        "Patient._birthDate.extension[0].url",
        "required",
    );
    refused(
        patient(json!({"_birthDate": [{"id": "a"}]})),
        "Patient._birthDate",
        "structure",
    );
    refused(
        patient(json!({"name": [{"given": ["a", "b"], "_given": {"id": "x"}}]})),
        "Patient.name[0]._given",
        "structure",
    );
    refused(
        patient(json!({"name": [{"given": ["a", "b"], "_given": [null]}]})),
        "Patient.name[0]._given",
        "structure",
    );
    refused(patient(json!({"_name": {"id": "x"}})), "Patient._name", "structure");
    refused(
        patient(json!({"_nonsense": {"id": "x"}})),
        "Patient._nonsense",
        "structure",
    );
    // null placeholders are fine when the other array has the entry.
    check_resource(&patient(
        json!({"name": [{"given": ["a", null], "_given": [null, {"id": "g2"}]}]}),
    ))
    .unwrap();
    refused(
        patient(json!({"name": [{"given": ["a", null]}]})),
        "Patient.name[0].given[1]",
        "structure",
    );
    // Only `_x` alone (extension without value) is allowed too.
    check_resource(&patient(
        json!({"_gender": {"extension": [{"url": "http://e", "valueString": "x"}]}}),
    ))
    .unwrap();
}

#[test]
fn missing_required_elements() {
    refused(
        json!({"resourceType": "Observation", "code": {"text": "x"}}),
        "Observation.status",
        "required",
    );
    refused(
        json!({"resourceType": "Observation", "status": "final"}),
        "Observation.code",
        "required",
    );
    refused(
        obs(json!({"component": [{"valueString": "x"}]})),
        "Observation.component[0].code",
        "required",
    );
    refused(
        patient(json!({"extension": [{"valueString": "x"}]})),
        "Patient.extension[0].url",
        "required",
    );
    // A required primitive may be given by its extension only.
    check_resource(&json!({"resourceType": "Observation", "_status": {"extension": [{"url": "http://e", "valueString": "x"}]}, "code": {"text": "x"}})).unwrap();
}

#[test]
fn choice_with_two_values() {
    refused(
        obs(json!({"valueString": "a", "valueInteger": 1})),
        "Observation.valueInteger",
        "structure",
    );
}

#[test]
fn nested_resources_are_checked() {
    refused(
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", "name": [{"given": "x"}]}}]}),
        "Bundle.entry[0].resource.ofType(Patient).name[0].given",
        "structure",
    );
    refused(
        obs(json!({"contained": [{"resourceType": "Patient", "birthDate": "yesterday"}]})),
        "Observation.contained[0].ofType(Patient).birthDate",
        "value",
    );
    refused(
        json!({"resourceType": "Parameters", "parameter": [{"name": "p", "resource": {"resourceType": "Observation", "code": {"text": "x"}}}]}),
        "Parameters.parameter[0].resource.ofType(Observation).status",
        "required",
    );
    refused(
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Nope"}}]}),
        "Bundle.entry[0].resource.resourceType",
        "structure",
    );
    refused(
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"name": "x"}}]}),
        "Bundle.entry[0].resource.resourceType",
        "required",
    );
}

#[test]
fn all_issues_are_collected() {
    let i = issues(json!({"resourceType": "Observation", "status": "bad code ", "foo": 1, "valueBoolean": "yes"}));
    let got: Vec<_> = i
        .iter()
        .map(|i| (i.expression.clone().unwrap_or_default(), i.code))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Observation.status".to_owned(), "value"),
            ("Observation.foo".to_owned(), "structure"),
            ("Observation.valueBoolean".to_owned(), "structure"),
            ("Observation.code".to_owned(), "required"),
        ]
    );
}

#[test]
fn severity_strings() {
    assert_eq!(Severity::Fatal.as_str(), "fatal");
    assert_eq!(Severity::Error.as_str(), "error");
    assert_eq!(Severity::Warning.as_str(), "warning");
    assert_eq!(Severity::Information.as_str(), "information");
}

#[test]
fn resource_type_list() {
    assert_eq!(carnet_fhir::RESOURCE_TYPES.len(), 146);
    assert!(carnet_fhir::RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
    assert!(carnet_fhir::is_resource_type("Patient"));
    assert!(carnet_fhir::is_resource_type("VisionPrescription"));
    assert!(!carnet_fhir::is_resource_type("Resource"));
    assert!(!carnet_fhir::is_resource_type("patient"));
}
