//! Bulk import (issue 7, point 3): `carnet import` as a real process on NDJSON files and
//! Bundles (PUT-style and Synthea-style `urn:uuid:` transactions), every refused unit
//! reported with its file and line, nothing imported twice when run again, an import
//! killed with SIGKILL resumed where it stopped; and `POST [base]/$import` over HTTP.
//! Both backends; what was stored is checked over HTTP as a client would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use carnet_datagen::Generator;
use carnet_tests::{TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;

struct Out {
    ok: bool,
    stdout: String,
}

fn import_cmd(s: &TestServer, args: &[&str]) -> Command {
    let mut c = Command::new(carnet_tests::bin::carnet_binary());
    c.arg("import")
        .args(args)
        .args(["--database-url", &s.database_url])
        .env_remove("CARNET_CONFIG");
    c
}

async fn import(s: &TestServer, args: &[&str]) -> Out {
    let mut c = import_cmd(s, args);
    tokio::task::spawn_blocking(move || {
        let out = c.output().expect("run carnet import");
        let o = Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        };
        eprintln!("$ carnet import\n{}{}", o.stdout, String::from_utf8_lossy(&out.stderr));
        o
    })
    .await
    .unwrap()
}

fn write_ndjson(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

async fn count(s: &TestServer, query: &str) -> i64 {
    let sep = if query.contains('?') { '&' } else { '?' };
    let (st, b) = s.get_json(&format!("{query}{sep}_summary=count")).await;
    assert_eq!(st, 200, "{query}: {b}");
    b["total"].as_i64().unwrap()
}

fn of_type<'a>(rs: &'a [Value], ty: &str) -> Vec<&'a Value> {
    rs.iter().filter(|r| r["resourceType"] == ty).collect()
}

