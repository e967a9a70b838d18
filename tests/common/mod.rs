//! Test harness: a real Carnet server on an ephemeral port, over a fresh database
//! (a temporary SQLite file, or a new PostgreSQL database per test).

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod auth;
pub mod bin;
pub mod https;

use std::sync::Arc;

use carnet::app::Running;
use carnet::clock::OffsetClock;
use carnet::config::Config;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the PostgreSQL tests create their databases. CI provides one on
/// 127.0.0.1:5432 with trust auth (`.ci/run` starts one if none answers); a test run
/// without PostgreSQL fails rather than skipping.
pub fn postgres_admin_url() -> String {
    std::env::var("CARNET_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The URL of a SQLite store's audit log, a file beside its database
/// (`carnet::store::audit_log_path`); on PostgreSQL the log is a table of the database.
pub fn audit_log_url(backend: Backend, database_url: &str) -> String {
    match (backend, database_url.strip_prefix("sqlite://")) {
        (Backend::Sqlite, Some(path)) => format!(
            "sqlite://{}",
            carnet::store::audit_log_path(std::path::Path::new(path)).display()
        ),
        _ => database_url.to_string(),
    }
}

pub struct TestServer {
    pub base: String,
    /// Sends the default token (a `system/*.*` backend token) with every request.
    pub client: reqwest::Client,
    /// Sends no token.
    pub anon: reqwest::Client,
    /// The default token, from a real client_credentials flow.
    pub token: String,
    /// Where the server's default sender writes messages (activation and sign-in codes).
    pub outbox: std::path::PathBuf,
    _outbox_dir: tempfile::TempDir,
    pub clock: Arc<OffsetClock>,
    pub backend: Backend,
    pub database_url: String,
    running: Option<Running>,
    _dir: Option<tempfile::TempDir>,
    pg_db: Option<String>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let (database_url, dir, pg_db) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/carnet.db", dir.path().display());
                (url, Some(dir), None)
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("carnet_t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL is required for these tests ({admin}): {e}"));
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let url = match admin.rfind('/') {
                    Some(i) => format!("{}/{name}", &admin[..i]),
                    None => panic!("bad admin url {admin}"),
                };
                (url, None, Some(name))
            }
        };
        Self::start_on(backend, database_url, dir, pg_db, tweak).await
    }

    /// A second server on the same database as `other` (for multi-node tests); the
    /// database belongs to `other`, which drops it when it stops.
    pub async fn start_shared(other: &TestServer) -> TestServer {
        Self::start_on(other.backend, other.database_url.clone(), None, None, |_| {}).await
    }

    async fn start_on(
        backend: Backend,
        database_url: String,
        dir: Option<tempfile::TempDir>,
        pg_db: Option<String>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut config = Config::for_database(&database_url);
        config.db_pool = 4;
        let outbox_dir = tempfile::tempdir().unwrap();
        config.outbox_dir = outbox_dir.path().join("outbox");
        tweak(&mut config);
        let outbox = config.outbox_dir.clone();
        let clock = OffsetClock::new();
        let running = Running::start(config, Some(clock.clone())).await.unwrap();
        // The server closes keep-alive connections idle for 10 s (its header-read
        // timeout); a client that reused one at that moment would see it closed under
        // it, so the tests' clients let idle connections go first, as clients should.
        let idle = std::time::Duration::from_secs(5);
        let anon = reqwest::Client::builder().pool_idle_timeout(idle).build().unwrap();
        let token = default_token(&running, &anon).await;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        TestServer {
            base: running.base_url.clone(),
            client: reqwest::Client::builder()
                .default_headers(headers)
                .pool_idle_timeout(idle)
                .build()
                .unwrap(),
            anon,
            token,
            outbox,
            _outbox_dir: outbox_dir,
            clock,
            backend,
            database_url,
            running: Some(running),
            _dir: dir,
            pg_db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else if path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        }
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with another token, or with none (`None`).
    pub fn req_as(&self, token: Option<&str>, method: Method, path: &str) -> RequestBuilder {
        let r = self.anon.request(method, self.url(path));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// The server's application state (its store, clock and auth caches).
    /// The newest message the server's default sender wrote (activation and sign-in
    /// codes are read here, as a person would read their e-mail).
    pub fn last_message(&self) -> Value {
        let mut files: Vec<_> = std::fs::read_dir(&self.outbox)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        serde_json::from_slice(&std::fs::read(files.last().expect("a message in the outbox")).unwrap()).unwrap()
    }

    pub fn state(&self) -> &carnet::state::AppState {
        &self.running.as_ref().expect("server running").state
    }

    /// The authorization endpoints' base URL (`…/auth`).
    pub fn auth_url(&self) -> String {
        self.state().config().auth_url()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> Response {
        self.req(method, path)
            .header("content-type", "application/fhir+json")
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .await
            .unwrap()
    }

    /// Creates a resource and returns its stored form.
    pub async fn create(&self, body: Value) -> Value {
        let ty = body["resourceType"].as_str().unwrap().to_string();
        let r = self.send_json(Method::POST, &ty, &body).await;
        assert_eq!(r.status().as_u16(), 201, "create {ty}");
        r.json().await.unwrap()
    }

    /// Tells the server to stop gracefully without waiting for it.
    pub fn begin_shutdown(&self) {
        if let Some(r) = &self.running {
            r.signal_stop();
        }
    }

    /// Stops the server (waiting for in-flight requests) and starts a new one on the
    /// same database.
    pub async fn restart(self) -> TestServer {
        self.restart_with(|_| {}).await
    }

    /// [`TestServer::restart`] with another configuration.
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
        let (dir, pg_db) = (self._dir.take(), self.pg_db.take());
        Self::start_on(self.backend, self.database_url.clone(), dir, pg_db, tweak).await
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
        if let Some(name) = self.pg_db.take()
            && let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// A `system/*.*` token for a fresh backend client of this server, through a real
/// client_credentials request with a signed assertion.
async fn default_token(running: &Running, http: &reqwest::Client) -> String {
    let key = auth::ClientKey::es384();
    let client_id = format!("tests-{}", uuid::Uuid::new_v4().simple());
    auth::register_jwks_client(&running.state, &client_id, "system/*.*", &key).await;
    let token_url = format!("{}/token", running.state.config().auth_url());
    let now = running.state.now() / 1_000_000;
    let (status, body) = auth::client_credentials(http, &token_url, &client_id, &key, "system/*.*", now).await;
    assert_eq!(status, 200, "test token: {body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// `Type/id` of each entry's resource, in the Bundle's order.
pub fn entry_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str()?,
                e["resource"]["id"].as_str()?
            ))
        })
        .collect()
}

/// [`entry_ids`], sorted: a Bundle's contents whatever its order.
pub fn sorted_ids(bundle: &Value) -> Vec<String> {
    let mut v = entry_ids(bundle);
    v.sort();
    v
}

/// The `next` link of a search or history Bundle.
pub fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .map(str::to_string)
}

/// The `expression` paths of an OperationOutcome's issues.
pub fn expressions(outcome: &Value) -> Vec<String> {
    outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect()
}

/// Runs each listed `async fn(&TestServer)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = $crate::TestServer::start($crate::Backend::Sqlite).await;
                    super::$name(&s).await;
                    s.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = $crate::TestServer::start($crate::Backend::Postgres).await;
                    super::$name(&s).await;
                    s.stop().await;
                }
            )*
        }
    };
}
