//! Semantics, table-driven; many cases adapted from HL7's FHIRPath test suite
//! (fhir-test-cases, r4/fhirpath/tests-fhir-r4.xml), rewritten here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use super::{Focus, Invariant};

fn patient() -> Value {
    serde_json::from_str(include_str!("../../tests/fixtures/Patient-example.json")).unwrap()
}

fn observation() -> Value {
    serde_json::from_str(include_str!("../../tests/fixtures/Observation-example.json")).unwrap()
}

fn focus<'a>(res: &'a Value) -> Focus<'a> {
    Focus {
        root: res,
        resource: res,
        value: res,
        primitive_ext: None,
        type_name: res["resourceType"].as_str().unwrap_or("Element"),
    }
}

/// The result as strings; `Err` text on an evaluation error.
fn run(expr: &str, res: &Value) -> Result<Vec<String>, String> {
    let inv = Invariant::compile(expr).map_err(|e| format!("parse: {e}"))?;
    inv.evaluate_strings(&focus(res)).map_err(|e| e.message)
}

fn check_table(res: &Value, cases: &[(&str, &[&str])]) {
    let mut bad = Vec::new();
    for (expr, want) in cases {
        match run(expr, res) {
            Ok(got) if got == *want => {}
            other => bad.push(format!("{expr}: want {want:?}, got {other:?}")),
        }
    }
    assert!(bad.is_empty(), "\n{}", bad.join("\n"));
}

#[test]
fn debug_scratch() {
    let cs = json!({"resourceType": "CodeSystem", "name": "AccountStatus"});
    println!("{:?}", run("name.matches('[A-Z]([A-Za-z0-9_]){0,254}')", &cs));
    println!("{:?}", run("name", &cs));
}
