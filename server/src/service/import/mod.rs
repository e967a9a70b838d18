//! Bulk import: NDJSON files and Bundles into the store, fast, resumable, and with
//! every refusal reported where it is (file and line, or Bundle entry).
//!
//! A reader thread cuts the input into units ([`source`]) and checks them on every
//! core ([`check`]); the async side stores each chunk of checked units in one
//! transaction with bulk inserts ([`store`]), together with the import's progress, so
//! an interrupted import resumes after the last committed chunk and never stores a unit
//! twice. Units whose ids already exist are updated (a new version), as a PUT would.
//! Imports are audited: one AuditEvent per patient whose record received resources, in
//! the transaction that stored them (policy R5).

mod check;
mod group;
mod progress;
pub mod source;
mod store;
mod workers;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use self::source::{Source, SourceKind, Unit};
use self::workers::{CheckedUnits, check_all};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::deferred_indexes;

#[derive(Debug, Clone)]
pub struct Options {
    /// Import files again even when an earlier import finished them.
    pub force: bool,
    /// Remember progress (files only), so that the same files resume where they stopped.
    pub resume: bool,
    /// Units per store transaction.
    pub chunk: usize,
    /// Threads checking units (0: one per core).
    pub threads: usize,
    /// Whether the search index's indexes are built at the end instead of as it goes.
    pub indexes: IndexBuild,
}

/// When a file import builds the search index's indexes ([`crate::store::deferred_indexes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IndexBuild {
    /// At the end when the input is large and at least as large as what is stored.
    #[default]
    Auto,
    /// At the end.
    AtEnd,
    /// As it goes (what a server answering searches during the import needs).
    AsItGoes,
}

/// Input from which [`IndexBuild::Auto`] builds at the end (smaller imports gain
/// little), if the database holds fewer resources than the input's size in KiB
/// (Synthea-style resources take ~1 KiB): building at the end sorts the stored
/// rows too, which costs more than it saves when they outnumber the new ones.
const AT_END_FROM_BYTES: u64 = 32 << 20;

impl Options {
    fn checking_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            force: false,
            resume: true,
            chunk: 1000,
            threads: 0,
            indexes: IndexBuild::Auto,
        }
    }
}

/// Resources after which an import refreshes the planners' statistics.
const ANALYZE_AFTER: u64 = 10_000;

/// Who imports, for the AuditEvents.
#[derive(Debug, Clone)]
pub struct Importer {
    pub client_id: String,
    pub remote_addr: Option<IpAddr>,
    /// The interaction's path (`/fhir/$import`, or `carnet import` on the command line).
    pub path: String,
}

/// A unit that was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub source: String,
    /// `line 12`, `Bundle.entry[3]`, `document`.
    pub at: String,
    /// `Patient/12` when known.
    pub what: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.what {
            Some(w) => write!(f, "{}: {}: {w}: {}", self.source, self.at, self.reason),
            None => write!(f, "{}: {}: {}", self.source, self.at, self.reason),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Resources stored (created or updated).
    pub resources: u64,
    pub rejected: Vec<Reject>,
    /// Files an earlier import already finished (not read again without `force`).
    pub skipped: Vec<String>,
}

/// Where an import stands, for progress displays.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub resources: u64,
    pub rejected: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Indexes being built after the resources were stored (0 while storing).
    pub building_indexes: usize,
}

/// One import under way: what every step needs, and what it has done so far.
struct Job<'a> {
    state: &'a AppState,
    opts: &'a Options,
    who: &'a Importer,
    progress: Progress,
    report: Report,
    on_progress: OnProgress<'a>,
}

impl Job<'_> {
    fn show_progress(&self) {
        (self.on_progress)(&self.progress);
    }

    /// Counts resources stored and refused.
    fn stored(&mut self, resources: u64, rejected: Vec<Reject>) {
        self.progress.resources += resources;
        self.progress.rejected += rejected.len() as u64;
        self.report.resources += resources;
        self.report.rejected.extend(rejected);
    }
}

/// An error for the person at the terminal.
pub fn describe(e: &Error) -> String {
    check::reason(e)
}

pub type OnProgress<'a> = &'a (dyn Fn(&Progress) + Send + Sync);

/// Imports files and folders (`*.ndjson`, `*.json`).
pub async fn import_files(
    state: &AppState,
    paths: &[PathBuf],
    opts: &Options,
    who: &Importer,
    on_progress: OnProgress<'_>,
) -> Result<Report> {
    bulk_load(state, import_files_in_bulk(state, paths, opts, who, on_progress)).await
}

