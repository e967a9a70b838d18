//! Search over HTTP on both backends: a fixed data set and a table of queries with the
//! exact ids each must return, then paging, includes, result shaping, entry points,
//! refusals and the conditional interactions that rely on search.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use carnet_tests::{TestServer, expressions, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const MRN: &str = "http://hospital.example/mrn";

fn quantity(value: f64, code: &str) -> Value {
    json!({"value": value, "unit": code, "system": UCUM, "code": code})
}

fn loinc(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": LOINC, "code": code, "display": display}]})
}

fn data() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-02-29",
            "identifier": [{"system": "https://ramq.gouv.qc.ca/nam", "value": "TREM12345678",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "JHN"}]}}],
            "name": [{"family": "Tremblay", "given": ["Élise"]}]}),
        json!({"resourceType": "Patient", "id": "p2", "gender": "other", "birthDate": "1975-06",
            "identifier": [{"system": MRN, "value": "MRN002"}],
            "name": [{"family": "Gagnon", "given": ["Zoë"]}]}),
        json!({"resourceType": "Patient", "id": "p3", "gender": "male", "birthDate": "1990",
            "identifier": [{"system": MRN, "value": "MRN003"}],
            "name": [{"family": "Roy", "given": ["Émile"]}]}),
        json!({"resourceType": "Patient", "id": "p4", "gender": "male",
            "meta": {"tag": [{"system": "http://example.org/tags", "code": "vip"}],
                "profile": ["http://example.org/StructureDefinition/vip-patient"]},
            "name": [{"family": "Tremblay-Roy", "given": ["Louis"]}]}),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2024-03-10T08:00:00Z", "end": "2024-03-10T10:00:00Z"}}),
        json!({"resourceType": "Observation", "id": "o1", "status": "final",
            "code": loinc("8480-6", "Systolic blood pressure"), "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "Encounter/e1"},
            "effectiveDateTime": "2024-03-10T08:30:00Z", "valueQuantity": quantity(120.0, "mm[Hg]")}),
        json!({"resourceType": "Observation", "id": "o2", "status": "final",
            "code": loinc("8867-4", "Heart rate"), "subject": {"reference": "Patient/p1"},
            "effectivePeriod": {"start": "2024-03-10T08:00:00Z", "end": "2024-03-10T09:00:00Z"},
            "valueQuantity": quantity(72.0, "/min")}),
        json!({"resourceType": "Observation", "id": "o3", "status": "preliminary",
            "code": loinc("8480-6", "Systolic blood pressure"), "subject": {"reference": "Patient/p2"},
            "effectiveDateTime": "2023-12-31", "valueQuantity": quantity(135.5, "mm[Hg]")}),
        json!({"resourceType": "Observation", "id": "o4", "status": "final",
            "code": loinc("29463-7", "Body weight"), "subject": {"reference": "Patient/p3"},
            "effectiveDateTime": "2024-01-15T10:00:00+02:00", "valueQuantity": {"value": 70.25, "unit": "kg"}}),
        json!({"resourceType": "Observation", "id": "o5", "status": "final",
            "code": loinc("85354-9", "Blood pressure panel"), "subject": {"reference": "Patient/p2"},
            "effectiveDateTime": "2024-02-01",
            "component": [
                // Two codings in one component: a composite value is one element's.
                {"code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic"},
                                     {"system": "http://example.org/codes", "code": "sys"}]},
                 "valueQuantity": quantity(142.0, "mm[Hg]")},
                {"code": loinc("8462-4", "Diastolic"), "valueQuantity": quantity(91.0, "mm[Hg]")}]}),
        json!({"resourceType": "Observation", "id": "o6", "status": "cancelled",
            "code": {"coding": [{"system": "http://example.org/codes", "code": "1234-5"}]},
            "subject": {"identifier": {"system": MRN, "value": "MRN003"}}}),
        json!({"resourceType": "RiskAssessment", "id": "ra1", "status": "final", "subject": {"reference": "Patient/p1"},
            "prediction": [{"probabilityDecimal": 0.02}]}),
        json!({"resourceType": "RiskAssessment", "id": "ra2", "status": "final", "subject": {"reference": "Patient/p2"},
            "prediction": [{"probabilityDecimal": 0.35}]}),
    ]
}

