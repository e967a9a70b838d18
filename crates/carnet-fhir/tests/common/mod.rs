//! Locates the official R4 examples package (not committed: see scripts/fetch-fhir-packages.sh).
// Test support: panicking on a missing package is the right failure.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

/// The example types whose every example must pass (or be a documented exception).
pub const MAIN_TYPES: &[&str] = &[
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

pub fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("CARNET_FHIR_EXAMPLES") {
            return PathBuf::from(d);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = std::process::Command::new(root.join("scripts/fetch-fhir-packages.sh"))
            .current_dir(&root)
            .output()
            .expect("run scripts/fetch-fhir-packages.sh (or set CARNET_FHIR_EXAMPLES)");
        assert!(out.status.success(), "fetch-fhir-packages.sh failed");
        let dir = String::from_utf8(out.stdout).expect("utf-8 path");
        PathBuf::from(dir.trim()).join("package")
    })
}

/// `(file name, parsed JSON)` of every example whose name starts with `<ty>-`.
pub fn examples_of(ty: &str) -> Vec<(String, Value)> {
    let prefix = format!("{ty}-");
    load(|n| n.starts_with(&prefix))
}

/// Every resource JSON file of the package (package metadata excluded).
pub fn all_files() -> Vec<(String, Value)> {
    load(|_| true)
}

fn load(keep: impl Fn(&str) -> bool) -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(examples_dir())
        .expect("examples dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "package.json" && !n.starts_with('.'))
        .filter(|n| keep(n))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| {
            let text = std::fs::read_to_string(examples_dir().join(&n)).ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            v.get("resourceType")?;
            Some((n, v))
        })
        .collect()
}
