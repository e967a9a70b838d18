//! Profiles and validation over HTTP (issue 6): enforcement on every write path, the
//! `$validate` operation, the conformance resources and the terminology operations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use carnet_tests::{Backend, TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

const LAB: &str = "https://carnet.dev/fhir/StructureDefinition/carnet-lab-observation";
const PATIENT: &str = "https://carnet.dev/fhir/StructureDefinition/carnet-patient";

fn profiles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles")
}

/// `(file name, resource)` of every JSON file in `profiles/<sub>`.
fn files(sub: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(profiles_dir().join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("expected.json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn issues(oo: &Value) -> Vec<(String, String, String)> {
    oo["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["severity"].as_str().unwrap_or_default().to_string(),
                i["code"].as_str().unwrap_or_default().to_string(),
                i["expression"][0].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn errors(oo: &Value) -> Vec<(String, String, String)> {
    issues(oo)
        .into_iter()
        .filter(|i| i.0 == "error" || i.0 == "fatal")
        .collect()
}

async fn count(s: &TestServer, res_type: &str) -> i64 {
    let (st, b) = s.get_json(&format!("{res_type}?_summary=count")).await;
    assert_eq!(st, 200, "{b}");
    b["total"].as_i64().unwrap()
}

/// The examples have references to each other; the server keeps them as given (no
/// referential integrity), so each example is stored on its own.
async fn profile_examples_are_stored_and_validate_clean(s: &TestServer) {
    let examples = files("examples");
    assert!(
        examples.len() >= 8,
        "expected an example per profile, got {}",
        examples.len()
    );
    for (name, ex) in examples {
        let ty = ex["resourceType"].as_str().unwrap().to_string();
        let claimed = ex["meta"]["profile"][0].as_str().unwrap().to_string();
        assert!(
            claimed.starts_with("https://carnet.dev/fhir/StructureDefinition/"),
            "{name}"
        );
        let (st, oo) = post_json(s, &format!("{ty}/$validate"), &ex).await;
        assert_eq!(st, 200, "{name}: {oo}");
        assert!(errors(&oo).is_empty(), "{name}: {oo}");
        let mut body = ex.clone();
        body.as_object_mut().unwrap().remove("id");
        let (st, stored) = post_json(s, &ty, &body).await;
        assert_eq!(st, 201, "{name}: {stored}");
        assert_eq!(stored["meta"]["profile"][0], claimed.as_str());
    }
}

/// Each file of `profiles/invalid/` breaks one rule: a write answers 422 with that
/// issue (and no other error) and stores nothing; `$validate` reports the same issue.
async fn broken_resources_are_refused_with_their_issue(s: &TestServer) {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(profiles_dir().join("invalid/expected.json")).unwrap()).unwrap();
    let broken = files("invalid");
    assert!(
        broken.len() >= 10,
        "expected at least 10 broken resources, got {}",
        broken.len()
    );
    for (name, bad) in broken {
        let want = &expected[&name];
        assert!(want.is_object(), "{name} is not listed in expected.json");
        let want = (
            want["severity"].as_str().unwrap().to_string(),
            want["code"].as_str().unwrap().to_string(),
            want["expression"].as_str().unwrap().to_string(),
        );
        // Issues that follow from the same change (`also`), errors or not.
        let also: Vec<(String, String, String)> = expected[&name]["also"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["severity"].as_str().unwrap().to_string(),
                    a["code"].as_str().unwrap().to_string(),
                    a["expression"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let mut want_errors: Vec<_> = std::iter::once(want.clone())
            .chain(also.iter().cloned())
            .filter(|i| i.0 == "error")
            .collect();
        want_errors.sort();
        let ty = bad["resourceType"].as_str().unwrap().to_string();
        let before = count(s, &ty).await;
        let (st, oo) = post_json(s, &ty, &bad).await;
        if want.0 == "error" {
            assert_eq!(st, 422, "{name}: {oo}");
            assert_eq!(oo["resourceType"], "OperationOutcome");
            let mut got = errors(&oo);
            got.sort();
            assert_eq!(got, want_errors, "{name}: {oo}");
            for a in &also {
                assert!(issues(&oo).contains(a), "{name}: {a:?} missing: {oo}");
            }
            assert_eq!(count(s, &ty).await, before, "{name}: something was stored");
        } else {
            // A warning (extensible binding) does not stop the write.
            assert_eq!(st, 201, "{name}: {oo}");
        }
        let (st, oo) = post_json(s, &format!("{ty}/$validate"), &bad).await;
        assert_eq!(st, 200, "{name}: {oo}");
        assert!(issues(&oo).contains(&want), "{name}: {oo}");
    }
}

/// Base R4 rules hold for every resource, profile or not.
async fn base_rules_apply_to_every_write(s: &TestServer) {
    let before = count(s, "Observation").await;
    let mut obs = json!({
        "resourceType": "Observation",
        "status": "bogus",
        "code": {"text": "glucose"}
    });
    let (st, oo) = post_json(s, "Observation", &obs).await;
    assert_eq!(st, 422, "{oo}");
    assert_eq!(
        errors(&oo),
        vec![("error".into(), "code-invalid".into(), "Observation.status".into())]
    );
    obs["status"] = json!("final");
    obs["effectivePeriod"] = json!({"start": "2026-03-02", "end": "2026-03-01"});
    let (st, oo) = post_json(s, "Observation", &obs).await;
    assert_eq!(st, 422, "{oo}");
    let e = errors(&oo);
    assert_eq!(e.len(), 1, "{oo}");
    assert_eq!(e[0].1, "invariant");
    assert_eq!(e[0].2, "Observation.effectivePeriod");
    let per1 = oo["issue"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["severity"] == "error")
        .unwrap();
    assert!(per1["diagnostics"].as_str().unwrap().starts_with("per-1"), "{oo}");
    assert_eq!(count(s, "Observation").await, before);
    obs["effectivePeriod"] = json!({"start": "2026-03-01", "end": "2026-03-02"});
    let (st, oo) = post_json(s, "Observation", &obs).await;
    assert_eq!(st, 201, "{oo}");
}

/// Update, patch and transactions are held to the same rules as create.
async fn every_write_path_is_checked(s: &TestServer) {
    let lab = example("Observation");
    let mut body = lab.clone();
    body.as_object_mut().unwrap().remove("id");
    let created = s.create(body).await;
    let id = created["id"].as_str().unwrap().to_string();
    // Update without `issued` (1..1 in the lab profile).
    let mut upd = created.clone();
    upd.as_object_mut().unwrap().remove("issued");
    let (st, oo) = send(s, Method::PUT, &format!("Observation/{id}"), &upd).await;
    assert_eq!(st, 422, "{oo}");
    assert_eq!(
        errors(&oo),
        vec![("error".into(), "required".into(), "Observation.issued".into())]
    );
    // A patch that removes it.
    let r = s
        .req(Method::PATCH, &format!("Observation/{id}"))
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&json!([{"op": "remove", "path": "/issued"}])).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let (_, now) = s.get_json(&format!("Observation/{id}")).await;
    assert_eq!(now["meta"]["versionId"], "1");
    // A transaction whose second entry is invalid stores nothing.
    let before_p = count(s, "Patient").await;
    let mut pat = example("Patient");
    pat.as_object_mut().unwrap().remove("id");
    let tx = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:0a6f7c4e-1c1b-4c39-9d6a-3a1f1f7d1e01", "resource": pat,
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": upd, "request": {"method": "PUT", "url": format!("Observation/{id}")}}
        ]
    });
    let (st, oo) = post_json(s, "", &tx).await;
    assert_eq!(st, 422, "{oo}");
    assert!(errors(&oo).iter().any(|e| e.2.ends_with("issued")), "{oo}");
    assert_eq!(count(s, "Patient").await, before_p);
}

/// `$validate` modes at instance level, the `profile` parameter, a Parameters body.
async fn validate_operation_modes(s: &TestServer) {
    let mut pat = example("Patient");
    pat.as_object_mut().unwrap().remove("id");
    let created = s.create(pat.clone()).await;
    let id = created["id"].as_str().unwrap().to_string();
    // The stored resource, validated as is.
    let (st, oo) = send(s, Method::GET, &format!("Patient/{id}/$validate"), &Value::Null).await;
    assert_eq!(st, 200, "{oo}");
    assert_eq!(
        issues(&oo),
        vec![("information".into(), "informational".into(), String::new())]
    );
    // mode=update with a body whose id differs from the URL's.
    let mut other = created.clone();
    other["id"] = json!("someone-else");
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": other}, {"name": "mode", "valueCode": "update"}]});
    let (st, oo) = post_json(s, &format!("Patient/{id}/$validate"), &params).await;
    assert_eq!(st, 200, "{oo}");
    assert_eq!(errors(&oo)[0].2, "Patient.id", "{oo}");
    // mode=delete of a resource that exists, and of one that does not.
    let (st, oo) = post_json(s, &format!("Patient/{id}/$validate?mode=delete"), &Value::Null).await;
    assert_eq!(st, 200, "{oo}");
    assert!(errors(&oo).is_empty());
    let (st, _) = post_json(s, "Patient/nope/$validate?mode=delete", &Value::Null).await;
    assert_eq!(st, 404);
    // A plain Patient checked against the Carnet profile on request: no RAMQ number.
    let plain = json!({"resourceType": "Patient", "name": [{"family": "Roy"}], "birthDate": "1990-01-01"});
    let (st, oo) = post_json(s, &format!("Patient/$validate?profile={PATIENT}"), &plain).await;
    assert_eq!(st, 200, "{oo}");
    assert!(!errors(&oo).is_empty(), "{oo}");
    // Without the profile it is fine (mode=create changes nothing for a new resource).
    let (st, oo) = post_json(s, "Patient/$validate?mode=create", &plain).await;
    assert_eq!(st, 200);
    assert!(errors(&oo).is_empty(), "{oo}");
    // Unknown profile, unknown mode: the request itself is wrong.
    let (st, _) = post_json(s, "Patient/$validate?profile=http://example.org/nope", &plain).await;
    assert_eq!(st, 400);
    let (st, _) = post_json(s, "Patient/$validate?mode=destroy", &plain).await;
    assert_eq!(st, 400);
    // Structural problems come back as issues too, nothing stored either way.
    let before = count(s, "Patient").await;
    let (st, oo) = post_json(
        s,
        "Patient/$validate",
        &json!({"resourceType": "Patient", "birthDate": "1990-13-45"}),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(errors(&oo)[0].2, "Patient.birthDate", "{oo}");
    assert_eq!(count(s, "Patient").await, before);
}

/// The conformance resources are public and read-only; the CapabilityStatement lists
/// the profiles.
async fn conformance_resources_are_served(s: &TestServer) {
    let anon = |path: &str| s.req_as(None, Method::GET, path).send();
    for (ty, id) in [
        ("StructureDefinition", "carnet-patient"),
        ("StructureDefinition", "carnet-lab-observation"),
        ("ValueSet", "sensitive-results"),
        ("SearchParameter", "Patient-name"),
    ] {
        let r = anon(&format!("{ty}/{id}")).await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{ty}/{id}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["resourceType"], ty);
        assert_eq!(v["id"], id);
    }
    let sd: Value = anon("StructureDefinition/carnet-lab-observation")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sd["snapshot"]["element"].as_array().unwrap().len() > 20);
    let r: Value = anon(&format!("StructureDefinition?url={LAB}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["total"], 1);
    assert_eq!(r["entry"][0]["resource"]["url"], LAB);
    let r: Value = anon("SearchParameter?base=Patient&code=birthdate")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["total"], 1, "{r}");
    let r: Value = anon("SearchParameter?base=Observation&_count=5")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["total"].as_i64().unwrap() > 20);
    assert_eq!(r["entry"].as_array().unwrap().len(), 5);
    let next = carnet_tests::next_link(&r).unwrap();
    let page2: Value = reqwest::get(&next).await.unwrap().json().await.unwrap();
    assert_ne!(page2["entry"][0]["resource"]["id"], r["entry"][0]["resource"]["id"]);
    let r = anon("StructureDefinition?colour=blue").await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = anon("StructureDefinition/nope").await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Read-only.
    let (st, _) = post_json(s, "ValueSet", &json!({"resourceType": "ValueSet", "status": "draft"})).await;
    assert_eq!(st, 405);
    let (st, _) = send(s, Method::DELETE, "StructureDefinition/carnet-patient", &Value::Null).await;
    assert_eq!(st, 405);
    // No history, no instance $validate; a definition can be validated at type level.
    let (st, _) = send(
        s,
        Method::GET,
        "StructureDefinition/carnet-patient/_history",
        &Value::Null,
    )
    .await;
    assert_eq!(st, 405);
    let (st, _) = send(s, Method::GET, "ValueSet/_history", &Value::Null).await;
    assert_eq!(st, 405);
    let (st, _) = send(s, Method::GET, "ValueSet/sensitive-results/$validate", &Value::Null).await;
    assert_eq!(st, 405);
    let (st, oo) = post_json(
        s,
        "ValueSet/$validate",
        &json!({"resourceType": "ValueSet", "status": "bogus"}),
    )
    .await;
    assert_eq!(st, 200, "{oo}");
    assert!(errors(&oo).iter().any(|e| e.2 == "ValueSet.status"), "{oo}");
    // The CapabilityStatement names them.
    let (_, cs) = s.get_json("metadata").await;
    let res = cs["rest"][0]["resource"].as_array().unwrap();
    let of = |t: &str| res.iter().find(|r| r["type"] == t).unwrap().clone();
    assert!(
        of("Patient")["supportedProfile"]
            .as_array()
            .unwrap()
            .contains(&json!(PATIENT))
    );
    assert!(
        of("Observation")["supportedProfile"]
            .as_array()
            .unwrap()
            .contains(&json!(LAB))
    );
    assert!(
        of("Observation")["operation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "validate")
    );
    assert!(
        of("ValueSet")["operation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "expand")
    );
}

/// `$expand` and `$validate-code` on Carnet's value sets and code systems and on the
/// R4 ones the validator holds, by GET and by POST with Parameters.
async fn terminology_operations(s: &TestServer) {
    const SENSITIVE: &str = "https://carnet.dev/fhir/ValueSet/sensitive-results";
    let get = |path: String| async move {
        let r = s.req_as(None, Method::GET, &path).send().await.unwrap();
        let st = r.status().as_u16();
        (st, r.json::<Value>().await.unwrap())
    };
    let codes = |vs: &Value| -> Vec<String> {
        vs["expansion"]["contains"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["code"].as_str().unwrap().to_string())
            .collect()
    };
    let (st, vs) = get(format!("ValueSet/$expand?url={SENSITIVE}")).await;
    assert_eq!(st, 200, "{vs}");
    assert_eq!(vs["resourceType"], "ValueSet");
    assert_eq!(vs["expansion"]["total"], 5);
    assert!(codes(&vs).contains(&"75622-1".to_string()));
    assert!(codes(&vs).contains(&"10524-7".to_string()));
    // Text filter and paging.
    let (_, vs) = get(format!("ValueSet/$expand?url={SENSITIVE}&filter=hiv")).await;
    assert_eq!(vs["expansion"]["total"], 3, "{vs}");
    let (_, p1) = get(format!("ValueSet/$expand?url={SENSITIVE}&count=2")).await;
    let (_, p2) = get(format!("ValueSet/$expand?url={SENSITIVE}&count=2&offset=2")).await;
    assert_eq!(codes(&p1).len(), 2);
    assert_eq!(codes(&p2).len(), 2);
    assert!(codes(&p1).iter().all(|c| !codes(&p2).contains(c)));
    // Instance level, and an R4 value set of the package.
    let (st, vs) = get("ValueSet/sensitive-results/$expand".to_string()).await;
    assert_eq!(st, 200);
    assert_eq!(vs["expansion"]["total"], 5);
    let (st, vs) = get("ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/observation-status".to_string()).await;
    assert_eq!(st, 200, "{vs}");
    assert_eq!(vs["expansion"]["total"], 8, "{vs}");
    // Unknown value set, unknown parameter.
    assert_eq!(
        get("ValueSet/$expand?url=http://example.org/nope".to_string()).await.0,
        404
    );
    assert_eq!(get(format!("ValueSet/$expand?url={SENSITIVE}&colour=red")).await.0, 400);
    // $validate-code.
    let result = |p: &Value| {
        p["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "result")
            .unwrap()["valueBoolean"]
            .as_bool()
            .unwrap()
    };
    let (st, p) = get(format!(
        "ValueSet/$validate-code?url={SENSITIVE}&system=http://loinc.org&code=75622-1"
    ))
    .await;
    assert_eq!(st, 200, "{p}");
    assert!(result(&p), "{p}");
    let (_, p) = get(format!(
        "ValueSet/$validate-code?url={SENSITIVE}&system=http://loinc.org&code=718-7"
    ))
    .await;
    assert!(!result(&p), "{p}");
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": SENSITIVE},
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [
            {"system": "http://loinc.org", "code": "718-7"},
            {"system": "http://loinc.org", "code": "7918-6"}]}}]});
    let r = s
        .req_as(None, Method::POST, "ValueSet/$validate-code")
        .header("content-type", "application/fhir+json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(result(&r.json().await.unwrap()));
    let (st, p) = get(
        "CodeSystem/$validate-code?url=https://carnet.dev/fhir/CodeSystem/consent-category&code=result-publication"
            .to_string(),
    )
    .await;
    assert_eq!(st, 200, "{p}");
    assert!(result(&p), "{p}");
    let (_, p) = get("CodeSystem/consent-category/$validate-code?code=nonsense".to_string()).await;
    assert!(!result(&p), "{p}");
    let (st, cs) = get("CodeSystem/consent-category".to_string()).await;
    assert_eq!(st, 200);
    assert_eq!(cs["url"], "https://carnet.dev/fhir/CodeSystem/consent-category");
}

