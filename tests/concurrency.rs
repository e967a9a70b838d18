//! Concurrent writers: no lost update, every conflict a 412, gapless versions; and two
//! Carnet servers on one database behaving as one (issue 8, point 3: also a real second
//! `carnet` process under the same load, with shared audit trail and lockout counts).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_support.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use carnet::auth::clients::{self, Credential, Registration};
use carnet::auth::i18n::Lang;
use carnet_tests::bin::Serve;
use carnet_tests::{Backend, TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Log, Seen, assert_audited, audit_events};

async fn concurrent_if_match_updates_lose_nothing(s: &TestServer) {
    let created = s.create(json!({"resourceType": "Patient", "gender": "female"})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("Patient/{id}");
    // 12 clients each read the resource and try to write their version on top of it.
    let mut tasks = Vec::new();
    for n in 0..12 {
        let client = s.client.clone();
        let url = s.url(&path);
        let mut body = created.clone();
        body["birthDate"] = json!(format!("19{:02}-01-01", 50 + n));
        tasks.push(tokio::spawn(async move {
            loop {
                let cur: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
                let version = cur["meta"]["versionId"].as_str().unwrap().to_string();
                let r = client
                    .put(&url)
                    .header("content-type", "application/fhir+json")
                    .header("if-match", format!("W/\"{version}\""))
                    .body(serde_json::to_vec(&body).unwrap())
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => return 1,
                    412 => continue,
                    other => panic!("unexpected status {other}"),
                }
            }
        }));
    }
    let mut done = 0;
    for t in tasks {
        done += t.await.unwrap();
    }
    assert_eq!(done, 12);
    let (_, now) = s.get_json(&path).await;
    assert_eq!(now["meta"]["versionId"], "13");
    let (_, hist) = s.get_json(&format!("{path}/_history?_count=100")).await;
    let versions: Vec<u64> = hist["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        versions,
        (1..=13).rev().collect::<Vec<u64>>(),
        "versions must be gapless"
    );
}

