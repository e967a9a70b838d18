//! From the audit log to stored AuditEvents.
//!
//! The group commit makes each audit record durable as one narrow `audit_log` row
//! before its response leaves; building the AuditEvent's search index (some twenty
//! rows in seven tables) on that path was most of the cost of an audited read. The
//! projector stores logged events as ordinary AuditEvent resources in batches and
//! deletes their rows: on PostgreSQL in the same transaction; on SQLite, whose log is
//! a file of its own, afterwards, skipping events whose id is already stored, so an
//! event is stored once whatever stops between the two. Anything that can read AuditEvents first projects every row
//! logged before it ([`flush`]): searches, reads and `$everything` see each answered
//! request's AuditEvent, as if it had been stored on the request path.
//!
//! Several processes on one PostgreSQL project the same log: each takes rows with
//! `FOR UPDATE SKIP LOCKED`, and a flush waits for rows another process holds.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Mutex, Notify, watch};

use crate::error::{Error, Result};
use crate::service::write::{self, NewResource};
use crate::state::AppState;
use crate::store::sql::{Cell, Kind, SqlQuery, fetch, fetch_i64};
use crate::store::{Backend, Tx};

/// Rows projected per transaction: large enough to share each index page write among
/// many events. With the log in the database (PostgreSQL, and SQLite until it had a
/// file of its own) a transaction also kept the group commit, and so the answers
/// waiting on it, from the log for as long as it ran: measured with audited reads on
/// SQLite then (benches/README.md), 32 → 2,150 reads/s, p99 40 ms; 64 → 2,780–2,970,
/// p99 40–45 ms; 256 → 2,650–2,930, p99 74–80 ms. With the log apart, SQLite's
/// projector takes 256, which sustained 4,470–4,490 reads/s over 30 s against 3,580
/// with 64 (p99 29–31 ms against 24; 512: 4,730, p99 38).
const BATCH: i64 = 64;
const SQLITE_BATCH: i64 = 256;

/// Bytes of logged events per transaction, whichever of this and the batch comes
/// first. A search's event names every resource it returned (a page with includes:
/// ~100 entities, ~150 index rows, 27 KB), so a batch of them would hold the
/// database's writer for tens of milliseconds. 96 KB still takes 64 events of single
/// reads (~1.4 KB each). At 1 M resources on SQLite it lowered the p99 of searches in
/// eight A/B runs of nine, the median unchanged (benches/README.md).
const BUDGET: usize = 96 * 1024;
const SQLITE_BUDGET: usize = 384 * 1024;

/// The most rows and bytes one projecting transaction takes on `backend`.
fn batch_of(backend: Backend) -> (i64, usize) {
    match backend {
        Backend::Sqlite => (SQLITE_BATCH, SQLITE_BUDGET),
        Backend::Postgres => (BATCH, BUDGET),
    }
}

/// How long the background projector lets logged rows gather before it projects them.
const GATHER: Duration = Duration::from_millis(100);

/// How long a flush waits for rows another process is projecting.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Rows this process may have logged ahead of its projector before the group commit
/// waits for it ([`Projector::keep_up`]): about half a second of projection.
///
/// Once the log no longer shares SQLite's writer with the projector, answers came
/// faster than the projector, which gets a task's share of the CPU among hundreds of
/// request tasks, could store their events: over 60 s of audited reads the log grew
/// by ~270,000 rows, 41 s of projection after the load stopped, and every reader of
/// AuditEvents (a patient asking who read their record) waits for all of it. Held to
/// this, answers come at the rate the projector keeps up with (benches/README.md).
const AHEAD_LIMIT: i64 = 4096;

/// The longest the group commit waits for the projector at a time: a projector that
/// keeps failing (a full disk) slows answers down but does not stop them.
const MAX_HOLD: Duration = Duration::from_secs(1);

