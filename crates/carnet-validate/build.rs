//! Splits `data/r4-rules.json` into the rules, which every process loads, and the
//! package's CodeSystems and ValueSets, with an index of where each one's text starts
//! and ends: at run time a code system's text is read (and its pages of the binary
//! brought into memory) only when it is used. Read whole at start-up to find each one's
//! URL, those 2.5 MB were resident in every process (`rules.rs`, `Lazy`).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::value::RawValue;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc<'a> {
    #[serde(borrow)]
    constraints: &'a RawValue,
    #[serde(borrow)]
    base_keys: &'a RawValue,
    #[serde(borrow)]
    structs: &'a RawValue,
    #[serde(borrow)]
    code_systems: Vec<&'a RawValue>,
    #[serde(borrow)]
    value_sets: Vec<&'a RawValue>,
}

#[derive(serde::Deserialize)]
struct Head {
    url: Option<String>,
    version: Option<String>,
}

fn main() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/r4-rules.json");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).to_path_buf();
    let text = std::fs::read_to_string(&source).unwrap_or_else(|e| fail(&format!("{}: {e}", source.display())));
    let doc: Doc = serde_json::from_str(&text).unwrap_or_else(|e| fail(&format!("r4-rules.json: {e}")));
    let core = format!(
        "{{\"constraints\":{},\"baseKeys\":{},\"structs\":{}}}",
        doc.constraints.get(),
        doc.base_keys.get(),
        doc.structs.get()
    );
    let mut terminology = String::new();
    let mut index = String::from("/// `(url, version, start, end)` of each text in `r4-terminology.json`.\n");
    for (name, list) in [("CODE_SYSTEMS", &doc.code_systems), ("VALUE_SETS", &doc.value_sets)] {
        let _ = writeln!(
            index,
            "pub(crate) static {name}: &[(&str, Option<&str>, usize, usize)] = &["
        );
        for raw in list {
            let head: Head = serde_json::from_str(raw.get()).unwrap_or_else(|e| fail(&format!("r4-rules.json: {e}")));
            // A resource without url cannot be found by one: the loader skipped it before.
            let Some(url) = head.url else { continue };
            let start = terminology.len();
            terminology.push_str(raw.get());
            let _ = writeln!(
                index,
                "    ({url:?}, {:?}, {start}, {}),",
                head.version,
                terminology.len()
            );
        }
        index.push_str("];\n");
    }
    for (file, content) in [
        ("r4-rules-core.json", core),
        ("r4-terminology.json", terminology),
        ("r4-terminology.rs", index),
    ] {
        let path = out.join(file);
        std::fs::write(&path, content).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    }
}

fn fail(message: &str) -> ! {
    panic!("{message}")
}
