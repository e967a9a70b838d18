//! The package's own constraint profiles (vital signs, cqf-questionnaire) against the
//! examples that claim them: real slicing (pattern and value discriminators, type slices
//! of `value[x]`, extension slices) on real snapshots. Needs CARNET_FHIR_EXAMPLES.

mod common;

use carnet_validate::{Issue, Registry, Severity, validate};
use serde_json::Value;

const SD: &str = "http://hl7.org/fhir/StructureDefinition/";

fn registry() -> Registry {
    let mut reg = Registry::new();
    for (_, sd) in common::files(|n| {
        n.starts_with("StructureDefinition-")
            && [
                "vitalsigns",
                "bodyweight",
                "bp",
                "heartrate",
                "bodytemp",
                "bodyheight",
                "cqf-questionnaire",
            ]
            .iter()
            .any(|p| n == format!("StructureDefinition-{p}.json"))
    }) {
        if let Err(e) = reg.add(sd) {
            panic!("{e}");
        }
    }
    reg
}

fn errors(reg: &Registry, r: &Value, profile: &str) -> Vec<Issue> {
    validate(reg, r, &[profile])
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .collect()
}

#[test]
fn examples_conform_to_the_profiles_they_claim() {
    let reg = registry();
    let mut checked = 0;
    for (name, r) in common::files(|n| {
        !n.starts_with("StructureDefinition-") && !n.starts_with("ValueSet-") && !n.starts_with("CodeSystem-")
    }) {
        let claimed: Vec<&str> = r
            .pointer("/meta/profile")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for p in claimed {
            let found = errors(&reg, &r, p);
            assert!(found.is_empty(), "{name} against {p}: {found:#?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 13);
}

#[test]
fn specific_vital_sign_profiles() {
    let reg = registry();
    let rate = common::read("Observation-heart-rate.json");
    assert_eq!(errors(&reg, &rate, &format!("{SD}heartrate")), vec![]);
    let bp = common::read("Observation-blood-pressure.json");
    assert_eq!(errors(&reg, &bp, &format!("{SD}bp")), vec![]);
    let temp = common::read("Observation-body-temperature.json");
    assert_eq!(errors(&reg, &temp, &format!("{SD}bodytemp")), vec![]);

    // A body temperature is not a heart rate: the code slice (value discriminators on
    // code and system) finds no LOINC 8867-4, and the unit is fixed to /min.
    let found = errors(&reg, &temp, &format!("{SD}heartrate"));
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|i| i.code == "required" && i.expression.as_deref() == Some("Observation.code.coding")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|i| i.code == "value" && i.expression.as_deref() == Some("Observation.valueQuantity.code")),
        "{found:#?}"
    );

    // Without the vital-signs category the VSCat slice is missing.
    let mut no_cat = rate.clone();
    no_cat["category"][0]["coding"][0]["code"] = Value::String("laboratory".to_owned());
    let found = errors(&reg, &no_cat, &format!("{SD}vitalsigns"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].code, "required");
    assert_eq!(found[0].expression.as_deref(), Some("Observation.category"));
    assert!(found[0].diagnostics.contains("VSCat"), "{found:#?}");
}
