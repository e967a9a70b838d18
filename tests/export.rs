//! Bulk Data `$export` (issue 7, point 2) over HTTP on both backends: kick-off, polling,
//! the manifest and its NDJSON files; `_type`, `_since`, `_typeFilter`; Patient and
//! Group level; R4 refusals; who may ask and who may see a job; cancellation; a job
//! that survives a restart (and a lease left by a dead worker); bad requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_support.rs"]
mod policy_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use carnet_tests::{Backend, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

/// Small parts, so that a type spans several files.
const PART: usize = 3;

async fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.export.part_size = PART).await
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = super::start(carnet_tests::Backend::Sqlite).await;
                    let s = super::$name(s).await;
                    s.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = super::start(carnet_tests::Backend::Postgres).await;
                    let s = super::$name(s).await;
                    s.stop().await;
                }
            )*
        }
    };
}

both!(
    system_round_trip,
    type_and_since,
    type_filter,
    patient_and_group_level,
    refusal_is_left_out,
    who_may_export_and_see,
    cancel_deletes,
    survives_restart,
    two_processes_share_the_queue,
    queued_cancel_and_failure,
    stopped_mid_job_resumes,
    bad_requests,
);

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn patient(s: &TestServer, family: &str) -> String {
    id(&s
        .create(json!({"resourceType": "Patient", "name": [{"family": family}], "birthDate": "1970-01-01"}))
        .await)
}

async fn obs(s: &TestServer, patient: &str, code: &str) -> String {
    id(&s
        .create(json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "issued": "2020-01-01T00:00:00Z"}))
        .await)
}

/// Kicks off `path` (e.g. `$export?_type=Patient`) with `token`; returns the status URL.
async fn kick(s: &TestServer, token: &str, path: &str) -> String {
    let r = s
        .req_as(Some(token), Method::GET, path)
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let loc = r
        .headers()
        .get("content-location")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(st, 202, "{path}: {}", r.text().await.unwrap());
    let loc = loc.expect("Content-Location");
    assert!(loc.starts_with(&format!("{}/$export-status/", s.base)), "{loc}");
    loc
}

