//! Starting and stopping the server: used by the binary, the tests and the benches.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::state::AppState;
use crate::store::Store;

/// Connects to the database (running migrations) and builds the state.
pub async fn build_state(config: Config, clock: Option<Arc<dyn Clock>>) -> anyhow::Result<AppState> {
    let store = Store::connect(&config.database_url, config.db_pool).await?;
    Ok(AppState::new(
        config,
        store,
        clock.unwrap_or_else(|| Arc::new(SystemClock)),
    ))
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = state.store().clone();
    let app = crate::http::router(state);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    store.close().await;
    Ok(())
}

/// A server on an ephemeral port, for tests and benches: real HTTP, real database.
pub struct Running {
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: AppState,
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub async fn start(mut config: Config, clock: Option<Arc<dyn Clock>>) -> anyhow::Result<Running> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        if config.base_url.is_empty() {
            config.base_url = format!("http://{addr}/fhir");
        }
        let base_url = config.base_url.clone();
        let state = build_state(config, clock).await?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        Ok(Running {
            addr,
            base_url,
            state,
            stop: std::sync::Mutex::new(Some(tx)),
            task,
        })
    }

    /// Starts a graceful shutdown: no new connections, in-flight requests finish.
    pub fn signal_stop(&self) {
        if let Some(tx) = self.stop.lock().ok().and_then(|mut s| s.take()) {
            let _ = tx.send(());
        }
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.signal_stop();
        (&mut self.task).await??;
        Ok(())
    }
}
