//! The fuzz target's seeds (fuzz/seeds/jwt) reach what they are meant to: a correctly
//! signed access token verifies, with its claims, so the fuzzer starts from the whole
//! verification path, not only from the first parse error; and a token for another
//! audience, an expired one and an unsigned one are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carnet_jwt::{TokenError, verify_access};
use jsonwebtoken::DecodingKey;

const PUBLIC_KEY: &str = include_str!("../../../fuzz/keys/server-public.pem");
const SEED: &str = include_str!("../../../fuzz/seeds/jwt/seed1");
const UNSIGNED: &str = include_str!("../../../fuzz/seeds/jwt/seed4");
const AUD: &str = "https://carnet.test/fhir";
const ISS: &str = "https://carnet.test/auth";

#[test]
fn the_signed_seed_verifies_and_the_others_do_not() {
    let key = DecodingKey::from_ec_pem(PUBLIC_KEY.as_bytes()).unwrap();
    let now = 1_800_000_000_000_000;
    let claims = verify_access("fuzz-server", &key, SEED, AUD, ISS, now).unwrap();
    assert_eq!(claims.patient.as_deref(), Some("p1"));
    assert_eq!(claims.scope, "patient/*.rs");
    assert_eq!(
        verify_access("fuzz-server", &key, SEED, "https://other.example/fhir", ISS, now).unwrap_err(),
        TokenError::WrongAudience
    );
    assert_eq!(
        verify_access("another-kid", &key, SEED, AUD, ISS, now).unwrap_err(),
        TokenError::BadSignature
    );
    let after_expiry = 4_102_444_800 * 1_000_000;
    assert_eq!(
        verify_access("fuzz-server", &key, SEED, AUD, ISS, after_expiry).unwrap_err(),
        TokenError::Expired
    );
    assert_eq!(
        verify_access("fuzz-server", &key, UNSIGNED, AUD, ISS, now).unwrap_err(),
        TokenError::Malformed
    );
}
