//! Group commit: requests hand their records to one writer task per process, which
//! writes everything queued in one database transaction and then wakes the waiters.
//! A record is acknowledged only after its commit, so several processes on one
//! PostgreSQL need no shared memory; a crash loses only records whose requests have
//! not been answered yet.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::Record;
use super::projection::Projector;
use crate::auth::principal::Actor;
use crate::error::{Error, Result};
use crate::service::{ids, read};
use crate::state::AppState;
use crate::store::bulk::{self, ColType, Rows};
use crate::store::sql::{Bind, BindArray, Kind, SqlQuery, fetch};
use crate::store::{Backend, Tx};

/// Most records in one transaction: bounds the latency a batch adds to its last member.
const MAX_BATCH: usize = 512;

struct Job {
    record: Record,
    done: oneshot::Sender<Result<(), Failed>>,
}

/// Why a batch was not logged, as each of its requests hears it ([`Error`] is not
/// `Clone`): a database that cannot be reached stays a 503 for every one of them.
#[derive(Clone)]
struct Failed {
    message: String,
    unreachable: bool,
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        let unreachable = matches!(&e, Error::Store(s) if s.is_unreachable());
        Failed {
            message: e.to_string(),
            unreachable,
        }
    }
}

impl From<Failed> for Error {
    fn from(f: Failed) -> Error {
        if f.unreachable {
            Error::Unavailable(f.message)
        } else {
            Error::Internal(f.message)
        }
    }
}

#[derive(Default)]
pub struct Auditor {
    queue: OnceLock<mpsc::UnboundedSender<Job>>,
    /// Shared with the writer task (spawned `'static`, so it cannot borrow `self`).
    counts: Arc<Counts>,
    projector: Arc<Projector>,
    /// Practitioner–patient pairs whose prior access (R4) this process has committed.
    /// The fact is kept once, with its first time, so saying it again changes nothing;
    /// on SQLite it is a transaction on the database's writer, which each batch of
    /// practitioner reads would otherwise wait for behind the projector.
    known_prior: Mutex<HashSet<(String, String)>>,
}

/// Pairs remembered before [`Auditor::known_prior`] starts over (a few MB at most).
const KNOWN_PRIOR_MAX: usize = 100_000;

/// What `/metrics` shows of the audit trail.
#[derive(Default)]
struct Counts {
    /// Records sent to the writer and not yet answered.
    queued: AtomicI64,
    records: AtomicU64,
    batches: AtomicU64,
}

impl Auditor {
    pub fn projector(&self) -> Arc<Projector> {
        self.projector.clone()
    }

    /// A batch is in the log: the projector has work.
    fn logged(&self, rows: usize) {
        self.projector.logged(rows);
    }

    /// The facts among `facts` (practitioner, patient, time) not committed yet.
    fn unknown_prior(&self, mut facts: Vec<(String, String, i64)>) -> Vec<(String, String, i64)> {
        let known = self.known_prior.lock().unwrap_or_else(PoisonError::into_inner);
        facts.retain(|(practitioner, patient, _)| !known.contains(&(practitioner.clone(), patient.clone())));
        facts
    }

    fn remember_prior(&self, pairs: impl ExactSizeIterator<Item = (String, String)>) {
        let mut known = self.known_prior.lock().unwrap_or_else(PoisonError::into_inner);
        if known.len() + pairs.len() > KNOWN_PRIOR_MAX {
            known.clear();
        }
        known.extend(pairs);
    }

    /// Records waiting for their commit (the group commit's queue depth).
    pub fn queued(&self) -> i64 {
        self.counts.queued.load(Ordering::Relaxed).max(0)
    }

    /// AuditEvents committed by this process.
    pub fn committed_records(&self) -> u64 {
        self.counts.records.load(Ordering::Relaxed)
    }

    /// Transactions of the group-commit writer that committed.
    pub fn committed_batches(&self) -> u64 {
        self.counts.batches.load(Ordering::Relaxed)
    }

    /// Returns once the record is committed.
    pub async fn submit(&self, state: &AppState, record: Record) -> Result<()> {
        self.submit_all(state, vec![record]).await
    }

    /// Returns once all the records are committed (they may span batches).
    pub async fn submit_all(&self, state: &AppState, records: Vec<Record>) -> Result<()> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(writer(state.clone(), rx, self.counts.clone()));
            tx
        });
        let mut waits = Vec::with_capacity(records.len());
        for record in records {
            let (done, wait) = oneshot::channel();
            self.counts.queued.fetch_add(1, Ordering::Relaxed);
            if queue.send(Job { record, done }).is_err() {
                self.counts.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(Error::Internal("audit writer stopped".into()));
            }
            waits.push(wait);
        }
        for wait in waits {
            match wait.await {
                Ok(Ok(())) => {}
                Ok(Err(failed)) => return Err(failed.into()),
                Err(_) => return Err(Error::Internal("audit writer stopped".into())),
            }
        }
        Ok(())
    }
}

