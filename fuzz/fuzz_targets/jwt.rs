//! A bearer token or a client assertion as a client sends it (any bytes): verified as
//! one of this server's access tokens and as a SMART client assertion, with fixed public
//! keys made for this target (`fuzz/keys/`; the private keys only signed the seeds, and
//! `crates/carnet-jwt/tests/fuzz_seeds.rs` checks the signed seed verifies). Refusals
//! are fine, panics are not.
#![no_main]

use std::sync::OnceLock;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use libfuzzer_sys::fuzz_target;

const PUBLIC_KEY: &str = include_str!("../keys/server-public.pem");
const CLIENT_JWKS: &str = include_str!("../keys/client-jwks.json");

fn keys() -> &'static Option<(DecodingKey, JwkSet)> {
    static K: OnceLock<Option<(DecodingKey, JwkSet)>> = OnceLock::new();
    K.get_or_init(|| {
        let key = DecodingKey::from_ec_pem(PUBLIC_KEY.as_bytes()).ok()?;
        let jwks = serde_json::from_str(CLIENT_JWKS).ok()?;
        Some((key, jwks))
    })
}

fuzz_target!(|data: &[u8]| {
    let (Ok(token), Some((key, jwks))) = (std::str::from_utf8(data), keys()) else {
        return;
    };
    let now = 1_800_000_000_000_000;
    let _ = carnet_jwt::verify_access(
        "fuzz-server",
        key,
        token,
        "https://carnet.test/fhir",
        "https://carnet.test/auth",
        now,
    );
    let _ = carnet_jwt::verify_assertion(token, jwks, "fuzz-client", "https://carnet.test/auth/token", now);
});
