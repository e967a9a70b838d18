//! A query string as a client sends it (`name=value&...`, any bytes), parsed for a type
//! the first byte picks (or system level): errors are fine, panics are not.
#![no_main]

use carnet_search::Registry;
use carnet_search::query::parse_query;
use libfuzzer_sys::fuzz_target;

const TYPES: &[&str] = &[
    "Observation",
    "Patient",
    "Encounter",
    "DiagnosticReport",
    "AuditEvent",
    "Consent",
];

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let ty = TYPES.get(usize::from(*first) % (TYPES.len() + 1)).copied();
    let text = String::from_utf8_lossy(rest);
    let pairs: Vec<(String, String)> = text
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect();
    let _ = parse_query(Registry::r4(), ty, &pairs, first & 1 == 1);
});
