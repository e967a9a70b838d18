//! Running one entry inside a store transaction: identity first ([`plan`]), then the
//! interaction itself ([`run`]), through the same service calls as the HTTP handlers.

use std::collections::HashMap;

use super::Prefer;
use super::answer::Answer;
use super::envelope::{Action, Entry, Plan};
use super::get;
use super::refs::Rewrites;
use crate::error::{Error, Result};
use crate::policy::patient_writes::{self, Write};
use crate::policy::{Access, visibility, write_scope};
use crate::service::conditional;
use crate::service::{ids, validate, write};
use crate::state::AppState;
use crate::store::Tx;

/// Which entry writes each resource: a transaction writes each one at most once
/// (http.html#trules), else the outcome would depend on processing order.
#[derive(Debug, Default)]
pub struct Claims(HashMap<(String, String), usize>);

impl Claims {
    /// Claims what entries name by `Type/id` before anything runs, so that a clash is
    /// reported as such rather than as whatever the first of the two writes hits.
    pub fn upfront(entries: &[Entry]) -> Result<Claims> {
        let mut claims = Claims::default();
        for e in entries {
            if let Action::Update(t, id) | Action::Patch(t, id) | Action::Delete(t, id) = &e.action {
                claims.claim(t, id, e.index).map_err(|err| e.locate(err))?;
            }
        }
        Ok(claims)
    }

