//! Search over the catalog: the parameters clients use to find a definition (`url`,
//! `name`, `version`, `status`, and per type `type`, `base`, `code`, `system`), with
//! `_count` / `_offset` paging. The catalog is small and in memory, so a scan is enough.

use serde_json::Value;

use super::catalog::{Catalog, Entry};
use crate::error::{Error, Result};
use crate::fhir::outcome::Issue;

/// Most entries in one page; the default page is the server's usual one.
pub const MAX_COUNT: usize = 1000;

pub struct Page<'c> {
    pub total: usize,
    pub offset: usize,
    pub count: usize,
    pub entries: Vec<&'c Entry>,
    /// Only the total was asked for (`_summary=count`).
    pub count_only: bool,
    /// The parameters applied, for the `self` and paging links.
    pub applied: Vec<(String, String)>,
    /// Parameters ignored under `Prefer: handling=lenient`.
    pub ignored: Vec<String>,
}

/// One criterion: the element it reads, and how it compares.
#[derive(Clone, Copy)]
enum Match {
    /// Token/uri: equal to one of the values (`,` = OR).
    Exact(&'static str),
    /// String: starts with, case-insensitive.
    Prefix(&'static str),
    /// Token over an array of codes (SearchParameter.base).
    AnyOf(&'static str),
}

/// Every element a [`criterion`] reads: the catalog keeps these of each resource
/// (`catalog::Entry::head`) and the rest as text until it is served.
pub const FIELDS: &[&str] = &[
    "id",
    "url",
    "version",
    "status",
    "name",
    "title",
    "type",
    "kind",
    "derivation",
    "baseDefinition",
    "base",
    "code",
];

fn criterion(res_type: &str, name: &str) -> Option<Match> {
    Some(match (res_type, name) {
        (_, "_id") => Match::Exact("id"),
        (_, "url") => Match::Exact("url"),
        (_, "version") => Match::Exact("version"),
        (_, "status") => Match::Exact("status"),
        (_, "name") => Match::Prefix("name"),
        (_, "title") => Match::Prefix("title"),
        ("StructureDefinition", "type") => Match::Exact("type"),
        ("StructureDefinition", "kind") => Match::Exact("kind"),
        ("StructureDefinition", "derivation") => Match::Exact("derivation"),
        ("StructureDefinition", "base") => Match::Exact("baseDefinition"),
        ("SearchParameter", "base") => Match::AnyOf("base"),
        ("SearchParameter", "code") => Match::Exact("code"),
        ("SearchParameter", "type") => Match::Exact("type"),
        ("CodeSystem", "system") => Match::Exact("url"),
        _ => return None,
    })
}

fn matches(r: &Value, m: Match, values: &[&str]) -> bool {
    match m {
        Match::Exact(field) => r[field].as_str().is_some_and(|s| values.contains(&s)),
        Match::Prefix(field) => r[field].as_str().is_some_and(|s| {
            let s = s.to_lowercase();
            values.iter().any(|v| s.starts_with(&v.to_lowercase()))
        }),
        Match::AnyOf(field) => r[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|s| values.contains(&s)),
    }
}

pub fn search<'c>(
    catalog: &'c Catalog,
    res_type: &str,
    pairs: &[(String, String)],
    default_count: usize,
    lenient: bool,
) -> Result<Page<'c>> {
    let mut filters: Vec<(Match, Vec<&str>)> = Vec::new();
    let mut count = default_count.min(MAX_COUNT);
    let mut offset = 0usize;
    let mut count_only = false;
    let mut applied = Vec::new();
    let mut ignored = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "_count" => {
                count = value
                    .parse::<usize>()
                    .map_err(|_| bad(name, format!("_count must be a whole number, not '{value}'")))?
                    .min(MAX_COUNT);
            }
            "_offset" => {
                offset = value
                    .parse()
                    .map_err(|_| bad(name, format!("_offset must be a whole number, not '{value}'")))?;
            }
            "_summary" if value == "count" => count_only = true,
            "_summary" if value == "false" => {}
            "_total" | "_format" => {}
            _ => match criterion(res_type, name) {
                Some(m) => filters.push((m, value.split(',').collect())),
                None if lenient => {
                    ignored.push(name.clone());
                    continue;
                }
                None => {
                    return Err(bad(
                        name,
                        format!(
                            "Unknown search parameter '{name}' for {res_type} (conformance resources are searchable by _id, url, version, status, name, title and a few per type)"
                        ),
                    ));
                }
            },
        }
        if name != "_offset" {
            applied.push((name.clone(), value.clone()));
        }
    }
    let hits: Vec<&Entry> = catalog
        .all(res_type)
        .iter()
        .filter(|r| filters.iter().all(|(m, vs)| matches(r.head(), *m, vs)))
        .collect();
    let total = hits.len();
    let entries = if count_only {
        Vec::new()
    } else {
        hits.into_iter().skip(offset).take(count).collect()
    };
    Ok(Page {
        total,
        offset,
        count,
        entries,
        count_only,
        applied,
        ignored,
    })
}

fn bad(name: &str, message: String) -> Error {
    Error::Invalid(vec![Issue::error("invalid", message).at(name.to_string())])
}

#[cfg(test)]
mod tests {
    use super::{FIELDS, Match, criterion};

    /// A criterion on an element the catalog does not keep would match nothing.
    #[test]
    fn every_element_a_criterion_reads_is_kept() {
        let names = [
            "_id",
            "url",
            "version",
            "status",
            "name",
            "title",
            "type",
            "kind",
            "derivation",
            "base",
            "code",
            "system",
        ];
        for t in super::super::catalog::TYPES {
            for n in names {
                let field = match criterion(t, n) {
                    Some(Match::Exact(f) | Match::Prefix(f) | Match::AnyOf(f)) => f,
                    None => continue,
                };
                assert!(FIELDS.contains(&field), "{t}?{n} reads {field}");
            }
        }
    }
}
