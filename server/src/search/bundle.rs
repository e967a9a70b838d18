//! The searchset Bundle: matches, included resources, an outcome for ignored
//! parameters, `total` and the paging links.

use std::collections::HashMap;

use carnet_search::{ParsedQuery, Summary, Total};
use serde_json::json;

use super::cursor::Cursor;
use super::execute::{self, Hit};
use super::scope::AccessScope;
use super::sql::{Builder, Ctx};
use crate::error::{Error, Result};
use crate::fhir::bundle::{BundleWriter, Link};
use crate::fhir::outcome::{Issue, outcome};
use crate::fhir::summary::Shape;

use crate::state::AppState;
use crate::store::{StoreError, Tx};

/// A resource a searchset Bundle holds, and the patients whose compartments hold it.
pub struct Listed {
    pub res_type: String,
    pub id: String,
    pub owners: Vec<String>,
}

pub async fn searchset(
    state: &AppState,
    scope: &AccessScope,
    tx: &mut Tx,
    parsed: &ParsedQuery,
    cursor: Option<&str>,
    compartment: Option<&str>,
    path: &str,
) -> Result<(Vec<u8>, Vec<Listed>)> {
    let cfg = state.config();
    let r = &parsed.result;
    let ctx = Ctx {
        base: state.base_url(),
        now: state.now(),
        scope,
    };
    let plan = execute::plan(ctx, parsed, compartment)?;
    let cursor = cursor.map(|c| Cursor::decode(c, &plan.kinds())).transpose()?;
    let count_only = r.summary == Some(Summary::Count);
    let page_size = r.count.map_or(cfg.default_page, i64::from).min(cfg.max_page).max(0);

    let (hits, has_more) = if count_only {
        (Vec::new(), false)
    } else {
        // One row more than the page tells whether there is a next one.
        let mut hits = plan.page(tx, cursor.as_ref(), page_size + 1).await?;
        let more = hits.len() as i64 > page_size;
        hits.truncate(usize::try_from(page_size).unwrap_or(0));
        if cursor.as_ref().is_some_and(|c| c.backward) {
            hits.reverse();
        }
        (hits, more)
    };

    // Without `_total`, only what costs nothing: a first page that holds every match.
    // Counting a larger result costs more than the page (at a million resources a
    // `_has` counted 1,000 Patients' probes in 14 ms for a 4 ms page); a client that
    // needs the number asks for it.
    let exact = count_only || matches!(r.total, Some(Total::Accurate | Total::Estimate));
    let free = cursor.is_none() && !has_more && !count_only;
    let total = if free && r.total != Some(Total::None) {
        Some(hits.len() as i64)
    } else if exact {
        Some(plan.count(tx).await?)
    } else {
        None
    };

    let match_pks: Vec<i64> = hits.iter().map(|h| h.pk).collect();
    let mut b = Builder::new(Ctx {
        base: state.base_url(),
        now: state.now(),
        scope,
    });
    // What follows looks resources up by lists of pks, whose plans do not depend on the
    // values bound; the page and the count above needed plans made for theirs.
    if !match_pks.is_empty() {
        crate::store::sql::generic_plans_from_here(tx).await?;
    }
    let included = execute::includes(&mut b, tx, r, &match_pks).await?;
    let mut all = match_pks.clone();
    all.extend(&included);
    let mut contents: HashMap<i64, (String, String, Vec<u8>)> = execute::contents(tx, &all)
        .await?
        .into_iter()
        .map(|(pk, t, id, c)| (pk, (t, id, c)))
        .collect();

    let mut owners = execute::owners(tx, &all).await?;

    let links = links(state.base_url(), path, parsed, cursor.as_ref(), &hits, has_more);
    let link_refs: Vec<Link<'_>> = links.iter().map(|(rel, url)| Link { relation: rel, url }).collect();
    let mut w = BundleWriter::new("searchset", state.now(), total, &link_refs);
    let shape = shape(parsed)?;
    let base = state.base_url();
    if !parsed.ignored.is_empty() {
        let issues: Vec<Issue> = parsed
            .ignored
            .iter()
            .map(|e| {
                Issue::warning(
                    "not-supported",
                    format!("Ignored search parameter '{}': {}", e.param, e.message),
                )
                .at(e.param.clone())
            })
            .collect();
        let oo = serde_json::to_vec(&outcome(&issues)).unwrap_or_default();
        let url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        w.entry(Some(&url), Some(&oo), &json!({"search": {"mode": "outcome"}}));
    }
    let mut listed = Vec::new();
    for (pks, mode) in [(&match_pks, "match"), (&included, "include")] {
        for pk in pks {
            let Some((t, id, content)) = contents.remove(pk) else {
                continue;
            };
            listed.push(Listed {
                res_type: t.clone(),
                id: id.clone(),
                owners: owners.remove(pk).unwrap_or_default(),
            });
            let body = shaped(content, &shape)?;
            let url = format!("{base}/{t}/{id}");
            w.entry(Some(&url), Some(&body), &json!({"search": {"mode": mode}}));
        }
    }
    Ok((w.finish(), listed))
}

fn shape(parsed: &ParsedQuery) -> Result<Shape> {
    let r = &parsed.result;
    let summary = match r.summary {
        Some(Summary::True) => Some("true"),
        Some(Summary::Text) => Some("text"),
        Some(Summary::Data) => Some("data"),
        _ => None,
    };
    let elements = (!r.elements.is_empty()).then(|| r.elements.join(","));
    Shape::from_params(summary, elements.as_deref())
        .map_err(|v| Error::invalid_at("value", "_summary", format!("Unsupported {v}")))
}

fn shaped(content: Vec<u8>, shape: &Shape) -> Result<Vec<u8>> {
    if shape.is_full() {
        return Ok(content);
    }
    let v: serde_json::Value = serde_json::from_slice(&content).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(serde_json::to_vec(&shape.apply(v)).map_err(|e| StoreError::Corrupt(e.to_string()))?)
}

/// `self` shows the parameters applied (canonical form), the others add a cursor.
fn links(
    base: &str,
    path: &str,
    parsed: &ParsedQuery,
    cursor: Option<&Cursor>,
    hits: &[Hit],
    has_more: bool,
) -> Vec<(&'static str, String)> {
    let applied = parsed.pairs();
    let url = |c: Option<&Cursor>| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        ser.extend_pairs(&applied);
        if let Some(c) = c {
            ser.append_pair("_cursor", &c.encode());
        }
        let qs = ser.finish();
        let root = if path.is_empty() {
            base.to_string()
        } else {
            format!("{base}/{path}")
        };
        if qs.is_empty() { root } else { format!("{root}?{qs}") }
    };
    let mut out = vec![("self", url(cursor)), ("first", url(None))];
    let backward = cursor.is_some_and(|c| c.backward);
    if let Some(last) = hits.last()
        && (has_more || backward)
    {
        out.push(("next", url(Some(&last.cursor(false)))));
    }
    if let Some(first) = hits.first()
        && cursor.is_some()
        && (!backward || has_more)
    {
        out.push(("previous", url(Some(&first.cursor(true)))));
    }
    out
}