/// The projector's state in one process (part of [`super::Auditor`]).
#[derive(Default)]
pub struct Projector {
    /// One projecting transaction at a time in this process (flushes and the background
    /// projector): on SQLite more would only queue on the write lock.
    turn: Mutex<()>,
    /// The background projector's second transaction on PostgreSQL ([`spawn`]).
    second: Mutex<()>,
    /// Rung by the group commit after each logged batch.
    wake: Notify,
    projected: AtomicU64,
    /// Rows logged by this process less rows projected by it: an estimate of the
    /// backlog that costs no query (rows of other processes are theirs to project; it
    /// never goes below zero when this one projects theirs).
    ahead: AtomicI64,
    /// Rung after each projecting transaction.
    progressed: Notify,
    /// A background projector runs in this process ([`spawn`]): only then is it worth
    /// waiting for.
    running: AtomicBool,
}

impl Projector {
    pub fn logged(&self, rows: usize) {
        self.ahead
            .fetch_add(i64::try_from(rows).unwrap_or(i64::MAX), Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn unlogged(&self, rows: usize) {
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        let _ = self.ahead.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(rows).max(0))
        });
        self.progressed.notify_waiters();
    }

    /// Waits while this process's log is more than [`AHEAD_LIMIT`] rows ahead of its
    /// projector (at most [`MAX_HOLD`]): called by the group commit before each batch,
    /// so that under a sustained load answers slow down to what the projector keeps up
    /// with instead of the log growing without end.
    pub async fn keep_up(&self) {
        if !self.running.load(Ordering::Relaxed) {
            return;
        }
        let deadline = tokio::time::Instant::now() + MAX_HOLD;
        loop {
            // Registered before the check, so a transaction ending in between is seen.
            let progressed = self.progressed.notified();
            if self.ahead.load(Ordering::Relaxed) <= AHEAD_LIMIT {
                return;
            }
            if tokio::time::timeout_at(deadline, progressed).await.is_err() {
                return;
            }
        }
    }

    /// AuditEvents this process stored from the log.
    pub fn projected(&self) -> u64 {
        self.projected.load(Ordering::Relaxed)
    }
}

/// What one projecting transaction did.
struct Projected {
    /// Events this transaction stored.
    stored: usize,
    /// The log held a whole batch (its rows or its bytes, [`batch_of`]) when read: more
    /// may be waiting.
    full: bool,
}

/// Stores the oldest logged events (a batch at most, [`batch_of`], counting bytes
/// after the first) as AuditEvents and removes their rows.
///
/// On SQLite the events are read and prepared (JSON, search index rows) before the
/// write transaction, so the database's one writer is held only for the inserts; on
/// PostgreSQL, which has no single writer, in the transaction that claims them
/// ([`claim_and_store`]).
async fn project_batch(state: &AppState) -> Result<Projected> {
    if !state.store().log_is_separate() {
        return claim_and_store(state).await;
    }
    match ready_batch(state, None).await? {
        Some(ready) => store_ready(state, ready).await,
        None => Ok(Projected { stored: 0, full: false }),
    }
}

/// Logged events read from the log's own file and prepared, not stored yet (SQLite).
struct Ready {
    events: Vec<(i64, NewResource)>,
    /// The log held a whole batch when read ([`Projected::full`]).
    full: bool,
    /// The newest row taken: the next batch starts after it.
    last: i64,
}

/// The oldest logged events after row `after` (all when `None`), a batch at most,
/// read and prepared (SQLite: the log is a file of its own).
async fn ready_batch(state: &AppState, after: Option<i64>) -> Result<Option<Ready>> {
    let (full, logged) = {
        let mut conn = state.store().log_reader().await?;
        let Some((seqs, full)) = take(&mut conn, Backend::Sqlite, after, "").await? else {
            return Ok(None);
        };
        let (first, last) = (seqs.first().copied(), seqs.last().copied());
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(None);
        };
        let mut q = SqlQuery::default();
        q.sql = format!(
            "SELECT seq, event FROM audit_log WHERE seq BETWEEN {} AND {} ORDER BY seq",
            q.int(first),
            q.int(last)
        );
        (full, fetch(&mut conn, &q, &[Kind::I64, Kind::Bytes]).await?)
    };
    let Some(last) = logged.last().and_then(|r| r[0].i64()) else {
        return Ok(None);
    };
    let events = prepared(logged, state.now()).await?;
    Ok(Some(Ready { events, full, last }))
}

