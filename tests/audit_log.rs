//! The audit log and its projection (docs/policy.md, R5): records logged by another
//! process, whose projector never runs, are AuditEvents for any reader here: a search
//! of AuditEvents stores every row logged before it first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carnet::audit::Record;
use carnet::config::Config;
use carnet_tests::{TestServer, on_both_backends, sorted_ids};
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
    let url = carnet_tests::audit_log_url(s.backend, &s.database_url);
    macro_rules! insert_delete_insert {
        ($conn:ty) => {{
            let mut c = <$conn>::connect(&url).await.unwrap();
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

/// A logged event whose id is already a stored AuditEvent (a projection on SQLite
/// stopped between storing the events and deleting their rows, whose log is a file of
/// its own) is not stored again, and its row leaves the log.
async fn an_event_already_stored_is_not_stored_twice(s: &TestServer) {
    use sqlx::Connection;
    let body = serde_json::json!({"resourceType": "Patient", "id": "twice"});
    assert_eq!(s.send_json(Method::PUT, "Patient/twice", &body).await.status(), 201);
    let (st, bundle) = s.get_json("AuditEvent?entity=Patient/twice&_count=1").await;
    assert_eq!(st, 200, "{bundle}");
    let event = bundle["entry"][0]["resource"].clone();
    let id = event["id"].as_str().expect("a stored AuditEvent").to_string();
    let url = carnet_tests::audit_log_url(s.backend, &s.database_url);
    let bytes = serde_json::to_vec(&event).unwrap();
    const INSERT: &str = "INSERT INTO audit_log (event) VALUES ($1)";
    match s.backend {
        carnet_tests::Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(INSERT).bind(&bytes).execute(&mut c).await.unwrap();
        }
        carnet_tests::Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(INSERT).bind(&bytes).execute(&mut c).await.unwrap();
        }
    }
    // This search projects the row first (and its own request's row, if logged yet).
    let (st, bundle) = s.get_json(&format!("AuditEvent?_id={id}&_summary=count")).await;
    assert_eq!(st, 200, "{bundle}");
    assert_eq!(bundle["total"], 1, "{bundle}");
    let (st, bundle) = s.get_json(&format!("AuditEvent?_id={id}&_summary=count")).await;
    assert_eq!(st, 200, "{bundle}");
    assert_eq!(bundle["total"], 1, "{bundle}");
    let left = log_rows(s).await;
    // At most the row of the last search itself, logged after its own flush.
    assert!(left <= 1, "{left} rows left in the log");
}

/// A search's AuditEvent names the patients whose records its page listed (read by
/// the search itself, `search::execute::owners`), so each finds it in their trail.
async fn a_search_names_the_patients_it_listed(s: &TestServer) {
    for id in ["listed-a", "listed-b", "unlisted"] {
        let body = serde_json::json!({"resourceType": "Patient", "id": id});
        let r = s.send_json(Method::PUT, &format!("Patient/{id}"), &body).await;
        assert_eq!(r.status(), 201);
    }
    for (patient, code) in [("listed-a", "33914-3"), ("listed-b", "33914-3"), ("unlisted", "2160-0")] {
        let body = serde_json::json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": format!("Patient/{patient}")}});
        let r = s.send_json(Method::POST, "Observation", &body).await;
        assert_eq!(r.status(), 201);
    }
    let (st, b) = s.get_json("Observation?code=33914-3").await;
    assert_eq!(st, 200);
    assert_eq!(b["entry"].as_array().map(Vec::len), Some(2), "{b}");
    let count = |q: String| async move {
        let (st, b) = s.get_json(&q).await;
        assert_eq!(st, 200, "{q}: {b}");
        b["total"].as_i64().unwrap_or(-1)
    };
    for (patient, want) in [("listed-a", 1), ("listed-b", 1), ("unlisted", 0)] {
        let q = format!("AuditEvent?patient=Patient/{patient}&subtype=search&_summary=count");
        assert_eq!(count(q).await, want, "{patient}");
    }
    // Its entities share `type` and `role` codes, stored once a resource (extraction
    // drops repeated values): each still finds the event, alone or together. (Counted
    // before any search lists the event, whose own event would name the same patients.)
    for q in [
        "entity-type=2&entity-role=4",
        "entity-type=1&entity-role=1",
        "entity-role=24",
        "entity-type=http://terminology.hl7.org/CodeSystem/audit-entity-type|2&entity-role=4,24",
    ] {
        let q = format!("AuditEvent?patient=Patient/listed-b&subtype=search&{q}&_summary=count");
        assert_eq!(count(q.clone()).await, 1, "{q}");
    }
    let q = "AuditEvent?patient=Patient/listed-b&subtype=search&entity-role=3&_summary=count";
    assert_eq!(count(q.to_string()).await, 0);
    // What it listed is named too: each Observation, once.
    let (_, events) = s.get_json("AuditEvent?patient=Patient/listed-a&subtype=search").await;
    let entities = events["entry"][0]["resource"]["entity"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let observations = entities
        .iter()
        .filter(|e| {
            e["what"]["reference"]
                .as_str()
                .is_some_and(|r| r.starts_with("Observation/"))
        })
        .count();
    assert_eq!(observations, 2, "{events}");
}

/// AuditEvent's `patient` is its `agent` and `entity` that reference a Patient (R4's
/// definition), read from their rows (`Registry::restricted_to`): a patient named only
/// as the agent is found, and `patient` never reaches what else the event names.
async fn the_audit_patient_is_its_patient_agents_and_entities(s: &TestServer) {
    for id in ["as-agent", "as-entity", "bystander"] {
        let body = serde_json::json!({"resourceType": "Patient", "id": id});
        assert_eq!(
            s.send_json(Method::PUT, &format!("Patient/{id}"), &body).await.status(),
            201
        );
    }
    let obs = serde_json::json!({"resourceType": "Observation", "id": "named-obs", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "subject": {"reference": "Patient/bystander"}});
    assert_eq!(
        s.send_json(Method::PUT, "Observation/named-obs", &obs).await.status(),
        201
    );
    let event = serde_json::json!({"resourceType": "AuditEvent", "id": "by-a-patient",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "action": "R", "recorded": "2026-01-02T03:04:05Z",
        "agent": [{"who": {"reference": "Patient/as-agent"}, "requestor": true}],
        "source": {"observer": {"display": "elsewhere"}},
        "entity": [{"what": {"reference": "Patient/as-entity"}}, {"what": {"reference": "Observation/named-obs"}}]});
    let r = s.send_json(Method::PUT, "AuditEvent/by-a-patient", &event).await;
    assert_eq!(r.status(), 201);
    for (q, want) in [
        (
            "AuditEvent?_id=by-a-patient&patient=Patient/as-agent",
            vec!["AuditEvent/by-a-patient"],
        ),
        (
            "AuditEvent?_id=by-a-patient&patient=as-entity",
            vec!["AuditEvent/by-a-patient"],
        ),
        ("AuditEvent?_id=by-a-patient&patient=Patient/bystander", vec![]),
        (
            "AuditEvent?_id=by-a-patient&patient:missing=false",
            vec!["AuditEvent/by-a-patient"],
        ),
        ("AuditEvent?_id=by-a-patient&patient:missing=true", vec![]),
        (
            "AuditEvent?_id=by-a-patient&_include=AuditEvent:patient",
            vec!["AuditEvent/by-a-patient", "Patient/as-agent", "Patient/as-entity"],
        ),
        (
            "Patient?_has:AuditEvent:patient:_id=by-a-patient",
            vec!["Patient/as-agent", "Patient/as-entity"],
        ),
        (
            "AuditEvent?_id=by-a-patient&patient:Patient._id=as-entity",
            vec!["AuditEvent/by-a-patient"],
        ),
    ] {
        let (st, b) = s.get_json(q).await;
        assert_eq!(st, 200, "{q}: {b}");
        assert_eq!(sorted_ids(&b), want, "{q}");
    }
    // The server's own AuditEvents of the writes above name these patients too.
    for (p, named) in [("as-agent", true), ("as-entity", true), ("bystander", false)] {
        let q = format!("Patient?_id={p}&_revinclude=AuditEvent:patient&_count=100");
        let (st, b) = s.get_json(&q).await;
        assert_eq!(st, 200, "{q}: {b}");
        let found = sorted_ids(&b);
        assert!(found.contains(&format!("Patient/{p}")), "{q}: {found:?}");
        assert_eq!(
            found.contains(&"AuditEvent/by-a-patient".to_string()),
            named,
            "{q}: {found:?}"
        );
    }
    // In both patients' compartments, not in the bystander's whose Observation it names.
    for (p, want) in [("as-agent", 1), ("as-entity", 1), ("bystander", 0)] {
        let (st, b) = s
            .get_json(&format!("Patient/{p}/AuditEvent?_id=by-a-patient&_summary=count"))
            .await;
        assert_eq!(st, 200, "{b}");
        assert_eq!(b["total"], want, "{p}");
    }
}

/// Rows left in the audit log (on SQLite a file of its own).
async fn log_rows(s: &TestServer) -> i64 {
    use sqlx::Connection;
    const LEFT: &str = "SELECT COUNT(*) FROM audit_log";
    let url = carnet_tests::audit_log_url(s.backend, &s.database_url);
    match s.backend {
        carnet_tests::Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(LEFT).fetch_one(&mut c).await.unwrap()
        }
        carnet_tests::Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(LEFT).fetch_one(&mut c).await.unwrap()
        }
    }
}

