//! Write-time upkeep of the policy tables, in the transaction of the version written:
//! the patient compartment of every resource (R1, R4), the publication facts of results
//! (R2, R3) and the patients' Consent decisions (R3 preference, R4 refusal).

use serde_json::Value;

use super::consent;
use super::settings::{ACT_CODE, CONFIDENTIALITY, PolicySettings};
use crate::error::Result;
use crate::fhir::instant::parse_instant;
use crate::search::compartment_params;
use crate::search::sql::{Bind, Kind, SqlQuery, execute, fetch};
use crate::store::Tx;

/// The tag a practitioner's `$release` puts on a result (R3 "recorded on the result").
pub const RELEASE_SYSTEM: &str = "https://carnet.dev/fhir/CodeSystem/result-release";
pub const RELEASE_CODE: &str = "released";

/// After a version of `res_type` was stored and indexed (`resource` is the stamped JSON).
pub async fn on_write(
    tx: &mut Tx,
    settings: &PolicySettings,
    pk: i64,
    res_type: &str,
    id: &str,
    resource: &Value,
    now: i64,
) -> Result<()> {
    let patients = write_compartment(tx, pk, res_type, id).await?;
    if matches!(res_type, "Observation" | "DiagnosticReport") {
        write_result(tx, settings, pk, resource, now).await?;
    }
    if res_type == "Consent" {
        for p in &patients {
            consent::recompute(tx, p).await?;
        }
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

/// Replaces the compartment rows of `pk` from its just-written reference index rows.
async fn write_compartment(tx: &mut Tx, pk: i64, res_type: &str, id: &str) -> Result<Vec<String>> {
    let before = compartment_of(tx, pk).await?;
    execute(
        tx,
        "DELETE FROM patient_compartment WHERE pk = $1",
        &[Bind::I64(Some(pk))],
    )
    .await?;
    let Some(params) = compartment_params(res_type) else {
        return Ok(before);
    };
    let mut q = SqlQuery::default();
    let p = q.int(pk);
    // `|| ''` hides these columns from the planner: the pk index is the only way in.
    // Without statistics (a new database) both planners otherwise scan every Patient
    // reference through the (target_type, target_id) index on each write.
    let inlist = q.in_list("(param || '')", params);
    let own = if res_type == "Patient" {
        format!(" UNION SELECT {p}, {}", q.text(id))
    } else {
        String::new()
    };
    q.sql = format!(
        "INSERT INTO patient_compartment (pk, patient_id) SELECT DISTINCT pk, target_id FROM idx_reference \
         WHERE pk = {p} AND {inlist} AND (target_type || '') = 'Patient' AND target_id IS NOT NULL{own}"
    );
    execute(tx, &q.sql, &q.binds).await?;
    let mut all = before;
    for p in compartment_of(tx, pk).await? {
        if !all.contains(&p) {
            all.push(p);
        }
    }
    Ok(all)
}

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

async fn write_result(tx: &mut Tx, settings: &PolicySettings, pk: i64, r: &Value, now: i64) -> Result<()> {
    let sensitive = is_sensitive(settings, r);
    let status_ok = matches!(r["status"].as_str(), Some("final" | "amended" | "corrected"));
    let issued = r["issued"].as_str().and_then(parse_instant);
    let released = has_release_tag(r);
    // Without `issued` the first stored instant counts, so an update keeps the old one;
    // a release stays a release even if a later version drops the tag.
    execute(
        tx,
        "INSERT INTO result_visibility (pk, sensitive, status_ok, issued_at, released) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (pk) DO UPDATE SET sensitive = excluded.sensitive, status_ok = excluded.status_ok, \
         issued_at = CASE WHEN $6 THEN excluded.issued_at ELSE result_visibility.issued_at END, \
         released = (excluded.released OR result_visibility.released)",
        &[
            Bind::I64(Some(pk)),
            Bind::Bool(sensitive),
            Bind::Bool(status_ok),
            Bind::I64(Some(issued.unwrap_or(now))),
            Bind::Bool(released),
            Bind::Bool(issued.is_some()),
        ],
    )
    .await?;
    Ok(())
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
