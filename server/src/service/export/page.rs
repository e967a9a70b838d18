//! The SQL of an export: one type at a time, in pk order (keyset pages), the stored JSON
//! bytes as they are. The conditions are those of a search: the caller's policy
//! (`AccessScope::condition`, the same SQL search ANDs into every fetch) and each
//! `_typeFilter` rendered by the search builder, so a refusing patient's record (R4) is
//! left out of an export exactly as it is left out of a search.

use super::Level;
use crate::error::Result;
use crate::search::AccessScope;
use crate::search::sql::{Builder, Ctx};
use crate::state::AppState;
use crate::store::Tx;
use crate::store::sql::{Bind, Cell, Kind, SqlQuery, fetch};

/// What one type's pages select.
pub struct Spec<'a> {
    pub res_type: &'a str,
    pub level: Level,
    pub job_id: &'a str,
    pub since: Option<i64>,
    pub max_pk: i64,
    /// `_typeFilter` queries for this type (ORed); empty: every resource of the type.
    pub filters: &'a [String],
}

impl<'a> Spec<'a> {
    /// A spec that only exercises one filter's SQL (kick-off validation).
    pub fn probe(res_type: &'a str, filters: &'a [String]) -> Spec<'a> {
        Spec {
            res_type,
            level: Level::System,
            job_id: "",
            since: None,
            max_pk: 0,
            filters,
        }
    }
}

/// One type's selection, built once and run for every page.
pub struct Page {
    q: SqlQuery,
}

impl Page {
    pub fn build(state: &AppState, scope: &AccessScope, spec: &Spec<'_>) -> Result<Page> {
        let mut b = Builder::new(Ctx {
            base: state.base_url(),
            now: state.now(),
            scope,
        });
        let mut w = vec![
            format!("r.res_type = {}", b.q.text(spec.res_type)),
            "r.deleted = FALSE".to_string(),
            format!("r.pk <= {}", b.q.int(spec.max_pk)),
        ];
        if let Some(s) = spec.since {
            w.push(format!("r.last_updated >= {}", b.q.int(s)));
        }
        match spec.level {
            Level::System => {}
            // Correlated on the row (not `IN (…)` over a whole compartment table) so
            // that a page stays a walk of the type's pk range.
            Level::Patient => {
                w.push("EXISTS (SELECT 1 FROM patient_compartment ex_pc WHERE ex_pc.pk = r.pk)".to_string())
            }
            Level::Group => w.push(format!(
                "EXISTS (SELECT 1 FROM patient_compartment ex_pc JOIN export_patients ex_p \
                 ON ex_p.patient_id = ex_pc.patient_id WHERE ex_pc.pk = r.pk AND ex_p.job_id = {})",
                b.q.text(spec.job_id)
            )),
        }
        w.extend(b.scope("r"));
        if !spec.filters.is_empty() {
            let types = [spec.res_type.to_string()];
            let mut alternatives = Vec::new();
            for f in spec.filters {
                let parsed = super::parse_filter(spec.res_type, f)?;
                let mut all = Vec::new();
                for c in &parsed.criteria {
                    all.push(b.criterion(c, &types, "r")?);
                }
                alternatives.push(if all.is_empty() {
                    "1 = 1".to_string()
                } else {
                    all.join(" AND ")
                });
            }
            w.push(format!("(({}))", alternatives.join(") OR (")));
        }
        b.q.sql = w.join(" AND ");
        Ok(Page { q: b.q })
    }

    /// Up to `limit` rows after `after_pk`: (pk, stored JSON).
    pub async fn fetch(&self, tx: &mut Tx, after_pk: i64, limit: usize) -> Result<Vec<(i64, Vec<u8>)>> {
        let mut q = SqlQuery {
            sql: String::new(),
            binds: self.q.binds.clone(),
        };
        let after = q.bind(Bind::I64(Some(after_pk)));
        let lim = q.bind(Bind::I64(Some(i64::try_from(limit).unwrap_or(i64::MAX))));
        q.sql = format!(
            "SELECT r.pk, v.content FROM resources r JOIN resource_versions v ON v.pk = r.pk AND v.version = r.version \
             WHERE {} AND r.pk > {after} ORDER BY r.pk LIMIT {lim}",
            self.q.sql
        );
        let rows = fetch(tx, &q, &[Kind::I64, Kind::Bytes]).await?;
        Ok(rows
            .into_iter()
            .filter_map(|mut r| {
                let content = match r.pop() {
                    Some(Cell::Bytes(Some(b))) => b,
                    _ => return None,
                };
                Some((r.first()?.i64()?, content))
            })
            .collect())
    }
}
