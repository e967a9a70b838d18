//! Time of `validate` per resource, to hold against the time of a create (issue 6: at most
//! +30 %). Run in release: `CARNET_FHIR_EXAMPLES=... cargo run --release -p carnet-validate
//! --example timing`. Prints the median of several rounds for each resource.
//! With `CARNET_TIMING_BUNDLES=DIR` it also validates every entry of the Bundles in DIR
//! (e.g. `carnet-gen --format synthea` output) and prints the mean per resource type.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use carnet_validate::{Registry, validate};
use serde_json::Value;

fn read(dir: &str, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}")).expect(name)).expect(name)
}

fn time(label: &str, reg: &Registry, r: &Value, profiles: &[&str]) {
    let n = 2000;
    let mut rounds = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let mut issues = 0;
        for _ in 0..n {
            issues += validate(reg, r, profiles).len();
        }
        rounds.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(n));
        std::hint::black_box(issues);
    }
    rounds.sort_by(f64::total_cmp);
    let issues = validate(reg, r, profiles).len();
    println!("{label:55} {:8.1} µs  ({issues} issues)", rounds[3]);
}

fn main() {
    let dir = std::env::var("CARNET_FHIR_EXAMPLES").expect("CARNET_FHIR_EXAMPLES");
    let t = Instant::now();
    let mut reg = Registry::new();
    for sd in ["vitalsigns", "bp", "heartrate"] {
        reg.add(read(&dir, &format!("StructureDefinition-{sd}.json"))).unwrap();
    }
    // First validation loads the rules and expands the value sets it meets.
    validate(&reg, &read(&dir, "Observation-example.json"), &[]);
    println!("registry + first validation: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    for f in [
        "Observation-example.json",
        "Observation-glasgow.json",
        "Observation-blood-pressure.json",
        "Patient-example.json",
        "DiagnosticReport-ultrasound.json",
        "MedicationStatement-example001.json",
        "Appointment-example.json",
        "Consent-consent-example-basic.json",
    ] {
        time(f, &reg, &read(&dir, f), &[]);
    }
    if let Ok(bundles) = std::env::var("CARNET_TIMING_BUNDLES") {
        bundles_by_type(&reg, &bundles);
    }
    let bp = read(&dir, "Observation-blood-pressure.json");
    time(
        "Observation-blood-pressure.json + profile bp",
        &reg,
        &bp,
        &["http://hl7.org/fhir/StructureDefinition/bp"],
    );
}

/// Mean validation time per resource type over every Bundle entry in `dir`.
fn bundles_by_type(reg: &Registry, dir: &str) {
    let mut by_type: std::collections::BTreeMap<String, (u32, f64)> = Default::default();
    let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in paths.iter().take(200) {
        let b: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        for e in b["entry"].as_array().into_iter().flatten() {
            let r = &e["resource"];
            let t = Instant::now();
            std::hint::black_box(validate(reg, r, &[]));
            let us = t.elapsed().as_secs_f64() * 1e6;
            let slot = by_type
                .entry(r["resourceType"].as_str().unwrap_or("?").to_string())
                .or_default();
            slot.0 += 1;
            slot.1 += us;
        }
    }
    let (n, total) = by_type.values().fold((0, 0.0), |a, v| (a.0 + v.0, a.1 + v.1));
    println!("bundles in {dir}: {n} resources, mean {:.1} µs", total / f64::from(n));
    for (t, (n, us)) in by_type {
        println!("  {t:30} {n:6} × {:8.1} µs", us / f64::from(n));
    }
}