/// Runs an import with the store in bulk-load mode, and leaves that mode whatever the
/// import's outcome.
async fn bulk_load(state: &AppState, import: impl Future<Output = Result<Report>>) -> Result<Report> {
    state.store().bulk_load(true).await?;
    let report = import.await;
    let restored = state.store().bulk_load(false).await;
    let report = report?;
    restored?;
    Ok(report)
}

async fn import_files_in_bulk(
    state: &AppState,
    paths: &[PathBuf],
    opts: &Options,
    who: &Importer,
    on_progress: OnProgress<'_>,
) -> Result<Report> {
    let files = source::discover(paths).map_err(|e| Error::invalid("not-found", e.to_string()))?;
    let mut sources = Vec::with_capacity(files.len());
    for f in &files {
        sources.push(Source::file(f).map_err(|e| Error::invalid("not-found", e.to_string()))?);
    }
    let mut job = Job {
        state,
        opts,
        who,
        progress: Progress {
            bytes_total: sources.iter().map(|s| s.bytes).sum(),
            ..Progress::default()
        },
        report: Report::default(),
        on_progress,
    };
    // Files an earlier import finished are not read again; the others resume where
    // they stopped.
    let mut todo = Vec::with_capacity(sources.len());
    for s in sources {
        let done = if opts.resume && !opts.force {
            progress::get(state, &s.key).await?
        } else {
            None
        };
        match done {
            Some(p) if p.finished => {
                job.progress.bytes_done += s.bytes;
                job.report.skipped.push(s.name.clone());
            }
            Some(p) => todo.push((s, p.done_units)),
            None => todo.push((s, 0)),
        }
    }
    let bytes = todo.iter().map(|(s, _)| s.bytes).sum();
    if build_at_end(state, opts.indexes, bytes).await? {
        let dropped = deferred_indexes::defer(state.store()).await?;
        tracing::info!(
            indexes = dropped,
            "import: search indexes dropped, to be built at the end"
        );
    }
    // Each phase's time in the log: what an operator tunes an import by.
    let started = std::time::Instant::now();
    let stored = store_files(&mut job, todo).await;
    tracing::info!(
        resources = job.report.resources,
        seconds = started.elapsed().as_secs_f64(),
        "import: resources stored"
    );
    // Built whatever the outcome: what was stored is searched the same way. Indexes an
    // earlier, interrupted import left to build are built here too.
    job.progress.building_indexes = deferred_indexes::pending(state.store()).await?;
    if job.progress.building_indexes > 0 {
        let started = std::time::Instant::now();
        job.show_progress();
        let built = deferred_indexes::build(state.store()).await?;
        job.progress.building_indexes = 0;
        tracing::info!(
            indexes = built,
            seconds = started.elapsed().as_secs_f64(),
            "import: search indexes built"
        );
    }
    stored?;
    if job.report.resources >= ANALYZE_AFTER {
        let started = std::time::Instant::now();
        state.store().analyze().await?;
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "import: statistics refreshed"
        );
    }
    Ok(job.report)
}

async fn build_at_end(state: &AppState, choice: IndexBuild, bytes: u64) -> Result<bool> {
    Ok(match choice {
        IndexBuild::AtEnd => true,
        IndexBuild::AsItGoes => false,
        IndexBuild::Auto if bytes < AT_END_FROM_BYTES => false,
        IndexBuild::Auto => {
            let mut tx = state.store().reader().await?;
            let stored = crate::store::resources::count(&mut tx).await?;
            (bytes / 1024) as i64 >= stored
        }
    })
}

/// Stores the sources in order (each after the units an earlier import stored of it),
/// consecutive small files in groups.
async fn store_files(job: &mut Job<'_>, sources: Vec<(Source, u64)>) -> Result<()> {
    // Consecutive small JSON files waiting to be stored together (group.rs), and the
    // groups on their way to the database.
    let mut pending: Vec<Source> = Vec::new();
    let mut groups = group::Pipeline::default();
    for (s, skip) in sources {
        if skip == 0 && group::fits(&s) {
            pending.push(s);
            if group::full(&pending) {
                groups.push(job, std::mem::take(&mut pending)).await?;
            }
            continue;
        }
        // Files are stored in order: the groups before this file first.
        groups.push(job, std::mem::take(&mut pending)).await?;
        groups.drain(job).await?;
        run(job, Input::File(s), skip).await?;
    }
    groups.push(job, pending).await?;
    groups.drain(job).await
}