async fn writer(state: AppState, mut rx: mpsc::UnboundedReceiver<Job>, counts: Arc<Counts>) {
    while let Some(first) = rx.recv().await {
        // Answers wait here rather than the log growing (`projection::AHEAD_LIMIT`);
        // what queues meanwhile joins this batch.
        state.auditor().projector().keep_up().await;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let records: Vec<&Record> = batch.iter().map(|j| &j.record).collect();
        let result = write_batch(&state, &records).await.map_err(Failed::from);
        if result.is_err() && batch.len() > 1 {
            // One record the database refuses must not cost the others their answer.
            for j in batch {
                let one = write_batch(&state, &[&j.record]).await.map_err(Failed::from);
                answer(&counts, vec![j], one);
            }
            continue;
        }
        answer(&counts, batch, result);
    }
}

/// Wakes the requests of one committed (or failed) transaction, and counts it.
fn answer(counts: &Counts, jobs: Vec<Job>, result: Result<(), Failed>) {
    let n = jobs.len() as u64;
    if result.is_ok() {
        counts.batches.fetch_add(1, Ordering::Relaxed);
        counts.records.fetch_add(n, Ordering::Relaxed);
    }
    counts.queued.fetch_sub(n as i64, Ordering::Relaxed);
    for j in jobs {
        let _ = j.done.send(result.clone());
    }
}

/// Logs the AuditEvents of a batch in one transaction (and, for allowed reads by
/// practitioners, the R4 prior-access facts they establish). Everything that needs no
/// write lock (who the touched records belong to, the events' JSON) is done first, so
/// the log's writer is held only for the inserts: one narrow `audit_log` row per
/// event; its search index is built later by the projector ([`super::projection`]).
/// On SQLite the log is a file of its own ([`crate::store::audit_log_path`]), whose
/// writer the projector's transactions never hold.
pub async fn write_batch(state: &AppState, records: &[&Record]) -> Result<()> {
    let owners = {
        let mut conn = state.store().lookup().await?;
        let owners = owners_of(&mut conn, records).await?;
        let names = practitioner_names(&mut conn, records).await?;
        (owners, names)
    };
    let (owners, names) = owners;
    let mut events = Rows::new("audit_log", LOG_COLUMNS);
    let mut facts = Vec::new();
    for r in records {
        let patients = patients_of(r, &owners);
        let display = match &r.actor {
            Some(Actor::Practitioner { id, .. }) => names.get(id.as_str()).map(String::as_str),
            _ => None,
        };
        let mut event = r.to_fhir(state.base_url(), &patients, display);
        // Named now, so that the projector can tell an event it already stored
        // (the log and the AuditEvents are two databases on SQLite).
        event["id"] = Value::String(ids::new_id());
        let event = serde_json::to_vec(&event).map_err(|e| Error::Internal(format!("audit record: {e}")))?;
        events.push([Bind::Bytes(Some(event))]);
        if let Some(Actor::Practitioner { id, .. }) = &r.actor
            && r.succeeded()
            && r.action == "R"
        {
            facts.extend(patients.iter().map(|p| (id.clone(), p.clone(), r.recorded)));
        }
    }
    let facts = state.auditor().unknown_prior(facts);
    let mut prior = Rows::new("prior_access", PRIOR_COLUMNS);
    for (practitioner, patient, at) in &facts {
        prior.push([
            Bind::Text(Some(practitioner.clone())),
            Bind::Text(Some(patient.clone())),
            Bind::I64(Some(*at)),
        ]);
    }
    const PRIOR_ONCE: &str = "ON CONFLICT (practitioner_id, patient_id) DO NOTHING";
    let mut log = state.store().begin_log_write().await?;
    bulk::insert(&mut log, &events, "").await?;
    if state.store().log_is_separate() {
        // The log first: a crash between the commits leaves unanswered requests whose
        // reads no one received, so without the access they would have established.
        log.commit().await?;
        if !prior.is_empty() {
            let mut tx = state.store().begin_write().await?;
            bulk::insert(&mut tx, &prior, PRIOR_ONCE).await?;
            tx.commit().await?;
        }
    } else {
        bulk::insert(&mut log, &prior, PRIOR_ONCE).await?;
        log.commit().await?;
    }
    state.auditor().remember_prior(
        facts
            .into_iter()
            .map(|(practitioner, patient, _)| (practitioner, patient)),
    );
    state.auditor().logged(records.len());
    Ok(())
}

