//! The `carnet` binary as a real process: the administration subcommands (`client
//! register|list`, `account invite|list|unlock`) against the database of a running
//! server on both backends, and the first-run message of `carnet` on an empty SQLite
//! database followed to a working token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use carnet_tests::{TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

fn carnet_bin() -> &'static Path {
    carnet_tests::bin::carnet_binary()
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `carnet <args>` to completion (off the async workers).
async fn carnet(args: Vec<String>, cwd: PathBuf) -> Out {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(carnet_bin())
            .args(&args)
            .current_dir(&cwd)
            .env_remove("CARNET_CONFIG")
            .output()
            .expect("run carnet");
        let o = Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("$ carnet {}\n{}{}", args.join(" "), o.stdout, o.stderr);
        o
    })
    .await
    .expect("join")
}

/// An administration command against `s`'s database, with the outbox and data folders in `dir`.
async fn admin(s: &TestServer, dir: &Path, args: &[&str]) -> Out {
    let mut v: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    v.extend([
        "--database-url".into(),
        s.database_url.clone(),
        "--outbox-dir".into(),
        dir.join("outbox").display().to_string(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
    ]);
    carnet(v, dir.to_path_buf()).await
}

/// The messages in an outbox folder, oldest first.
fn outbox(dir: &Path) -> Vec<Value> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|x| x == "json"));
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// `A-000000`: a capital letter, a dash, six digits (policy, "Accounts").
fn is_activation_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 8 && b[0].is_ascii_uppercase() && b[1] == b'-' && b[2..].iter().all(u8::is_ascii_digit)
}

