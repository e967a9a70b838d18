//! Search URL parsing: every parameter type, modifier, prefix, chain, and each refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use carnet_search::*;

fn pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn ok(rt: &str, q: &str) -> ParsedQuery {
    parse_query(Registry::r4(), Some(rt), &pairs(q), false).unwrap_or_else(|e| panic!("{q}: {e:?}"))
}

fn one(rt: &str, q: &str) -> Criterion {
    let mut p = ok(rt, q);
    assert_eq!(p.criteria.len(), 1, "{q}");
    p.criteria.remove(0)
}

fn err(rt: Option<&str>, q: &str) -> Vec<QueryError> {
    match parse_query(Registry::r4(), rt, &pairs(q), false) {
        Ok(p) => panic!("{q} should fail: {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn strings_and_or_and() {
    let c = one("Patient", "name=Zoë,peter");
    assert_eq!((c.param_type, c.values.len()), (ParamType::String, 2));
    assert_eq!(
        c.values[0].value,
        SearchValue::String {
            value: "Zoë".into(),
            normalized: "zoe".into()
        }
    );
    let c = one("Patient", r"family:exact=a\,b");
    assert_eq!(c.modifier, Some(Modifier::Exact));
    assert_eq!(c.values.len(), 1);
    assert_eq!(
        c.values[0].value,
        SearchValue::String {
            value: "a,b".into(),
            normalized: "a,b".into()
        }
    );
    assert_eq!(one("Patient", "name:contains=eter").modifier, Some(Modifier::Contains));
    let p = ok("Patient", "name=a&name=b&name=");
    assert_eq!(p.criteria.len(), 2, "repeats AND; empty values are ignored");
}

#[test]
fn tokens() {
    let t = |q: &str| one("Observation", q).values.remove(0).value;
    assert_eq!(
        t("code=1234"),
        SearchValue::Token(TokenQuery {
            system: TokenSystem::Any,
            code: Some("1234".into())
        })
    );
    assert_eq!(
        t("code=http://loinc.org|1234"),
        SearchValue::Token(TokenQuery {
            system: TokenSystem::Is("http://loinc.org".into()),
            code: Some("1234".into())
        })
    );
    assert_eq!(
        t("code=|1234"),
        SearchValue::Token(TokenQuery {
            system: TokenSystem::None,
            code: Some("1234".into())
        })
    );
    assert_eq!(
        t("code=http://loinc.org|"),
        SearchValue::Token(TokenQuery {
            system: TokenSystem::Is("http://loinc.org".into()),
            code: None
        })
    );
    assert_eq!(
        t(r"code=a\|b"),
        SearchValue::Token(TokenQuery {
            system: TokenSystem::Any,
            code: Some("a|b".into())
        })
    );
    assert_eq!(t("code:text=Body Wéight"), SearchValue::Text("body weight".into()));
    assert_eq!(one("Observation", "status:not=final").modifier, Some(Modifier::Not));
    assert_eq!(
        one("Patient", "identifier:of-type=http://t.org|MR|123").values[0].value,
        SearchValue::OfType {
            type_system: "http://t.org".into(),
            type_code: "MR".into(),
            value: "123".into()
        }
    );
    assert_eq!(one("Patient", "_id=abc").param, "_id");
    assert_eq!(
        one("Patient", "gender:missing=true").values[0].value,
        SearchValue::Missing(true)
    );
}

#[test]
fn references() {
    let r = |q: &str| match one("Observation", q).values.remove(0).value {
        SearchValue::Reference(r) => r,
        other => panic!("{other:?}"),
    };
    let v = r("subject=Patient/123");
    assert_eq!(
        (v.target_type.as_deref(), v.target_id.as_deref()),
        (Some("Patient"), Some("123"))
    );
    let v = r("subject:Patient=123");
    assert_eq!(
        (v.target_type.as_deref(), v.target_id.as_deref()),
        (Some("Patient"), Some("123"))
    );
    let v = r("subject=123");
    assert_eq!((v.target_type, v.target_id.as_deref()), (None, Some("123")));
    let v = r("patient=123");
    assert_eq!(v.target_type.as_deref(), Some("Patient"), "single-target parameter");
    let v = r("subject=http://other.org/fhir/Patient/9");
    assert_eq!(
        (v.url.as_deref(), v.target_id.as_deref()),
        (Some("http://other.org/fhir/Patient/9"), Some("9"))
    );
    assert_eq!(
        one("Observation", "subject:identifier=http://s|v").values[0].value,
        SearchValue::Identifier(TokenQuery {
            system: TokenSystem::Is("http://s".into()),
            code: Some("v".into())
        })
    );
    let c = one("Observation", "subject:Patient=1");
    assert_eq!(c.modifier, Some(Modifier::Type("Patient".into())));
}

#[test]
fn dates_numbers_quantities_with_prefixes() {
    let c = one("Patient", "birthdate=ge1974-12");
    let SearchValue::Date { prefix, range } = c.values[0].value else {
        panic!()
    };
    assert_eq!(prefix, Prefix::Ge);
    assert_eq!(range, parse_date_range("1974-12").unwrap());
    for p in ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"] {
        let q = format!("date={p}2020-01-01T10:00:00Z");
        let SearchValue::Date { prefix, .. } = one("Observation", &q).values[0].value else {
            panic!()
        };
        assert_eq!(prefix.as_str(), p);
    }
    let SearchValue::Date { prefix, .. } = one("Observation", "date=2020").values[0].value else {
        panic!()
    };
    assert_eq!(prefix, Prefix::Eq);
    let SearchValue::Number { prefix, number } = &one("RiskAssessment", "probability=gt0.8").values[0].value else {
        panic!()
    };
    assert_eq!((*prefix, number.value), (Prefix::Gt, Some(0.8)));
    let SearchValue::Quantity {
        prefix,
        number,
        system,
        code,
    } = &one("Observation", "value-quantity=le5.4|http://unitsofmeasure.org|mg").values[0].value
    else {
        panic!()
    };
    assert_eq!((*prefix, number.value), (Prefix::Le, Some(5.4)));
    assert_eq!(
        (system.as_deref(), code.as_deref()),
        (Some("http://unitsofmeasure.org"), Some("mg"))
    );
    let SearchValue::Quantity { system, code, .. } = &one("Observation", "value-quantity=5.4||mg").values[0].value
    else {
        panic!()
    };
    assert_eq!((system.as_deref(), code.as_deref()), (None, Some("mg")));
}

#[test]
fn uris_and_composites() {
    assert_eq!(
        one("ValueSet", "url=http://x/vs").values[0].value,
        SearchValue::Uri("http://x/vs".into())
    );
    assert_eq!(one("ValueSet", "url:below=http://x/").modifier, Some(Modifier::Below));
    assert_eq!(
        one("ValueSet", "url:above=http://x/vs/1").modifier,
        Some(Modifier::Above)
    );
    let c = one(
        "Observation",
        "code-value-quantity=http://loinc.org|8480-6$lt60||mm[Hg]",
    );
    let SearchValue::Composite(parts) = &c.values[0].value else {
        panic!()
    };
    assert!(matches!(&parts[0], SearchValue::Token(t) if t.code.as_deref() == Some("8480-6")));
    assert!(matches!(&parts[1], SearchValue::Quantity { prefix: Prefix::Lt, .. }));
    let c = one("Observation", "component-code-value-quantity=8480-6$100,8462-4$60");
    assert_eq!(c.values.len(), 2);
}

#[test]
fn chains_and_reverse_chains() {
    let c = one("Observation", "subject:Patient.name=peter");
    assert_eq!(
        c.chain,
        vec![ChainStep::Forward {
            param: "subject".into(),
            explicit_type: Some("Patient".into()),
            target_types: vec!["Patient".into()]
        }]
    );
    assert_eq!(
        (c.param.as_str(), c.resource_types.clone()),
        ("name", vec!["Patient".to_string()])
    );
    let c = one("Observation", "subject.name=peter");
    let ChainStep::Forward { target_types, .. } = &c.chain[0] else {
        panic!()
    };
    assert!(target_types.contains(&"Patient".to_string()) && !target_types.contains(&"Device".to_string()));
    let c = one("DiagnosticReport", "subject:Patient.organization.name=acme");
    assert_eq!(c.chain.len(), 2);
    let c = one("Patient", "_has:Observation:patient:code=1234-5");
    assert_eq!(
        c.chain,
        vec![ChainStep::Reverse {
            source_type: "Observation".into(),
            param: "patient".into()
        }]
    );
    assert_eq!(c.param, "code");
    let c = one(
        "Patient",
        "_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/1",
    );
    assert_eq!(c.chain.len(), 2);
    assert_eq!(c.name(), "_has:Observation:patient:_has:AuditEvent:entity:agent");
    let c = one("Encounter", "patient._has:Observation:patient:code=x");
    assert_eq!(c.chain.len(), 2);
}

#[test]
fn result_parameters_are_separate() {
    let p = ok(
        "Observation",
        "code=x&_count=10&_sort=-date,code&_include=Observation:subject&_include:iterate=Patient:organization\
         &_revinclude=Provenance:target&_include=*&_summary=count&_elements=id,code&_total=accurate\
         &_format=json&_pretty=true&_since=2020-01-01T00:00:00Z&_offset=20",
    );
    assert_eq!(p.criteria.len(), 1);
    let r = &p.result;
    assert_eq!(r.count, Some(10));
    assert_eq!(r.offset, Some(20));
    assert_eq!(
        r.sort,
        vec![
            SortKey {
                param: "date".into(),
                descending: true
            },
            SortKey {
                param: "code".into(),
                descending: false
            }
        ]
    );
    assert_eq!(r.include.len(), 3);
    assert!(r.include[1].iterate && r.include[1].source_type == "Patient");
    assert_eq!(r.include[2].param, None);
    assert_eq!(r.revinclude[0].param.as_deref(), Some("target"));
    assert_eq!(
        (r.summary, r.total, r.pretty),
        (Some(Summary::Count), Some(Total::Accurate), Some(true))
    );
    assert_eq!(r.elements, vec!["id", "code"]);
    let s = parse_query(
        Registry::r4(),
        None,
        &pairs("_type=Patient,Practitioner&name=x&_lastUpdated=gt2020"),
        false,
    )
    .unwrap();
    assert_eq!(s.result.types, vec!["Patient", "Practitioner"]);
    assert_eq!(s.criteria[0].resource_types, vec!["Patient", "Practitioner"]);
    let s = parse_query(Registry::r4(), None, &pairs("_id=1"), false).unwrap();
    assert_eq!(s.criteria[0].resource_types, vec!["Resource"]);
}

#[test]
fn renders_canonically() {
    let p = ok(
        "Observation",
        "subject:Patient.name=peter&code=a,b%5C%2Cc&_count=5&_sort=-date&_include:iterate=Observation:subject",
    );
    assert_eq!(
        p.to_query_string(),
        "subject%3APatient.name=peter&code=a%2Cb%5C%2Cc&_sort=-date&_include%3Aiterate=Observation%3Asubject&_count=5"
    );
    let again = ok("Observation", &p.to_query_string());
    assert_eq!(again, p);
}

#[test]
fn refusals() {
    let cases: &[(Option<&str>, &str, &str)] = &[
        (Some("Patient"), "nope=1", "nope"),
        (Some("Patient"), "name:foo=1", "name:foo"),
        (Some("Patient"), "name:not=1", "name:not"),
        (Some("Observation"), "code:in=http://vs", "code:in"),
        (Some("Observation"), "code:below=x", "code:below"),
        (Some("Patient"), "birthdate=1974-13", "birthdate"),
        (Some("Patient"), "birthdate=xx1974", "birthdate"),
        (Some("Patient"), "birthdate:exact=1974", "birthdate:exact"),
        (Some("Observation"), "value-quantity=abc", "value-quantity"),
        (Some("Observation"), "value-quantity=1|a", "value-quantity"),
        (Some("Observation"), "code=a|b|c", "code"),
        (Some("Observation"), "code=|", "code"),
        (Some("Observation"), "code=a,,b", "code"),
        (Some("Patient"), "gender:missing=maybe", "gender:missing"),
        (Some("Patient"), "identifier:of-type=a|b", "identifier:of-type"),
        (Some("Observation"), "subject:Patient=Group/1", "subject:Patient"),
        (Some("Observation"), "subject:Medication=1", "subject:Medication"),
        (Some("Observation"), "patient=Group/1", "patient"),
        (Some("Observation"), "subject=Foo/1", "subject"),
        (Some("Observation"), "specimen=Patient/1", "specimen"),
        (Some("Observation"), "subject=bad id!", "subject"),
        (Some("Observation"), "code.name=x", "code.name"),
        (Some("Observation"), "subject:Patient.nope=x", "subject:Patient.nope"),
        (Some("Observation"), "subject:Nope.name=x", "subject:Nope.name"),
        (
            Some("Patient"),
            "_has:Observation:code:code=x",
            "_has:Observation:code:code",
        ),
        (
            Some("Patient"),
            "_has:Observation:patient=x",
            "_has:Observation:patient",
        ),
        (Some("Patient"), "_has:Nope:patient:code=x", "_has:Nope:patient:code"),
        (Some("Observation"), "code-value-quantity=a", "code-value-quantity"),
        (Some("Location"), "near=1|2", "near"),
        (Some("Patient"), "_text=x", "_text"),
        (Some("Patient"), "_content=x", "_content"),
        (Some("Patient"), "_count=-1", "_count"),
        (Some("Patient"), "_sort=nope", "_sort"),
        (Some("Patient"), "_include=Patient:name", "_include"),
        (Some("Patient"), "_include=Patient", "_include"),
        (Some("Patient"), "_include:foo=Patient:organization", "_include:foo"),
        (Some("Patient"), "_summary=maybe", "_summary"),
        (Some("Patient"), "_total=all", "_total"),
        (Some("Patient"), "_list=1", "_list"),
        (Some("Patient"), "_filter=name eq x", "_filter"),
        (None, "_type=Nope", "_type"),
        (None, "name=x", "name"),
    ];
    for (rt, q, param) in cases {
        let e = err(*rt, q);
        assert_eq!(e.len(), 1, "{q}: {e:?}");
        assert_eq!(e[0].param, *param, "{q}: {e:?}");
        assert!(!e[0].message.is_empty());
    }
    assert!(parse_query(Registry::r4(), Some("Nope"), &[], false).is_err());
}

#[test]
fn lenient_reports_ignored() {
    let p = parse_query(Registry::r4(), Some("Patient"), &pairs("name=x&nope=1&_count=x"), true).unwrap();
    assert_eq!(p.criteria.len(), 1);
    assert_eq!(
        p.ignored.iter().map(|e| e.param.as_str()).collect::<Vec<_>>(),
        vec!["_count", "nope"]
    );
    assert_eq!(p.to_query_string(), "name=x");
    let e = err(Some("Patient"), "name=x&nope=1&_count=x");
    assert_eq!(e.len(), 2);
}
