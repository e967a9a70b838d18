//! SQLite's write transactions run on a thread of their own.
//!
//! A write transaction holds SQLite's one writer from `BEGIN IMMEDIATE` to its commit,
//! and after each statement the task that issues them waits to be scheduled again. On
//! the runtime's two threads it waited behind other requests' work (parsing, JSON,
//! reads): under a CRUD mix the writer was held ~1.5 ms a write. On a runtime of its
//! own, whose only tasks are write transactions (which the writer serializes anyway),
//! the next statement follows at once: held ~1.2 ms, and 7–19 % more CRUD requests a
//! second (benches/README.md, 2026-12-07, tenth session). PostgreSQL's transactions run
//! side by side on their own connections, and stay where they are.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle};

use super::{Backend, Store, StoreError};

/// One thread per process, started when first needed, for every SQLite store in it.
static WRITER: OnceLock<Result<Handle, String>> = OnceLock::new();

fn writer() -> Result<&'static Handle, StoreError> {
    WRITER
        .get_or_init(|| {
            let runtime = Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name("sqlite-writer".into())
                // The runtime lives as long as the process.
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .map_err(|e| e.to_string())?;
            Ok(handle)
        })
        .as_ref()
        .map_err(|e| StoreError::WriterThread(e.clone()))
}

impl Store {
    /// Runs `work`, a write transaction from its beginning to its commit, on SQLite's
    /// writer thread; on PostgreSQL, here. A panic in `work` is raised here again.
    pub async fn on_writer<F, T, E>(&self, work: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        if self.backend() == Backend::Postgres {
            return work.await;
        }
        match writer()?.spawn(work).await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::WriterThread(e.to_string()).into()),
        }
    }
}