async fn files_and_refusals(s: &TestServer) {
    let g = Generator::new(7, 4);
    let dir = tempfile::tempdir().unwrap();
    // a.ndjson: the shared resources and patients 0 and 1, one resource a line, with
    // a line that is not JSON (line 3) and an Observation with a bad date.
    let mut a: Vec<Value> = g.shared();
    a.extend(g.patient(0));
    a.extend(g.patient(1));
    let mut lines: Vec<String> = a.iter().map(|r| r.to_string()).collect();
    lines.insert(2, "{ this is not json".to_string());
    let bad_at = lines
        .iter()
        .rposition(|l| l.contains("\"resourceType\":\"Observation\""))
        .unwrap();
    let mut bad: Value = serde_json::from_str(&lines[bad_at]).unwrap();
    bad["effectiveDateTime"] = json!("2020-13-45");
    let bad_id = bad["id"].as_str().unwrap().to_string();
    lines[bad_at] = bad.to_string();
    write_ndjson(&dir.path().join("a.ndjson"), &lines);
    // b.json: patient 2 as a PUT transaction; c.json: patient 3 as Synthea writes it.
    let p2 = g.patient(2);
    std::fs::write(dir.path().join("b.json"), carnet_datagen::transaction(&p2).to_string()).unwrap();
    let p3 = g.patient(3);
    std::fs::write(
        dir.path().join("c.json"),
        carnet_datagen::synthea_transaction(&p3).to_string(),
    )
    .unwrap();
    // d.json: a transaction whose reference names no entry: refused whole.
    let mut broken = carnet_datagen::synthea_transaction(&g.patient(1)[..3]);
    broken["entry"][1]["resource"]["subject"] = json!({"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"});
    std::fs::write(dir.path().join("d.json"), broken.to_string()).unwrap();

    let dirname = dir.path().display().to_string();
    let o = import(s, &[&dirname]).await;
    assert!(!o.ok, "refusals make the command fail");
    let rejected: Vec<&str> = o.stdout.lines().filter(|l| l.starts_with("rejected: ")).collect();
    assert_eq!(rejected.len(), 3, "{}", o.stdout);
    assert!(rejected[0].contains("a.ndjson: line 3: not JSON"), "{}", rejected[0]);
    assert!(
        rejected[1].contains(&format!("a.ndjson: line {}: Observation/{bad_id}: ", bad_at + 1))
            && rejected[1].contains("effective"),
        "{}",
        rejected[1]
    );
    assert!(
        rejected[2].contains("d.json: document: Bundle.entry[1]: the reference 'urn:uuid:00000000"),
        "{}",
        rejected[2]
    );

    // Everything else is there, as a client sees it.
    let all: Vec<Value> = a.iter().chain(&p2).chain(&p3).cloned().collect();
    assert_eq!(count(s, "Patient").await, 4);
    assert_eq!(
        count(s, "Observation").await,
        of_type(&all, "Observation").len() as i64 - 1
    );
    assert_eq!(count(s, "Encounter").await, of_type(&all, "Encounter").len() as i64);
    let (st, _) = s.get_json(&format!("Observation/{bad_id}")).await;
    assert_eq!(st, 404);
    // PUT-style ids are kept; the Synthea-style Patient got a server id and its
    // resources point at it.
    let (st, p) = s.get_json(&format!("Patient/{}", p2[0]["id"].as_str().unwrap())).await;
    assert_eq!((st, p["meta"]["versionId"].as_str()), (200, Some("1")));
    let family = p3[0]["name"][0]["family"].as_str().unwrap();
    let nam = p3[0]["identifier"][0]["value"].as_str().unwrap();
    let (_, found) = s
        .get_json(&format!("Patient?identifier=https://ramq.gouv.qc.ca/nam|{nam}"))
        .await;
    assert_eq!(found["total"], 1, "{family}");
    let new_id = found["entry"][0]["resource"]["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, p3[0]["id"].as_str().unwrap());
    assert_eq!(
        count(s, &format!("Observation?subject=Patient/{new_id}")).await,
        of_type(&p3, "Observation").len() as i64
    );
    // The import is in each patient's audit trail.
    let (_, trail) = s
        .get_json(&format!("AuditEvent?patient=Patient/{new_id}&_count=100"))
        .await;
    let subtypes: Vec<&str> = trail["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["subtype"][0]["code"].as_str())
        .collect();
    assert!(subtypes.contains(&"$import"), "{subtypes:?}");

    // Again: nothing is read twice.
    let o = import(s, &[&dirname]).await;
    assert!(o.ok, "{}", o.stdout);
    assert_eq!(o.stdout.matches("already imported").count(), 4, "{}", o.stdout);
    assert_eq!(count(s, "Patient").await, 4);
    // Forced: the same ids become new versions, the Synthea Patient a second one.
    let o = import(s, &[&dirname, "--force"]).await;
    assert!(!o.ok);
    let (_, p) = s.get_json(&format!("Patient/{}", p2[0]["id"].as_str().unwrap())).await;
    assert_eq!(p["meta"]["versionId"], "2");
    assert_eq!(count(s, "Patient").await, 5);
}

async fn resumes_after_kill(s: &TestServer) {
    let (all, _dir, name) = import_killed_midway(s, 11, &[]).await;
    let done_at_kill = progress(s).await;
    assert!(done_at_kill > 0 && done_at_kill < all.len() as i64, "{done_at_kill}");
    let started = Instant::now();
    let o = import(s, &[&name]).await;
    assert!(o.ok, "{}", o.stdout);
    eprintln!("resumed in {:?}", started.elapsed());
    assert!(
        o.stdout
            .contains(&format!("imported {} resources", all.len() as i64 - done_at_kill)),
        "only the rest is imported: {}",
        o.stdout
    );
    // Every resource once, at version 1.
    for ty in ["Patient", "Observation", "Encounter", "Practitioner"] {
        assert_eq!(count(s, ty).await, of_type(&all, ty).len() as i64, "{ty}");
    }
    let (_, page) = s.get_json("Patient?_count=100").await;
    for e in page["entry"].as_array().unwrap() {
        assert_eq!(e["resource"]["meta"]["versionId"], "1");
    }
}

/// An import told to build the search index's indexes at its end drops them first;
/// killed before its end, it leaves them recorded, and the next server started on the
/// database builds them; the import then resumes and ends with every index in place.
async fn indexes_built_at_the_end(s: &TestServer) {
    let before = index_names(s).await;
    assert!(before.iter().any(|n| n == "idx_token_value"), "{before:?}");
    let at_end = ["--indexes", "at-end"];
    let (all, _dir, name) = import_killed_midway(s, 12, &at_end).await;
    let during = index_names(s).await;
    assert!(!during.iter().any(|n| n == "idx_token_value"), "{during:?}");
    assert!(
        during.iter().any(|n| n == "idx_token_pk"),
        "updates need it: {during:?}"
    );
    let owed = deferred(s).await;
    assert_eq!(owed.len() + during.len(), before.len(), "{owed:?} {during:?}");
    // Searches still answer (slower): what is stored is found.
    assert!(count(s, "Patient").await > 0);

    let second = TestServer::start_shared(s).await;
    assert_eq!(index_names(s).await, before, "built when the server started");
    assert!(deferred(s).await.is_empty());
    second.stop().await;

    let o = import(s, &[&name, "--indexes", "at-end"]).await;
    assert!(o.ok, "{}", o.stdout);
    assert_eq!(index_names(s).await, before);
    assert!(deferred(s).await.is_empty());
    for ty in ["Patient", "Observation", "Encounter"] {
        assert_eq!(count(s, ty).await, of_type(&all, ty).len() as i64, "{ty}");
    }
    let code = all.iter().find(|r| r["resourceType"] == "Observation").unwrap()["code"]["coding"][0]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let expected = of_type(&all, "Observation")
        .iter()
        .filter(|o| {
            o["code"]["coding"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["code"] == code.as_str()))
        })
        .count();
    assert_eq!(count(s, &format!("Observation?code={code}")).await, expected as i64);
}

/// Generated resources in an NDJSON file, and an import of it (with `extra`
/// arguments) killed once it has committed a chunk, before it is done; the folder
/// lives as long as the returned guard.
async fn import_killed_midway(s: &TestServer, seed: u64, extra: &[&str]) -> (Vec<Value>, tempfile::TempDir, String) {
    let g = Generator::new(seed, 30);
    let all: Vec<Value> = g.resources().collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.ndjson");
    write_ndjson(&file, &all.iter().map(|r| r.to_string()).collect::<Vec<_>>());
    let name = file.display().to_string();
    let mut args = vec![name.as_str(), "--chunk", "50", "--threads", "1"];
    args.extend_from_slice(extra);
    let mut child = import_cmd(s, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while progress(s).await == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    (all, dir, name)
}

/// The names of the database's indexes on the search index and compartment tables.
async fn index_names(s: &TestServer) -> Vec<String> {
    let tables = "('idx_string', 'idx_token', 'idx_reference', 'idx_date', 'idx_number', 'idx_quantity', 'idx_uri', 'patient_compartment')";
    let sql = if s.database_url.starts_with("sqlite") {
        format!("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN {tables} ORDER BY name")
    } else {
        format!(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() AND tablename IN {tables} ORDER BY indexname"
        )
    };
    column(s, sql).await
}

/// The indexes recorded as still to build.
async fn deferred(s: &TestServer) -> Vec<String> {
    column(s, "SELECT name FROM deferred_indexes ORDER BY name".to_string()).await
}

/// The one column of a query's rows, decoded as `T`, on the server's database.
async fn column<T>(s: &TestServer, sql: String) -> Vec<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    T: Send + Unpin,
{
    let sql = sqlx::AssertSqlSafe(sql);
    if s.database_url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&s.database_url).await.unwrap();
        sqlx::query_scalar::<_, T>(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&s.database_url).await.unwrap();
        sqlx::query_scalar::<_, T>(sql).fetch_all(&mut c).await.unwrap()
    }
}

