//! Application state shared by every request: configuration, the store and the clock.
//! Nothing here is per-process truth: all state that matters lives in the database.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    store: Store,
    clock: Arc<dyn Clock>,
}

impl AppState {
    pub fn new(config: Config, store: Store, clock: Arc<dyn Clock>) -> AppState {
        AppState { inner: Arc::new(Inner { config, store, clock }) }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn base_url(&self) -> &str {
        &self.inner.config.base_url
    }

    /// Now, truncated to the millisecond: the precision of `meta.lastUpdated`, so the
    /// stored instant and the one the client sees are the same.
    pub fn now(&self) -> i64 {
        let now = self.inner.clock.now_micros();
        now - now.rem_euclid(1000)
    }
}
