//! Starting and stopping the server: used by the binary, the tests and the benches.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

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

/// A client must send its request headers within this time (slowloris: a client that
/// trickles them would otherwise hold a connection forever).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = state.store().clone();
    // An import killed before its end left indexes to build: searches need them.
    let owed = crate::store::deferred_indexes::pending(&store).await?;
    if owed > 0 {
        tracing::warn!(indexes = owed, "building the search indexes an interrupted import left");
        crate::store::deferred_indexes::build(&store).await?;
    }
    // What a killed process logged is stored before anyone can search for it.
    crate::audit::projection::flush(&state).await?;
    let projector = crate::audit::projection::spawn(state.clone());
    let checkpoints = crate::store::checkpoint::spawn(store.clone());
    let statistics = crate::store::statistics::spawn(store.clone());
    let audit_state = state.clone();
    // Bulk $export jobs run in every process, next to the requests (docs/bulk.md).
    let exports = crate::service::export::worker::spawn(state.clone());
    let app = crate::http::router(state);
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            app.clone().oneshot(req)
        });
        let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            // A client that goes away mid-request is its own business.
            let _ = conn.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    if let Some(w) = exports {
        w.stop().await;
    }
    projector.stop(&audit_state).await;
    if let Some(c) = checkpoints {
        c.stop().await;
    }
    if let Some(s) = statistics {
        s.stop().await;
    }
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
