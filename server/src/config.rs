//! Configuration: command-line flags, then `CARNET_*` environment variables, then an
//! optional TOML file (`--config`), then defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://carnet-data/carnet.db";
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings as given on the command line or in the environment; unset ones fall back
/// to the file and then to defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with the same keys as the flags (listen, base_url, database_url, ...).
    #[arg(long, env = "CARNET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "CARNET_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Public base URL of the FHIR endpoint, used in Location headers and links.
    #[arg(long, env = "CARNET_BASE_URL")]
    pub base_url: Option<String>,
    /// `sqlite://path/to/file.db` (default) or `postgres://user@host/db`.
    #[arg(long, env = "CARNET_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Largest accepted request body, in bytes (larger ones get 413).
    #[arg(long, env = "CARNET_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Log format: text or json.
    #[arg(long, env = "CARNET_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Database connections in the pool.
    #[arg(long, env = "CARNET_DB_POOL")]
    pub db_pool: Option<u32>,
    /// Largest page a search or history may return (`_count` is capped to it).
    #[arg(long, env = "CARNET_MAX_PAGE")]
    pub max_page: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    base_url: Option<String>,
    database_url: Option<String>,
    body_limit: Option<usize>,
    log_format: Option<LogFormat>,
    db_pool: Option<u32>,
    max_page: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub base_url: String,
    pub database_url: String,
    pub body_limit: usize,
    pub log_format: LogFormat,
    pub db_pool: u32,
    pub default_page: i64,
    pub max_page: i64,
}

impl Config {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Config> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen = match args.listen.or(file.listen) {
            Some(l) => l,
            None => DEFAULT_LISTEN.parse()?,
        };
        let base_url = args
            .base_url
            .clone()
            .or(file.base_url)
            .unwrap_or_else(|| format!("http://{listen}/fhir"));
        Ok(Config {
            listen,
            base_url: base_url.trim_end_matches('/').to_string(),
            database_url: args
                .database_url
                .clone()
                .or(file.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string()),
            body_limit: args.body_limit.or(file.body_limit).unwrap_or(DEFAULT_BODY_LIMIT),
            log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            db_pool: args.db_pool.or(file.db_pool).unwrap_or(16),
            default_page: 50,
            max_page: args.max_page.or(file.max_page).unwrap_or(1000),
        })
    }

    /// A configuration for tests and embedding: everything default but the database.
    pub fn for_database(database_url: &str) -> Config {
        Config {
            listen: ([127, 0, 0, 1], 0).into(),
            base_url: String::new(),
            database_url: database_url.to_string(),
            body_limit: DEFAULT_BODY_LIMIT,
            log_format: LogFormat::Text,
            db_pool: 8,
            default_page: 50,
            max_page: 1000,
        }
    }
}
