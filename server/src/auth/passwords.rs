//! Password hashing: Argon2id (memory-hard), PHC strings at rest.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::Error;

pub const MIN_LENGTH: usize = 10;

pub fn hash(password: &str) -> Result<String, Error> {
    let salt = SaltString::encode_b64(&super::random_bytes::<16>()?)
        .map_err(|_| Error::Internal("salt encoding failed".into()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| Error::Internal("password hashing failed".into()))
}

pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Spends about the time of a verification when there is no account, so response
/// times do not tell which usernames exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(Some(h)) = Some(DUMMY.get_or_init(|| hash("carnet-dummy-password").ok())) {
        let _ = verify(password, h);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    #[test]
    fn round_trip() {
        let h = super::hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse battery", &h));
        assert!(!super::verify("wrong", &h));
    }
}