async fn load(s: &TestServer) {
    for r in data() {
        let path = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
        let resp = s.send_json(Method::PUT, &path, &r).await;
        assert_eq!(resp.status().as_u16(), 201, "{path}: {}", resp.text().await.unwrap());
    }
}

fn ids(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == mode)
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

async fn search(s: &TestServer, path: &str) -> Value {
    // The system level is the base itself (`[base]?…`).
    let url = if path.starts_with('?') {
        format!("{}{path}", s.base)
    } else {
        s.url(path)
    };
    let (status, body) = s.get_json(&url).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(body["type"], "searchset");
    body
}

async fn expect(s: &TestServer, path: &str, expected: &[&str]) {
    let got: BTreeSet<String> = ids(&search(s, path).await, "match").into_iter().collect();
    let want: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want, "{path} on {:?}", s.backend);
}

async fn expect_order(s: &TestServer, path: &str, expected: &[&str]) {
    let got = ids(&search(s, path).await, "match");
    assert_eq!(got, expected, "{path} on {:?}", s.backend);
}

/// (query, ids it must return exactly)
const TABLE: &[(&str, &[&str])] = &[
    // string: prefix, case and accent folding, :exact, :contains, OR and AND
    ("Patient?name=tremblay", &["p1", "p4"]),
    ("Patient?name=ELISE", &["p1"]),
    ("Patient?given=zoe", &["p2"]),
    ("Patient?given=Émi", &["p3"]),
    ("Patient?family:exact=Tremblay", &["p1"]),
    ("Patient?family:exact=tremblay", &[]),
    ("Patient?name:contains=roy", &["p3", "p4"]),
    ("Patient?name=zoe,roy", &["p2", "p3"]),
    ("Patient?name=tremblay&gender=male", &["p4"]),
    ("Patient?name:missing=true", &[]),
    // token: code, system|code, system|, |code, :not, :text, :of-type, :missing
    ("Patient?identifier=TREM12345678", &["p1"]),
    ("Patient?identifier=http://hospital.example/mrn|MRN002", &["p2"]),
    ("Patient?identifier=http://hospital.example/mrn|", &["p2", "p3"]),
    ("Patient?identifier=|MRN003", &[]),
    (
        "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|JHN|TREM12345678",
        &["p1"],
    ),
    ("Patient?identifier:missing=true", &["p4"]),
    ("Patient?gender=male", &["p3", "p4"]),
    ("Patient?gender:not=male", &["p1", "p2"]),
    ("Observation?code=8480-6", &["o1", "o3"]),
    ("Observation?code=http://loinc.org|8480-6", &["o1", "o3"]),
    ("Observation?code=http://other.org|8480-6", &[]),
    ("Observation?code:text=systolic", &["o1", "o3"]),
    ("Observation?status=final,preliminary", &["o1", "o2", "o3", "o4", "o5"]),
    // date: precisions and every prefix
    ("Patient?birthdate=1980-02-29", &["p1"]),
    ("Patient?birthdate=1980", &["p1"]),
    ("Patient?birthdate=1975", &["p2"]),
    ("Patient?birthdate=1975-06-15", &[]),
    ("Patient?birthdate=lt1980", &["p2"]),
    ("Patient?birthdate=ge1980-02-29", &["p1", "p3"]),
    ("Patient?birthdate=gt1980-12-31", &["p3"]),
    ("Patient?birthdate=le1975-06-30", &["p2"]),
    ("Patient?birthdate=sa1980", &["p3"]),
    ("Patient?birthdate=eb1980", &["p2"]),
    ("Patient?birthdate=ne1980", &["p2", "p3"]),
    ("Patient?birthdate=ap1990-06-01", &["p3"]),
    ("Patient?birthdate:missing=true", &["p4"]),
    ("Patient?birthdate:missing=false", &["p1", "p2", "p3"]),
    ("Observation?date=2024-03-10", &["o1", "o2"]),
    ("Observation?date=2024-03-10T08:30:00Z", &["o1"]),
    ("Observation?date=gt2024-03-10T08:30:00Z", &["o2"]),
    ("Observation?date=lt2024-01-01", &["o3"]),
    ("Observation?date=ge2024-02-01", &["o1", "o2", "o5"]),
    ("Observation?date=2024-01-15T08:00:00Z", &["o4"]),
    ("Observation?date=eb2024-01-01", &["o3"]),
    ("Observation?date=sa2024-03-01", &["o1", "o2"]),
    ("Observation?date=ge2024-01-01&date=lt2024-02-01", &["o4"]),
    // quantity and number
    ("Observation?value-quantity=120", &["o1"]),
    ("Observation?value-quantity=72.0", &["o2"]),
    ("Observation?value-quantity=7.2e1", &["o2"]),
    ("Observation?value-quantity=gt100", &["o1", "o3"]),
    ("Observation?value-quantity=lt71", &["o4"]),
    ("Observation?value-quantity=ap72", &["o2", "o4"]),
    ("Observation?value-quantity=ne72", &["o1", "o3", "o4"]),
    (
        "Observation?value-quantity=135.5|http://unitsofmeasure.org|mm[Hg]",
        &["o3"],
    ),
    ("Observation?value-quantity=135.5|http://unitsofmeasure.org|kg", &[]),
    ("Observation?value-quantity=70.25||kg", &["o4"]),
    ("RiskAssessment?probability=0.02", &["ra1"]),
    ("RiskAssessment?probability=gt0.1", &["ra2"]),
    ("RiskAssessment?probability=le0.02", &["ra1"]),
    // composite
    (
        "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt140",
        &["o5"],
    ),
    (
        "Observation?component-code-value-quantity=http://loinc.org|8462-4$gt140",
        &[],
    ),
    ("Observation?code-value-quantity=8480-6$lt130", &["o1"]),
    // Either coding of the systolic component goes with its own value only: 91 is the
    // diastolic component's.
    (
        "Observation?component-code-value-quantity=http://example.org/codes|sys$gt140",
        &["o5"],
    ),
    (
        "Observation?component-code-value-quantity=http://example.org/codes|sys$lt100",
        &[],
    ),
    (
        "Observation?component-code-value-quantity=http://loinc.org|8462-4$lt100",
        &["o5"],
    ),
    // Observation's `combo-*` parameters are read from the rows of their parts
    // (`code` and `component-code`...): both levels match, and a composite value
    // still pairs a code with its own element's value only.
    ("Observation?combo-code=8480-6", &["o1", "o3", "o5"]),
    ("Observation?combo-code=85354-9", &["o5"]),
    ("Observation?combo-code=http://example.org/codes|sys", &["o5"]),
    ("Observation?combo-code:not=8480-6", &["o2", "o4", "o6"]),
    ("Observation?combo-code:missing=true", &[]),
    ("Observation?combo-value-quantity:missing=true", &["o6"]),
    ("Observation?combo-value-quantity=gt140", &["o5"]),
    ("Observation?combo-value-quantity=lt100", &["o2", "o4", "o5"]),
    (
        "Observation?combo-code-value-quantity=http://loinc.org|8480-6$gt130",
        &["o3", "o5"],
    ),
    (
        "Observation?combo-code-value-quantity=http://loinc.org|8462-4$gt140",
        &[],
    ),
    ("Observation?combo-code-value-quantity=85354-9$gt100", &[]),
    (
        "Observation?combo-code-value-quantity:missing=false",
        &["o1", "o2", "o3", "o4", "o5"],
    ),
    ("Observation?combo-code=8480-6&patient=p2", &["o3", "o5"]),
    ("Observation?combo-code=8480-6&date=ge2024-01-01", &["o1", "o5"]),
    ("Patient?_has:Observation:patient:combo-code=8462-4", &["p2"]),
    ("Patient/p2/Observation?combo-code=8462-4", &["o5"]),
    // reference: Type/id, id, :Type, :identifier, :missing
    ("Observation?subject=Patient/p1", &["o1", "o2"]),
    ("Observation?subject=p1", &["o1", "o2"]),
    ("Observation?patient=p2", &["o3", "o5"]),
    ("Observation?subject:Patient=p2", &["o3", "o5"]),
    (
        "Observation?subject:identifier=http://hospital.example/mrn|MRN003",
        &["o6"],
    ),
    ("Observation?encounter:missing=false", &["o1"]),
    // chains and reverse chains
    ("Observation?subject:Patient.name=tremblay", &["o1", "o2"]),
    ("Observation?subject:Patient.birthdate=lt1980", &["o3", "o5"]),
    ("Observation?encounter.patient.family=tremblay", &["o1"]),
    ("Observation?encounter.subject:Patient.identifier=TREM12345678", &["o1"]),
    ("Patient?_has:Observation:patient:code=8480-6", &["p1", "p2"]),
    ("Patient?_has:Observation:subject:status=preliminary", &["p2"]),
    (
        "Patient?_has:Encounter:patient:_has:Observation:encounter:code=8480-6",
        &["p1"],
    ),
    // special parameters
    ("Patient?_id=p1,p3", &["p1", "p3"]),
    ("Patient?_id:not=p1", &["p2", "p3", "p4"]),
    ("Patient?_tag=http://example.org/tags|vip", &["p4"]),
    (
        "Patient?_profile=http://example.org/StructureDefinition/vip-patient",
        &["p4"],
    ),
    (
        "Patient?_profile:below=http://example.org/StructureDefinition/",
        &["p4"],
    ),
    (
        "Patient?_profile:above=http://example.org/StructureDefinition/vip-patient/v2",
        &["p4"],
    ),
    ("Patient?_lastUpdated=gt2000-01-01", &["p1", "p2", "p3", "p4"]),
    ("Patient?_lastUpdated=lt2000-01-01", &[]),
    // system level and compartments
    ("?_type=Patient,Encounter&_id=p1,e1,o1", &["p1", "e1"]),
    ("?_id=o1", &["o1"]),
    ("?_tag=http://example.org/tags|vip", &["p4"]),
    ("Patient/p1/Observation", &["o1", "o2"]),
    ("Patient/p1/Observation?code=8480-6", &["o1"]),
    ("Patient/p1/Encounter", &["e1"]),
    ("Patient/p2/Observation", &["o3", "o5"]),
    ("Patient/p1/Patient", &["p1"]),
];