async fn concurrent_creates_get_distinct_ids(s: &TestServer) {
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = s.client.clone();
        let url = s.url("Organization");
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(&url)
                .header("content-type", "application/fhir+json")
                .body(r#"{"resourceType":"Organization","name":"CLSC"}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
}

/// One server a load client talks to: its FHIR base and a `system/*.*` token for it.
#[derive(Clone)]
struct Endpoint {
    fhir: String,
    token: String,
}

impl Endpoint {
    /// `GET {fhir}/{path}` with this endpoint's token: the status and the JSON body
    /// (`null` when there is none).
    async fn get(&self, client: &reqwest::Client, path: &str) -> (u16, Value) {
        let r = client
            .get(format!("{}/{path}", self.fhir))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// What a load run saw.
#[derive(Default)]
struct Tally {
    /// Counter Observation id → successful updates to it.
    updates: BTreeMap<String, u64>,
    conflicts: u64,
    created: Vec<String>,
}

const COUNTERS: usize = 3;
const UPDATES_PER_CLIENT: u64 = 4;

/// `clients` clients spread over `endpoints`: each creates Organizations and adds 1 to
/// shared counters (Observation.valueInteger) with read, then PUT with `If-Match`,
/// retrying on 412, until it made `UPDATES_PER_CLIENT` increments. Any status but
/// 200 and 412 on an update fails. Every answer goes to `log`. Returns the tally and
/// the counters' ids.
async fn if_match_load(
    seed: &Endpoint,
    endpoints: &[Endpoint],
    clients: usize,
    log: &Arc<Log>,
) -> (Tally, Vec<String>) {
    let http = reqwest::Client::new();
    let mut counters = Vec::new();
    for _ in 0..COUNTERS {
        let o =
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "counter"}, "valueInteger": 0});
        let (st, body) = send(
            &http,
            log,
            &seed.token,
            Method::POST,
            &format!("{}/Observation", seed.fhir),
            Some(&o),
            None,
        )
        .await;
        assert_eq!(st, 201);
        counters.push(body["id"].as_str().unwrap().to_string());
    }
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for n in 0..clients {
        let (http, log, tally, counters) = (http.clone(), log.clone(), tally.clone(), counters.clone());
        // Each client alternates between servers request by request.
        let mine: Vec<Endpoint> = (0..endpoints.len())
            .map(|k| endpoints[(n + k) % endpoints.len()].clone())
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut i = 0usize;
            while done < UPDATES_PER_CLIENT {
                i += 1;
                let ep = &mine[i % mine.len()];
                if i.is_multiple_of(3) {
                    let org = json!({"resourceType": "Organization", "name": format!("c{n}-{i}")});
                    let (st, body) = send(
                        &http,
                        &log,
                        &ep.token,
                        Method::POST,
                        &format!("{}/Organization", ep.fhir),
                        Some(&org),
                        None,
                    )
                    .await;
                    assert_eq!(st, 201);
                    tally
                        .lock()
                        .unwrap()
                        .created
                        .push(body["id"].as_str().unwrap().to_string());
                }
                let id = &counters[(n + i) % counters.len()];
                let url = format!("{}/Observation/{id}", ep.fhir);
                let (st, mut cur) = send(&http, &log, &ep.token, Method::GET, &url, None, None).await;
                assert_eq!(st, 200);
                let version = cur["meta"]["versionId"].as_str().unwrap().to_string();
                cur["valueInteger"] = json!(cur["valueInteger"].as_u64().unwrap() + 1);
                // The PUT goes to the other server when there are two.
                let other = &mine[(i + 1) % mine.len()];
                let url = format!("{}/Observation/{id}", other.fhir);
                let (st, body) = send(&http, &log, &other.token, Method::PUT, &url, Some(&cur), Some(&version)).await;
                match st {
                    200 => {
                        done += 1;
                        *tally.lock().unwrap().updates.entry(id.clone()).or_default() += 1;
                    }
                    412 => tally.lock().unwrap().conflicts += 1,
                    other => panic!("If-Match update answered {other}, want 200 or 412: {body}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let tally = Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap();
    (tally, counters)
}

/// After [`if_match_load`]: each counter equals its number of successful updates (no
/// lost update), its versions are 1..=n+1 without a gap, and version k holds k-1; the
/// created ids are distinct.
fn check_counters(tally: &Tally, history: &BTreeMap<String, Vec<(u64, u64)>>) {
    for (id, versions) in history {
        let n = tally.updates.get(id).copied().unwrap_or(0);
        let want: Vec<(u64, u64)> = (1..=n + 1).rev().map(|v| (v, v - 1)).collect();
        assert_eq!(
            versions, &want,
            "counter {id}: {n} successful updates; (version, value) in its history"
        );
    }
    let mut ids = tally.created.clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), tally.created.len(), "duplicate ids");
}

/// Each counter's history as (version, value), newest first.
async fn counter_history(
    http: &reqwest::Client,
    ep: &Endpoint,
    counters: &[String],
) -> BTreeMap<String, Vec<(u64, u64)>> {
    let mut out = BTreeMap::new();
    for id in counters {
        let (status, b) = ep.get(http, &format!("Observation/{id}/_history?_count=1000")).await;
        assert_eq!(status, 200);
        let v = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let r = &e["resource"];
                (
                    r["meta"]["versionId"].as_str().unwrap().parse().unwrap(),
                    r["valueInteger"].as_u64().unwrap(),
                )
            })
            .collect();
        out.insert(id.clone(), v);
    }
    out
}

/// One request, remembered in `log` for the audit check.
async fn send(
    http: &reqwest::Client,
    log: &Log,
    token: &str,
    method: Method,
    url: &str,
    body: Option<&Value>,
    if_match: Option<&str>,
) -> (u16, Value) {
    let mut r = http.request(method.clone(), url).bearer_auth(token);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/fhir+json")
            .body(serde_json::to_vec(b).unwrap());
    }
    if let Some(v) = if_match {
        r = r.header("if-match", format!("W/\"{v}\""));
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let path = r.url().path().to_string();
    let body = r.json().await.unwrap_or(Value::Null);
    log.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path,
        status,
    });
    (status, body)
}

fn endpoint(s: &TestServer) -> Endpoint {
    Endpoint {
        fhir: s.base.clone(),
        token: s.token.clone(),
    }
}

