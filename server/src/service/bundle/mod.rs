//! Batch and transaction Bundles at `POST [base]` (http.html#transaction).
//!
//! A transaction runs in one store transaction: every entry succeeds and the commit
//! happens once, or the first failure drops the transaction and nothing is kept. A
//! batch runs each entry in its own store transaction and reports failures per entry.
//! Both process entries in the order of http.html#trules and answer in the Bundle's.

mod answer;
mod binary;
mod envelope;
mod exec;
mod get;
pub(crate) mod refs;

use std::collections::HashMap;

use serde_json::Value;

use self::answer::{Answer, render};
use self::envelope::{Action, Entry, Kind, Method};
use self::exec::{Claims, Ctx};
use self::refs::Rewrites;
use crate::error::{Error, Result};
use crate::policy::Access;
use crate::state::AppState;

/// `Prefer: return=`, applied to every write entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prefer {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

/// One entry as access rules see it: the same method, path (below the base, no
/// query) and conditional-create flag a plain REST request would have, so the caller
/// can apply the rules it applies at the HTTP edge.
#[derive(Debug)]
pub struct EntryAccess<'a> {
    pub method: &'static str,
    pub path: &'a str,
    pub if_none_exist: bool,
}

/// Refuses an entry the caller may not perform (typically `Error::Forbidden`).
pub type Authorize<'a> = &'a (dyn Fn(&EntryAccess<'_>) -> Result<()> + Send + Sync);

/// Processes a batch or transaction Bundle and returns the response Bundle as JSON.
pub async fn process(
    state: &AppState,
    access: &Access,
    bundle: Value,
    prefer: Prefer,
    authorize: Authorize<'_>,
) -> Result<Vec<u8>> {
    let (kind, entries) = envelope::parse(bundle, state.base_url())?;
    let reads_audit = entries.iter().any(|e| {
        matches!(e.method, Method::Get | Method::Head) && {
            let query = e.url.split_once('?').map_or("", |(_, q)| q);
            crate::audit::projection::may_read_audit_events("GET", &e.path, query)
        }
    });
    if reads_audit {
        crate::audit::projection::flush(state).await?;
    }
    match kind {
        Kind::Transaction => {
            // All of a transaction is checked before any of it runs.
            for e in &entries {
                check(e, authorize)?;
            }
            transaction(state, access, entries, prefer).await
        }
        Kind::Batch => batch(state, access, entries, prefer, authorize).await,
    }
}

fn check(entry: &Entry, authorize: Authorize<'_>) -> Result<()> {
    let access = EntryAccess {
        method: entry.method.as_str(),
        path: &entry.path,
        if_none_exist: entry.if_none_exist.is_some(),
    };
    authorize(&access).map_err(|e| entry.locate(e))
}

/// Entry indices in processing order; the sort is stable, so entries of one kind keep
/// the Bundle's order.
fn order(entries: &[Entry]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].method.rank());
    order
}

async fn transaction(state: &AppState, access: &Access, mut entries: Vec<Entry>, prefer: Prefer) -> Result<Vec<u8>> {
    let order = order(&entries);
    let (deletes, rest): (Vec<usize>, Vec<usize>) =
        order.into_iter().partition(|&i| entries[i].method == Method::Delete);
    // Each entry notes what it touches apart: one AuditEvent per entry.
    let accesses: Vec<Access> = entries.iter().map(|_| access.for_entry()).collect();
    let claims = Claims::upfront(&entries)?;
    // When no identity or reference needs a lookup, every entry is planned and
    // rewritten now and its plain creates checked and indexed before the transaction
    // (`write::Draft`): on SQLite the transaction holds the database's only writer.
    let mut rewrites = Rewrites::new();
    let planned = !refs::has_conditional(&entries) && !rest.iter().any(|&i| exec::needs_store(&entries[i]));
    let mut drafts = exec::Drafts::new();
    if planned {
        for &i in &rest {
            exec::plan_without_store(&mut entries[i], &mut rewrites);
        }
        for &i in &rest {
            refs::rewrite(&mut entries[i], &rewrites);
        }
        drafts = exec::draft_creates(state, &entries, &rest).await?;
    }
    let owned = access.clone();
    let work = move |state: AppState| async move {
        let ctx = Ctx {
            state: &state,
            access: &owned,
            prefer,
            claims,
        };
        let run = Run {
            deletes,
            rest,
            planned,
            rewrites,
            drafts,
        };
        let answers = in_transaction(ctx, &mut entries, &accesses, run).await?;
        Ok((entries, accesses, answers))
    };
    let (entries, accesses, answers) = state.on_writer(work).await?;
    for (i, a) in answers.iter().enumerate() {
        if let Some(a) = a {
            access.entry_done(
                entries[i].method.as_str(),
                &entries[i].path,
                a.status.as_u16(),
                &accesses[i],
            );
        }
    }
    Ok(render(
        "transaction-response",
        state.now(),
        answers.into_iter().flatten().collect(),
    ))
}

/// What a transaction's store part starts from, once its entries are ordered (and,
/// when nothing needs a lookup, planned and drafted).
struct Run {
    deletes: Vec<usize>,
    rest: Vec<usize>,
    planned: bool,
    rewrites: Rewrites,
    drafts: exec::Drafts,
}