async fn query_table(s: &TestServer) {
    load(s).await;
    for (path, expected) in TABLE {
        expect(s, path, expected).await;
    }
    let absolute = format!("Observation?subject={}", s.url("Patient/p1"));
    expect(s, &absolute, &["o1", "o2"]).await;
}

async fn sorting(s: &TestServer) {
    load(s).await;
    expect_order(s, "Observation?_sort=date", &["o3", "o4", "o5", "o2", "o1", "o6"]).await;
    expect_order(s, "Observation?_sort=-date", &["o2", "o1", "o5", "o4", "o3", "o6"]).await;
    expect_order(
        s,
        "Observation?_sort=status,-date",
        &["o6", "o2", "o1", "o5", "o4", "o3"],
    )
    .await;
    // The smallest code of either level: o5's is its diastolic component's.
    expect_order(
        s,
        "Observation?_sort=combo-code,_id",
        &["o6", "o4", "o5", "o1", "o3", "o2"],
    )
    .await;
    expect_order(s, "Patient?_sort=birthdate", &["p2", "p1", "p3", "p4"]).await;
    expect_order(s, "Patient?_sort=-family", &["p4", "p1", "p3", "p2"]).await;
    expect_order(s, "Patient?_sort=family,_id", &["p2", "p3", "p1", "p4"]).await;
    expect_order(s, "Patient?_sort=gender,-_id&_count=2", &["p1", "p4"]).await;
    expect_order(s, "Patient?_sort=-_id", &["p4", "p3", "p2", "p1"]).await;
}

