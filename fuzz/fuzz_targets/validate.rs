//! Any bytes a client could send as a resource: parsed as JSON (as the server does),
//! then validated against the base R4 rules and, when it claims one, a Carnet profile.
//! The validator must answer with issues, never panic or loop.
#![no_main]

use std::sync::OnceLock;

use carnet_validate::{Registry, validate};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const PROFILES: &[&str] = &[
    include_str!("../../profiles/StructureDefinition-carnet-patient.json"),
    include_str!("../../profiles/StructureDefinition-carnet-lab-observation.json"),
    include_str!("../../profiles/StructureDefinition-carnet-appointment.json"),
    include_str!("../../profiles/StructureDefinition-carnet-consent-refusal.json"),
    include_str!("../../profiles/ValueSet-privacy-policy-rule.json"),
];

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let mut r = Registry::new();
        for p in PROFILES {
            if let Ok(v) = serde_json::from_str::<Value>(p) {
                let _ = r.add(v);
            }
        }
        r
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let claimed: Vec<&str> = v["meta"]["profile"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let _ = validate(registry(), &v, &claimed);
});
