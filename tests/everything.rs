//! `Patient/{id}/$everything` over HTTP on both backends, under the access policy:
//! what a patient, a practitioner and a system client get, R1/R2/R4, `_type`,
//! `_since`, `_count` paging and the audit trail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_support.rs"]
mod policy_support;

use std::collections::BTreeSet;
use std::time::Duration;

use carnet_tests::{TestServer, on_both_backends};
use policy_support::{PATIENT_SCOPES, PRACTITIONER_SCOPES, user_token};
use reqwest::Method;
use serde_json::{Value, json};

const LONG_AGO: &str = "2001-01-01T00:00:00Z";

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// `Type/id` of every entry, in Bundle order.
fn entries(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect()
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

async fn as_get(s: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let r = s.req_as(Some(token), Method::GET, path).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

/// Every page from `path` on through the `next` links: the entries of all pages, and
/// how many pages there were.
async fn walk(s: &TestServer, token: &str, path: &str) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut pages = 0;
    let mut next = Some(s.url(path));
    while let Some(url) = next.take() {
        let (st, b) = as_get(s, token, &url).await;
        assert_eq!(st, 200, "{url}: {b}");
        assert_eq!(b["type"], "searchset");
        pages += 1;
        assert!(pages < 100, "paging does not end");
        out.extend(entries(&b));
        next = carnet_tests::next_link(&b);
    }
    (out, pages)
}

/// A patient's record: two practitioners (one their GP, one who performed a test), an
/// organization, a medication, results published, sensitive and another patient's.
struct Record {
    a: String,
    b: String,
    gp: String,
    performer: String,
    org: String,
    med: String,
    unrelated_practitioner: String,
    /// Visible to the patient.
    own: Vec<String>,
    sensitive: String,
    /// Only reachable through the sensitive result.
    sensitive_performer: String,
    other_obs: String,
}

async fn record(s: &TestServer) -> Record {
    let gp = id(&s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Tremblay", "given": ["Julie"]}]}))
        .await);
    let performer = id(&s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Gagnon"}]}))
        .await);
    let sensitive_performer = id(&s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Roy"}]}))
        .await);
    let unrelated_practitioner = id(&s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Côté"}]}))
        .await);
    let org = id(&s
        .create(json!({"resourceType": "Organization", "name": "CLSC du Plateau"}))
        .await);
    let med = id(&s
        .create(json!({"resourceType": "Medication", "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361"}]}}))
        .await);
    let a = id(&s
        .create(
            json!({"resourceType": "Patient", "name": [{"family": "Alpha"}], "birthDate": "1980-01-01",
            "generalPractitioner": [{"reference": format!("Practitioner/{gp}")}],
            "managingOrganization": {"reference": format!("Organization/{org}")}}),
        )
        .await);
    let b = id(&s
        .create(json!({"resourceType": "Patient", "name": [{"family": "Beta"}], "birthDate": "1980-01-01"}))
        .await);
    let obs = id(&s
        .create(json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": format!("Patient/{a}")}, "issued": LONG_AGO,
            "performer": [{"reference": format!("Practitioner/{performer}")}]}))
        .await);
    let sensitive = id(&s
        .create(json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "75622-1"}]},
            "subject": {"reference": format!("Patient/{a}")}, "issued": LONG_AGO,
            "performer": [{"reference": format!("Practitioner/{sensitive_performer}")}]}))
        .await);
    let mr = id(&s
        .create(
            json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationReference": {"reference": format!("Medication/{med}")},
            "subject": {"reference": format!("Patient/{a}")},
            "requester": {"reference": format!("Practitioner/{gp}")}}),
        )
        .await);
    let enc = id(&s
        .create(json!({"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{a}")}}))
        .await);
    let other_obs = id(&s
        .create(json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": format!("Patient/{b}")}, "issued": LONG_AGO,
            "performer": [{"reference": format!("Practitioner/{unrelated_practitioner}")}]}))
        .await);
    Record {
        own: vec![
            format!("Patient/{a}"),
            format!("Observation/{obs}"),
            format!("MedicationRequest/{mr}"),
            format!("Encounter/{enc}"),
        ],
        a,
        b,
        gp,
        performer,
        org,
        med,
        unrelated_practitioner,
        sensitive: format!("Observation/{sensitive}"),
        sensitive_performer: format!("Practitioner/{sensitive_performer}"),
        other_obs: format!("Observation/{other_obs}"),
    }
}

