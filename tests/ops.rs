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
    // A FHIR request that needs the database: 503 with a transient outcome, so that
    // clients retry, not 500.
    let r = s.get("Patient/any").await;
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["issue"][0]["code"], "transient", "{v}");
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
    assert!(
        sample(&text, "carnet_audit_log_rows").is_some_and(|n| n >= 0.0),
        "{text}"
    );
    // The pools and the job queue's gauge.
    let pools: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("carnet_db_pool_max_connections{"))
        .collect();
    match s.backend {
        // The database's writer and readers (for snapshots, and for reads by key), the
        // audit log's (a file of its own).
        carnet_tests::Backend::Sqlite => {
            assert_eq!(pools.len(), 5, "{text}");
            assert!(text.contains("pool=\"sqlite_read_by_key\""), "{text}");
            assert!(text.contains("pool=\"sqlite_audit_log_write\""), "{text}");
        }
        // Statements planned for their values, and lookups by key (generic plans).
        carnet_tests::Backend::Postgres => {
            assert_eq!(pools.len(), 2, "{text}");
            assert!(text.contains("pool=\"postgres_lookup\""), "{text}");
        }
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

/// A stand-in OpenTelemetry collector: an HTTP/1.1 listener that keeps the body of
/// every request it gets (OTLP/HTTP posts protobuf to `/v1/traces`) and answers 200.
async fn collector() -> (String, std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        stream.read_line(&mut line).await.unwrap();
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    stream.read_exact(&mut body).await.unwrap();
                    sink.lock().unwrap().push((path, body));
                    stream
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                }
            });
        }
    });
    (url, got)
}

/// With an OTLP endpoint configured, each request's span reaches the collector, in the
/// trace the caller's `traceparent` named, with the service name and no query string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_an_otlp_collector() {
    let (endpoint, got) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/carnet.db", dir.path().display());
    let serve = carnet_tests::bin::Serve::start_with_env(
        &db,
        &dir.path().join("outbox"),
        &[
            ("CARNET_OTLP_ENDPOINT", endpoint.as_str()),
            // Export every 100 ms instead of every 5 s (the SDK's batch settings).
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let r = reqwest::Client::new()
        .get(format!("{}/fhir/metadata?secret-query=1", serve.base))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let id_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    let start = std::time::Instant::now();
    let body = loop {
        let found = got
            .lock()
            .unwrap()
            .iter()
            .find(|(_, b)| contains(b, &id_bytes))
            .cloned();
        if let Some(f) = found {
            break f;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no span of the trace reached the collector"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(body.0, "/v1/traces");
    assert!(contains(&body.1, b"request"), "the request span");
    assert!(contains(&body.1, b"/fhir/metadata"), "its path");
    assert!(contains(&body.1, b"carnet"), "the service name");
    assert!(!contains(&body.1, b"secret-query"), "no query string in spans");
    serve.kill_nine();
}

/// How one of the server's own SQLite readers plans a read of a resource by id under
/// the policy, as `EXPLAIN QUERY PLAN` says it; `n` readers held at once.
async fn reader_plans(s: &TestServer, n: usize) -> Vec<String> {
    use carnet::store::sql::{Kind, SqlQuery, fetch};
    // The shape of a read under the policy (a refusal check, docs/policy.md R4).
    const PLAN: &str = "EXPLAIN QUERY PLAN SELECT v.content, CASE WHEN NOT EXISTS \
                        (SELECT 1 FROM patient_compartment pc JOIN patient_refusal pr \
                        ON pr.patient_id = pc.patient_id WHERE pc.pk = r.pk) THEN 1 ELSE 0 END \
                        FROM resources r JOIN resource_versions v ON v.pk = r.pk AND v.version = r.version \
                        WHERE r.res_type = 'Patient' AND r.res_id = 'st-1'";
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(s.state().store().reader().await.unwrap());
    }
    let mut plans = Vec::new();
    for c in &mut held {
        let q = SqlQuery {
            sql: PLAN.into(),
            ..Default::default()
        };
        let rows = fetch(c, &q, &[Kind::I64, Kind::I64, Kind::I64, Kind::Text])
            .await
            .unwrap();
        let plan: Vec<String> = rows.iter().filter_map(|r| r[3].text().map(str::to_string)).collect();
        plans.push(plan.join("; "));
    }
    plans
}

/// SQLite's planner statistics follow the data (`store::statistics`): statistics taken
/// while `resources` held one row make SQLite plan a read by id as table scans; once
/// the table has grown, the server's refresh re-analyses it, and its readers, which
/// load statistics only when they open, are replaced, so each plans index searches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_statistics_follow_the_data() {
    use sqlx::Connection;
    let s = TestServer::start(carnet_tests::Backend::Sqlite).await;
    let put = |i: usize| {
        let s = &s;
        async move {
            let body = json!({"resourceType": "Patient", "id": format!("st-{i}")});
            let r = s
                .send_json(reqwest::Method::PUT, &format!("Patient/st-{i}"), &body)
                .await;
            assert_eq!(r.status(), 201);
        }
    };
    put(0).await;
    let mut c = sqlx::SqliteConnection::connect(&s.database_url).await.unwrap();
    sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
    for i in 1..=300 {
        put(i).await;
    }
    // The pool's four readers, some opened after those statistics.
    let before = reader_plans(&s, 4).await;
    assert!(
        before.iter().any(|p| p.starts_with("SCAN r")),
        "statistics of one row: {before:?}"
    );
    s.state().store().refresh_statistics().await.unwrap();
    let after = reader_plans(&s, 4).await;
    assert!(
        after.iter().all(|p| p.contains("USING INDEX") && !p.contains("SCAN r")),
        "after the refresh: {after:?}"
    );
    let stat: String = sqlx::query_scalar("SELECT stat FROM sqlite_stat1 WHERE idx = 'sqlite_autoindex_resources_1'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let rows: i64 = stat.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(rows > 300, "resources re-analysed: {stat}");
    s.stop().await;
}

/// PostgreSQL connections closed by the server while idle (a restart, an
/// administrator's `pg_terminate_backend`) are found out when next handed out: a pool
/// pings a connection idle for over a second before giving it (`store::connect`,
/// `pg_pool`), and opens another, so the next requests succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_killed_while_idle_are_replaced() {
    use sqlx::Connection;
    let s = TestServer::start(carnet_tests::Backend::Postgres).await;
    let body = json!({"resourceType": "Patient", "id": "idle-kill"});
    let r = s.send_json(reqwest::Method::PUT, "Patient/idle-kill", &body).await;
    assert_eq!(r.status().as_u16(), 201);
    let (st, _) = s.get_json("Patient/idle-kill").await;
    assert_eq!(st, 200);
    let mut admin = sqlx::PgConnection::connect(&s.database_url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "the server's connections were there to close");
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    for _ in 0..3 {
        let (st, read) = s.get_json("Patient/idle-kill").await;
        assert_eq!(st, 200, "{read}");
        let (st, found) = s.get_json("Patient?_id=idle-kill&_summary=count").await;
        assert_eq!(st, 200, "{found}");
        assert_eq!(found["total"], 1, "{found}");
    }
    admin.close().await.unwrap();
    s.stop().await;
}
