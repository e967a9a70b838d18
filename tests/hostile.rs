//! Hostile requests (issue 8, point 4), each over HTTP on both backends: every one gets
//! a clean answer (an OperationOutcome with a 4xx, or the HTTP layer's own 4xx), nothing
//! is stored, and the server still serves a normal request afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use carnet_tests::{TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How many resources of each type a client sees (AuditEvents excluded: every request
/// adds one).
async fn stored(s: &TestServer) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for t in ["Patient", "Observation", "Basic"] {
        let (st, b) = s.get_json(&format!("{t}?_summary=count")).await;
        assert_eq!(st, 200);
        out.push((t.to_string(), b["total"].as_i64().unwrap()));
    }
    out
}

/// The resource [`healthy`] reads back.
async fn known(s: &TestServer) {
    let known = json!({"resourceType": "Patient", "id": "known", "name": [{"family": "Known"}]});
    assert_eq!(s.send_json(Method::PUT, "Patient/known", &known).await.status(), 201);
}

async fn healthy(s: &TestServer) {
    let (st, b) = s.get_json("Patient/known").await;
    assert_eq!((st, b["id"].as_str()), (200, Some("known")), "the server still answers");
}

/// A request's answer: the status, and the body when it is an OperationOutcome.
async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn assert_refused(what: &str, (status, body): &(u16, Value)) {
    // Only the start of a body: some of these requests are megabytes.
    let shown: String = body.to_string().chars().take(300).collect();
    assert!((400..500).contains(status), "{what}: {status} {shown}");
    if !body.is_null() {
        assert_eq!(body["resourceType"], "OperationOutcome", "{what}: {shown}");
    }
}

