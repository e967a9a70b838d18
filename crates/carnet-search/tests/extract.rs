//! Extraction of every value shape from official R4 example resources.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use carnet_search::*;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn values(res: &Value, param: &str) -> Vec<IndexValue> {
    let rt = res["resourceType"].as_str().unwrap();
    Registry::r4()
        .extract(rt, res)
        .into_iter()
        .filter(|e| e.param == param)
        .map(|e| e.value)
        .collect()
}

fn string(s: &str) -> IndexValue {
    IndexValue::String(StringValue {
        normalized: normalize(s),
        exact: s.into(),
    })
}

fn token(system: Option<&str>, code: Option<&str>, text: Option<&str>) -> TokenValue {
    TokenValue {
        system: system.map(Into::into),
        code: code.map(Into::into),
        text: text.map(Into::into),
        ..TokenValue::default()
    }
}

fn date(s: &str) -> DateRange {
    parse_date_range(s).unwrap()
}

#[test]
fn patient_strings() {
    let p = fixture("Patient-example");
    assert_eq!(values(&p, "family"), vec![string("Chalmers"), string("Windsor")]);
    let name = values(&p, "name");
    for part in ["Chalmers", "Peter", "James", "Jim", "Windsor"] {
        assert!(name.contains(&string(part)), "{part}");
    }
    assert_eq!(name.len(), 5, "duplicates removed: {name:?}");
    let addr = values(&p, "address");
    assert!(addr.contains(&string("534 Erewhon St")) && addr.contains(&string("PleasantVille")));
    assert_eq!(values(&p, "address-postalcode"), vec![string("3999")]);
    assert_eq!(normalize("Zoë"), "zoe");
}

#[test]
fn patient_tokens() {
    let p = fixture("Patient-example");
    let ids = values(&p, "identifier");
    assert_eq!(
        ids,
        vec![IndexValue::Token(TokenValue {
            of_type_system: Some("http://terminology.hl7.org/CodeSystem/v2-0203".into()),
            of_type_code: Some("MR".into()),
            ..token(Some("urn:oid:1.2.36.146.595.217.0.1"), Some("12345"), None)
        })]
    );
    assert_eq!(
        values(&p, "gender"),
        vec![IndexValue::Token(token(None, Some("male"), None))]
    );
    assert_eq!(
        values(&p, "active"),
        vec![IndexValue::Token(token(None, Some("true"), None))]
    );
    assert_eq!(
        values(&p, "deceased"),
        vec![IndexValue::Token(token(None, Some("false"), None))]
    );
    let phones = values(&p, "phone");
    assert_eq!(phones.len(), 3);
    assert_eq!(
        phones[0],
        IndexValue::Token(token(Some("work"), Some("(03) 5555 6473"), None))
    );
    assert_eq!(values(&p, "telecom").len(), 3, "the telecom without a value is skipped");
    assert_eq!(
        values(&p, "_id"),
        vec![IndexValue::Token(token(None, Some("example"), None))]
    );
}

#[test]
fn patient_dates_and_references() {
    let p = fixture("Patient-example");
    assert_eq!(values(&p, "birthdate"), vec![IndexValue::Date(date("1974-12-25"))]);
    assert_eq!(
        values(&p, "organization"),
        vec![IndexValue::Reference(ReferenceValue {
            target_type: Some("Organization".into()),
            target_id: Some("1".into()),
            ..ReferenceValue::default()
        })]
    );
    assert!(values(&p, "link").is_empty());
    assert_eq!(values(&p, "general-practitioner").len(), 0);
}

#[test]
fn observation_values() {
    let o = fixture("Observation-example");
    let code = values(&o, "code");
    assert!(code.contains(&IndexValue::Token(token(
        Some("http://loinc.org"),
        Some("29463-7"),
        Some("body weight")
    ))));
    assert_eq!(code.len(), 4, "one token per coding; no CodeableConcept.text here");
    let q = values(&o, "value-quantity");
    let IndexValue::Quantity(q) = &q[0] else {
        panic!("{q:?}")
    };
    assert_eq!(q.number.value, Some(185.0));
    assert_eq!((q.number.low, q.number.high), (184.5, 185.5));
    assert_eq!(q.code.as_deref(), Some("[lb_av]"));
    assert_eq!(q.system.as_deref(), Some("http://unitsofmeasure.org"));
    assert_eq!(q.unit.as_deref(), Some("lbs"));
    assert_eq!(values(&o, "date"), vec![IndexValue::Date(date("2016-03-28"))]);
    let subj = values(&o, "patient");
    assert_eq!(
        subj,
        vec![IndexValue::Reference(ReferenceValue {
            target_type: Some("Patient".into()),
            target_id: Some("example".into()),
            ..ReferenceValue::default()
        })]
    );
    assert!(values(&o, "value-concept").is_empty());
}

