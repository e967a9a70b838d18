//! The write path: JSON bytes → Value → strict R4 check → stamped and stored (one
//! database transaction on SQLite), and what validation adds (issue 6).
//! `cargo bench -p carnet-benches --bench write_path`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carnet_benches::{observation, sqlite_state};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bytes = serde_json::to_vec(&observation()).unwrap();

    c.bench_function("parse Observation (serde_json)", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(&bytes).unwrap())
    });
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    c.bench_function("check Observation (carnet-fhir strict)", |b| {
        b.iter(|| carnet_fhir::check_resource(&value).unwrap())
    });

    // Replaces the former ignored timing test of carnet-search: the index values a
    // create extracts (every search parameter of the type).
    let registry = carnet_search::Registry::r4();
    c.bench_function("extract search index of Observation (carnet-search)", |b| {
        b.iter(|| registry.extract("Observation", std::hint::black_box(&value)).len())
    });

    // Issue 6, point 7: what validation (base R4 invariants and bindings, plus the
    // profile the resource claims) costs; the create below includes it, so the cost
    // of validation relative to the rest of a create is validate / (create - validate).
    let lab: serde_json::Value =
        serde_json::from_str(include_str!("../profiles/examples/Observation-glucose.json")).unwrap();
    let rules = carnet::conformance::Rules::default();
    c.bench_function("validate lab Observation (base R4 + carnet-lab-observation)", |b| {
        b.iter(|| {
            let profiles = carnet::conformance::profiles_for(&rules, &lab, None).unwrap();
            assert_eq!(profiles.len(), 1);
            carnet::conformance::validate(std::hint::black_box(&lab), &profiles).unwrap()
        })
    });
    c.bench_function("validate Observation (base R4 rules)", |b| {
        b.iter(|| carnet::conformance::validate(std::hint::black_box(&value), &[]).unwrap())
    });

    let bench = rt.block_on(sqlite_state()).unwrap();
    let state = bench.state.clone();
    c.bench_function("create Observation (parse+check+store, SQLite)", |b| {
        b.to_async(&rt).iter(|| async {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let mut tx = state.store().begin_write().await.unwrap();
            carnet::service::write::create(&state, &mut tx, "Observation", v)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        })
    });

    let lab_bytes = {
        let mut v = lab.clone();
        v.as_object_mut().unwrap().remove("id");
        serde_json::to_vec(&v).unwrap()
    };
    c.bench_function("create lab Observation (parse+check+validate+store, SQLite)", |b| {
        b.to_async(&rt).iter(|| async {
            let v: serde_json::Value = serde_json::from_slice(&lab_bytes).unwrap();
            let mut tx = state.store().begin_write().await.unwrap();
            carnet::service::write::create(&state, &mut tx, "Observation", v)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
