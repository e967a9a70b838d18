//! Times the public functions on a few resources (release build recommended):
//! `cargo run --release -p carnet-fhir --example time_check [FILE.json ...]`
//! (defaults to examples from `$CARNET_FHIR_EXAMPLES`).
//!
//! Only the public API is used here: calling fhirbolt directly would compile its
//! generic deserializers a second time, into every test build.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::Value;

fn per_call(n: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

fn main() {
    let mut files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        let dir = std::env::var("CARNET_FHIR_EXAMPLES").expect("pass files or set CARNET_FHIR_EXAMPLES");
        for f in [
            "Observation-example.json",
            "Observation-vitals-panel.json",
            "Observation-blood-pressure.json",
            "Patient-example.json",
        ] {
            files.push(format!("{dir}/{f}"));
        }
    }
    let n = 2000;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert!(carnet_fhir::check_resource(&v).is_ok(), "{file} fails");
        let check = per_call(n, || {
            let _ = black_box(carnet_fhir::check_resource(black_box(&v)));
        });
        let xml = carnet_fhir::to_xml(&v, false).unwrap();
        let to = per_call(n / 4, || {
            let _ = black_box(carnet_fhir::to_xml(black_box(&v), false));
        });
        let from = per_call(n / 4, || {
            let _ = black_box(carnet_fhir::from_xml(black_box(xml.as_bytes())));
        });
        let name = file.rsplit('/').next().unwrap_or(&file);
        println!(
            "{name:36} {:>6} B  check_resource {check:>8.1?}  to_xml {to:>8.1?}  from_xml {from:>8.1?}",
            text.len()
        );
    }
}
