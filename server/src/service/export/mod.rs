//! FHIR Bulk Data Access 2.0 `$export` (docs/bulk.md): the kick-off checks the request
//! and queues a job in the database (`export_jobs`); a worker task in any Carnet
//! process claims it ([`worker`]) and writes the NDJSON output into the database
//! (`export_files`) a part at a time, under the policy of the client that asked
//! ([`page`]); status, files and cancellation read and delete those rows.

pub mod page;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use carnet_search::{ParsedQuery, Registry, parse_query};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::auth::principal::{Actor, Interaction, Principal};
use crate::error::{Error, Result};
use crate::fhir::form::parse_form;
use crate::fhir::instant::{format_micros, parse_instant};
use crate::fhir::outcome::Issue;
use crate::policy::Access;
use crate::state::AppState;
use crate::store::sql::{Bind, Kind, SqlQuery, execute, fetch};

/// How exports run in this process.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Whether this process runs a worker (a process without one still takes kick-offs
    /// and serves status and files: another process does the work).
    pub worker: bool,
    /// Most resources in one output file (and in one page read and written).
    pub part_size: usize,
    /// How long a claimed job stays with its worker without a sign of life (µs).
    pub lease_micros: i64,
    /// How long a finished (or failed) job and its files are kept (µs).
    pub retention_micros: i64,
}

impl Default for ExportSettings {
    fn default() -> ExportSettings {
        ExportSettings {
            worker: true,
            part_size: 10_000,
            lease_micros: 60_000_000,
            retention_micros: 24 * 3600 * 1_000_000,
        }
    }
}

/// Which resources a kick-off asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    System,
    Patient,
    Group,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::System => "system",
            Level::Patient => "patient",
            Level::Group => "group",
        }
    }

    fn parse(s: &str) -> Level {
        match s {
            "patient" => Level::Patient,
            "group" => Level::Group,
            _ => Level::System,
        }
    }
}

const OUTPUT_FORMATS: [&str; 3] = ["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// Wakes this process's worker when a job is queued here (others find it by polling).
pub(crate) fn wake() -> &'static Notify {
    static WAKE: OnceLock<Notify> = OnceLock::new();
    WAKE.get_or_init(Notify::new)
}

/// The caller of an export: backend services only (SMART Backend Services, `system/`
/// scopes).
fn system_caller(access: &Access) -> Result<&Principal> {
    let p = access
        .principal()
        .ok_or_else(|| Error::Forbidden("No access token was checked for this request".to_string()))?;
    if !matches!(p.actor, Actor::System) {
        return Err(Error::Forbidden(
            "$export is for backend services (a client_credentials token with system/ scopes)".to_string(),
        ));
    }
    Ok(p)
}

/// The principal a job runs as: the kick-off's client with the kick-off's scopes.
pub fn job_principal(client_id: &str, scopes: &str) -> Principal {
    Principal {
        actor: Actor::System,
        client_id: client_id.to_string(),
        subject: client_id.to_string(),
        fhir_user: None,
        scopes: crate::auth::scopes::Scopes::parse(scopes).0,
        session_id: None,
        token_id: String::new(),
        issuer: String::new(),
        expires_at: i64::MAX,
        remote_addr: None,
    }
}

fn bad(param: &str, message: impl Into<String>) -> Error {
    Error::Invalid(vec![Issue::error("invalid", message).at(param)])
}

/// A `_typeFilter` query (`Observation?code=…`) split into its type and parameters.
fn split_filter(filter: &str) -> Result<(String, String)> {
    let (t, q) = filter
        .split_once('?')
        .ok_or_else(|| bad("_typeFilter", format!("'{filter}' is not a search query (Type?params)")))?;
    if !carnet_fhir::is_resource_type(t) {
        return Err(bad("_typeFilter", format!("'{t}' is not a resource type")));
    }
    Ok((t.to_string(), q.to_string()))
}

/// Parses a `_typeFilter` query for `res_type` with the search parser (strict).
pub(crate) fn parse_filter(res_type: &str, query: &str) -> Result<ParsedQuery> {
    let pairs = parse_form(query.as_bytes())?;
    for (k, _) in &pairs {
        let name = k.split(':').next().unwrap_or(k);
        // Parameters that say how to present results, not which (and the paging
        // cursor): meaningless in a `_typeFilter`, so refused there rather than ignored.
        if carnet_search::query::RESULT_PARAMS.contains(&name) || name == "_cursor" {
            return Err(bad("_typeFilter", format!("'{name}' cannot be used in a _typeFilter")));
        }
    }
    parse_query(Registry::r4(), Some(res_type), &pairs, false).map_err(|errors| {
        Error::Invalid(
            errors
                .into_iter()
                .map(|e| {
                    Issue::error(
                        "invalid",
                        format!("_typeFilter {res_type}: '{}': {}", e.param, e.message),
                    )
                    .at("_typeFilter")
                })
                .collect(),
        )
    })
}

