//! `Patient/{id}/$everything`: the patient's compartment plus the Practitioners,
//! Organizations, Locations and Medications it references, as one searchset that pages
//! by pk (keyset, like history), so a `next` link stays valid while resources are
//! written.
//!
//! The selection is one SQL statement with the caller's [`AccessScope`] ANDed on every
//! resource it returns *and* on every compartment resource whose references it follows:
//! a held-back result is neither listed nor a way to learn which practitioner signed
//! it. The Patient itself is read first through `policy::visibility`, so the answers
//! are those of a read: 404 hidden (another patient's record), 403 refused (R4), 410
//! deleted.

use serde_json::json;

use super::execute;
use super::scope::AccessScope;
use super::sql::{Cell, Kind, SqlQuery, fetch};
use crate::error::{Error, Result};
use crate::fhir::bundle::{BundleWriter, Link};
use crate::fhir::instant::parse_instant;
use crate::policy::{Access, visibility};
use crate::service::ids;
use crate::state::AppState;

/// A first page of `$everything` says how many resources the record holds only up to
/// this many (counting further would cost more than the page).
const TOTAL_CAP: i64 = 1000;

/// Types outside the compartment that `$everything` adds when a compartment resource
/// references them through a search parameter (R4 asks for "resources referenced";
/// these are the ones a record is unreadable without).
pub const REFERENCED: &[&str] = &[
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Medication",
];

/// The operation's parameters, from the query string or a POSTed Parameters/form body.
#[derive(Debug, Default, Clone)]
pub struct EverythingParams {
    /// `_type`: only these types (all when empty).
    pub types: Vec<String>,
    /// `_since` as given (kept verbatim for the links) and as epoch µs.
    pub since: Option<(String, i64)>,
    pub count: Option<i64>,
    /// Resources after this pk (the `next` link's `_cursor`).
    pub cursor: Option<i64>,
}

impl EverythingParams {
    /// Unknown parameters are refused (400) unless `lenient` (`Prefer: handling=lenient`).
    pub fn from_pairs(pairs: &[(String, String)], lenient: bool) -> Result<EverythingParams> {
        let mut p = EverythingParams::default();
        for (k, v) in pairs {
            match k.as_str() {
                "_type" => {
                    for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        if !carnet_fhir::is_resource_type(t) {
                            return Err(Error::invalid_at(
                                "value",
                                "_type",
                                format!("Unknown resource type '{}'", ids::truncate(t, 64)),
                            ));
                        }
                        if !p.types.iter().any(|x| x == t) {
                            p.types.push(t.to_string());
                        }
                    }
                }
                "_since" => {
                    let at = parse_instant(v).ok_or_else(|| {
                        Error::invalid_at(
                            "value",
                            "_since",
                            format!("_since must be an instant, not '{}'", ids::truncate(v, 64)),
                        )
                    })?;
                    p.since = Some((v.clone(), at));
                }
                "_count" => {
                    p.count = Some(v.parse().ok().filter(|n: &i64| *n >= 0).ok_or_else(|| {
                        Error::invalid_at(
                            "value",
                            "_count",
                            format!("_count must be a non-negative integer, not '{}'", ids::truncate(v, 64)),
                        )
                    })?);
                }
                "_cursor" => {
                    p.cursor = Some(
                        v.parse()
                            .map_err(|_| Error::invalid_at("value", "_cursor", "Invalid paging cursor"))?,
                    );
                }
                "_format" | "_pretty" => {}
                other if lenient => {
                    tracing::debug!(parameter = other, "$everything: parameter ignored (lenient)");
                }
                other => {
                    return Err(Error::invalid_at(
                        "not-supported",
                        other.to_string(),
                        format!(
                            "$everything does not support parameter '{}' (supported: _type, _since, _count)",
                            ids::truncate(other, 64)
                        ),
                    ));
                }
            }
        }
        Ok(p)
    }

    /// The parameters of a link, without the cursor.
    fn pairs(&self, count: i64) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !self.types.is_empty() {
            out.push(("_type", self.types.join(",")));
        }
        if let Some((s, _)) = &self.since {
            out.push(("_since", s.clone()));
        }
        out.push(("_count", count.to_string()));
        out
    }
}