async fn includes(s: &TestServer) {
    load(s).await;
    let b = search(s, "Observation?code=8867-4&_include=Observation:subject").await;
    assert_eq!(ids(&b, "match"), ["o2"]);
    assert_eq!(ids(&b, "include"), ["p1"]);
    assert_eq!(b["total"], 1);
    let b = search(s, "Patient?_id=p1&_revinclude=Observation:subject").await;
    assert_eq!(ids(&b, "match"), ["p1"]);
    let inc: BTreeSet<String> = ids(&b, "include").into_iter().collect();
    assert_eq!(inc, ["o1", "o2"].iter().map(|s| s.to_string()).collect());
    let b = search(
        s,
        "Observation?_id=o1&_include=Observation:encounter&_include:iterate=Encounter:subject",
    )
    .await;
    let inc: BTreeSet<String> = ids(&b, "include").into_iter().collect();
    assert_eq!(inc, ["e1", "p1"].iter().map(|s| s.to_string()).collect());
    // Without :iterate, the encounter's subject is not followed.
    let b = search(
        s,
        "Observation?_id=o1&_include=Observation:encounter&_include=Encounter:subject",
    )
    .await;
    assert_eq!(ids(&b, "include"), ["e1"]);
    let b = search(s, "Observation?_id=o1&_include=*").await;
    let inc: BTreeSet<String> = ids(&b, "include").into_iter().collect();
    assert_eq!(inc, ["e1", "p1"].iter().map(|s| s.to_string()).collect());
    let entry = &b["entry"][0];
    assert_eq!(entry["fullUrl"].as_str().unwrap(), s.url("Observation/o1"));
}

