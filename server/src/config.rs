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
    /// Folder where the default message sender writes activation and sign-in codes.
    #[arg(long, env = "CARNET_OUTBOX_DIR")]
    pub outbox_dir: Option<PathBuf>,
    /// Folder for local files the server creates (the first-run admin client secret).
    #[arg(long, env = "CARNET_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Public URL of the authorization endpoints (also the tokens' issuer); by default
    /// the base URL with `/fhir` replaced by `/auth`.
    #[arg(long, env = "CARNET_AUTH_URL")]
    pub auth_url: Option<String>,
    /// Lifetime of access tokens in seconds (at most 600).
    #[arg(long, env = "CARNET_ACCESS_TOKEN_SECS")]
    pub access_token_secs: Option<i64>,
    /// Issuer (`iss`) of an external OpenID Connect provider whose tokens are accepted.
    #[arg(long, env = "CARNET_EXTERNAL_ISSUER")]
    pub external_issuer: Option<String>,
    /// JWKS of the external provider: a file path or an http(s) URL.
    #[arg(long, env = "CARNET_EXTERNAL_JWKS")]
    pub external_jwks: Option<String>,
    /// Audience the external provider's tokens must carry (default: the base URL).
    #[arg(long, env = "CARNET_EXTERNAL_AUDIENCE")]
    pub external_audience: Option<String>,
    /// Requests per second allowed from one IP address (bursts of twice that; 0 = no limit).
    #[arg(long, env = "CARNET_RATE_LIMIT_IP")]
    pub rate_limit_ip: Option<u32>,
    /// FHIR requests per second allowed to one OAuth client (bursts of twice that; 0 = no limit).
    #[arg(long, env = "CARNET_RATE_LIMIT_CLIENT")]
    pub rate_limit_client: Option<u32>,
    /// Extra CA certificate(s) (PEM) trusted for an https JWKS URL, besides the public roots.
    #[arg(long, env = "CARNET_EXTERNAL_JWKS_CA")]
    pub external_jwks_ca: Option<PathBuf>,
    /// Policy R3: days after a result is issued before patients see it (default 30).
    #[arg(long, env = "CARNET_RESULT_DELAY_DAYS")]
    pub result_delay_days: Option<i64>,
    /// Policy R6: age from which patients have self-access (default 14).
    #[arg(long, env = "CARNET_SELF_ACCESS_AGE")]
    pub self_access_age: Option<i32>,
    /// Policy R6: parents and guardians have access while the child is under this age (default 14).
    #[arg(long, env = "CARNET_PARENT_ACCESS_UNTIL_AGE")]
    pub parent_access_until_age: Option<i32>,
    /// Policy R2: v3-ActCode sensitivity labels, comma-separated (default HIV,PSY,SUD,ETH,STD,SEX,SDV,GDIS,TBOO).
    #[arg(long, env = "CARNET_SENSITIVITY_LABELS")]
    pub sensitivity_labels: Option<String>,
    /// Policy R2: v3-Confidentiality codes that make a result sensitive (default R,V).
    #[arg(long, env = "CARNET_CONFIDENTIALITY_LABELS")]
    pub confidentiality_labels: Option<String>,
    /// Policy R2: the sensitive-results ValueSet (JSON); default the one in profiles/.
    #[arg(long, env = "CARNET_SENSITIVE_RESULTS_VALUESET")]
    pub sensitive_results_valueset: Option<PathBuf>,
    /// OpenTelemetry: the OTLP/HTTP collector to send traces to (`http://host:4318`);
    /// the standard OTEL_EXPORTER_OTLP_ENDPOINT works too. No endpoint, no traces.
    #[arg(long, env = "CARNET_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Profiles every resource of a type must meet, as Type=profile-url (repeat the flag,
    /// or comma-separate in the variable); each must be one of the server's profiles.
    #[arg(long = "require-profile", env = "CARNET_REQUIRE_PROFILES", value_delimiter = ',')]
    pub require_profiles: Vec<String>,
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
    outbox_dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    auth_url: Option<String>,
    access_token_secs: Option<i64>,
    external_issuer: Option<String>,
    external_jwks: Option<String>,
    external_audience: Option<String>,
    external_jwks_ca: Option<PathBuf>,
    rate_limit_ip: Option<u32>,
    rate_limit_client: Option<u32>,
    result_delay_days: Option<i64>,
    self_access_age: Option<i32>,
    parent_access_until_age: Option<i32>,
    sensitivity_labels: Option<String>,
    confidentiality_labels: Option<String>,
    sensitive_results_valueset: Option<PathBuf>,
    require_profiles: Option<Vec<String>>,
    otlp_endpoint: Option<String>,
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
    pub outbox_dir: PathBuf,
    pub data_dir: PathBuf,
    /// Set explicitly, or derived from `base_url` by [`Config::auth_url`].
    pub auth_url: Option<String>,
    pub access_token_secs: i64,
    pub external_issuer: Option<String>,
    pub external_jwks: Option<String>,
    pub external_audience: Option<String>,
    pub external_jwks_ca: Option<PathBuf>,
    /// Per-process token buckets (http/rate_limit.rs); 0 turns one off.
    pub rate_limit_ip: u32,
    pub rate_limit_client: u32,
    /// The access policy's settings (docs/policy.md).
    pub policy: crate::policy::settings::PolicySettings,
    /// Bulk `$export` (docs/bulk.md): whether this process runs a worker, part size.
    pub export: crate::service::export::ExportSettings,
    /// OpenTelemetry traces (docs/operations.md): the OTLP/HTTP endpoint, if any, and
    /// the `service.name` spans carry (OTEL_SERVICE_NAME, default `carnet`).
    pub otlp_endpoint: Option<String>,
    pub otel_service_name: String,
    /// Profiles required per resource type (docs/validation.md).
    pub profiles: crate::conformance::Rules,
}