/// What the patient, a practitioner and a system client each get.
async fn who_gets_what(s: &TestServer) {
    let r = record(s).await;
    let path = format!("Patient/{}/$everything", r.a);
    let referenced = [
        format!("Practitioner/{}", r.gp),
        format!("Practitioner/{}", r.performer),
        format!("Organization/{}", r.org),
        format!("Medication/{}", r.med),
    ];

    // The patient: their compartment, without the held-back result (R2); nothing
    // outside the compartment (R1: Practitioners read 404 for them, so they are not
    // pulled in either).
    let pt = user_token(s, &format!("Patient/{}", r.a), PATIENT_SCOPES)
        .await
        .unwrap();
    let (st, b) = as_get(s, &pt, &path).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "searchset");
    let got = entries(&b);
    assert_eq!(set(&got), set(&r.own), "{b}");
    assert_eq!(got.len(), r.own.len(), "each resource once");
    assert_eq!(b["total"], r.own.len());
    assert_eq!(as_get(s, &pt, &format!("Practitioner/{}", r.gp)).await.0, 404);

    // Scopes narrow: a token reading Patients and Observations only gets those.
    let narrow = user_token(
        s,
        &format!("Patient/{}", r.a),
        &[
            "launch/patient",
            "openid",
            "fhirUser",
            "patient/Patient.rs",
            "patient/Observation.rs",
        ],
    )
    .await
    .unwrap();
    let (st, b) = as_get(s, &narrow, &path).await;
    assert_eq!(st, 200, "{b}");
    let want: BTreeSet<String> = r
        .own
        .iter()
        .filter(|x| x.starts_with("Patient/") || x.starts_with("Observation/"))
        .cloned()
        .collect();
    assert_eq!(set(&entries(&b)), want);
    // POSTed, it still only reads: no writing scope needed.
    let resp = s
        .req_as(Some(&narrow), Method::POST, &path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("_type=Observation")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Without a reading scope on Patient, the operation itself is refused.
    let no_patient = user_token(
        s,
        &format!("Patient/{}", r.a),
        &["launch/patient", "openid", "fhirUser", "patient/Observation.rs"],
    )
    .await
    .unwrap();
    assert_eq!(as_get(s, &no_patient, &path).await.0, 403);

    // A practitioner: everything, the sensitive result and whom it references too,
    // and what the record references; nothing of the other patient's.
    let dr = user_token(s, &format!("Practitioner/{}", r.gp), PRACTITIONER_SCOPES)
        .await
        .unwrap();
    let (st, b) = as_get(s, &dr, &path).await;
    assert_eq!(st, 200, "{b}");
    let got = entries(&b);
    let mut want = set(&r.own);
    want.extend(referenced.iter().cloned());
    want.insert(r.sensitive.clone());
    want.insert(r.sensitive_performer.clone());
    assert_eq!(set(&got), want, "{b}");
    assert_eq!(got.len(), want.len(), "each resource once");
    assert!(!got.contains(&r.other_obs));
    assert!(!got.contains(&format!("Practitioner/{}", r.unrelated_practitioner)));
    // Referenced resources are marked as included.
    for e in b["entry"].as_array().unwrap() {
        let t = e["resource"]["resourceType"].as_str().unwrap();
        let mode = if matches!(t, "Practitioner" | "Organization" | "Medication") {
            "include"
        } else {
            "match"
        };
        assert_eq!(e["search"]["mode"], mode, "{e}");
    }

    // POST, with the parameters in a Parameters resource, answers the same.
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Observation"}]});
    let resp = s
        .req_as(Some(&dr), Method::POST, &path)
        .header("content-type", "application/fhir+json")
        .body(serde_json::to_vec(&params).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let b: Value = resp.json().await.unwrap();
    let mut want: BTreeSet<String> = r
        .own
        .iter()
        .filter(|x| x.starts_with("Observation/"))
        .cloned()
        .collect();
    want.insert(r.sensitive.clone());
    assert_eq!(set(&entries(&b)), want, "{b}");

    // The default system token of the tests (system/*.*) sees the whole record.
    let (st, b) = s.get_json(&path).await;
    assert_eq!(st, 200);
    assert!(entries(&b).contains(&r.sensitive));

    // Another patient cannot: the record is absent for them (R1), like a read.
    let other = user_token(s, &format!("Patient/{}", r.b), PATIENT_SCOPES)
        .await
        .unwrap();
    let (st, b) = as_get(s, &other, &path).await;
    assert_eq!(st, 404, "{b}");
    assert_eq!(b["resourceType"], "OperationOutcome");
    // Their own works, and holds nothing of A's.
    let (st, b) = as_get(s, &other, &format!("Patient/{}/$everything", r.b)).await;
    assert_eq!(st, 200);
    assert_eq!(
        set(&entries(&b)),
        set(&[format!("Patient/{}", r.b), r.other_obs.clone()])
    );

    // The CapabilityStatement says so.
    let (_, cs) = s.get_json("metadata").await;
    let patient = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap();
    assert!(
        patient["operation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "everything")
    );

    // Only Patient has it; unknown parameters are refused.
    assert_eq!(s.get_json(&format!("Encounter/{}/$everything", r.a)).await.0, 404);
    assert_eq!(s.get_json(&format!("{path}?start=2020-01-01")).await.0, 400);
    assert_eq!(s.get_json(&format!("{path}?_type=Nonsense")).await.0, 400);
    assert_eq!(s.get_json(&format!("{path}?_since=yesterday")).await.0, 400);
    assert_eq!(s.get_json("Patient/nobody/$everything").await.0, 404);

    // Every call is in the audit trail as the operation, with the patient's entity.
    let (st, audit) = s.get_json("AuditEvent?subtype=%24everything&_count=100").await;
    assert_eq!(st, 200, "{audit}");
    let events = audit["entry"].as_array().unwrap();
    assert!(events.len() >= 6, "{audit}");
    let refused = events
        .iter()
        .find(|e| e["resource"]["outcome"] == "4" && e["resource"]["outcomeDesc"].as_str().unwrap().starts_with("404"));
    assert!(refused.is_some(), "the other patient's attempt is recorded: {audit}");
    let by_patient = events.iter().any(|e| {
        e["resource"]["outcome"] == "0"
            && e["resource"]["action"] == "R"
            && e["resource"]["entity"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["what"]["reference"] == format!("Patient/{}", r.a))
    });
    assert!(by_patient, "{audit}");
}

/// R4: a refusal makes the record 403 for a practitioner who never consulted it; one
/// whose `$everything` came before the refusal keeps access.
async fn refusal(s: &TestServer) {
    let r = record(s).await;
    let path = format!("Patient/{}/$everything", r.a);
    let before = user_token(s, &format!("Practitioner/{}", r.gp), PRACTITIONER_SCOPES)
        .await
        .unwrap();
    let later = user_token(s, &format!("Practitioner/{}", r.performer), PRACTITIONER_SCOPES)
        .await
        .unwrap();
    assert_eq!(as_get(s, &before, &path).await.0, 200);
    s.clock.advance(Duration::from_secs(1));
    let pt = user_token(s, &format!("Patient/{}", r.a), PATIENT_SCOPES)
        .await
        .unwrap();
    let refusal = json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{}", r.a)},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"type": "deny"}});
    let resp = s
        .req_as(Some(&pt), Method::POST, "Consent")
        .header("content-type", "application/fhir+json")
        .body(serde_json::to_vec(&refusal).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    s.clock.advance(Duration::from_secs(1));

    let (st, b) = as_get(s, &later, &path).await;
    assert_eq!(st, 403, "{b}");
    assert_eq!(b["resourceType"], "OperationOutcome");
    let (st, b) = as_get(s, &before, &path).await;
    assert_eq!(st, 200, "{b}");
    assert!(entries(&b).contains(&r.sensitive));
    // The system feed is refused too; the patient's own access is unchanged.
    assert_eq!(s.get_json(&path).await.0, 403);
    let (st, b) = as_get(s, &pt, &path).await;
    assert_eq!(st, 200);
    assert!(entries(&b).iter().any(|e| e.starts_with("Consent/")));
}

/// `_count` pages give every resource exactly once, also while resources are written
/// between pages; `_type` and `_since` narrow.
async fn paging_type_since(s: &TestServer) {
    let r = record(s).await;
    for i in 0..7 {
        s.create(json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "valueQuantity": {"value": 5 + i, "unit": "mmol/L"},
            "subject": {"reference": format!("Patient/{}", r.a)}, "issued": LONG_AGO}))
            .await;
    }
    let dr = user_token(s, &format!("Practitioner/{}", r.gp), PRACTITIONER_SCOPES)
        .await
        .unwrap();
    let path = format!("Patient/{}/$everything", r.a);
    let (all, pages) = walk(s, &dr, &path).await;
    assert_eq!(pages, 1);
    let (paged, pages) = walk(s, &dr, &format!("{path}?_count=3")).await;
    assert_eq!(pages, all.len().div_ceil(3), "{paged:?}");
    assert_eq!(paged.len(), all.len(), "no resource twice: {paged:?}");
    assert_eq!(set(&paged), set(&all));

    // A next link stays valid while the record grows: the page after it still starts
    // where it left off, and the new resource comes at the end.
    let (_, first) = as_get(s, &dr, &format!("{path}?_count=4")).await;
    assert_eq!(first["total"], all.len());
    let next = carnet_tests::next_link(&first).unwrap();
    let added = id(&s
        .create(json!({"resourceType": "Condition",
            "subject": {"reference": format!("Patient/{}", r.a)},
            "code": {"text": "asthme"}}))
        .await);
    let (rest, _) = walk(s, &dr, &next).await;
    let mut seen = entries(&first);
    seen.extend(rest);
    let mut want = all.clone();
    want.push(format!("Condition/{added}"));
    assert_eq!(seen.len(), want.len(), "{seen:?}");
    assert_eq!(set(&seen), set(&want));

    // `_type`: only those types, paged too.
    let (typed, _) = walk(s, &dr, &format!("{path}?_type=Patient,Practitioner&_count=1")).await;
    assert_eq!(
        set(&typed),
        set(&[
            format!("Patient/{}", r.a),
            format!("Practitioner/{}", r.gp),
            format!("Practitioner/{}", r.performer),
            r.sensitive_performer.clone(),
        ])
    );
    assert_eq!(typed.len(), 4);

    // `_since`: only what was written at or after the instant.
    s.clock.advance(Duration::from_secs(2));
    let since = carnet::fhir::instant::format_micros(s.state().now());
    let fresh = id(&s
        .create(json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": format!("Patient/{}", r.a)}, "issued": LONG_AGO}))
        .await);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("_since", &since)
        .finish();
    let (st, b) = as_get(s, &dr, &format!("{path}?{q}")).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(entries(&b), vec![format!("Observation/{fresh}")]);
    // The self link carries the parameters.
    let self_link = b["link"][0]["url"].as_str().unwrap();
    assert!(self_link.contains("_since="), "{self_link}");
}

/// What `$everything` brings in by reference comes from the record, not from its
/// access trail: a practitioner who only read the record (named by an AuditEvent in
/// the patient's compartment) is not part of it.
async fn readers_of_the_record_are_not_part_of_it(s: &TestServer) {
    let reader = id(&s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Lecteur"}]}))
        .await);
    let a = id(&s
        .create(json!({"resourceType": "Patient", "name": [{"family": "Lu"}], "birthDate": "1980-01-01"}))
        .await);
    let t = user_token(s, &format!("Practitioner/{reader}"), PRACTITIONER_SCOPES)
        .await
        .unwrap();
    assert_eq!(as_get(s, &t, &format!("Patient/{a}")).await.0, 200);
    // A search of AuditEvents stores the logged ones first: the read's is then there.
    let (st, b) = s
        .get_json(&format!(
            "AuditEvent?patient=Patient/{a}&agent=Practitioner/{reader}&_summary=count"
        ))
        .await;
    assert_eq!(st, 200, "{b}");
    assert!(b["total"].as_i64().is_some_and(|n| n >= 1), "{b}");
    let (st, b) = s.get_json(&format!("Patient/{a}/$everything")).await;
    assert_eq!(st, 200, "{b}");
    let got = entries(&b);
    assert!(got.contains(&format!("Patient/{a}")), "{got:?}");
    assert!(!got.contains(&format!("Practitioner/{reader}")), "{got:?}");
}

on_both_backends!(
    who_gets_what,
    refusal,
    paging_type_since,
    readers_of_the_record_are_not_part_of_it
);