fn link(bundle: &Value, rel: &str) -> Option<String> {
    bundle["link"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["relation"] == rel)
        .map(|l| l["url"].as_str().unwrap().to_string())
}

async fn paging_is_stable_while_writing(s: &TestServer) {
    let mut originals = BTreeSet::new();
    for i in 0..12 {
        let p = s
            .create(json!({"resourceType": "Patient", "name": [{"family": format!("Pager{i:02}")}]}))
            .await;
        originals.insert(p["id"].as_str().unwrap().to_string());
    }
    for sort in ["", "&_sort=-family", "&_sort=family,_id"] {
        let mut seen = Vec::new();
        let first = search(s, &format!("Patient?name=pager&_count=5{sort}")).await;
        assert!(
            first.get("total").is_none(),
            "a full first page carries no total by default"
        );
        assert!(link(&first, "previous").is_none());
        let mut page = first.clone();
        let mut pages = 0;
        loop {
            seen.extend(ids(&page, "match"));
            pages += 1;
            // New matching resources between pages must not disturb the walk. They sort
            // after the originals, except with -family where they sort first (so the
            // rows just before page 2 are no longer page 1's: not checked there).
            s.create(json!({"resourceType": "Patient", "name": [{"family": "Pagerzz-new"}]}))
                .await;
            let Some(next) = link(&page, "next") else {
                break;
            };
            assert!(next.contains("_cursor="));
            page = search(s, &next).await;
            assert!(page.get("total").is_none(), "later pages carry no total by default");
            if pages == 1 && sort != "&_sort=-family" {
                let back = search(s, &link(&page, "previous").unwrap()).await;
                assert_eq!(
                    ids(&back, "match"),
                    ids(&first, "match"),
                    "previous of page 2 is page 1 ({sort})"
                );
            }
        }
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "no duplicates ({sort})");
        assert!(originals.is_subset(&unique), "no gaps among the originals ({sort})");
        if sort == "&_sort=-family" {
            let fams: Vec<String> = seen.iter().take(12).cloned().collect();
            assert_eq!(fams.len(), 12);
        }
    }
    let b = search(s, "Patient?name=pager00&_count=1").await;
    assert_eq!(b["link"][0]["relation"], "self");
    assert!(link(&b, "self").unwrap().ends_with("Patient?name=pager00&_count=1"));
}

