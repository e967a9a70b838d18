//! Search: the index written with every version, and the SQL that queries it.
//!
//! `carnet-search` parses URLs and extracts index values; this module stores those
//! values ([`index`]), turns parsed queries into SQL ([`sql`], [`execute`]) and
//! writes the searchset Bundle ([`bundle`]). Choices (R4 leaves them open):
//!
//! - Paging is keyset-based: `next` / `previous` links carry an opaque `_cursor`
//!   holding the sort key values and pk of the page's last (first) row, so pages stay
//!   correct while resources are written. Default order is by creation (pk).
//! - Without `_total`, `total` is given only by a first page that holds every match
//!   (it costs nothing there; counting a larger result costs more than the page);
//!   `_total=accurate` or `_total=estimate` always count exactly, on every page, and
//!   so does `_summary=count`.
//! - `_include` / `_revinclude` add at most 1000 resources per page, `:iterate`
//!   follows at most 4 more levels.

mod bundle;
mod compartment;
mod cursor;
pub mod everything;
mod execute;
pub mod index;
pub mod scope;
pub(crate) mod sql;

use carnet_search::{ParsedQuery, QueryError, Registry, parse_query};

pub use compartment::params as compartment_params;
pub use scope::AccessScope;

use crate::error::{Error, Result};
use crate::fhir::outcome::Issue;
use crate::state::AppState;
use crate::store::Tx;

/// A search as the HTTP layer received it.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// `None` for a system-level search.
    pub res_type: Option<String>,
    /// URL (and form body) parameters in order; repeated names are ANDed.
    pub pairs: Vec<(String, String)>,
    /// `Prefer: handling=lenient`.
    pub lenient: bool,
    /// Compartment search: the id of the Patient.
    pub compartment: Option<String>,
    /// The URL path below the base for links: `Patient`, `Patient/1/Observation`, or
    /// empty for the system level.
    pub path: String,
}

/// Runs a search and returns the searchset Bundle.
pub async fn search(state: &AppState, scope: &AccessScope, req: SearchRequest) -> Result<Vec<u8>> {
    Ok(search_listed(state, scope, req).await?.0)
}

/// Like [`search`], under the caller's policy; what the Bundle holds is noted for the
/// request's AuditEvent.
pub async fn search_as(state: &AppState, access: &crate::policy::Access, req: SearchRequest) -> Result<Vec<u8>> {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&req.pairs)
        .finish();
    access.note_query(&format!("{}?{query}", req.path));
    let (body, listed) = search_listed(state, &access.scope(), req).await?;
    for l in listed {
        access.note_owned(&l.res_type, &l.id, l.owners);
    }
    Ok(body)
}

/// The searchset Bundle and every resource in it.
pub async fn search_listed(
    state: &AppState,
    scope: &AccessScope,
    req: SearchRequest,
) -> Result<(Vec<u8>, Vec<bundle::Listed>)> {
    let (pairs, cursor) = split_cursor(req.pairs);
    let mut parsed = parse_query(Registry::r4(), req.res_type.as_deref(), &pairs, req.lenient).map_err(invalid)?;
    refuse_unsupported(&mut parsed, req.lenient)?;
    let mut tx = state.store().begin_read().await?;
    let out = bundle::searchset(
        state,
        scope,
        &mut tx,
        &parsed,
        cursor.as_deref(),
        req.compartment.as_deref(),
        &req.path,
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}

/// Ids of up to `limit` live resources of `res_type` matching the criteria (the
/// conditional interactions' lookup). Every search parameter is supported; result
/// parameters (`_count`, `_sort`, …) are ignored.
pub async fn find_ids(
    state: &AppState,
    scope: &AccessScope,
    tx: &mut Tx,
    res_type: &str,
    pairs: &[(String, String)],
    limit: usize,
) -> Result<Vec<String>> {
    let parsed = parse_query(Registry::r4(), Some(res_type), pairs, false).map_err(invalid)?;
    let ctx = sql::Ctx {
        base: state.base_url(),
        now: state.now(),
        scope,
    };
    let mut plan = execute::plan(ctx, &parsed, None)?;
    plan.sort.clear();
    let hits = plan.page(tx, None, i64::try_from(limit).unwrap_or(i64::MAX)).await?;
    Ok(hits.into_iter().map(|h| h.res_id).collect())
}

fn split_cursor(pairs: Vec<(String, String)>) -> (Vec<(String, String)>, Option<String>) {
    let mut cursor = None;
    let rest = pairs
        .into_iter()
        .filter(|(k, v)| {
            if k == "_cursor" {
                cursor = Some(v.clone());
                false
            } else {
                true
            }
        })
        .collect();
    (rest, cursor)
}

/// Result parameters the parser knows but searches here do not implement.
fn refuse_unsupported(parsed: &mut ParsedQuery, lenient: bool) -> Result<()> {
    let r = &mut parsed.result;
    let mut errors = Vec::new();
    if r.offset.take().is_some() {
        errors.push(("_offset", "_offset is not supported: follow the Bundle's next link"));
    }
    if r.since.take().is_some() {
        errors.push(("_since", "_since applies to history, not search"));
    }
    if r.contained.take().is_some_and(|c| c != "false") {
        errors.push(("_contained", "searching contained resources is not supported"));
    }
    if r.contained_type.take().is_some() {
        errors.push(("_containedType", "searching contained resources is not supported"));
    }
    let errors: Vec<QueryError> = errors
        .into_iter()
        .map(|(p, m)| QueryError {
            param: p.to_string(),
            message: m.to_string(),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else if lenient {
        parsed.ignored.extend(errors);
        Ok(())
    } else {
        Err(invalid(errors))
    }
}

/// Parser errors as one 400 OperationOutcome, one issue per parameter.
fn invalid(errors: Vec<QueryError>) -> Error {
    Error::Invalid(
        errors
            .into_iter()
            .map(|e| {
                let code = if e.message.contains("unknown") || e.message.contains("not supported") {
                    "not-supported"
                } else {
                    "value"
                };
                Issue::error(code, format!("Search parameter '{}': {}", e.param, e.message)).at(e.param)
            })
            .collect(),
    )
}
