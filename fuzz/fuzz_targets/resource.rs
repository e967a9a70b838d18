//! Any bytes a client could send as a resource body, in either format the server takes:
//! as JSON, the structural R4 check (`carnet_fhir::check_resource`, through fhirbolt's
//! R4 model); as XML, the conversion to JSON and its check. What passes the check is
//! written back as XML, as the server answers `_format=xml` (it converts only resources
//! it has checked). Every outcome must be an answer (issues or a value), never a panic
//! or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check_then_write(v: &Value) {
    if carnet_fhir::check_resource(v).is_ok() {
        let _ = carnet_fhir::to_xml(v, true);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        check_then_write(&v);
    }
    if let Ok(v) = carnet_fhir::from_xml(data) {
        check_then_write(&v);
    }
});
