//! SMART v2 scope restrictions in the data-access path
//! (`patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory`).
//!
//! The restriction pairs of the caller's reading scopes (those with `r` or `s`) are
//! parsed once per request with `carnet_search::parse_query` for their type, and become
//! one more condition of `AccessScope::visible`: every fetch of resources (search and
//! its count, chains, `_has`, `_include` / `_revinclude`, history, read, vread) then
//! keeps a resource of a restricted type only when it matches the restriction of one of
//! the scopes that reach it, using the search index's own SQL (`search::sql::Builder`).
//! A read of a resource that does not match answers 404, as if it were absent.
//!
//! A resource is reachable when one reading scope matches its type and, if that scope
//! is restricted, its criteria (so `patient/Observation.rs?category=a` and
//! `patient/Observation.rs?category=b` together reach either). Types no reading scope
//! names are unreachable: a token for `patient/Observation.rs` reads no Patient, not even
//! through `_include`, a chain or `$everything`. A restriction the search parser
//! refuses reaches nothing (fail closed).

use std::sync::Arc;

use carnet_search::{Criterion, Registry, parse_query};

use crate::auth::principal::Principal;
use crate::auth::scopes::{R, S};
use crate::search::AccessScope;
use crate::search::sql::{Builder, Ctx, SqlQuery};

/// The restriction of one reading scope.
#[derive(Debug, Clone)]
struct Alternative {
    /// A resource type, or `None` for `*`.
    res_type: Option<String>,
    /// ANDed; empty when the scope is unrestricted. `None`: the restriction could not be
    /// parsed, nothing matches.
    criteria: Option<Vec<Criterion>>,
}

/// The caller's restrictions, built once per request ([`of`]).
#[derive(Debug, Clone)]
pub struct Restrictions {
    alternatives: Vec<Alternative>,
    /// For `ap` date comparisons.
    now: i64,
}

/// What `principal`'s reading scopes reach, or `None` when an unrestricted `*` scope
/// reaches every type.
pub fn of(principal: &Principal, now: i64) -> Option<Arc<Restrictions>> {
    of_permission(principal, R | S, now)
}

/// What the scopes granting any of the `perms` letters reach (writes: `C`, `U`, `D`),
/// or `None` when an unrestricted `*` scope among them reaches every type.
pub fn of_permission(principal: &Principal, perms: u8, now: i64) -> Option<Arc<Restrictions>> {
    let reading: Vec<_> = principal
        .scopes
        .resources
        .iter()
        .filter(|r| r.perms & perms != 0)
        .collect();
    if reading
        .iter()
        .any(|r| r.resource_type == "*" && r.restriction.is_empty())
    {
        return None;
    }
    let mut alternatives = Vec::new();
    for r in &reading {
        let res_type = (r.resource_type != "*").then(|| r.resource_type.clone());
        let criteria = if r.restriction.is_empty() {
            Some(Vec::new())
        } else {
            parse_query(Registry::r4(), res_type.as_deref(), &r.restriction, false)
                .ok()
                .map(|p| p.criteria)
                .filter(|c| validate(c, res_type.as_deref(), now))
        };
        alternatives.push(Alternative { res_type, criteria });
    }
    Some(Arc::new(Restrictions { alternatives, now }))
}

/// Whether the search SQL can express these criteria (built once on a scratch query).
fn validate(criteria: &[Criterion], res_type: Option<&str>, now: i64) -> bool {
    let mut scratch = SqlQuery::default();
    build(&mut scratch, criteria, res_type, "r", now).is_some()
}

/// The criteria ANDed on resource alias `alias`, bound into `q`; `None` (and `q`
/// unchanged) if the search SQL refuses one.
fn build(q: &mut SqlQuery, criteria: &[Criterion], res_type: Option<&str>, alias: &str, now: i64) -> Option<String> {
    let unrestricted = AccessScope::unrestricted();
    let mut b = Builder::new(Ctx {
        base: "",
        now,
        scope: &unrestricted,
    });
    let saved = q.clone();
    b.q = std::mem::take(q);
    let types = vec![res_type.unwrap_or("Resource").to_string()];
    let mut parts = Vec::new();
    for c in criteria {
        match b.criterion(c, &types, alias) {
            Ok(sql) => parts.push(sql),
            Err(_) => {
                *q = saved;
                return None;
            }
        }
    }
    *q = b.q;
    Some(if parts.is_empty() {
        "1 = 1".to_string()
    } else {
        parts.join(" AND ")
    })
}

impl Restrictions {
    /// The condition on resource alias `alias`: some reading scope reaches the row.
    pub fn condition(&self, q: &mut SqlQuery, alias: &str) -> String {
        let mut ors = Vec::new();
        for a in &self.alternatives {
            let mut ands = Vec::new();
            if let Some(t) = &a.res_type {
                ands.push(format!("{alias}.res_type = {}", q.text(t)));
            }
            match &a.criteria {
                None => ands.push("1 = 0".to_string()),
                Some(c) if c.is_empty() => {}
                Some(c) => match build(q, c, a.res_type.as_deref(), alias, self.now) {
                    Some(sql) => ands.push(sql),
                    None => ands.push("1 = 0".to_string()),
                },
            }
            if ands.is_empty() {
                return "1 = 1".to_string();
            }
            ors.push(format!("({})", ands.join(" AND ")));
        }
        if ors.is_empty() {
            // No reading scope at all: nothing is visible (writes alone never read).
            return "1 = 0".to_string();
        }
        format!("({})", ors.join(" OR "))
    }
}
