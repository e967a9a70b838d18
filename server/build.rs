//! Compiles the conformance resources of `profiles/` (StructureDefinitions, ValueSets,
//! CodeSystems; the top folder only, not `examples/`, `invalid/` or `src/`) into the
//! binary, so a server started from anywhere serves and enforces the same profiles; and
//! tells cargo that the embedded migrations are inputs of the build.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // `sqlx::migrate!` embeds the migrations at compile time, but cargo does not know
    // it reads them: without this a new migration file would not rebuild the server.
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    println!("cargo:rerun-if-changed={}", migrations.display());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from("/// `(file name, JSON text)` of every conformance resource in `profiles/`.\n");
    out.push_str("pub static PROFILE_FILES: &[(&str, &str)] = &[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(out, "    ({name:?}, include_str!({:?})),", path.display().to_string());
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("profiles.rs");
    if let Err(e) = std::fs::write(&target, out) {
        panic!("cannot write {}: {e}", target.display());
    }
}
