//! Issue 5, point 10: what the access policy and the audit trail add to a read.
//!
//! Both variants read one Patient by id, 64 reads at a time from concurrent tasks (the
//! way a loaded server sees them, which is what lets the audit writer batch):
//! - `policy off`: the read as the server itself does it (`Access::internal()`): one
//!   query, no policy conditions, no AuditEvent;
//! - `policy + audit`: the read as a practitioner (R4 refusal and prior-access
//!   conditions in the SQL), then its AuditEvent built and committed (group commit)
//!   before the read counts as done, as the HTTP layer does before answering: one row
//!   of the audit log;
//! - `policy + audit + projection`: the same, then the batch's 64 log rows stored as
//!   AuditEvent resources (search index, compartment), which a server does in the
//!   background or before anything reads AuditEvents: the whole cost of the trail.
//!
//! The figure is the time of a batch of 64; divide by 64 for one read.
//! `cargo bench -p carnet-benches --bench audit_path` (SQLite in a temporary file;
//! `CARNET_BENCH_POSTGRES_URL=postgres://… ` for PostgreSQL, a database it may fill).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use carnet::audit::{Notes, Record};
use carnet::auth::i18n::Lang;
use carnet::auth::principal::{Actor, Principal};
use carnet::auth::scopes::Scopes;
use carnet::policy::{Access, visibility};
use carnet::state::AppState;
use carnet_benches::{BenchStore, patient, postgres_state, sqlite_state};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

const CONCURRENT: usize = 64;

async fn setup(bench: &BenchStore) -> (String, Arc<Principal>) {
    let state = &bench.state;
    let mut tx = state.store().begin_write().await.unwrap();
    let p = carnet::service::write::create(state, &mut tx, "Patient", patient())
        .await
        .unwrap();
    let doc = json!({"resourceType": "Practitioner", "name": [{"family": "Côté", "given": ["Anne"]}]});
    let dr = carnet::service::write::create(state, &mut tx, "Practitioner", doc)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let principal = Principal {
        actor: Actor::Practitioner {
            id: dr.id.clone(),
            patient: None,
        },
        client_id: "bench-emr".to_string(),
        subject: "bench-user".to_string(),
        fhir_user: Some(format!("Practitioner/{}", dr.id)),
        scopes: Scopes::parse("user/*.rs").0,
        session_id: None,
        token_id: "bench".to_string(),
        issuer: "bench".to_string(),
        expires_at: i64::MAX,
        remote_addr: Some([127, 0, 0, 1].into()),
    };
    (p.id, Arc::new(principal))
}

async fn read_off(state: &AppState, id: &str) {
    let mut conn = state.store().reader().await.unwrap();
    let v = visibility::read(&Access::internal(), &mut conn, "Patient", id)
        .await
        .unwrap();
    assert!(v.content.is_some());
}

async fn read_audited(state: &AppState, id: &str, principal: &Arc<Principal>) {
    let notes = Arc::new(Notes::default());
    let access = Access::for_principal(state, principal.clone(), Lang::Fr, Some(notes.clone()))
        .await
        .unwrap();
    let mut conn = state.store().reader().await.unwrap();
    let v = visibility::read(&access, &mut conn, "Patient", id).await.unwrap();
    drop(conn);
    assert!(v.content.is_some());
    let path = format!("/fhir/Patient/{id}");
    let record = Record::new(state, principal, &Method::GET, &path, StatusCode::OK, notes.take());
    state.auditor().submit(state, record).await.unwrap();
}

/// What one measured batch of 64 reads includes.
#[derive(Clone, Copy)]
enum Variant {
    PolicyOff,
    Audited,
    /// Audited, then the batch's log rows stored as AuditEvents.
    Projected,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::PolicyOff, Variant::Audited, Variant::Projected];

    fn name(self) -> &'static str {
        match self {
            Variant::PolicyOff => "policy off",
            Variant::Audited => "policy + audit",
            Variant::Projected => "policy + audit + projection",
        }
    }

    async fn measure(self, state: &AppState, id: &str, principal: &Arc<Principal>) -> Duration {
        match self {
            Variant::PolicyOff => batch(state, id, None).await,
            Variant::Audited => batch(state, id, Some(principal)).await,
            Variant::Projected => {
                let t = batch(state, id, Some(principal)).await;
                let started = Instant::now();
                carnet::audit::projection::flush(state).await.unwrap();
                t + started.elapsed()
            }
        }
    }
}

async fn batch(state: &AppState, id: &str, principal: Option<&Arc<Principal>>) -> Duration {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(CONCURRENT);
    for _ in 0..CONCURRENT {
        let (state, id, principal) = (state.clone(), id.to_string(), principal.cloned());
        tasks.push(tokio::spawn(async move {
            match principal {
                Some(p) => read_audited(&state, &id, &p).await,
                None => read_off(&state, &id).await,
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut backends = vec![("SQLite", rt.block_on(sqlite_state()).unwrap())];
    if let Some(pg) = rt.block_on(postgres_state()) {
        backends.push(("PostgreSQL", pg.unwrap()));
    }
    for (name, store) in &backends {
        let (id, principal) = rt.block_on(setup(store));
        let state = store.state.clone();
        let mut g = c.benchmark_group(format!("64 concurrent reads of a Patient ({name})"));
        for variant in Variant::ALL {
            if let Variant::Projected = variant {
                // What the variants before logged is not this one's to project.
                rt.block_on(carnet::audit::projection::flush(&state)).unwrap();
            }
            g.bench_function(variant.name(), |b| {
                b.to_async(&rt).iter_custom(|n| {
                    let (state, id, principal) = (state.clone(), id.clone(), principal.clone());
                    async move {
                        let mut t = Duration::ZERO;
                        for _ in 0..n {
                            t += variant.measure(&state, &id, &principal).await;
                        }
                        t
                    }
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
