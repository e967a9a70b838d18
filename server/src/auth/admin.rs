//! `carnet client …` and `carnet account …`: administration against the same database
//! as the server (same `--database-url`). Secrets go to standard output once, never to
//! the logs.

use std::path::{Path, PathBuf};

use super::clients::{self, Credential, Registration};
use super::i18n::Lang;
use crate::config::{Config, ServeArgs};
use crate::state::AppState;

#[derive(Debug)]
pub enum ClientCmd {
    Register {
        client_id: String,
        name: String,
        redirect_uris: Vec<String>,
        scope: String,
        public: bool,
        secret: bool,
        jwks_file: Option<PathBuf>,
        args: ServeArgs,
    },
    List {
        args: ServeArgs,
    },
}

#[derive(Debug)]
pub enum AccountCmd {
    Invite {
        fhir_user: String,
        also: Vec<String>,
        to: Option<String>,
        lang: String,
        args: ServeArgs,
    },
    Unlock {
        account: String,
        args: ServeArgs,
    },
    List {
        args: ServeArgs,
    },
}

async fn open(args: &ServeArgs) -> anyhow::Result<AppState> {
    let config = Config::resolve(args)?;
    crate::app::build_state(config, None).await
}

/// An error for the person at the terminal: the issues' own words rather than the
/// generic "invalid request".
fn explain(e: crate::error::Error) -> anyhow::Error {
    use crate::error::Error;
    match &e {
        Error::Invalid(issues) | Error::Unprocessable(issues) if !issues.is_empty() => {
            let words: Vec<&str> = issues.iter().map(|i| i.diagnostics.as_str()).collect();
            anyhow::anyhow!("{}", words.join("; "))
        }
        _ => anyhow::anyhow!("{e}"),
    }
}

pub async fn client(cmd: ClientCmd) -> anyhow::Result<()> {
    match cmd {
        ClientCmd::Register {
            client_id,
            name,
            redirect_uris,
            scope,
            public,
            secret,
            jwks_file,
            args,
        } => {
            let state = open(&args).await?;
            let credential = match (public, secret, jwks_file) {
                (true, _, _) => Credential::Public,
                (_, true, _) => Credential::Secret,
                (_, _, Some(path)) => Credential::Jwks(
                    std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
                ),
                _ => anyhow::bail!("choose one of --public, --secret or --jwks-file"),
            };
            let reg = Registration {
                name: if name.is_empty() { client_id.clone() } else { name },
                client_id: client_id.clone(),
                redirect_uris,
                scopes: scope,
                credential,
            };
            let done = clients::register(state.store(), &reg, state.now())
                .await
                .map_err(explain)?;
            if !done.created {
                anyhow::bail!("a client with id {client_id} already exists");
            }
            println!("registered client {client_id}");
            if let Some(secret) = done.secret {
                println!("client secret (shown once, stored hashed): {secret}");
            }
            state.store().close().await;
            Ok(())
        }
        ClientCmd::List { args } => {
            let state = open(&args).await?;
            for (id, kind, scopes) in clients::list(state.store()).await? {
                println!("{id}\t{kind}\t{scopes}");
            }
            state.store().close().await;
            Ok(())
        }
    }
}

pub async fn account(cmd: AccountCmd) -> anyhow::Result<()> {
    match cmd {
        AccountCmd::Invite {
            fhir_user,
            also,
            to,
            lang,
            args,
        } => {
            let state = open(&args).await?;
            let inv = super::accounts::invite(&state, &fhir_user, &also, to.as_deref(), Lang::parse(&lang))
                .await
                .map_err(explain)?;
            println!("account {} for {fhir_user}", inv.account_id);
            println!(
                "activation code: {} (valid 7 days, single use), sent to {}",
                inv.activation_code, inv.contact
            );
            println!("activation page: {}/activate", state.config().auth_url());
            state.store().close().await;
            Ok(())
        }
        AccountCmd::Unlock { account, args } => {
            let state = open(&args).await?;
            let found = match super::accounts::by_username(state.store(), &account).await? {
                Some(a) => Some(a),
                None => super::accounts::by_fhir_user(state.store(), &account).await?,
            };
            let Some(a) = found else {
                anyhow::bail!("no account {account}")
            };
            super::lockout::unlock(state.store(), &a.id).await?;
            println!("unlocked {}", a.username.as_deref().unwrap_or(&a.fhir_user));
            state.store().close().await;
            Ok(())
        }
        AccountCmd::List { args } => {
            let state = open(&args).await?;
            println!("fhirUser\tusername\tstatus\tlocked\tfailed");
            for a in super::accounts::list(state.store()).await? {
                println!(
                    "{}\t{}\t{:?}\t{}\t{}",
                    a.fhir_user,
                    a.username.as_deref().unwrap_or("-"),
                    a.status,
                    a.locked,
                    a.failed_attempts
                );
            }
            state.store().close().await;
            Ok(())
        }
    }
}

/// What `carnet serve` prints at start: how to get a token.
pub fn print_first_run(state: &AppState, created_secret: Option<&Path>) {
    let token_url = format!("{}/token", state.config().auth_url());
    let secret_file = state.config().data_dir.join("admin-client-secret");
    let base = state.base_url();
    if created_secret.is_some() {
        println!();
        println!(
            "First run: registered the local administration client '{}' (system/*.*).",
            super::bootstrap::ADMIN_CLIENT_ID
        );
        println!(
            "  its secret is in {} (mode 0600); get a token with:",
            secret_file.display()
        );
    } else {
        println!(
            "  token:        (admin client '{}', secret in {})",
            super::bootstrap::ADMIN_CLIENT_ID,
            secret_file.display()
        );
    }
    println!(
        "  TOKEN=$(curl -s -u {}:$(cat {}) -d grant_type=client_credentials -d scope='system/*.*' {token_url} | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')",
        super::bootstrap::ADMIN_CLIENT_ID,
        secret_file.display()
    );
    println!("  curl -H \"Authorization: Bearer $TOKEN\" {base}/Patient");
}
