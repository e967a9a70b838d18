//! FHIRPath text through both parsers (the search subset and the invariant engine), and
//! what compiles evaluated on a sample Observation: errors are fine, panics are not.
#![no_main]

use carnet_fhirpath::Invariant;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let obs: Value = json!({
        "resourceType": "Observation", "id": "f", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": "2026-03-01T10:00:00Z",
        "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "component": [{"code": {"text": "a"}, "valueString": "x"}],
        "contained": [{"resourceType": "Patient", "id": "p1", "_birthDate": {"extension": [{"url": "u", "valueString": "v"}]}}]
    });
    if let Ok(expr) = carnet_fhirpath::parse(src) {
        let _ = expr.evaluate(&obs);
    }
    if let Ok(inv) = Invariant::compile(src) {
        let _ = inv.check(&obs, &obs, "Observation");
    }
});
