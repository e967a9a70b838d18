//! The policy's numbers and code lists (policy.md R2, R3, R6), with the seeds' values
//! as defaults; `config.rs` overrides them from flags, environment or file.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

pub const DEFAULT_RESULT_DELAY_DAYS: i64 = 30;
pub const DEFAULT_SELF_ACCESS_AGE: i32 = 14;
pub const DEFAULT_PARENT_ACCESS_UNTIL_AGE: i32 = 14;
pub const DEFAULT_SENSITIVITY_LABELS: &[&str] = &["HIV", "PSY", "SUD", "ETH", "STD", "SEX", "SDV", "GDIS", "TBOO"];
pub const DEFAULT_CONFIDENTIALITY_LABELS: &[&str] = &["R", "V"];
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

const SENSITIVE_RESULTS: &str = include_str!("../../../profiles/ValueSet-sensitive-results.json");

#[derive(Debug, Clone)]
pub struct PolicySettings {
    /// R3: days after `issued` when a non-sensitive final result is published.
    pub result_delay_days: i64,
    /// R6: age from which a patient has self-access.
    pub self_access_age: i32,
    /// R6: parents and guardians have access while the child is under this age.
    pub parent_access_until_age: i32,
    /// R2: v3-ActCode sensitivity labels in `meta.security`.
    pub sensitivity_labels: Vec<String>,
    /// R2: v3-Confidentiality codes in `meta.security`.
    pub confidentiality_labels: Vec<String>,
    /// R2: `(system, code)` of the sensitive-results value set.
    pub sensitive_codes: Arc<HashSet<(String, String)>>,
}

impl Default for PolicySettings {
    fn default() -> PolicySettings {
        PolicySettings {
            result_delay_days: DEFAULT_RESULT_DELAY_DAYS,
            self_access_age: DEFAULT_SELF_ACCESS_AGE,
            parent_access_until_age: DEFAULT_PARENT_ACCESS_UNTIL_AGE,
            sensitivity_labels: DEFAULT_SENSITIVITY_LABELS.iter().map(|s| s.to_string()).collect(),
            confidentiality_labels: DEFAULT_CONFIDENTIALITY_LABELS.iter().map(|s| s.to_string()).collect(),
            sensitive_codes: Arc::new(codes_of(
                &serde_json::from_str(SENSITIVE_RESULTS).unwrap_or(Value::Null),
            )),
        }
    }
}

impl PolicySettings {
    /// Reads another sensitive-results ValueSet (JSON, `compose.include[].concept`).
    pub fn load_value_set(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let vs: Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let codes = codes_of(&vs);
        if codes.is_empty() {
            anyhow::bail!("{}: the ValueSet lists no codes", path.display());
        }
        self.sensitive_codes = Arc::new(codes);
        Ok(())
    }

    pub fn delay_micros(&self) -> i64 {
        self.result_delay_days.saturating_mul(86_400_000_000)
    }
}

fn codes_of(vs: &Value) -> HashSet<(String, String)> {
    let mut out = HashSet::new();
    for inc in vs["compose"]["include"].as_array().into_iter().flatten() {
        let system = inc["system"].as_str().unwrap_or_default();
        for c in inc["concept"].as_array().into_iter().flatten() {
            if let Some(code) = c["code"].as_str() {
                out.insert((system.to_string(), code.to_string()));
            }
        }
    }
    out
}

/// Comma-separated list, blanks dropped.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
