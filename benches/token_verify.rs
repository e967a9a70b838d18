//! The cost of the token check on a FHIR read, in process (SQLite):
//! - `read` alone (the service call behind `GET [base]/Patient/{id}`),
//! - `verify (cached)`: what the middleware does for a token it has seen in the last
//!   5 s (SHA-256 of the token + a map lookup) plus the scope check,
//! - `verify (signature)`: ES256 verification and claim checks of a token seen first,
//! - `verify (signature + revocation query)`: the same plus the revocation round trip
//!   done on first sight and every 5 s per token,
//! - `read + verify (cached)`, the steady state of a client reusing its token.
//!
//! `cargo bench -p carnet-benches --bench token_verify`; results in README.md here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carnet::auth::principal::Interaction;
use carnet::auth::sessions::{self, Grant};
use carnet_benches::{patient, sqlite_state};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bench = rt.block_on(sqlite_state()).unwrap();
    let state = bench.state.clone();
    let (id, token) = rt.block_on(async {
        let mut tx = state.store().begin_write().await.unwrap();
        let w = carnet::service::write::create(&state, &mut tx, "Patient", patient())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let grant = Grant {
            scope: "system/*.rs".into(),
            fhir_user: None,
            patient: None,
            subject: "bench".into(),
        };
        let sid = sessions::create(state.store(), None, "bench", &grant, state.now())
            .await
            .unwrap();
        let (token, _) = carnet::auth::endpoints::token::mint_access(&state, &sid, "bench", &grant)
            .await
            .unwrap();
        (w.id, token)
    });
    c.bench_function("read Patient (SQLite)", |b| {
        b.to_async(&rt).iter(|| async {
            let mut conn = state.store().reader().await.unwrap();
            carnet::service::read::read(&mut conn, "Patient", &id).await.unwrap()
        })
    });
    c.bench_function("verify (cached) + scope check", |b| {
        b.to_async(&rt).iter(|| async {
            let p = carnet::auth::middleware::verify(&state, &token).await.unwrap();
            p.check(Interaction::Read, "Patient").unwrap();
        })
    });
    c.bench_function("verify (signature)", |b| {
        b.to_async(&rt)
            .iter(|| async { carnet::auth::middleware::verify_uncached(&state, &token).await.unwrap() })
    });
    c.bench_function("verify (signature + revocation query)", |b| {
        b.to_async(&rt).iter(|| async {
            let p = carnet::auth::middleware::verify_uncached(&state, &token).await.unwrap();
            let sid = p.session_id.clone().unwrap();
            assert!(!sessions::is_revoked(state.store(), &sid, &p.token_id).await.unwrap());
        })
    });
    c.bench_function("read + verify (cached)", |b| {
        b.to_async(&rt).iter(|| async {
            let p = carnet::auth::middleware::verify(&state, &token).await.unwrap();
            p.check(Interaction::Read, "Patient").unwrap();
            let mut conn = state.store().reader().await.unwrap();
            carnet::service::read::read(&mut conn, "Patient", &id).await.unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
