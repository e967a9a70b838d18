//! Shared by the `policy_*` tests: tokens through the real flows (activation, password,
//! e-mailed code, PKCE code exchange; client_credentials for systems), requests that
//! remember every answer (for the audit checks), and page walking.

#![allow(dead_code)]

use std::sync::Mutex;

use carnet::auth::clients::{self, Credential, Registration};
use carnet::auth::i18n::Lang;
use carnet_tests::{Backend, TestServer};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use reqwest::Method;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const PASSWORD: &str = "un mot de passe solide";

pub const PATIENT_SCOPES: &[&str] = &["launch/patient", "openid", "fhirUser", "patient/*.cruds"];
pub const PRACTITIONER_SCOPES: &[&str] = &["openid", "fhirUser", "user/*.cruds"];

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An access token for `fhir_user` (Patient/…, RelatedPerson/…, Practitioner/…) through
/// activation, sign-in and the code exchange; `None` when sign-in is refused (a
/// RelatedPerson whose relationship grants nothing).
pub async fn user_token(s: &TestServer, fhir_user: &str, scopes: &[&str]) -> Option<String> {
    let username = format!("u-{}", fhir_user.replace('/', "-"));
    if carnet::auth::accounts::invite(s.state(), fhir_user, &[], Some("x@example.org"), Lang::Fr)
        .await
        .is_ok()
    {
        let code = s.last_message()["code"].as_str().unwrap().to_string();
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
        // Activation refuses whom nothing grants access (R6).
        if r.status().as_u16() == 403 {
            return None;
        }
        assert_eq!(r.status().as_u16(), 200);
    }
    let app = format!("app-{}", uuid::Uuid::new_v4().simple());
    let reg = Registration {
        client_id: app.clone(),
        name: "app".into(),
        redirect_uris: vec![REDIRECT.into()],
        scopes: scopes.join(" "),
        credential: Credential::Public,
    };
    clients::register(s.state().store(), &reg, s.state().now())
        .await
        .unwrap();
    let client = BasicClient::new(ClientId::new(app.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/authorize", s.auth_url())).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/token", s.auth_url())).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("aud", s.base.clone())
        .set_pkce_challenge(challenge);
    for sc in scopes {
        req = req.add_scope(Scope::new(sc.to_string()));
    }
    let (url, _) = req.url();
    let http = browser();
    let html = http.get(url.as_str()).send().await.unwrap().text().await.unwrap();
    let start = html.find("name=\"tx\" value=\"").unwrap() + "name=\"tx\" value=\"".len();
    let tx = html[start..].split('"').next().unwrap().to_string();
    let authz = format!("{}/authorize", s.auth_url());
    let r = http
        .post(&authz)
        .form(&[("tx", tx.as_str()), ("username", &username), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    if !r.text().await.unwrap().contains("name=\"code\"") {
        return None;
    }
    let code = s.last_message()["code"].as_str().unwrap().to_string();
    let r = http
        .post(&authz)
        .form(&[("tx", tx.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    if r.status().as_u16() != 303 {
        return None;
    }
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let code = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    Some(token.access_token().secret().clone())
}

/// A fresh `system/*.*` backend token (client_credentials with a signed assertion).
pub async fn system_token(s: &TestServer) -> String {
    let key = carnet_tests::auth::ClientKey::es384();
    let client_id = format!("feed-{}", uuid::Uuid::new_v4().simple());
    carnet_tests::auth::register_jwks_client(s.state(), &client_id, "system/*.*", &key).await;
    let token_url = format!("{}/token", s.auth_url());
    let now = s.state().now() / 1_000_000;
    let (st, body) =
        carnet_tests::auth::client_credentials(&s.anon, &token_url, &client_id, &key, "system/*.*", now).await;
    assert_eq!(st, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// One answer the test saw: what its AuditEvent must say.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The URL path (no query).
    pub path: String,
    pub status: u16,
}

/// Sends requests and remembers every answer.
#[derive(Default)]
pub struct Log {
    pub seen: Mutex<Vec<Seen>>,
}

impl Log {
    pub async fn send(
        &self,
        s: &TestServer,
        token: Option<&str>,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> (u16, String) {
        let mut r = s.req_as(token, method.clone(), url);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/fhir+json")
                .body(serde_json::to_vec(b).unwrap());
        }
        let r = r.send().await.unwrap();
        let st = r.status().as_u16();
        let path = r.url().path().to_string();
        let text = r.text().await.unwrap();
        let mut seen = self.seen.lock().unwrap();
        // A Bundle's entries are audited one by one: so are they remembered.
        if method == Method::POST && path.trim_end_matches('/').ends_with("/fhir") && st == 200 {
            let req: &Value = body.unwrap();
            let resp: Value = serde_json::from_str(&text).unwrap();
            for (e, a) in req["entry"]
                .as_array()
                .unwrap()
                .iter()
                .zip(resp["entry"].as_array().unwrap())
            {
                let url = e["request"]["url"].as_str().unwrap();
                let entry_path = url.split('?').next().unwrap().trim_start_matches('/');
                let status: u16 = a["response"]["status"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                seen.push(Seen {
                    method: e["request"]["method"].as_str().unwrap().to_string(),
                    path: format!("{}/{entry_path}", path.trim_end_matches('/')),
                    status,
                });
            }
        } else {
            seen.push(Seen {
                method: method.to_string(),
                path,
                status: st,
            });
        }
        (st, text)
    }

    pub async fn get(&self, s: &TestServer, token: Option<&str>, url: &str) -> (u16, String) {
        self.send(s, token, Method::GET, url, None).await
    }
}

// `Type/id` of each entry's resource, for the tests that include this module.
#[allow(unused_imports)]
pub use carnet_tests::entry_ids;

// Page walking for the tests that include this module; not all of them walk pages.
#[allow(unused_imports)]
pub use carnet_tests::next_link;

/// The AuditEvents in the database, read with SQL (no policy, no audit of the reading).
///
/// The audit trail is the stored AuditEvents plus the rows of the audit log not yet
/// projected into AuditEvents (both committed before their response left; a logged
/// event carries the id it will be stored under).
pub async fn audit_events(backend: Backend, database_url: &str) -> Vec<Value> {
    use sqlx::Connection;
    const STORED: &str = "SELECT v.content FROM resources r JOIN resource_versions v ON v.pk = r.pk \
                          AND v.version = r.version WHERE r.res_type = 'AuditEvent'";
    const LOGGED: &str = "SELECT event FROM audit_log";
    let log_url = carnet_tests::audit_log_url(backend, database_url);
    // The log is read before the stored events (an event is stored before its row
    // leaves the log): a row projected in between is then seen twice (its id tells),
    // never missed.
    let mut rows: Vec<Vec<u8>> = Vec::new();
    for (url, sql) in [(log_url.as_str(), LOGGED), (database_url, STORED)] {
        let more: Vec<Vec<u8>> = match backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
        };
        rows.extend(more);
    }
    let mut seen = std::collections::HashSet::new();
    rows.iter()
        .map(|b| serde_json::from_slice::<Value>(b).unwrap())
        .filter(|e| e["id"].as_str().is_none_or(|id| seen.insert(id.to_string())))
        .collect()
}

/// Every answer in `seen` has an AuditEvent with its interaction path, status and
/// outcome (`outcomeDesc` is "status path"; outcome 0/4/8): as many as were seen.
pub fn assert_audited(events: &[Value], seen: &[Seen]) {
    assert!(!events.is_empty(), "no AuditEvent at all");
    let mut have: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for e in events {
        let outcome = e["outcome"].as_str().unwrap_or_default();
        let desc = e["outcomeDesc"].as_str().unwrap_or_default();
        *have.entry(format!("{outcome} {desc}")).or_default() += 1;
    }
    let mut want: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for s in seen {
        let outcome = match s.status {
            x if x < 400 => "0",
            x if x < 500 => "4",
            _ => "8",
        };
        *want.entry(format!("{outcome} {} {}", s.status, s.path)).or_default() += 1;
    }
    let missing: Vec<String> = want
        .iter()
        .filter(|(k, n)| have.get(*k).copied().unwrap_or(0) < **n)
        .map(|(k, n)| format!("{k} (seen {n}, audited {})", have.get(k).copied().unwrap_or(0)))
        .collect();
    assert!(missing.is_empty(), "answers without their AuditEvent: {missing:#?}");
}
