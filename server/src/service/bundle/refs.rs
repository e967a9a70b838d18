//! References between entries: `urn:uuid:` fullUrls and conditional references
//! (`Patient?identifier=...`) become `Type/id` before anything is stored
//! (bundle.html#transaction-urls).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::envelope::Entry;
use crate::error::{Error, Result};
use crate::policy::Access;
use crate::service::conditional::{self, Matches};
use crate::state::AppState;
use crate::store::Tx;

/// What each reference string becomes, e.g. `urn:uuid:…` → `Patient/123`.
pub type Rewrites = HashMap<String, String>;

/// Calls `f` on every `reference` string anywhere in `v`: extensions, contained
/// resources and backbone elements included.
pub fn visit(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match child {
                    Value::String(s) if k == "reference" => f(s),
                    _ => visit(child, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|c| visit(c, f)),
        _ => {}
    }
}

pub fn visit_mut(v: &mut Value, f: &mut impl FnMut(&mut String)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                match child {
                    Value::String(s) if k == "reference" => f(s),
                    _ => visit_mut(child, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| visit_mut(c, f)),
        _ => {}
    }
}

/// `Patient?identifier=x|1` → (`Patient`, `identifier=x|1`).
fn conditional_ref(s: &str) -> Option<(&str, &str)> {
    let (t, criteria) = s.split_once('?')?;
    (!criteria.is_empty() && carnet_fhir::is_resource_type(t)).then_some((t, criteria))
}

/// Whether any entry's body holds a conditional reference.
pub fn has_conditional(entries: &[Entry]) -> bool {
    let mut found = false;
    for body in entries.iter().filter_map(|e| e.body.as_ref()) {
        visit(body, &mut |s| found |= conditional_ref(s).is_some());
    }
    found
}

/// Resolves every distinct conditional reference once; each must match exactly one
/// resource (http.html#trules), else the entry that holds it fails.
pub async fn resolve_conditional(
    state: &AppState,
    access: &Access,
    tx: &mut Tx,
    entries: &[Entry],
    rewrites: &mut Rewrites,
) -> Result<()> {
    let mut wanted: Vec<(String, usize)> = Vec::new();
    let mut seen = HashSet::new();
    for e in entries {
        let Some(body) = &e.body else { continue };
        visit(body, &mut |s| {
            if conditional_ref(s).is_some() && !rewrites.contains_key(s) && seen.insert(s.to_string()) {
                wanted.push((s.to_string(), e.index));
            }
        });
    }
    for (reference, index) in wanted {
        let Some((t, criteria)) = conditional_ref(&reference) else {
            continue;
        };
        let id = resolve_one(state, access, tx, t, criteria, &reference)
            .await
            .map_err(|e| locate(entries, index, e))?;
        let target = format!("{t}/{id}");
        rewrites.insert(reference, target);
    }
    Ok(())
}

async fn resolve_one(
    state: &AppState,
    access: &Access,
    tx: &mut Tx,
    t: &str,
    criteria: &str,
    reference: &str,
) -> Result<String> {
    match conditional::resolve(state, &access.match_scope(), tx, t, criteria).await? {
        Matches::One(id) => Ok(id),
        Matches::None => Err(Error::NotFound(format!(
            "The conditional reference '{reference}' matches no {t}"
        ))),
        Matches::Many => Err(Error::PreconditionFailed(format!(
            "The conditional reference '{reference}' matches more than one {t}"
        ))),
    }
}

fn locate(entries: &[Entry], index: usize, e: Error) -> Error {
    match entries.iter().find(|x| x.index == index) {
        Some(entry) => entry.locate(e),
        None => e,
    }
}

/// Rewrites the references of one entry's body in place.
pub fn rewrite(entry: &mut Entry, rewrites: &Rewrites) {
    if rewrites.is_empty() {
        return;
    }
    if let Some(body) = &mut entry.body {
        visit_mut(body, &mut |s| {
            if let Some(new) = rewrites.get(s.as_str()) {
                s.clone_from(new);
            }
        });
    }
}

/// The first reference in `entry` to another entry's fullUrl, if any: batch entries
/// must not depend on each other (http.html#brules).
pub fn dependency(entry: &Entry, full_urls: &HashMap<String, usize>) -> Option<(String, usize)> {
    let body = entry.body.as_ref()?;
    let mut found = None;
    visit(body, &mut |s| {
        if found.is_none()
            && let Some(&other) = full_urls.get(s).filter(|&&i| i != entry.index)
        {
            found = Some((s.to_string(), other));
        }
    });
    found
}