/// Stores a prepared batch on the database's writer, then removes its rows from the log.
async fn store_ready(state: &AppState, ready: Ready) -> Result<Projected> {
    let Ready { events, full, .. } = ready;
    let work = move |state: AppState| async move { store_then_unlog(&state, &events).await };
    let (stored, unlogged) = state.on_writer(work).await?;
    Ok(counted(state, stored, unlogged, full))
}

/// SQLite, while whole batches wait: the next batch is read and prepared (CPU on the
/// blocking pool, a read of the log) while the database's writer stores the current
/// one, so that a batch costs the longer of the two instead of both. Under sustained
/// audited reads the projector sets the pace of answers ([`AHEAD_LIMIT`]) and, run one
/// step after the other, left a sixth of the machine idle (benches/README.md).
///
/// Each round holds the turn, so flushes come between rounds; a flush that stores
/// the batch prepared ahead leaves it nothing to store (ids already stored are
/// skipped) and nothing to remove. Runs until a batch is not whole (or the projector
/// stops), so what it returns is never `full`.
async fn project_pipelined(
    state: &AppState,
    projector: &Projector,
    stopped: &watch::Receiver<bool>,
) -> Result<Projected> {
    let mut stored = 0;
    let mut ready = {
        let _turn = projector.turn.lock().await;
        ready_batch(state, None).await?
    };
    while let Some(batch) = ready.take() {
        if *stopped.borrow() {
            break;
        }
        let turn = projector.turn.lock().await;
        let (full, last) = (batch.full, batch.last);
        let next = async {
            if full {
                ready_batch(state, Some(last)).await
            } else {
                Ok(None)
            }
        };
        let (done, next) = tokio::join!(store_ready(state, batch), next);
        stored += done?.stored;
        ready = next?;
        drop(turn);
        // The group commit takes the writer between batches.
        tokio::task::yield_now().await;
    }
    Ok(Projected { stored, full: false })
}

/// The rows one projecting transaction takes: the oldest of the log, at most a batch
/// ([`batch_of`]) and, after the first, its byte budget, after row `after` if given;
/// `lock` is appended to the statement that finds them. Sizes are read first, so that only the events taken are.
/// Returns their sequence numbers and whether the batch was whole ([`whole_batch`]).
async fn take(conn: &mut Tx, backend: Backend, after: Option<i64>, lock: &str) -> Result<Option<(Vec<i64>, bool)>> {
    let (batch, budget) = batch_of(backend);
    let mut q = SqlQuery::default();
    let after = after.map_or_else(String::new, |seq| format!(" WHERE seq > {}", q.int(seq)));
    q.sql = format!(
        "SELECT seq, CAST(LENGTH(event) AS BIGINT) FROM audit_log{after} ORDER BY seq LIMIT {}{lock}",
        q.int(batch)
    );
    let sizes: Vec<(i64, i64)> = fetch(conn, &q, &[Kind::I64, Kind::I64])
        .await?
        .iter()
        .filter_map(|r| Some((r[0].i64()?, r[1].i64()?)))
        .collect();
    let Some(last) = last_within_budget(sizes.iter().copied(), budget) else {
        return Ok(None);
    };
    let full = whole_batch(batch, sizes.len(), sizes.last().map(|&(seq, _)| seq), last);
    let seqs = sizes
        .iter()
        .map(|&(seq, _)| seq)
        .take_while(|seq| *seq <= last)
        .collect();
    Ok(Some((seqs, full)))
}

/// [`prepare`] on the blocking pool: milliseconds of CPU for a batch of searches'
/// events (each names ~100 resources), which on one of the runtime's threads held it,
/// and the requests queued on it, for the whole batch.
async fn prepared(logged: Vec<Vec<Cell>>, now: i64) -> Result<Vec<(i64, NewResource)>> {
    tokio::task::spawn_blocking(move || prepare(&logged, now))
        .await
        .map_err(|e| Error::Internal(format!("audit projection: {e}")))?
}

