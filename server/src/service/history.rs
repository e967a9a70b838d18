//! `_history` at instance, type and system level, as a Bundle of type `history`.

use serde_json::json;

use crate::error::{Error, Result};
use crate::fhir::bundle::{BundleWriter, Link};
use crate::fhir::instant::{format_micros, parse_instant};
use crate::fhir::meta::etag;
use crate::policy::{Access, visibility};
use crate::search::AccessScope;
use crate::state::AppState;
use crate::store::sql::{Cell, Kind, SqlQuery, fetch};
use crate::store::{HistoryEntry, HistoryQuery, Tx, resources};

/// What the client asked for, from the query string.
#[derive(Debug, Default)]
pub struct HistoryParams {
    pub count: Option<i64>,
    pub since: Option<String>,
    pub at: Option<String>,
    pub cursor: Option<i64>,
}

impl HistoryParams {
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<HistoryParams> {
        let mut p = HistoryParams::default();
        for (k, v) in pairs {
            match k.as_str() {
                "_count" => {
                    p.count = Some(v.parse().ok().filter(|n: &i64| *n >= 0).ok_or_else(|| {
                        Error::invalid_at(
                            "value",
                            "_count",
                            format!("_count must be a non-negative integer, not '{v}'"),
                        )
                    })?)
                }
                "_since" => p.since = Some(v.clone()),
                "_at" => p.at = Some(v.clone()),
                "_cursor" => {
                    p.cursor = Some(
                        v.parse()
                            .map_err(|_| Error::invalid_at("value", "_cursor", "Invalid paging cursor"))?,
                    )
                }
                "_format" | "_pretty" | "_summary" | "_elements" => {}
                other => {
                    return Err(Error::invalid_at(
                        "not-supported",
                        other.to_string(),
                        format!("Unknown history parameter '{other}'"),
                    ));
                }
            }
        }
        Ok(p)
    }
}

/// Builds the history Bundle. `path` is the URL path below the base (`Patient/1/_history`).
pub async fn history(
    state: &AppState,
    access: &Access,
    tx: &mut Tx,
    res_type: Option<&str>,
    id: Option<&str>,
    params: &HistoryParams,
    path: &str,
) -> Result<Vec<u8>> {
    let cfg = state.config();
    let count = params.count.unwrap_or(cfg.default_page).min(cfg.max_page);
    let parse = |name: &str, v: &Option<String>| -> Result<Option<i64>> {
        match v {
            None => Ok(None),
            Some(s) => parse_instant(s)
                .map(Some)
                .ok_or_else(|| Error::invalid_at("value", name.to_string(), format!("'{s}' is not a valid instant"))),
        }
    };
    let q = HistoryQuery {
        res_type: res_type.map(str::to_string),
        res_id: id.map(str::to_string),
        since: parse("_since", &params.since)?,
        at: parse("_at", &params.at)?,
        before_seq: params.cursor,
        // One more than asked tells whether there is a next page.
        limit: count + 1,
    };
    if let (Some(t), Some(i)) = (res_type, id) {
        if access.actor().is_some() {
            visibility::check_instance(access, tx, t, i).await?;
        } else if resources::current(tx, t, i).await?.is_none() {
            return Err(Error::NotFound(format!("{t}/{i} not found")));
        }
    }
    let mut rows = scoped(tx, &q, &access.scope()).await?;
    for r in &rows {
        access.note(&r.res_type, &r.res_id);
    }
    let has_more = rows.len() as i64 > count;
    rows.truncate(usize::try_from(count).unwrap_or(0));

    let base = state.base_url();
    let mut query = Vec::new();
    if let Some(s) = &params.since {
        query.push(format!("_since={}", enc(s)));
    }
    if let Some(a) = &params.at {
        query.push(format!("_at={}", enc(a)));
    }
    query.push(format!("_count={count}"));
    let link = |cursor: Option<i64>| -> String {
        let mut q = query.clone();
        if let Some(c) = cursor {
            q.push(format!("_cursor={c}"));
        }
        format!("{base}/{path}?{}", q.join("&"))
    };
    let self_url = link(params.cursor);
    let first_url = link(None);
    let next_url = match (has_more, rows.last()) {
        (true, Some(last)) => Some(link(Some(last.seq))),
        _ => None,
    };
    let mut links = vec![
        Link {
            relation: "self",
            url: &self_url,
        },
        Link {
            relation: "first",
            url: &first_url,
        },
    ];
    if let Some(n) = &next_url {
        links.push(Link {
            relation: "next",
            url: n,
        });
    }
    let mut w = BundleWriter::new("history", state.now(), None, &links);
    for r in &rows {
        let full_url = format!("{base}/{}/{}", r.res_type, r.res_id);
        let (method, url, status) = match r.method.as_str() {
            "POST" => ("POST", r.res_type.clone(), "201 Created"),
            "DELETE" => ("DELETE", format!("{}/{}", r.res_type, r.res_id), "204 No Content"),
            "PATCH" => ("PATCH", format!("{}/{}", r.res_type, r.res_id), "200 OK"),
            _ if r.version == 1 => ("PUT", format!("{}/{}", r.res_type, r.res_id), "201 Created"),
            _ => ("PUT", format!("{}/{}", r.res_type, r.res_id), "200 OK"),
        };
        let rest = json!({
            "request": { "method": method, "url": url },
            "response": {
                "status": status,
                "etag": etag(r.version),
                "lastModified": format_micros(r.last_updated),
            }
        });
        w.entry(Some(&full_url), r.content.as_deref(), &rest);
    }
    Ok(w.finish())
}