/// A backlog of several whole batches, logged by another process, is stored by this
/// server's background projector alone (no reader of AuditEvents flushes it first),
/// every event once: on SQLite it reads and prepares each next batch while the
/// writer stores the current one (`projection::project_pipelined`), on PostgreSQL it
/// runs two transactions at once.
async fn a_backlog_is_stored_in_the_background_each_event_once(s: &TestServer) {
    const LOGGED: usize = 1_000;
    let mut config = Config::for_database(&s.database_url);
    config.db_pool = 2;
    let other = carnet::app::build_state(config, None).await.unwrap();
    let address: std::net::IpAddr = "192.0.2.78".parse().unwrap();
    let records: Vec<Record> = (0..LOGGED)
        .map(|i| {
            Record::anonymous(
                &other,
                Some(address),
                &Method::GET,
                &format!("/fhir/Patient/b-{i}"),
                StatusCode::UNAUTHORIZED,
            )
        })
        .collect();
    other.auditor().submit_all(&other, records).await.unwrap();
    other.store().close().await;
    // The background projector looks for other processes' rows every second.
    let mut left = log_rows(s).await;
    for _ in 0..300 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = log_rows(s).await;
    }
    assert_eq!(left, 0, "the background projector emptied the log");
    let (st, bundle) = s.get_json("AuditEvent?address=192.0.2.78&_summary=count").await;
    assert_eq!(st, 200, "{bundle}");
    assert_eq!(bundle["total"], LOGGED, "{bundle}");
}

