//! Time as the server sees it. Everything that depends on "now" (lastUpdated, expiry,
//! publication delays) asks the clock in the application state, so tests can move it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Epoch microseconds, UTC.
    fn now_micros(&self) -> i64;
}

pub fn system_now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        system_now_micros()
    }
}

/// The system clock shifted by an adjustable offset: tests hold an `Arc` to it and
/// move time forward while the server runs.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_micros: AtomicI64,
}

impl OffsetClock {
    pub fn new() -> Arc<OffsetClock> {
        Arc::new(OffsetClock::default())
    }

    pub fn advance(&self, by: std::time::Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.offset_micros.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now_micros(&self) -> i64 {
        system_now_micros() + self.offset_micros.load(Ordering::SeqCst)
    }
}
