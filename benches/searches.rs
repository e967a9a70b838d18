//! The common searches the search benches and load runs measure, over data from
//! `carnet-datagen` (the seed tells which patient has which identifier and name).

use carnet_datagen::{Generator, LOINC, RAMQ_SYSTEM};

/// One search: a short name, the resource type, and the query string (not encoded).
#[derive(Debug, Clone)]
pub struct Search {
    pub name: &'static str,
    pub res_type: &'static str,
    pub query: String,
}

impl Search {
    /// Query pairs as a server receives them after URL decoding.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `Type?query`, percent-encoded for a URL.
    pub fn url_path(&self) -> String {
        let enc: Vec<String> = self
            .pairs()
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("{}?{}", self.res_type, enc.join("&"))
    }
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The patient the per-patient searches are about (exists at every scale from 10 k
/// resources, i.e. 100 patients).
pub const PATIENT: usize = 42;

/// The common searches of issue 3 point 10, for data generated with `seed`.
pub fn common(seed: u64) -> Vec<Search> {
    // Patient `PATIENT`'s data does not depend on the number of patients.
    let g = Generator::new(seed, PATIENT + 1);
    let patient = g.patient(PATIENT).remove(0);
    let nam = patient["identifier"][0]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pid = Generator::patient_id(PATIENT);
    let hba1c = format!("{LOINC}|4548-4");
    let hb = format!("{LOINC}|718-7");
    let quarter = "date=ge2024-01-01&date=lt2024-04-01";
    vec![
        Search {
            name: "patient+code",
            res_type: "Observation",
            query: format!("subject=Patient/{pid}&code={hb}"),
        },
        Search {
            name: "code+date",
            res_type: "Observation",
            query: format!("code={hba1c}&{quarter}"),
        },
        Search {
            name: "identifier",
            res_type: "Patient",
            query: format!("identifier={RAMQ_SYSTEM}|{nam}"),
        },
        Search {
            name: "name",
            res_type: "Patient",
            query: "name=cote".to_string(),
        },
        Search {
            name: "include",
            res_type: "Observation",
            query: format!("code={hba1c}&{quarter}&_include=Observation:subject"),
        },
        Search {
            name: "chain-identifier",
            res_type: "Observation",
            query: format!("subject:Patient.identifier={RAMQ_SYSTEM}|{nam}&code={hb}"),
        },
        Search {
            name: "chain-name",
            res_type: "Observation",
            query: format!("subject:Patient.name=gagnon&code={hba1c}"),
        },
        Search {
            name: "has",
            res_type: "Patient",
            query: format!("_has:Observation:patient:code={hba1c}"),
        },
    ]
}
