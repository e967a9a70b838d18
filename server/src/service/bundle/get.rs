//! GET and HEAD entries: read, vread, history and search, run in the caller's
//! transaction so that a transaction's reads see its own writes.

use serde_json::{Value, json};

use super::answer::Answer;
use super::envelope::{logical_id, resource_type};
use crate::error::{Error, Result};
use crate::fhir::bundle::{BundleWriter, Link};
use crate::fhir::summary::Shape;
use crate::policy::{Access, visibility};
use crate::search;
use crate::service::history::{HistoryParams, history};
use crate::state::AppState;
use crate::store::{StoredVersion, Tx};

#[derive(Debug)]
pub enum Target {
    Read(String, String),
    VRead(String, String, String),
    History(Option<String>, Option<String>),
    Search(Option<String>),
}

#[derive(Debug)]
pub struct GetRequest {
    pub target: Target,
    pub query: Vec<(String, String)>,
    pub head: bool,
}

impl GetRequest {
    fn get(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The path below the base, as history and search links need it.
    fn path(&self) -> String {
        match &self.target {
            Target::Read(t, id) => format!("{t}/{id}"),
            Target::VRead(t, id, v) => format!("{t}/{id}/_history/{v}"),
            Target::History(t, id) => [t.as_deref(), id.as_deref(), Some("_history")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("/"),
            Target::Search(t) => t.clone().unwrap_or_default(),
        }
    }
}

pub fn parse(segments: &[&str], query: &str, head: bool) -> Result<GetRequest, String> {
    let target = match segments {
        [] => Target::Search(None),
        ["_history"] => Target::History(None, None),
        [t] => Target::Search(Some(resource_type(t)?)),
        [t, "_history"] => Target::History(Some(resource_type(t)?), None),
        [t, id] => Target::Read(resource_type(t)?, logical_id(id)?),
        [t, id, "_history"] => Target::History(Some(resource_type(t)?), Some(logical_id(id)?)),
        [t, id, "_history", v] => Target::VRead(resource_type(t)?, logical_id(id)?, (*v).to_string()),
        _ => return Err("This URL is not a read, vread, history or search".to_string()),
    };
    let query = crate::fhir::form::parse_form(query.as_bytes())
        .map_err(|_| "The query string is not valid UTF-8, or has too many parameters".to_string())?;
    Ok(GetRequest { target, query, head })
}

pub async fn run(state: &AppState, access: &Access, tx: &mut Tx, req: &GetRequest) -> Result<Answer> {
    let mut answer = match &req.target {
        Target::Read(t, id) => {
            let v = visibility::read(access, tx, t, id).await?;
            found(state, req, t, id, v)?
        }
        Target::VRead(t, id, vid) => {
            let v = visibility::vread(access, tx, t, id, vid).await?;
            found(state, req, t, id, v)?
        }
        Target::History(t, id) => {
            let params = HistoryParams::from_pairs(&req.query)?;
            Answer::bundle(history(state, access, tx, t.as_deref(), id.as_deref(), &params, &req.path()).await?)
        }
        Target::Search(t) => Answer::bundle(search(state, access, tx, t.as_deref(), req).await?),
    };
    if req.head {
        answer.resource = None;
    }
    Ok(answer)
}

fn found(state: &AppState, req: &GetRequest, t: &str, id: &str, v: StoredVersion) -> Result<Answer> {
    let shape = Shape::from_params(req.get("_summary"), req.get("_elements"))
        .map_err(|v| Error::invalid_at("value", "_summary", format!("Unsupported {v}")))?;
    let mut content = v.content.unwrap_or_default();
    if !shape.is_full() {
        let parsed: Value = serde_json::from_slice(&content)
            .map_err(|e| crate::store::StoreError::Corrupt(format!("{t}/{id}: {e}")))?;
        content = serde_json::to_vec(&shape.apply(parsed))
            .map_err(|e| crate::store::StoreError::Corrupt(format!("{t}/{id}: {e}")))?;
    }
    Ok(Answer::found(
        state.base_url(),
        t,
        id,
        v.version,
        v.last_updated,
        content,
    ))
}

/// Search inside a Bundle. The one place to switch to the full search engine: it
/// receives the type, the query pairs and the transaction, and returns a searchset.
async fn search(
    state: &AppState,
    access: &Access,
    tx: &mut Tx,
    res_type: Option<&str>,
    req: &GetRequest,
) -> Result<Vec<u8>> {
    let Some(t) = res_type else {
        return Err(Error::NotSupported(
            "Search across all types is not supported in a Bundle".to_string(),
        ));
    };
    let pairs: Vec<(String, String)> = req
        .query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty"))
        .cloned()
        .collect();
    let limit = usize::try_from(state.config().max_page).unwrap_or(1000);
    let ids = search::find_ids(state, &access.scope(), tx, t, &pairs, limit).await?;
    let base = state.base_url();
    let self_url = format!("{base}/{}", req.path());
    let links = [Link {
        relation: "self",
        url: &self_url,
    }];
    let total = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    let mut w = BundleWriter::new("searchset", state.now(), Some(total), &links);
    let rest = json!({"search": {"mode": "match"}});
    for id in ids {
        let v = visibility::read(access, tx, t, &id).await?;
        w.entry(Some(&format!("{base}/{t}/{id}")), v.content.as_deref(), &rest);
    }
    Ok(w.finish())
}