/// A transaction's entries in one store transaction, on the store's writer
/// (`AppState::on_writer`): their answers by entry, or the error that rolled it back.
async fn in_transaction(
    mut ctx: Ctx<'_>,
    entries: &mut [Entry],
    accesses: &[Access],
    run: Run,
) -> Result<Vec<Option<Answer>>> {
    let Run {
        deletes,
        rest,
        planned,
        mut rewrites,
        drafts,
    } = run;
    let (state, access) = (ctx.state, ctx.access);
    let mut answers: Vec<Option<Answer>> = entries.iter().map(|_| None).collect();
    // Dropping `tx` on any error below rolls the whole Bundle back.
    let mut tx = state.store().begin_write().await?;
    let criteria: Vec<(&str, &str)> = entries
        .iter()
        .filter_map(|e| match &e.action {
            Action::Create(t) => e.if_none_exist.as_deref().map(|c| (t.as_str(), c)),
            Action::CondUpdate(t, c) | Action::CondPatch(t, c) | Action::CondDelete(t, c) => {
                Some((t.as_str(), c.as_str()))
            }
            _ => None,
        })
        .collect();
    crate::service::conditional::lock_all(&mut tx, &criteria).await?;
    for &i in &deletes {
        ctx.access = &accesses[i];
        answers[i] = Some(
            exec::run(&mut ctx, &mut tx, &mut entries[i])
                .await
                .map_err(|e| entries[i].locate(e))?,
        );
    }
    // Identities are fixed after the deletes (which may free a conditional create's
    // match) and before any resource is written, so every body can be rewritten.
    if !planned {
        for &i in &rest {
            exec::plan(state, access, &mut tx, &mut entries[i], &mut rewrites)
                .await
                .map_err(|e| entries[i].locate(e))?;
        }
        refs::resolve_conditional(state, access, &mut tx, entries, &mut rewrites).await?;
        for &i in &rest {
            refs::rewrite(&mut entries[i], &rewrites);
        }
    }
    // Creates come first in processing order; those with nothing to match are stored
    // together (one bulk insert per table instead of one round of inserts each).
    let (creates, rest): (Vec<usize>, Vec<usize>) = rest.into_iter().partition(|&i| exec::is_plain_create(&entries[i]));
    for (i, a) in exec::create_all(&mut ctx, &mut tx, entries, &creates, accesses, drafts).await? {
        answers[i] = Some(a);
    }
    for &i in &rest {
        ctx.access = &accesses[i];
        answers[i] = Some(
            exec::run(&mut ctx, &mut tx, &mut entries[i])
                .await
                .map_err(|e| entries[i].locate(e))?,
        );
    }
    tx.commit().await?;
    Ok(answers)
}

async fn batch(
    state: &AppState,
    access: &Access,
    mut entries: Vec<Entry>,
    prefer: Prefer,
    authorize: Authorize<'_>,
) -> Result<Vec<u8>> {
    let full_urls: HashMap<String, usize> = entries
        .iter()
        .filter_map(|e| e.full_url.clone().map(|f| (f, e.index)))
        .collect();
    let mut answers: Vec<Option<Answer>> = entries.iter().map(|_| None).collect();
    for i in order(&entries) {
        let entry = &mut entries[i];
        let entry_access = access.for_entry();
        let result = match check(entry, authorize) {
            Ok(()) => batch_entry(state, &entry_access, entry, prefer, &full_urls)
                .await
                .map_err(|e| entry.locate(e)),
            Err(e) => Err(e),
        };
        let answer = result.unwrap_or_else(|e| Answer::failed(&e));
        access.entry_done(
            entry.method.as_str(),
            &entry.path,
            answer.status.as_u16(),
            &entry_access,
        );
        answers[i] = Some(answer);
    }
    Ok(render(
        "batch-response",
        state.now(),
        answers.into_iter().flatten().collect(),
    ))
}

/// One batch entry in its own store transaction: its failure touches no other entry.
async fn batch_entry(
    state: &AppState,
    access: &Access,
    entry: &mut Entry,
    prefer: Prefer,
    full_urls: &HashMap<String, usize>,
) -> Result<Answer> {
    if let Some((reference, other)) = refs::dependency(entry, full_urls) {
        return Err(Error::invalid_at(
            "invalid",
            format!("Bundle.entry[{}].resource", entry.index),
            format!(
                "'{reference}' refers to Bundle.entry[{other}]: batch entries may not depend on each other (use a transaction)"
            ),
        ));
    }
    let mut ctx = Ctx {
        state,
        access,
        prefer,
        claims: Claims::default(),
    };
    if let Method::Get | Method::Head = entry.method {
        let mut tx = state.store().begin_read().await?;
        return exec::run(&mut ctx, &mut tx, entry).await;
    }
    let mut tx = state.store().begin_write().await?;
    let mut rewrites = Rewrites::new();
    exec::plan(state, access, &mut tx, entry, &mut rewrites).await?;
    // The entry's own fullUrl is not another entry: only conditional references apply.
    rewrites.clear();
    refs::resolve_conditional(state, access, &mut tx, std::slice::from_ref(entry), &mut rewrites).await?;
    refs::rewrite(entry, &rewrites);
    let answer = exec::run(&mut ctx, &mut tx, entry).await?;
    tx.commit().await?;
    Ok(answer)
}