#[test]
fn composites_group_components_of_one_element() {
    let o = fixture("Observation-blood-pressure");
    let cvq = values(&o, "component-code-value-quantity");
    // One value per component element: systolic (3 codings, one quantity) and
    // diastolic (1 coding, one quantity), not the 4 combinations of their values.
    assert_eq!(cvq.len(), 2, "{cvq:#?}");
    let IndexValue::Composite(parts) = &cvq[0] else {
        panic!()
    };
    let codes: Vec<_> = parts[0]
        .iter()
        .map(|v| match v {
            IndexValue::Token(t) => t.code.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(codes.len(), 3, "{codes:?}");
    assert_eq!(codes[0], Some("8480-6"));
    let [IndexValue::Quantity(q)] = parts[1].as_slice() else {
        panic!()
    };
    assert_eq!(q.number.value, Some(107.0));
    let diastolic = matches!(&cvq[1], IndexValue::Composite(p)
        if matches!(p[0].as_slice(), [IndexValue::Token(t)] if t.code.as_deref() == Some("8462-4"))
            && matches!(p[1].as_slice(), [IndexValue::Quantity(q)] if q.number.value == Some(60.0)));
    assert!(diastolic, "{:#?}", cvq[1]);
    // `code-value-quantity` needs Observation.value, which this panel does not have.
    assert!(values(&o, "code-value-quantity").is_empty());
    // `combo-code` is `code | component.code`: stored as the rows of those two.
    assert!(values(&o, "combo-code").is_empty());
    assert_eq!(
        Registry::r4().stored_as("Observation", "combo-code"),
        Some(&["code".to_string(), "component-code".to_string()][..])
    );
    let parts = values(&o, "code").len() + values(&o, "component-code").len();
    assert!(parts >= 5, "code | component.code: {parts}");
}

#[test]
fn period_timing_money_age() {
    let e = fixture("Encounter-f203");
    assert_eq!(
        values(&e, "date"),
        vec![IndexValue::Date(DateRange {
            low: date("2013-03-11").low,
            high: date("2013-03-20").high
        })]
    );
    let c = fixture("ChargeItem-example");
    let IndexValue::Quantity(price) = &values(&c, "price-override")[0] else {
        panic!()
    };
    assert_eq!(price.code.as_deref(), Some("EUR"));
    assert_eq!(price.system.as_deref(), Some("urn:iso:std:iso:4217"));
    let IndexValue::Number(f) = &values(&c, "factor-override")[0] else {
        panic!()
    };
    assert_eq!(f.value, Some(0.8));
    assert!((f.low - 0.75).abs() < 1e-9 && (f.high - 0.85).abs() < 1e-9);
    let cond = fixture("Condition-f202");
    let IndexValue::Quantity(age) = &values(&cond, "onset-age")[0] else {
        panic!()
    };
    assert_eq!((age.number.value, age.code.as_deref()), (Some(52.0), Some("a")));
    let open = json!({"resourceType": "Encounter", "period": {"start": "2020"}});
    assert_eq!(
        values(&open, "date"),
        vec![IndexValue::Date(DateRange {
            low: date("2020").low,
            high: DateRange::MAX
        })]
    );
    let timing = json!({"resourceType": "ServiceRequest",
        "occurrenceTiming": {"event": ["2020-05-02", "2020-05-01T10:00:00Z"]}});
    assert_eq!(
        values(&timing, "occurrence"),
        vec![IndexValue::Date(DateRange {
            low: date("2020-05-01T10:00:00Z").low,
            high: date("2020-05-02").high
        })]
    );
    let bounded = json!({"resourceType": "CarePlan", "activity": [{"detail": {"scheduledTiming":
        {"repeat": {"boundsPeriod": {"start": "2021-01-01", "end": "2021-02-01"}}}}}]});
    assert_eq!(
        values(&bounded, "activity-date"),
        vec![IndexValue::Date(DateRange {
            low: date("2021-01-01").low,
            high: date("2021-02-01").high
        })]
    );
    // A Timing with neither events nor bounds covers no known time.
    assert!(values(&fixture("CarePlan-example"), "activity-date").is_empty());
}

#[test]
fn reference_forms_and_uris() {
    let r = |s: &str| parse_reference(s);
    let abs = r("http://example.org/fhir/Patient/23/_history/3");
    assert_eq!(
        abs.url.as_deref(),
        Some("http://example.org/fhir/Patient/23/_history/3")
    );
    assert_eq!(
        (
            abs.target_type.as_deref(),
            abs.target_id.as_deref(),
            abs.version.as_deref()
        ),
        (Some("Patient"), Some("23"), Some("3"))
    );
    let urn = r("urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d");
    assert_eq!((urn.url.is_some(), urn.target_type), (true, None));
    let canon = r("http://hl7.org/fhir/ValueSet/x|4.0.1");
    assert_eq!(
        (canon.url.as_deref(), canon.version.as_deref()),
        (Some("http://hl7.org/fhir/ValueSet/x"), Some("4.0.1"))
    );
    let with_id = json!({"resourceType": "Observation", "subject": {"identifier": {"system": "s", "value": "v"}}});
    let IndexValue::Reference(rv) = &values(&with_id, "subject")[0] else {
        panic!()
    };
    assert_eq!(rv.identifier, Some(token(Some("s"), Some("v"), None)));
    let vs = json!({"resourceType": "ValueSet", "url": "http://x/vs", "meta": {"profile": ["http://p"]}});
    assert_eq!(
        values(&vs, "url"),
        vec![IndexValue::Uri(UriValue {
            uri: "http://x/vs".into()
        })]
    );
    assert_eq!(
        values(&vs, "_profile"),
        vec![IndexValue::Uri(UriValue { uri: "http://p".into() })]
    );
}

#[test]
fn deceased_special_case() {
    let dead = json!({"resourceType": "Patient", "deceasedDateTime": "2020-01-01"});
    assert_eq!(
        values(&dead, "deceased"),
        vec![IndexValue::Token(token(None, Some("true"), None))]
    );
    let unknown = json!({"resourceType": "Patient"});
    assert_eq!(
        values(&unknown, "deceased"),
        vec![IndexValue::Token(token(None, Some("false"), None))]
    );
}

/// Parameters whose values this crate deliberately does not extract.
#[test]
fn known_unextractable_parameters() {
    let reg = Registry::r4();
    let mut unsupported: Vec<String> = reg
        .all()
        .iter()
        .filter(|p| !p.supported)
        .map(|p| format!("{}:{}", p.url.rsplit('/').next().unwrap_or_default(), p.code))
        .collect();
    unsupported.sort();
    assert_eq!(
        unsupported,
        vec![
            "DomainResource-text:_text",
            "Location-near:near",
            "Resource-content:_content",
            "Resource-query:_query"
        ]
    );
    // Bundle composition/message select the embedded first resource, not a reference:
    // nothing to index (chaining into a Bundle's own entries is not supported).
    let b = json!({"resourceType": "Bundle", "type": "document",
        "entry": [{"resource": {"resourceType": "Composition", "id": "c"}}]});
    assert!(values(&b, "composition").is_empty());
    // SampledData values are not indexed as quantities.
    let s = json!({"resourceType": "Observation", "valueSampledData": {"origin": {"value": 0}, "data": "1 2"}});
    assert!(values(&s, "value-quantity").is_empty());
}

#[test]
fn registry_lookup() {
    let reg = Registry::r4();
    let p = reg.param("Observation", "code-value-quantity").unwrap();
    assert_eq!(p.param_type, ParamType::Composite);
    assert_eq!(p.components.len(), 2);
    assert_eq!(p.components[1].param_type, ParamType::Quantity);
    let subject = reg.param("Observation", "subject").unwrap();
    assert!(subject.targets.contains(&"Patient".to_string()));
    assert!(reg.param("Patient", "_lastUpdated").is_some());
    assert!(
        reg.param("Bundle", "_text").is_none(),
        "DomainResource params skip Bundle"
    );
    assert!(reg.param("Resource", "_id").is_some());
    assert!(reg.params_for("Patient").count() > 25);
    assert!(reg.param("Patient", "nope").is_none());
    // Every type's parameters compiled, and multi-base expressions were narrowed.
    let clin = reg.param("Observation", "patient").unwrap();
    assert_eq!(format!("{:?}", clin.expression).matches("Member").count(), 2);
    for t in resource_types() {
        assert!(reg.param(t, "_id").is_some(), "{t}");
    }
}
