//! Common searches through the library's search executor (`carnet::search::search`:
//! parse, SQL, count, page, `_include`, the searchset Bundle's bytes; no HTTP) on a
//! database pre-loaded by `carnet import`.
//!
//! `CARNET_BENCH_DB=sqlite:///tmp/carnet-1m.db cargo bench -p carnet-benches --bench search`
//! (`CARNET_BENCH_SEED` if the data was generated with another seed than 1). Without
//! `CARNET_BENCH_DB` it does nothing, so `cargo test --all-targets` stays cheap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use carnet::clock::SystemClock;
use carnet::config::Config;
use carnet::search::{AccessScope, SearchRequest};
use carnet::state::AppState;
use carnet::store::Store;
use criterion::Criterion;

fn main() {
    let Ok(url) = std::env::var("CARNET_BENCH_DB") else {
        eprintln!(
            "search bench: CARNET_BENCH_DB is not set (sqlite://… or postgres://… loaded by carnet import); skipping"
        );
        return;
    };
    let seed = std::env::var("CARNET_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = rt.block_on(async {
        let store = Store::connect(&url, 4).await.unwrap();
        AppState::new(Config::for_database(&url), store, Arc::new(SystemClock))
    });
    let scope = AccessScope::unrestricted();
    let searches = carnet_benches::searches::common(seed);
    let request = |s: &carnet_benches::searches::Search| SearchRequest {
        res_type: Some(s.res_type.to_string()),
        pairs: s.pairs(),
        lenient: false,
        compartment: None,
        path: s.res_type.to_string(),
    };
    // What each search finds, so the figures can be read against result sizes.
    for s in &searches {
        let bytes = rt.block_on(carnet::search::search(&state, &scope, request(s))).unwrap();
        let bundle: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let entries = bundle["entry"].as_array().map_or(0, Vec::len);
        eprintln!(
            "{:<18} total {:>6}  entries on page 1 {:>4}  {}?{}",
            s.name, bundle["total"], entries, s.res_type, s.query
        );
    }
    let mut c = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let backend = if url.starts_with("postgres") { "pg" } else { "sqlite" };
    let mut group = c.benchmark_group(format!("search-{backend}"));
    for s in &searches {
        let req = request(s);
        group.bench_function(s.name, |b| {
            b.to_async(&rt)
                .iter(|| carnet::search::search(&state, &scope, req.clone()))
        });
    }
    group.finish();
    c.final_summary();
}