async fn summary_total_elements(s: &TestServer) {
    load(s).await;
    let b = search(s, "Observation?code=8480-6&_summary=count").await;
    assert_eq!(b["total"], 2);
    assert!(b.get("entry").is_none());
    let b = search(s, "Observation?status=final&_count=2").await;
    assert!(
        b.get("total").is_none(),
        "a full first page is not counted unless asked"
    );
    assert_eq!(ids(&b, "match").len(), 2);
    assert_eq!(
        search(s, "Observation?status=final&_count=2&_total=accurate").await["total"],
        4
    );
    let next = search(s, &link(&b, "next").unwrap()).await;
    assert!(next.get("total").is_none());
    let next = search(s, &format!("{}&_total=accurate", link(&b, "next").unwrap())).await;
    assert_eq!(next["total"], 4);
    let b = search(s, "Observation?status=final&_total=none").await;
    assert!(b.get("total").is_none());
    let b = search(s, "Patient?_id=p1&_elements=birthDate").await;
    let p = &b["entry"][0]["resource"];
    assert_eq!(p["birthDate"], "1980-02-29");
    assert!(p.get("name").is_none());
    assert!(
        p["meta"]["tag"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["code"] == "SUBSETTED")
    );
    let b = search(s, "Patient?_id=p1&_summary=data").await;
    assert_eq!(b["entry"][0]["resource"]["name"][0]["family"], "Tremblay");
}

async fn post_search_and_lenient(s: &TestServer) {
    load(s).await;
    let r = s
        .req(Method::POST, "Patient/_search?gender=male")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=tremblay")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(ids(&b, "match"), ["p4"]);
    let r = s
        .req(Method::GET, "Patient?foo=bar&name=tremblay")
        .header("prefer", "handling=lenient")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    let got: BTreeSet<String> = ids(&b, "match").into_iter().collect();
    assert_eq!(got, ["p1", "p4"].iter().map(|s| s.to_string()).collect());
    let oo = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .unwrap();
    assert_eq!(expressions(&oo["resource"]), ["foo"]);
    assert!(
        !link(&b, "self").unwrap().contains("foo"),
        "self shows only applied parameters"
    );
}