/// 8 clients on 3 counters through one server.
async fn if_match_counters_lose_no_update(s: &TestServer) {
    let log = Arc::new(Log::default());
    let ep = endpoint(s);
    let (tally, counters) = if_match_load(&ep, std::slice::from_ref(&ep), 8, &log).await;
    check_counters(&tally, &counter_history(&s.anon, &ep, &counters).await);
    assert!(tally.conflicts > 0, "8 clients on 3 counters must conflict");
    assert_audited(
        &audit_events(s.backend, &s.database_url).await,
        &log.seen.lock().unwrap(),
    );
}

/// Concurrent conditional creates (`If-None-Exist`), then conditional updates
/// (`PUT Patient?identifier=…`), of one identifier, through `endpoints` in turn: exactly
/// one 201, the others 200 with that resource, and one resource stored.
async fn conditional_create_race(endpoints: &[Endpoint], clients: usize) {
    for update in [false, true] {
        conditional_race(endpoints, clients, update).await;
    }
}

async fn conditional_race(endpoints: &[Endpoint], clients: usize, update: bool) {
    let http = reqwest::Client::new();
    let value = uuid::Uuid::new_v4().simple().to_string();
    let mut tasks = Vec::new();
    for n in 0..clients {
        let ep = endpoints[n % endpoints.len()].clone();
        let (http, value) = (http.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"resourceType": "Patient", "identifier": [{"system": "urn:race", "value": value}]});
            let criteria = format!("identifier=urn:race|{value}");
            let r = if update {
                http.put(format!("{}/Patient?{criteria}", ep.fhir))
            } else {
                http.post(format!("{}/Patient", ep.fhir))
                    .header("if-none-exist", criteria)
            };
            let r = r
                .bearer_auth(&ep.token)
                .header("content-type", "application/fhir+json")
                .body(serde_json::to_vec(&body).unwrap())
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            let b: Value = r.json().await.unwrap_or(Value::Null);
            (st, b["id"].as_str().unwrap_or_default().to_string())
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let created: Vec<&(u16, String)> = answers.iter().filter(|(st, _)| *st == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "conditional writes (update: {update}) of one identifier: {answers:?}"
    );
    for (st, id) in &answers {
        assert!(*st == 201 || (*st == 200 && *id == created[0].1), "{answers:?}");
    }
    let ep = &endpoints[0];
    let (_, b) = ep
        .get(&http, &format!("Patient?identifier=urn:race|{value}&_summary=count"))
        .await;
    assert_eq!(b["total"], 1, "one Patient stored (update: {update})");
    if update {
        // Every conditional update after the creating one wrote a version of it.
        let (_, p) = ep.get(&http, &format!("Patient/{}", created[0].1)).await;
        assert_eq!(p["meta"]["versionId"], json!(clients.to_string()));
    }
}

async fn concurrent_conditional_creates_make_one(s: &TestServer) {
    conditional_create_race(&[endpoint(s)], 10).await;
}