/// `_typeFilter` values: repeated, or comma-separated (a comma inside a query, as in
/// `code=a,b`, stays with its query: a new query starts only with `Type?`).
fn filter_queries(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let mut current: Option<String> = None;
        for piece in v.split(',') {
            let starts_query = piece
                .split_once('?')
                .is_some_and(|(t, _)| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphabetic()));
            match current.as_mut() {
                Some(c) if !starts_query => {
                    c.push(',');
                    c.push_str(piece);
                }
                _ => {
                    if let Some(c) = current.take() {
                        out.push(c);
                    }
                    current = Some(piece.to_string());
                }
            }
        }
        out.extend(current);
    }
    out
}

/// Checks a kick-off and queues its job; returns the job's id. `request` is the
/// kick-off URL as the manifest repeats it.
pub async fn kick_off(
    state: &AppState,
    access: &Access,
    level: Level,
    group_id: Option<&str>,
    pairs: &[(String, String)],
    request: String,
) -> Result<String> {
    let p = system_caller(access)?;
    let mut types: Vec<String> = Vec::new();
    let mut type_given = false;
    let mut since = None;
    let mut filters = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "_outputFormat" => {
                // An unencoded `+` arrives as a space.
                if !OUTPUT_FORMATS.contains(&v.replace(' ', "+").as_str()) {
                    return Err(bad(
                        "_outputFormat",
                        format!("_outputFormat '{v}' is not supported: application/fhir+ndjson only"),
                    ));
                }
            }
            "_type" => {
                type_given = true;
                for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if !carnet_fhir::is_resource_type(t) {
                        return Err(bad("_type", format!("'{t}' is not a resource type")));
                    }
                    if !types.iter().any(|x| x == t) {
                        types.push(t.to_string());
                    }
                }
            }
            "_since" => {
                if since.is_some() {
                    return Err(bad("_since", "_since is given more than once"));
                }
                since = Some(parse_instant(v).ok_or_else(|| bad("_since", format!("'{v}' is not an instant")))?);
            }
            "_typeFilter" => filters.push(v.clone()),
            other => {
                return Err(Error::Invalid(vec![
                    Issue::error(
                        "not-supported",
                        format!("Parameter '{other}' is not supported by $export"),
                    )
                    .at(other.to_string()),
                ]));
            }
        }
    }
    let in_level = |t: &str| level == Level::System || crate::search::compartment_params(t).is_some();
    if type_given {
        if types.is_empty() {
            return Err(bad("_type", "_type names no type"));
        }
        for t in &types {
            if !in_level(t) {
                return Err(bad("_type", format!("{t} is not in the Patient compartment")));
            }
            p.check(Interaction::Search, t)?;
        }
    } else {
        let candidates: Vec<String> = carnet_fhir::RESOURCE_TYPES
            .iter()
            .filter(|t| in_level(t) && p.scopes.allows(&Interaction::Search, t))
            .map(|t| t.to_string())
            .collect();
        if candidates.is_empty() {
            return Err(Error::Forbidden(
                "The access token's scopes allow reading no resource type".to_string(),
            ));
        }
        types = stored_types(state, &candidates).await?;
    }
    let mut type_filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in filter_queries(&filters) {
        let (t, q) = split_filter(&f)?;
        if type_given && !types.contains(&t) {
            return Err(bad(
                "_typeFilter",
                format!("_typeFilter for {t}, which _type leaves out"),
            ));
        }
        if !in_level(&t) {
            return Err(bad("_typeFilter", format!("{t} is not in the Patient compartment")));
        }
        p.check(Interaction::Search, &t)?;
        // Built once here so that a filter the SQL builder refuses is a 400 now rather
        // than a failed job later.
        let one = [q.clone()];
        page::Page::build(state, &access.scope(), &page::Spec::probe(&t, &one))?;
        type_filters.entry(t).or_default().push(q);
    }
    let members = match (level, group_id) {
        (Level::Group, Some(id)) => group_members(state, access, id).await?,
        _ => Vec::new(),
    };
    let id = uuid::Uuid::new_v4().to_string();
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let q = SqlQuery {
        sql: "SELECT COALESCE(MAX(pk), 0) FROM resources".to_string(),
        binds: Vec::new(),
    };
    let max_pk = fetch(&mut tx, &q, &[Kind::I64])
        .await?
        .first()
        .and_then(|r| r[0].i64())
        .unwrap_or(0);
    execute(
        &mut tx,
        "INSERT INTO export_jobs (id, client_id, scopes, request, level, group_id, types, type_filters, since, \
         transaction_time, max_pk, state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', $10, $10)",
        &[
            Bind::Text(Some(id.clone())),
            Bind::Text(Some(p.client_id.clone())),
            Bind::Text(Some(p.scopes.to_string())),
            Bind::Text(Some(request)),
            Bind::Text(Some(level.as_str().to_string())),
            Bind::Text(group_id.map(str::to_string)),
            Bind::Text(Some(json!(types).to_string())),
            Bind::Text(Some(json!(type_filters).to_string())),
            Bind::I64(since),
            Bind::I64(Some(now)),
            Bind::I64(Some(max_pk)),
        ],
    )
    .await?;
    for m in &members {
        execute(
            &mut tx,
            "INSERT INTO export_patients (job_id, patient_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[Bind::Text(Some(id.clone())), Bind::Text(Some(m.clone()))],
        )
        .await?;
    }
    tx.commit().await?;
    wake().notify_one();
    Ok(id)
}

