//! `kill -9` under load (issue 5, point 9): a real `carnet` process answers audited
//! reads and transactions from 8 concurrent clients, is killed with SIGKILL, and is
//! started again on the same database. Every request that received an answer has its
//! AuditEvent (R5: durable before the response), and no transaction is half-visible.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_support.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use carnet_tests::bin::Serve;
use carnet_tests::{TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

async fn kill_nine(s: &TestServer) {
    // The data and a backend client, written into the database the process will use.
    let patient = s
        .create(json!({"resourceType": "Patient", "name": [{"family": "Kill"}]}))
        .await;
    let pid = patient["id"].as_str().unwrap().to_string();
    let mut reads = Vec::new();
    for _ in 0..4 {
        let o = s
            .create(
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "subject": {"reference": format!("Patient/{pid}")}}),
            )
            .await;
        reads.push(format!("Observation/{}", o["id"].as_str().unwrap()));
    }
    let key = carnet_tests::auth::ClientKey::es384();
    let client_id = format!("kill-{}", uuid::Uuid::new_v4().simple());
    carnet_tests::auth::register_jwks_client(s.state(), &client_id, "system/*.*", &key).await;
    let outbox = tempfile::tempdir().unwrap();

    let p = Serve::start(&s.database_url, outbox.path()).await;
    let tok = Arc::new(p.system_token(&s.anon, &client_id, &key).await);
    let log = Arc::new(Log::default());
    let answered_tags = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let base = Arc::new(format!("{}/fhir", p.base));
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (tok, log, base, reads, tags) = (
            tok.clone(),
            log.clone(),
            base.clone(),
            reads.clone(),
            answered_tags.clone(),
        );
        let (pid, http) = (pid.clone(), http.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                n += 1;
                let sent = if n.is_multiple_of(5) {
                    // A transaction of two Observations sharing one identifier.
                    let tag = format!("w{worker}-{n}");
                    let o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "kill"},
                        "identifier": [{"system": "urn:kill", "value": tag}],
                        "subject": {"reference": format!("Patient/{pid}")}});
                    let b = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                        {"request": {"method": "POST", "url": "Observation"}, "resource": o},
                        {"request": {"method": "POST", "url": "Observation"}, "resource": o}]});
                    let r = try_send(&http, &log, &tok, Method::POST, &base, Some(&b)).await;
                    if r == Some(200) {
                        tags.lock().unwrap().push(tag);
                    }
                    r
                } else {
                    let path = format!("{base}/{}", reads[n % reads.len()]);
                    try_send(&http, &log, &tok, Method::GET, &path, None).await
                };
                if sent.is_none() {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    p.kill_nine();
    for t in tasks {
        t.await.unwrap();
    }
    let seen = log.seen.lock().unwrap().clone();
    assert!(seen.len() > 50, "load: only {} answers", seen.len());

    // Started again on the same database: every answer has its AuditEvent.
    let p = Serve::start(&s.database_url, outbox.path()).await;
    let events = audit_events(s.backend, &s.database_url).await;
    assert_audited(&events, &seen);
    // No transaction is half-visible; every answered one is whole.
    let tok = p.system_token(&s.anon, &client_id, &key).await;
    let mut by_tag: HashMap<String, usize> = HashMap::new();
    let mut url = Some(format!("{}/fhir/Observation?code:text=kill&_count=500", p.base));
    while let Some(u) = url {
        let r = s.req_as(Some(&tok), Method::GET, &u).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let b: Value = r.json().await.unwrap();
        for e in b["entry"].as_array().into_iter().flatten() {
            let tag = e["resource"]["identifier"][0]["value"].as_str().unwrap().to_string();
            *by_tag.entry(tag).or_default() += 1;
        }
        url = next_link(&b);
    }
    for (tag, n) in &by_tag {
        assert_eq!(*n, 2, "transaction {tag} is half-visible");
    }
    for tag in answered_tags.lock().unwrap().iter() {
        assert_eq!(by_tag.get(tag), Some(&2), "answered transaction {tag} is lost");
    }
    eprintln!(
        "kill -9 on {:?}: {} answers before the kill, {} AuditEvents, {} transactions whole",
        s.backend,
        seen.len(),
        events.len(),
        by_tag.len()
    );
    p.kill_nine();
}

/// One request; `None` once the server is gone (no answer).
async fn try_send(
    http: &reqwest::Client,
    log: &Log,
    tok: &str,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> Option<u16> {
    let mut r = http
        .request(method.clone(), url)
        .bearer_auth(tok)
        .timeout(Duration::from_secs(10));
    if let Some(b) = body {
        r = r
            .header("content-type", "application/fhir+json")
            .body(serde_json::to_vec(b).unwrap());
    }
    let r = r.send().await.ok()?;
    let st = r.status().as_u16();
    let path = r.url().path().to_string();
    let text = r.text().await.ok()?;
    let mut seen = log.seen.lock().unwrap();
    if method == Method::POST && st == 200 {
        let resp: Value = serde_json::from_str(&text).ok()?;
        for a in resp["entry"].as_array()? {
            let status: u16 = a["response"]["status"].as_str()?.split(' ').next()?.parse().ok()?;
            seen.push(Seen {
                method: "POST".into(),
                path: format!("{}/Observation", path.trim_end_matches('/')),
                status,
            });
        }
    } else {
        seen.push(Seen {
            method: method.to_string(),
            path,
            status: st,
        });
    }
    Some(st)
}

on_both_backends!(kill_nine);