on_both_backends!(
    the_audit_patient_is_its_patient_agents_and_entities,
    logged_records_are_searchable_at_once,
    log_sequence_numbers_are_never_reused,
    audit_events_are_found_by_code_with_patient_date_and_has,
    an_event_already_stored_is_not_stored_twice,
    a_search_names_the_patients_it_listed,
    a_backlog_is_stored_in_the_background_each_event_once
);

/// A SQLite database of a version whose audit log was one of its tables (migrations up
/// to 0014), left with logged rows by a crash: opening it moves them to the log's own
/// file, and they become AuditEvents once, named after their old sequence numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_an_older_version_logged_are_moved_and_stored() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/carnet.db", dir.path().display());
    {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let mut c = sqlx::SqliteConnection::connect_with(&opts.create_if_missing(true))
            .await
            .unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
        let mut old = sqlx::migrate::Migrator::new(dir).await.unwrap();
        old.migrations = old
            .migrations
            .iter()
            .filter(|m| m.version <= 14)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        old.run(&mut c).await.unwrap();
        for address in ["192.0.2.1", "192.0.2.2"] {
            let event = serde_json::json!({
                "resourceType": "AuditEvent",
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
                "recorded": "2026-12-01T10:00:00Z",
                "agent": [{"requestor": true, "network": {"address": address, "type": "2"}}],
                "source": {"observer": {"display": "Carnet"}},
            });
            sqlx::query("INSERT INTO audit_log (event) VALUES ($1)")
                .bind(serde_json::to_vec(&event).unwrap())
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
    let state = carnet::app::build_state(Config::for_database(&url), None)
        .await
        .unwrap();
    carnet::audit::projection::flush(&state).await.unwrap();
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mut ids: Vec<String> = sqlx::query_scalar("SELECT res_id FROM resources WHERE res_type = 'AuditEvent'")
        .fetch_all(&mut c)
        .await
        .unwrap();
    ids.sort();
    assert_eq!(ids, ["moved-1", "moved-2"]);
    let old_table: Option<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name LIKE 'audit_log%'")
        .fetch_optional(&mut c)
        .await
        .unwrap();
    assert_eq!(old_table, None, "the database keeps no audit log table");
    state.store().close().await;
}

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