async fn post_raw(s: &TestServer, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    answer(
        s.req(Method::POST, path)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Sends raw bytes on a new connection and returns what the server answered (or
/// closed with) within `wait`.
async fn raw(s: &TestServer, bytes: &[u8], wait: Duration) -> String {
    let host = s
        .base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut c = tokio::net::TcpStream::connect(&host).await.unwrap();
    c.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, c.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

async fn hostile_bodies(s: &TestServer) {
    known(s).await;
    let before = stored(s).await;

    // Deep nesting: 100 000 levels of arrays inside an extension.
    let deep = format!(
        r#"{{"resourceType":"Patient","extension":[{{"url":"http://x","valueString":{}0{}}}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_refused(
        "deep JSON",
        &post_raw(s, "Patient", "application/fhir+json", deep.into_bytes()).await,
    );
    let deep_xml = format!(
        r#"<Patient xmlns="http://hl7.org/fhir">{}{}</Patient>"#,
        "<extension url=\"http://x\">".repeat(50_000),
        "</extension>".repeat(50_000)
    );
    assert_refused(
        "deep XML",
        &post_raw(s, "Patient", "application/fhir+xml", deep_xml.into_bytes()).await,
    );
    // Invalid UTF-8, lone surrogates, NUL bytes in strings, absurd numbers.
    let mut bad = br#"{"resourceType":"Patient","name":[{"family":""#.to_vec();
    bad.extend([0xff, 0xfe, 0x80]);
    bad.extend(br#""}]}"#);
    assert_refused(
        "invalid UTF-8",
        &post_raw(s, "Patient", "application/fhir+json", bad).await,
    );
    // In XML, inside a narrative: fhirbolt's reader panicked on it (found by fuzzing);
    // the answer must name the problem, not a parser failure.
    let mut bad_xml =
        br#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www."#.to_vec();
    bad_xml.push(0xa3);
    bad_xml.extend(br#".org/1999/xhtml">x</div></text></Patient>"#);
    let answer = post_raw(s, "Patient", "application/fhir+xml", bad_xml).await;
    assert_refused("invalid UTF-8 in XML", &answer);
    let said = answer.1["issue"][0]["diagnostics"].as_str().unwrap_or_default();
    assert!(said.contains("not UTF-8"), "invalid UTF-8 in XML: {said}");
    let surrogate = br#"{"resourceType":"Patient","name":[{"family":"\ud800"}]}"#.to_vec();
    assert_refused(
        "lone surrogate",
        &post_raw(s, "Patient", "application/fhir+json", surrogate).await,
    );
    let nul = br#"{"resourceType":"Patient","name":[{"family":"a\u0000b"}]}"#.to_vec();
    assert_refused(
        "NUL in a string",
        &post_raw(s, "Patient", "application/fhir+json", nul).await,
    );
    let huge_number =
        br#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e999999}}"#;
    assert_refused(
        "1e999999",
        &post_raw(s, "Observation", "application/fhir+json", huge_number.to_vec()).await,
    );
    // A transaction whose last entry is bad stores none of the others.
    let mut entries: Vec<Value> = (0..50)
        .map(|i| {
            json!({"resource": {"resourceType": "Basic", "code": {"text": format!("t{i}")}},
            "request": {"method": "POST", "url": "Basic"}})
        })
        .collect();
    entries.push(
        json!({"resource": {"resourceType": "Basic", "code": {"text": "bad"}, "created": "2024-02-30"},
        "request": {"method": "POST", "url": "Basic"}}),
    );
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    assert_refused(
        "transaction with a bad entry",
        &post_raw(s, "", "application/fhir+json", serde_json::to_vec(&tx).unwrap()).await,
    );
    assert_eq!(stored(s).await, before, "nothing stored");
    healthy(s).await;
}

async fn hostile_urls_and_parameters(s: &TestServer) {
    known(s).await;
    let before = stored(s).await;

    // SQL in values is data; in names, modifiers and sort keys it is refused.
    let (st, b) = s.get_json("Patient?name=%27%20OR%201%3D1%20--").await;
    assert_eq!((st, b["total"].as_i64()), (200, Some(0)), "{b}");
    let (st, b) = s
        .get_json("Patient?_id=known%27%3B%20DROP%20TABLE%20resources%3B--")
        .await;
    assert_eq!((st, b["total"].as_i64()), (200, Some(0)), "{b}");
    for q in [
        "Patient?name%3BDROP%20TABLE%20resources=x",
        "Patient?_sort=name%3BDROP%20TABLE%20resources",
        "Patient?name:exact%27--=x",
        "Patient?_include=Patient:organization%27",
    ] {
        let r = s.get(q).await;
        assert_refused(q, &answer(r).await);
    }
    // Ids that are not ids: path traversal, quotes, 10 000 characters.
    for path in [
        "Patient/..%2F..%2Fetc%2Fpasswd",
        "Patient/known%27%20OR%20%271%27%3D%271",
        "Patient/%00",
        &format!("Patient/{}", "a".repeat(10_000)),
    ] {
        assert_refused(path, &answer(s.get(path).await).await);
    }
    let (st, _) = answer(s.get("../../etc/passwd").await).await;
    assert_eq!(st, 404);
    // Invalid UTF-8 in the query string.
    assert_refused("%FF", &answer(s.get("Patient?name=%FF%FE").await).await);
    // A million parameters: in the URL (the HTTP layer refuses it) and as a form body.
    let many: String = (0..1_000_000).map(|i| format!("_id=x{i}&")).collect();
    let started = Instant::now();
    let r = s
        .req(Method::POST, "Patient/_search")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(many.clone())
        .send()
        .await
        .unwrap();
    assert_refused("a million form parameters", &answer(r).await);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refused without working through them: {:?}",
        started.elapsed()
    );
    let line = format!("GET /fhir/Patient?{} HTTP/1.1\r\nHost: x\r\n\r\n", &many[..1_000_000]);
    let reply = raw(s, line.as_bytes(), Duration::from_secs(10)).await;
    assert!(reply.starts_with("HTTP/1.1 4"), "a 1 MB URL: {reply:.80}");
    let values: String = (0..100_000).map(|i| format!("x{i},")).collect();
    let r = s
        .req(Method::POST, "Patient/_search")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("_id={}", values.trim_end_matches(',')))
        .send()
        .await
        .unwrap();
    assert_refused("100 000 values of one parameter", &answer(r).await);
    // Header tricks: a CR/LF in a header is refused by the HTTP layer, and a value
    // that tries to smuggle a header through `_format` does not reach the response.
    let reply = raw(
        s,
        b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 400"), "obsolete line folding: {reply:.80}");
    let r = s.get("metadata?_format=json%0d%0aSet-Cookie:%20x=1").await;
    assert!(r.headers().get("set-cookie").is_none());
    assert_refused("_format with CR/LF", &answer(r).await);
    assert_eq!(stored(s).await, before, "nothing stored");
    healthy(s).await;
}

/// A client that sends its headers a byte at a time is cut off, and does not keep the
/// server from answering others meanwhile.
async fn slow_clients_are_cut_off(s: &TestServer) {
    known(s).await;
    let host = s
        .base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut c = tokio::net::TcpStream::connect(&host).await.unwrap();
        c.write_all(b"GET /fhir/metadata HTTP/1.1\r\nHo").await.unwrap();
        slow.push(c);
    }
    healthy(s).await;
    let started = Instant::now();
    let mut c = slow.pop().unwrap();
    let mut buf = [0u8; 1];
    let closed = loop {
        if c.write_all(b"s").await.is_err() {
            break true;
        }
        match tokio::time::timeout(Duration::from_secs(1), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            _ => {}
        }
        if started.elapsed() > Duration::from_secs(60) {
            break false;
        }
    };
    assert!(closed, "a client trickling its headers is cut off");
    healthy(s).await;
}

on_both_backends!(hostile_bodies, hostile_urls_and_parameters, slow_clients_are_cut_off);

/// Rate limits (issue 8, point 5): past its bucket a client gets 429 with `Retry-After`
/// and an OperationOutcome while another client still gets through; the per-address
/// limit covers the sign-in pages too; both recover after the wait.
async fn floods_are_throttled(backend: carnet_tests::Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.rate_limit_client = 5;
    })
    .await;
    known(&s).await;
    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..30 {
        let r = s.get("Patient/known").await;
        statuses.push(r.status().as_u16());
        if r.status().as_u16() == 429 && throttled.is_none() {
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            throttled = Some((retry, answer(r).await.1));
        }
    }
    // A burst of twice the rate passes (the PUT of `known` took one); the rest of a
    // tight loop does not.
    assert!(statuses[..9].iter().all(|&st| st == 200), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let (retry, body) = throttled.unwrap();
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(body["issue"][0]["code"], "throttled", "{body}");
    // Another client has its own bucket.
    let key = carnet_tests::auth::ClientKey::es384();
    carnet_tests::auth::register_jwks_client(s.state(), "other-backend", "system/*.rs", &key).await;
    let token_url = format!("{}/token", s.auth_url());
    let (st, tok) = carnet_tests::auth::client_credentials(
        &s.anon,
        &token_url,
        "other-backend",
        &key,
        "system/Patient.rs",
        s.state().now() / 1_000_000,
    )
    .await;
    assert_eq!(st, 200, "{tok}");
    let other = tok["access_token"].as_str().unwrap();
    let r = s
        .req_as(Some(other), Method::GET, "Patient/known")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    healthy(&s).await;
    s.stop().await;

    // By address: the sign-in page is throttled too, before any work is done.
    let s = TestServer::start_with(backend, |c| {
        c.rate_limit_ip = 3;
    })
    .await;
    let page = format!("{}/authorize", s.auth_url());
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(s.anon.get(&page).send().await.unwrap().status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = s.anon.get(&page).send().await.unwrap();
    assert_ne!(r.status().as_u16(), 429);
    // The HTML pages carry the browser-side protections (no framing, no scripts, no
    // caching of a page with a code in it, no MIME sniffing, no referrer).
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h.get("set-cookie").is_none(), "the sign-in flow keeps no cookie");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_throttled_sqlite() {
    floods_are_throttled(carnet_tests::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_throttled_postgres() {
    floods_are_throttled(carnet_tests::Backend::Postgres).await;
}
