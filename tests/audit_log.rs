//! The audit log and its projection (docs/policy.md, R5): records logged by another
//! process, whose projector never runs, are AuditEvents for any reader here: a search
//! of AuditEvents stores every row logged before it first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carnet::audit::Record;
use carnet::config::Config;
use carnet_tests::{TestServer, on_both_backends};
use reqwest::{Method, StatusCode};

/// Rows logged through a second state on the same database (another Carnet process
/// as far as the server can tell), then read through the server's API.
async fn logged_records_are_searchable_at_once(s: &TestServer) {
    let mut config = Config::for_database(&s.database_url);
    config.db_pool = 2;
    let other = carnet::app::build_state(config, None).await.unwrap();
    let address: std::net::IpAddr = "192.0.2.77".parse().unwrap();
    let records: Vec<Record> = (0..40)
        .map(|i| {
            Record::anonymous(
                &other,
                Some(address),
                &Method::GET,
                &format!("/fhir/Patient/p-{i}"),
                StatusCode::UNAUTHORIZED,
            )
        })
        .collect();
    other.auditor().submit_all(&other, records).await.unwrap();
    assert_eq!(other.auditor().committed_records(), 40);
    assert_eq!(
        other.auditor().projector().projected(),
        0,
        "no projector runs in `other`"
    );

    let (st, bundle) = s.get_json("AuditEvent?address=192.0.2.77&_summary=count").await;
    assert_eq!(st, 200, "{bundle}");
    assert_eq!(bundle["total"], 40, "{bundle}");
    let (st, bundle) = s.get_json("AuditEvent?address=192.0.2.77&_sort=date&_count=100").await;
    assert_eq!(st, 200, "{bundle}");
    let descs: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["outcomeDesc"].as_str().unwrap())
        .collect();
    assert_eq!(descs.len(), 40);
    assert!(descs.contains(&"401 /fhir/Patient/p-0") && descs.contains(&"401 /fhir/Patient/p-39"));
    for e in bundle["entry"].as_array().unwrap() {
        let r = &e["resource"];
        assert_eq!(r["outcome"], "4");
        assert!(r["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert_eq!(r["agent"][0]["network"]["address"], "192.0.2.77");
    }
    other.store().close().await;
}

/// The log's sequence numbers are never handed out twice, even once the newest row is
/// gone: a projector that read a row deletes it by number, so a reused number would
/// make it delete a newer row and store the older event twice (one answered request
/// without its AuditEvent; seen in tests/crash.rs, where the test's in-process server
/// and the killed-and-restarted process both project one SQLite file). Checked on the
/// schema itself, in a transaction that is rolled back, so no projector interferes.
async fn log_sequence_numbers_are_never_reused(s: &TestServer) {
    use sqlx::Connection;
    const INSERT: &str = "INSERT INTO audit_log (event) VALUES ($1) RETURNING seq";
    const DELETE: &str = "DELETE FROM audit_log WHERE seq = $1";
    let event = br#"{"resourceType":"AuditEvent"}"#.to_vec();
    // The same statements on either backend's connection type.
    macro_rules! insert_delete_insert {
        ($conn:ty) => {{
            let mut c = <$conn>::connect(&s.database_url).await.unwrap();
            let mut tx = c.begin().await.unwrap();
            let a: i64 = sqlx::query_scalar(INSERT)
                .bind(&event)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            sqlx::query(DELETE).bind(a).execute(&mut *tx).await.unwrap();
            let b: i64 = sqlx::query_scalar(INSERT)
                .bind(&event)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx.rollback().await.unwrap();
            (a, b)
        }};
    }
    let (first, second) = match s.backend {
        carnet_tests::Backend::Sqlite => insert_delete_insert!(sqlx::SqliteConnection),
        carnet_tests::Backend::Postgres => insert_delete_insert!(sqlx::PgConnection),
    };
    assert!(
        second > first,
        "the log reused sequence number {second} (deleted row: {first})"
    );
}

/// AuditEvents are indexed without their resource's folded patient and date
/// (`search::index::folds`), so the shapes other types search through those facts
/// (a code with a patient or a date, `_has` of a code) must find them the general way.
async fn audit_events_are_found_by_code_with_patient_date_and_has(s: &TestServer) {
    for id in ["audited", "unread"] {
        let body = serde_json::json!({"resourceType": "Patient", "id": id, "name": [{"family": "Roy"}]});
        let r = s.send_json(Method::PUT, &format!("Patient/{id}"), &body).await;
        assert_eq!(r.status(), 201);
    }
    for _ in 0..3 {
        let (st, _) = s.get_json("Patient/audited").await;
        assert_eq!(st, 200);
    }
    let count = |q: &'static str| async move {
        let (st, b) = s.get_json(q).await;
        assert_eq!(st, 200, "{q}: {b}");
        b["total"].as_i64().unwrap_or(-1)
    };
    assert_eq!(
        count("AuditEvent?patient=Patient/audited&subtype=read&_summary=count").await,
        3
    );
    assert_eq!(
        count("AuditEvent?patient=Patient/unread&subtype=read&_summary=count").await,
        0
    );
    assert_eq!(
        count("AuditEvent?patient=Patient/audited&subtype=read&date=ge2000-01-01&_summary=count").await,
        3
    );
    assert_eq!(
        count("AuditEvent?patient=Patient/audited&subtype=read&date=lt2000-01-01&_summary=count").await,
        0
    );
    // Its creation and the three reads.
    assert_eq!(
        count("AuditEvent?entity=Patient/audited&date=ge2000-01-01&_summary=count").await,
        4
    );
    let (st, b) = s
        .get_json("Patient?_has:AuditEvent:patient:subtype=read&family=roy")
        .await;
    assert_eq!(st, 200, "{b}");
    let ids: Vec<&str> = b["entry"]
        .as_array()
        .map(|es| es.iter().filter_map(|e| e["resource"]["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["audited"], "{b}");
}

on_both_backends!(
    logged_records_are_searchable_at_once,
    log_sequence_numbers_are_never_reused,
    audit_events_are_found_by_code_with_patient_date_and_has
);

/// The background checkpoints copy SQLite's WAL into the database file while the
/// server runs (the writer's own checkpoint waits for 4,000 pages, which these few
/// writes never reach): the file read alone, without its WAL, soon holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_copied_in_the_background() {
    let s = TestServer::start(carnet_tests::Backend::Sqlite).await;
    for i in 0..5 {
        let body = serde_json::json!({"resourceType": "Patient", "id": format!("ck-{i}")});
        let r = s.send_json(Method::PUT, &format!("Patient/ck-{i}"), &body).await;
        assert_eq!(r.status(), 201);
    }
    let path = s.database_url.trim_start_matches("sqlite://").to_string();
    let in_file = || {
        // `immutable=1` reads the database file as it is, ignoring the WAL.
        let url = format!("sqlite://{path}?immutable=1");
        async move {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            // Before the first copy the file may not even hold the tables.
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM resources WHERE res_id LIKE 'ck-%'")
                .fetch_one(&mut c)
                .await
                .unwrap_or(0)
        }
    };
    let mut seen = in_file().await;
    for _ in 0..100 {
        if seen == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        seen = in_file().await;
    }
    assert_eq!(seen, 5, "the database file (without its WAL) holds the writes");
    s.stop().await;
}