/// Units an import has committed, read from its progress table.
async fn progress(s: &TestServer) -> i64 {
    let sql = "SELECT COALESCE(MAX(done_units), 0) FROM import_progress";
    column::<i64>(s, sql.to_string()).await[0]
}

async fn http_import(s: &TestServer) {
    let g = Generator::new(3, 2);
    let mut lines: Vec<String> = g.shared().iter().chain(&g.patient(0)).map(|r| r.to_string()).collect();
    let n = lines.len();
    lines.insert(
        2,
        json!({"resourceType": "Patient", "birthDate": "1980-02-30"}).to_string(),
    );
    let body = lines.join("\n");
    let r = s
        .req(Method::POST, "$import")
        .header("content-type", "application/fhir+ndjson")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(
        oo["issue"][0]["diagnostics"],
        format!("{n} resources imported, 1 lines rejected")
    );
    assert_eq!(oo["issue"][1]["severity"], "error");
    let why = oo["issue"][1]["diagnostics"].as_str().unwrap();
    assert!(why.starts_with("line 3: ") && why.contains("birthDate"), "{why}");
    assert_eq!(count(s, "Patient").await, 1);
    let pid = Generator::patient_id(0);
    let (st, _) = s.get_json(&format!("Patient/{pid}")).await;
    assert_eq!(st, 200);

    // Not NDJSON: 415, nothing stored.
    let r = s
        .req(Method::POST, "$import")
        .header("content-type", "application/fhir+json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // A backend token that may only read: 403.
    let key = carnet_tests::auth::ClientKey::es384();
    let client_id = format!("reader-{}", uuid::Uuid::new_v4().simple());
    carnet_tests::auth::register_jwks_client(s.state(), &client_id, "system/*.rs", &key).await;
    let url = format!("{}/token", s.auth_url());
    let now = s.state().now() / 1_000_000;
    let (st, tok) = carnet_tests::auth::client_credentials(&s.anon, &url, &client_id, &key, "system/*.rs", now).await;
    assert_eq!(st, 200);
    let r = s
        .req_as(tok["access_token"].as_str(), Method::POST, "$import")
        .header("content-type", "application/fhir+ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(count(s, "Patient").await, 1);
}

on_both_backends!(
    files_and_refusals,
    resumes_after_kill,
    indexes_built_at_the_end,
    http_import
);