fn counted(state: &AppState, stored: usize, unlogged: usize, full: bool) -> Projected {
    let projector = state.auditor().projector();
    projector.projected.fetch_add(stored as u64, Ordering::Relaxed);
    projector.unlogged(unlogged);
    Projected { stored, full }
}

/// Logged rows (`seq`, event) as AuditEvents ready to store: parsed, stamped, indexed.
fn prepare(logged: &[Vec<Cell>], now: i64) -> Result<Vec<(i64, NewResource)>> {
    let mut events = Vec::with_capacity(logged.len());
    for row in logged {
        let (Some(seq), Cell::Bytes(Some(b))) = (row[0].i64(), &row[1]) else {
            return Err(Error::Internal("audit log row without event".into()));
        };
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(b) else {
            return Err(Error::Internal(format!("audit log row {seq} is not an AuditEvent")));
        };
        let id = map.get("id").and_then(Value::as_str).map(str::to_string);
        events.push((seq, NewResource::prepare("AuditEvent", map, id, now)?));
    }
    Ok(events)
}

/// The log in the database (PostgreSQL): the oldest rows no other transaction holds
/// are claimed (`FOR UPDATE SKIP LOCKED`), stored as AuditEvents and deleted in one
/// transaction. Claimed first, so that several projecting transactions (of this
/// process, [`spawn`], or of others on the database) each take rows of their own
/// instead of preparing the same events for all but one to drop.
async fn claim_and_store(state: &AppState) -> Result<Projected> {
    let mut tx = state.store().begin_write().await?;
    let Some((seqs, full)) = take(&mut tx, Backend::Postgres, None, " FOR UPDATE SKIP LOCKED").await? else {
        return Ok(Projected { stored: 0, full: false });
    };
    let mut q = SqlQuery::default();
    let listed = q.pk_in(Backend::Postgres, "seq", &seqs);
    q.sql = format!("DELETE FROM audit_log WHERE {listed} RETURNING seq, event");
    let mut logged = fetch(&mut tx, &q, &[Kind::I64, Kind::Bytes]).await?;
    // Stored in the order they were logged (`RETURNING` promises none).
    logged.sort_by_key(|r| r[0].i64());
    let events = prepared(logged, state.now()).await?;
    let new = not_stored(&mut tx, events.iter().map(|(_, e)| e).collect()).await?;
    write::create_many(state, &mut tx, &new, "POST").await?;
    tx.commit().await?;
    Ok(counted(state, new.len(), events.len(), full))
}

/// The log in a file of its own (SQLite): the events are stored in one transaction of
/// the database, then their rows deleted in one of the log. Each event keeps the id it
/// was logged with and ids already stored are skipped, so a crash between the two
/// commits, or another process (a second server on the file) that read the same rows,
/// stores nothing twice.
async fn store_then_unlog(state: &AppState, events: &[(i64, NewResource)]) -> Result<(usize, usize)> {
    let mut tx = state.store().begin_write().await?;
    let new = not_stored(&mut tx, events.iter().map(|(_, e)| e).collect()).await?;
    write::create_many(state, &mut tx, &new, "POST").await?;
    tx.commit().await?;
    let mut log = state.store().begin_log_write().await?;
    let mut q = SqlQuery::default();
    let seqs: Vec<String> = events.iter().map(|(seq, _)| q.int(*seq)).collect();
    // Counted as removed only if still there: a flush may have stored a batch the
    // pipelined projector prepared ahead ([`project_pipelined`]).
    q.sql = format!("DELETE FROM audit_log WHERE seq IN ({}) RETURNING seq", seqs.join(", "));
    let removed = fetch(&mut log, &q, &[Kind::I64]).await?.len();
    log.commit().await?;
    Ok((new.len(), removed))
}

