//! What an import reads: NDJSON files (one resource a line) and JSON files (a Bundle or
//! a single resource), cut into units. A unit is what is kept or rejected as a whole:
//! one NDJSON line, one entry of a collection or batch Bundle, or a whole transaction
//! Bundle (all-or-nothing, as POSTing it would be).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Reject;

/// One input file (or an uploaded body), identified by a hash of its content so that a
/// resumed import recognises it whatever its path, and a changed file starts over.
#[derive(Debug, Clone)]
pub struct Source {
    pub key: String,
    pub name: String,
    pub path: Option<PathBuf>,
    pub kind: SourceKind,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Ndjson,
    Json,
}

/// Where a unit came from, for reports: the line of an NDJSON file, or the entry of a
/// Bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Line(u64),
    Entry(usize),
    Document,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Entry(i) => write!(f, "Bundle.entry[{i}]"),
            Location::Document => write!(f, "document"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Body {
    /// One resource (its own `id` is kept when it has one: update-as-create).
    Resource(Value),
    /// A transaction Bundle, kept or rejected whole.
    Transaction(Value),
}

#[derive(Debug, Clone)]
pub struct Unit {
    /// Position in its source, from 0: what resuming skips.
    pub seq: u64,
    pub at: Location,
    /// Bytes of the source read up to the end of this unit (progress).
    pub offset: u64,
    pub body: Result<Body, String>,
}

/// Every importable file under `paths` (folders are walked, files in name order).
pub fn discover(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if kind_of(&path).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

pub fn kind_of(path: &Path) -> Option<SourceKind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("ndjson") => Some(SourceKind::Ndjson),
        Some("json") => Some(SourceKind::Json),
        _ => None,
    }
}

impl Source {
    pub fn file(path: &Path) -> std::io::Result<Source> {
        let kind = kind_of(path).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{}: not a .ndjson or .json file", path.display()),
            )
        })?;
        let mut hasher = Sha256::new();
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
        }
        Ok(Source {
            key: hex(&hasher.finalize()),
            name: path.display().to_string(),
            path: Some(path.to_path_buf()),
            kind,
            bytes,
        })
    }

    /// An NDJSON stream (`$import`): not resumable, so it needs no key.
    pub fn stream(name: &str, length: Option<u64>) -> Source {
        Source {
            key: String::new(),
            name: name.to_string(),
            path: None,
            kind: SourceKind::Ndjson,
            bytes: length.unwrap_or(0),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Calls `f` with each unit of an NDJSON stream; stops early when `f` says so.
pub fn ndjson_units(read: impl Read, mut f: impl FnMut(Unit) -> bool) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, read);
    let mut line = Vec::new();
    let (mut n, mut seq, mut offset) = (0u64, 0u64, 0u64);
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        offset += read as u64;
        let text = trim(&line);
        if text.is_empty() {
            continue;
        }
        let body = serde_json::from_slice::<Value>(text)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(one_resource);
        let unit = Unit {
            seq,
            at: Location::Line(n),
            offset,
            body,
        };
        seq += 1;
        if !f(unit) {
            return Ok(());
        }
    }
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &line[start..end.max(start)]
}

fn one_resource(v: Value) -> Result<Body, String> {
    match v.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") if v["type"] == "transaction" => Ok(Body::Transaction(v)),
        Some(_) => Ok(Body::Resource(v)),
        None => Err("no resourceType".to_string()),
    }
}

/// The units of a JSON document: a transaction Bundle is one, a collection, batch or
/// searchset Bundle one per entry, anything else one resource.
pub fn json_units(doc: Result<Value, String>, bytes: u64) -> Vec<Unit> {
    let single = |body| {
        vec![Unit {
            seq: 0,
            at: Location::Document,
            offset: bytes,
            body,
        }]
    };
    let v = match doc {
        Ok(v) => v,
        Err(e) => return single(Err(e)),
    };
    if v.get("resourceType").and_then(Value::as_str) != Some("Bundle") || v["type"] == "transaction" {
        return single(one_resource(v));
    }
    let Some(entries) = v.get("entry").and_then(Value::as_array) else {
        return Vec::new();
    };
    let count = entries.len().max(1) as u64;
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| Unit {
            seq: i as u64,
            at: Location::Entry(i),
            offset: bytes * (i as u64 + 1) / count,
            body: match e.get("resource") {
                Some(r) => one_resource(r.clone()),
                None => Err("the entry has no resource".to_string()),
            },
        })
        .collect()
}

/// A rejected unit of `source`.
pub fn reject(source: &Source, at: &Location, what: Option<String>, reason: String) -> Reject {
    Reject {
        source: source.name.clone(),
        at: at.to_string(),
        what,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines_are_numbered_and_blank_lines_skipped() {
        let text = b"{\"resourceType\":\"Patient\"}\n\n  \nnot json\n{\"a\":1}";
        let mut units = Vec::new();
        ndjson_units(&text[..], |u| {
            units.push(u);
            true
        })
        .unwrap_or_default();
        assert_eq!(units.len(), 3);
        assert_eq!(units[0].at, Location::Line(1));
        assert!(matches!(units[0].body, Ok(Body::Resource(_))));
        assert_eq!(units[1].at, Location::Line(4));
        assert!(units[1].body.as_ref().is_err_and(|e| e.starts_with("not JSON")));
        assert_eq!(units[2].seq, 2);
        assert_eq!(
            units[2].body.as_ref().err().map(String::as_str),
            Some("no resourceType")
        );
        assert_eq!(units[2].offset, text.len() as u64);
    }

    #[test]
    fn collection_bundles_are_cut_into_entries() {
        let doc = serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient"}}, {"fullUrl": "x"}
        ]});
        let units = json_units(Ok(doc), 100);
        assert_eq!(units.len(), 2);
        assert_eq!(units[1].at, Location::Entry(1));
        assert!(units[1].body.is_err());
        let tx = serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": []});
        assert!(matches!(json_units(Ok(tx), 10)[0].body, Ok(Body::Transaction(_))));
    }
}