/// A deployment that requires a profile for a type refuses resources that miss it.
async fn required_profiles(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.profiles = carnet::conformance::Rules::from_settings(&[format!("Observation={LAB}")]).unwrap();
    })
    .await;
    let vital = json!({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    });
    let (st, oo) = post_json(&s, "Observation", &vital).await;
    assert_eq!(st, 422, "{oo}");
    assert!(!errors(&oo).is_empty());
    let mut lab = example("Observation");
    lab.as_object_mut().unwrap().remove("id");
    lab.as_object_mut().unwrap().remove("meta");
    let (st, oo) = post_json(&s, "Observation", &lab).await;
    assert_eq!(st, 201, "{oo}");
    // Patients are not concerned.
    let (st, oo) = post_json(&s, "Patient", &json!({"resourceType": "Patient"})).await;
    assert_eq!(st, 201, "{oo}");
    s.stop().await;
    assert!(carnet::conformance::Rules::from_settings(&["Patient=http://example.org/x".into()]).is_err());
    assert!(carnet::conformance::Rules::from_settings(&[format!("Patient={LAB}")]).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_profiles_sqlite() {
    required_profiles(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_profiles_postgres() {
    required_profiles(Backend::Postgres).await;
}

/// The first example of a type in `profiles/examples/`.
fn example(res_type: &str) -> Value {
    files("examples")
        .into_iter()
        .map(|(_, v)| v)
        .find(|v| v["resourceType"] == res_type)
        .unwrap_or_else(|| panic!("no {res_type} example"))
}

async fn post_json(s: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    send(s, Method::POST, path, body).await
}

async fn send(s: &TestServer, method: Method, path: &str, body: &Value) -> (u16, Value) {
    let mut req = s.req(method, path);
    if !body.is_null() {
        req = req
            .header("content-type", "application/fhir+json")
            .body(serde_json::to_vec(body).unwrap());
    }
    let r = req.send().await.unwrap();
    let st = r.status().as_u16();
    let text = r.text().await.unwrap();
    (st, serde_json::from_str(&text).unwrap_or(Value::Null))
}

on_both_backends!(
    profile_examples_are_stored_and_validate_clean,
    broken_resources_are_refused_with_their_issue,
    base_rules_apply_to_every_write,
    every_write_path_is_checked,
    validate_operation_modes,
    conformance_resources_are_served,
    terminology_operations,
);
