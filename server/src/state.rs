//! Application state shared by every request: configuration, the store and the clock.
//! Nothing here is per-process truth: all state that matters lives in the database.

use std::sync::Arc;

use crate::auth::AuthState;
use crate::auth::sender::OutboxSender;
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
    auth: AuthState,
    auditor: crate::audit::Auditor,
    limits: crate::http::rate_limit::Limits,
    metrics: crate::metrics::Metrics,
}

impl AppState {
    /// Runs a write transaction, from its beginning to its commit, on the store's
    /// writer ([`Store::on_writer`]: SQLite's writer thread); `work` gets the state to
    /// own there.
    pub async fn on_writer<T, F>(&self, work: impl FnOnce(AppState) -> F) -> crate::error::Result<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = crate::error::Result<T>> + Send + 'static,
    {
        self.store().on_writer(work(self.clone())).await
    }

    pub fn new(config: Config, store: Store, clock: Arc<dyn Clock>) -> AppState {
        let auth = AuthState::new(Arc::new(OutboxSender::new(config.outbox_dir.clone())));
        AppState {
            inner: Arc::new(Inner {
                store,
                clock,
                auth,
                auditor: Default::default(),
                limits: limits(&config),
                config,
                metrics: Default::default(),
            }),
        }
    }

    /// Like [`AppState::new`] with another message sender (SMS or e-mail gateways).
    pub fn with_sender(
        config: Config,
        store: Store,
        clock: Arc<dyn Clock>,
        sender: Arc<dyn crate::auth::sender::Sender>,
    ) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                store,
                clock,
                auth: AuthState::new(sender),
                auditor: Default::default(),
                limits: limits(&config),
                config,
                metrics: Default::default(),
            }),
        }
    }

    /// This process's rate limiters.
    pub fn limits(&self) -> &crate::http::rate_limit::Limits {
        &self.inner.limits
    }

    /// The auth layer's caches and sender (its state proper is in the database).
    pub fn auth(&self) -> &AuthState {
        &self.inner.auth
    }

    /// The AuditEvent writer (group commit, see `audit::group_commit`).
    pub fn auditor(&self) -> &crate::audit::Auditor {
        &self.inner.auditor
    }

    /// Request counters and latencies for `/metrics`.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
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

fn limits(config: &Config) -> crate::http::rate_limit::Limits {
    crate::http::rate_limit::Limits::new(config.rate_limit_ip, config.rate_limit_client)
}