/// `n` copies of one request at once; their statuses.
async fn at_once(n: usize, make: impl Fn() -> reqwest::RequestBuilder) -> Vec<u16> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let req = make();
        tasks.push(tokio::spawn(async move { req.send().await.unwrap().status().as_u16() }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// The version ids in a resource's history, newest first.
async fn versions(s: &TestServer, path: &str) -> Vec<String> {
    let (st, h) = s.get_json(&format!("{path}/_history?_count=100")).await;
    assert_eq!(st, 200);
    h["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let v = &e["resource"]["meta"]["versionId"];
            let v = if v.is_null() { &e["response"]["etag"] } else { v };
            v.as_str()
                .unwrap()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_string()
        })
        .collect()
}

/// Writers racing on one resource without If-Match: updates that create the same id,
/// deletes of one resource, releases of one result. Each answers as if alone (no 500
/// from a unique key), and the history has exactly the versions they imply.
async fn racing_writers_on_one_resource(s: &TestServer) {
    // PUT to a new id from 10 clients: one creates, nine update; versions 1..=10.
    let id = format!("race-{}", uuid::Uuid::new_v4().simple());
    let path = format!("Patient/{id}");
    let body = serde_json::to_vec(&json!({"resourceType": "Patient", "id": id})).unwrap();
    let st = at_once(10, || {
        s.req(Method::PUT, &path)
            .header("content-type", "application/fhir+json")
            .body(body.clone())
    })
    .await;
    assert_eq!(st.iter().filter(|x| **x == 201).count(), 1, "update as create: {st:?}");
    assert!(st.iter().all(|x| *x == 200 || *x == 201), "{st:?}");
    let want: Vec<String> = (1..=10).rev().map(|v| v.to_string()).collect();
    assert_eq!(versions(s, &path).await, want);

    // 10 deletes of one resource: all succeed, one delete version is written.
    let o = s
        .create(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}))
        .await;
    let path = format!("Observation/{}", o["id"].as_str().unwrap());
    let st = at_once(10, || s.req(Method::DELETE, &path)).await;
    assert!(st.iter().all(|x| *x == 200 || *x == 204), "deletes: {st:?}");
    assert_eq!(versions(s, &path).await.len(), 2, "one delete version");

    // 10 releases of one result by a practitioner: idempotent, one new version.
    let pr = s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Race"}]}))
        .await;
    let pt = support::user_token(
        s,
        &format!("Practitioner/{}", pr["id"].as_str().unwrap()),
        support::PRACTITIONER_SCOPES,
    )
    .await
    .unwrap();
    let o = s
        .create(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}))
        .await;
    let path = format!("Observation/{}", o["id"].as_str().unwrap());
    let st = at_once(10, || {
        s.req_as(Some(&pt), Method::POST, &format!("{path}/$release"))
            .header("content-type", "application/fhir+json")
            .body("{}")
    })
    .await;
    assert!(st.iter().all(|x| *x == 200), "releases: {st:?}");
    assert_eq!(versions(s, &path).await, ["2", "1"], "one release version");
}

fn privacy_consent(patient: &str, refuse: bool) -> Value {
    let (rule, kind) = if refuse {
        ("OPTOUT", "deny")
    } else {
        ("OPTIN", "permit")
    };
    json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": rule}]},
        "provision": {"type": kind}})
}

/// A refusal and a withdrawal written at the same moment (two devices, or the patient
/// and their representative): afterwards the newest active one (by `lastUpdated`) is
/// in force (R4), whichever transaction committed last.
async fn racing_refusal_and_withdrawal(s: &TestServer) {
    for round in 0..12 {
        let p = s
            .create(json!({"resourceType": "Patient", "birthDate": "1970-01-01"}))
            .await;
        let patient = format!("Patient/{}", p["id"].as_str().unwrap());
        let o = s
            .create(
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "subject": {"reference": patient}}),
            )
            .await;
        let mut tasks = Vec::new();
        for refuse in [round % 2 == 0, round % 2 == 1] {
            let (client, url, body) = (s.client.clone(), s.url("Consent"), privacy_consent(&patient, refuse));
            tasks.push(tokio::spawn(async move {
                let r = client
                    .post(url)
                    .header("content-type", "application/fhir+json")
                    .body(serde_json::to_vec(&body).unwrap())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
                let c: Value = r.json().await.unwrap();
                (
                    c["meta"]["lastUpdated"].as_str().unwrap().to_string(),
                    c["id"].as_str().unwrap().to_string(),
                    refuse,
                )
            }));
        }
        let mut written = Vec::new();
        for t in tasks {
            written.push(t.await.unwrap());
        }
        // Newest by write time (then by pk, which the ids do not show: skip exact ties).
        written.sort();
        if written[0].0 == written[1].0 {
            continue;
        }
        let refused = written[1].2;
        let st = s
            .get(&format!("Observation/{}", o["id"].as_str().unwrap()))
            .await
            .status()
            .as_u16();
        assert_eq!(
            st,
            if refused { 403 } else { 200 },
            "round {round}: newest is {:?}",
            written[1]
        );
    }
}