    fn claim(&mut self, t: &str, id: &str, index: usize) -> Result<()> {
        match self.0.insert((t.to_string(), id.to_string()), index) {
            Some(other) if other != index => Err(Error::invalid_at(
                "invalid",
                format!("Bundle.entry[{index}]"),
                format!(
                    "{t}/{id} is also written by Bundle.entry[{other}]: an entry may not write a resource another entry writes"
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// Decides the identity of creates and conditional updates before any of them runs,
/// and records what the entry's fullUrl stands for.
pub async fn plan(
    state: &AppState,
    access: &Access,
    tx: &mut Tx,
    entry: &mut Entry,
    rewrites: &mut Rewrites,
) -> Result<()> {
    if plan_without_store(entry, rewrites) {
        return Ok(());
    }
    let (t, id) = match &entry.action {
        Action::Create(t) => {
            let existing = match &entry.if_none_exist {
                Some(criteria) => conditional::at_most_one(state, &access.match_scope(), tx, t, criteria).await?,
                None => None,
            };
            let (id, plan) = match existing {
                Some(id) => (id.clone(), Plan::Existing(id)),
                None => {
                    let id = ids::new_id();
                    (id.clone(), Plan::CreateAs(id))
                }
            };
            entry.plan = plan;
            (t, id)
        }
        Action::CondUpdate(t, criteria) => {
            let body = entry.body.as_ref().ok_or_else(no_body)?;
            let target = conditional::update_target(state, &access.match_scope(), tx, t, criteria, body).await?;
            let id = target.id().to_string();
            entry.plan = Plan::Update(target);
            (t, id)
        }
        _ => return Ok(()),
    };
    if let Some(full_url) = &entry.full_url {
        rewrites.insert(full_url.clone(), format!("{t}/{id}"));
    }
    Ok(())
}

/// Whether an entry's identity is found by a lookup: a conditional create or update.
pub fn needs_store(entry: &Entry) -> bool {
    match &entry.action {
        Action::Create(_) => entry.if_none_exist.is_some(),
        Action::CondUpdate(..) => true,
        _ => false,
    }
}

/// [`plan`] for an entry whose identity needs no lookup: a create without
/// `ifNoneExist` (a new server id), an update by id, or an entry with nothing to plan.
/// False, with nothing done, for the conditional ones.
pub fn plan_without_store(entry: &mut Entry, rewrites: &mut Rewrites) -> bool {
    let (t, id) = match &entry.action {
        Action::Create(t) if entry.if_none_exist.is_none() => {
            let id = ids::new_id();
            entry.plan = Plan::CreateAs(id.clone());
            (t, id)
        }
        Action::Update(t, id) => (t, id.clone()),
        _ if needs_store(entry) => return false,
        _ => return true,
    };
    if let Some(full_url) = &entry.full_url {
        rewrites.insert(full_url.clone(), format!("{t}/{id}"));
    }
    true
}

/// Plain creates checked and indexed before the transaction ([`write::Draft`]), by
/// entry index; each result is reported where [`create_all`] would have checked it.
pub type Drafts = HashMap<usize, Result<write::Draft>>;

/// Drafts of the plain creates ([`is_plain_create`]) among `run` (indices into
/// `entries`, planned and rewritten), made on the blocking pool: a Bundle of a hundred
/// resources is milliseconds of CPU.
pub async fn draft_creates(state: &AppState, entries: &[Entry], run: &[usize]) -> Result<Drafts> {
    let work: Vec<(usize, String, String, serde_json::Value)> = run
        .iter()
        .filter_map(|&i| {
            let entry = &entries[i];
            match (&entry.action, &entry.plan, &entry.body) {
                (Action::Create(t), Plan::CreateAs(id), Some(body)) => Some((i, t.clone(), id.clone(), body.clone())),
                _ => None,
            }
        })
        .collect();
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        work.into_iter()
            .map(|(i, t, id, body)| (i, write::Draft::checked(&state, &t, &id, body, None)))
            .collect()
    })
    .await
    .map_err(|e| Error::Internal(format!("bundle drafts: {e}")))
}

fn no_body() -> Error {
    Error::invalid("required", "The entry has no resource")
}

/// Everything an entry needs besides its transaction.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub access: &'a Access,
    pub prefer: Prefer,
    pub claims: Claims,
}

pub async fn run(ctx: &mut Ctx<'_>, tx: &mut Tx, entry: &mut Entry) -> Result<Answer> {
    let (state, base, index) = (ctx.state, ctx.state.base_url(), entry.index);
    let access = ctx.access;
    let scope = access.match_scope();
    let body = entry.body.take();
    let if_match = entry.if_match;
    let written = match &entry.action {
        Action::Get(req) => return get::run(state, access, tx, req).await,
        Action::Delete(t, id) => {
            ctx.claims.claim(t, id, index)?;
            patient_writes::check(access, tx, Write::Delete, t, Some(id), None).await?;
            return delete(ctx, tx, t, id, if_match).await;
        }
        Action::CondDelete(t, criteria) => match conditional::at_most_one(state, &scope, tx, t, criteria).await? {
            None => {
                return Ok(Answer::deleted(
                    None,
                    ctx.prefer,
                    format!("No {t} matches '{criteria}'"),
                ));
            }
            Some(id) => {
                ctx.claims.claim(t, &id, index)?;
                patient_writes::check(access, tx, Write::Delete, t, Some(&id), None).await?;
                return delete(ctx, tx, t, &id, if_match).await;
            }
        },
        Action::Create(t) => return create(ctx, tx, entry, t, body.ok_or_else(no_body)?).await,
        Action::Update(t, id) => {
            ctx.claims.claim(t, id, index)?;
            let body = body.ok_or_else(no_body)?;
            patient_writes::check(access, tx, Write::Update, t, Some(id), Some(&body)).await?;
            write::update(state, tx, t, id, body, if_match).await?
        }
        Action::CondUpdate(t, criteria) => {
            let body = body.ok_or_else(no_body)?;
            let target = match std::mem::take(&mut entry.plan) {
                Plan::Update(target) => target,
                _ => conditional::update_target(state, &scope, tx, t, criteria, &body).await?,
            };
            ctx.claims.claim(t, target.id(), index)?;
            let kind = if matches!(target, conditional::UpdateTarget::Match(_)) {
                Write::Update
            } else {
                Write::Create
            };
            patient_writes::check(access, tx, kind, t, Some(target.id()), Some(&body)).await?;
            conditional::apply_update(state, tx, t, &target, body, if_match).await?
        }
        Action::Patch(t, id) => {
            ctx.claims.claim(t, id, index)?;
            patient_writes::check(access, tx, Write::Patch, t, Some(id), None).await?;
            write::patch(state, tx, t, id, body.ok_or_else(no_body)?, if_match).await?
        }
        Action::CondPatch(t, criteria) => {
            let id = conditional::exactly_one(state, &scope, tx, t, criteria).await?;
            ctx.claims.claim(t, &id, index)?;
            patient_writes::check(access, tx, Write::Patch, t, Some(&id), None).await?;
            write::patch(state, tx, t, &id, body.ok_or_else(no_body)?, if_match).await?
        }
    };
    write_scope::check_written(access, tx, &written).await?;
    Ok(Answer::written(base, written, ctx.prefer))
}

async fn create(ctx: &mut Ctx<'_>, tx: &mut Tx, entry: &Entry, t: &str, body: serde_json::Value) -> Result<Answer> {
    let (state, base) = (ctx.state, ctx.state.base_url());
    let id = match &entry.plan {
        Plan::Existing(id) => {
            let v = visibility::read(ctx.access, tx, t, id).await?;
            let content = v.content.unwrap_or_default();
            return Ok(Answer::existing(
                base,
                t,
                id,
                v.version,
                v.last_updated,
                content,
                ctx.prefer,
            ));
        }
        Plan::CreateAs(id) => id.clone(),
        _ => ids::new_id(),
    };
    ctx.claims.claim(t, &id, entry.index)?;
    patient_writes::check(ctx.access, tx, Write::Create, t, None, Some(&body)).await?;
    let resource = validate::resource(&state.config().profiles, t, body, None)?;
    let w = write::create_checked(state, tx, t, resource, Some(id)).await?;
    ctx.access.note(&w.res_type, &w.id);
    write_scope::check_written(ctx.access, tx, &w).await?;
    Ok(Answer::written(base, w, ctx.prefer))
}

/// Whether an entry is a create with a server id already chosen (no match of
/// `ifNoneExist`): such entries are stored together by [`create_all`].
pub fn is_plain_create(entry: &Entry) -> bool {
    matches!(entry.action, Action::Create(_)) && matches!(entry.plan, Plan::CreateAs(_))
}

/// The plain creates `run` (indices into `entries`, their references rewritten),
/// checked each as [`create`] checks it, then stored with a few statements per table
/// instead of a few per resource (`write::create_many`). `accesses` are the entries'
/// own (each notes what it touched for its AuditEvent).
pub async fn create_all(
    ctx: &mut Ctx<'_>,
    tx: &mut Tx,
    entries: &mut [Entry],
    run: &[usize],
    accesses: &[Access],
    mut drafts: Drafts,
) -> Result<Vec<(usize, Answer)>> {
    let state = ctx.state;
    let now = state.now();
    let mut ready = Vec::with_capacity(run.len());
    for &i in run {
        let entry = &mut entries[i];
        let drafted = drafts.remove(&i);
        let checked = async {
            let (Action::Create(t), Plan::CreateAs(id)) = (&entry.action, &entry.plan) else {
                return Err(Error::Internal("not a plain create".into()));
            };
            let body = entry.body.take().ok_or_else(no_body)?;
            ctx.claims.claim(t, id, entry.index)?;
            patient_writes::check(&accesses[i], tx, Write::Create, t, None, Some(&body)).await?;
            let draft = match drafted {
                Some(draft) => draft?,
                None => write::Draft::checked(state, t, id, body, None)?,
            };
            write::NewResource::drafted(t, id.clone(), draft, now)
        }
        .await;
        ready.push((i, checked.map_err(|e| entry.locate(e))?));
    }
    write::create_many(state, tx, &ready.iter().map(|(_, n)| n).collect::<Vec<_>>(), "POST").await?;
    let mut answers = Vec::with_capacity(ready.len());
    for (i, n) in ready {
        let w = write::Written {
            res_type: n.res_type,
            id: n.id,
            version: 1,
            last_updated: n.last_updated,
            content: n.content,
            created: true,
        };
        accesses[i].note(&w.res_type, &w.id);
        write_scope::check_written(&accesses[i], tx, &w)
            .await
            .map_err(|e| entries[i].locate(e))?;
        answers.push((i, Answer::written(state.base_url(), w, ctx.prefer)));
    }
    Ok(answers)
}

async fn delete(ctx: &Ctx<'_>, tx: &mut Tx, t: &str, id: &str, if_match: Option<i64>) -> Result<Answer> {
    let d = write::delete(ctx.state, tx, t, id, if_match).await?;
    let message = match d.version {
        Some(_) => format!("{t}/{id} deleted"),
        None => format!("{t}/{id} was already deleted"),
    };
    Ok(Answer::deleted(d.version, ctx.prefer, message))
}
