//! Crash safety (issue 8, point 2): a real `carnet` process is killed with SIGKILL
//! three times while 6 clients send transactions, creates, deletes and audited reads,
//! and is started again each time on the same database. After every restart:
//! - every write whose answer was received is there (and every answered delete gone);
//! - no transaction is half-visible, every answered one is whole;
//! - every answered request has its AuditEvent (R5: durable before the response);
//! - the store is consistent: each resource's head version is the last of its gapless
//!   versions, `deleted` matches a NULL head, and each index table holds exactly the rows
//!   the current version yields (none for deleted or missing resources).
//!
//! `tests/policy_kill.rs` is the single-kill version of this test (issue 5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carnet_tests::bin::Serve;
use carnet_tests::{Backend, TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;
use support::*;

const ROUNDS: usize = 3;
const WORKERS: usize = 6;

/// What the clients learnt from the answers they received.
#[derive(Default)]
struct Outcome {
    /// Transactions answered 200: tag → the two ids.
    tx: BTreeMap<String, Vec<String>>,
    /// Creates answered 201 (Observation ids).
    created: BTreeSet<String>,
    /// Deletes sent (answered or not): their resource's state is unknown until answered.
    delete_sent: BTreeSet<String>,
    /// Deletes answered 200/204.
    deleted: BTreeSet<String>,
    /// Updates: id → the value of the last one answered 200.
    updated: BTreeMap<String, u64>,
    /// Updates: id → the value of the last one sent (the one a kill may cut short).
    update_sent: BTreeMap<String, u64>,
}

async fn kill_nine_repeatedly(s: &TestServer) {
    let patient = s
        .create(json!({"resourceType": "Patient", "name": [{"family": "Crash"}]}))
        .await;
    let pid = patient["id"].as_str().unwrap().to_string();
    let mut reads = vec![format!("Patient/{pid}")];
    for _ in 0..3 {
        let o = s
            .create(
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "read"},
                "subject": {"reference": format!("Patient/{pid}")}}),
            )
            .await;
        reads.push(format!("Observation/{}", o["id"].as_str().unwrap()));
    }
    let key = carnet_tests::auth::ClientKey::es384();
    let client_id = format!("crash-{}", uuid::Uuid::new_v4().simple());
    carnet_tests::auth::register_jwks_client(s.state(), &client_id, "system/*.*", &key).await;
    let outbox = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let http = reqwest::Client::new();

    for round in 0..ROUNDS {
        let p = Serve::start(&s.database_url, outbox.path()).await;
        let tok = Arc::new(p.system_token(&s.anon, &client_id, &key).await);
        let base = Arc::new(format!("{}/fhir", p.base));
        let mut tasks = Vec::new();
        for worker in 0..WORKERS {
            let (tok, log, base, reads, outcome) =
                (tok.clone(), log.clone(), base.clone(), reads.clone(), outcome.clone());
            let (pid, http) = (pid.clone(), http.clone());
            tasks.push(tokio::spawn(async move {
                let mut mine: Vec<String> = Vec::new();
                for n in 0usize.. {
                    let subject = json!({"reference": format!("Patient/{pid}")});
                    let answered = match n % 6 {
                        0 => {
                            // A transaction of two Observations sharing one identifier.
                            let tag = format!("r{round}-w{worker}-{n}");
                            let o = json!({"resourceType": "Observation", "status": "final",
                                "code": {"text": "crash-tx"}, "subject": subject,
                                "identifier": [{"system": "urn:crash", "value": tag}]});
                            let b = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                                {"request": {"method": "POST", "url": "Observation"}, "resource": o},
                                {"request": {"method": "POST", "url": "Observation"}, "resource": o}]});
                            match send(&http, &log, &tok, Method::POST, &base, Some(&b)).await {
                                Some((200, body)) => {
                                    let ids = body["entry"]
                                        .as_array()
                                        .unwrap()
                                        .iter()
                                        .map(|e| location_id(&e["response"]["location"]))
                                        .collect();
                                    outcome.lock().unwrap().tx.insert(tag, ids);
                                    true
                                }
                                other => other.is_some(),
                            }
                        }
                        3 => {
                            let o = json!({"resourceType": "Observation", "status": "final",
                                "code": {"text": "crash-single"}, "subject": subject,
                                "valueQuantity": {"value": n, "unit": "mmol/L"},
                                "effectiveDateTime": "2026-01-02"});
                            let url = format!("{base}/Observation");
                            match send(&http, &log, &tok, Method::POST, &url, Some(&o)).await {
                                Some((201, body)) => {
                                    let id = body["id"].as_str().unwrap().to_string();
                                    outcome.lock().unwrap().created.insert(id.clone());
                                    mine.push(id);
                                    true
                                }
                                other => other.is_some(),
                            }
                        }
                        4 if n % 12 == 4 && !mine.is_empty() => {
                            // Deleting what this worker created exercises index removal.
                            let id = mine.remove(0);
                            outcome.lock().unwrap().delete_sent.insert(id.clone());
                            let url = format!("{base}/Observation/{id}");
                            match send(&http, &log, &tok, Method::DELETE, &url, None).await {
                                Some((200 | 204, _)) => {
                                    outcome.lock().unwrap().deleted.insert(id);
                                    true
                                }
                                other => other.is_some(),
                            }
                        }
                        5 if !mine.is_empty() => {
                            // A new version of one of this worker's Observations: the
                            // index is replaced, the head version moves.
                            let id = mine[mine.len() - 1].clone();
                            let value = n as u64;
                            let o = json!({"resourceType": "Observation", "id": id, "status": "final",
                                "code": {"text": "crash-single"}, "subject": subject,
                                "valueQuantity": {"value": value, "unit": "mmol/L"},
                                "effectiveDateTime": "2026-01-03"});
                            outcome.lock().unwrap().update_sent.insert(id.clone(), value);
                            let url = format!("{base}/Observation/{id}");
                            match send(&http, &log, &tok, Method::PUT, &url, Some(&o)).await {
                                Some((200, _)) => {
                                    outcome.lock().unwrap().updated.insert(id, value);
                                    true
                                }
                                other => other.is_some(),
                            }
                        }
                        _ => {
                            let url = format!("{base}/{}", reads[n % reads.len()]);
                            send(&http, &log, &tok, Method::GET, &url, None).await.is_some()
                        }
                    };
                    if !answered {
                        break;
                    }
                }
            }));
        }
        // Kill at a different point of the load each round.
        tokio::time::sleep(Duration::from_millis(900 + 400 * round as u64)).await;
        p.kill_nine();
        for t in tasks {
            t.await.unwrap();
        }

        let p = Serve::start(&s.database_url, outbox.path()).await;
        let seen = log.seen.lock().unwrap().clone();
        let events = audit_events(s.backend, &s.database_url).await;
        assert_audited(&events, &seen);
        let db = Snapshot::load(s.backend, &s.database_url).await;
        {
            let out = outcome.lock().unwrap();
            check_writes(&db, &out);
            db.check_consistency();
            eprintln!(
                "crash round {round} on {:?}: {} answers so far, {} AuditEvents, {} transactions, {} creates, {} updates, {} deletes, {} resources checked",
                s.backend,
                seen.len(),
                events.len(),
                out.tx.len(),
                out.created.len(),
                out.updated.len(),
                out.deleted.len(),
                db.current.len()
            );
            assert!(out.tx.len() > round && out.created.len() > round, "too little load");
        }
        // This process is killed at rest; the next round starts a fresh one.
        p.kill_nine();
    }
    assert!(log.seen.lock().unwrap().len() > 100, "too little load");
}

