//! Storing a chunk of checked units: new resources with bulk inserts, resources whose
//! ids exist already as new versions, the import's AuditEvents and its progress, all in
//! one transaction. A chunk the database refuses is retried one unit at a time, so one
//! bad unit is reported instead of failing its neighbours.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::check::{Checked, Ready};
use super::source::{Source, Unit, reject};
use super::{Chunk, Importer, Reject, progress};
use crate::audit::{NotesInner, Record};
use crate::auth::principal::Actor;
use crate::error::{Error, Result};
use crate::policy::Access;
use crate::service::bundle::{self, Prefer};
use crate::service::write::{self, NewResource};
use crate::state::AppState;
use crate::store::sql::{Kind, SqlQuery, fetch};
use crate::store::{StoreError, Tx};

/// Stores a chunk; returns how many resources were stored and the units refused.
pub async fn chunk(
    state: &AppState,
    source: &Source,
    chunk: Chunk,
    resume: bool,
    who: &Importer,
) -> Result<(u64, Vec<Reject>)> {
    let mut stored = 0u64;
    let mut rejected = Vec::new();
    // Consecutive ready units go together; a Bundle for the full processor runs alone
    // (it opens its own transaction).
    let mut run: Vec<(Unit, Vec<Ready>)> = Vec::new();
    for (unit, checked) in chunk.items {
        match checked {
            Err((what, why)) => rejected.push(reject(source, &unit.at, what, why)),
            Ok(Checked::Ready(r)) => run.push((unit, r)),
            Ok(Checked::Bundle(b)) => {
                let (n, mut r) = ready_units(state, source, std::mem::take(&mut run), resume, who).await?;
                stored += n;
                rejected.append(&mut r);
                match bundle::process(state, &Access::internal(), b.clone(), Prefer::Minimal, &|_| Ok(())).await {
                    Ok(_) => stored += b["entry"].as_array().map_or(0, |e| e.len() as u64),
                    Err(e) => rejected.push(reject(source, &unit.at, None, super::check::reason(&e))),
                }
                if resume {
                    let mut tx = state.store().begin_write().await?;
                    progress::advance(&mut tx, source, unit.seq + 1, 0, 0, state.now()).await?;
                    tx.commit().await?;
                }
            }
        }
    }
    let (n, mut r) = ready_units(state, source, run, resume, who).await?;
    Ok((stored + n, {
        rejected.append(&mut r);
        rejected
    }))
}

/// Stores consecutive ready units in one transaction, or one by one if the database
/// refuses it, so that the unit it refuses is reported and the others kept.
async fn ready_units(
    state: &AppState,
    source: &Source,
    run: Vec<(Unit, Vec<Ready>)>,
    resume: bool,
    who: &Importer,
) -> Result<(u64, Vec<Reject>)> {
    let Some(last) = run.last().map(|(u, _)| u.seq) else {
        return Ok((0, Vec::new()));
    };
    let all: Vec<&Ready> = run.iter().flat_map(|(_, r)| r.iter()).collect();
    match store(state, source, &all, Some(last).filter(|_| resume), who).await {
        Ok(n) => {
            super::workers::dispose(run);
            return Ok((n, Vec::new()));
        }
        Err(e) if fatal(&e) => return Err(e),
        Err(_) => {}
    }
    let mut stored = 0;
    let mut rejected = Vec::new();
    for (unit, ready) in &run {
        let refs: Vec<&Ready> = ready.iter().collect();
        match store(state, source, &refs, Some(unit.seq).filter(|_| resume), who).await {
            Ok(n) => stored += n,
            Err(e) if fatal(&e) => return Err(e),
            Err(e) => {
                rejected.push(reject(source, &unit.at, None, super::check::reason(&e)));
                if resume {
                    let mut tx = state.store().begin_write().await?;
                    progress::advance(&mut tx, source, unit.seq + 1, 0, 1, state.now()).await?;
                    tx.commit().await?;
                }
            }
        }
    }
    Ok((stored, rejected))
}

/// Errors that stop the import (the database is unreachable, the server is broken),
/// as opposed to a unit the database or a rule refuses.
pub(super) fn fatal(e: &Error) -> bool {
    match e {
        Error::Store(StoreError::Database(sqlx::Error::Database(_))) => false,
        Error::Store(_) | Error::Internal(_) => true,
        _ => false,
    }
}

/// One transaction: creates, updates of existing ids, AuditEvents, progress.
async fn store(
    state: &AppState,
    source: &Source,
    items: &[&Ready],
    done_through: Option<u64>,
    who: &Importer,
) -> Result<u64> {
    let mut tx = state.store().begin_write().await?;
    write_all(state, &mut tx, items, who).await?;
    if let Some(seq) = done_through {
        progress::advance(&mut tx, source, seq + 1, items.len() as u64, 0, state.now()).await?;
    }
    tx.commit().await?;
    Ok(items.len() as u64)
}