/// Of `candidates`, the types that have at least one stored resource (one statement).
async fn stored_types(state: &AppState, candidates: &[String]) -> Result<Vec<String>> {
    let mut q = SqlQuery::default();
    let parts: Vec<String> = candidates
        .iter()
        .map(|t| {
            let p = q.text(t);
            format!("SELECT {p} WHERE EXISTS (SELECT 1 FROM resources WHERE res_type = {p})")
        })
        .collect();
    q.sql = parts.join(" UNION ALL ");
    let mut conn = state.store().reader().await?;
    let found: Vec<String> = fetch(&mut conn, &q, &[Kind::Text])
        .await?
        .into_iter()
        .filter_map(|r| r[0].text().map(str::to_string))
        .collect();
    // Keep the registry's order whatever order the database answers in.
    Ok(candidates.iter().filter(|t| found.contains(t)).cloned().collect())
}

/// The Patients a Group names (`member.entity`), the Group read exactly as a read
/// under the caller's policy: hidden is 404, refused (R4: a Group listing a refusing
/// patient is in that patient's compartment) is 403, deleted is 410.
async fn group_members(state: &AppState, access: &Access, id: &str) -> Result<Vec<String>> {
    let mut tx = state.store().reader().await?;
    let stored = crate::policy::visibility::read(access, &mut tx, "Group", id).await?;
    drop(tx);
    let content = stored.content.unwrap_or_default();
    let group: Value = serde_json::from_slice(&content)
        .map_err(|e| crate::store::StoreError::Corrupt(format!("stored Group is not JSON: {e}")))?;
    let base = state.base_url();
    let mut out: Vec<String> = Vec::new();
    for m in group["member"].as_array().into_iter().flatten() {
        let Some(r) = m["entity"]["reference"].as_str() else {
            continue;
        };
        let local = r.strip_prefix(base).map(|s| s.trim_start_matches('/')).unwrap_or(r);
        if let Some(pid) = local.strip_prefix("Patient/")
            && crate::service::ids::check_id(pid).is_ok()
            && !out.iter().any(|o| o == pid)
        {
            out.push(pid.to_string());
        }
    }
    Ok(out)
}

/// The export queue as every process sees it (`carnet_jobs` on /metrics).
#[derive(Debug, Default, Clone, Copy)]
pub struct JobCounts {
    pub queued: i64,
    /// Queued jobs under a live lease: some process is working on them.
    pub running: i64,
}

pub async fn job_counts(state: &AppState) -> Result<JobCounts> {
    let mut conn = state.store().reader().await?;
    let mut q = SqlQuery::default();
    let n = q.int(state.now());
    q.sql = format!(
        "SELECT COALESCE(SUM(CASE WHEN lease_until IS NULL OR lease_until < {n} THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN lease_until >= {n} THEN 1 ELSE 0 END), 0) \
         FROM export_jobs WHERE state = 'queued'"
    );
    let rows = fetch(&mut conn, &q, &[Kind::I64, Kind::I64]).await?;
    Ok(rows.first().map_or_else(JobCounts::default, |r| JobCounts {
        queued: r[0].i64().unwrap_or(0),
        running: r[1].i64().unwrap_or(0),
    }))
}

/// Where a job stands, as its status URL answers.
pub enum Status {
    Running {
        exported: i64,
        types_done: i64,
        types: usize,
    },
    Done(Value),
    Failed(String),
}