/// The events whose id is not stored yet, each id once. An id is there already when a
/// projection on SQLite stopped between its two commits, or when old rows were moved
/// twice (`store::legacy_log`); otherwise ids are new (`group_commit`), so this costs
/// one indexed query a batch.
async fn not_stored<'a>(tx: &mut Tx, events: Vec<&'a NewResource>) -> Result<Vec<&'a NewResource>> {
    let mut q = SqlQuery::default();
    let ids: Vec<String> = events.iter().map(|e| q.text(&e.id)).collect();
    q.sql = format!(
        "SELECT res_id FROM resources WHERE res_type = 'AuditEvent' AND res_id IN ({})",
        ids.join(", ")
    );
    let mut seen: HashSet<String> = fetch(tx, &q, &[Kind::Text])
        .await?
        .iter()
        .filter_map(|r| r[0].text().map(str::to_string))
        .collect();
    Ok(events.into_iter().filter(|e| seen.insert(e.id.clone())).collect())
}

/// Whether a batch of at most `batch` rows that read `read` rows (the newest
/// `newest_read`) and takes them up to `last_taken` was a whole one: all its rows, or
/// cut short by its bytes.
fn whole_batch(batch: i64, read: usize, newest_read: Option<i64>, last_taken: i64) -> bool {
    i64::try_from(read).is_ok_and(|n| n >= batch) || newest_read != Some(last_taken)
}

/// The last of `(seq, bytes)` (oldest first) that fits in `budget` counting from the
/// first, which is always taken however large.
fn last_within_budget(sizes: impl Iterator<Item = (i64, i64)>, budget: usize) -> Option<i64> {
    let mut total = 0usize;
    let mut last = None;
    for (seq, len) in sizes {
        total += usize::try_from(len).unwrap_or(0);
        if last.is_some() && total > budget {
            break;
        }
        last = Some(seq);
    }
    last
}

/// Projects every event logged before this call (by any process) and returns once
/// they are stored AuditEvents.
///
/// Whoever has the turn projects everything logged so far, not only what its caller
/// needs: concurrent readers queued behind it then find their rows stored and return
/// without a write transaction of their own (one projection serves them all).
pub async fn flush(state: &AppState) -> Result<()> {
    let Some(upto) = last_logged(state, None).await? else {
        return Ok(());
    };
    let deadline = tokio::time::Instant::now() + FLUSH_TIMEOUT;
    // Never dropped half-way: requests run to their end even when their client leaves
    // (http/complete.rs). A projection dropped mid-commit would be stored without being
    // counted (seen: `carnet_audit_projected_total` 25 short after a load run).
    loop {
        let n = {
            let projector = state.auditor().projector();
            let _turn = projector.turn.lock().await;
            if last_logged(state, Some(upto)).await?.is_none() {
                return Ok(());
            }
            project_batch(state).await?.stored
        };
        if n == 0 {
            // What remains is being stored by another process (PostgreSQL), and is
            // there when its transaction commits.
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Internal("audit log: rows held by another process".into()));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Rows of the log not yet stored as AuditEvents, by any process (`/metrics`).
pub async fn backlog(state: &AppState) -> Result<i64> {
    let mut conn = state.store().log_reader().await?;
    let q = SqlQuery {
        sql: "SELECT COUNT(*) FROM audit_log".into(),
        ..Default::default()
    };
    Ok(fetch_i64(&mut conn, &q).await?)
}

/// The newest logged row (at or below `upto`), if any.
async fn last_logged(state: &AppState, upto: Option<i64>) -> Result<Option<i64>> {
    let mut conn = state.store().log_reader().await?;
    let mut q = SqlQuery::default();
    let bound = upto.map_or_else(String::new, |m| format!(" WHERE seq <= {}", q.int(m)));
    q.sql = format!("SELECT MAX(seq) FROM audit_log{bound}");
    let rows = fetch(&mut conn, &q, &[Kind::I64]).await?;
    Ok(rows.first().and_then(|r| r[0].i64()))
}

/// This process's background projector.
pub struct Handle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops the background task, then stores what is still logged, so that a server
    /// stopped gracefully leaves no row behind.
    pub async fn stop(self, state: &AppState) {
        state.auditor().projector().running.store(false, Ordering::Relaxed);
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if let Err(e) = flush(state).await {
            tracing::warn!(error = %e, "audit log: not all events projected at shutdown");
        }
    }
}

/// Starts projecting in the background: after each logged batch, and every second
/// for rows other processes logged (or left behind when they were killed).
pub fn spawn(state: AppState) -> Handle {
    let (stop, mut stopped) = watch::channel(false);
    state.auditor().projector().running.store(true, Ordering::Relaxed);
    let task = tokio::spawn(async move {
        let projector = state.auditor().projector();
        loop {
            tokio::select! {
                () = projector.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopped.changed() => return,
            }
            // Let a batch gather: per event, one transaction of hundreds writes far
            // fewer index pages than many of a few (readers flush, so never wait on it).
            tokio::select! {
                () = tokio::time::sleep(GATHER) => {}
                _ = stopped.changed() => return,
            }
            // Whole batches were waiting at the last round: on SQLite the next is read
            // while one is stored, on PostgreSQL two are stored at once.
            let mut backlog = false;
            loop {
                if *stopped.borrow() {
                    return;
                }
                let done = match (backlog, state.store().log_is_separate()) {
                    (true, true) => project_pipelined(&state, &projector, &stopped).await,
                    (true, false) => project_two(&state, &projector).await,
                    (false, _) => {
                        let _turn = projector.turn.lock().await;
                        project_batch(&state).await
                    }
                };
                match done {
                    // While whole batches wait, go on, letting the group commit take the
                    // writer between. What is left is stored after the next gathering:
                    // projecting each few stragglers at once cost a transaction's fixed
                    // part (~5 ms of SQLite's writer under load) for a handful of events.
                    Ok(p) if p.full => {
                        backlog = true;
                        tokio::task::yield_now().await;
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "audit log: projection failed, retrying");
                        break;
                    }
                }
            }
        }
    });
    Handle { stop, task }
}

