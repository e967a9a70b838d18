//! Operators' endpoints over HTTP on both backends: `/health`, `/ready` (and 503 once
//! the database is gone), `/metrics` in the Prometheus text format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carnet_tests::{TestServer, on_both_backends};
use serde_json::{Value, json};

/// The server's root (`http://host:port`), where the operators' endpoints live.
fn root(s: &TestServer) -> String {
    s.base.trim_end_matches("/fhir").to_string()
}

async fn metrics(s: &TestServer) -> String {
    let r = s.anon.get(format!("{}/metrics", root(s))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

/// The value of the sample `name` (with its labels exactly as written), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn health_and_ready(s: &TestServer) {
    // No token needed.
    let r = s.anon.get(format!("{}/health", root(s))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    let r = s.anon.get(format!("{}/ready", root(s))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ready");

    // Without its database the process still lives, but is not ready.
    s.state().store().close().await;
    let r = s.anon.get(format!("{}/ready", root(s))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["resourceType"], "OperationOutcome");
    let r = s.anon.get(format!("{}/health", root(s))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn metrics_count_requests(s: &TestServer) {
    let p = s
        .create(json!({"resourceType": "Patient", "name": [{"family": "Mesure"}]}))
        .await;
    let path = format!("Patient/{}", p["id"].as_str().unwrap());
    let read_200 = "carnet_http_requests_total{interaction=\"read\",code=\"200\"}";
    let before = sample(&metrics(s).await, read_200).unwrap_or(0.0);
    for _ in 0..3 {
        assert_eq!(s.get(&path).await.status().as_u16(), 200);
    }
    assert_eq!(s.get("Patient/absent").await.status().as_u16(), 404);
    // Refused at the token check: counted too.
    let r = s.anon.get(s.url(&path)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(s.get(&format!("{path}/$everything")).await.status().as_u16(), 200);

    let text = metrics(s).await;
    assert_eq!(sample(&text, read_200), Some(before + 3.0), "{text}");
    assert!(sample(&text, "carnet_http_requests_total{interaction=\"read\",code=\"404\"}").unwrap() >= 1.0);
    assert!(sample(&text, "carnet_http_requests_total{interaction=\"read\",code=\"401\"}").unwrap() >= 1.0);
    assert!(sample(&text, "carnet_http_requests_total{interaction=\"create\",code=\"201\"}").unwrap() >= 1.0);
    assert!(
        sample(
            &text,
            "carnet_http_requests_total{interaction=\"operation\",code=\"200\"}"
        )
        .unwrap()
            >= 1.0
    );
    // The histogram: cumulative buckets ending at +Inf = count.
    let count = sample(
        &text,
        "carnet_http_request_duration_seconds_count{interaction=\"read\"}",
    )
    .unwrap();
    let inf = sample(
        &text,
        "carnet_http_request_duration_seconds_bucket{interaction=\"read\",le=\"+Inf\"}",
    )
    .unwrap();
    assert_eq!(count, inf);
    assert!(count >= 5.0);
    assert!(text.contains("# TYPE carnet_http_request_duration_seconds histogram"));

    // The audit trail's group commit: nothing waits once every answer is out, and
    // every audited request above was committed.
    assert_eq!(sample(&text, "carnet_audit_queue_depth"), Some(0.0), "{text}");
    assert!(sample(&text, "carnet_audit_records_total").unwrap() >= 6.0);
    assert!(sample(&text, "carnet_audit_batches_total").unwrap() >= 1.0);
    // The pools and the job queue's gauge.
    let pools: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("carnet_db_pool_max_connections{"))
        .collect();
    match s.backend {
        carnet_tests::Backend::Sqlite => assert_eq!(pools.len(), 2, "{text}"),
        carnet_tests::Backend::Postgres => assert_eq!(pools.len(), 1, "{text}"),
    }
    assert!(text.contains("carnet_db_pool_connections{"));
    assert_eq!(sample(&text, "carnet_jobs{state=\"queued\"}"), Some(0.0));
    // The scrape itself is the one request in flight.
    assert_eq!(sample(&text, "carnet_http_requests_in_flight"), Some(1.0));
    assert!(text.contains("carnet_build_info{version=\""));
    // Every sample line is `name{labels} value` or `name value`.
    for l in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (_, v) = l.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "{l}");
    }
}

on_both_backends!(health_and_ready, metrics_count_requests);