/// The job `id` of the caller's client; any other client's job is absent (404).
async fn owned_job(state: &AppState, access: &Access, id: &str) -> Result<Vec<crate::store::sql::Cell>> {
    let p = system_caller(access).map_err(|_| Error::NotFound(format!("No export job {id}")))?;
    let mut q = SqlQuery::default();
    let jid = q.text(id);
    let client = q.text(&p.client_id);
    q.sql = format!(
        "SELECT state, exported, type_index, types, transaction_time, request, error FROM export_jobs \
         WHERE id = {jid} AND client_id = {client}"
    );
    let mut conn = state.store().reader().await?;
    let rows = fetch(
        &mut conn,
        &q,
        &[
            Kind::Text,
            Kind::I64,
            Kind::I64,
            Kind::Text,
            Kind::I64,
            Kind::Text,
            Kind::Text,
        ],
    )
    .await?;
    rows.into_iter()
        .next()
        .ok_or_else(|| Error::NotFound(format!("No export job {id}")))
}

pub async fn status(state: &AppState, access: &Access, id: &str) -> Result<Status> {
    let row = owned_job(state, access, id).await?;
    let types: Vec<String> = serde_json::from_str(row[3].text().unwrap_or("[]")).unwrap_or_default();
    match row[0].text() {
        Some("done") => {
            let mut q = SqlQuery::default();
            let jid = q.text(id);
            q.sql = format!("SELECT n, res_type, count FROM export_files WHERE job_id = {jid} ORDER BY n");
            let mut conn = state.store().reader().await?;
            let files = fetch(&mut conn, &q, &[Kind::I64, Kind::Text, Kind::I64]).await?;
            let base = state.base_url();
            let output: Vec<Value> = files
                .iter()
                .map(|f| {
                    json!({
                        "type": f[1].text().unwrap_or(""),
                        "url": format!("{base}/$export-file/{id}/{}", f[0].i64().unwrap_or(0)),
                        "count": f[2].i64().unwrap_or(0),
                    })
                })
                .collect();
            Ok(Status::Done(json!({
                "transactionTime": format_micros(row[4].i64().unwrap_or(0)),
                "request": row[5].text().unwrap_or(""),
                "requiresAccessToken": true,
                "output": output,
                "error": [],
            })))
        }
        Some("failed") => Ok(Status::Failed(row[6].text().unwrap_or("The export failed").to_string())),
        _ => Ok(Status::Running {
            exported: row[1].i64().unwrap_or(0),
            types_done: row[2].i64().unwrap_or(0),
            types: types.len(),
        }),
    }
}

/// Cancels the caller's job (running or finished) and deletes its files; a worker
/// running it notices at its next part (its lease update finds no row).
pub async fn cancel(state: &AppState, access: &Access, id: &str) -> Result<()> {
    owned_job(state, access, id).await?;
    let mut tx = state.store().begin_write().await?;
    let b = [Bind::Text(Some(id.to_string()))];
    // Children first: the foreign keys cascade, but SQLite only when enforced per
    // connection, and explicit deletes cost nothing more.
    execute(&mut tx, "DELETE FROM export_files WHERE job_id = $1", &b).await?;
    execute(&mut tx, "DELETE FROM export_patients WHERE job_id = $1", &b).await?;
    execute(&mut tx, "DELETE FROM export_jobs WHERE id = $1", &b).await?;
    tx.commit().await?;
    Ok(())
}

/// The NDJSON of output file `n` of the caller's job.
pub async fn file(state: &AppState, access: &Access, id: &str, n: i64) -> Result<Vec<u8>> {
    let p = system_caller(access).map_err(|_| Error::NotFound(format!("No export file {id}/{n}")))?;
    let mut q = SqlQuery::default();
    let jid = q.text(id);
    let nn = q.int(n);
    let client = q.text(&p.client_id);
    q.sql = format!(
        "SELECT f.content FROM export_files f JOIN export_jobs j ON j.id = f.job_id \
         WHERE f.job_id = {jid} AND f.n = {nn} AND j.client_id = {client}"
    );
    let mut conn = state.store().reader().await?;
    match fetch(&mut conn, &q, &[Kind::Bytes])
        .await?
        .into_iter()
        .next()
        .and_then(|mut r| r.pop())
    {
        Some(crate::store::sql::Cell::Bytes(Some(b))) => Ok(b),
        _ => Err(Error::NotFound(format!("No export file {id}/{n}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_filters_split_on_queries_not_values() {
        let v = vec!["Observation?code=a,b&status=final,Condition?clinical-status=active".to_string()];
        assert_eq!(
            filter_queries(&v),
            vec![
                "Observation?code=a,b&status=final".to_string(),
                "Condition?clinical-status=active".to_string()
            ]
        );
    }
}
