//! `carnet-load`: loads generated data into a Carnet database through the library's
//! write path (`carnet::service::validate` + `carnet::service::write::create_checked`,
//! the same code a POST/PUT runs: strict R4 check, stamping, version row, search index),
//! in store transactions of `--batch` resources. Runs `ANALYZE` after 5 k, 50 k and
//! 300 k resources and at the end, so the planners know the tables' sizes (a bulk-loaded
//! database is otherwise planned as if empty, and both backends then plan a write-path
//! lookup on the wrong index: see README.md).
//!
//! ```text
//! carnet-load --database-url sqlite:///tmp/carnet-1m.db --input /tmp/carnet-1m
//! carnet-load --database-url postgres://postgres@127.0.0.1/carnet_bench_1m --generate 1000000
//! ```
//!
//! One thread reads and checks resources (JSON parse and the strict R4 check are most
//! of the CPU), `--jobs` tasks write batches; SQLite has one writer, so more jobs only
//! help PostgreSQL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use carnet::clock::SystemClock;
use carnet::config::Config;
use carnet::state::AppState;
use carnet::store::{Store, Tx};
use carnet_datagen::Generator;
use clap::Parser;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, mpsc};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser)]
#[command(about = "Load generated FHIR data into a Carnet database through the write path")]
struct Args {
    /// sqlite://path.db or postgres://… (the database must exist; migrations run).
    #[arg(long, env = "CARNET_DATABASE_URL")]
    database_url: String,
    /// A folder of `*.ndjson` files from carnet-gen (read in name order).
    #[arg(long, conflicts_with = "generate")]
    input: Option<PathBuf>,
    /// Generate this many resources (about) in memory instead of reading files.
    #[arg(long)]
    generate: Option<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Resources per store transaction.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent writers (default: 1 on SQLite, 2 on PostgreSQL).
    #[arg(long)]
    jobs: Option<usize>,
    /// Skip the final ANALYZE.
    #[arg(long)]
    no_analyze: bool,
}

/// Loaded counts after which the loader runs ANALYZE.
const ANALYZE_AT: [u64; 3] = [5_000, 50_000, 300_000];

/// A checked resource, ready for `create_checked`.
struct Ready {
    res_type: String,
    id: String,
    body: Map<String, Value>,
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("carnet-load: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("carnet-load: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    let postgres = args.database_url.starts_with("postgres");
    let jobs = args.jobs.unwrap_or(if postgres { 2 } else { 1 }).max(1);
    let store = Store::connect(&args.database_url, (jobs as u32 + 1).max(2)).await?;
    let state = AppState::new(Config::for_database(&args.database_url), store, Arc::new(SystemClock));

    let (tx, rx) = mpsc::channel::<Vec<Ready>>(jobs * 2);
    let batch = args.batch.max(1);
    let source = match (&args.input, args.generate) {
        (Some(dir), _) => Source::Files(ndjson_files(dir)?),
        (None, Some(n)) => Source::Generate(Generator::for_resources(args.seed, n)),
        (None, None) => return Err("give --input DIR or --generate N".into()),
    };
    let reader = std::thread::spawn(move || read_and_check(source, batch, tx));

    let loaded = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let progress = {
        let loaded = loaded.clone();
        tokio::spawn(async move {
            let mut last = (0u64, Instant::now());
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let n = loaded.load(Ordering::Relaxed);
                let now = Instant::now();
                let recent = (n - last.0) as f64 / now.duration_since(last.1).as_secs_f64();
                let overall = n as f64 / started.elapsed().as_secs_f64();
                eprintln!("{n} resources, {recent:.0}/s now, {overall:.0}/s overall");
                last = (n, now);
            }
        })
    };

    let rx = Arc::new(Mutex::new(rx));
    let mut writers = Vec::new();
    for _ in 0..jobs {
        let (rx, state, loaded) = (rx.clone(), state.clone(), loaded.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(batch) = next else {
                    return Ok::<(), Box<dyn std::error::Error + Send + Sync>>(());
                };
                let n = batch.len() as u64;
                let mut tx = state.store().begin_write().await?;
                for r in batch {
                    carnet::service::write::create_checked(&state, &mut tx, &r.res_type, r.body, Some(r.id))
                        .await
                        .map_err(|e| format!("{}: {e:?}", r.res_type))?;
                }
                tx.commit().await?;
                let before = loaded.fetch_add(n, Ordering::Relaxed);
                // A fresh database has no planner statistics, and some write-path
                // lookups then plan on the wrong index and scan (see README.md): give
                // the planners statistics early, and again as the tables grow.
                if ANALYZE_AT.iter().any(|&t| before < t && before + n >= t) {
                    analyze(state.store()).await?;
                }
            }
        }));
    }
    let mut failure: Option<Box<dyn std::error::Error + Send + Sync>> = None;
    for w in writers {
        match w.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(e.to_string().into())),
        }
    }
    // A failed writer drops its receiver share; the reader then stops on a closed channel.
    drop(rx);
    let read = reader.join().map_err(|_| "the reader thread panicked")?;
    progress.abort();
    if let Some(e) = failure {
        return Err(e);
    }
    read?;
    let n = loaded.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "loaded {n} resources in {secs:.1} s: {:.0} resources/s ({} writer(s), batches of {batch})",
        n as f64 / secs,
        jobs
    );
    if !args.no_analyze {
        let t = Instant::now();
        analyze(state.store()).await?;
        println!("ANALYZE in {:.1} s", t.elapsed().as_secs_f64());
    }
    state.store().close().await;
    Ok(())
}

enum Source {
    Files(Vec<PathBuf>),
    Generate(Generator),
}

fn ndjson_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no .ndjson files in {}", dir.display()).into());
    }
    Ok(files)
}

/// Parses and checks every resource (the same `validate::resource` a PUT runs), sending
/// batches to the writers.
fn read_and_check(source: Source, batch: usize, out: mpsc::Sender<Vec<Ready>>) -> Result<()> {
    let mut pending: Vec<Ready> = Vec::with_capacity(batch);
    let push = |v: Value, pending: &mut Vec<Ready>| -> Result<bool> {
        let res_type = v["resourceType"].as_str().unwrap_or_default().to_string();
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let body = carnet::service::validate::resource(&res_type, v, Some(&id))
            .map_err(|e| format!("{res_type}/{id}: {e:?}"))?;
        pending.push(Ready { res_type, id, body });
        if pending.len() >= batch {
            let full = std::mem::replace(pending, Vec::with_capacity(batch));
            if out.blocking_send(full).is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    };
    match source {
        Source::Files(files) => {
            use std::io::BufRead;
            for f in files {
                let r = std::io::BufReader::new(std::fs::File::open(&f)?);
                for line in r.lines() {
                    let line = line?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    let v: Value = serde_json::from_str(&line)?;
                    if !push(v, &mut pending)? {
                        return Ok(());
                    }
                }
            }
        }
        Source::Generate(g) => {
            for v in g.resources() {
                // Round-trip through bytes so the work matches reading a file.
                let v: Value = serde_json::from_slice(&serde_json::to_vec(&v)?)?;
                if !push(v, &mut pending)? {
                    return Ok(());
                }
            }
        }
    }
    if !pending.is_empty() {
        let _ = out.blocking_send(pending);
    }
    Ok(())
}

async fn analyze(store: &Store) -> Result<()> {
    let mut tx: Tx = store.begin_write().await?;
    carnet::on_conn!(&mut tx, |c| sqlx::query("ANALYZE").execute(c).await.map(|_| ()))?;
    tx.commit().await?;
    Ok(())
}
