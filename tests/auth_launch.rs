//! The SMART standalone patient launch over HTTP on both backends, driven by a real
//! OAuth client (the `oauth2` crate) with PKCE, through the HTML sign-in with the
//! 6-digit code read from the outbox; and each refusal of the flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carnet::auth::clients::{self, Credential, Registration};
use carnet::auth::i18n::Lang;
use carnet_tests::{TestServer, on_both_backends};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    Scope, TokenResponse, TokenUrl,
};
use reqwest::Method;
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const PASSWORD: &str = "un mot de passe solide";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The newest message in the outbox.
fn years_ago(s: &TestServer, years: i32) -> String {
    let today = carnet::auth::accounts::today(s.state().now());
    let d = today.replace_year(today.year() - years).unwrap_or(today);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

async fn public_app(s: &TestServer, scopes: &str) -> String {
    let id = format!("app-{}", uuid::Uuid::new_v4().simple());
    let reg = Registration {
        client_id: id.clone(),
        name: "patient app".into(),
        redirect_uris: vec![REDIRECT.into()],
        scopes: scopes.into(),
        credential: Credential::Public,
    };
    clients::register(s.state().store(), &reg, s.state().now())
        .await
        .unwrap();
    id
}

/// A patient with an active account: returns (patient id, username).
async fn activated_patient(s: &TestServer, birth_date: &str) -> (String, String) {
    let p = s.create(json!({"resourceType": "Patient", "name": [{"family": "Gagnon", "given": ["Léa"]}], "birthDate": birth_date})).await;
    let id = p["id"].as_str().unwrap().to_string();
    let inv = carnet::auth::accounts::invite(
        s.state(),
        &format!("Patient/{id}"),
        &[],
        Some("lea@example.org"),
        Lang::Fr,
    )
    .await
    .unwrap();
    let msg = s.last_message();
    assert_eq!(msg["code"], inv.activation_code.as_str());
    assert_eq!(msg["to"], "lea@example.org");
    let code = msg["code"].as_str().unwrap();
    assert!(code.len() == 8 && code.as_bytes()[0].is_ascii_uppercase() && &code[1..2] == "-");
    let username = format!("lea-{}", &id[..8]);
    let r = s
        .anon
        .post(format!("{}/activate", s.auth_url()))
        .form(&[
            ("activation_code", code),
            ("username", &username),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    (id, username)
}

fn hidden_tx(html: &str) -> String {
    let start = html.find("name=\"tx\" value=\"").expect("tx field") + "name=\"tx\" value=\"".len();
    html[start..].split('"').next().unwrap().to_string()
}

fn oauth_client(
    s: &TestServer,
    client_id: &str,
) -> oauth2::basic::BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(client_id.into()))
        .set_auth_uri(AuthUrl::new(format!("{}/authorize", s.auth_url())).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/token", s.auth_url())).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
}

/// Walks the sign-in pages; returns the redirect's query pairs (code/state or error).
async fn sign_in(s: &TestServer, authorize_url: &str, username: &str, password: &str) -> Vec<(String, String)> {
    let http = browser();
    let r = http.get(authorize_url).send().await.unwrap();
    if r.status().as_u16() == 303 {
        return redirect_pairs(&r);
    }
    let html = r.text().await.unwrap();
    let tx = hidden_tx(&html);
    let url = format!("{}/authorize", s.auth_url());
    let r = http
        .post(&url)
        .form(&[("tx", tx.as_str()), ("username", username), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "password step: {}", r.text().await.unwrap());
    let code = s.last_message()["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 6);
    let r = http
        .post(&url)
        .form(&[("tx", tx.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "code step: {}", r.text().await.unwrap());
    redirect_pairs(&r)
}

fn redirect_pairs(r: &reqwest::Response) -> Vec<(String, String)> {
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pair<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn claims(jwt: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

struct Launch {
    code: String,
    verifier: PkceCodeVerifier,
}

async fn launch(s: &TestServer, client_id: &str, username: &str, scopes: &[&str]) -> Launch {
    let client = oauth_client(s, client_id);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("aud", s.base.clone())
        .set_pkce_challenge(challenge);
    for sc in scopes {
        req = req.add_scope(Scope::new(sc.to_string()));
    }
    let (url, csrf) = req.url();
    let pairs = sign_in(s, url.as_str(), username, PASSWORD).await;
    assert_eq!(pair(&pairs, "state"), Some(csrf.secret().as_str()));
    Launch {
        code: pair(&pairs, "code").expect("code").to_string(),
        verifier,
    }
}

async fn standalone_patient_launch(s: &TestServer) {
    let (patient, username) = activated_patient(s, "1990-05-17").await;
    let app = public_app(s, "launch/patient openid fhirUser patient/*.rs").await;
    let l = launch(
        s,
        &app,
        &username,
        &[
            "launch/patient",
            "openid",
            "fhirUser",
            "patient/*.rs",
            "user/*.*",
            "offline_access",
        ],
    )
    .await;
    let client = oauth_client(s, &app);
    let http = browser();
    let token = client
        .exchange_code(AuthorizationCode::new(l.code))
        .set_pkce_verifier(l.verifier)
        .request_async(&http)
        .await
        .unwrap();
    let access = token.access_token().secret().clone();
    let granted: Vec<String> = token.scopes().unwrap().iter().map(|s| s.to_string()).collect();
    assert!(granted.contains(&"patient/*.rs".to_string()), "{granted:?}");
    assert!(
        !granted.iter().any(|g| g.starts_with("user/") || g == "offline_access"),
        "{granted:?}"
    );
    assert!(token.expires_in().unwrap() <= Duration::from_secs(600));
    let c = claims(&access);
    assert_eq!(c["patient"], patient.as_str());
    assert_eq!(c["fhirUser"], format!("Patient/{patient}"));
    assert_eq!(c["aud"], s.base.as_str());
    // The patient reads their record; writing is outside the granted scopes.
    let r = s
        .req_as(Some(&access), Method::GET, &format!("Patient/{patient}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = s
        .req_as(Some(&access), Method::POST, "Observation")
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType":"Observation","status":"final","code":{"text":"x"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // The refresh token rotates.
    let refresh = token.refresh_token().unwrap().clone();
    let again = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(again.refresh_token().unwrap().secret(), refresh.secret());
    let reuse = client.exchange_refresh_token(&refresh).request_async(&http).await;
    assert!(reuse.is_err(), "a used refresh token is refused");
    // ... and reusing it revoked the session: the newest token no longer works either.
    let r = s
        .req_as(
            Some(again.access_token().secret()),
            Method::GET,
            &format!("Patient/{patient}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

async fn raw_exchange(s: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let r = s
        .anon
        .post(format!("{}/token", s.auth_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn code_exchange_refusals(s: &TestServer) {
    let (_, username) = activated_patient(s, "1985-01-01").await;
    let app = public_app(s, "launch/patient patient/*.rs").await;
    let scopes = ["launch/patient", "patient/*.rs"];
    // Bad PKCE verifier.
    let l = launch(s, &app, &username, &scopes).await;
    let wrong = PkceCodeVerifier::new("x".repeat(50));
    let (st, b) = raw_exchange(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &l.code),
            ("redirect_uri", REDIRECT),
            ("client_id", &app),
            ("code_verifier", wrong.secret()),
        ],
    )
    .await;
    assert_eq!((st, b["error"].as_str()), (400, Some("invalid_grant")), "{b}");
    // Wrong redirect URI.
    let l = launch(s, &app, &username, &scopes).await;
    let (st, b) = raw_exchange(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &l.code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("client_id", &app),
            ("code_verifier", l.verifier.secret()),
        ],
    )
    .await;
    assert_eq!((st, b["error"].as_str()), (400, Some("invalid_grant")), "{b}");
    // Reused code: the first exchange works, the second is refused and revokes the first's tokens.
    let l = launch(s, &app, &username, &scopes).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", l.code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", app.as_str()),
        ("code_verifier", l.verifier.secret().as_str()),
    ];
    let (st, first) = raw_exchange(s, &form).await;
    assert_eq!(st, 200, "{first}");
    let (st, b) = raw_exchange(s, &form).await;
    assert_eq!((st, b["error"].as_str()), (400, Some("invalid_grant")));
    let r = s
        .req_as(first["access_token"].as_str(), Method::GET, "Patient/x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Expired code (2 minutes).
    let l = launch(s, &app, &username, &scopes).await;
    s.clock.advance(Duration::from_secs(121));
    let (st, b) = raw_exchange(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &l.code),
            ("redirect_uri", REDIRECT),
            ("client_id", &app),
            ("code_verifier", l.verifier.secret()),
        ],
    )
    .await;
    assert_eq!((st, b["error"].as_str()), (400, Some("invalid_grant")), "{b}");
    // The authorize endpoint itself refuses an unregistered redirect URI without redirecting.
    let r = browser()
        .get(format!("{}/authorize?response_type=code&client_id={app}&redirect_uri=http://evil.example/cb&code_challenge=abc&code_challenge_method=S256&aud={}", s.auth_url(), s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.headers().get("location").is_none());
}

async fn scope_escalation_is_refused(s: &TestServer) {
    let (_, username) = activated_patient(s, "1985-01-01").await;
    let app = public_app(s, "launch/patient patient/Observation.rs user/*.*").await;
    // A patient asking only for user/ scopes gets nothing: invalid_scope.
    let client = oauth_client(s, &app);
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("aud", s.base.clone())
        .set_pkce_challenge(challenge)
        .add_scope(Scope::new("user/*.*".into()))
        .url();
    let pairs = sign_in(s, url.as_str(), &username, PASSWORD).await;
    assert_eq!(pair(&pairs, "error"), Some("invalid_scope"));
    // Asking for more than the client's registration is narrowed to it.
    let l = launch(s, &app, &username, &["launch/patient", "patient/*.cruds"]).await;
    let (st, tok) = raw_exchange(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &l.code),
            ("redirect_uri", REDIRECT),
            ("client_id", &app),
            ("code_verifier", l.verifier.secret()),
        ],
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(tok["scope"], "launch/patient patient/Observation.rs");
    // A refresh may not widen the grant.
    let (st, b) = raw_exchange(
        s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tok["refresh_token"].as_str().unwrap()),
            ("client_id", &app),
            ("scope", "patient/*.cruds"),
        ],
    )
    .await;
    assert_eq!((st, b["error"].as_str()), (400, Some("invalid_scope")), "{b}");
}

async fn sixth_failed_password_is_locked(s: &TestServer) {
    let (_, username) = activated_patient(s, "1985-01-01").await;
    let app = public_app(s, "launch/patient patient/*.rs").await;
    let client = oauth_client(s, &app);
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("aud", s.base.clone())
        .set_pkce_challenge(challenge)
        .add_scope(Scope::new("patient/*.rs".into()))
        .url();
    let http = browser();
    let tx = hidden_tx(&http.get(url.as_str()).send().await.unwrap().text().await.unwrap());
    let post = |password: &'static str| {
        let http = http.clone();
        let url = format!("{}/authorize", s.auth_url());
        let tx = tx.clone();
        let username = username.clone();
        async move {
            let r = http
                .post(&url)
                .form(&[
                    ("tx", tx.as_str()),
                    ("username", username.as_str()),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for _ in 0..4 {
        let (st, html) = post("wrong password").await;
        assert_eq!(st, 401);
        assert!(html.contains("incorrect"), "{html}");
    }
    let (_, html) = post("wrong password").await;
    assert!(html.contains("verrouillé"), "5th failure locks: {html}");
    // 6th attempt, even with the right password: still locked, no code sent.
    let (st, html) = post(PASSWORD).await;
    assert_eq!(st, 401);
    assert!(html.contains("verrouillé"), "{html}");
    let acc = carnet::auth::accounts::by_username(s.state().store(), &username)
        .await
        .unwrap()
        .unwrap();
    assert!(acc.locked);
    carnet::auth::lockout::unlock(s.state().store(), &acc.id).await.unwrap();
    let (st, _) = post(PASSWORD).await;
    assert_eq!(st, 200, "unlocked by the care team");
}

async fn expired_and_replaced_sign_in_codes(s: &TestServer) {
    let (_, username) = activated_patient(s, "1985-01-01").await;
    let app = public_app(s, "launch/patient patient/*.rs").await;
    let client = oauth_client(s, &app);
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("aud", s.base.clone())
        .set_pkce_challenge(challenge)
        .add_scope(Scope::new("patient/*.rs".into()))
        .url();
    let http = browser();
    let tx = hidden_tx(&http.get(url.as_str()).send().await.unwrap().text().await.unwrap());
    let authz = format!("{}/authorize", s.auth_url());
    let r = http
        .post(&authz)
        .form(&[
            ("tx", tx.as_str()),
            ("username", username.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let first = s.last_message()["code"].as_str().unwrap().to_string();
    // Resend: the first code stops working.
    std::thread::sleep(Duration::from_millis(5));
    let r = http
        .post(&authz)
        .form(&[("tx", tx.as_str()), ("resend", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let second = s.last_message()["code"].as_str().unwrap().to_string();
    if first != second {
        let r = http
            .post(&authz)
            .form(&[("tx", tx.as_str()), ("code", first.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "a replaced code is refused");
    }
    // 10 minutes later the second has expired too.
    s.clock.advance(Duration::from_secs(601));
    let r = http
        .post(&authz)
        .form(&[("tx", tx.as_str()), ("code", second.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "an expired sign-in code is refused");
}

async fn refresh_after_ten_idle_minutes_is_refused(s: &TestServer) {
    let (_, username) = activated_patient(s, "1985-01-01").await;
    let app = public_app(s, "launch/patient patient/*.rs").await;
    let l = launch(s, &app, &username, &["launch/patient", "patient/*.rs"]).await;
    let client = oauth_client(s, &app);
    let http = browser();
    let token = client
        .exchange_code(AuthorizationCode::new(l.code))
        .set_pkce_verifier(l.verifier)
        .request_async(&http)
        .await
        .unwrap();
    // 9 minutes: still fine, and the refresh restarts the idle timer.
    s.clock.advance(Duration::from_secs(9 * 60));
    let t2 = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&http)
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(10 * 60 + 1));
    let (st, b) = raw_exchange(
        s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t2.refresh_token().unwrap().secret()),
            ("client_id", &app),
        ],
    )
    .await;
    assert_eq!((st, b["error"].as_str()), (400, Some("invalid_grant")), "{b}");
    let _ = RefreshToken::new(String::new());
}

async fn patient_under_14_is_refused(s: &TestServer) {
    let birth = years_ago(s, 13);
    let p = s.create(json!({"resourceType": "Patient", "birthDate": birth})).await;
    let id = p["id"].as_str().unwrap();
    carnet::auth::accounts::invite(
        s.state(),
        &format!("Patient/{id}"),
        &[],
        Some("kid@example.org"),
        Lang::En,
    )
    .await
    .unwrap();
    let code = s.last_message()["code"].as_str().unwrap().to_string();
    let r = s
        .anon
        .post(format!("{}/activate", s.auth_url()))
        .header("accept-language", "en-CA,en;q=0.9")
        .form(&[
            ("activation_code", code.as_str()),
            ("username", "kid13"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("14 years"));
}

async fn pages_speak_french_by_default_and_english_on_request(s: &TestServer) {
    let fr = s
        .anon
        .get(format!("{}/activate", s.auth_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(fr.contains("Activer votre compte") && fr.contains("name=\"activation_code\""));
    let en = s
        .anon
        .get(format!("{}/activate", s.auth_url()))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains("Activate your account"));
}

async fn representative_picks_a_patient(s: &TestServer) {
    // A mother of two children under 14, and a mandate that has ended: the picker offers
    // exactly the two children, and the token names the chosen child and the
    // RelatedPerson that represents them.
    let kid1 = s
        .create(json!({"resourceType": "Patient", "name": [{"given": ["Alice"]}], "birthDate": years_ago(s, 8)}))
        .await;
    let kid2 = s
        .create(json!({"resourceType": "Patient", "name": [{"given": ["Bob"]}], "birthDate": years_ago(s, 12)}))
        .await;
    let teen = s
        .create(json!({"resourceType": "Patient", "name": [{"given": ["Chloé"]}], "birthDate": years_ago(s, 15)}))
        .await;
    let rp = |p: &Value, code: &str| {
        json!({"resourceType": "RelatedPerson", "patient": {"reference": format!("Patient/{}", p["id"].as_str().unwrap())},
               "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": code}]}]})
    };
    let r1 = s.create(rp(&kid1, "MTH")).await;
    let r2 = s.create(rp(&kid2, "MTH")).await;
    let r3 = s.create(rp(&teen, "MTH")).await;
    let rid = |r: &Value| format!("RelatedPerson/{}", r["id"].as_str().unwrap());
    carnet::auth::accounts::invite(
        s.state(),
        &rid(&r1),
        &[rid(&r2), rid(&r3)],
        Some("mom@example.org"),
        Lang::Fr,
    )
    .await
    .unwrap();
    let code = s.last_message()["code"].as_str().unwrap().to_string();
    let r = s
        .anon
        .post(format!("{}/activate", s.auth_url()))
        .form(&[
            ("activation_code", code.as_str()),
            ("username", "maman"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let app = public_app(s, "launch/patient patient/*.rs").await;
    let client = oauth_client(s, &app);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("aud", s.base.clone())
        .set_pkce_challenge(challenge)
        .add_scope(Scope::new("launch/patient".into()))
        .add_scope(Scope::new("patient/*.rs".into()))
        .url();
    let http = browser();
    let tx = hidden_tx(&http.get(url.as_str()).send().await.unwrap().text().await.unwrap());
    let authz = format!("{}/authorize", s.auth_url());
    http.post(&authz)
        .form(&[("tx", tx.as_str()), ("username", "maman"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let six = s.last_message()["code"].as_str().unwrap().to_string();
    let picker = http
        .post(&authz)
        .form(&[("tx", tx.as_str()), ("code", six.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(picker.status().as_u16(), 200);
    let html = picker.text().await.unwrap();
    let id2 = kid2["id"].as_str().unwrap();
    assert!(html.contains("name=\"patient\"") && html.contains(kid1["id"].as_str().unwrap()) && html.contains(id2));
    assert!(
        !html.contains(teen["id"].as_str().unwrap()),
        "a parent has no access once the child is 14"
    );
    let r = http
        .post(&authz)
        .form(&[("tx", tx.as_str()), ("patient", id2)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let pairs = redirect_pairs(&r);
    let token = client
        .exchange_code(AuthorizationCode::new(pair(&pairs, "code").unwrap().to_string()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let c = claims(token.access_token().secret());
    assert_eq!(c["patient"], id2);
    assert_eq!(c["fhirUser"], rid(&r2).as_str());
}

on_both_backends!(
    standalone_patient_launch,
    code_exchange_refusals,
    scope_escalation_is_refused,
    sixth_failed_password_is_locked,
    expired_and_replaced_sign_in_codes,
    refresh_after_ten_idle_minutes_is_refused,
    patient_under_14_is_refused,
    pages_speak_french_by_default_and_english_on_request,
    representative_picks_a_patient,
    ehr_launch_gives_the_practitioner_a_patient_context,
    v2_restrictions_narrow_every_read,
    password_reset_and_self_deactivation,
);

/// Tokens of a trusted external OpenID Connect provider are accepted in place of ours.
async fn external_issuer_tokens_are_accepted(backend: carnet_tests::Backend) {
    let key = carnet_tests::auth::ClientKey::es384();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("idp-jwks.json");
    std::fs::write(&jwks, key.jwks.to_string()).unwrap();
    let jwks_path = jwks.display().to_string();
    let s = TestServer::start_with(backend, move |c| {
        c.external_issuer = Some("https://idp.example".into());
        c.external_jwks = Some(jwks_path);
    })
    .await;
    let p = s
        .create(json!({"resourceType": "Patient", "birthDate": "1970-01-01"}))
        .await;
    let id = p["id"].as_str().unwrap();
    let now = s.state().now() / 1_000_000;
    let token = |aud: &str, iss: &str| {
        key.sign(
            &json!({"iss": iss, "aud": aud, "sub": "idp-user-1", "exp": now + 300, "scope": "patient/*.rs user/*.*",
                         "fhirUser": format!("https://ehr.example/fhir/Patient/{id}"), "patient": id}),
        )
    };
    let good = token(&s.base, "https://idp.example");
    let r = s
        .req_as(Some(&good), Method::GET, &format!("Patient/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // user/ scopes are not for a patient, even from the IdP.
    let r = s
        .req_as(Some(&good), Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType":"Patient"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    for bad in [
        token("https://other.example/fhir", "https://idp.example"),
        token(&s.base, "https://evil.example"),
    ] {
        let r = s
            .req_as(Some(&bad), Method::GET, &format!("Patient/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
    }
    s.stop().await;
}

/// The provider's JWKS over HTTPS (trusting the CA given by `external_jwks_ca`), read
/// again when a token names a key it does not hold, at most once a minute; a JWKS server
/// whose certificate is not trusted is never used.
async fn external_jwks_over_https_rotates(backend: carnet_tests::Backend) {
    let old = carnet_tests::auth::ClientKey::es384();
    let new = carnet_tests::auth::ClientKey::es384();
    let idp = carnet_tests::https::HttpsJson::start(old.jwks.to_string()).await;
    let (url, ca) = (idp.url.clone(), idp.ca_pem.clone());
    let s = TestServer::start_with(backend, move |c| {
        c.external_issuer = Some("https://idp.example".into());
        c.external_jwks = Some(url);
        c.external_jwks_ca = Some(ca);
    })
    .await;
    let p = s
        .create(json!({"resourceType": "Patient", "birthDate": "1970-01-01"}))
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    let token = |key: &carnet_tests::auth::ClientKey| {
        let now = s.state().now() / 1_000_000;
        key.sign(
            &json!({"iss": "https://idp.example", "aud": s.base, "sub": "idp-user-1", "exp": now + 300,
                         "scope": "patient/*.rs", "fhirUser": format!("Patient/{id}"), "patient": id}),
        )
    };
    let read = async |t: &str| {
        s.req_as(Some(t), Method::GET, &format!("Patient/{id}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(read(&token(&old)).await, 200);
    assert_eq!(idp.hits(), 1);
    // The provider rotates its key. Within the minute the JWKS is not read again.
    idp.set_body(new.jwks.to_string());
    assert_eq!(read(&token(&new)).await, 401);
    assert_eq!(idp.hits(), 1);
    s.clock.advance(Duration::from_secs(61));
    assert_eq!(read(&token(&new)).await, 200);
    assert_eq!(idp.hits(), 2);
    // The retired key is gone with the old JWKS; an unknown key does not read it again.
    assert_eq!(read(&token(&old)).await, 401);
    assert_eq!(idp.hits(), 2);
    s.stop().await;

    // Without the CA the provider's certificate is not trusted: no token is accepted.
    let url = idp.url.clone();
    let s = TestServer::start_with(backend, move |c| {
        c.external_issuer = Some("https://idp.example".into());
        c.external_jwks = Some(url);
    })
    .await;
    let p = s
        .create(json!({"resourceType": "Patient", "birthDate": "1970-01-01"}))
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    let now = s.state().now() / 1_000_000;
    let t = new.sign(
        &json!({"iss": "https://idp.example", "aud": s.base, "sub": "idp-user-1", "exp": now + 300,
                              "scope": "patient/*.rs", "fhirUser": format!("Patient/{id}"), "patient": id}),
    );
    let r = s
        .req_as(Some(&t), Method::GET, &format!("Patient/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(idp.hits(), 2, "the TLS handshake fails before any request");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_jwks_https_sqlite() {
    external_jwks_over_https_rotates(carnet_tests::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_jwks_https_postgres() {
    external_jwks_over_https_rotates(carnet_tests::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_issuer_sqlite() {
    external_issuer_tokens_are_accepted(carnet_tests::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_issuer_postgres() {
    external_issuer_tokens_are_accepted(carnet_tests::Backend::Postgres).await;
}

const LAB: &str = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

/// A final Observation of `patient` in `category`, issued long ago (published, R3).
async fn observation(s: &TestServer, patient: &str, category: &str) -> String {
    let o = s
        .create(json!({
            "resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
            "code": {"text": category}, "subject": {"reference": format!("Patient/{patient}")},
            "issued": "2020-01-01T00:00:00Z",
        }))
        .await;
    o["id"].as_str().unwrap().to_string()
}

async fn activated_practitioner(s: &TestServer) -> (String, String) {
    let p = s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Roy"}]}))
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    carnet::auth::accounts::invite(
        s.state(),
        &format!("Practitioner/{id}"),
        &[],
        Some("roy@example.org"),
        Lang::Fr,
    )
    .await
    .unwrap();
    let code = s.last_message()["code"].as_str().unwrap().to_string();
    let username = format!("roy-{}", &id[..8]);
    let r = s
        .anon
        .post(format!("{}/activate", s.auth_url()))
        .form(&[
            ("activation_code", code.as_str()),
            ("username", &username),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    (id, username)
}

fn bundle_ids(b: &Value) -> Vec<String> {
    let mut ids: Vec<String> = b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect();
    ids.sort();
    ids
}

async fn get_as(s: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let r = s.req_as(Some(token), Method::GET, path).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn ehr_launch_gives_the_practitioner_a_patient_context(s: &TestServer) {
    let (practitioner, username) = activated_practitioner(s).await;
    let a = s
        .create(json!({"resourceType": "Patient", "birthDate": "1970-01-01"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = s
        .create(json!({"resourceType": "Patient", "birthDate": "1971-01-01"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let oa = observation(s, &a, "laboratory").await;
    let _ob = observation(s, &b, "laboratory").await;
    let app = public_app(s, "launch openid fhirUser patient/*.rs user/Patient.rs").await;
    // Without a token, or with a patient's token, no launch can be registered.
    let r = s
        .anon
        .post(format!("{}/launch", s.auth_url()))
        .form(&[("patient", format!("Patient/{a}"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // The EHR (its backend token) registers the launch of this practitioner on patient A.
    let r = s
        .client
        .post(format!("{}/launch", s.auth_url()))
        .form(&[
            ("patient", format!("Patient/{a}")),
            ("practitioner", format!("Practitioner/{practitioner}")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let launch_id = r.json::<Value>().await.unwrap()["launch"].as_str().unwrap().to_string();
    let client = oauth_client(s, &app);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("aud", s.base.clone())
        .add_extra_param("launch", launch_id.clone())
        .set_pkce_challenge(challenge);
    for sc in [
        "launch",
        "openid",
        "fhirUser",
        "patient/Observation.rs",
        "user/Patient.rs",
    ] {
        req = req.add_scope(Scope::new(sc.to_string()));
    }
    let (url, _) = req.url();
    let pairs = sign_in(s, url.as_str(), &username, PASSWORD).await;
    let code = pair(&pairs, "code").expect("code").to_string();
    let http = browser();
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let access = token.access_token().secret().clone();
    let granted: Vec<String> = token.scopes().unwrap().iter().map(|s| s.to_string()).collect();
    assert!(granted.contains(&"patient/Observation.rs".to_string()), "{granted:?}");
    let c = claims(&access);
    assert_eq!(c["patient"], a.as_str());
    assert_eq!(c["fhirUser"], format!("Practitioner/{practitioner}"));
    let principal = carnet::auth::middleware::verify_uncached(s.state(), &access)
        .await
        .ok()
        .unwrap();
    assert_eq!(
        principal.actor,
        carnet::auth::Actor::Practitioner {
            id: practitioner.clone(),
            patient: Some(a.clone())
        }
    );
    // The token response carries the patient context (read through introspection of the same grant).
    let (st, search) = get_as(s, &access, "Observation").await;
    assert_eq!(st, 200, "{search}");
    assert_eq!(bundle_ids(&search), vec![format!("Observation/{oa}")]);
    // A launch id works once.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("aud", s.base.clone())
        .add_extra_param("launch", launch_id)
        .set_pkce_challenge(challenge)
        .add_scope(Scope::new("launch".into()))
        .url();
    let r = browser().get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(pair(&redirect_pairs(&r), "error"), Some("invalid_request"));
    // The raw token response names the patient.
    let r = s
        .client
        .post(format!("{}/launch", s.auth_url()))
        .form(&[("patient", format!("Patient/{b}"))])
        .send()
        .await
        .unwrap();
    let launch_b = r.json::<Value>().await.unwrap()["launch"].as_str().unwrap().to_string();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("aud", s.base.clone())
        .add_extra_param("launch", launch_b)
        .set_pkce_challenge(challenge)
        .add_scope(Scope::new("launch".into()))
        .add_scope(Scope::new("patient/Observation.rs".into()))
        .url();
    let pairs = sign_in(s, url.as_str(), &username, PASSWORD).await;
    let (st, tok) = raw_exchange(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", pair(&pairs, "code").unwrap()),
            ("redirect_uri", REDIRECT),
            ("client_id", &app),
            ("code_verifier", verifier.secret()),
        ],
    )
    .await;
    assert_eq!(st, 200, "{tok}");
    assert_eq!(tok["patient"], b.as_str());
    // A patient's token cannot register launches.
    let (_, patient_user) = activated_patient(s, "1980-01-01").await;
    let papp = public_app(s, "launch/patient patient/*.rs").await;
    let l = launch(s, &papp, &patient_user, &["launch/patient", "patient/*.rs"]).await;
    let (_, ptok) = raw_exchange(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &l.code),
            ("redirect_uri", REDIRECT),
            ("client_id", &papp),
            ("code_verifier", l.verifier.secret()),
        ],
    )
    .await;
    let r = s
        .anon
        .post(format!("{}/launch", s.auth_url()))
        .bearer_auth(ptok["access_token"].as_str().unwrap())
        .form(&[("patient", format!("Patient/{a}"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

async fn v2_restrictions_narrow_every_read(s: &TestServer) {
    let (patient, username) = activated_patient(s, "1990-05-17").await;
    let lab = observation(s, &patient, "laboratory").await;
    let vital = observation(s, &patient, "vital-signs").await;
    let restricted = format!("patient/Observation.rs?category={LAB}");
    let app = public_app(s, "launch/patient patient/*.rs").await;
    let l = launch(
        s,
        &app,
        &username,
        &["launch/patient", "patient/Patient.rs", &restricted],
    )
    .await;
    let (st, tok) = raw_exchange(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &l.code),
            ("redirect_uri", REDIRECT),
            ("client_id", &app),
            ("code_verifier", l.verifier.secret()),
        ],
    )
    .await;
    assert_eq!(st, 200, "{tok}");
    assert!(tok["scope"].as_str().unwrap().contains("category="), "{tok}");
    let t = tok["access_token"].as_str().unwrap();
    // read, vread, history
    assert_eq!(get_as(s, t, &format!("Observation/{lab}")).await.0, 200);
    assert_eq!(get_as(s, t, &format!("Observation/{vital}")).await.0, 404);
    assert_eq!(get_as(s, t, &format!("Observation/{vital}/_history/1")).await.0, 404);
    assert_eq!(get_as(s, t, &format!("Observation/{vital}/_history")).await.0, 404);
    assert_eq!(get_as(s, t, &format!("Observation/{lab}/_history")).await.0, 200);
    // search, count, include, revinclude
    let (st, b) = get_as(s, t, "Observation").await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(bundle_ids(&b), vec![format!("Observation/{lab}")]);
    let (_, b) = get_as(s, t, "Observation?_summary=count").await;
    assert_eq!(b["total"], 1, "{b}");
    let (_, b) = get_as(s, t, &format!("Observation?_id={vital}")).await;
    assert_eq!(b["total"], 0, "{b}");
    let (_, b) = get_as(s, t, "Observation?_include=Observation:subject").await;
    assert_eq!(
        bundle_ids(&b),
        vec![format!("Observation/{lab}"), format!("Patient/{patient}")]
    );
    let (_, b) = get_as(s, t, &format!("Patient?_id={patient}&_revinclude=Observation:subject")).await;
    assert_eq!(
        bundle_ids(&b),
        vec![format!("Observation/{lab}"), format!("Patient/{patient}")]
    );
    // The same patient with an unrestricted v1 scope sees both.
    let l = launch(s, &app, &username, &["launch/patient", "patient/Observation.read"]).await;
    let (_, tok) = raw_exchange(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &l.code),
            ("redirect_uri", REDIRECT),
            ("client_id", &app),
            ("code_verifier", l.verifier.secret()),
        ],
    )
    .await;
    let t = tok["access_token"].as_str().unwrap();
    let (_, b) = get_as(s, t, "Observation?_summary=count").await;
    assert_eq!(b["total"], 2, "{b}");
    assert_eq!(get_as(s, t, &format!("Observation/{vital}")).await.0, 200);
    // No scope reads Patients: not directly, and not through an include either.
    assert_eq!(get_as(s, t, &format!("Patient/{patient}")).await.0, 403);
    let (_, b) = get_as(s, t, "Observation?_include=Observation:subject").await;
    let mut want = vec![format!("Observation/{lab}"), format!("Observation/{vital}")];
    want.sort();
    assert_eq!(bundle_ids(&b), want, "{b}");
}

async fn password_reset_and_self_deactivation(s: &TestServer) {
    let (_, username) = activated_patient(s, "1990-05-17").await;
    let app = public_app(s, "launch/patient patient/*.rs").await;
    let scopes = ["launch/patient", "patient/*.rs"];
    let l = launch(s, &app, &username, &scopes).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", l.code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", app.as_str()),
        ("code_verifier", l.verifier.secret().as_str()),
    ];
    let (st, before) = raw_exchange(s, &form).await;
    assert_eq!(st, 200);
    let old_token = before["access_token"].as_str().unwrap().to_string();
    // Reset: ask for a code, a wrong code is refused, the right one sets the password.
    let reset = format!("{}/reset", s.auth_url());
    let r = s
        .anon
        .post(&reset)
        .form(&[("username", username.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let code = s.last_message()["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let new_password = "un autre mot de passe";
    let r = s
        .anon
        .post(&reset)
        .form(&[
            ("username", username.as_str()),
            ("code", wrong),
            ("password", new_password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = s
        .anon
        .post(&reset)
        .form(&[
            ("username", username.as_str()),
            ("code", code.as_str()),
            ("password", new_password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    // The reset ended the sessions the old password opened; the old password no longer works.
    assert_eq!(
        s.req_as(Some(&old_token), Method::GET, "Patient")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let http = browser();
    let html = http
        .get(format!(
            "{}/authorize?response_type=code&client_id={app}&redirect_uri={REDIRECT}&code_challenge=abc&code_challenge_method=S256&aud={}",
            s.auth_url(),
            s.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tx = hidden_tx(&html);
    let r = http
        .post(format!("{}/authorize", s.auth_url()))
        .form(&[
            ("tx", tx.as_str()),
            ("username", username.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Signing in with the new password works.
    let client = oauth_client(s, &app);
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("aud", s.base.clone())
        .set_pkce_challenge(challenge)
        .add_scope(Scope::new("patient/*.rs".into()))
        .url();
    let pairs = sign_in(s, url.as_str(), &username, new_password).await;
    assert!(pair(&pairs, "code").is_some(), "{pairs:?}");
    // Self-deactivation: a wrong password is refused, the right one deactivates.
    let deactivate = format!("{}/deactivate", s.auth_url());
    let r = s
        .anon
        .post(&deactivate)
        .form(&[("username", username.as_str()), ("password", "pas le bon mot de passe")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = s
        .anon
        .post(&deactivate)
        .form(&[("username", username.as_str()), ("password", new_password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    // Then sign-in is refused.
    let html = http.get(url.as_str()).send().await.unwrap().text().await.unwrap();
    let tx = hidden_tx(&html);
    let r = http
        .post(format!("{}/authorize", s.auth_url()))
        .form(&[
            ("tx", tx.as_str()),
            ("username", username.as_str()),
            ("password", new_password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}