async fn refusals(s: &TestServer) {
    for (path, param) in [
        ("Patient?foo=bar", "foo"),
        ("Patient?name:foo=x", "name:foo"),
        ("Patient?birthdate=2020-13-45", "birthdate"),
        ("Patient?birthdate=xx2020", "birthdate"),
        ("Observation?subject.foo=x", "subject.foo"),
        ("Patient?_sort=nope", "_sort"),
        ("Patient?_cursor=zz", "_cursor"),
    ] {
        let (status, body) = s.get_json(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
        assert_eq!(expressions(&body), [param], "{path}");
    }
}

async fn conditional_interactions(s: &TestServer) {
    load(s).await;
    // Conditional create finds the existing patient by identifier.
    let r = s
        .req(Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .header("if-none-exist", "identifier=http://hospital.example/mrn|MRN002")
        .body(serde_json::to_vec(&json!({"resourceType": "Patient"})).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let found: Value = r.json().await.unwrap();
    assert_eq!(found["id"], "p2");
    // Several matches: 412.
    let r = s
        .req(Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .header("if-none-exist", "identifier=http://hospital.example/mrn|")
        .body(serde_json::to_vec(&json!({"resourceType": "Patient"})).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
    // Conditional update of the one match.
    let body = json!({"resourceType": "Patient", "identifier": [{"system": MRN, "value": "MRN003"}],
        "name": [{"family": "Roy-Updated"}]});
    let r = s
        .send_json(
            Method::PUT,
            "Patient?identifier=http://hospital.example/mrn|MRN003",
            &body,
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], "p3");
    expect(s, "Patient?family=roy-updated", &["p3"]).await;
    expect(s, "Patient?family:exact=Roy", &[]).await;
    // Conditional delete of the one match; its index rows go with it.
    let r = s
        .req(Method::DELETE, "Patient?identifier=http://hospital.example/mrn|MRN002")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    expect(s, "Patient?identifier=http://hospital.example/mrn|", &["p3"]).await;
    expect(s, "Observation?subject:Patient.name=gagnon", &[]).await;
    expect(s, "Patient?_id=p2", &[]).await;
}

async fn capability_lists_search_params(s: &TestServer) {
    let (status, cs) = s.get_json("metadata").await;
    assert_eq!(status, 200);
    let rest = &cs["rest"][0];
    let patient = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap();
    let params = patient["searchParam"].as_array().unwrap();
    assert!(params.iter().any(|p| p["name"] == "birthdate" && p["type"] == "date"));
    assert!(
        patient["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["code"] == "search-type")
    );
    assert!(
        rest["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "_lastUpdated")
    );
}

/// Searches whose criteria are folded into one index range (server/src/search/sql/
/// fold.rs) next to resources that cannot be folded: a Period longer than the folded
/// span, a year-precision date, no date, several patients on one Appointment.
async fn folded_plans(s: &TestServer) {
    let obs = |id: &str, code: &str, patient: &str, when: Value| {
        let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": loinc(code, "x"), "subject": {"reference": format!("Patient/{patient}")}});
        if let Value::Object(w) = when {
            o.as_object_mut().unwrap().extend(w);
        }
        o
    };
    let appt = |id: &str, status: &str, patients: &[&str], start: &str| {
        let mut participant: Vec<Value> = patients
            .iter()
            .map(|p| json!({"actor": {"reference": format!("Patient/{p}")}, "status": "accepted"}))
            .collect();
        participant.push(json!({"actor": {"reference": "Practitioner/dr"}, "status": "accepted"}));
        json!({"resourceType": "Appointment", "id": id, "status": status, "start": start,
            "end": start.replace("T09", "T10"), "participant": participant})
    };
    let data = vec![
        json!({"resourceType": "Patient", "id": "fa", "name": [{"family": "Fournier"}]}),
        json!({"resourceType": "Patient", "id": "fb", "name": [{"family": "Bélanger"}]}),
        json!({"resourceType": "Patient", "id": "fc", "name": [{"family": "Fortin"}]}),
        json!({"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Côté"}]}),
        obs(
            "x1",
            "4548-4",
            "fa",
            json!({"effectiveDateTime": "2024-02-10T09:00:00Z"}),
        ),
        obs(
            "x2",
            "4548-4",
            "fa",
            json!({"effectivePeriod": {"start": "2020-01-01", "end": "2024-03-01"}}),
        ),
        obs("x3", "4548-4", "fb", json!({"effectiveDateTime": "2023-06-01"})),
        obs("x4", "4548-4", "fa", json!({})),
        obs("x5", "718-7", "fa", json!({"effectiveDateTime": "2024-02-11"})),
        obs("x6", "4548-4", "fb", json!({"effectiveDateTime": "2024"})),
        obs(
            "x7",
            "4548-4",
            "fa",
            json!({"effectivePeriod": {"start": "2024-03-20"}}),
        ),
        appt("a1", "booked", &["fa", "fb"], "2024-02-12T09:00:00Z"),
        appt("a2", "booked", &["fb"], "2024-02-13T09:00:00Z"),
        appt("a3", "cancelled", &["fa"], "2024-02-14T09:00:00Z"),
    ];
    for r in data {
        let path = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
        let resp = s.send_json(Method::PUT, &path, &r).await;
        assert_eq!(resp.status().as_u16(), 201, "{path}: {}", resp.text().await.unwrap());
    }
    let table: &[(&str, &[&str])] = &[
        (
            "Observation?code=4548-4&date=ge2024-01-01&date=lt2024-04-01",
            &["x1", "x2", "x6", "x7"],
        ),
        ("Observation?code=4548-4&date=2024-02", &["x1"]),
        ("Observation?code=4548-4&date=lt2023-01-01", &["x2"]),
        ("Observation?code=4548-4&date=gt2024-06-01", &["x6", "x7"]),
        ("Observation?code=4548-4&date=sa2024-03-01", &["x7"]),
        ("Observation?code=4548-4&date=ne2024", &["x2", "x3", "x7"]),
        ("Observation?code=4548-4,718-7&date=2024-02", &["x1", "x5"]),
        ("Observation?subject=Patient/fa&code=4548-4", &["x1", "x2", "x4", "x7"]),
        ("Observation?patient=fb&code=4548-4", &["x3", "x6"]),
        ("Observation?patient=Patient/fa,Patient/fb&code=718-7", &["x5"]),
        ("Observation?patient=fa&code=4548-4&date=2024-02-10", &["x1"]),
        ("Observation?patient=fa&code=4548-4&date=le2024-02-10", &["x1", "x2"]),
        ("Observation?patient=fa&date=ge2024-03-01", &["x7"]),
        ("Observation?patient=fa&date=ge2024-02-29", &["x2", "x7"]),
        (
            "Observation?subject:Patient.name=fournier&code=4548-4",
            &["x1", "x2", "x4", "x7"],
        ),
        (
            "Observation?subject:Patient.name=fo&code=4548-4",
            &["x1", "x2", "x4", "x7"],
        ),
        (
            "Observation?subject:Patient.name=belanger&code=4548-4&date=2024",
            &["x6"],
        ),
        ("Patient?_has:Observation:patient:code=4548-4", &["fa", "fb"]),
        ("Patient?_has:Observation:subject:code=718-7", &["fa"]),
        ("Patient?_has:Appointment:patient:status=booked", &["fa", "fb"]),
        ("Patient?_has:Appointment:patient:status=cancelled", &["fa"]),
        ("Patient?_has:Observation:patient:code=4548-4&name=fortin", &[]),
        ("Appointment?patient=fa&status=booked", &["a1"]),
        ("Appointment?patient=fb&status=booked", &["a1", "a2"]),
        ("Appointment?patient=fb&status=booked&date=2024-02-13", &["a2"]),
        // A chain to the patient tested on a flagged row (a1 has two patients).
        ("Appointment?patient:Patient.name=belanger&status=booked", &["a1", "a2"]),
        ("Appointment?patient:Patient.name=fournier&status=booked", &["a1"]),
        ("Appointment?actor:Patient.name=fournier&status=booked", &["a1"]),
        ("Appointment?actor=Practitioner/dr&date=2024-02-12", &["a1"]),
    ];
    for (q, want) in table {
        expect(s, q, want).await;
        // The same through the count: what the page lists is what is counted.
        let (_, counted) = s.get_json(&format!("{q}&_summary=count")).await;
        assert_eq!(counted["total"], want.len(), "{q}");
    }
}

/// Without `_total`, `total` only when the first page holds every match (it costs
/// nothing then); otherwise only when asked for.
async fn total_only_when_free(s: &TestServer) {
    let entries: Vec<Value> = (0..12)
        .map(|i| {
            json!({"resource": {"resourceType": "Basic", "code": {"text": "many"},
                "created": format!("2024-01-{:02}", 1 + i % 4)},
                "request": {"method": "POST", "url": "Basic"}})
        })
        .collect();
    let r = s
        .send_json(
            Method::POST,
            "",
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let b = search(s, "Basic?_count=5").await;
    assert!(
        b.get("total").is_none(),
        "a full first page is not counted: {}",
        b["total"]
    );
    assert!(b["link"].as_array().unwrap().iter().any(|l| l["relation"] == "next"));
    assert_eq!(search(s, "Basic?_count=20").await["total"], 12);
    assert_eq!(search(s, "Basic?_count=5&_total=accurate").await["total"], 12);
    assert_eq!(search(s, "Basic?_count=5&_total=estimate").await["total"], 12);
    assert_eq!(search(s, "Basic?_summary=count").await["total"], 12);
    assert_eq!(search(s, "Basic?created=2024-01-01&_count=5").await["total"], 3);
    assert!(
        search(s, "Basic?created=2024-01-01&_count=2")
            .await
            .get("total")
            .is_none()
    );
}

on_both_backends!(
    folded_plans,
    total_only_when_free,
    capability_lists_search_params,
    query_table,
    sorting,
    includes,
    paging_is_stable_while_writing,
    summary_total_elements,
    post_search_and_lenient,
    refusals,
    conditional_interactions,
);