/// Two projecting transactions at once (PostgreSQL, on rows each claimed): one batch is
/// a chain of round trips in which Carnet and PostgreSQL wait on each other, and under
/// audited reads the machine had CPU to spare. Only while whole batches wait: a second
/// transaction for the stragglers of the first paid a commit for a few events (the
/// search mix at a million resources lost a third; benches/README.md). Full only if
/// both were.
async fn project_two(state: &AppState, projector: &Projector) -> Result<Projected> {
    let (a, b) = tokio::join!(
        async {
            let _turn = projector.turn.lock().await;
            project_batch(state).await
        },
        async {
            let _turn = projector.second.lock().await;
            project_batch(state).await
        }
    );
    let (a, b) = (a?, b?);
    Ok(Projected {
        stored: a.stored + b.stored,
        full: a.full && b.full,
    })
}

/// Whether a request may read AuditEvents, so must [`flush`] first. Errs on the side
/// of flushing: system-level requests, searches by POST (their parameters are in the
/// body), wildcards (`_include=*`, `Patient/1/*`), `$export`, and anything naming
/// AuditEvent.
pub fn may_read_audit_events(method: &str, path: &str, query: &str) -> bool {
    if !matches!(method, "GET" | "HEAD" | "POST") {
        return false;
    }
    let below = path
        .trim_end_matches('/')
        .split_once("/fhir")
        .map_or(path, |(_, rest)| rest)
        .trim_start_matches('/');
    let names = |s: &str| s.contains("AuditEvent") || s.contains('*') || s.contains("%2A") || s.contains("%2a");
    // `$everything` leaves AuditEvents out unless `_type` names them (search::everything).
    if names(below) || names(query) || below.contains("$export") {
        return true;
    }
    match method {
        // A batch or transaction Bundle checks its GET entries itself (service::bundle).
        "POST" => below.ends_with("_search"),
        _ => below.is_empty() || below.starts_with('_'),
    }
}

#[cfg(test)]
mod tests {
    use super::last_within_budget;
    use super::may_read_audit_events as may;

