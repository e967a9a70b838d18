//! The read path: one stored resource fetched by type and id (SQLite), the bytes as
//! they go on the wire. `cargo bench -p carnet-benches --bench read_path`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carnet_benches::{patient, sqlite_state};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bench = rt.block_on(sqlite_state()).unwrap();
    let state = bench.state.clone();
    let id = rt.block_on(async {
        let mut tx = state.store().begin_write().await.unwrap();
        let w = carnet::service::write::create(&state, &mut tx, "Patient", patient())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        w.id
    });
    c.bench_function("read Patient (SQLite)", |b| {
        b.to_async(&rt).iter(|| async {
            let mut conn = state.store().reader().await.unwrap();
            carnet::service::read::read(&mut conn, "Patient", &id).await.unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
