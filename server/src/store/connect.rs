use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use super::batched::SqliteTx;
use super::readers::Readers;
use super::{SqliteConn, StoreError, Tx};

/// The writer's page cache (`PRAGMA cache_size`, negative: KiB): 64 MB.
pub(super) const WRITER_CACHE: &str = "-65536";

/// Bytes of WAL file SQLite keeps once the log starts over after a checkpoint: an
/// import lets the WAL grow to ~400 MB ([`Store::bulk_load`]), and without a limit the
/// file would keep that size for good.
const WAL_LIMIT: &str = "67108864";

/// WAL pages after which the writer copies the log into the database itself (SQLite's
/// default is 1,000). In a serving process [`super::checkpoint`] copies it in the
/// background, so the writer's own checkpoint, which every write waits for, finds
/// little left to copy; it is still what lets the log start over, because only a
/// checkpoint with no write running beside it can finish (bounding the WAL at ~16 MB).
const WRITER_CHECKPOINT_PAGES: &str = "4000";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One pool's connections (`/metrics`).
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub name: &'static str,
    /// Open connections, idle or in use.
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// Connection pools. SQLite allows one writer at a time, so writes go through a
/// single-connection pool (no SQLITE_BUSY between our own writers) and reads through a
/// wider one; WAL mode lets them run side by side.
#[derive(Clone)]
pub enum Store {
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
        /// Connections for single-statement reads ([`Store::reader`], [`Store::lookup`]),
        /// outside sqlx's pool so that none is pinged after each read.
        by_key: Arc<Readers>,
        /// One connection, opened when first used, for [`super::checkpoint`].
        checkpoint: SqlitePool,
        /// The audit log's own file ([`audit_log_path`]): its one writer and its readers.
        log_write: SqlitePool,
        log_read: SqlitePool,
        /// When the planner statistics last changed ([`Store::refresh_statistics`]).
        statistics: Arc<StatisticsChanged>,
    },
    Postgres {
        pool: PgPool,
        /// Connections that keep generic plans, for lookups by key ([`Store::lookup`]).
        lookup: PgPool,
    },
}

/// The file of a SQLite store's audit log, beside its database: `carnet.db` →
/// `carnet-audit-log.db`.
///
/// Every answer waits for its audit row's commit, and with the log in the database
/// that commit queued behind the projector's transactions on SQLite's one writer:
/// audited reads ran at ~3,600/s, and at ~9,000/s with the projector switched off
/// (benches/README.md). A file of its own has a writer of its own. The price: a row
/// and its AuditEvent are no longer in one database, so the projector stores events
/// under the id they were logged with and skips ids already stored
/// (`audit::projection`). Back up both files.
pub fn audit_log_path(database: &Path) -> std::path::PathBuf {
    let stem = database
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match database.extension() {
        Some(ext) => format!("{stem}-audit-log.{}", ext.to_string_lossy()),
        None => format!("{stem}-audit-log"),
    };
    database.with_file_name(name)
}

/// A pool of SQLite connections that hands out an idle connection without pinging it
/// first (sqlx's `test_before_acquire`, on by default). A SQLite connection is a
/// thread of this process on a file: it cannot be lost the way a network connection
/// can, and sqlx still pings each one as it goes back to the pool, where a broken one
/// is closed. The ping on acquiring was one more round trip to the connection's thread,
/// two thread switches, for every statement run on a pooled connection
/// (benches/README.md).
fn sqlite_pool() -> SqlitePoolOptions {
    SqlitePoolOptions::new().test_before_acquire(false)
}

/// How long a PostgreSQL connection may have been idle before it is checked (pinged)
/// as it is handed out.
const PG_IDLE_CHECK: Duration = Duration::from_secs(1);

