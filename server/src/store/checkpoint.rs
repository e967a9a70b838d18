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

use super::Store;
use super::periodic::{self, Handle};

/// Often enough that the writer's own checkpoint finds little to copy; each copy that
/// finds pages ends with an fsync of the database file.
const EVERY: Duration = Duration::from_millis(50);

/// Starts the background checkpoints of a SQLite store (`None` on PostgreSQL). While
/// they fail, the writer's own checkpoints still bound the log.
pub fn spawn(store: Store) -> Option<Handle> {
    periodic::on_sqlite(store, "background WAL checkpoints", EVERY, |s| async move {
        s.checkpoint().await
    })
}
