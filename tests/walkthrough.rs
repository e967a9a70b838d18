//! README's "SMART walk-through with curl", run as written against a real `carnet`
//! process on an empty SQLite database: the shell block is taken from README.md and
//! only the port and the `cargo run --release --` prefix (the binary's path) are
//! replaced. It needs bash, curl, jq and openssl, as the README does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn carnet_bin() -> &'static Path {
    carnet_tests::bin::carnet_binary()
}

/// The first ```sh block after `heading` in README.md.
fn readme_block(heading: &str) -> String {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let at = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = rest[start..].find("```").expect("the block's end");
    rest[start..start + end].to_string()
}

fn tool(name: &str) -> bool {
    std::process::Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        || std::process::Command::new(name)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_smart_walkthrough() {
    for t in ["bash", "curl", "jq", "openssl"] {
        assert!(tool(t), "the README walk-through needs {t}");
    }
    let script = readme_block("## SMART walk-through with curl");
    assert!(script.contains("127.0.0.1:8080") && script.contains("cargo run --release --"));

    let bin = carnet_bin().to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // "With the server running (`cargo run --release`)": the same binary, another port.
    let mut server = tokio::process::Command::new(&bin)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(tmp.path())
        .env_remove("CARNET_CONFIG")
        .env_remove("CARNET_DATABASE_URL")
        .env_remove("CARNET_OUTBOX_DIR")
        .env_remove("CARNET_DATA_DIR")
        .env_remove("CARNET_BASE_URL")
        .env("CARNET_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.trim_start().starts_with("TOKEN=$(curl") {
                return;
            }
        }
        panic!("carnet exited before it was ready");
    })
    .await
    .expect("carnet ready within 60 s");
    // Keep reading the server's stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let script = script
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("cargo run --release --", &bin.display().to_string());
    // What the walk-through leaves in its variables, for the checks below.
    let shown = "\nprintf '\\n@ACT=%s\\n@SIX=%s\\n@CODE=%s\\n@PTOKEN=%s\\n' \"$ACT\" \"$SIX\" \"$CODE\" \"$PTOKEN\"\n";
    let out = tokio::process::Command::new("bash")
        .args(["-c", &format!("set -euo pipefail -x\n{script}{shown}")])
        .current_dir(tmp.path())
        .env_remove("CARNET_DATABASE_URL")
        .env_remove("CARNET_OUTBOX_DIR")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "the walk-through failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let var = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("@{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_string()
    };
    let context = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");

    let act = var("ACT");
    let b = act.as_bytes();
    assert!(
        b.len() == 8 && b[0].is_ascii_uppercase() && b[1] == b'-' && b[2..].iter().all(u8::is_ascii_digit),
        "activation code {act:?}\n{context}"
    );
    let six = var("SIX");
    assert!(
        six.len() == 6 && six.bytes().all(|c| c.is_ascii_digit()),
        "sign-in code {six:?}\n{context}"
    );
    assert!(
        !var("CODE").is_empty() && !var("CODE").contains('/'),
        "authorization code\n{context}"
    );
    let ptoken = var("PTOKEN");
    let c = claims(&ptoken);
    assert_eq!(c["patient"], "lea", "{c}");
    assert!(c["scope"].as_str().unwrap().contains("patient/*.rs"), "{c}");

    // Step 7: the patient reads her record and may not delete it.
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with('@') && !l.is_empty())
        .collect();
    let last = lines.last().copied().unwrap_or_default();
    assert!(last.ends_with("403"), "{context}");
    // The activation page's HTML has no final newline: the read follows it on the same line.
    let json = &last[last.rfind("{\"resourceType\"").unwrap_or(0)..];
    let read: Value = serde_json::from_str(json.trim_end_matches("403"))
        .unwrap_or_else(|e| panic!("Patient/lea as JSON: {e}\n{context}"));
    assert_eq!(read["resourceType"], "Patient", "{context}");
    assert_eq!(read["id"], "lea");

    // And the token works from here too.
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/fhir/Patient/lea"))
        .bearer_auth(&ptoken)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    server.kill().await.unwrap();
    let _ = server.wait().await;
}
