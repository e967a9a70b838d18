//! The `carnet` binary for the tests that run it as a real process (the command line,
//! the README walk-through, kill -9, imports).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The debug `carnet` binary, built (once per test process) if needed.
pub fn carnet_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build)
}

/// `cargo build -p carnet` into the same target directory, then the binary's path
/// (`$CARGO_TARGET_DIR/debug/carnet`, else `target/debug/carnet`).
///
/// Cargo keeps the target directory locked while it runs tests (rust-lang/rust#35816),
/// so under `cargo test` the nested build can wait forever on its own parent: when it
/// reports waiting for the lock and our parent is cargo, it is stopped and the binary
/// already built is used, provided it is newer than every source file of the server.
fn build() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().unwrap();
    let mut build = Command::new(cargo)
        .args(["build", "-p", "carnet", "--bin", "carnet"])
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cargo build");
    let blocked = Arc::new(AtomicBool::new(false));
    let stderr = build.stderr.take().unwrap();
    let flag = blocked.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Blocking waiting for file lock") {
                flag.store(true, Ordering::SeqCst);
            }
        }
    });
    let parent_is_cargo = std::fs::read_to_string(format!("/proc/{}/comm", std::os::unix::process::parent_id()))
        .is_ok_and(|c| c.trim() == "cargo");
    let start = Instant::now();
    let built = loop {
        if let Some(status) = build.try_wait().unwrap() {
            assert!(status.success(), "cargo build -p carnet failed");
            break true;
        }
        if (blocked.load(Ordering::SeqCst) && parent_is_cargo && start.elapsed() > Duration::from_secs(3))
            || start.elapsed() > Duration::from_secs(600)
        {
            let _ = build.kill();
            let _ = build.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = [target.join("debug/carnet"), root.join("target/debug/carnet")]
        .into_iter()
        .find(|b| b.exists())
        .expect("no carnet binary: run `cargo build -p carnet` first");
    if !built {
        let made = std::fs::metadata(&bin).unwrap().modified().unwrap();
        let newest = ["server/src", "migrations", "crates"]
            .iter()
            .map(|d| newest(&root.join(d)))
            .max()
            .unwrap();
        assert!(
            made >= newest,
            "{} is older than the sources: run `cargo build -p carnet` first",
            bin.display()
        );
    }
    bin
}

fn newest(dir: &Path) -> SystemTime {
    let mut t = SystemTime::UNIX_EPOCH;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let m = if p.is_dir() {
            if p.ends_with("target") {
                continue;
            }
            newest(&p)
        } else {
            e.metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        t = t.max(m);
    }
    t
}

/// A `carnet serve` process on a free port (the crash and probe tests kill it with
/// SIGKILL and start another on the same database).
pub struct Serve {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT` (the FHIR base is `{base}/fhir`).
    pub base: String,
}

impl Serve {
    /// `carnet serve` on `database_url`, rate limits off (these tests measure
    /// durability and isolation, not throttling); returns once `/fhir/metadata` answers.
    pub async fn start(database_url: &str, outbox: &Path) -> Serve {
        Self::start_with_env(database_url, outbox, &[]).await
    }

    /// Like [`Serve::start`], with extra environment variables for the process.
    pub async fn start_with_env(database_url: &str, outbox: &Path, env: &[(&str, &str)]) -> Serve {
        let bin = tokio::task::spawn_blocking(|| carnet_binary().to_path_buf())
            .await
            .expect("find the carnet binary");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(bin)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                database_url,
            ])
            .args(["--rate-limit-ip", "0", "--rate-limit-client", "0"])
            .arg("--outbox-dir")
            .arg(outbox)
            // The first-run admin secret goes next to the outbox, not into the source tree.
            .arg("--data-dir")
            .arg(outbox.parent().unwrap_or(outbox).join("carnet-data"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start carnet");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{base}/fhir/metadata")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "carnet did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Serve { child, base }
    }

    /// A `system/*.*` token from this process for a client registered with `key`.
    pub async fn system_token(&self, http: &reqwest::Client, client_id: &str, key: &crate::auth::ClientKey) -> String {
        let now = carnet::clock::system_now_micros() / 1_000_000;
        let url = format!("{}/auth/token", self.base);
        let (st, body) = crate::auth::client_credentials(http, &url, client_id, key, "system/*.*", now).await;
        assert_eq!(st, 200, "{body}");
        body["access_token"].as_str().expect("an access token").to_string()
    }

    /// SIGKILL, then reap the process.
    pub fn kill_nine(mut self) {
        self.child.kill().expect("kill -9 carnet");
        self.child.wait().expect("reap carnet");
    }
}