/// The searchset Bundle of `Patient/{id}/$everything` for `access`.
pub async fn everything(state: &AppState, access: &Access, id: &str, params: &EverythingParams) -> Result<Vec<u8>> {
    ids::check_id(id)?;
    let cfg = state.config();
    let page_size = params.count.unwrap_or(cfg.default_page).min(cfg.max_page).max(0);
    let link_pairs = params.pairs(page_size);
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&link_pairs)
        .finish();
    access.note_query(&format!("Patient/{id}/$everything?{query}"));
    let mut tx = state.store().begin_read().await?;
    // The same answers as a read of the Patient: 404 hidden, 403 refused, 410 deleted.
    visibility::read(access, &mut tx, "Patient", id).await?;
    let scope = access.scope();
    let mut q = selection(&scope, id, params, params.cursor);
    let limit = q.int(page_size + 1);
    q.sql = format!(
        "SELECT r.pk, r.res_type, r.res_id FROM resources r WHERE {} ORDER BY r.pk ASC LIMIT {limit}",
        q.sql
    );
    let mut pks: Vec<i64> = fetch(&mut tx, &q, &[Kind::I64, Kind::Text, Kind::Text])
        .await?
        .iter()
        .filter_map(|r| r.first().and_then(Cell::i64))
        .collect();
    let has_more = pks.len() as i64 > page_size;
    pks.truncate(usize::try_from(page_size).unwrap_or(0));

    // Counted on the first page only, and only up to a cap: `$everything` takes no
    // `_total`, and one patient's record is small enough to count.
    let total = if params.cursor.is_some() {
        None
    } else if !has_more {
        Some(pks.len() as i64)
    } else {
        let all = selection(&scope, id, params, None);
        execute::count_up_to(&mut tx, all, TOTAL_CAP).await?
    };
    let contents = execute::contents(&mut tx, &pks).await?;
    tx.commit().await?;

    let base = state.base_url();
    let url = |cursor: Option<i64>| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        ser.extend_pairs(&link_pairs);
        if let Some(c) = cursor {
            ser.append_pair("_cursor", &c.to_string());
        }
        format!("{base}/Patient/{id}/$everything?{}", ser.finish())
    };
    let mut links = vec![("self", url(params.cursor)), ("first", url(None))];
    if has_more && let Some(last) = pks.last() {
        links.push(("next", url(Some(*last))));
    }
    let link_refs: Vec<Link<'_>> = links.iter().map(|(rel, url)| Link { relation: rel, url }).collect();
    let mut w = BundleWriter::new("searchset", state.now(), total, &link_refs);
    // `contents` comes back in no particular order; the page is in pk order.
    let mut by_pk: std::collections::HashMap<i64, (String, String, Vec<u8>)> =
        contents.into_iter().map(|(pk, t, i, c)| (pk, (t, i, c))).collect();
    for pk in &pks {
        let Some((t, rid, content)) = by_pk.remove(pk) else {
            continue;
        };
        access.note(&t, &rid);
        let mode = if REFERENCED.contains(&t.as_str()) {
            "include"
        } else {
            "match"
        };
        let full_url = format!("{base}/{t}/{rid}");
        w.entry(Some(&full_url), Some(&content), &json!({"search": {"mode": mode}}));
    }
    Ok(w.finish())
}

/// The WHERE clause over `resources r`: live resources of the compartment, or
/// referenced from a compartment resource the caller may see, that the caller may see,
/// of the asked types, written since `_since`, after the pk `after` (paging).
fn selection(scope: &AccessScope, patient: &str, params: &EverythingParams, after: Option<i64>) -> SqlQuery {
    let mut q = SqlQuery::default();
    let p = q.text(patient);
    let referenced: Vec<String> = REFERENCED.iter().map(|t| (*t).to_string()).collect();
    // `|| ''`: not a way in for SQLite's planner, which would otherwise start from
    // every reference to any Practitioner in the database instead of the patient's.
    let targets = q.in_list("(ev_ref.target_type || '')", &referenced);
    let source_scope = scope
        .condition(&mut q, "ev_s")
        .map(|c| format!(" AND {c}"))
        .unwrap_or_default();
    // The cursor goes inside the subquery: on `r.pk` SQLite would walk every resource
    // after it instead of looking up the patient's few.
    let (after_c, after_t) = match after {
        Some(c) => {
            let c = q.int(c);
            (format!(" AND ev_c.pk > {c}"), format!(" AND ev_t.pk > {c}"))
        }
        None => (String::new(), String::new()),
    };
    // One IN over a UNION: both planners then drive the page from the patient's pks
    // (in pk order, so no sort) instead of walking every resource. What is referenced
    // comes from the record, not from its access trail: the AuditEvents in the
    // compartment (which every request about the patient adds to) would bring in
    // whoever read the record, and joining their references made each call cost time
    // in proportion to the trail (up to 8 s under the app scenario, benches/README.md).
    let mut w = vec![
        "r.deleted = FALSE".to_string(),
        format!(
            "r.pk IN (SELECT ev_c.pk FROM patient_compartment ev_c WHERE ev_c.patient_id = {p}{after_c} \
             UNION SELECT ev_t.pk FROM patient_compartment ev_sc \
             JOIN resources ev_s ON ev_s.pk = ev_sc.pk \
             JOIN idx_reference ev_ref ON ev_ref.pk = ev_sc.pk \
             JOIN resources ev_t ON ev_t.res_type = ev_ref.target_type AND ev_t.res_id = ev_ref.target_id \
             WHERE ev_sc.patient_id = {p} AND ev_s.deleted = FALSE \
             AND (ev_s.res_type || '') <> 'AuditEvent' AND {targets}{after_t}{source_scope})"
        ),
    ];
    match q.type_filter("(r.res_type || '')", &params.types) {
        Some(c) => w.push(c),
        // The access trail is in the compartment, but it is not the record, and each
        // page read would add to it: only when `_type` asks for it.
        None => w.push("(r.res_type || '') <> 'AuditEvent'".to_string()),
    }
    if let Some((_, since)) = &params.since {
        let s = q.int(*since);
        w.push(format!("r.last_updated >= {s}"));
    }
    if let Some(c) = scope.condition(&mut q, "r") {
        w.push(c);
    }
    q.sql = w.join(" AND ");
    q
}
