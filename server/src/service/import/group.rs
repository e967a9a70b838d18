//! Many small JSON files (Synthea writes one transaction Bundle per patient) imported a
//! group at a time: read and checked together on every core (while the groups before
//! it are being stored), then written in one transaction with every file's progress row.
//! A commit, and the flush of every index page it touched, is then paid per group
//! instead of per file: with one file per transaction the import spent most of its
//! time writing the same pages again.
//!
//! A file that needs more than the fast path (a unit refused, a Bundle for the full
//! processor), or a group the database refuses, goes through the one-file path in its
//! turn, so files are still stored in name order and every refusal is reported as before.

use std::collections::VecDeque;

use super::check::{Checked, Ready};
use super::source::{self, Source, SourceKind};
use super::workers::{check_all, dispose, yield_to_the_writer};
use super::{Input, Job, run, store};
use crate::error::{Error, Result};

/// Files up to this size may join a group.
const SMALL_FILE: u64 = 4 << 20;
/// A group closes at this many bytes of files (about 4,000 Synthea resources), or at
/// this many files.
const GROUP_BYTES: u64 = 4 << 20;
const GROUP_FILES: usize = 128;

/// Whether a file, not started by an earlier import, may be stored with others.
pub fn fits(s: &Source) -> bool {
    s.kind == SourceKind::Json && s.path.is_some() && s.bytes <= SMALL_FILE
}

pub fn full(group: &[Source]) -> bool {
    group.len() >= GROUP_FILES || group.iter().map(|s| s.bytes).sum::<u64>() >= GROUP_BYTES
}

/// A group whose files are being read and checked, on a thread of its own.
struct Checking {
    group: Vec<Source>,
    checked: tokio::sync::oneshot::Receiver<Vec<Option<Vec<Ready>>>>,
}

/// Groups read and checked ahead of the one being stored: two, so that the checking
/// threads (at low priority, `workers`) always have work while the writer stores,
/// instead of idling between the end of one group's checks and the next push.
const AHEAD: usize = 2;

/// Groups on their way to the database: the next groups are read and checked while
/// the one before them is stored (the database's writer), so the two overlap.
#[derive(Default)]
pub struct Pipeline(VecDeque<Checking>);

impl Pipeline {
    /// Starts checking `group` (if it has files), then stores the oldest group if more
    /// than [`AHEAD`] are under way.
    pub async fn push(&mut self, job: &mut Job<'_>, group: Vec<Source>) -> Result<()> {
        if group.is_empty() {
            return Ok(());
        }
        let threads = job.opts.checking_threads();
        let (files, now, rules) = (group.clone(), job.state.now(), job.state.config().profiles.clone());
        let (tx, checked) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("carnet-import".into())
            .spawn(move || {
                yield_to_the_writer();
                let _ = tx.send(read_and_check(&files, now, &rules, threads));
            })
            .map_err(|e| Error::Internal(format!("import: cannot start a thread: {e}")))?;
        self.0.push_back(Checking { group, checked });
        while self.0.len() > AHEAD
            && let Some(oldest) = self.0.pop_front()
        {
            finish(job, oldest).await?;
        }
        Ok(())
    }

    /// Stores the groups still being checked, in order.
    pub async fn drain(&mut self, job: &mut Job<'_>) -> Result<()> {
        while let Some(oldest) = self.0.pop_front() {
            finish(job, oldest).await?;
        }
        Ok(())
    }
}

async fn finish(job: &mut Job<'_>, checking: Checking) -> Result<()> {
    let Checking { group, checked } = checking;
    let waiting = std::time::Instant::now();
    let checked = checked
        .await
        .map_err(|_| Error::Internal("import: a checking thread failed".into()))?;
    // Which side an import waits for: the checks (every core) or the database's writer.
    tracing::debug!(
        files = group.len(),
        waited_ms = waiting.elapsed().as_millis() as u64,
        "import: group checked"
    );
    let mut batch: Vec<(usize, Vec<Ready>)> = Vec::new();
    for (i, file) in checked.into_iter().enumerate() {
        match file {
            Some(ready) => batch.push((i, ready)),
            None => {
                flush(job, &group, std::mem::take(&mut batch)).await?;
                one_file(job, &group[i]).await?;
            }
        }
    }
    flush(job, &group, batch).await
}

/// Each file's resources when every unit of it is ready for the fast path; `None` for a
/// file that must take the one-file path.
fn read_and_check(
    files: &[Source],
    now: i64,
    rules: &crate::conformance::Rules,
    threads: usize,
) -> Vec<Option<Vec<Ready>>> {
    let mut units = Vec::new();
    let mut owner = Vec::new();
    for (i, s) in files.iter().enumerate() {
        let Some(path) = &s.path else { continue };
        let doc = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("not JSON: {e}")));
        for u in source::json_units(doc, s.bytes) {
            units.push(u);
            owner.push(i);
        }
    }
    let mut out: Vec<Option<Vec<Ready>>> = files.iter().map(|_| Some(Vec::new())).collect();
    match check_all(units, now, rules, threads) {
        Ok(checked) => {
            for ((_, c), &i) in checked.into_iter().zip(&owner) {
                match (c, &mut out[i]) {
                    (Ok(Checked::Ready(r)), Some(list)) => list.extend(r),
                    _ => out[i] = None,
                }
            }
        }
        Err(_) => out.iter_mut().for_each(|o| *o = None),
    }
    out
}

async fn flush(job: &mut Job<'_>, group: &[Source], batch: Vec<(usize, Vec<Ready>)>) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let files: Vec<(&Source, Vec<&Ready>)> = batch.iter().map(|(i, r)| (&group[*i], r.iter().collect())).collect();
    let started = std::time::Instant::now();
    let stored = store::files(job.state, &files, job.opts.resume, job.who).await;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "import: group stored"
    );
    let bytes = files.iter().map(|(s, _)| s.bytes).sum::<u64>();
    match stored {
        Ok(n) => {
            dispose(batch);
            job.stored(n, Vec::new());
            job.progress.bytes_done += bytes;
            job.show_progress();
            Ok(())
        }
        Err(e) if store::fatal(&e) => Err(e),
        // The database refused something in the group: each file on its own, where a
        // unit it refuses is reported and its neighbours kept.
        Err(_) => {
            for (i, _) in &batch {
                one_file(job, &group[*i]).await?;
            }
            Ok(())
        }
    }
}

async fn one_file(job: &mut Job<'_>, s: &Source) -> Result<()> {
    run(job, Input::File(s.clone()), 0).await
}
