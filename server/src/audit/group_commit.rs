//! Group commit: requests hand their records to one writer task per process, which
//! writes everything queued in one database transaction and then wakes the waiters.
//! A record is acknowledged only after its commit, so several processes on one
//! PostgreSQL need no shared memory; a crash loses only records whose requests have
//! not been answered yet.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::Record;
use crate::auth::principal::Actor;
use crate::error::{Error, Result};
use crate::search::sql::{Bind, Kind, SqlQuery, execute, fetch};
use crate::service::{read, write};
use crate::state::AppState;
use crate::store::Tx;

/// Most records in one transaction: bounds the latency a batch adds to its last member.
const MAX_BATCH: usize = 512;

struct Job {
    record: Record,
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Default)]
pub struct Auditor {
    queue: OnceLock<mpsc::UnboundedSender<Job>>,
}

impl Auditor {
    /// Returns once the record is committed.
    pub async fn submit(&self, state: &AppState, record: Record) -> Result<()> {
        self.submit_all(state, vec![record]).await
    }

    /// Returns once all the records are committed (they may span batches).
    pub async fn submit_all(&self, state: &AppState, records: Vec<Record>) -> Result<()> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(writer(state.clone(), rx));
            tx
        });
        let mut waits = Vec::with_capacity(records.len());
        for record in records {
            let (done, wait) = oneshot::channel();
            queue
                .send(Job { record, done })
                .map_err(|_| Error::Internal("audit writer stopped".into()))?;
            waits.push(wait);
        }
        for wait in waits {
            match wait.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::Internal(e)),
                Err(_) => return Err(Error::Internal("audit writer stopped".into())),
            }
        }
        Ok(())
    }
}

async fn writer(state: AppState, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let records: Vec<&Record> = batch.iter().map(|j| &j.record).collect();
        let result = write_batch(&state, &records).await.map_err(|e| e.to_string());
        for j in batch {
            let _ = j.done.send(result.clone());
        }
    }
}

/// Writes the AuditEvents of a batch in one transaction (and, for allowed reads by
/// practitioners, the R4 prior-access facts they establish).
pub async fn write_batch(state: &AppState, records: &[&Record]) -> Result<()> {
    let mut tx = state.store().begin_write().await?;
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    for r in records {
        let patients = patients_of(&mut tx, r).await?;
        let display = match &r.actor {
            Some(Actor::Practitioner { id, .. }) => {
                if !names.contains_key(id) {
                    let n = practitioner_name(&mut tx, id).await?;
                    names.insert(id.clone(), n);
                }
                names.get(id).cloned().flatten()
            }
            _ => None,
        };
        let ev = r.to_fhir(state.base_url(), &patients, display.as_deref());
        let Value::Object(map) = ev else { continue };
        write::create_checked(state, &mut tx, "AuditEvent", map, None).await?;
        if let Some(Actor::Practitioner { id, .. }) = &r.actor
            && r.succeeded()
            && r.action == "R"
        {
            for p in &patients {
                execute(
                    &mut tx,
                    "INSERT INTO prior_access (practitioner_id, patient_id, first_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (practitioner_id, patient_id) DO NOTHING",
                    &[
                        Bind::Text(Some(id.clone())),
                        Bind::Text(Some(p.clone())),
                        Bind::I64(Some(r.recorded)),
                    ],
                )
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The patients whose compartments hold what the request touched.
async fn patients_of(tx: &mut Tx, r: &Record) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    if let Some(p) = r.actor.as_ref().and_then(Actor::context_patient) {
        out.push(p.to_string());
    }
    let res: Vec<&(String, String)> = r.notes.resources.iter().filter(|(t, _)| t != "AuditEvent").collect();
    if !res.is_empty() {
        let mut q = SqlQuery::default();
        let ors: Vec<String> = res
            .iter()
            .map(|(t, id)| format!("(r.res_type = {} AND r.res_id = {})", q.text(t), q.text(id)))
            .collect();
        q.sql = format!(
            "SELECT DISTINCT pc.patient_id FROM resources r JOIN patient_compartment pc ON pc.pk = r.pk WHERE {}",
            ors.join(" OR ")
        );
        for row in fetch(tx, &q, &[Kind::Text]).await? {
            if let Some(p) = row.first().and_then(|c| c.text())
                && !out.iter().any(|o| o == p)
            {
                out.push(p.to_string());
            }
        }
    }
    Ok(out)
}

async fn practitioner_name(tx: &mut Tx, id: &str) -> Result<Option<String>> {
    let Ok(v) = read::read(tx, "Practitioner", id).await else {
        return Ok(None);
    };
    let Some(p) = v.content.and_then(|c| serde_json::from_slice::<Value>(&c).ok()) else {
        return Ok(None);
    };
    let name = &p["name"][0];
    if let Some(t) = name["text"].as_str() {
        return Ok(Some(t.to_string()));
    }
    let given: Vec<&str> = name["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let full = format!("{} {}", given.join(" "), name["family"].as_str().unwrap_or_default())
        .trim()
        .to_string();
    Ok((!full.is_empty()).then_some(full))
}
