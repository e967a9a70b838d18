//! R7: what a patient-facing caller may write, and the rule that nobody changes
//! AuditEvents through the API. Checked before a write runs, against the stored
//! version where the rule compares (contact details, appointment transitions).

use serde_json::Value;

use super::Access;
use crate::error::{Error, Result};
use crate::search::AccessScope;
use crate::store::Tx;
use crate::store::sql::{Cell, Kind, SqlQuery, fetch};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Create,
    Update,
    Patch,
    Delete,
}

/// Refuses the write (403, in the caller's language) unless the policy allows it.
/// `id` is the target of an update, patch or delete; `body` the new resource.
pub async fn check(
    access: &Access,
    tx: &mut Tx,
    kind: Write,
    res_type: &str,
    id: Option<&str>,
    body: Option<&Value>,
) -> Result<()> {
    if let Some(id) = id {
        access.note(res_type, id);
        // What is there already must be within the scopes that allow changing it.
        let need = match kind {
            Write::Update | Write::Patch => Some(super::write_scope::Need::Update),
            Write::Delete => Some(super::write_scope::Need::Delete),
            Write::Create => None,
        };
        if let Some(need) = need {
            super::write_scope::check(access, tx, need, res_type, id).await?;
        }
    }
    if res_type == "AuditEvent" && kind != Write::Create && access.actor().is_some() {
        // An update of an id that does not exist yet creates (other systems send their
        // own AuditEvents that way); one that exists may never change.
        let exists = match id {
            Some(i) => crate::store::resources::current(tx, res_type, i).await?.is_some(),
            None => true,
        };
        if exists || kind != Write::Update {
            return Err(Error::MethodNotAllowed(
                super::text(access.lang, "audit-immutable").to_string(),
            ));
        }
    }
    if !access.is_patient_facing() {
        return Ok(());
    }
    let own = access.own_patient().unwrap_or_default().to_string();
    let stored = match id {
        Some(id) => stored_visible(access, tx, res_type, id).await?,
        None => None,
    };
    let exists = stored.is_some();
    match (res_type, kind) {
        ("Consent", Write::Create | Write::Update) => {
            let mine = body
                .and_then(|b| b["patient"]["reference"].as_str())
                .is_some_and(|r| is_ref_to(r, &own));
            // An update must not take over an id that exists outside their compartment.
            let taken = kind == Write::Update
                && !exists
                && match id {
                    Some(i) => crate::store::resources::current(tx, res_type, i).await?.is_some(),
                    None => false,
                };
            if mine && !taken {
                Ok(())
            } else {
                Err(access.forbidden("consent-own"))
            }
        }
        ("Consent", Write::Delete) if exists => Ok(()),
        ("Patient", Write::Update) if id == Some(own.as_str()) => {
            let (Some(old), Some(new)) = (stored, body) else {
                return Err(access.forbidden("patient-contact"));
            };
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    for k in ["meta", "text", "telecom", "address", "communication"] {
                        o.remove(k);
                    }
                }
                v
            };
            if strip(&old) == strip(new) {
                Ok(())
            } else {
                Err(access.forbidden("patient-contact"))
            }
        }
        ("Appointment", Write::Create) => Err(access.forbidden("appointment-create")),
        ("Appointment", Write::Update) => {
            let (Some(old), Some(new)) = (stored, body) else {
                return Err(access.forbidden("appointment"));
            };
            if appointment_transition(&old, new, &own) {
                Ok(())
            } else {
                Err(access.forbidden("appointment"))
            }
        }
        _ => Err(access.forbidden("read-only")),
    }
}

fn is_ref_to(reference: &str, patient: &str) -> bool {
    reference
        .strip_suffix(patient)
        .is_some_and(|rest| rest.ends_with("Patient/"))
}

/// Cancel, accept their own participation, or book a proposed appointment; nothing
/// else may differ from the stored version.
fn appointment_transition(old: &Value, new: &Value, own: &str) -> bool {
    let mut undone = new.clone();
    let (old_status, new_status) = (
        old["status"].as_str().unwrap_or_default(),
        new["status"].as_str().unwrap_or_default(),
    );
    let status_ok =
        new_status == old_status || new_status == "cancelled" || (old_status == "proposed" && new_status == "booked");
    if !status_ok {
        return false;
    }
    undone["status"] = old["status"].clone();
    if new_status == "cancelled" {
        match old.get("cancelationReason") {
            Some(r) => undone["cancelationReason"] = r.clone(),
            None => {
                if let Some(o) = undone.as_object_mut() {
                    o.remove("cancelationReason");
                }
            }
        }
    }
    if let (Some(np), Some(op)) = (undone["participant"].as_array_mut(), old["participant"].as_array()) {
        if np.len() != op.len() {
            return false;
        }
        for (n, o) in np.iter_mut().zip(op) {
            let theirs = n["actor"]["reference"].as_str().is_some_and(|r| is_ref_to(r, own));
            if theirs && n["status"] == "accepted" {
                n["status"] = o["status"].clone();
            }
        }
    }
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("meta");
            o.remove("text");
        }
        v
    };
    strip(&undone) == strip(old)
}

/// The stored current version when the caller may see it (R1–R3), else `None`.
async fn stored_visible(access: &Access, tx: &mut Tx, res_type: &str, id: &str) -> Result<Option<Value>> {
    let scope: AccessScope = access.match_scope();
    let mut q = SqlQuery::default();
    let t = q.text(res_type);
    let i = q.text(id);
    let mut w = vec![
        format!("r.res_type = {t}"),
        format!("r.res_id = {i}"),
        "r.deleted = FALSE".to_string(),
    ];
    w.extend(scope.condition(&mut q, "r"));
    q.sql = format!(
        "SELECT v.content FROM resources r JOIN resource_versions v ON v.pk = r.pk AND v.version = r.version WHERE {}",
        w.join(" AND ")
    );
    let rows = fetch(tx, &q, &[Kind::Bytes]).await?;
    Ok(rows.into_iter().next().and_then(|mut r| match r.pop() {
        Some(Cell::Bytes(Some(c))) => serde_json::from_slice(&c).ok(),
        _ => None,
    }))
}