/// A pool of PostgreSQL connections that pings an idle connection before handing it
/// out only if it was idle for over [`PG_IDLE_CHECK`] (as HikariCP does, by default
/// after 500 ms), instead of every time (sqlx's `test_before_acquire`): under load a
/// connection is idle for microseconds, and each ping was a round trip to the server
/// before every statement. A connection that breaks within that second (the server
/// restarting) fails one statement; sqlx also pings each connection as it goes back to
/// the pool and closes a broken one.
fn pg_pool() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PG_IDLE_CHECK {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

impl Store {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // Searches are prepared statements whose selectivity depends on the bound
            // values; after five runs PostgreSQL may switch to a generic plan that
            // ignores them (measured: 189 ms instead of 1 ms for patient+code at 1 M).
            let plain = PgConnectOptions::from_str(url)?;
            let opts = plain.clone().options([("plan_cache_mode", "force_custom_plan")]);
            let pool = pg_pool()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await?;
            // Lookups by key plan the same whatever the values, and planning them for
            // each call was most of their cost (a read by type and id: 7,700 against
            // 30,000 executions/s, pgbench with 32 clients; docs/design.md). A generic
            // plan is kept for the connection's life, and one made while the tables
            // were nearly empty scanned them whole once they had grown: these
            // statements never want a sequential scan. Opened when first used, so
            // one-shot commands open none.
            let lookup = pg_pool()
                .max_connections(max_connections.div_ceil(2).max(2))
                .acquire_timeout(Duration::from_secs(30))
                .connect_lazy_with(plain.options([("enable_seqscan", "off")]));
            sqlx::migrate!("../migrations/postgres").run(&pool).await?;
            Ok(Store::Postgres { pool, lookup })
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?;
            if let Some(parent) = opts.get_filename().parent()
                && !parent.as_os_str().is_empty()
                && !Path::new(parent).exists()
            {
                std::fs::create_dir_all(parent)?;
            }
            let opts = opts
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL in WAL mode survives a crash of the process (kill -9): a commit
                // is in the WAL before the call returns. Only an OS crash or power cut
                // can lose the last commits; FULL would fsync every commit to cover that.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            // The writer's page cache holds a whole bulk transaction's dirty pages: with
            // SQLite's default (2 MB) it spills them to the WAL and reads them back
            // mid-transaction (seen with perf: ~69 page writes per imported resource).
            let write = sqlite_pool()
                .max_connections(1)
                .connect_with(
                    // Set on connecting, so that a connection the pool opens again
                    // (after its idle or lifetime limit) has them too.
                    opts.clone()
                        .pragma("cache_size", WRITER_CACHE)
                        .pragma("journal_size_limit", WAL_LIMIT)
                        .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES),
                )
                .await?;
            sqlx::migrate!("../migrations/sqlite").run(&write).await?;
            // SQLite never gathers statistics by itself; this refreshes the ones that are
            // stale, cheaply (sqlite.org/lang_analyze.html#pragma_optimize).
            sqlx::query("PRAGMA optimize=0x10002").execute(&write).await?;
            let statistics = Arc::new(StatisticsChanged::default());
            let read = sqlite_pool()
                .max_connections(max_connections.max(2))
                // A connection reads the statistics once, when it opens: one opened
                // before they last changed is replaced (cheaply: every write commit
                // empties a reader's page cache anyway).
                .before_acquire({
                    let statistics = statistics.clone();
                    move |_, meta| {
                        let fresh = !statistics.since(meta.age);
                        Box::pin(async move { Ok(fresh) })
                    }
                })
                // Readers keep SQLite's default page cache: each write commit (every
                // audited request makes one) empties a reader's cache at its next read,
                // and emptying costs more the bigger the cache (perf: pcache1TruncateUnsafe).
                .connect_with(opts.clone().read_only(true))
                .await?;
            let log_opts = opts
                .clone()
                .filename(audit_log_path(opts.get_filename()))
                .pragma("journal_size_limit", WAL_LIMIT);
            let log_write = sqlite_pool().max_connections(1).connect_with(log_opts.clone()).await?;
            sqlx::migrate!("../migrations/sqlite-audit-log").run(&log_write).await?;
            let log_read = sqlite_pool()
                .max_connections(2)
                .connect_with(log_opts.read_only(true))
                .await?;
            super::legacy_log::move_rows(&write, &log_write).await?;
            let by_key = Readers::new(opts.clone().read_only(true), max_connections.max(2), statistics.clone());
            let checkpoint = sqlite_pool().max_connections(1).connect_lazy_with(opts);
            Ok(Store::Sqlite {
                write,
                read,
                by_key,
                checkpoint,
                log_write,
                log_read,
                statistics,
            })
        } else {
            Err(StoreError::UnsupportedUrl(redact(url)))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite { .. } => Backend::Sqlite,
            Store::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A transaction that may write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`, sent with its first statement: `store::batched`) so two
    /// writers never deadlock upgrading a read lock.
    pub async fn begin_write(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Store::Sqlite { write, .. } => Tx::Sqlite(SqliteTx::write(write.acquire().await?, "BEGIN IMMEDIATE")),
            Store::Postgres { pool, .. } => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A transaction that may write, whose statements find rows by key only (a plain
    /// create, update or delete: no search criteria): on PostgreSQL on the connections
    /// of [`Store::lookup`], so that its statements are not planned at each call. On
    /// SQLite, [`Store::begin_write`].
    pub async fn begin_keyed_write(&self) -> Result<Tx, StoreError> {
        match self {
            Store::Sqlite { .. } => self.begin_write().await,
            Store::Postgres { lookup, .. } => Ok(Tx::Postgres(lookup.begin().await?)),
        }
    }

    /// A transaction that may write the audit log: on SQLite in the log's own file
    /// ([`audit_log_path`]), on PostgreSQL an ordinary one.
    pub async fn begin_log_write(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Store::Sqlite { log_write, .. } => {
                Tx::Sqlite(SqliteTx::write(log_write.acquire().await?, "BEGIN IMMEDIATE"))
            }
            // The log's statements are inserts and reads by sequence number.
            Store::Postgres { lookup, .. } => Tx::Postgres(lookup.begin().await?),
        })
    }

    /// A plain connection for reading the audit log.
    pub async fn log_reader(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Store::Sqlite { log_read, .. } => Tx::SqliteConn(SqliteConn::Pooled(log_read.acquire().await?)),
            // The projector's reads of a table that churns: planned for their bounds.
            Store::Postgres { pool, .. } => Tx::PostgresConn(pool.acquire().await?),
        })
    }

    /// Whether the audit log is in a database of its own (SQLite), so that a logged
    /// row and its stored AuditEvent cannot change in one transaction.
    pub fn log_is_separate(&self) -> bool {
        matches!(self, Store::Sqlite { .. })
    }

    /// A read-only transaction: one consistent snapshot for a multi-query read.
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Store::Sqlite { read, .. } => Tx::Sqlite(SqliteTx::snapshot(read.begin().await?)),
            Store::Postgres { pool, .. } => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A plain connection for reads that need no snapshot across statements.
    pub async fn reader(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Store::Sqlite { by_key, .. } => Tx::SqliteConn(SqliteConn::Reader(by_key.acquire().await?)),
            Store::Postgres { pool, .. } => Tx::PostgresConn(pool.acquire().await?),
        })
    }

    /// A plain connection for lookups by key whose plans do not depend on the values:
    /// a resource by type and id, the owners of listed resources, a token's
    /// revocation. On PostgreSQL its connections let a prepared statement keep a
    /// generic plan, where the others plan every statement for its values (searches
    /// need that; these only paid for it). On SQLite, a reader.
    pub async fn lookup(&self) -> Result<Tx, StoreError> {
        match self {
            Store::Sqlite { .. } => self.reader().await,
            Store::Postgres { lookup, .. } => Ok(Tx::PostgresConn(lookup.acquire().await?)),
        }
    }

    /// Lets SQLite's WAL grow during an import, or puts it back (no-op on PostgreSQL).
    ///
    /// Otherwise the writer copies the WAL into the database every
    /// [`WRITER_CHECKPOINT_PAGES`] (16 MB), which an import's transactions of ~4,000
    /// resources pass at every commit: each index page the next group touches again is
    /// copied again. (The figures below are from the days of SQLite's default, 1,000
    /// pages, without the background checkpoints.) With checkpoints every
    /// 100,000 pages (400 MB of WAL) an import of 98,108 Synthea resources went from
    /// 1,255 to 1,439/s (benches/README.md). Turning it off copies the WAL at once, so
    /// that the next request's commit does not; the checkpoint is passive, as SQLite's
    /// own are, because one that truncates waits for every reader while holding the
    /// writer (on a server under load, every write would wait with it). The file then
    /// shrinks at the next write ([`WAL_LIMIT`]). The setting belongs to the one writer
    /// connection; two imports at once share it, and the first to end turns it off for
    /// both (which only costs the other its speed).
    pub async fn bulk_load(&self, on: bool) -> Result<(), StoreError> {
        if let Store::Sqlite { write, .. } = self {
            let pages = if on { "100000" } else { WRITER_CHECKPOINT_PAGES };
            sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA wal_autocheckpoint = {pages}")))
                .execute(write)
                .await?;
            if !on {
                sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(write).await?;
            }
        }
        Ok(())
    }

    /// Copies what it can of SQLite's WAL into the database without waiting for
    /// anyone, on a connection of its own (no-op on PostgreSQL).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if let Store::Sqlite { checkpoint, .. } = self {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(checkpoint)
                .await?;
        }
        Ok(())
    }

    /// Re-analyses the SQLite tables whose size changed a lot since their statistics
    /// were taken (no-op on PostgreSQL): [`super::statistics`].
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        let Store::Sqlite { write, statistics, .. } = self else {
            return Ok(());
        };
        let mut c = write.acquire().await?;
        let before = statistics_of(&mut c).await;
        let limit = super::statistics::ANALYSIS_LIMIT;
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA analysis_limit = {limit}")))
            .execute(&mut *c)
            .await?;
        let done = sqlx::query("PRAGMA optimize=0x10002").execute(&mut *c).await;
        // A bulk load's full ANALYZE ([`Store::analyze`]) runs on this connection too.
        sqlx::query("PRAGMA analysis_limit = 0").execute(&mut *c).await?;
        done?;
        if statistics_of(&mut c).await != before {
            statistics.changed();
        }
        Ok(())
    }

    /// Refreshes the planners' statistics: after a bulk load both planners would
    /// otherwise plan as if the tables were empty.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite { write, .. } => {
                sqlx::query("ANALYZE").execute(write).await?;
            }
            Store::Postgres { pool, .. } => {
                sqlx::query("ANALYZE").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// The pools' sizes, for `/metrics`.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        fn of<DB: sqlx::Database>(name: &'static str, p: &sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                name,
                size: p.size(),
                idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
                max: p.options().get_max_connections(),
            }
        }
        match self {
            Store::Sqlite {
                write,
                read,
                by_key,
                log_write,
                log_read,
                ..
            } => vec![
                of("sqlite_write", write),
                of("sqlite_read", read),
                {
                    let (size, idle, max) = by_key.stats();
                    PoolStats {
                        name: "sqlite_read_by_key",
                        size,
                        idle,
                        max,
                    }
                },
                of("sqlite_audit_log_write", log_write),
                of("sqlite_audit_log_read", log_read),
            ],
            Store::Postgres { pool, lookup } => vec![of("postgres", pool), of("postgres_lookup", lookup)],
        }
    }

    /// A trivial query, for readiness: on SQLite through the readers, so that a long
    /// write (an import) holding the one writer does not make the server look down.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite { read, .. } => {
                sqlx::query("SELECT 1").execute(read).await?;
            }
            Store::Postgres { pool, .. } => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite {
                write,
                read,
                by_key,
                checkpoint,
                log_write,
                log_read,
                ..
            } => {
                checkpoint.close().await;
                by_key.close().await;
                read.close().await;
                write.close().await;
                log_read.close().await;
                log_write.close().await;
            }
            Store::Postgres { pool, lookup } => {
                lookup.close().await;
                pool.close().await;
            }
        }
    }
}

/// When SQLite's planner statistics last changed, for replacing the readers that
/// loaded older ones (SQLite loads them with the schema, and neither `ANALYZE` on
/// another connection nor a schema change reloads them: seen with `EXPLAIN QUERY PLAN`).
#[derive(Default)]
pub struct StatisticsChanged(std::sync::Mutex<Option<Instant>>);

impl StatisticsChanged {
    fn changed(&self) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }

    /// Whether a connection opened `age` ago predates the last change.
    pub(super) fn since(&self, age: Duration) -> bool {
        let at = *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        at.is_some_and(|at| age > at.elapsed())
    }
}

/// SQLite's statistics as one string, to tell whether `PRAGMA optimize` changed them
/// (`None` before the first analysis, when the table does not exist).
async fn statistics_of(c: &mut sqlx::SqliteConnection) -> Option<String> {
    sqlx::query_scalar("SELECT group_concat(tbl || ' ' || coalesce(idx, '') || ' ' || stat, ';') FROM sqlite_stat1")
        .fetch_one(c)
        .await
        .ok()
        .flatten()
}

/// Database URLs may carry passwords; never log them.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