/// Imports an NDJSON stream (the `$import` operation's body), read as it arrives:
/// no size limit, no resume (the stream is not kept).
pub async fn import_ndjson(
    state: &AppState,
    read: Box<dyn std::io::Read + Send>,
    length: Option<u64>,
    who: &Importer,
) -> Result<Report> {
    let source = Source::stream("request body", length);
    let opts = Options {
        resume: false,
        ..Options::default()
    };
    let mut job = Job {
        state,
        opts: &opts,
        who,
        progress: Progress {
            bytes_total: source.bytes,
            ..Progress::default()
        },
        report: Report::default(),
        on_progress: &|_| {},
    };
    bulk_load(state, async {
        run(&mut job, Input::Reader(source, read), 0).await?;
        Ok(job.report)
    })
    .await
}

enum Input {
    File(Source),
    Reader(Source, Box<dyn std::io::Read + Send>),
}

/// Checked units of one source, in order.
struct Chunk {
    items: CheckedUnits,
    /// Bytes of the source read up to the end of the chunk.
    offset: u64,
}

async fn run(job: &mut Job<'_>, input: Input, skip: u64) -> Result<()> {
    let source = match &input {
        Input::File(s) | Input::Reader(s, _) => s.clone(),
    };
    let (tx, mut rx) = mpsc::channel::<std::result::Result<Chunk, String>>(2);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (state, opts, stop) = (job.state.clone(), job.opts.clone(), stop.clone());
        std::thread::spawn(move || read_and_check(&state, input, skip, &opts, &stop, &tx))
    };
    let base = job.progress.bytes_done;
    let mut result = Ok(());
    while let Some(chunk) = rx.recv().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                result = Err(Error::invalid("exception", format!("{}: {e}", source.name)));
                break;
            }
        };
        let offset = chunk.offset;
        let started = std::time::Instant::now();
        let stored = store::chunk(job.state, &source, chunk, job.opts.resume, job.who).await;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "import: chunk stored"
        );
        match stored {
            Ok((stored, rejected)) => job.stored(stored, rejected),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        job.progress.bytes_done = base + offset;
        job.show_progress();
    }
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    let _ = reader.join();
    result?;
    job.progress.bytes_done = base + source.bytes;
    job.show_progress();
    if job.opts.resume {
        progress::finish(job.state, &source).await?;
    }
    Ok(())
}

/// The reader thread: units of the source, checked in parallel a chunk at a time.
fn read_and_check(
    state: &AppState,
    input: Input,
    skip: u64,
    opts: &Options,
    stop: &AtomicBool,
    out: &mpsc::Sender<std::result::Result<Chunk, String>>,
) {
    let threads = opts.checking_threads();
    let chunk_units = opts.chunk.max(1);
    let mut pending: Vec<Unit> = Vec::with_capacity(chunk_units);
    let flush = |pending: &mut Vec<Unit>| -> bool {
        if pending.is_empty() {
            return true;
        }
        let units = std::mem::take(pending);
        let offset = units.last().map_or(0, |u| u.offset);
        let started = std::time::Instant::now();
        let chunk =
            check_all(units, state.now(), &state.config().profiles, threads).map(|items| Chunk { items, offset });
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "import: chunk checked"
        );
        let failed = chunk.is_err();
        !stop.load(Ordering::Relaxed) && out.blocking_send(chunk).is_ok() && !failed
    };
    let mut on_unit = |u: Unit| -> bool {
        if u.seq < skip {
            return true;
        }
        pending.push(u);
        pending.len() < chunk_units || flush(&mut pending)
    };
    let read = match input {
        Input::Reader(_, read) => source::ndjson_units(read, &mut on_unit),
        Input::File(s) => match (&s.path, s.kind) {
            (Some(p), SourceKind::Ndjson) => std::fs::File::open(p).and_then(|f| source::ndjson_units(f, &mut on_unit)),
            (Some(p), SourceKind::Json) => std::fs::read(p).map(|bytes| {
                let doc = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"));
                for u in source::json_units(doc, bytes.len() as u64) {
                    if !on_unit(u) {
                        break;
                    }
                }
            }),
            (None, _) => Ok(()),
        },
    };
    match read {
        Ok(()) => {
            flush(&mut pending);
        }
        Err(e) => {
            let _ = out.blocking_send(Err(e.to_string()));
        }
    }
}
