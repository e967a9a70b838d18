//! `carnet-gen`: writes deterministic Synthea-style data (see `carnet-datagen`) to a
//! folder as NDJSON (one resource per line, `part-NNNNN.ndjson`, shared Organizations
//! and Practitioners first), or as transaction Bundles (`bundle-NNNNN.json`).
//!
//! `carnet-gen --resources 1000000 --out /tmp/carnet-1m` (about 10 k patients).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use carnet_datagen::Generator;
use clap::{Parser, ValueEnum};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Ndjson,
    Bundle,
    /// One transaction Bundle per patient as Synthea writes them (urn:uuid references,
    /// ids left to the server), after one Bundle of the shared practitioners and
    /// organisations.
    Synthea,
}

#[derive(Parser)]
#[command(about = "Generate Synthea-style FHIR R4 data for Carnet's benches")]
struct Args {
    /// About this many resources in all (113 per patient).
    #[arg(long, default_value_t = 10_000, conflicts_with = "patients")]
    resources: usize,
    /// Exactly this many patients instead.
    #[arg(long)]
    patients: Option<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder (created).
    #[arg(long, required_unless_present = "searches")]
    out: Option<PathBuf>,
    /// Print the common searches for this seed (`name<TAB>Type?query`, URL-encoded) and exit.
    #[arg(long)]
    searches: bool,
    #[arg(long, value_enum, default_value = "ndjson")]
    format: Format,
    /// Patients per output file.
    #[arg(long, default_value_t = 1000)]
    patients_per_file: usize,
    /// Resources per transaction Bundle (`--format bundle`).
    #[arg(long, default_value_t = 500)]
    bundle_size: usize,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("carnet-gen: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    if args.searches {
        for s in carnet_benches::searches::common(args.seed) {
            println!("{}\t{}", s.name, s.url_path());
        }
        return Ok(());
    }
    let out = args.out.clone().ok_or("--out is required")?;
    let g = match args.patients {
        Some(p) => Generator::new(args.seed, p),
        None => Generator::for_resources(args.seed, args.resources),
    };
    std::fs::create_dir_all(&out)?;
    let started = Instant::now();
    let per_file = args.patients_per_file.max(1);
    let files = g.patients().div_ceil(per_file);
    let mut total = 0usize;
    let mut bundles = 0usize;
    if let Format::Synthea = args.format {
        let shared = g.shared();
        total += shared.len();
        let path = out.join("synthea-0000000-shared.json");
        std::fs::write(&path, serde_json::to_vec(&carnet_datagen::transaction(&shared))?)?;
        for i in 0..g.patients() {
            let resources = g.patient(i);
            total += resources.len();
            let path = out.join(format!("synthea-{:07}.json", i + 1));
            std::fs::write(
                &path,
                serde_json::to_vec(&carnet_datagen::synthea_transaction(&resources))?,
            )?;
        }
        println!(
            "{total} resources ({} patients, seed {}) in {} in {:.1} s",
            g.patients(),
            g.seed(),
            out.display(),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    for f in 0..files {
        let mut resources = if f == 0 { g.shared() } else { Vec::new() };
        for i in f * per_file..((f + 1) * per_file).min(g.patients()) {
            resources.extend(g.patient(i));
        }
        total += resources.len();
        match args.format {
            Format::Ndjson => {
                let path = out.join(format!("part-{f:05}.ndjson"));
                let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
                for r in &resources {
                    serde_json::to_writer(&mut w, r)?;
                    w.write_all(b"\n")?;
                }
                w.flush()?;
            }
            Format::Synthea => {}
            Format::Bundle => {
                for chunk in resources.chunks(args.bundle_size.max(1)) {
                    let path = out.join(format!("bundle-{bundles:05}.json"));
                    std::fs::write(&path, serde_json::to_vec(&carnet_datagen::transaction(chunk))?)?;
                    bundles += 1;
                }
            }
        }
        eprintln!(
            "{} / {} patients, {total} resources",
            ((f + 1) * per_file).min(g.patients()),
            g.patients()
        );
    }
    println!(
        "{total} resources ({} patients, seed {}) in {} in {:.1} s",
        g.patients(),
        g.seed(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
