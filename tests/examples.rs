//! The official R4 examples of the types Carnet is about: each is created and read
//! back equal (apart from `meta.versionId` / `meta.lastUpdated`), on both backends.
//! The package is fetched from npm at test time (`scripts/fetch-fhir-packages.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use carnet_tests::{TestServer, on_both_backends};
use reqwest::Method;
use serde_json::Value;

const TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "DiagnosticReport",
    "MedicationStatement",
    "Appointment",
    "AuditEvent",
    "Consent",
    "RelatedPerson",
    "Practitioner",
    "Organization",
];

/// Examples the server refuses, each with the reason it is not valid R4.
const REFUSED: &[(&str, &str)] = &[];

fn package_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARNET_FHIR_EXAMPLES") {
        return PathBuf::from(dir);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(root.join("scripts/fetch-fhir-packages.sh"))
        .output()
        .expect("run scripts/fetch-fhir-packages.sh");
    assert!(
        out.status.success(),
        "fetching the R4 examples failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("package")
}

fn examples() -> Vec<(String, Value)> {
    let dir = package_dir();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(ty) = name.split('-').next() else { continue };
        if !TYPES.contains(&ty) || !name.ends_with(".json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        if v["resourceType"] == ty {
            out.push((name, v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The resource without the two members the server owns.
fn without_server_meta(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            v.as_object_mut().unwrap().remove("meta");
        }
    }
    v
}

async fn official_examples_round_trip(s: &TestServer) {
    let examples = examples();
    assert!(examples.len() > 150, "only {} examples found", examples.len());
    let mut refused = Vec::new();
    for (file, example) in &examples {
        let ty = example["resourceType"].as_str().unwrap();
        let id = example["id"].as_str().unwrap();
        let r = s.send_json(Method::PUT, &format!("{ty}/{id}"), example).await;
        let status = r.status().as_u16();
        if status != 201 {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            refused.push((file.clone(), status, body));
            continue;
        }
        let (mut st, mut read) = s.get_json(&format!("{ty}/{id}")).await;
        if st == 403 {
            // Some examples are OPTOUT Consents: providers are then refused that
            // patient's record (policy R4); the stored form is checked internally.
            let mut conn = s.state().store().reader().await.unwrap();
            let v = carnet::service::read::read(&mut conn, ty, id).await.unwrap();
            (st, read) = (200, serde_json::from_slice(&v.content.unwrap()).unwrap());
        }
        assert_eq!(st, 200, "{file}");
        assert_eq!(
            without_server_meta(read),
            without_server_meta(example.clone()),
            "{file} did not read back equal"
        );
    }
    let refused_files: Vec<&str> = refused.iter().map(|(f, _, _)| f.as_str()).collect();
    let expected: Vec<&str> = REFUSED.iter().map(|(f, _)| *f).collect();
    eprintln!(
        "{} examples round-tripped, {} refused",
        examples.len() - refused.len(),
        refused.len()
    );
    assert_eq!(refused_files, expected, "refused: {refused:#?}");
}

on_both_backends!(official_examples_round_trip);
