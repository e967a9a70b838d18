//! SQLite's WAL copied into the database in the background.
//!
//! SQLite copies its write-ahead log into the database file (a checkpoint, with an
//! fsync) on the connection that commits, once the log passes a size: with one writer
//! connection, every write (each audited request's audit row among them) waits for
//! those copies. Measured on audited reads: the server's CPU a third idle, the disk
//! taking ~50 KB of writes a request, the writer busy with checkpoints
//! (benches/README.md). Here a connection of its own copies the log every
//! [`EVERY`], passively: it never waits for, nor holds up, readers or the writer.
//! The writer keeps a checkpoint of its own at a larger size, which then has little
//! to copy and is what lets the log start over (`store::connect`).

use std::time::Duration;

use tokio::sync::watch;

use super::{Backend, Store};

/// Often enough that the writer's own checkpoint finds little to copy; each copy that
/// finds pages ends with an fsync of the database file.
const EVERY: Duration = Duration::from_millis(50);

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

/// Starts the background checkpoints of a SQLite store (`None` on PostgreSQL, whose
/// own checkpointer process does this).
pub fn spawn(store: Store) -> Option<Handle> {
    if store.backend() != Backend::Sqlite {
        return None;
    }
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        // Said once when copies start failing and once when they work again: a cause
        // that lasts (a full disk) would otherwise log twenty lines a second.
        let mut failing = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                _ = stopped.changed() => return,
            }
            match store.checkpoint().await {
                // The writer's own checkpoints still bound the log meanwhile.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "background WAL checkpoints failing");
                }
                Err(_) => {}
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("background WAL checkpoints working again");
                }
                Ok(()) => {}
            }
        }
    });
    Some(Handle { stop, task })
}
