//! The export worker: one task per process (started with the server, stopped on
//! shutdown) that claims queued jobs and runs them a part at a time.
//!
//! Claiming is a lease in the job's row: PostgreSQL picks a job with `FOR UPDATE SKIP
//! LOCKED` so concurrent processes never take the same one; SQLite has one writer. Each
//! part is stored in one transaction with the job's new cursor and a renewed lease,
//! guarded by `lease_owner = me`: a job that was cancelled (row gone) or taken over
//! (lease expired, another owner) stops its old worker at its next part, and a crashed
//! worker's job is resumed from its last committed part once the lease runs out. A
//! worker stopped by a graceful shutdown hands its job back at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Level;
use super::page::{Page, Spec};
use crate::auth::i18n::Lang;
use crate::error::{Error, Result};
use crate::policy::Access;
use crate::state::AppState;
use crate::store::sql::{Bind, Kind, SqlQuery, execute, fetch};

/// How often an idle worker looks for jobs queued by other processes.
const POLL: Duration = Duration::from_millis(500);
/// Failures of one job (database errors) before it is marked failed.
const MAX_ATTEMPTS: i64 = 5;
/// How often an idle worker looks for jobs past their retention (µs).
const EXPIRE_EVERY_MICROS: i64 = 60_000_000;
/// A job that failed waits this long before a worker tries it again (µs).
const RETRY_MICROS: i64 = 2_000_000;

/// The running worker; [`WorkerHandle::stop`] ends it.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops the worker after its current part; its job goes back to the queue.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts this process's worker, unless the configuration says it runs none.
pub fn spawn(state: AppState) -> Option<WorkerHandle> {
    if !state.config().export.worker {
        return None;
    }
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(run(state, rx));
    Some(WorkerHandle { stop, task })
}

