//! Shared set-up for the benches: a store on a fresh SQLite file (or the PostgreSQL
//! named by `CARNET_BENCH_POSTGRES_URL`) and realistic resources.

pub mod searches;

use std::sync::Arc;

use carnet::clock::SystemClock;
use carnet::config::Config;
use carnet::state::AppState;
use carnet::store::Store;
use serde_json::{Value, json};

pub struct BenchStore {
    pub state: AppState,
    _dir: tempfile::TempDir,
}

pub async fn sqlite_state() -> anyhow_free::Result<BenchStore> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let config = Config::for_database(&url);
    let store = Store::connect(&url, 8).await?;
    Ok(BenchStore {
        state: AppState::new(config, store, Arc::new(SystemClock)),
        _dir: dir,
    })
}

/// A store on the PostgreSQL database named by `CARNET_BENCH_POSTGRES_URL` (it must
/// exist; migrations run; the bench writes into it), or `None` when it is not set.
pub async fn postgres_state() -> Option<anyhow_free::Result<BenchStore>> {
    let url = std::env::var("CARNET_BENCH_POSTGRES_URL").ok()?;
    let open = async {
        let store = Store::connect(&url, 8).await?;
        Ok(BenchStore {
            state: AppState::new(Config::for_database(&url), store, Arc::new(SystemClock)),
            _dir: tempfile::tempdir()?,
        })
    };
    Some(open.await)
}

/// Error plumbing without pulling anyhow into the benches.
pub mod anyhow_free {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

/// A lab Observation of the shape the server stores most: code, subject, value,
/// reference range, issued.
pub fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose [Mass/volume] in Serum or Plasma"}]},
        "subject": {"reference": "Patient/bench-patient"},
        "effectiveDateTime": "2026-11-20T08:30:00-05:00",
        "issued": "2026-11-20T14:02:11.000-05:00",
        "valueQuantity": {"value": 5.6, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "referenceRange": [{"low": {"value": 3.9, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
                            "high": {"value": 6.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}}]
    })
}

pub fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "https://ramq.gouv.qc.ca/nam", "value": "TREM80022912"}],
        "name": [{"family": "Tremblay", "given": ["Élise", "Marie"]}],
        "telecom": [{"system": "phone", "value": "514-555-0100", "use": "home"}],
        "gender": "female",
        "birthDate": "1980-02-29",
        "address": [{"line": ["1000 rue Sherbrooke"], "city": "Montréal", "state": "QC", "postalCode": "H3A 0G4"}]
    })
}
