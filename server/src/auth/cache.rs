//! Verified access tokens, cached by the SHA-256 of the token until they expire, so a
//! request with a token already seen costs a hash and a map lookup instead of an ECDSA
//! verification and a database round trip.
//!
//! Revocation: the process that revokes drops the entries at once ([`TokenCache::forget_session`],
//! [`TokenCache::forget_token`]); other processes re-check the database for an entry
//! older than [`RECHECK_MICROS`], so a revocation reaches them within that bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::principal::Principal;

/// How long another process may keep honouring a revoked token.
pub const RECHECK_MICROS: i64 = 5_000_000;
/// Past this many entries the cache drops expired ones, then everything if needed.
const MAX_ENTRIES: usize = 50_000;

#[derive(Clone)]
pub struct Entry {
    pub principal: Arc<Principal>,
    /// When revocation was last checked in the database (epoch µs, server clock).
    pub checked_at: i64,
}

#[derive(Default)]
pub struct TokenCache {
    map: Mutex<HashMap<[u8; 32], Entry>>,
}

pub fn key(token: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    pub fn get(&self, key: &[u8; 32]) -> Option<Entry> {
        self.map.lock().ok()?.get(key).cloned()
    }

    pub fn put(&self, key: [u8; 32], entry: Entry, now: i64) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, e| e.principal.expires_at > now);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert(key, entry);
        }
    }

    pub fn remove(&self, key: &[u8; 32]) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(key);
        }
    }

    pub fn forget_session(&self, session_id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, e| e.principal.session_id.as_deref() != Some(session_id));
        }
    }

    pub fn forget_token(&self, jti: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, e| e.principal.token_id != jti);
        }
    }

    pub fn forget_subject(&self, subject: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, e| e.principal.subject != subject);
        }
    }
}