async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let owner = uuid::Uuid::new_v4().to_string();
    let mut expired_at = i64::MIN;
    loop {
        if *stop.borrow() {
            return;
        }
        match claim(&state, &owner).await {
            Ok(Some(job)) => {
                let id = job.id.clone();
                match run_job(&state, &owner, job, &stop).await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(job = %id, error = %e, "export job failed");
                        if let Err(e2) = failed(&state, &owner, &id, &e).await {
                            tracing::warn!(job = %id, error = %e2, "export job: cannot record the failure");
                        }
                    }
                }
                continue;
            }
            Ok(None) if state.now().saturating_sub(expired_at) >= EXPIRE_EVERY_MICROS => {
                expired_at = state.now();
                if let Err(e) = expire(&state).await {
                    tracing::warn!(error = %e, "export worker: cannot delete expired jobs");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "export worker: cannot claim a job"),
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = super::wake().notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// A claimed job, as stored.
struct Job {
    id: String,
    client_id: String,
    scopes: String,
    level: Level,
    types: Vec<String>,
    filters: BTreeMap<String, Vec<String>>,
    since: Option<i64>,
    max_pk: i64,
    type_index: usize,
    cursor_pk: i64,
    parts: i64,
    request: String,
}

/// Takes the oldest queued job whose lease is free or ran out.
async fn claim(state: &AppState, owner: &str) -> Result<Option<Job>> {
    let now = state.now();
    let lease = now.saturating_add(state.config().export.lease_micros);
    let mut tx = state.store().begin_write().await?;
    let lock = match tx.backend() {
        crate::store::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        crate::store::Backend::Sqlite => "",
    };
    let mut q = SqlQuery::default();
    let o = q.text(owner);
    let until = q.int(lease);
    let n = q.int(now);
    q.sql = format!(
        "UPDATE export_jobs SET lease_owner = {o}, lease_until = {until}, updated_at = {n} WHERE id = \
         (SELECT id FROM export_jobs WHERE state = 'queued' AND (lease_until IS NULL OR lease_until < {n}) \
         ORDER BY created_at LIMIT 1{lock}) \
         RETURNING id, client_id, scopes, level, types, type_filters, since, max_pk, type_index, cursor_pk, parts, \
         request"
    );
    let rows = fetch(
        &mut tx,
        &q,
        &[
            Kind::Text,
            Kind::Text,
            Kind::Text,
            Kind::Text,
            Kind::Text,
            Kind::Text,
            Kind::I64,
            Kind::I64,
            Kind::I64,
            Kind::I64,
            Kind::I64,
            Kind::Text,
        ],
    )
    .await?;
    tx.commit().await?;
    let Some(r) = rows.into_iter().next() else {
        return Ok(None);
    };
    let text = |i: usize| r[i].text().unwrap_or("").to_string();
    let corrupt = |e: serde_json::Error| crate::store::StoreError::Corrupt(format!("export job: {e}"));
    Ok(Some(Job {
        id: text(0),
        client_id: text(1),
        scopes: text(2),
        level: Level::parse(&text(3)),
        types: serde_json::from_str(&text(4)).map_err(corrupt)?,
        filters: serde_json::from_str(&text(5)).map_err(corrupt)?,
        since: r[6].i64(),
        max_pk: r[7].i64().unwrap_or(0),
        type_index: usize::try_from(r[8].i64().unwrap_or(0)).unwrap_or(0),
        cursor_pk: r[9].i64().unwrap_or(0),
        parts: r[10].i64().unwrap_or(0),
        request: text(11),
    }))
}

async fn run_job(state: &AppState, owner: &str, job: Job, stop: &watch::Receiver<bool>) -> Result<()> {
    // The kick-off's client with the kick-off's scopes, under today's policy: a refusal
    // recorded while the job runs applies to the parts read after it.
    let principal = Arc::new(super::job_principal(&job.client_id, &job.scopes));
    let access = Access::for_principal(state, principal, Lang::En, None).await?;
    let scope = access.scope();
    let part_size = state.config().export.part_size.max(1);
    let mut type_index = job.type_index;
    let mut cursor = job.cursor_pk;
    let mut parts = job.parts;
    let mut page: Option<(usize, Page)> = None;
    let mut prefetched: Option<Vec<(i64, Vec<u8>)>> = None;
    while let Some(res_type) = job.types.get(type_index) {
        if *stop.borrow() {
            release(state, owner, &job.id).await?;
            return Ok(());
        }
        if page.as_ref().is_none_or(|(i, _)| *i != type_index) {
            let spec = Spec {
                res_type,
                level: job.level,
                job_id: &job.id,
                since: job.since,
                max_pk: job.max_pk,
                filters: job.filters.get(res_type).map_or(&[][..], Vec::as_slice),
            };
            page = Some((type_index, Page::build(state, &scope, &spec)?));
        }
        let Some((_, p)) = &page else { continue };
        let rows = match prefetched.take() {
            Some(rows) => rows,
            None => read(state, p, cursor, part_size).await?,
        };
        let next = match rows.last() {
            Some((pk, _)) if rows.len() == part_size => (type_index, *pk),
            _ => (type_index + 1, 0),
        };
        let count = rows.len();
        let store = store_part(state, owner, &job, res_type, parts, next, rows);
        let kept = if next.0 == type_index {
            // Keyset pages: the next page's cursor is known, so it is read while this
            // one is written (a reader and the writer side by side).
            let (kept, rows) = tokio::join!(store, read(state, p, next.1, part_size));
            let kept = kept?;
            if kept {
                prefetched = Some(rows?);
            }
            kept
        } else {
            store.await?
        };
        if !kept {
            // Cancelled, or another worker holds the job now: its parts are not ours.
            return Ok(());
        }
        parts += i64::from(count > 0);
        (type_index, cursor) = next;
    }
    audit(state, &job).await?;
    let mut tx = state.store().begin_write().await?;
    execute(
        &mut tx,
        "UPDATE export_jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = $3 \
         WHERE id = $1 AND lease_owner = $2",
        &[
            Bind::Text(Some(job.id.clone())),
            Bind::Text(Some(owner.to_string())),
            Bind::I64(Some(state.now())),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// R5: one AuditEvent for the finished job (subtype `$export`, the client, the kick-off
/// URL as its query), written before the job is marked done. A Group export names its
/// members (at most `audit::MAX_ENTITIES`), so they find it in their trail; system and
/// Patient level exports name no patient (see docs/bulk.md).
async fn audit(state: &AppState, job: &Job) -> Result<()> {
    let principal = super::job_principal(&job.client_id, &job.scopes);
    let mut notes = crate::audit::NotesInner {
        query: Some(job.request.clone()),
        ..Default::default()
    };
    if job.level == Level::Group {
        let mut q = SqlQuery::default();
        let jid = q.text(&job.id);
        let lim = q.int(i64::try_from(crate::audit::MAX_ENTITIES).unwrap_or(100));
        q.sql = format!("SELECT patient_id FROM export_patients WHERE job_id = {jid} ORDER BY patient_id LIMIT {lim}");
        let mut conn = state.store().reader().await?;
        for r in fetch(&mut conn, &q, &[Kind::Text]).await? {
            if let Some(p) = r[0].text() {
                notes.resources.push(("Patient".to_string(), p.to_string()));
            }
        }
    }
    let record = crate::audit::Record::new(
        state,
        &principal,
        &axum::http::Method::GET,
        "/$export",
        axum::http::StatusCode::OK,
        notes,
    );
    state.auditor().submit(state, record).await
}

async fn read(state: &AppState, page: &Page, after_pk: i64, limit: usize) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut conn = state.store().reader().await?;
    page.fetch(&mut conn, after_pk, limit).await
}

/// Stores one part (none when `rows` is empty) with the job's new cursor `next` and a
/// renewed lease, in one transaction guarded by the lease: false when the job is no
/// longer this worker's (cancelled or taken over), and nothing was written.
async fn store_part(
    state: &AppState,
    owner: &str,
    job: &Job,
    res_type: &str,
    n: i64,
    next: (usize, i64),
    rows: Vec<(i64, Vec<u8>)>,
) -> Result<bool> {
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let mut blob = Vec::with_capacity(rows.iter().map(|(_, c)| c.len() + 1).sum());
    for (_, content) in rows {
        blob.extend_from_slice(&content);
        blob.push(b'\n');
    }
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let mut q = SqlQuery::default();
    let (ti, cp, ex, np) = (
        q.int(i64::try_from(next.0).unwrap_or(i64::MAX)),
        q.int(next.1),
        q.int(count),
        q.int(n + i64::from(count > 0)),
    );
    let (lu, up, jid, me) = (
        q.int(now.saturating_add(state.config().export.lease_micros)),
        q.int(now),
        q.text(&job.id),
        q.text(owner),
    );
    q.sql = format!(
        "UPDATE export_jobs SET type_index = {ti}, cursor_pk = {cp}, exported = exported + {ex}, parts = {np}, \
         lease_until = {lu}, updated_at = {up} WHERE id = {jid} AND lease_owner = {me} RETURNING id"
    );
    if fetch(&mut tx, &q, &[Kind::Text]).await?.is_empty() {
        return Ok(false);
    }
    if count > 0 {
        execute(
            &mut tx,
            "INSERT INTO export_files (job_id, n, res_type, count, content) VALUES ($1, $2, $3, $4, $5)",
            &[
                Bind::Text(Some(job.id.clone())),
                Bind::I64(Some(n)),
                Bind::Text(Some(res_type.to_string())),
                Bind::I64(Some(count)),
                Bind::Bytes(Some(blob)),
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Deletes finished and failed jobs older than the retention, with their files (any
/// process may do it: the deletes are idempotent).
async fn expire(state: &AppState) -> Result<()> {
    let cut = state.now().saturating_sub(state.config().export.retention_micros);
    let b = [Bind::I64(Some(cut))];
    let old = "SELECT id FROM export_jobs WHERE state <> 'queued' AND updated_at < $1";
    // Looked for on a reader first: most of the time there is nothing to delete, and
    // SQLite's write lock is not worth taking for nothing.
    let mut conn = state.store().reader().await?;
    let q = SqlQuery {
        sql: format!("{old} LIMIT 1"),
        binds: b.to_vec(),
    };
    if fetch(&mut conn, &q, &[Kind::Text]).await?.is_empty() {
        return Ok(());
    }
    drop(conn);
    let mut tx = state.store().begin_write().await?;
    execute(
        &mut tx,
        &format!("DELETE FROM export_files WHERE job_id IN ({old})"),
        &b,
    )
    .await?;
    execute(
        &mut tx,
        &format!("DELETE FROM export_patients WHERE job_id IN ({old})"),
        &b,
    )
    .await?;
    execute(
        &mut tx,
        "DELETE FROM export_jobs WHERE state <> 'queued' AND updated_at < $1",
        &b,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Hands a job back to the queue (graceful shutdown): any process may resume it now.
async fn release(state: &AppState, owner: &str, id: &str) -> Result<()> {
    let mut tx = state.store().begin_write().await?;
    execute(
        &mut tx,
        "UPDATE export_jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
        &[Bind::Text(Some(id.to_string())), Bind::Text(Some(owner.to_string()))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records a failure: database errors are retried a few times (after a pause), other
/// errors (a filter the current scopes no longer allow…) fail the job at once.
async fn failed(state: &AppState, owner: &str, id: &str, e: &Error) -> Result<()> {
    let retry = matches!(e, Error::Store(_));
    let message = match e {
        Error::Store(_) | Error::Internal(_) => "The export failed on a server error".to_string(),
        other => other
            .issues()
            .iter()
            .map(|i| i.diagnostics.clone())
            .collect::<Vec<_>>()
            .join("; "),
    };
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    execute(
        &mut tx,
        "UPDATE export_jobs SET attempts = attempts + 1, lease_owner = NULL, lease_until = $3, \
         state = CASE WHEN $4 = 0 OR attempts + 1 >= $5 THEN 'failed' ELSE state END, error = $6, updated_at = $7 \
         WHERE id = $1 AND lease_owner = $2",
        &[
            Bind::Text(Some(id.to_string())),
            Bind::Text(Some(owner.to_string())),
            Bind::I64(Some(now.saturating_add(RETRY_MICROS))),
            Bind::I64(Some(i64::from(retry))),
            Bind::I64(Some(MAX_ATTEMPTS)),
            Bind::Text(Some(message)),
            Bind::I64(Some(now)),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