const LOG_COLUMNS: &[(&str, ColType)] = &[("event", ColType::Bytes)];

const PRIOR_COLUMNS: &[(&str, ColType)] = &[
    ("practitioner_id", ColType::Text),
    ("patient_id", ColType::Text),
    ("first_at", ColType::I64),
];

/// Whether touching a resource of this type names the patients whose compartments
/// hold it in the request's AuditEvent. Not for AuditEvents: the trail is not the
/// record, and each read of a patient's trail would otherwise add to it.
fn names_owners(res_type: &str) -> bool {
    res_type != "AuditEvent"
}

/// Most `(type, id)` pairs looked up in one statement.
const OWNERS_PER_QUERY: usize = 400;

/// For every resource the batch's requests touched, the patients whose compartment
/// holds it: one query per few hundred resources instead of one per request.
async fn owners_of(tx: &mut Tx, records: &[&Record]) -> Result<HashMap<(String, String), Vec<String>>> {
    let mut wanted: Vec<&(String, String)> = records
        .iter()
        .flat_map(|r| r.notes.resources.iter().filter(|k| !r.notes.owners.contains_key(*k)))
        .filter(|(t, _)| names_owners(t))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out: HashMap<(String, String), Vec<String>> = HashMap::new();
    for chunk in wanted.chunks(OWNERS_PER_QUERY) {
        let mut q = SqlQuery::default();
        q.sql = match tx.backend() {
            // Two array parameters: one prepared statement whatever the batch holds, and
            // cheaper to plan than one `OR` per resource (30 resources: 0.18 ms against
            // 0.55, docs/design.md).
            Backend::Postgres => {
                let (types, ids): (Vec<_>, Vec<_>) = chunk
                    .iter()
                    .map(|(t, id)| (Some(Arc::from(t.as_str())), Some(Arc::from(id.as_str()))))
                    .unzip();
                let types = q.bind(Bind::Array(Box::new(BindArray::Text(types))));
                let ids = q.bind(Bind::Array(Box::new(BindArray::Text(ids))));
                format!(
                    "SELECT r.res_type, r.res_id, pc.patient_id FROM UNNEST({types}::text[], {ids}::text[]) w (t, i) \
                     JOIN resources r ON r.res_type = w.t AND r.res_id = w.i \
                     JOIN patient_compartment pc ON pc.pk = r.pk"
                )
            }
            Backend::Sqlite => {
                let ors: Vec<String> = chunk
                    .iter()
                    .map(|(t, id)| format!("(r.res_type = {} AND r.res_id = {})", q.text(t), q.text(id)))
                    .collect();
                format!(
                    "SELECT r.res_type, r.res_id, pc.patient_id FROM resources r \
                     JOIN patient_compartment pc ON pc.pk = r.pk WHERE {}",
                    ors.join(" OR ")
                )
            }
        };
        for row in fetch(tx, &q, &[Kind::Text, Kind::Text, Kind::Text]).await? {
            if let (Some(t), Some(id), Some(p)) = (row[0].text(), row[1].text(), row[2].text()) {
                out.entry((t.to_string(), id.to_string()))
                    .or_default()
                    .push(p.to_string());
            }
        }
    }
    Ok(out)
}

/// The patients whose records one request touched: the token's patient context, then
/// the owners of what it read or wrote.
///
/// A refused request of a caller limited to one patient's compartment names that
/// patient only: its AuditEvent is in the caller's compartment, so naming the owner of
/// what it could not see would tell the caller whose it is (R1: hidden things behave
/// as if they did not exist; found by `tests/probes.rs`). The attempt stays in the
/// trail with its path and the resources it named.
fn patients_of(r: &Record, owners: &HashMap<(String, String), Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(p) = r.actor.as_ref().and_then(Actor::context_patient) {
        out.push(p.to_string());
        if !r.succeeded() {
            return out;
        }
    }
    for key in r.notes.resources.iter().filter(|(t, _)| names_owners(t)) {
        let known = r.notes.owners.get(key).or_else(|| owners.get(key));
        for p in known.into_iter().flatten() {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
    }
    out
}

/// The names of the practitioners among the batch's callers (AuditEvent
/// `agent.who.display`, which patients read to see who looked at their record).
async fn practitioner_names(tx: &mut Tx, records: &[&Record]) -> Result<HashMap<String, String>> {
    let mut ids: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.actor {
            Some(Actor::Practitioner { id, .. }) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = HashMap::new();
    for id in ids {
        if let Some(name) = practitioner_name(tx, id).await? {
            out.insert(id.to_string(), name);
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
