//! A store chore repeated in the background until stopped ([`super::checkpoint`],
//! [`super::statistics`]).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use super::{Backend, Store, StoreError};

pub struct Handle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Runs `chore` every `every`. A failure is logged once when it starts and once when
/// the chore works again: a cause that lasts (a full disk) would otherwise log a line
/// each time.
pub fn spawn<F, Fut>(what: &'static str, every: Duration, mut chore: F) -> Handle
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), StoreError>> + Send,
{
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut failing = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stopped.changed() => return,
            }
            match chore().await {
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "{what}: failing");
                }
                Err(_) => {}
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("{what}: working again");
                }
                Ok(()) => {}
            }
        }
    });
    Handle { stop, task }
}

/// [`spawn`] of a chore only SQLite needs (`None` on PostgreSQL, whose own processes,
/// the checkpointer and autovacuum, do such work).
pub fn on_sqlite<Fut>(store: Store, what: &'static str, every: Duration, chore: fn(Store) -> Fut) -> Option<Handle>
where
    Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
{
    (store.backend() == Backend::Sqlite).then(|| spawn(what, every, move || chore(store.clone())))
}
