//! SQLite connections for reads that need no snapshot across statements (a resource
//! by type and id, the owners of listed resources, a token's client), kept outside
//! sqlx's pool.
//!
//! sqlx pings each connection as it goes back to its pool: on SQLite a round trip to
//! the connection's thread, two thread switches, after every read (sqlx calls it a
//! band-aid for futures dropped mid-statement). A SQLite connection needs none: a
//! statement dropped mid-way is reset by sqlx's worker as its iterator drops, so the
//! connection holds no read transaction open, and a connection cannot be lost as a
//! network one can. These go back to their idle list as they are dropped.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connect::StatisticsChanged;

/// At most `max` connections, opened when first needed and kept idle after.
pub struct Readers {
    opts: SqliteConnectOptions,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    max: u32,
    open: AtomicU32,
    closed: AtomicBool,
    /// A connection reads the planner statistics once, when it opens: one opened before
    /// they last changed is closed instead of used.
    statistics: Arc<StatisticsChanged>,
}

struct Idle {
    conn: SqliteConnection,
    opened: Instant,
    since: Instant,
}

/// How long a connection may have been idle before it is checked (pinged) as it is
/// handed out: under load never, and a connection whose thread has stopped (sqlx
/// reports its worker crashed) is found out once the load pauses.
const IDLE_CHECK: Duration = Duration::from_secs(1);

impl Readers {
    pub fn new(opts: SqliteConnectOptions, max: u32, statistics: Arc<StatisticsChanged>) -> Arc<Readers> {
        Arc::new(Readers {
            opts,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(usize::try_from(max).unwrap_or(usize::MAX))),
            max,
            open: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            statistics,
        })
    }

    /// An idle connection, or a new one while fewer than `max` are out.
    pub async fn acquire(self: &Arc<Self>) -> Result<Reader, sqlx::Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        loop {
            let popped = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let Some(mut idle) = popped else { break };
            let stale = self.statistics.since(idle.opened.elapsed());
            if stale || (idle.since.elapsed() > IDLE_CHECK && sqlx::Connection::ping(&mut idle.conn).await.is_err()) {
                self.open.fetch_sub(1, Ordering::Relaxed);
                drop(idle.conn);
                continue;
            }
            return Ok(self.reader(idle.conn, idle.opened, permit));
        }
        let conn = self.opts.connect().await?;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(self.reader(conn, Instant::now(), permit))
    }

    fn reader(self: &Arc<Self>, conn: SqliteConnection, opened: Instant, permit: OwnedSemaphorePermit) -> Reader {
        Reader {
            conn: Some(conn),
            opened,
            home: self.clone(),
            _permit: permit,
        }
    }

    /// Open connections, idle or in use; idle ones; the most (`/metrics`).
    pub fn stats(&self) -> (u32, u32, u32) {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).len();
        (
            self.open.load(Ordering::Relaxed),
            u32::try_from(idle).unwrap_or(u32::MAX),
            self.max,
        )
    }

    /// Closes the idle connections; those in use close as they are dropped.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        let idle: Vec<Idle> = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for i in idle {
            self.open.fetch_sub(1, Ordering::Relaxed);
            let _ = sqlx::Connection::close(i.conn).await;
        }
    }
}

/// A connection out of [`Readers`]; back to its idle list when dropped.
pub struct Reader {
    conn: Option<SqliteConnection>,
    opened: Instant,
    home: Arc<Readers>,
    // Released after `drop` has put the connection back.
    _permit: OwnedSemaphorePermit,
}

impl Deref for Reader {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        // Only `drop` takes the connection out.
        #[allow(clippy::expect_used)]
        self.conn.as_ref().expect("a reader holds its connection until dropped")
    }
}

impl DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        #[allow(clippy::expect_used)]
        self.conn.as_mut().expect("a reader holds its connection until dropped")
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.home.closed.load(Ordering::Acquire) {
            self.home.open.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        self.home
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Idle {
                conn,
                opened: self.opened,
                since: Instant::now(),
            });
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;

    use sqlx::sqlite::SqliteConnectOptions;

    use super::Readers;
    use crate::store::connect::StatisticsChanged;

    /// A connection goes back idle and is handed out again; `max` bounds the open ones;
    /// a read dropped mid-way leaves no snapshot behind (a later write is seen).
    #[tokio::test]
    async fn readers_are_reused_bounded_and_see_later_writes() {
        use futures::StreamExt;
        let dir = std::env::temp_dir().join(format!("carnet-readers-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}/r.db", dir.display()))
            .unwrap()
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let mut writer = sqlx::ConnectOptions::connect(&opts).await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(&mut writer)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (1), (2), (3)")
            .execute(&mut writer)
            .await
            .unwrap();
        let readers = Readers::new(opts, 2, Arc::new(StatisticsChanged::default()));
        {
            let mut r = readers.acquire().await.unwrap();
            // A stream read in part, then dropped.
            let mut rows = sqlx::query_scalar::<_, i64>("SELECT n FROM t").fetch(&mut *r);
            assert_eq!(rows.next().await.unwrap().unwrap(), 1);
        }
        assert_eq!(readers.stats(), (1, 1, 2));
        sqlx::query("INSERT INTO t VALUES (4)")
            .execute(&mut writer)
            .await
            .unwrap();
        let mut r = readers.acquire().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *r)
            .await
            .unwrap();
        assert_eq!(n, 4, "the reused connection sees the write made after its last read");
        let _second = readers.acquire().await.unwrap();
        assert_eq!(readers.stats(), (2, 0, 2));
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), readers.acquire()).await;
        assert!(third.is_err(), "a third waits while two are out");
        drop(r);
        readers.close().await;
        assert!(readers.acquire().await.is_err(), "closed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