/// Whole files in one transaction, each marked finished in it (group.rs).
pub(super) async fn files(
    state: &AppState,
    files: &[(&Source, Vec<&Ready>)],
    resume: bool,
    who: &Importer,
) -> Result<u64> {
    let all: Vec<&Ready> = files.iter().flat_map(|(_, r)| r.iter().copied()).collect();
    let mut tx = state.store().begin_write().await?;
    write_all(state, &mut tx, &all, who).await?;
    if resume {
        for (s, r) in files {
            progress::finish_in(&mut tx, s, r.len() as u64, state.now()).await?;
        }
    }
    tx.commit().await?;
    Ok(all.len() as u64)
}

/// Creates, updates of existing ids and the AuditEvents, in `tx`.
async fn write_all(state: &AppState, tx: &mut Tx, items: &[&Ready], who: &Importer) -> Result<()> {
    let existing = existing(tx, items).await?;
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let (mut posts, mut puts, mut updates): (Vec<&NewResource>, Vec<&NewResource>, Vec<&NewResource>) =
        (Vec::new(), Vec::new(), Vec::new());
    for r in items {
        let key = (r.new.res_type.as_str(), r.new.id.as_str());
        // A second occurrence of an id in the same chunk is a new version of the first.
        if existing.contains(&(key.0.to_string(), key.1.to_string())) || !seen.insert(key) {
            updates.push(&r.new);
        } else if r.keyed {
            puts.push(&r.new);
        } else {
            posts.push(&r.new);
        }
    }
    write::create_many(state, tx, &posts, "POST").await?;
    write::create_many(state, tx, &puts, "PUT").await?;
    for n in &updates {
        let Value::Object(map) = n.stamped.clone() else {
            continue;
        };
        write::update_checked(state, tx, &n.res_type, &n.id, map, None, "PUT").await?;
    }
    let events = audit_events(state, items, who)?;
    write::create_many(state, tx, &events.iter().collect::<Vec<_>>(), "POST").await?;
    Ok(())
}

/// Which of the keyed items exist already.
async fn existing(tx: &mut Tx, items: &[&Ready]) -> Result<HashSet<(String, String)>> {
    let keyed: Vec<&NewResource> = items.iter().filter(|r| r.keyed).map(|r| &r.new).collect();
    let mut out = HashSet::new();
    for part in keyed.chunks(400) {
        let mut q = SqlQuery::default();
        let ors: Vec<String> = part
            .iter()
            .map(|n| format!("(res_type = {} AND res_id = {})", q.text(&n.res_type), q.text(&n.id)))
            .collect();
        q.sql = format!("SELECT res_type, res_id FROM resources WHERE {}", ors.join(" OR "));
        for row in fetch(tx, &q, &[Kind::Text, Kind::Text]).await? {
            if let (Some(t), Some(id)) = (row[0].text(), row[1].text()) {
                out.insert((t.to_string(), id.to_string()));
            }
        }
    }
    Ok(out)
}

/// One AuditEvent per patient whose record received resources (R5: the patient sees
/// who wrote to their record), naming up to [`crate::audit::MAX_ENTITIES`] of them.
fn audit_events(state: &AppState, items: &[&Ready], who: &Importer) -> Result<Vec<NewResource>> {
    let mut by_patient: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for r in items {
        for p in &r.new.derived.compartment {
            let list = by_patient.entry(p.as_str()).or_default();
            if list.len() < crate::audit::MAX_ENTITIES {
                list.push((r.new.res_type.clone(), r.new.id.clone()));
            }
        }
    }
    let now = state.now();
    let mut patients: Vec<_> = by_patient.into_iter().collect();
    patients.sort_unstable_by(|a, b| a.0.cmp(b.0));
    patients
        .into_iter()
        .map(|(patient, resources)| {
            let record = Record {
                recorded: now,
                interaction: "$import".to_string(),
                action: "C",
                status: 200,
                actor: Some(Actor::System),
                client_id: who.client_id.clone(),
                fhir_user: None,
                remote_addr: who.remote_addr,
                path: who.path.clone(),
                notes: NotesInner {
                    resources,
                    ..NotesInner::default()
                },
            };
            let Value::Object(map) = record.to_fhir(state.base_url(), &[patient.to_string()], None) else {
                return Err(Error::Internal("an AuditEvent is a JSON object".into()));
            };
            NewResource::prepare("AuditEvent", map, None, now)
        })
        .collect()
}
