//! `$export` throughput: loads N Observations (and N/20 Patients whose compartments
//! hold them) into a fresh SQLite file (or the PostgreSQL of
//! `CARNET_BENCH_POSTGRES_URL`), queues one system-level export through the service
//! layer, and times the server's own worker from kick-off to the finished manifest.
//!
//! `cargo bench -p carnet-benches --bench export -- 1000000` (default 200,000)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use carnet::policy::Access;
use carnet::service::export::{self, Level, Status};
use carnet::service::write::{self, NewResource};
use carnet_benches::{observation, patient};
use serde_json::Value;

const CHUNK: usize = 5_000;

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n));
}

async fn run(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("CARNET_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display()));
    let config = carnet::config::Config::for_database(&url);
    let server = carnet::app::Running::start(config, None).await.unwrap();
    let state = server.state.clone();

    let t = Instant::now();
    let patients = (n / 20).max(1);
    let mut made = 0;
    while made < n {
        let now = state.now();
        let mut items = Vec::with_capacity(CHUNK);
        for i in made..(made + CHUNK).min(n) {
            if i % 20 == 0 && i / 20 < patients {
                let Value::Object(p) = patient() else { unreachable!() };
                items.push(NewResource::prepare("Patient", p, Some(format!("p{}", i / 20)), now).unwrap());
            }
            let mut o = observation();
            o["subject"]["reference"] = Value::String(format!("Patient/p{}", (i / 20).min(patients - 1)));
            let Value::Object(o) = o else { unreachable!() };
            items.push(NewResource::prepare("Observation", o, None, now).unwrap());
        }
        let refs: Vec<&NewResource> = items.iter().collect();
        let mut tx = state.store().begin_write().await.unwrap();
        write::create_many(&state, &mut tx, &refs, "POST").await.unwrap();
        tx.commit().await.unwrap();
        made += CHUNK;
    }
    state.store().analyze().await.unwrap();
    eprintln!("loaded {n} Observations and {patients} Patients in {:.1?}", t.elapsed());

    let principal = Arc::new(export::job_principal("bench", "system/*.rs"));
    let access = Access::for_principal(&state, principal, carnet::auth::i18n::Lang::En, None)
        .await
        .unwrap();
    for (label, level, pairs) in [
        (
            "system, _type=Observation,Patient",
            Level::System,
            vec![("_type", "Observation,Patient")],
        ),
        ("Patient level", Level::Patient, vec![]),
    ] {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let t = Instant::now();
        let id = export::kick_off(&state, &access, level, None, &pairs, "bench".into())
            .await
            .unwrap();
        let manifest = loop {
            match export::status(&state, &access, &id).await.unwrap() {
                Status::Done(m) => break m,
                Status::Failed(e) => panic!("export failed: {e}"),
                Status::Running { .. } => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        let secs = t.elapsed().as_secs_f64();
        let count: i64 = manifest["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["count"].as_i64().unwrap())
            .sum();
        println!(
            "$export {label}: {count} resources in {secs:.2} s = {:.0} resources/s ({} files)",
            count as f64 / secs,
            manifest["output"].as_array().unwrap().len()
        );
        export::cancel(&state, &access, &id).await.unwrap();
    }
    server.stop().await.unwrap();
}
