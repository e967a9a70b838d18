//! The official R4 package (not committed: scripts/fetch-fhir-packages.sh fetches it and
//! scripts/test.sh exports its `package` directory as CARNET_FHIR_EXAMPLES).
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;

/// Fails, rather than skips, when the package is not configured.
pub fn package_dir() -> PathBuf {
    let dir = std::env::var_os("CARNET_FHIR_EXAMPLES").expect(
        "CARNET_FHIR_EXAMPLES must name the hl7.fhir.r4.examples `package` directory \
         (run scripts/test.sh, or export it from scripts/fetch-fhir-packages.sh's output + /package)",
    );
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("package.json").is_file(),
        "{} is not the R4 package",
        dir.display()
    );
    dir
}

pub fn read(name: &str) -> Value {
    let text = std::fs::read_to_string(package_dir().join(name)).expect(name);
    serde_json::from_str(&text).expect(name)
}

/// `(file name, resource)` of every package file whose name passes `keep`.
pub fn files(keep: impl Fn(&str) -> bool) -> Vec<(String, Value)> {
    let dir = package_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("package dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "package.json" && !n.starts_with('.'))
        .filter(|n| keep(n))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(&n)).ok()?).ok()?;
            v.get("resourceType")?;
            Some((n, v))
        })
        .collect()
}