/// Transactions with the same two conditional creates in opposite orders, at once:
/// each is answered 200 (the conditional writes take turns without a deadlock that
/// would fail one), and each identifier ends up on one Patient.
async fn crossed_conditional_transactions(s: &TestServer) {
    let (x, y) = (
        uuid::Uuid::new_v4().simple().to_string(),
        uuid::Uuid::new_v4().simple().to_string(),
    );
    let entry = |v: &str| {
        json!({"request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier=urn:race|{v}")},
            "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:race", "value": v}]}})
    };
    let bundles = [
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [entry(&x), entry(&y)]}),
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [entry(&y), entry(&x)]}),
    ];
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (client, url, body) = (s.client.clone(), s.url(""), bundles[n % 2].clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("content-type", "application/fhir+json")
                .body(serde_json::to_vec(&body).unwrap())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    for t in tasks {
        let (st, text) = t.await.unwrap();
        assert_eq!(st, 200, "{text}");
    }
    for v in [&x, &y] {
        let (_, b) = s
            .get_json(&format!("Patient?identifier=urn:race|{v}&_summary=count"))
            .await;
        assert_eq!(b["total"], 1);
    }
}

on_both_backends!(
    crossed_conditional_transactions,
    racing_refusal_and_withdrawal,
    racing_writers_on_one_resource,
    concurrent_conditional_creates_make_one,
    concurrent_if_match_updates_lose_nothing,
    concurrent_creates_get_distinct_ids,
    if_match_counters_lose_no_update
);

/// Two servers on one PostgreSQL database: what one writes the other reads, and their
/// writers conflict exactly as one server's would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_behave_as_one() {
    let a = TestServer::start(Backend::Postgres).await;
    let b = TestServer::start_shared(&a).await;
    let created = a.create(json!({"resourceType": "Patient", "gender": "male"})).await;
    let path = format!("Patient/{}", created["id"].as_str().unwrap());
    let (st, read) = b.get_json(&path).await;
    assert_eq!(st, 200);
    assert_eq!(read, created);
    let put = |s: &TestServer, version: &str| {
        s.req(Method::PUT, &path)
            .header("content-type", "application/fhir+json")
            .header("if-match", format!("W/\"{version}\""))
            .body(serde_json::to_vec(&created).unwrap())
            .send()
    };
    assert_eq!(put(&b, "1").await.unwrap().status().as_u16(), 200);
    // A's client still holds version 1: refused, whichever server it talks to.
    assert_eq!(put(&a, "1").await.unwrap().status().as_u16(), 412);
    let (_, h) = a.get_json(&format!("{path}/_history")).await;
    assert_eq!(h["entry"].as_array().unwrap().len(), 2);
    b.stop().await;
    a.stop().await;
}