    #[test]
    fn a_batch_stops_at_the_budget_but_always_takes_the_first_event() {
        let kb = 1024;
        let budget = super::BUDGET;
        assert_eq!(
            last_within_budget([(1, 40 * kb), (2, 40 * kb), (3, 40 * kb)].into_iter(), budget),
            Some(2)
        );
        assert_eq!(last_within_budget([(7, 200 * kb), (8, 1)].into_iter(), budget), Some(7));
        assert_eq!(last_within_budget((1..=64).map(|s| (s, 1400)), budget), Some(64));
        assert_eq!(last_within_budget(std::iter::empty(), budget), None);
        // SQLite's larger batch still takes 256 single reads' events.
        assert_eq!(
            last_within_budget((1..=256).map(|s| (s, 1400)), super::SQLITE_BUDGET),
            Some(256)
        );
    }

    #[test]
    fn only_whole_batches_keep_the_projector_going() {
        use super::whole_batch;
        assert!(whole_batch(64, 64, Some(64), 64), "a full batch of rows");
        assert!(whole_batch(64, 10, Some(10), 7), "cut short by the byte budget");
        assert!(!whole_batch(64, 10, Some(10), 10), "the log emptied: stragglers wait");
        assert!(
            !whole_batch(256, 64, Some(64), 64),
            "64 rows are not SQLite's whole batch"
        );
    }

    /// The group commit's hold: none while the log is at most `AHEAD_LIMIT` rows
    /// ahead or no projector runs; otherwise until projections bring it back.
    #[tokio::test]
    async fn the_group_commit_waits_only_while_the_log_is_too_far_ahead() {
        use super::{AHEAD_LIMIT, Projector};
        use std::sync::Arc;
        use std::sync::atomic::Ordering;
        use std::time::Duration;
        let limit = usize::try_from(AHEAD_LIMIT).unwrap_or(usize::MAX);
        let p = Arc::new(Projector::default());
        p.logged(limit + 100);
        let quick = tokio::time::timeout(Duration::from_millis(50), p.keep_up()).await;
        assert!(quick.is_ok(), "no projector runs: no hold");
        p.running.store(true, Ordering::Relaxed);
        let held = tokio::time::timeout(Duration::from_millis(50), p.keep_up()).await;
        assert!(held.is_err(), "100 rows over the limit: held");
        let waiting = tokio::spawn({
            let p = p.clone();
            async move { p.keep_up().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        p.unlogged(100);
        let released = tokio::time::timeout(Duration::from_millis(500), waiting).await;
        assert!(released.is_ok(), "back at the limit: released");
        p.unlogged(limit * 2);
        assert_eq!(p.ahead.load(Ordering::Relaxed), 0, "never below zero");
    }

    #[test]
    fn requests_that_may_read_audit_events() {
        assert!(may("GET", "/fhir/AuditEvent", "patient=Patient/1"));
        assert!(may("GET", "/fhir/AuditEvent/abc", ""));
        assert!(may("GET", "/fhir", "_type=Patient"));
        assert!(may("GET", "/fhir/_history", ""));
        assert!(may("GET", "/fhir/Patient/1/*", ""));
        assert!(may("GET", "/fhir/Patient", "_revinclude=AuditEvent:patient"));
        assert!(may("GET", "/fhir/Observation", "_include=%2A"));
        assert!(may("GET", "/fhir/Patient/1/$everything", "_type=AuditEvent"));
        assert!(!may("GET", "/fhir/Patient/1/$everything", ""));
        assert!(may("GET", "/fhir/$export", ""));
        assert!(may("POST", "/fhir/Observation/_search", ""));
        assert!(!may("GET", "/fhir/Patient/1", ""));
        assert!(!may("GET", "/fhir/Observation", "code=1234-5"));
        assert!(!may("POST", "/fhir/Observation", ""));
        assert!(!may("POST", "/fhir", ""));
        assert!(!may("DELETE", "/fhir/AuditEvent/1", ""));
    }
}