async fn administration_commands(s: &TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // Clients: public, and with a generated secret that then gets a token.
    let o = admin(
        s,
        dir,
        &[
            "client",
            "register",
            "--client-id",
            "cli-app",
            "--public",
            "--redirect-uri",
            "http://localhost:3000/callback",
            "--scope",
            "launch/patient openid fhirUser patient/*.rs",
        ],
    )
    .await;
    assert!(o.ok, "{}", o.stderr);
    assert!(o.stdout.contains("registered client cli-app"), "{}", o.stdout);
    let o = admin(
        s,
        dir,
        &[
            "client",
            "register",
            "--client-id",
            "cli-svc",
            "--secret",
            "--scope",
            "system/*.rs",
        ],
    )
    .await;
    assert!(o.ok, "{}", o.stderr);
    let secret = o
        .stdout
        .lines()
        .find_map(|l| {
            l.split_once("client secret (shown once, stored hashed): ")
                .map(|(_, s)| s.trim().to_string())
        })
        .expect("secret printed");
    let r = s
        .anon
        .post(format!("{}/token", s.auth_url()))
        .basic_auth("cli-svc", Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "system/*.rs")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["scope"], "system/*.rs");
    // The same id again is refused; an unknown scope too.
    let o = admin(
        s,
        dir,
        &[
            "client",
            "register",
            "--client-id",
            "cli-app",
            "--public",
            "--scope",
            "patient/*.rs",
        ],
    )
    .await;
    assert!(!o.ok);
    assert!(o.stderr.contains("already exists"), "{}", o.stderr);
    let o = admin(
        s,
        dir,
        &[
            "client",
            "register",
            "--client-id",
            "x",
            "--public",
            "--scope",
            "everything",
        ],
    )
    .await;
    assert!(!o.ok);
    assert!(o.stderr.contains("unknown scopes: everything"), "{}", o.stderr);

    let o = admin(s, dir, &["client", "list"]).await;
    assert!(o.ok, "{}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cli-app\tpublic\t") && l.contains("patient/*.rs")),
        "{}",
        o.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cli-svc\t") && l.ends_with("system/*.rs")),
        "{}",
        o.stdout
    );

    // Accounts: the invited Patient must exist.
    let p = s
        .create(json!({
            "resourceType": "Patient", "name": [{"family": "Bouchard", "given": ["Maude"]}],
            "birthDate": "1985-03-02", "telecom": [{"system": "email", "value": "maude@example.org"}],
        }))
        .await;
    let fhir_user = format!("Patient/{}", p["id"].as_str().unwrap());
    let o = admin(s, dir, &["account", "invite", "--fhir-user", &fhir_user]).await;
    assert!(o.ok, "{}", o.stderr);
    let code = o
        .stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("activation code: ")
                .and_then(|r| r.split_whitespace().next())
        })
        .expect("activation code printed")
        .to_string();
    assert!(is_activation_code(&code), "{code}");
    assert!(o.stdout.contains("sent to maude@example.org"), "{}", o.stdout);
    let sent = outbox(&dir.join("outbox"));
    let msg = sent
        .iter()
        .find(|m| m["code"] == code.as_str())
        .expect("the code is in the outbox");
    assert_eq!(msg["to"], "maude@example.org");
    assert!(msg["body"].as_str().unwrap().contains(&code));
    assert!(msg["subject"].as_str().is_some_and(|t| !t.is_empty()));

    let o = admin(s, dir, &["account", "list"]).await;
    assert!(o.ok, "{}", o.stderr);
    let row = o
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{fhir_user}\t")))
        .expect("listed");
    let cols: Vec<&str> = row.split('\t').collect();
    assert_eq!(cols[1..], ["-", "Invited", "false", "0"], "{row}");

    // Lock the account (five failures, as the sign-in page records them), then unlock it.
    let account = carnet::auth::accounts::by_fhir_user(s.state().store(), &fhir_user)
        .await
        .unwrap()
        .unwrap();
    for _ in 0..5 {
        carnet::auth::lockout::record_failure(s.state().store(), &account.id)
            .await
            .unwrap();
    }
    let o = admin(s, dir, &["account", "list"]).await;
    let row = o
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{fhir_user}\t")))
        .expect("listed");
    assert_eq!(row.split('\t').nth(3), Some("true"), "{row}");
    let o = admin(s, dir, &["account", "unlock", &fhir_user]).await;
    assert!(o.ok, "{}", o.stderr);
    assert!(o.stdout.contains(&format!("unlocked {fhir_user}")), "{}", o.stdout);
    let o = admin(s, dir, &["account", "list"]).await;
    let row = o
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{fhir_user}\t")))
        .expect("listed");
    assert_eq!(row.split('\t').collect::<Vec<_>>()[3..], ["false", "0"], "{row}");

    // Bad invocations: non-zero, and a message that says what is wrong.
    let o = admin(s, dir, &["account", "invite", "--fhir-user", "Observation/1"]).await;
    assert!(!o.ok);
    assert!(
        o.stderr
            .contains("--fhir-user must be Patient/<id>, RelatedPerson/<id> or Practitioner/<id>"),
        "{}",
        o.stderr
    );
    let o = admin(s, dir, &["account", "invite", "--fhir-user", "Patient/nobody"]).await;
    assert!(!o.ok);
    assert!(o.stderr.contains("Patient/nobody does not exist"), "{}", o.stderr);
    let o = admin(s, dir, &["account", "unlock", "nobody"]).await;
    assert!(!o.ok);
    assert!(o.stderr.contains("no account nobody"), "{}", o.stderr);
    let o = admin(s, dir, &["account", "invite"]).await;
    assert!(!o.ok);
    assert!(o.stderr.contains("--fhir-user"), "{}", o.stderr);
    // Nothing else was sent.
    assert_eq!(outbox(&dir.join("outbox")).len(), 1);
}

on_both_backends!(administration_commands);

/// `carnet client register` on a database nothing has opened yet creates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_on_a_new_sqlite_database() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/new/carnet.db", tmp.path().display());
    let args = |extra: &[&str]| {
        let mut v: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        v.extend(["--database-url".into(), url.clone()]);
        v
    };
    let o = carnet(
        args(&[
            "client",
            "register",
            "--client-id",
            "svc",
            "--secret",
            "--scope",
            "system/*.*",
        ]),
        tmp.path().to_path_buf(),
    )
    .await;
    assert!(o.ok, "{}", o.stderr);
    let o = carnet(args(&["client", "list"]), tmp.path().to_path_buf()).await;
    assert!(o.ok, "{}", o.stderr);
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with("svc\tconfidential-symmetric\t") || l.starts_with("svc\t"))
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `carnet` on an empty database registers an administration client and prints how to
/// get a token; doing exactly that gives a token that creates and reads a Patient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_message_leads_to_a_token() {
    let bin = carnet_bin().to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = tokio::process::Command::new(&bin)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(tmp.path())
        .env_remove("CARNET_CONFIG")
        .env_remove("CARNET_DATABASE_URL")
        .env_remove("CARNET_DATA_DIR")
        .env_remove("CARNET_BASE_URL")
        .env("CARNET_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let curl = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push(line.clone());
            if line.trim_start().starts_with("TOKEN=$(curl") {
                return line;
            }
        }
        panic!("carnet exited before printing the token command: {printed:?}");
    })
    .await
    .expect("the token command within 60 s");
    let all = printed.join("\n");
    assert!(
        all.contains("First run: registered the local administration client 'carnet-admin'"),
        "{all}"
    );
    assert!(all.contains(&format!("http://127.0.0.1:{port}/fhir")), "{all}");

    // TOKEN=$(curl -s -u carnet-admin:$(cat <file>) -d grant_type=client_credentials -d scope='system/*.*' <url> | sed …)
    let words: Vec<&str> = curl.split_whitespace().collect();
    let user = words[words.iter().position(|w| *w == "-u").unwrap() + 1];
    let (client_id, rest) = user
        .split_once(":$(cat")
        .map(|(a, b)| (a, b.trim()))
        .unwrap_or((user, ""));
    let secret_file = if rest.is_empty() {
        words[words.iter().position(|w| *w == "-u").unwrap() + 2].trim_end_matches(')')
    } else {
        rest.trim_end_matches(')')
    };
    let form: Vec<(String, String)> = words
        .windows(2)
        .filter(|w| w[0] == "-d")
        .map(|w| {
            let (k, v) = w[1].split_once('=').unwrap();
            (k.to_string(), v.trim_matches('\'').to_string())
        })
        .collect();
    let url = words.iter().find(|w| w.starts_with("http://")).unwrap().to_string();
    assert_eq!(url, format!("http://127.0.0.1:{port}/auth/token"));
    assert_eq!(client_id, "carnet-admin");
    let secret_path = tmp.path().join(secret_file);
    let secret = std::fs::read_to_string(&secret_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!all.contains(&secret), "the secret is not printed");

    let http = reqwest::Client::new();
    let r = http
        .post(&url)
        .basic_auth(client_id, Some(&secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(body["scope"], "system/*.*");

    // The printed shell line works as printed too (its sed extracts the token).
    if which("curl") {
        let out = tokio::process::Command::new("bash")
            .args(["-c", &format!("{curl}\nprintf %s \"$TOKEN\"")])
            .current_dir(tmp.path())
            .output()
            .await
            .unwrap();
        let shell_token = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            shell_token.split('.').count() == 3 && !shell_token.contains('{'),
            "{shell_token}"
        );
    }

    let base = format!("http://127.0.0.1:{port}/fhir");
    let r = http
        .post(format!("{base}/Patient"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType":"Patient","name":[{"family":"Tremblay","given":["Élise"]}],"birthDate":"1980-02-29"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let r = http
        .get(format!("{base}/Patient/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let read: Value = r.json().await.unwrap();
    assert_eq!(read["name"][0]["given"][0], "Élise");
    // Without the token: 401.
    let r = http
        .request(Method::GET, format!("{base}/Patient/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(tmp.path().join("carnet-data").join("carnet.db").is_file());

    child.kill().await.unwrap();
    let _ = child.wait().await;

    // A second start on the same database registers nothing and points at the same file.
    let port = free_port();
    let mut child = tokio::process::Command::new(&bin)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(tmp.path())
        .env("CARNET_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push(line.clone());
            if line.trim_start().starts_with("TOKEN=$(curl") {
                return;
            }
        }
        panic!("carnet exited early: {printed:?}");
    })
    .await
    .expect("the token command within 60 s");
    let all = printed.join("\n");
    assert!(!all.contains("First run"), "{all}");
    assert_eq!(std::fs::read_to_string(&secret_path).unwrap(), secret);
    child.kill().await.unwrap();
    let _ = child.wait().await;
}

fn which(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