/// A second, real `carnet` process on the same PostgreSQL as an in-process server, under
/// the counter load from both at once: no lost update, every conflict a 412 (whichever
/// server holds the newer version), gapless versions, distinct ids, every answer of
/// either process audited; concurrent conditional writes of one identifier from both
/// make one resource; and five failed sign-ins spread over the two lock the account on
/// both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_share_load_audit_and_lockout() {
    let a = TestServer::start(Backend::Postgres).await;
    // Registered before the second process starts (it reads clients from the database).
    let key = carnet_tests::auth::ClientKey::es384();
    let client_id = format!("twin-{}", uuid::Uuid::new_v4().simple());
    carnet_tests::auth::register_jwks_client(a.state(), &client_id, "system/*.*", &key).await;
    let app = format!("app-{}", uuid::Uuid::new_v4().simple());
    let reg = Registration {
        client_id: app.clone(),
        name: "patient app".into(),
        redirect_uris: vec![REDIRECT.into()],
        scopes: "launch/patient patient/*.rs".into(),
        credential: Credential::Public,
    };
    clients::register(a.state().store(), &reg, a.state().now())
        .await
        .unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let b = Serve::start(&a.database_url, outbox.path()).await;
    let now = carnet::clock::system_now_micros() / 1_000_000;
    let (st, body) = carnet_tests::auth::client_credentials(
        &a.anon,
        &format!("{}/auth/token", b.base),
        &client_id,
        &key,
        "system/*.*",
        now,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let eps = [
        endpoint(&a),
        Endpoint {
            fhir: format!("{}/fhir", b.base),
            token: body["access_token"].as_str().unwrap().to_string(),
        },
    ];

    let log = Arc::new(Log::default());
    let (tally, counters) = if_match_load(&eps[0], &eps, 8, &log).await;
    // Read back through the process that did not create the counters.
    check_counters(&tally, &counter_history(&a.anon, &eps[1], &counters).await);
    assert!(tally.conflicts > 0, "8 clients on 3 counters must conflict");
    // Each create visible through both servers.
    for id in tally.created.iter().take(10) {
        for ep in &eps {
            assert_eq!(ep.get(&a.anon, &format!("Organization/{id}")).await.0, 200);
        }
    }
    // Reading AuditEvents through either process stores every logged record first,
    // both processes projecting the one log: ids must come out unique.
    for ep in &eps {
        assert_eq!(ep.get(&a.anon, "AuditEvent?_count=1").await.0, 200);
    }
    let events = audit_events(a.backend, &a.database_url).await;
    let seen = log.seen.lock().unwrap().clone();
    assert_audited(&events, &seen);
    let mut event_ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    let n = event_ids.len();
    assert!(n >= seen.len(), "{n} stored AuditEvents for {} answers", seen.len());
    event_ids.sort();
    event_ids.dedup();
    assert_eq!(event_ids.len(), n, "duplicate AuditEvent ids");

    // Conditional writes from both processes at once still make one resource.
    conditional_create_race(&eps, 10).await;

    // Lockout: failures alternate between the servers; the fifth locks on both.
    let username = activated_patient(&a).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let auths = [a.auth_url(), format!("{}/auth", b.base)];
    let mut txs = Vec::new();
    for (auth, ep) in auths.iter().zip(&eps) {
        txs.push(authorize_tx(&http, auth, &ep.fhir, &app).await);
    }
    for attempt in 0..5 {
        let k = attempt % 2;
        let (st, html) = password(&http, &auths[k], &txs[k], &username, "wrong password").await;
        assert_eq!(st, 401, "{html}");
        if attempt < 4 {
            assert!(
                html.contains("incorrect") && !html.contains("verrouillé"),
                "failure {attempt}: {html}"
            );
        } else {
            assert!(
                html.contains("verrouillé"),
                "the fifth failure, across both servers, locks: {html}"
            );
        }
    }
    for k in 0..2 {
        let (st, html) = password(&http, &auths[k], &txs[k], &username, PASSWORD).await;
        assert_eq!(st, 401, "the right password on server {k} after the lock: {html}");
        assert!(html.contains("verrouillé"), "locked on server {k}: {html}");
    }
    eprintln!(
        "two processes: {} updates, {} conflicts (412), {} creates, {} answers audited; lockout shared",
        tally.updates.values().sum::<u64>(),
        tally.conflicts,
        tally.created.len(),
        log.seen.lock().unwrap().len()
    );
    b.kill_nine();
    a.stop().await;
}

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const PASSWORD: &str = "un mot de passe solide";

/// A patient with an active account (invited and activated through `s`); its username.
async fn activated_patient(s: &TestServer) -> String {
    let p = s
        .create(json!({"resourceType": "Patient", "birthDate": "1985-01-01"}))
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    let inv = carnet::auth::accounts::invite(
        s.state(),
        &format!("Patient/{id}"),
        &[],
        Some("x@example.org"),
        Lang::Fr,
    )
    .await
    .unwrap();
    let username = format!("twin-{}", &id[..8]);
    let r = s
        .anon
        .post(format!("{}/activate", s.auth_url()))
        .form(&[
            ("activation_code", inv.activation_code.as_str()),
            ("username", &username),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    username
}

/// Opens a sign-in on the server at `auth` (for the FHIR base `aud`): its `tx`.
async fn authorize_tx(http: &reqwest::Client, auth: &str, aud: &str, app: &str) -> String {
    let (challenge, _) = oauth2::PkceCodeChallenge::new_random_sha256();
    let url = url::Url::parse_with_params(
        &format!("{auth}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", app),
            ("redirect_uri", REDIRECT),
            ("scope", "launch/patient patient/*.rs"),
            ("state", "s"),
            ("aud", aud),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let html = http.get(url).send().await.unwrap().text().await.unwrap();
    let start = html.find("name=\"tx\" value=\"").expect("tx field") + "name=\"tx\" value=\"".len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn password(http: &reqwest::Client, auth: &str, tx: &str, username: &str, password: &str) -> (u16, String) {
    let r = http
        .post(format!("{auth}/authorize"))
        .form(&[("tx", tx), ("username", username), ("password", password)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}
