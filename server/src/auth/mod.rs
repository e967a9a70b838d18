//! The built-in SMART App Launch 2.x authorization server, and the token check on every
//! FHIR request. See `docs/auth.md`.
//!
//! All state (keys, clients, accounts, codes, sessions, revocations) is in the database;
//! [`AuthState`] holds only caches and the message sender, so several processes on one
//! PostgreSQL behave as one authorization server.

pub mod accounts;
pub mod admin;
pub mod bootstrap;
pub mod cache;
pub mod clients;
pub mod codes;
pub mod endpoints;
pub mod external;
pub mod i18n;
pub mod jwt;
pub mod keys;
pub mod lockout;
pub mod middleware;
pub mod pages;
pub mod passwords;
pub mod principal;
pub mod scopes;
pub mod sender;
pub mod sessions;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::error::Error;
use crate::state::AppState;

pub use principal::{Actor, Interaction, Principal};
pub use scopes::Scopes;

/// Access tokens live at most this long (policy: 10 minutes of inactivity ends a session).
pub const MAX_ACCESS_TOKEN_SECS: i64 = 600;
/// Refresh tokens expire after this much idle time.
pub const REFRESH_IDLE_MICROS: i64 = 10 * 60 * 1_000_000;
/// Authorization codes are exchanged by the app right after the redirect.
pub const AUTHZ_CODE_MICROS: i64 = 2 * 60 * 1_000_000;
/// 6-digit sign-in and reset codes.
pub const SIGNIN_CODE_MICROS: i64 = 10 * 60 * 1_000_000;
/// Activation codes (`A-000000`).
pub const ACTIVATION_CODE_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;
/// A sign-in page left open longer than this starts over.
pub const AUTH_REQUEST_MICROS: i64 = 30 * 60 * 1_000_000;

/// Per-process auth state: caches and the sender. Nothing here is the truth.
pub struct AuthState {
    keys: OnceCell<Arc<keys::Keys>>,
    external: OnceCell<Option<Arc<external::External>>>,
    pub cache: cache::TokenCache,
    pub sender: Arc<dyn sender::Sender>,
}

impl AuthState {
    pub fn new(sender: Arc<dyn sender::Sender>) -> AuthState {
        AuthState {
            keys: OnceCell::new(),
            external: OnceCell::new(),
            cache: cache::TokenCache::default(),
            sender,
        }
    }
}

/// The server's signing keys, loaded from (or created in) the database on first use.
pub async fn server_keys(state: &AppState) -> Result<Arc<keys::Keys>, Error> {
    state
        .auth()
        .keys
        .get_or_try_init(|| async { keys::load_or_create(state.store(), state.now()).await.map(Arc::new) })
        .await
        .cloned()
}

/// The trusted external OpenID Connect issuer, if one is configured.
pub async fn external_issuer(state: &AppState) -> Result<Option<Arc<external::External>>, Error> {
    state
        .auth()
        .external
        .get_or_try_init(|| async {
            external::load(state.config(), state.now())
                .await
                .map(|o| o.map(Arc::new))
        })
        .await
        .cloned()
}

/// `n` random bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut buf = [0u8; N];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| Error::Internal("random source failed".into()))?;
    Ok(buf)
}

/// An opaque random token (256 bits, base64url): authorization codes, refresh tokens,
/// client secrets, sign-in handles.
pub fn random_token() -> Result<String, Error> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A uniformly random number below `bound` (rejection sampling, no modulo bias).
pub fn random_below(bound: u32) -> Result<u32, Error> {
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let v = u32::from_le_bytes(random_bytes::<4>()?);
        if v < zone {
            return Ok(v % bound);
        }
    }
}

/// How secrets are looked up at rest: hex SHA-256. Every stored secret is either
/// high-entropy (tokens, client secrets) or short-lived, single-use and behind the
/// lockout (codes), so a fast hash is enough; passwords use Argon2id instead.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
