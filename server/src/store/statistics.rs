//! SQLite's planner statistics kept in step with the data.
//!
//! SQLite gathers statistics only when told (`ANALYZE`), and plans from the last ones
//! for good. A store opened when nearly empty (a new server, `carnet demo` loaded next)
//! kept statistics saying `resources` had one row, and SQLite then planned reads as
//! table scans: a practitioner's audited read of a Patient took 6.7 ms in its SQL,
//! scanning a compartment that every AuditEvent about the patient grows (~1,000
//! reads/s instead of ~4,500; benches/README.md). `PRAGMA optimize` re-analyses only
//! the tables whose size changed a lot since their last analysis, sampling at most
//! [`ANALYSIS_LIMIT`] rows an index, so running it every [`EVERY`] costs little; when
//! it changed them, the readers opened before are replaced as they are next acquired
//! (`store::connect`), since a SQLite connection reads statistics once, when it opens.

use std::time::Duration;

use super::Store;
use super::periodic::{self, Handle};

/// How often a serving process looks at the tables' sizes.
pub const EVERY: Duration = Duration::from_secs(10);

/// Rows an index is sampled on when re-analysed (sqlite.org/lang_analyze.html).
pub const ANALYSIS_LIMIT: u32 = 1000;

/// Starts refreshing a SQLite store's statistics (`None` on PostgreSQL).
pub fn spawn(store: Store) -> Option<Handle> {
    periodic::on_sqlite(store, "refreshing planner statistics", EVERY, |s| async move {
        s.refresh_statistics().await
    })
}

#[cfg(test)]
mod tests {
    /// `.cargo/config.toml` builds SQLite without STAT4: with its samples, every
    /// statement whose plan could depend on a bound value was prepared again at each
    /// execution (docs/design.md, "SQLite's planner statistics follow the data").
    #[tokio::test]
    async fn sqlite_is_built_without_stat4() {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&mut c)
            .await
            .unwrap();
        assert!(options.iter().any(|o| o.starts_with("THREADSAFE=")), "{options:?}");
        assert!(!options.iter().any(|o| o.contains("STAT4")), "{options:?}");
    }
}