/// Versions newest first (as `resources::history`), with the caller's policy on each version's resource (its
/// current compartment, publication and refusal state).
async fn scoped(tx: &mut Tx, h: &HistoryQuery, scope: &AccessScope) -> Result<Vec<HistoryEntry>> {
    let mut q = SqlQuery::default();
    let mut w = vec!["1 = 1".to_string()];
    match &h.res_type {
        Some(t) => w.push(format!("v.res_type = {}", q.text(t))),
        // The audit trail is not part of the data's history: `AuditEvent/_history`
        // and AuditEvent searches show it.
        None => w.push("v.res_type <> 'AuditEvent'".to_string()),
    }
    if let Some(id) = &h.res_id {
        w.push(format!("r.res_id = {}", q.text(id)));
    }
    if let Some(s) = h.since {
        w.push(format!("v.last_updated >= {}", q.int(s)));
    }
    if let Some(a) = h.at {
        let p = q.int(a);
        w.push(format!(
            "v.last_updated <= {p} AND NOT EXISTS (SELECT 1 FROM resource_versions n \
             WHERE n.pk = v.pk AND n.version = v.version + 1 AND n.last_updated <= {p})"
        ));
    }
    if let Some(b) = h.before_seq {
        w.push(format!("v.seq < {}", q.int(b)));
    }
    w.extend(scope.condition(&mut q, "r"));
    let limit = q.int(h.limit);
    q.sql = format!(
        "SELECT v.seq, v.res_type, r.res_id, v.version, v.last_updated, v.method, v.content \
         FROM resource_versions v JOIN resources r ON r.pk = v.pk WHERE {} ORDER BY v.seq DESC LIMIT {limit}",
        w.join(" AND ")
    );
    let kinds = [
        Kind::I64,
        Kind::Text,
        Kind::Text,
        Kind::I64,
        Kind::I64,
        Kind::Text,
        Kind::Bytes,
    ];
    Ok(fetch(tx, &q, &kinds)
        .await?
        .into_iter()
        .map(|mut r| {
            let content = match r.pop() {
                Some(Cell::Bytes(c)) => c,
                _ => None,
            };
            HistoryEntry {
                seq: r[0].i64().unwrap_or(0),
                res_type: r[1].text().unwrap_or_default().to_string(),
                res_id: r[2].text().unwrap_or_default().to_string(),
                version: r[3].i64().unwrap_or(0),
                last_updated: r[4].i64().unwrap_or(0),
                method: r[5].text().unwrap_or_default().to_string(),
                content,
            }
        })
        .collect())
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
