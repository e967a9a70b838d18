//! SMART authorization over HTTP on both backends: discovery, backend-services tokens,
//! the token check on FHIR requests and each refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carnet_tests::auth::{ClientKey, client_credentials, register_jwks_client};
use carnet_tests::{TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

fn now_secs(s: &TestServer) -> i64 {
    s.state().now() / 1_000_000
}

async fn patient_id(s: &TestServer) -> String {
    let p = s
        .create(json!({"resourceType": "Patient", "name": [{"family": "Roy"}], "birthDate": "1970-01-01"}))
        .await;
    p["id"].as_str().unwrap().to_string()
}

async fn backend(s: &TestServer, scopes: &str) -> (String, ClientKey) {
    let key = ClientKey::es384();
    let id = format!("backend-{}", uuid::Uuid::new_v4().simple());
    register_jwks_client(s.state(), &id, scopes, &key).await;
    (id, key)
}

fn www_authenticate(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn discovery_and_metadata_are_public(s: &TestServer) {
    let r = s
        .req_as(None, Method::GET, ".well-known/smart-configuration")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    for cap in [
        "launch-standalone",
        "launch-ehr",
        "client-public",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "context-standalone-patient",
        "permission-v1",
        "permission-v2",
        "permission-patient",
        "permission-user",
        "sso-openid-connect",
    ] {
        assert!(d["capabilities"].as_array().unwrap().iter().any(|c| c == cap), "{cap}");
    }
    let token_url = d["token_endpoint"].as_str().unwrap().to_string();
    assert_eq!(token_url, format!("{}/token", s.auth_url()));
    let r = s.req_as(None, Method::GET, "metadata").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cs: Value = r.json().await.unwrap();
    let sec = &cs["rest"][0]["security"];
    assert_eq!(sec["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    let uris = sec["extension"][0]["extension"].as_array().unwrap();
    assert!(
        uris.iter()
            .any(|u| u["url"] == "token" && u["valueUri"] == token_url.as_str())
    );
    let jwks: Value = s
        .anon
        .get(d["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part in the JWKS");
}

async fn missing_and_bad_tokens_get_401(s: &TestServer) {
    let id = patient_id(s).await;
    let path = format!("Patient/{id}");
    let r = s.req_as(None, Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(www_authenticate(&r).starts_with("Bearer realm="));
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    for bad in ["garbage", "a.b.c", &format!("{}x", s.token)] {
        let r = s.req_as(Some(bad), Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{bad}");
        assert!(www_authenticate(&r).contains("error=\"invalid_token\""));
    }
    // The default token works.
    assert_eq!(s.get(&path).await.status().as_u16(), 200);
}

async fn alg_none_and_hs256_are_refused(s: &TestServer) {
    let id = patient_id(s).await;
    let path = format!("Patient/{id}");
    let payload = s.token.split('.').nth(1).unwrap().to_string();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let r = s
        .req_as(Some(&format!("{none_header}.{payload}.")), Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // HS256 "signed" with the server's public key as the shared secret.
    let keys = carnet::auth::server_keys(s.state()).await.unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload).unwrap()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(keys.kid.clone());
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(keys.public_jwk.to_string().as_bytes()),
    )
    .unwrap();
    let r = s.req_as(Some(&forged), Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

async fn other_audience_is_refused(s: &TestServer) {
    let id = patient_id(s).await;
    let keys = carnet::auth::server_keys(s.state()).await.unwrap();
    let payload = s.token.split('.').nth(1).unwrap().to_string();
    let mut claims: carnet::auth::jwt::AccessClaims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload).unwrap()).unwrap();
    claims.aud = "https://other.example/fhir".into();
    let other = carnet::auth::jwt::sign(&keys, &claims).unwrap();
    let r = s
        .req_as(Some(&other), Method::GET, &format!("Patient/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(www_authenticate(&r).contains("audience"));
}

async fn backend_services_token_with_es384_assertion(s: &TestServer) {
    let id = patient_id(s).await;
    let (client_id, key) = backend(s, "system/Patient.rs system/Observation.cruds").await;
    let token_url = format!("{}/token", s.auth_url());
    let (st, body) = client_credentials(
        &s.anon,
        &token_url,
        &client_id,
        &key,
        "system/Patient.rs system/*.*",
        now_secs(s),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() <= 600);
    assert!(body.get("refresh_token").is_none());
    let scope = body["scope"].as_str().unwrap();
    assert!(
        scope.contains("system/Patient.rs") && scope.contains("system/Observation.cruds"),
        "{scope}"
    );
    let token = body["access_token"].as_str().unwrap();
    let r = s
        .req_as(Some(token), Method::GET, &format!("Patient/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Scope does not allow writing a Patient: 403 with an OperationOutcome.
    let r = s
        .req_as(Some(token), Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType":"Patient"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["issue"][0]["code"], "forbidden");
    // Nor reading another type.
    let r = s.req_as(Some(token), Method::GET, "Encounter/x").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // A user/ or patient/ scope is never granted to a backend client.
    let (st, body) = client_credentials(
        &s.anon,
        &token_url,
        &client_id,
        &key,
        "user/*.* patient/*.*",
        now_secs(s),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(body["error"], "invalid_scope");
}

/// An RSA key of a backend client: its JWKS and a signer of RS384 (or other) assertions.
fn rsa_client_key() -> (String, Value, jsonwebtoken::EncodingKey) {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let public = pair.public_key();
    let kid = uuid::Uuid::new_v4().simple().to_string();
    let jwks = json!({"keys": [{
        "kty": "RSA", "kid": kid, "alg": "RS384", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    }]});
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    (
        kid,
        jwks,
        jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
}

async fn backend_services_token_with_rs384_assertion(s: &TestServer) {
    let id = patient_id(s).await;
    let (kid, jwks, signer) = rsa_client_key();
    let client_id = format!("rsa-{}", uuid::Uuid::new_v4().simple());
    let reg = carnet::auth::clients::Registration {
        client_id: client_id.clone(),
        name: "RSA backend".into(),
        redirect_uris: vec![],
        scopes: "system/Patient.rs".into(),
        credential: carnet::auth::clients::Credential::Jwks(jwks.to_string()),
    };
    carnet::auth::clients::register(s.state().store(), &reg, s.state().now())
        .await
        .unwrap();
    let token_url = format!("{}/token", s.auth_url());
    let sign = |alg: jsonwebtoken::Algorithm, key: &jsonwebtoken::EncodingKey| {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.clone());
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": token_url,
            "exp": now_secs(s) + 240, "jti": uuid::Uuid::new_v4().to_string(),
        });
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    };
    let post = |assertion: String| {
        let http = s.anon.clone();
        let url = token_url.clone();
        async move {
            let r = http
                .post(&url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "system/Patient.rs"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let assertion = sign(jsonwebtoken::Algorithm::RS384, &signer);
    let (st, body) = post(assertion.clone()).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["scope"], "system/Patient.rs");
    let token = body["access_token"].as_str().unwrap();
    let r = s
        .req_as(Some(token), Method::GET, &format!("Patient/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The same assertion again (jti replay).
    let (st, body) = post(assertion).await;
    assert_eq!((st, body["error"].as_str()), (401, Some("invalid_client")));
    // Same key, another algorithm: SMART allows only RS384 and ES384.
    let (st, body) = post(sign(jsonwebtoken::Algorithm::RS256, &signer)).await;
    assert_eq!((st, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
    // Another RSA key claiming the registered kid.
    let (_, _, other) = rsa_client_key();
    let (st, body) = post(sign(jsonwebtoken::Algorithm::RS384, &other)).await;
    assert_eq!((st, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
}

async fn assertion_refusals(s: &TestServer) {
    let (client_id, key) = backend(s, "system/*.*").await;
    let token_url = format!("{}/token", s.auth_url());
    let post = |assertion: String| {
        let http = s.anon.clone();
        let url = token_url.clone();
        async move {
            let r = http
                .post(&url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "system/*.*"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap())
        }
    };
    let now = now_secs(s);
    let a = key.assertion(&client_id, &token_url, now);
    assert_eq!(post(a.clone()).await.0, 200);
    // Replay of the same jti.
    let (st, body) = post(a).await;
    assert_eq!((st, body["error"].as_str()), (401, Some("invalid_client")));
    // Wrong audience, expired, signed by another key.
    let wrong_aud =
        key.sign(&json!({"iss": client_id, "sub": client_id, "aud": "https://x/token", "exp": now + 60, "jti": "a1"}));
    assert_eq!(post(wrong_aud).await.0, 401);
    let expired = key.sign(&json!({"iss": client_id, "sub": client_id, "aud": token_url, "exp": now - 1, "jti": "a2"}));
    assert_eq!(post(expired).await.0, 401);
    let other = ClientKey::es384().assertion(&client_id, &token_url, now);
    assert_eq!(post(other).await.0, 401);
}

async fn expired_token_is_refused(s: &TestServer) {
    let id = patient_id(s).await;
    let (client_id, key) = backend(s, "system/*.*").await;
    let token_url = format!("{}/token", s.auth_url());
    let (_, body) = client_credentials(&s.anon, &token_url, &client_id, &key, "system/*.rs", now_secs(s)).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    let path = format!("Patient/{id}");
    assert_eq!(
        s.req_as(Some(&token), Method::GET, &path)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    s.clock.advance(Duration::from_secs(601));
    let r = s.req_as(Some(&token), Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(www_authenticate(&r).contains("expired"));
}

async fn revoked_token_is_refused_and_introspection(s: &TestServer) {
    let id = patient_id(s).await;
    let (client_id, key) = backend(s, "system/*.*").await;
    let token_url = format!("{}/token", s.auth_url());
    let (_, body) = client_credentials(&s.anon, &token_url, &client_id, &key, "system/*.rs", now_secs(s)).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    let path = format!("Patient/{id}");
    assert_eq!(
        s.req_as(Some(&token), Method::GET, &path)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let auth_form = |extra: Vec<(&'static str, String)>| {
        let mut f = vec![
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
            ),
            ("client_assertion", key.assertion(&client_id, &token_url, now_secs(s))),
        ];
        f.extend(extra);
        f
    };
    let intro: Value = s
        .anon
        .post(format!("{}/introspect", s.auth_url()))
        .form(&auth_form(vec![("token", token.clone())]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], true);
    assert_eq!(intro["client_id"], client_id.as_str());
    assert_eq!(intro["scope"], "system/*.rs");
    let r = s
        .anon
        .post(format!("{}/revoke", s.auth_url()))
        .form(&auth_form(vec![("token", token.clone())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = s.req_as(Some(&token), Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(www_authenticate(&r).contains("revoked"));
    let intro: Value = s
        .anon
        .post(format!("{}/introspect", s.auth_url()))
        .form(&auth_form(vec![("token", token.clone())]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro, json!({"active": false}));
}

async fn revocation_reaches_another_process(s: &TestServer) {
    let id = patient_id(s).await;
    let path = format!("Patient/{id}");
    // Sign-out through a second process on the same database ends the session there at once.
    let other = TestServer::start_shared(s).await;
    let token = other.token.clone();
    assert_eq!(
        other
            .req_as(Some(&token), Method::GET, &path)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let r = s
        .anon
        .post(format!("{}/signout", other.auth_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        other
            .req_as(Some(&token), Method::GET, &path)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    other.stop().await;
    // A revocation written by another process (straight to the database, so this
    // process's cache is not told) is honoured once the cached entry is re-checked.
    let (client_id, key) = backend(s, "system/*.*").await;
    let token_url = format!("{}/token", s.auth_url());
    let (_, body) = client_credentials(&s.anon, &token_url, &client_id, &key, "system/*.rs", now_secs(s)).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        s.req_as(Some(&token), Method::GET, &path)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    carnet::auth::sessions::revoke_session(s.state().store(), payload["sid"].as_str().unwrap(), s.state().now())
        .await
        .unwrap();
    s.clock
        .advance(Duration::from_micros(carnet::auth::cache::RECHECK_MICROS as u64 + 1000));
    assert_eq!(
        s.req_as(Some(&token), Method::GET, &path)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
}

/// SMART v2 restrictions on writing scopes: a lab feed allowed to write laboratory
/// Observations only cannot create, change into, change or delete anything else, alone
/// or inside a transaction, and a refused write stores nothing.
async fn write_restrictions_are_enforced(s: &TestServer) {
    const CAT: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
    let scopes = format!("system/Observation.rs system/Observation.cud?category={CAT}|laboratory");
    let (id, key) = backend(s, &scopes).await;
    let url = format!("{}/token", s.auth_url());
    let (st, tok) = client_credentials(&s.anon, &url, &id, &key, &scopes, now_secs(s)).await;
    assert_eq!(st, 200, "{tok}");
    let t = tok["access_token"].as_str().unwrap().to_string();
    let obs = |cat: &str| {
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "category": [{"coding": [{"system": CAT, "code": cat}]}]})
    };
    let send = async |method: Method, path: &str, body: Option<Value>| {
        let mut r = s.req_as(Some(&t), method, path);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/fhir+json")
                .body(serde_json::to_vec(&b).unwrap());
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let count = async || {
        s.get_json("Observation?_summary=count").await.1["total"]
            .as_i64()
            .unwrap()
    };

    let (st, lab) = send(Method::POST, "Observation", Some(obs("laboratory"))).await;
    assert_eq!(st, 201, "{lab}");
    let lab_id = lab["id"].as_str().unwrap().to_string();
    let (st, b) = send(Method::POST, "Observation", Some(obs("vital-signs"))).await;
    assert_eq!((st, b["resourceType"].as_str()), (403, Some("OperationOutcome")), "{b}");
    assert_eq!(count().await, 1, "the refused create stored nothing");
    // Changing a lab result into a vital sign is refused; it stays as it was.
    let mut changed = obs("vital-signs");
    changed["id"] = json!(lab_id);
    let (st, _) = send(Method::PUT, &format!("Observation/{lab_id}"), Some(changed)).await;
    assert_eq!(st, 403);
    let (_, now) = s.get_json(&format!("Observation/{lab_id}")).await;
    assert_eq!(now["meta"]["versionId"], "1");
    // A vital sign written by someone else can be neither changed nor deleted.
    let vital = s.create(obs("vital-signs")).await;
    let vital_id = vital["id"].as_str().unwrap().to_string();
    let mut into_lab = obs("laboratory");
    into_lab["id"] = json!(vital_id);
    assert_eq!(
        send(Method::PUT, &format!("Observation/{vital_id}"), Some(into_lab))
            .await
            .0,
        403
    );
    assert_eq!(
        send(Method::DELETE, &format!("Observation/{vital_id}"), None).await.0,
        403
    );
    assert_eq!(s.get_json(&format!("Observation/{vital_id}")).await.0, 200);
    // A transaction with one refused entry keeps none of the others.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": obs("laboratory"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": obs("vital-signs"), "request": {"method": "POST", "url": "Observation"}}]});
    let (st, _) = send(Method::POST, "", Some(bundle)).await;
    assert_eq!(st, 403);
    assert_eq!(count().await, 2);
    // What the scopes allow still works.
    assert_eq!(
        send(Method::DELETE, &format!("Observation/{lab_id}"), None).await.0,
        200
    );
}

on_both_backends!(
    write_restrictions_are_enforced,
    discovery_and_metadata_are_public,
    missing_and_bad_tokens_get_401,
    alg_none_and_hs256_are_refused,
    other_audience_is_refused,
    backend_services_token_with_es384_assertion,
    backend_services_token_with_rs384_assertion,
    assertion_refusals,
    expired_token_is_refused,
    revoked_token_is_refused_and_introspection,
    revocation_reaches_another_process,
);
