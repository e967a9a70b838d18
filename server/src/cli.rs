//! The `carnet` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat, ServeArgs};

#[derive(Debug, Parser)]
#[command(name = "carnet", version, about = "Carnet, a FHIR R4 server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the FHIR server (the default).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(ServeArgs),
    /// Register SMART client applications.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage user accounts (activation codes, lockout).
    #[command(subcommand)]
    Account(AccountCommand),
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register a client: public (PKCE only), with a generated secret, or with a JWKS
    /// (private_key_jwt, for backend services).
    Register {
        #[arg(long)]
        client_id: String,
        #[arg(long, default_value = "")]
        name: String,
        /// May be repeated.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Space-separated: the most this client may be granted, e.g. "launch/patient openid fhirUser patient/*.rs".
        #[arg(long)]
        scope: String,
        /// A public client (no secret; PKCE protects the code).
        #[arg(long, conflicts_with_all = ["secret", "jwks_file"])]
        public: bool,
        /// Generate a client secret (printed once, stored hashed).
        #[arg(long, conflicts_with = "jwks_file")]
        secret: bool,
        /// The client's public keys (JWK Set) for private_key_jwt.
        #[arg(long)]
        jwks_file: Option<std::path::PathBuf>,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// List registered clients.
    List {
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Create the account of a Patient, RelatedPerson or Practitioner and send it an
    /// activation code (valid 7 days, single use).
    Invite {
        /// Patient/<id>, RelatedPerson/<id> or Practitioner/<id>.
        #[arg(long)]
        fhir_user: String,
        /// More RelatedPersons of the same person (one per represented patient).
        #[arg(long = "also")]
        also: Vec<String>,
        /// Where to send codes (default: the resource's first e-mail or phone).
        #[arg(long)]
        to: Option<String>,
        /// Language of the messages: fr (default) or en.
        #[arg(long, default_value = "fr")]
        lang: String,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Unlock an account locked after five failed attempts.
    Unlock {
        /// The username, or the account's fhirUser (Patient/123).
        account: String,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        args: ServeArgs,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("carnet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None => serve(cli.serve).await,
            Some(Command::Serve(args)) => serve(args).await,
            Some(Command::Migrate(args)) => migrate(args).await,
            Some(Command::Client(c)) => crate::auth::admin::client(c.into()).await,
            Some(Command::Account(c)) => crate::auth::admin::account(c.into()).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("CARNET_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(&args)?;
    init_logging(config.log_format);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let base = config.base_url.clone();
    let db = crate::store::connect_redacted(&config.database_url);
    let state = crate::app::build_state(config, None).await?;
    tracing::info!(database = %db, "database ready");
    let first_run = crate::auth::bootstrap::first_run(&state).await?;
    println!("Carnet is serving FHIR R4 at {base}");
    println!("  database:     {db}");
    println!("  capabilities: curl {base}/metadata");
    crate::auth::admin::print_first_run(&state, first_run.as_deref());
    crate::app::serve(listener, state, shutdown_signal()).await
}

async fn migrate(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(&args)?;
    init_logging(config.log_format);
    let store = crate::store::Store::connect(&config.database_url, 1).await?;
    store.close().await;
    println!(
        "migrations applied to {}",
        crate::store::connect_redacted(&config.database_url)
    );
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, finish what is in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

impl From<ClientCommand> for crate::auth::admin::ClientCmd {
    fn from(c: ClientCommand) -> Self {
        match c {
            ClientCommand::Register {
                client_id,
                name,
                redirect_uris,
                scope,
                public,
                secret,
                jwks_file,
                args,
            } => crate::auth::admin::ClientCmd::Register {
                client_id,
                name,
                redirect_uris,
                scope,
                public,
                secret,
                jwks_file,
                args,
            },
            ClientCommand::List { args } => crate::auth::admin::ClientCmd::List { args },
        }
    }
}

impl From<AccountCommand> for crate::auth::admin::AccountCmd {
    fn from(c: AccountCommand) -> Self {
        match c {
            AccountCommand::Invite {
                fhir_user,
                also,
                to,
                lang,
                args,
            } => crate::auth::admin::AccountCmd::Invite {
                fhir_user,
                also,
                to,
                lang,
                args,
            },
            AccountCommand::Unlock { account, args } => crate::auth::admin::AccountCmd::Unlock { account, args },
            AccountCommand::List { args } => crate::auth::admin::AccountCmd::List { args },
        }
    }
}
