//! First run: with no client registered yet, register a local administration client
//! (client_credentials, `system/*.*`) so a person can get a token at once. Its secret
//! goes to a file readable only by its owner, never to the logs.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::clients::{self, Credential, Registration};
use crate::error::Error;
use crate::state::AppState;

pub const ADMIN_CLIENT_ID: &str = "carnet-admin";

/// Registers the admin client if no client exists. Returns the secret file's path when
/// this process created the client.
pub async fn first_run(state: &AppState) -> Result<Option<PathBuf>, Error> {
    if clients::any_registered(state.store()).await? {
        return Ok(None);
    }
    let reg = Registration {
        client_id: ADMIN_CLIENT_ID.into(),
        name: "Carnet local administration".into(),
        redirect_uris: vec![],
        scopes: "system/*.*".into(),
        credential: Credential::Secret,
    };
    let done = clients::register(state.store(), &reg, state.now()).await?;
    let Some(secret) = done.secret else { return Ok(None) };
    let path = state.config().data_dir.join("admin-client-secret");
    write_private(&path, &secret).map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
    Ok(Some(path))
}

fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(secret.as_bytes())?;
    Ok(())
}
