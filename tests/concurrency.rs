//! Concurrent writers: no lost update, every conflict a 412, gapless versions; and two
//! Carnet servers on one database behaving as one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carnet_tests::{Backend, TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

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

on_both_backends!(
    concurrent_if_match_updates_lose_nothing,
    concurrent_creates_get_distinct_ids
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