/// Polls until the job is done; returns the manifest.
async fn wait(s: &TestServer, token: &str, status_url: &str) -> Value {
    for _ in 0..300 {
        let r = s.req_as(Some(token), Method::GET, status_url).send().await.unwrap();
        match r.status().as_u16() {
            202 => {
                let progress = r.headers().get("x-progress").expect("X-Progress");
                assert!(progress.to_str().unwrap().starts_with("exported "), "{progress:?}");
                assert!(r.headers().contains_key("retry-after"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            200 => {
                assert!(
                    r.headers()["content-type"]
                        .to_str()
                        .unwrap()
                        .starts_with("application/json")
                );
                return r.json().await.unwrap();
            }
            other => panic!("status {other}: {}", r.text().await.unwrap()),
        }
    }
    panic!("export did not finish: {status_url}");
}

/// Downloads every file of a manifest: type → resources, checking each file's count and
/// type against the manifest.
async fn download(s: &TestServer, token: &str, manifest: &Value) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for f in manifest["output"].as_array().unwrap() {
        let url = f["url"].as_str().unwrap();
        let r = s
            .req_as(Some(token), Method::GET, url)
            .header("accept", "application/fhir+ndjson")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}");
        assert_eq!(r.headers()["content-type"], "application/fhir+ndjson");
        let text = r.text().await.unwrap();
        let lines: Vec<Value> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(text.ends_with('\n'));
        assert_eq!(lines.len() as i64, f["count"].as_i64().unwrap(), "{url}");
        let ty = f["type"].as_str().unwrap();
        assert!(lines.iter().all(|l| l["resourceType"] == ty));
        out.entry(ty.to_string()).or_default().extend(lines);
    }
    out
}

async fn export(s: &TestServer, token: &str, path: &str) -> (Value, BTreeMap<String, Vec<Value>>) {
    let loc = kick(s, token, path).await;
    let manifest = wait(s, token, &loc).await;
    let files = download(s, token, &manifest).await;
    (manifest, files)
}

fn ids(files: &BTreeMap<String, Vec<Value>>, ty: &str) -> BTreeSet<String> {
    files.get(ty).into_iter().flatten().map(id).collect()
}

fn set(v: &[&String]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A backend client registered with its own key. It can get a token from any process on
/// the database (each process has its own URL, so its own tokens; a job belongs to the
/// client, not to a token).
struct BulkClient {
    id: String,
    key: carnet_tests::auth::ClientKey,
    scopes: String,
}

impl BulkClient {
    async fn register(s: &TestServer, scopes: &str) -> BulkClient {
        let key = carnet_tests::auth::ClientKey::es384();
        let id = format!("bulk-{}", uuid::Uuid::new_v4().simple());
        carnet_tests::auth::register_jwks_client(s.state(), &id, scopes, &key).await;
        BulkClient {
            id,
            key,
            scopes: scopes.to_string(),
        }
    }

    async fn token(&self, s: &TestServer) -> String {
        let token_url = format!("{}/token", s.auth_url());
        let now = s.state().now() / 1_000_000;
        let (st, body) =
            carnet_tests::auth::client_credentials(&s.anon, &token_url, &self.id, &self.key, &self.scopes, now).await;
        assert_eq!(st, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }
}

/// A backend token with `scopes`, for a fresh client; returns the token.
async fn backend_token(s: &TestServer, scopes: &str) -> String {
    BulkClient::register(s, scopes).await.token(s).await
}

async fn system_round_trip(s: TestServer) -> TestServer {
    let a = patient(&s, "Alpha").await;
    let b = patient(&s, "Beta").await;
    let mut observations = Vec::new();
    for i in 0..7 {
        observations.push(obs(&s, if i % 2 == 0 { &a } else { &b }, "718-7").await);
    }
    let pr = id(&s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Doc"}]}))
        .await);
    // A deleted resource is not exported.
    let gone = patient(&s, "Gone").await;
    assert_eq!(
        s.req(Method::DELETE, &format!("Patient/{gone}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let t = s.token.clone();
    let (manifest, files) = export(&s, &t, "$export?_type=Patient,Observation,Practitioner").await;
    assert_eq!(manifest["requiresAccessToken"], true);
    assert_eq!(manifest["error"], json!([]));
    assert_eq!(
        manifest["request"],
        format!("{}/$export?_type=Patient,Observation,Practitioner", s.base)
    );
    assert!(manifest["transactionTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(ids(&files, "Patient"), set(&[&a, &b]));
    assert_eq!(ids(&files, "Observation"), observations.iter().cloned().collect());
    assert_eq!(files["Observation"].len(), 7, "each resource once");
    assert_eq!(ids(&files, "Practitioner"), set(&[&pr]));
    // 7 Observations in parts of 3: three files.
    let obs_files = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["type"] == "Observation")
        .count();
    assert_eq!(obs_files, 3);
    // The lines are the resources as a read returns them.
    for o in &files["Observation"] {
        let (st, read) = s.get_json(&format!("Observation/{}", id(o))).await;
        assert_eq!(st, 200);
        assert_eq!(&read, o);
    }

    // Without _type: every type the token may read that has resources, AuditEvents too.
    let (manifest, files) = export(&s, &t, "$export").await;
    assert_eq!(ids(&files, "Patient"), set(&[&a, &b]));
    assert_eq!(files["Observation"].len(), 7);
    assert!(files.contains_key("AuditEvent"));
    let total: i64 = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total as usize, files.values().map(Vec::len).sum::<usize>());
    s
}

async fn type_and_since(s: TestServer) -> TestServer {
    let a = patient(&s, "Early").await;
    let old = obs(&s, &a, "718-7").await;
    s.clock.advance(Duration::from_secs(5));
    let cut = carnet::fhir::instant::format_micros(s.state().now());
    s.clock.advance(Duration::from_secs(1));
    let b = patient(&s, "Late").await;
    let new = obs(&s, &b, "718-7").await;
    let t = s.token.clone();

    let (_, files) = export(&s, &t, "$export?_type=Observation").await;
    assert_eq!(ids(&files, "Observation"), set(&[&old, &new]));
    assert!(!files.contains_key("Patient"));

    let (_, files) = export(&s, &t, &format!("$export?_type=Patient,Observation&_since={cut}")).await;
    assert_eq!(ids(&files, "Patient"), set(&[&b]));
    assert_eq!(ids(&files, "Observation"), set(&[&new]));
    s
}

async fn type_filter(s: TestServer) -> TestServer {
    let a = patient(&s, "Filter").await;
    let hb = obs(&s, &a, "718-7").await;
    let _glucose = obs(&s, &a, "2345-7").await;
    let t = s.token.clone();
    let filter = "Observation%3Fcode%3Dhttp%3A%2F%2Floinc.org%7C718-7";
    let (_, files) = export(
        &s,
        &t,
        &format!("$export?_type=Patient,Observation&_typeFilter={filter}"),
    )
    .await;
    assert_eq!(ids(&files, "Observation"), set(&[&hb]));
    // Types without a filter are exported whole.
    assert_eq!(ids(&files, "Patient"), set(&[&a]));
    // Two filters for one type are ORed; a chain works as in a search.
    let f2 = "Observation%3Fsubject%3APatient.name%3DNobody";
    let (_, files) = export(
        &s,
        &t,
        &format!("$export?_type=Observation&_typeFilter={filter}&_typeFilter={f2}"),
    )
    .await;
    assert_eq!(ids(&files, "Observation"), set(&[&hb]));
    s
}

async fn patient_and_group_level(s: TestServer) -> TestServer {
    let p1 = patient(&s, "One").await;
    let p2 = patient(&s, "Two").await;
    let p3 = patient(&s, "Three").await;
    let o1 = obs(&s, &p1, "718-7").await;
    let o2 = obs(&s, &p2, "718-7").await;
    let o3 = obs(&s, &p3, "718-7").await;
    let _pr = s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Doc"}]}))
        .await;
    let g = id(&s
        .create(json!({"resourceType": "Group", "type": "person", "actual": true,
            "member": [{"entity": {"reference": format!("Patient/{p1}")}},
                       {"entity": {"reference": format!("{}/Patient/{p2}", s.base)}}]}))
        .await);
    let t = s.token.clone();

    let (_, files) = export(&s, &t, "Patient/$export").await;
    assert_eq!(ids(&files, "Patient"), set(&[&p1, &p2, &p3]));
    assert_eq!(ids(&files, "Observation"), set(&[&o1, &o2, &o3]));
    assert!(!files.contains_key("Practitioner"), "not in the Patient compartment");
    // A Group is in its members' compartments (CompartmentDefinition-patient, `member`).
    assert_eq!(ids(&files, "Group"), set(&[&g]));

    let (manifest, files) = export(&s, &t, &format!("Group/{g}/$export")).await;
    assert_eq!(manifest["request"], format!("{}/Group/{g}/$export", s.base));
    assert_eq!(ids(&files, "Patient"), set(&[&p1, &p2]));
    assert_eq!(ids(&files, "Observation"), set(&[&o1, &o2]));
    assert!(!files.contains_key("Practitioner"));

    let (_, files) = export(&s, &t, &format!("Group/{g}/$export?_type=Observation")).await;
    assert_eq!(ids(&files, "Observation"), set(&[&o1, &o2]));
    assert!(!files.contains_key("Patient"));
    // The finished job is in the members' audit trail (and not in others').
    for (p, expected) in [(&p1, true), (&p2, true), (&p3, false)] {
        let (st, trail) = s.get_json(&format!("AuditEvent?patient=Patient/{p}&_count=1000")).await;
        assert_eq!(st, 200);
        let found = trail["entry"].as_array().into_iter().flatten().any(|e| {
            // The worker's record, not the kick-off's (202, the request path).
            e["resource"]["subtype"][0]["code"] == "$export" && e["resource"]["outcomeDesc"] == "200 /$export"
        });
        assert_eq!(found, expected, "Patient/{p}");
    }

    // An unknown Group, and types outside the compartment.
    let r = s
        .req(Method::GET, "Group/nope/$export")
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = s
        .req(Method::GET, "Patient/$export?_type=Practitioner")
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // The routes did not shadow reads and compartment searches.
    assert_eq!(s.get(&format!("Group/{g}")).await.status(), 200);
    assert_eq!(s.get(&format!("Patient/{p1}")).await.status(), 200);
    assert_eq!(s.get(&format!("Patient/{p1}/Observation")).await.status(), 200);
    s
}

async fn refusal_is_left_out(s: TestServer) -> TestServer {
    let refusing = patient(&s, "Refuse").await;
    let sharing = patient(&s, "Share").await;
    let o_ref = obs(&s, &refusing, "718-7").await;
    let o_ok = obs(&s, &sharing, "718-7").await;
    let consent = json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{refusing}")},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"type": "deny"}});
    s.create(consent).await;
    // The system client's search leaves the record out; so does its export.
    assert_eq!(s.get(&format!("Observation/{o_ref}")).await.status(), 403);
    let g = id(&s
        .create(json!({"resourceType": "Group", "type": "person", "actual": true,
            "member": [{"entity": {"reference": format!("Patient/{sharing}")}}]}))
        .await);
    // A Group that lists the refusing patient is in their compartment: refused, as a
    // read of it is.
    let with_refusing = id(&s
        .create(json!({"resourceType": "Group", "type": "person", "actual": true,
            "member": [{"entity": {"reference": format!("Patient/{refusing}")}},
                       {"entity": {"reference": format!("Patient/{sharing}")}}]}))
        .await);
    assert_eq!(s.get(&format!("Group/{with_refusing}")).await.status(), 403);
    let r = s
        .req(Method::GET, &format!("Group/{with_refusing}/$export"))
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let t = s.token.clone();
    for path in [
        "$export?_type=Patient,Observation,Consent,Group".to_string(),
        "Patient/$export".to_string(),
        format!("Group/{g}/$export"),
    ] {
        let (_, files) = export(&s, &t, &path).await;
        assert_eq!(ids(&files, "Patient"), set(&[&sharing]), "{path}");
        assert_eq!(ids(&files, "Observation"), set(&[&o_ok]), "{path}");
        assert!(!files.contains_key("Consent"), "{path}");
        assert!(!ids(&files, "Group").contains(&with_refusing), "{path}");
    }
    s
}

async fn who_may_export_and_see(s: TestServer) -> TestServer {
    let p = patient(&s, "Who").await;
    obs(&s, &p, "718-7").await;
    // A patient's token: 403.
    let pt = policy_support::user_token(&s, &format!("Patient/{p}"), policy_support::PATIENT_SCOPES)
        .await
        .unwrap();
    for path in ["$export", "Patient/$export"] {
        let r = s
            .req_as(Some(&pt), Method::GET, path)
            .header("accept", "application/fhir+json")
            .header("prefer", "respond-async")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{path}");
        let oo: Value = r.json().await.unwrap();
        assert_eq!(oo["resourceType"], "OperationOutcome");
    }
    // A backend token that may read Observations only: exports Observations, is refused
    // Patients, and without _type gets only what it may read.
    let obs_only = backend_token(&s, "system/Observation.rs").await;
    let r = s
        .req_as(Some(&obs_only), Method::GET, "$export?_type=Patient")
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (manifest, files) = export(&s, &obs_only, "$export").await;
    assert_eq!(files.keys().collect::<Vec<_>>(), vec!["Observation"], "{manifest}");

    // Another backend client: the job and its files do not exist for it.
    let t = s.token.clone();
    let loc = kick(&s, &t, "$export?_type=Patient").await;
    let manifest = wait(&s, &t, &loc).await;
    let file = manifest["output"][0]["url"].as_str().unwrap().to_string();
    let other = backend_token(&s, "system/*.*").await;
    for (m, url) in [(Method::GET, &loc), (Method::DELETE, &loc), (Method::GET, &file)] {
        let r = s.req_as(Some(&other), m.clone(), url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{m} {url}");
    }
    // Nor for the patient, nor without a token (401).
    assert_eq!(
        s.req_as(Some(&pt), Method::GET, &file).send().await.unwrap().status(),
        404
    );
    assert_eq!(s.req_as(None, Method::GET, &file).send().await.unwrap().status(), 401);
    // Still there for its owner.
    assert_eq!(
        s.req_as(Some(&t), Method::GET, &file).send().await.unwrap().status(),
        200
    );
    // Kick-off, status and download are in the audit trail.
    let (st, trail) = s.get_json("AuditEvent?_count=1000").await;
    assert_eq!(st, 200);
    let paths: Vec<String> = trail["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["entity"].as_array())
        .flatten()
        .filter_map(|e| e["what"]["reference"].as_str().or(e["description"].as_str()))
        .map(str::to_string)
        .collect();
    let text = trail.to_string();
    assert!(text.contains("$export-file"), "{paths:?}");
    assert!(text.contains("$export-status"));
    s
}

async fn cancel_deletes(s: TestServer) -> TestServer {
    let p = patient(&s, "Cancel").await;
    obs(&s, &p, "718-7").await;
    let t = s.token.clone();
    let loc = kick(&s, &t, "$export?_type=Patient,Observation").await;
    let manifest = wait(&s, &t, &loc).await;
    let file = manifest["output"][0]["url"].as_str().unwrap().to_string();
    let r = s.req(Method::DELETE, &loc).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(s.get(&loc).await.status(), 404);
    assert_eq!(s.get(&file).await.status(), 404);
    assert_eq!(s.req(Method::DELETE, &loc).send().await.unwrap().status(), 404);
    // Nothing is left in the database.
    let n = count_rows(&s, "SELECT COUNT(*) FROM export_files").await;
    assert_eq!(n, 0);

    // A finished job not deleted by its client expires after a day (retention).
    let client = BulkClient::register(&s, "system/*.rs").await;
    let t = client.token(&s).await;
    let loc = kick(&s, &t, "$export?_type=Patient").await;
    let manifest = wait(&s, &t, &loc).await;
    let file = manifest["output"][0]["url"].as_str().unwrap().to_string();
    s.clock.advance(Duration::from_secs(23 * 3600));
    let t = client.token(&s).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        s.req_as(Some(&t), Method::GET, &file).send().await.unwrap().status(),
        200
    );
    s.clock.advance(Duration::from_secs(2 * 3600));
    let t = client.token(&s).await;
    let mut gone = false;
    for _ in 0..40 {
        if s.req_as(Some(&t), Method::GET, &loc).send().await.unwrap().status() == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "expired job still answered");
    assert_eq!(
        s.req_as(Some(&t), Method::GET, &file).send().await.unwrap().status(),
        404
    );
    s
}

async fn count_rows(s: &TestServer, sql: &str) -> i64 {
    let mut conn = s.state().store().reader().await.unwrap();
    let q = carnet::store::sql::SqlQuery {
        sql: sql.to_string(),
        binds: vec![],
    };
    let rows = carnet::store::sql::fetch(&mut conn, &q, &[carnet::store::sql::Kind::I64])
        .await
        .unwrap();
    rows[0][0].i64().unwrap()
}

async fn survives_restart(s: TestServer) -> TestServer {
    // A process without a worker takes the kick-off; the job waits in the database.
    let s = s
        .restart_with(|c| {
            c.export.part_size = PART;
            c.export.worker = false;
        })
        .await;
    // One backend client across the restarts (each process has its own URL, so its own
    // tokens; the job belongs to the client).
    let client = BulkClient::register(&s, "system/*.rs").await;
    let p = patient(&s, "Restart").await;
    let mut all = Vec::new();
    for _ in 0..5 {
        all.push(obs(&s, &p, "718-7").await);
    }
    let t = client.token(&s).await;
    let loc = kick(&s, &t, "$export?_type=Observation").await;
    let job = loc.rsplit('/').next().unwrap().to_string();
    let status = format!("$export-status/{job}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = s.req_as(Some(&t), Method::GET, &status).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(r.headers()["x-progress"], "exported 0 resources, 0 of 1 types");
    // As if a worker had claimed it and died: its lease must run out first.
    let until = s.state().now() + 30_000_000;
    let mut tx = s.state().store().begin_write().await.unwrap();
    carnet::store::sql::execute(
        &mut tx,
        "UPDATE export_jobs SET lease_owner = 'dead', lease_until = $1",
        &[carnet::store::sql::Bind::I64(Some(until))],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let s = s.restart_with(|c| c.export.part_size = PART).await;
    let t = client.token(&s).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = s.req_as(Some(&t), Method::GET, &status).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202, "the dead worker's lease holds");
    s.clock.advance(Duration::from_secs(31));
    let t = client.token(&s).await;
    let manifest = wait(&s, &t, &s.url(&status)).await;
    let files = download(&s, &t, &manifest).await;
    assert_eq!(ids(&files, "Observation"), all.iter().cloned().collect());
    assert_eq!(files["Observation"].len(), 5);
    s
}

/// Two processes on one database: jobs kicked off on either are each run once (by
/// whichever worker claims them), and either process answers status and files.
async fn two_processes_share_the_queue(s: TestServer) -> TestServer {
    let s2 = TestServer::start_shared(&s).await;
    let client = BulkClient::register(&s, "system/*.rs").await;
    let (t1, t2) = (client.token(&s).await, client.token(&s2).await);
    let p = patient(&s, "Shared").await;
    let mut all = BTreeSet::new();
    for _ in 0..8 {
        all.insert(obs(&s2, &p, "718-7").await);
    }
    let mut jobs = Vec::new();
    for i in 0..6 {
        let (srv, t) = if i % 2 == 0 { (&s, &t1) } else { (&s2, &t2) };
        let loc = kick(srv, t, "$export?_type=Observation").await;
        jobs.push(loc.rsplit('/').next().unwrap().to_string());
    }
    for (i, job) in jobs.iter().enumerate() {
        // Polled and downloaded on the other process than the one that took it.
        let (srv, t) = if i % 2 == 0 { (&s2, &t2) } else { (&s, &t1) };
        let manifest = wait(srv, t, &srv.url(&format!("$export-status/{job}"))).await;
        for f in manifest["output"].as_array().unwrap() {
            assert!(f["url"].as_str().unwrap().starts_with(&srv.base));
        }
        let files = download(srv, t, &manifest).await;
        assert_eq!(ids(&files, "Observation"), all);
        assert_eq!(files["Observation"].len(), 8, "no part written twice");
    }
    s2.stop().await;
    s
}

/// A queued job can be cancelled before any worker runs it; a job that cannot run
/// (here: a filter made unparsable behind the server's back) fails, and its status
/// says so with an OperationOutcome.
async fn queued_cancel_and_failure(s: TestServer) -> TestServer {
    let s = s.restart_with(|c| c.export.worker = false).await;
    patient(&s, "Queued").await;
    let client = BulkClient::register(&s, "system/*.rs").await;
    let t = client.token(&s).await;
    let cancelled = kick(&s, &t, "$export?_type=Patient").await;
    let cancelled = cancelled.rsplit('/').next().unwrap().to_string();
    let r = s
        .req_as(Some(&t), Method::DELETE, &format!("$export-status/{cancelled}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let broken = kick(&s, &t, "$export?_type=Patient&_typeFilter=Patient%3Fname%3DQueued").await;
    let broken = broken.rsplit('/').next().unwrap().to_string();
    let mut tx = s.state().store().begin_write().await.unwrap();
    carnet::store::sql::execute(
        &mut tx,
        "UPDATE export_jobs SET type_filters = $1 WHERE id = $2",
        &[
            carnet::store::sql::Bind::Text(Some(r#"{"Patient":["no-such-param=1"]}"#.to_string())),
            carnet::store::sql::Bind::Text(Some(broken.clone())),
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let s = s.restart().await;
    let t = client.token(&s).await;
    let status = format!("$export-status/{broken}");
    let mut failed = None;
    for _ in 0..100 {
        let r = s.req_as(Some(&t), Method::GET, &status).send().await.unwrap();
        if r.status().as_u16() != 202 {
            failed = Some((r.status().as_u16(), r.json::<Value>().await.unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, oo) = failed.expect("the job failed");
    assert_eq!(st, 500, "{oo}");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert!(
        oo["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("no-such-param"),
        "{oo}"
    );
    let r = s
        .req_as(Some(&t), Method::GET, &format!("$export-status/{cancelled}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    s
}

/// A process stopped in the middle of a job hands it back (its lease cleared, its
/// cursor where the last committed part left it); the next process finishes it with
/// every resource exactly once.
async fn stopped_mid_job_resumes(s: TestServer) -> TestServer {
    let s = s.restart_with(|c| c.export.part_size = 1).await;
    let p = patient(&s, "Long").await;
    let entries: Vec<Value> = (0..200)
        .map(|_| {
            json!({"resource": {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                "subject": {"reference": format!("Patient/{p}")}},
                "request": {"method": "POST", "url": "Observation"}})
        })
        .collect();
    let r = s
        .send_json(
            Method::POST,
            "",
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    let client = BulkClient::register(&s, "system/*.rs").await;
    let t = client.token(&s).await;
    let loc = kick(&s, &t, "$export?_type=Observation").await;
    let status = format!("$export-status/{}", loc.rsplit('/').next().unwrap());
    loop {
        let r = s.req_as(Some(&t), Method::GET, &status).send().await.unwrap();
        assert_eq!(
            r.status().as_u16(),
            202,
            "finished before the stop: make the job longer"
        );
        if !r.headers()["x-progress"].to_str().unwrap().starts_with("exported 0 ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = s
        .restart_with(|c| {
            c.export.part_size = 1;
            c.export.worker = false;
        })
        .await;
    let row = {
        let mut conn = s.state().store().reader().await.unwrap();
        let q = carnet::store::sql::SqlQuery {
            sql: "SELECT exported, parts, cursor_pk, CAST(CASE WHEN lease_owner IS NULL THEN 1 ELSE 0 END AS BIGINT) \
                  FROM export_jobs WHERE state = 'queued'"
                .to_string(),
            binds: vec![],
        };
        let k = carnet::store::sql::Kind::I64;
        carnet::store::sql::fetch(&mut conn, &q, &[k, k, k, k]).await.unwrap()
    };
    let vals: Vec<i64> = row[0].iter().map(|c| c.i64().unwrap()).collect();
    let (exported, parts, cursor, released) = (vals[0], vals[1], vals[2], vals[3]);
    assert!(exported > 0 && exported < 200, "stopped mid-job: {vals:?}");
    assert_eq!(parts, exported, "one resource a part");
    assert!(cursor > 0);
    assert_eq!(released, 1, "a graceful stop hands the job back");
    let s = s.restart_with(|c| c.export.part_size = 7).await;
    let t = client.token(&s).await;
    let manifest = wait(&s, &t, &s.url(&status)).await;
    let files = download(&s, &t, &manifest).await;
    assert_eq!(files["Observation"].len(), 200);
    assert_eq!(ids(&files, "Observation").len(), 200, "no resource twice");
    let n: Vec<i64> = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["url"].as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        n,
        (0..n.len() as i64).collect::<Vec<_>>(),
        "files numbered without gaps"
    );
    s
}

async fn bad_requests(s: TestServer) -> TestServer {
    let send = |path: &str, accept: Option<&str>, prefer: Option<&str>| {
        let mut r = s.req(Method::GET, path);
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        if let Some(p) = prefer {
            r = r.header("prefer", p);
        }
        r.send()
    };
    let json = Some("application/fhir+json");
    let async_ = Some("respond-async");
    for (path, accept, prefer) in [
        ("$export", json, None),
        ("$export", None, async_),
        ("$export?_outputFormat=text/csv", json, async_),
        ("$export?_type=Nonsense", json, async_),
        ("$export?_since=yesterday", json, async_),
        ("$export?_elements=id", json, async_),
        ("$export?patient=Patient/1", json, async_),
        ("$export?_typeFilter=Observation%3Fnot-a-param%3D1", json, async_),
        ("$export?_typeFilter=Observation%3F_count%3D5", json, async_),
        ("$export?_typeFilter=Nonsense%3Fcode%3D1", json, async_),
        ("$export?_type=Patient&_typeFilter=Observation%3Fcode%3D1", json, async_),
    ] {
        let r = send(path, accept, prefer).await.unwrap();
        let st = r.status().as_u16();
        let oo: Value = r.json().await.unwrap();
        assert_eq!(st, 400, "{path} {accept:?} {prefer:?}: {oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome");
    }
    // Accepted forms: every _outputFormat alias, Prefer among other preferences.
    for f in ["application/fhir%2Bndjson", "application/ndjson", "ndjson"] {
        let r = send(
            &format!("$export?_type=Patient&_outputFormat={f}"),
            json,
            Some("handling=strict, respond-async"),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 202, "{f}");
    }
    // The CapabilityStatement says so.
    let (st, cs) = s.get_json("metadata").await;
    assert_eq!(st, 200);
    assert_eq!(
        cs["instantiates"][0],
        "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
    );
    assert_eq!(cs["rest"][0]["operation"][0]["name"], "export");
    let group = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Group")
        .unwrap();
    assert!(
        group["operation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "export")
    );
    // Status and files of jobs that never were.
    assert_eq!(s.get("$export-status/nope").await.status(), 404);
    assert_eq!(s.get("$export-file/nope/0").await.status(), 404);
    s
}