/// Generous enough for an app or an EMR feed; a flood from one address or one client is
/// cut off before it takes the whole server (docs/design.md).
pub const DEFAULT_RATE_LIMIT_IP: u32 = 1000;
pub const DEFAULT_RATE_LIMIT_CLIENT: u32 = 500;
pub const DEFAULT_DATA_DIR: &str = "carnet-data";
pub const DEFAULT_OUTBOX_DIR: &str = "carnet-data/outbox";

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
        let mut policy = crate::policy::settings::PolicySettings::default();
        if let Some(d) = args.result_delay_days.or(file.result_delay_days) {
            policy.result_delay_days = d.max(0);
        }
        if let Some(a) = args.self_access_age.or(file.self_access_age) {
            policy.self_access_age = a;
        }
        if let Some(a) = args.parent_access_until_age.or(file.parent_access_until_age) {
            policy.parent_access_until_age = a;
        }
        if let Some(l) = args.sensitivity_labels.clone().or(file.sensitivity_labels) {
            policy.sensitivity_labels = crate::policy::settings::split_list(&l);
        }
        if let Some(l) = args.confidentiality_labels.clone().or(file.confidentiality_labels) {
            policy.confidentiality_labels = crate::policy::settings::split_list(&l);
        }
        if let Some(p) = args
            .sensitive_results_valueset
            .clone()
            .or(file.sensitive_results_valueset)
        {
            policy.load_value_set(&p)?;
        }
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
            outbox_dir: args
                .outbox_dir
                .clone()
                .or(file.outbox_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_OUTBOX_DIR)),
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            auth_url: args
                .auth_url
                .clone()
                .or(file.auth_url)
                .map(|u| u.trim_end_matches('/').to_string()),
            access_token_secs: args
                .access_token_secs
                .or(file.access_token_secs)
                .unwrap_or(crate::auth::MAX_ACCESS_TOKEN_SECS)
                .clamp(1, crate::auth::MAX_ACCESS_TOKEN_SECS),
            external_issuer: args.external_issuer.clone().or(file.external_issuer),
            external_jwks: args.external_jwks.clone().or(file.external_jwks),
            external_audience: args.external_audience.clone().or(file.external_audience),
            external_jwks_ca: args.external_jwks_ca.clone().or(file.external_jwks_ca),
            rate_limit_ip: args
                .rate_limit_ip
                .or(file.rate_limit_ip)
                .unwrap_or(DEFAULT_RATE_LIMIT_IP),
            rate_limit_client: args
                .rate_limit_client
                .or(file.rate_limit_client)
                .unwrap_or(DEFAULT_RATE_LIMIT_CLIENT),
            policy,
            export: Default::default(),
            otlp_endpoint: args
                .otlp_endpoint
                .clone()
                .or(file.otlp_endpoint)
                .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
                .filter(|e| !e.trim().is_empty()),
            otel_service_name: std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "carnet".to_string()),
            profiles: crate::conformance::Rules::from_settings(if args.require_profiles.is_empty() {
                file.require_profiles.as_deref().unwrap_or_default()
            } else {
                &args.require_profiles
            })?,
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
            outbox_dir: PathBuf::from(DEFAULT_OUTBOX_DIR),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            auth_url: None,
            access_token_secs: crate::auth::MAX_ACCESS_TOKEN_SECS,
            external_issuer: None,
            external_jwks: None,
            external_audience: None,
            external_jwks_ca: None,
            // Embedded servers and tests set their own limits when they want them.
            rate_limit_ip: 0,
            rate_limit_client: 0,
            policy: crate::policy::settings::PolicySettings::default(),
            export: Default::default(),
            otlp_endpoint: None,
            otel_service_name: "carnet".to_string(),
            profiles: Default::default(),
        }
    }

    /// Public URL of the authorization endpoints, and the `iss` of our tokens.
    pub fn auth_url(&self) -> String {
        if let Some(u) = &self.auth_url {
            return u.clone();
        }
        match self.base_url.strip_suffix("/fhir") {
            Some(origin) => format!("{origin}/auth"),
            None => format!("{}/auth", self.base_url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_file_then_flags() {
        let c = Config::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.base_url, "http://127.0.0.1:8080/fhir");
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);

        let dir = tempfile_dir();
        let file = dir.join("carnet.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nbody_limit = 1024\nlog_format = \"json\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.base_url, "http://127.0.0.1:9000/fhir");
        assert_eq!(c.body_limit, 1024);
        assert_eq!(c.log_format, LogFormat::Json);

        let args = ServeArgs {
            config: Some(file),
            body_limit: Some(2048),
            base_url: Some("https://fhir.example/fhir/".into()),
            ..ServeArgs::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.body_limit, 2048);
        assert_eq!(c.base_url, "https://fhir.example/fhir");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile_dir();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let err = Config::resolve(&ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("carnet-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