fn location_id(loc: &Value) -> String {
    // "Observation/{id}/_history/1", possibly absolute.
    let l = loc.as_str().unwrap();
    let tail = &l[l.find("Observation/").unwrap() + "Observation/".len()..];
    tail.split('/').next().unwrap().to_string()
}

/// One request; `None` once the server is gone (no answer), else status and body.
async fn send(
    http: &reqwest::Client,
    log: &Log,
    tok: &str,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
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
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let mut seen = log.seen.lock().unwrap();
    if method == Method::POST && path.trim_end_matches('/').ends_with("/fhir") && st == 200 {
        // A transaction is audited entry by entry.
        for a in json["entry"].as_array()? {
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
    Some((st, json))
}

/// Every answered write is in the store; no transaction is half there.
fn check_writes(db: &Snapshot, out: &Outcome) {
    let obs: HashMap<&str, &Current> = db
        .current
        .iter()
        .filter(|c| c.res_type == "Observation")
        .map(|c| (c.res_id.as_str(), c))
        .collect();
    for (tag, ids) in &out.tx {
        assert_eq!(ids.len(), 2, "transaction {tag}");
        for id in ids {
            let c = obs
                .get(id.as_str())
                .unwrap_or_else(|| panic!("answered transaction {tag}: {id} lost"));
            assert!(c.content.is_some(), "answered transaction {tag}: {id} deleted");
        }
    }
    for id in &out.created {
        let c = obs
            .get(id.as_str())
            .unwrap_or_else(|| panic!("answered create {id} lost"));
        if !out.delete_sent.contains(id) {
            assert!(c.content.is_some(), "answered create {id} is deleted");
        }
    }
    for (id, value) in &out.updated {
        if let Some(r) = &obs[id.as_str()].content {
            let stored = r["valueQuantity"]["value"].as_u64().unwrap();
            assert!(
                stored == *value || Some(&stored) == out.update_sent.get(id),
                "{id}: value {stored}, last answered update {value}"
            );
        }
    }
    for id in &out.deleted {
        assert!(obs[id.as_str()].content.is_none(), "answered delete {id} undone");
    }
    // Whole or absent: every stored transaction tag has exactly its two Observations.
    let mut by_tag: HashMap<String, usize> = HashMap::new();
    for c in obs.values() {
        if let Some(r) = &c.content
            && r["code"]["text"] == "crash-tx"
        {
            *by_tag
                .entry(r["identifier"][0]["value"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    for (tag, n) in &by_tag {
        assert_eq!(*n, 2, "transaction {tag} is half-visible");
    }
}

/// One resource as the `resources` row and its head version say.
struct Current {
    pk: i64,
    res_type: String,
    res_id: String,
    deleted: bool,
    /// The head version's content (`None`: a delete).
    content: Option<Value>,
}

/// The store read with SQL, outside the server.
struct Snapshot {
    current: Vec<Current>,
    /// Counts of rows that break an invariant (invariant → count).
    broken: Vec<(&'static str, i64)>,
    /// Per index table: pk → (res_type, rows).
    index: Vec<(&'static str, RowsByPk)>,
}

const TABLES: [&str; 7] = [
    "idx_string",
    "idx_token",
    "idx_reference",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_uri",
];

const INVARIANTS: [(&str, &str); 8] = [
    (
        "head version missing from resource_versions",
        "SELECT COUNT(*) FROM resources r WHERE NOT EXISTS \
         (SELECT 1 FROM resource_versions v WHERE v.pk = r.pk AND v.version = r.version)",
    ),
    (
        "head version is not the newest version",
        "SELECT COUNT(*) FROM resources r WHERE r.version <> \
         (SELECT MAX(v.version) FROM resource_versions v WHERE v.pk = r.pk)",
    ),
    (
        "versions not gapless from 1",
        "SELECT COUNT(*) FROM (SELECT pk, COUNT(*) AS n, MIN(version) AS lo, MAX(version) AS hi \
         FROM resource_versions GROUP BY pk) x WHERE x.lo <> 1 OR x.n <> x.hi",
    ),
    (
        "version rows of no resource, or of another type",
        "SELECT COUNT(*) FROM resource_versions v LEFT JOIN resources r ON r.pk = v.pk \
         WHERE r.pk IS NULL OR r.res_type <> v.res_type",
    ),
    // The policy tables are written in the same transaction (docs/policy.md): every
    // Observation of this test has a subject, so a compartment row, and while live a
    // publication row.
    (
        "Observation without its patient_compartment row",
        "SELECT COUNT(*) FROM resources r WHERE r.res_type = 'Observation' \
         AND NOT EXISTS (SELECT 1 FROM patient_compartment c WHERE c.pk = r.pk)",
    ),
    (
        "live Observation without its result_visibility row",
        "SELECT COUNT(*) FROM resources r WHERE r.res_type = 'Observation' \
         AND CASE WHEN r.deleted THEN 0 ELSE 1 END = 1 \
         AND NOT EXISTS (SELECT 1 FROM result_visibility x WHERE x.pk = r.pk)",
    ),
    (
        "patient_compartment rows of no resource",
        "SELECT COUNT(*) FROM patient_compartment c LEFT JOIN resources r ON r.pk = c.pk WHERE r.pk IS NULL",
    ),
    (
        "result_visibility rows of no resource",
        "SELECT COUNT(*) FROM result_visibility x LEFT JOIN resources r ON r.pk = x.pk WHERE r.pk IS NULL",
    ),
];

const CURRENT: &str = "SELECT r.pk, r.res_type, r.res_id, CAST(CASE WHEN r.deleted THEN 1 ELSE 0 END AS BIGINT), v.content \
                       FROM resources r JOIN resource_versions v ON v.pk = r.pk AND v.version = r.version";

/// An index table's rows by resource pk: (res_type, count).
type RowsByPk = HashMap<i64, (String, i64)>;

type CurrentRow = (i64, String, String, i64, Option<Vec<u8>>);

impl Snapshot {
    async fn load(backend: Backend, url: &str) -> Snapshot {
        let mut broken = Vec::new();
        let mut index = Vec::new();
        let rows: Vec<CurrentRow>;
        macro_rules! load {
            ($conn:expr) => {{
                let mut c = $conn;
                for (what, sql) in INVARIANTS {
                    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
                    broken.push((what, n));
                }
                rows = sqlx::query_as(CURRENT).fetch_all(&mut c).await.unwrap();
                for t in TABLES {
                    let sql = format!("SELECT pk, res_type, COUNT(*) FROM {t} GROUP BY pk, res_type");
                    let counts: Vec<(i64, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&mut c)
                        .await
                        .unwrap();
                    let mut by_pk = HashMap::new();
                    for (pk, ty, n) in counts {
                        assert!(
                            by_pk.insert(pk, (ty, n)).is_none(),
                            "{t}: rows of pk {pk} under two types"
                        );
                    }
                    index.push((t, by_pk));
                }
            }};
        }
        match backend {
            Backend::Sqlite => load!(sqlx::SqliteConnection::connect(url).await.unwrap()),
            Backend::Postgres => load!(sqlx::PgConnection::connect(url).await.unwrap()),
        }
        let current = rows
            .into_iter()
            .map(|(pk, res_type, res_id, deleted, content)| Current {
                pk,
                res_type,
                res_id,
                deleted: deleted != 0,
                content: content.map(|b| serde_json::from_slice(&b).unwrap()),
            })
            .collect();
        Snapshot { current, broken, index }
    }

    fn check_consistency(&self) {
        for (what, n) in &self.broken {
            assert_eq!(*n, 0, "{what}: {n} rows");
        }
        let mut known: HashMap<i64, &Current> = HashMap::new();
        for c in &self.current {
            assert_eq!(
                c.deleted,
                c.content.is_none(),
                "{}/{}: deleted flag vs head",
                c.res_type,
                c.res_id
            );
            known.insert(c.pk, c);
            // Each table holds exactly the rows this version yields.
            let want = match &c.content {
                Some(r) => carnet::search::index::IndexRows::extract(&c.res_type, r).counts(),
                None => TABLES.iter().map(|t| (*t, 0)).collect(),
            };
            for ((table, n), (t, stored)) in want.iter().zip(&self.index) {
                assert_eq!(table, t);
                let (ty, have) = stored.get(&c.pk).cloned().unwrap_or((c.res_type.clone(), 0));
                assert_eq!(ty, c.res_type, "{table} rows of {}/{} under {ty}", c.res_type, c.res_id);
                assert_eq!(
                    have, *n as i64,
                    "{table}: {}/{} (deleted: {}) has {have} rows, its head version yields {n}",
                    c.res_type, c.res_id, c.deleted
                );
            }
        }
        for (t, stored) in &self.index {
            for pk in stored.keys() {
                assert!(known.contains_key(pk), "{t}: rows for pk {pk}, which is no resource");
            }
        }
    }
}

on_both_backends!(kill_nine_repeatedly);
