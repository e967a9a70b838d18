//! A patient's Consent resources decide two things (docs/policy.md):
//! - R4 refusal: privacy Consents (`scope` patient-privacy); the newest active one wins;
//!   a deny (`provision.type` deny, or `policyRule` OPTOUT) refuses sharing, a permit
//!   (OPTIN) or no active one leaves the record shared.
//! - R3 preference: Consents with category `result-publication` (Carnet code system);
//!   the newest active one wins; permit = results as soon as ready, deny = the delay.
//!
//! Recomputed from the stored Consents whenever one is written or deleted, so a change
//! applies at once and the Consents' history stays the record of past decisions.

use serde_json::Value;

use crate::error::Result;
use crate::store::Tx;
use crate::store::sql::{Bind, Kind, SqlQuery, execute, fetch};

pub const CONSENT_CATEGORY: &str = "https://carnet.dev/fhir/CodeSystem/consent-category";
pub const RESULT_PUBLICATION: &str = "result-publication";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentKind {
    Privacy,
    Publication,
}

fn codes<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a str> {
    let mut cur = vec![v];
    for p in path {
        cur = cur
            .into_iter()
            .flat_map(|x| match &x[*p] {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                Value::Null => Vec::new(),
                o => vec![o],
            })
            .collect();
    }
    cur.into_iter().filter_map(Value::as_str).collect()
}

/// What a Consent is about, if it is one of the two kinds the policy reads.
pub fn kind(c: &Value) -> Option<ConsentKind> {
    if codes(c, &["category", "coding", "code"]).contains(&RESULT_PUBLICATION) {
        return Some(ConsentKind::Publication);
    }
    if codes(c, &["scope", "coding", "code"]).contains(&"patient-privacy") {
        return Some(ConsentKind::Privacy);
    }
    None
}

/// `Some(true)` permit, `Some(false)` deny.
pub fn permits(c: &Value) -> Option<bool> {
    match c["provision"]["type"].as_str() {
        Some("permit") => return Some(true),
        Some("deny") => return Some(false),
        _ => {}
    }
    let rules = codes(c, &["policyRule", "coding", "code"]);
    if rules.contains(&"OPTOUT") {
        Some(false)
    } else if rules.contains(&"OPTIN") {
        Some(true)
    } else {
        None
    }
}

/// Re-derives `patient_refusal` and `patient_result_preference` for one patient.
pub async fn recompute(tx: &mut Tx, patient: &str) -> Result<()> {
    // Two Consents of one patient written at once (a refusal and its withdrawal from two
    // devices) would each re-derive from a snapshot without the other, and the last to
    // commit would impose its own view, not the newest Consent's (found by
    // `tests/concurrency.rs`). The writers take turns per patient; the later one then
    // reads both (PostgreSQL READ COMMITTED: a fresh snapshot per statement).
    crate::store::sql::serialize_on(tx, &format!("consent {patient}")).await?;
    let mut q = SqlQuery::default();
    let p = q.text(patient);
    q.sql = format!(
        "SELECT r.pk, r.last_updated, v.content FROM patient_compartment pc JOIN resources r ON r.pk = pc.pk \
         JOIN resource_versions v ON v.pk = r.pk AND v.version = r.version \
         WHERE pc.patient_id = {p} AND r.res_type = 'Consent' AND r.deleted = FALSE \
         ORDER BY r.last_updated DESC, r.pk DESC"
    );
    let rows = fetch(tx, &q, &[Kind::I64, Kind::I64, Kind::Bytes]).await?;
    let mut privacy: Option<(i64, i64, bool)> = None;
    let mut publication: Option<(i64, bool)> = None;
    for r in rows {
        let (Some(pk), Some(at)) = (r[0].i64(), r[1].i64()) else {
            continue;
        };
        let crate::store::sql::Cell::Bytes(Some(content)) = &r[2] else {
            continue;
        };
        let Ok(c) = serde_json::from_slice::<Value>(content) else {
            continue;
        };
        if c["status"] != "active" {
            continue;
        }
        let Some(decision) = permits(&c) else { continue };
        match kind(&c) {
            Some(ConsentKind::Privacy) if privacy.is_none() => privacy = Some((pk, at, decision)),
            Some(ConsentKind::Publication) if publication.is_none() => publication = Some((pk, decision)),
            _ => {}
        }
    }
    match privacy {
        Some((pk, at, false)) => {
            // The same refusal rewritten keeps its time: who consulted before it still did.
            execute(
                tx,
                "INSERT INTO patient_refusal (patient_id, refused_at, consent_pk) VALUES ($1, $2, $3) \
                 ON CONFLICT (patient_id) DO UPDATE SET refused_at = CASE WHEN patient_refusal.consent_pk = \
                 excluded.consent_pk THEN patient_refusal.refused_at ELSE excluded.refused_at END, \
                 consent_pk = excluded.consent_pk",
                &[
                    Bind::Text(Some(patient.to_string())),
                    Bind::I64(Some(at)),
                    Bind::I64(Some(pk)),
                ],
            )
            .await?
        }
        _ => {
            execute(
                tx,
                "DELETE FROM patient_refusal WHERE patient_id = $1",
                &[Bind::Text(Some(patient.to_string()))],
            )
            .await?
        }
    }
    match publication {
        Some((pk, immediate)) => {
            execute(
                tx,
                "INSERT INTO patient_result_preference (patient_id, immediate, consent_pk) VALUES ($1, $2, $3) \
                 ON CONFLICT (patient_id) DO UPDATE SET immediate = excluded.immediate, consent_pk = excluded.consent_pk",
                &[Bind::Text(Some(patient.to_string())), Bind::Bool(immediate), Bind::I64(Some(pk))],
            )
            .await?
        }
        None => {
            execute(
                tx,
                "DELETE FROM patient_result_preference WHERE patient_id = $1",
                &[Bind::Text(Some(patient.to_string()))],
            )
            .await?
        }
    }
    Ok(())
}
