//! `carnet demo` as a real process against a running server's database, on both
//! backends: run twice (the second run changes nothing), then the data, the accounts
//! and the demo app are checked over HTTP, signing in as the demo users through the
//! real authorization-code flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use carnet_tests::{TestServer, on_both_backends};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use reqwest::Method;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:8765/callback";

struct Out {
    ok: bool,
    stdout: String,
}

async fn demo(s: &TestServer, dir: &Path) -> Out {
    let args: Vec<String> = vec![
        "demo".into(),
        "--database-url".into(),
        s.database_url.clone(),
        "--base-url".into(),
        s.base.clone(),
        "--outbox-dir".into(),
        dir.join("outbox").display().to_string(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
    ];
    let cwd = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(carnet_tests::bin::carnet_binary())
            .args(&args)
            .current_dir(&cwd)
            .env_remove("CARNET_CONFIG")
            .output()
            .expect("run carnet");
        let o = Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        };
        eprintln!(
            "$ carnet {}\n{}{}",
            args.join(" "),
            o.stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        o
    })
    .await
    .unwrap()
}

/// Signs in with the demo app (public client, PKCE) as `username` with the demo
/// password, the 6-digit code taken from the server's outbox.
async fn sign_in(s: &TestServer, username: &str, scopes: &[&str]) -> String {
    let client = BasicClient::new(ClientId::new("demo-app".into()))
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
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = http.get(url.as_str()).send().await.unwrap().text().await.unwrap();
    let start = html.find("name=\"tx\" value=\"").expect(&html) + "name=\"tx\" value=\"".len();
    let tx = html[start..].split('"').next().unwrap().to_string();
    let authz = format!("{}/authorize", s.auth_url());
    let r = http
        .post(&authz)
        .form(&[("tx", tx.as_str()), ("username", username), ("password", "carnet-demo")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let code = s.last_message()["code"].as_str().unwrap().to_string();
    let r = http
        .post(&authz)
        .form(&[("tx", tx.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(REDIRECT), "{loc}");
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
    token.access_token().secret().clone()
}

async fn as_get(s: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let r = s.req_as(Some(token), Method::GET, path).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
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
        .collect()
}

async fn demo_data_set(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let first = demo(s, dir.path()).await;
    assert!(first.ok);
    assert!(first.stdout.contains("Demo data loaded"), "{}", first.stdout);
    assert!(first.stdout.contains("client_id demo-app"));
    assert!(
        first
            .stdout
            .contains("/authorize?response_type=code&client_id=demo-app")
    );
    let (st, b) = s.get_json("Observation?_summary=count").await;
    assert_eq!(st, 200);
    // Marc refused sharing: a system client does not count his result (R4).
    let observations = b["total"].as_i64().unwrap();
    assert_eq!(observations, 11, "{b}");

    // A second run changes nothing: no new resource, no new version, no new account.
    let second = demo(s, dir.path()).await;
    assert!(second.ok);
    assert!(second.stdout.contains("already present"), "{}", second.stdout);
    assert!(second.stdout.contains("already active"), "{}", second.stdout);
    assert!(second.stdout.contains("(already registered)"), "{}", second.stdout);
    assert_eq!(s.get_json("Observation?_summary=count").await.1["total"], observations);
    let (_, lea) = s.get_json("Patient/demo-lea").await;
    assert_eq!(lea["meta"]["versionId"], "1");
    let (_, hist) = s.get_json("Appointment/demo-lea-proposed/_history").await;
    assert_eq!(ids(&hist).len(), 1);
    let (_, patients) = s.get_json("Patient?_summary=count").await;
    // Léa and Noah (Marc's refusal hides his Patient from a system client).
    assert_eq!(patients["total"], 2);

    // Léa signs in with the demo app and reads her whole record: the lab series, the
    // X-ray report, the appointments, her medications; not the held-back results.
    let lea = sign_in(s, "lea", &["launch/patient", "openid", "fhirUser", "patient/*.rs"]).await;
    let (st, all) = as_get(s, &lea, "Patient/demo-lea/$everything?_count=100").await;
    assert_eq!(st, 200, "{all}");
    let got = ids(&all);
    for want in [
        "Patient/demo-lea",
        "Observation/demo-lea-hba1c-1",
        "Observation/demo-lea-hba1c-4",
        "Observation/demo-lea-ldl-4",
        "DiagnosticReport/demo-lea-chest-xray",
        "Appointment/demo-lea-followup",
        "Appointment/demo-lea-proposed",
        "MedicationRequest/demo-lea-metformin",
        "Condition/demo-lea-diabetes",
    ] {
        assert!(got.contains(&want.to_string()), "{want} missing: {got:?}");
    }
    assert!(
        !got.contains(&"Observation/demo-lea-hiv".to_string()),
        "sensitive: {got:?}"
    );
    assert!(
        !got.contains(&"Observation/demo-lea-glucose-recent".to_string()),
        "delayed: {got:?}"
    );
    let (_, a1c) = as_get(s, &lea, "Observation?code=http://loinc.org|4548-4&_sort=date").await;
    assert_eq!(ids(&a1c).len(), 4);
    assert!(a1c["entry"][0]["resource"]["referenceRange"][0]["high"]["value"].is_number());
    assert_eq!(as_get(s, &lea, "Patient/demo-noah").await.0, 404);

    // The practitioner sees the sensitive result; Marc's refusal makes his record 403.
    let dr = sign_in(s, "dr.cote", &["openid", "fhirUser", "user/*.cruds"]).await;
    let (st, all) = as_get(s, &dr, "Patient/demo-lea/$everything?_count=100").await;
    assert_eq!(st, 200);
    let got = ids(&all);
    assert!(got.contains(&"Observation/demo-lea-hiv".to_string()));
    assert!(got.contains(&"Practitioner/demo-cote".to_string()));
    assert!(got.contains(&"Medication/demo-metformin".to_string()));
    assert_eq!(as_get(s, &dr, "Patient/demo-marc").await.0, 403);
    assert_eq!(as_get(s, &dr, "Patient/demo-marc/$everything").await.0, 403);

    // Noah's father reads Noah's record (Noah is 8).
    let olivier = sign_in(s, "olivier", &["launch/patient", "openid", "fhirUser", "patient/*.rs"]).await;
    let (st, noah) = as_get(s, &olivier, "Patient/demo-noah/$everything").await;
    assert_eq!(st, 200, "{noah}");
    let got = ids(&noah);
    assert!(got.contains(&"Immunization/demo-noah-mmr".to_string()), "{got:?}");
    assert!(got.contains(&"Observation/demo-noah-weight".to_string()), "{got:?}");
    assert_eq!(as_get(s, &olivier, "Patient/demo-lea").await.0, 404);
}

on_both_backends!(demo_data_set);

/// The first ```sh block after `heading` in README.md.
fn readme_block(heading: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let at = readme.find(heading).expect("README heading");
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = rest[start..].find("```").expect("the block's end");
    rest[start..start + end].to_string()
}

/// README's "Demo data" block as written, against a real `carnet` on an empty SQLite
/// database: only the port and the `cargo run --release --` prefix are replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_demo_block() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let script = readme_block("## Demo data");
    assert!(script.contains("127.0.0.1:8080") && script.contains("cargo run --release -- demo"));
    let bin = carnet_tests::bin::carnet_binary().to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let clean = |c: &mut tokio::process::Command| {
        for v in [
            "CARNET_CONFIG",
            "CARNET_DATABASE_URL",
            "CARNET_OUTBOX_DIR",
            "CARNET_DATA_DIR",
            "CARNET_BASE_URL",
        ] {
            c.env_remove(v);
        }
    };
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(tmp.path())
        .env("CARNET_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    clean(&mut cmd);
    let mut server = cmd.spawn().unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("Carnet is serving") {
                return;
            }
        }
        panic!("carnet exited before it was ready");
    })
    .await
    .expect("carnet ready within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let script = script
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("cargo run --release --", &bin.display().to_string());
    let mut cmd = tokio::process::Command::new("bash");
    cmd.args(["-c", &format!("set -euo pipefail -x\n{script}")])
        .current_dir(tmp.path());
    clean(&mut cmd);
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let context = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(out.status.success(), "the demo block failed\n{context}");
    let base = format!("http://127.0.0.1:{port}/fhir");
    for want in [
        "Patient/demo-lea",
        "Observation/demo-lea-hba1c-1",
        "DiagnosticReport/demo-lea-chest-xray",
        "Appointment/demo-lea-proposed",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("{base}/{want}")),
            "{want} missing\n{context}"
        );
    }
    assert!(!stdout.contains("demo-lea-hiv"), "{context}");
    assert!(!stdout.contains("demo-lea-glucose-recent"), "{context}");
    let _ = server.kill().await;
}
