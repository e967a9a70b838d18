//! Tokens for the tests, obtained through the real flows: a system client registered
//! with the same code `carnet client register` uses, then a client_credentials request
//! over HTTP with a signed `private_key_jwt` assertion (ES384).

use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carnet::auth::clients::{self, Credential, Registration};
use carnet::state::AppState;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A client's key pair: the private half signs assertions, `jwks` is registered.
pub struct ClientKey {
    pub kid: String,
    encoding: EncodingKey,
    pub jwks: Value,
}

impl ClientKey {
    pub fn es384() -> ClientKey {
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &aws_lc_rs::rand::SystemRandom::new())
            .expect("generate key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, doc.as_ref()).expect("read key");
        let point = pair.public_key().as_ref();
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-384", "kid": kid, "alg": "ES384", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..49]),
            "y": URL_SAFE_NO_PAD.encode(&point[49..97]),
        }]});
        ClientKey {
            kid,
            encoding: EncodingKey::from_ec_der(doc.as_ref()),
            jwks,
        }
    }

    /// A client assertion with the given claims (tests vary them to provoke refusals).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }

    /// A valid assertion for `client_id` at `token_url`, expiring in 4 minutes.
    pub fn assertion(&self, client_id: &str, token_url: &str, now_secs: i64) -> String {
        self.sign(&json!({
            "iss": client_id, "sub": client_id, "aud": token_url,
            "exp": now_secs + 240, "jti": uuid::Uuid::new_v4().to_string(),
        }))
    }
}

pub async fn register_jwks_client(state: &AppState, client_id: &str, scopes: &str, key: &ClientKey) {
    let reg = Registration {
        client_id: client_id.into(),
        name: "test backend".into(),
        redirect_uris: vec![],
        scopes: scopes.into(),
        credential: Credential::Jwks(key.jwks.to_string()),
    };
    clients::register(state.store(), &reg, state.now())
        .await
        .expect("register client");
}

/// POSTs a client_credentials request with a fresh assertion; returns status and body.
pub async fn client_credentials(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    key: &ClientKey,
    scope: &str,
    now_secs: i64,
) -> (u16, Value) {
    let assertion = key.assertion(client_id, token_url, now_secs);
    let r = http
        .post(token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .expect("token request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
