//! The `carnet` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Load FHIR data: NDJSON files (a resource a line) and JSON files (transaction or
    /// collection Bundles, or single resources), or folders of them. Resumable: run the
    /// same command again after an interruption and it goes on where it stopped.
    Import(ImportArgs),
    /// Load a small demo data set (patients, results, appointments, a child and
    /// parent, a sensitive result, a refusal) with accounts and a demo app, and print
    /// how to sign in. Running it again changes nothing.
    Demo {
        /// The demo accounts' password.
        #[arg(long, default_value = crate::demo::DEFAULT_PASSWORD)]
        password: String,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Rebuild the search index and the policy tables from the stored resources (after
    /// changing the sensitivity settings, or on a database written by an older version).
    Reindex {
        /// Only these resource types (may be repeated).
        #[arg(long = "type")]
        types: Vec<String>,
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Files or folders (`*.ndjson`, `*.json`, read in name order).
    #[arg(required = true)]
    paths: Vec<std::path::PathBuf>,
    /// Import files again even if an earlier import finished them.
    #[arg(long)]
    force: bool,
    /// Units (lines, entries, transaction Bundles) per database transaction.
    #[arg(long, default_value_t = 1000)]
    chunk: usize,
    /// Threads checking resources, at the lowest CPU priority (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// When to build the search index's indexes: `at-end` drops them and builds them
    /// once the resources are stored (much faster for large loads; searches of a server
    /// running on the same database meanwhile are slow), `as-it-goes` keeps them
    /// up to date, `auto` builds at the end when the input is 32 MB or more and at least
    /// as large as what is stored.
    #[arg(long, value_enum, default_value_t = crate::service::import::IndexBuild::Auto)]
    indexes: crate::service::import::IndexBuild,
    #[command(flatten)]
    args: ServeArgs,
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
            Some(Command::Import(a)) => import(a).await,
            Some(Command::Reindex { types, args }) => reindex(types, args).await,
            Some(Command::Demo { password, args }) => demo(password, args).await,
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
    // Commands other than `serve` export no traces.
    // Their statements may be slow by nature (an import's index builds and ANALYZE):
    // sqlx's warning for each slow statement would only bury the progress lines.
    let _ = crate::telemetry::init(format, None, "carnet", "info,sqlx::query=error");
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(&args)?;
    // Dropped when `serve` returns: flushes the last spans.
    let _telemetry = crate::telemetry::init(
        config.log_format,
        config.otlp_endpoint.as_deref(),
        &config.otel_service_name,
        "info",
    )?;
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

async fn import(a: ImportArgs) -> anyhow::Result<()> {
    use crate::service::import::{self, Importer, Options, Progress};
    use std::io::IsTerminal;
    let config = Config::resolve(&a.args)?;
    init_logging(config.log_format);
    let db = crate::store::connect_redacted(&config.database_url);
    let state = crate::app::build_state(config, None).await?;
    let opts = Options {
        force: a.force,
        resume: true,
        chunk: a.chunk.max(1),
        threads: a.threads,
        indexes: a.indexes,
    };
    let who = Importer {
        client_id: "carnet-import".to_string(),
        remote_addr: None,
        path: "carnet import".to_string(),
    };
    let started = std::time::Instant::now();
    let tty = std::io::stderr().is_terminal();
    // When the last line was shown, and what it said (the end is reported once).
    let last = std::sync::Mutex::new((std::time::Instant::now(), (0u64, 0u64)));
    let show = |p: &Progress| {
        let Ok(mut last) = last.lock() else { return };
        if p.building_indexes > 0 {
            let n = p.building_indexes;
            let line = format!("{} resources stored; building {n} search indexes", p.resources);
            if tty {
                eprint!("\r{line}\x1b[K");
            } else {
                eprintln!("{line}");
            }
            return;
        }
        let every = if tty { 0.25 } else { 10.0 };
        let done = p.bytes_done >= p.bytes_total;
        let seen = (p.resources, p.bytes_done);
        if (last.0.elapsed().as_secs_f64() < every && !done) || last.1 == seen {
            return;
        }
        *last = (std::time::Instant::now(), seen);
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = p.resources as f64 / secs;
        let frac = if p.bytes_total == 0 {
            1.0
        } else {
            p.bytes_done as f64 / p.bytes_total as f64
        };
        let eta = if frac > 0.0 { secs / frac - secs } else { 0.0 };
        let line = format!(
            "{} resources, {} rejected, {rate:.0}/s, {:.0}%, ETA {}",
            p.resources,
            p.rejected,
            frac * 100.0,
            clock(eta)
        );
        if tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    };
    let report = import::import_files(&state, &a.paths, &opts, &who, &show).await;
    if tty {
        eprintln!();
    }
    state.store().close().await;
    let report = report.map_err(|e| anyhow::anyhow!("{}", crate::service::import::describe(&e)))?;
    for s in &report.skipped {
        println!("{s}: already imported (use --force to import it again)");
    }
    for r in &report.rejected {
        println!("rejected: {r}");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {} resources into {db} in {secs:.1} s ({:.0}/s); {} rejected",
        report.resources,
        report.resources as f64 / secs.max(0.001),
        report.rejected.len()
    );
    if report.rejected.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "{} units were rejected (listed above)",
            report.rejected.len()
        ))
    }
}

async fn reindex(types: Vec<String>, args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(&args)?;
    let state = crate::app::build_state(config, None).await?;
    let started = std::time::Instant::now();
    let show = |done: u64, total: u64| eprintln!("{done} / {total} resources re-derived");
    let done = crate::service::reindex::reindex(&state, &types, &show)
        .await
        .map_err(|e| anyhow::anyhow!("{}", crate::service::import::describe(&e)));
    state.store().close().await;
    println!(
        "re-derived the search index and policy tables of {} resources in {:.1} s",
        done?,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn demo(password: String, args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(&args)?;
    init_logging(config.log_format);
    let state = crate::app::build_state(config, None).await?;
    let done = crate::demo::run(&state, &password).await;
    state.store().close().await;
    done
}

fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
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
