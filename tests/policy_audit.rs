//! R5 completeness (issue 5, points 5 and 9): refusals at the edge are audited (401
//! without a usable token, with the network address only; 403 of the scope check, with
//! the user the token names), a Bundle leaves one AuditEvent per entry, a failed
//! transaction one for the Bundle; and every answer the test saw has its AuditEvent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_support.rs"]
mod support;

use carnet_tests::{TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

fn desc(e: &Value) -> &str {
    e["outcomeDesc"].as_str().unwrap_or_default()
}

async fn edge_refusals_and_bundle_entries(s: &TestServer) {
    let log = Log::default();
    let sys = system_token(s).await;
    let (st, text) = log
        .send(
            s,
            Some(&sys),
            Method::POST,
            "Patient",
            Some(&json!({"resourceType": "Patient", "birthDate": "1980-01-01"})),
        )
        .await;
    assert_eq!(st, 201);
    let a: Value = serde_json::from_str(&text).unwrap();
    let a = format!("Patient/{}", a["id"].as_str().unwrap());
    // 401: no token, a forged token.
    assert_eq!(log.get(s, None, &format!("{a}/Observation")).await.0, 401);
    assert_eq!(log.get(s, Some("not.a.token"), "Observation?subject=x").await.0, 401);
    // 403 at the edge: a patient whose token only reads Observations asks for Encounters.
    let t = user_token(
        s,
        &a,
        &["launch/patient", "openid", "fhirUser", "patient/Observation.rs"],
    )
    .await
    .unwrap();
    assert_eq!(log.get(s, Some(&t), "Encounter").await.0, 403);
    assert_eq!(log.get(s, Some(&t), "Observation").await.0, 200);
    // A transaction: one AuditEvent per entry; a batch: one per entry, failures too.
    let o =
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": a}});
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Observation"}, "resource": o},
        {"request": {"method": "POST", "url": "Observation"}, "resource": o},
        {"request": {"method": "GET", "url": a}}]});
    let (st, text) = log.send(s, Some(&sys), Method::POST, "", Some(&tx)).await;
    assert_eq!(st, 200, "{text}");
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": a}},
        {"request": {"method": "GET", "url": "Observation/nope"}},
        {"request": {"method": "DELETE", "url": "AuditEvent/nope"}}]});
    let (st, text) = log.send(s, Some(&sys), Method::POST, "", Some(&batch)).await;
    assert_eq!(st, 200, "{text}");
    // A transaction that fails is one record for the Bundle.
    let bad = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Observation"}, "resource": o},
        {"request": {"method": "GET", "url": "Observation/nope"}}]});
    let (st, _) = log.send(s, Some(&sys), Method::POST, "", Some(&bad)).await;
    assert!(st >= 400);

    let events = audit_events(s.backend, &s.database_url).await;
    assert_audited(&events, &log.seen.lock().unwrap());
    let anon: Vec<&Value> = events.iter().filter(|e| desc(e).starts_with("401 ")).collect();
    assert_eq!(anon.len(), 2, "{anon:?}");
    for e in &anon {
        assert_eq!(e["outcome"], "4");
        assert_eq!(e["agent"][0]["who"]["display"], "unauthenticated");
        assert_eq!(e["agent"][0]["network"]["address"], "127.0.0.1");
    }
    let scope: Vec<&Value> = events
        .iter()
        .filter(|e| desc(e).starts_with("403 ") && desc(e).ends_with("/Encounter"))
        .collect();
    assert_eq!(scope.len(), 1);
    assert_eq!(scope[0]["agent"][0]["who"]["reference"], json!(a));
    assert_eq!(scope[0]["subtype"][0]["code"], "search");
    let created: Vec<&Value> = events
        .iter()
        .filter(|e| desc(e).ends_with(" /fhir/Observation") && desc(e).starts_with("201"))
        .collect();
    assert_eq!(created.len(), 2, "one per transaction entry");
    for e in created {
        assert_eq!(e["action"], "C");
        assert!(
            e["entity"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["what"]["reference"] == json!(a)),
            "{e}"
        );
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| desc(e).starts_with("404 /fhir/Observation/nope"))
            .count(),
        1
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| desc(e).ends_with(" /fhir/AuditEvent/nope"))
            .count(),
        1
    );
}

on_both_backends!(edge_refusals_and_bundle_entries);
