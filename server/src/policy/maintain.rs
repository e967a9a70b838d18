//! Write-time upkeep of the policy tables, in the transaction of the version written:
//! the patient compartment of every resource (R1, R4), the publication facts of results
//! (R2, R3) and the patients' Consent decisions (R3 preference, R4 refusal).

use carnet_search::{IndexEntry, IndexValue};
use serde_json::Value;

use super::consent;
use super::settings::{ACT_CODE, CONFIDENTIALITY, PolicySettings};
use crate::error::Result;
use crate::fhir::instant::parse_instant;
use crate::search::compartment_params;
use crate::store::Tx;
use crate::store::bulk::{self, ColType, Rows};
use crate::store::sql::{Bind, Kind, SqlQuery, execute, fetch};

/// The tag a practitioner's `$release` puts on a result (R3 "recorded on the result").
pub const RELEASE_SYSTEM: &str = "https://carnet.dev/fhir/CodeSystem/result-release";
pub const RELEASE_CODE: &str = "released";

/// The patients whose compartment holds a resource (CompartmentDefinition-patient),
/// from its extracted index entries; a Patient is in its own.
pub fn compartment(res_type: &str, id: &str, entries: &[IndexEntry<'_>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if res_type == "Patient" {
        out.push(id.to_string());
    }
    let Some(params) = compartment_params(res_type) else {
        return out;
    };
    for e in entries {
        if let IndexValue::Reference(r) = &e.value
            && r.target_type.as_deref() == Some("Patient")
            && let Some(target) = &r.target_id
            && params.iter().any(|p| p == e.param)
            && !out.contains(target)
        {
            out.push(target.clone());
        }
    }
    out
}

/// One version just stored, as the policy tables need it.
pub struct Written<'a> {
    pub pk: i64,
    pub res_type: &'a str,
    pub resource: &'a Value,
    /// From [`compartment`].
    pub compartment: &'a [String],
}

/// After a version was stored and indexed (`resource` is the stamped JSON).
pub async fn on_write(tx: &mut Tx, settings: &PolicySettings, w: &Written<'_>, now: i64) -> Result<()> {
    // Only a Consent cares which patients it used to concern (their decision changes).
    let before = if w.res_type == "Consent" {
        compartment_of(tx, w.pk).await?
    } else {
        Vec::new()
    };
    execute(
        tx,
        "DELETE FROM patient_compartment WHERE pk = $1",
        &[Bind::I64(Some(w.pk))],
    )
    .await?;
    on_create(tx, settings, std::slice::from_ref(w), now).await?;
    for p in &before {
        if !w.compartment.contains(p) {
            consent::recompute(tx, p).await?;
        }
    }
    Ok(())
}

/// After new resources were stored and indexed: their compartment rows, result facts
/// and Consent decisions, in a few statements whatever their number.
pub async fn on_create(tx: &mut Tx, settings: &PolicySettings, items: &[Written<'_>], now: i64) -> Result<()> {
    let mut compartment = Rows::new("patient_compartment", COMPARTMENT_COLUMNS);
    let mut results = Rows::new("result_visibility", RESULT_COLUMNS);
    let mut consent_patients: Vec<&str> = Vec::new();
    for w in items {
        for p in w.compartment {
            compartment.push([Bind::I64(Some(w.pk)), Bind::Text(Some(p.clone()))]);
        }
        if matches!(w.res_type, "Observation" | "DiagnosticReport") {
            results.push(result_row(settings, w.pk, w.resource, now));
        }
        if w.res_type == "Consent" {
            consent_patients.extend(w.compartment.iter().map(String::as_str));
        }
    }
    bulk::insert(tx, &compartment, "").await?;
    // Without `issued` the first stored instant counts, so an update keeps the old one;
    // a release stays a release even if a later version drops the tag.
    bulk::insert(
        tx,
        &results,
        "ON CONFLICT (pk) DO UPDATE SET sensitive = excluded.sensitive, status_ok = excluded.status_ok, \
         issued_at = CASE WHEN excluded.issued_known THEN excluded.issued_at ELSE result_visibility.issued_at END, \
         released = (excluded.released OR result_visibility.released), \
         issued_known = (excluded.issued_known OR result_visibility.issued_known)",
    )
    .await?;
    consent_patients.sort_unstable();
    consent_patients.dedup();
    for p in consent_patients {
        consent::recompute(tx, p).await?;
    }
    Ok(())
}

/// After a delete: the compartment rows stay (older versions keep their governance),
/// but a deleted Consent no longer decides anything.
pub async fn on_delete(tx: &mut Tx, pk: i64, res_type: &str) -> Result<()> {
    if res_type == "Consent" {
        for p in compartment_of(tx, pk).await? {
            consent::recompute(tx, &p).await?;
        }
    }
    Ok(())
}

const COMPARTMENT_COLUMNS: &[(&str, ColType)] = &[("pk", ColType::I64), ("patient_id", ColType::Text)];

const RESULT_COLUMNS: &[(&str, ColType)] = &[
    ("pk", ColType::I64),
    ("sensitive", ColType::Bool),
    ("status_ok", ColType::Bool),
    ("issued_at", ColType::I64),
    ("issued_known", ColType::Bool),
    ("released", ColType::Bool),
];

pub async fn compartment_of(tx: &mut Tx, pk: i64) -> Result<Vec<String>> {
    let mut q = SqlQuery::default();
    let p = q.int(pk);
    q.sql = format!("SELECT patient_id FROM patient_compartment WHERE pk = {p}");
    Ok(fetch(tx, &q, &[Kind::Text])
        .await?
        .into_iter()
        .filter_map(|r| r.first().and_then(|c| c.text().map(str::to_string)))
        .collect())
}

/// The publication facts of a result (R2, R3).
fn result_row(settings: &PolicySettings, pk: i64, r: &Value, now: i64) -> [Bind; 6] {
    let issued = r["issued"].as_str().and_then(parse_instant);
    [
        Bind::I64(Some(pk)),
        Bind::Bool(is_sensitive(settings, r)),
        Bind::Bool(matches!(r["status"].as_str(), Some("final" | "amended" | "corrected"))),
        Bind::I64(Some(issued.unwrap_or(now))),
        Bind::Bool(issued.is_some()),
        Bind::Bool(has_release_tag(r)),
    ]
}

pub fn has_release_tag(r: &Value) -> bool {
    r["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["system"] == RELEASE_SYSTEM && t["code"] == RELEASE_CODE)
}

/// R2: a sensitivity or confidentiality label, or a code in the sensitive value set.
pub fn is_sensitive(settings: &PolicySettings, r: &Value) -> bool {
    let labelled = r["meta"]["security"].as_array().into_iter().flatten().any(|c| {
        let code = c["code"].as_str().unwrap_or_default();
        match c["system"].as_str() {
            Some(ACT_CODE) => settings.sensitivity_labels.iter().any(|l| l == code),
            Some(CONFIDENTIALITY) => settings.confidentiality_labels.iter().any(|l| l == code),
            _ => false,
        }
    });
    labelled
        || r["code"]["coding"].as_array().into_iter().flatten().any(|c| {
            let key = (
                c["system"].as_str().unwrap_or_default().to_string(),
                c["code"].as_str().unwrap_or_default().to_string(),
            );
            settings.sensitive_codes.contains(&key)
        })
}
