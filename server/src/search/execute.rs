//! Running a parsed search: the WHERE clause (built once, shared by the page query and
//! the count), keyset pages, totals and `_include` / `_revinclude`.

use std::collections::{HashMap, HashSet};

use carnet_search::{Include, ParsedQuery, ResultParams};

use super::compartment;
use super::cursor::Cursor;
use super::sql::sort::{self, SortCol};
use super::sql::{Builder, Cell, Ctx, Kind, SqlQuery, fetch, fold};
use crate::error::{Error, Result};
use crate::store::Tx;

/// The selection of a search: `sql` holds the WHERE clause over `resources r`, with
/// its binds, but for R4's condition, `not_refused`, which binds into the same list
/// and which every statement of the plan adds; `sort` the `_sort` keys (their
/// subqueries bind into the same list too).
pub struct Plan {
    pub q: SqlQuery,
    /// How many of `q.binds` the WHERE clause and `not_refused` use: the sort keys'
    /// binds follow, and PostgreSQL refuses binds a statement does not use (the count
    /// has no sort).
    pub where_binds: usize,
    pub not_refused: Option<String>,
    pub sort: Vec<SortCol>,
}

/// Builds the plan. `compartment` is the id of the Patient whose compartment is searched.
pub fn plan(ctx: Ctx<'_>, parsed: &ParsedQuery, compartment: Option<&str>) -> Result<Plan> {
    let mut b = Builder::new(ctx);
    let base_types: Vec<String> = match &parsed.resource_type {
        Some(t) => vec![t.clone()],
        None if !parsed.result.types.is_empty() => parsed.result.types.clone(),
        None => vec!["Resource".to_string()],
    };
    let mut w = vec!["r.deleted = FALSE".to_string()];
    let units = fold::units(&parsed.criteria, parsed.resource_type.as_deref());
    // With criteria that list pks, those lists are the selective part: `|| ''` hides the
    // type column from the planner so SQLite starts from them instead of reading every
    // resource of the type (PostgreSQL plans by cost either way). Without them the type
    // index is the way in, in pk order, each resource tested until the page is full.
    let type_col = if !units.iter().any(fold::Unit::drives) && compartment.is_none() {
        "r.res_type"
    } else {
        "(r.res_type || '')"
    };
    w.extend(b.q.type_filter(type_col, &base_types));
    if let (Some(id), Some(t)) = (compartment, &parsed.resource_type) {
        let c = compartment::condition(&mut b.q, "r", t, id)
            .ok_or_else(|| Error::NotFound(format!("{t} is not in the Patient compartment")))?;
        w.push(c);
    }
    w.extend(b.visible("r"));
    let not_refused = b.not_refused("r");
    for u in &units {
        w.push(match u {
            fold::Unit::Plain(c) => b.criterion(c, &base_types, "r")?,
            fold::Unit::Folded { target, patient, dates } => b.folded(target, *patient, dates, "r")?,
            fold::Unit::HasPatient(c) => b.has_patient(c, "r")?,
        });
    }
    let where_binds = b.q.binds.len();
    let mut sort = Vec::new();
    for key in &parsed.result.sort {
        sort.push(sort::key(&mut b, &base_types, key, "r")?);
    }
    b.q.sql = w.join(" AND ");
    Ok(Plan {
        q: b.q,
        where_binds,
        not_refused,
        sort,
    })
}

/// One row of a page: where it is and its sort key values (for cursors).
pub struct Hit {
    pub pk: i64,
    pub res_id: String,
    pub keys: Vec<Cell>,
}

impl Hit {
    pub fn cursor(&self, backward: bool) -> Cursor {
        Cursor {
            backward,
            pk: self.pk,
            keys: self.keys.clone(),
        }
    }
}

impl Plan {
    pub fn kinds(&self) -> Vec<Kind> {
        self.sort.iter().map(|s| s.kind).collect()
    }

    /// The whole selection, R4 included, as one WHERE clause over `resources r`.
    fn selection(&self) -> String {
        match &self.not_refused {
            Some(c) => format!("{} AND {c}", self.q.sql),
            None => self.q.sql.clone(),
        }
    }

    /// Up to `limit` rows after (or before) `cursor`, in page order.
    pub async fn page(&self, tx: &mut Tx, cursor: Option<&Cursor>, limit: i64) -> Result<Vec<Hit>> {
        let binds = if self.sort.is_empty() {
            self.where_binds
        } else {
            self.q.binds.len()
        };
        let mut q = SqlQuery {
            sql: String::new(),
            binds: self.q.binds[..binds].to_vec(),
        };
        let backward = cursor.is_some_and(|c| c.backward);
        let mut kinds = vec![Kind::I64, Kind::Text, Kind::Text];
        if self.sort.is_empty() {
            let mut sql = format!(
                "SELECT r.pk, r.res_type, r.res_id FROM resources r WHERE {}",
                self.q.sql
            );
            if let Some(c) = cursor {
                let op = if backward { "<" } else { ">" };
                sql += &format!(" AND r.pk {op} {}", q.int(c.pk));
            }
            let dir = if backward { "DESC" } else { "ASC" };
            sql = match &self.not_refused {
                // R4 after the page order, so that only the rows up to the page's end
                // are tested: as one WHERE clause, PostgreSQL tested every match before
                // sorting them (`Patient?name=cote` at 1 M: 275 probes of the patient
                // compartment for a page of 50, 1.6 of its 3.5 ms). A limit that never
                // binds keeps the ordered selection from being merged back into one
                // clause (SQLite has no `OFFSET` without `LIMIT`, PostgreSQL no `LIMIT -1`).
                Some(c) => format!(
                    "SELECT r.pk, r.res_type, r.res_id FROM ({sql} ORDER BY r.pk {dir} \
                     LIMIT 9223372036854775807) r WHERE {c} ORDER BY r.pk {dir} LIMIT {}",
                    q.int(limit)
                ),
                None => format!("{sql} ORDER BY r.pk {dir} LIMIT {}", q.int(limit)),
            };
            q.sql = sql;
        } else {
            let cols: Vec<String> = self
                .sort
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{} AS k{i}", s.expr))
                .collect();
            let names: Vec<String> = (0..self.sort.len()).map(|i| format!("q.k{i}")).collect();
            let mut sql = format!(
                "SELECT q.pk, q.res_type, q.res_id, {} FROM (SELECT r.pk, r.res_type, r.res_id, {} \
                 FROM resources r WHERE {}) q",
                names.join(", "),
                cols.join(", "),
                self.selection()
            );
            if let Some(c) = cursor {
                sql += &format!(" WHERE {}", self.keyset(&mut q, c));
            }
            let order: Vec<String> = self
                .sort
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    // Missing values last in the page order; reversed when paging back.
                    match (s.descending, backward) {
                        (false, false) => format!("q.k{i} ASC NULLS LAST"),
                        (true, false) => format!("q.k{i} DESC NULLS LAST"),
                        (false, true) => format!("q.k{i} DESC NULLS FIRST"),
                        (true, true) => format!("q.k{i} ASC NULLS FIRST"),
                    }
                })
                .collect();
            let dir = if backward { "DESC" } else { "ASC" };
            sql += &format!(" ORDER BY {}, q.pk {dir} LIMIT {}", order.join(", "), q.int(limit));
            q.sql = sql;
            kinds.extend(self.kinds());
        }
        let rows = fetch(tx, &q, &kinds).await?;
        Ok(rows
            .into_iter()
            .map(|mut r| {
                let keys = r.split_off(3);
                Hit {
                    pk: r[0].i64().unwrap_or_default(),
                    res_id: r[2].text().unwrap_or_default().to_string(),
                    keys,
                }
            })
            .collect())
    }

    /// Rows strictly after (before) the cursor in the order `(k0, k1, …, pk)`, where
    /// NULL keys come last in either direction.
    fn keyset(&self, q: &mut SqlQuery, c: &Cursor) -> String {
        let pk_op = if c.backward { "<" } else { ">" };
        let mut cond = format!("q.pk {pk_op} {}", q.int(c.pk));
        for (i, (s, v)) in self.sort.iter().zip(&c.keys).enumerate().rev() {
            let k = format!("q.k{i}");
            let (strict, equal) = if v.is_null() {
                let strict = if c.backward {
                    format!("{k} IS NOT NULL")
                } else {
                    "1 = 0".to_string()
                };
                (strict, format!("{k} IS NULL"))
            } else {
                let p = q.bind(v.to_bind());
                let op = match (s.descending, c.backward) {
                    (false, false) | (true, true) => ">",
                    (true, false) | (false, true) => "<",
                };
                let strict = if c.backward {
                    format!("{k} {op} {p}")
                } else {
                    format!("({k} {op} {p} OR {k} IS NULL)")
                };
                (strict, format!("{k} = {p}"))
            };
            cond = format!("({strict} OR ({equal} AND {cond}))");
        }
        cond
    }

    pub async fn count(&self, tx: &mut Tx) -> Result<i64> {
        let q = SqlQuery {
            sql: format!("SELECT COUNT(*) FROM resources r WHERE {}", self.selection()),
            binds: self.q.binds[..self.where_binds].to_vec(),
        };
        let rows = fetch(tx, &q, &[Kind::I64]).await?;
        Ok(rows.first().and_then(|r| r.first()).and_then(Cell::i64).unwrap_or(0))
    }
}

/// How many resources match `matches` (a condition on `resources r`), if at most `cap`.
pub(crate) async fn count_up_to(tx: &mut Tx, matches: SqlQuery, cap: i64) -> Result<Option<i64>> {
    let mut q = matches;
    let limit = q.int(cap.saturating_add(1));
    q.sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 AS one FROM resources r WHERE {} LIMIT {limit}) capped",
        q.sql
    );
    let rows = fetch(tx, &q, &[Kind::I64]).await?;
    let n = rows.first().and_then(|r| r.first()).and_then(Cell::i64).unwrap_or(0);
    Ok((n <= cap).then_some(n))
}

/// Most resources `_include` / `_revinclude` may add to one page.
const MAX_INCLUDED: usize = 1000;
/// `:iterate` rounds after the first.
const MAX_ITERATIONS: usize = 4;

/// The pks of resources to include with `matches`, not counting the matches.
pub async fn includes(b: &mut Builder<'_>, tx: &mut Tx, r: &ResultParams, matches: &[i64]) -> Result<Vec<i64>> {
    if (r.include.is_empty() && r.revinclude.is_empty()) || matches.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen: HashSet<i64> = matches.iter().copied().collect();
    let mut out = Vec::new();
    let mut sources = matches.to_vec();
    for round in 0..=MAX_ITERATIONS {
        let mut found = Vec::new();
        for (inc, reverse) in r
            .include
            .iter()
            .map(|i| (i, false))
            .chain(r.revinclude.iter().map(|i| (i, true)))
        {
            if round > 0 && !inc.iterate {
                continue;
            }
            for pk in fetch_included(b, tx, inc, reverse, &sources).await? {
                if seen.insert(pk) {
                    found.push(pk);
                }
            }
        }
        if found.is_empty() || out.len() >= MAX_INCLUDED {
            break;
        }
        out.extend(found.iter().copied());
        sources = found;
    }
    out.truncate(MAX_INCLUDED);
    Ok(out)
}

async fn fetch_included(
    b: &mut Builder<'_>,
    tx: &mut Tx,
    inc: &Include,
    reverse: bool,
    sources: &[i64],
) -> Result<Vec<i64>> {
    b.q = SqlQuery::default();
    let mut w = Vec::new();
    if inc.source_type != "*" {
        w.push(format!("ref.res_type = {}", b.q.text(&inc.source_type)));
    }
    match &inc.param {
        Some(p) => {
            let types = if inc.source_type == "*" {
                Vec::new()
            } else {
                vec![inc.source_type.clone()]
            };
            w.push(super::sql::param_cond(&mut b.q, "ref", &types, p, ""));
        }
        // `*`: every reference parameter, not the reference components of composites.
        None => w.push("ref.grp IS NULL".to_string()),
    }
    if let Some(t) = &inc.target_type {
        w.push(format!("ref.target_type = {}", b.q.text(t)));
    }
    let sql = if reverse {
        w.push(b.q.pk_in(tx.backend(), "t.pk", sources));
        w.push("s.deleted = FALSE".to_string());
        w.extend(b.scope("s"));
        format!(
            "SELECT DISTINCT ref.pk FROM resources t JOIN idx_reference ref \
             ON ref.target_type = t.res_type AND ref.target_id = t.res_id \
             JOIN resources s ON s.pk = ref.pk WHERE {} LIMIT {}",
            w.join(" AND "),
            b.q.int(MAX_INCLUDED as i64 + 1)
        )
    } else {
        w.push(b.q.pk_in(tx.backend(), "ref.pk", sources));
        w.push("t.deleted = FALSE".to_string());
        w.extend(b.scope("t"));
        format!(
            "SELECT DISTINCT t.pk FROM idx_reference ref JOIN resources t \
             ON t.res_type = ref.target_type AND t.res_id = ref.target_id WHERE {} LIMIT {}",
            w.join(" AND "),
            b.q.int(MAX_INCLUDED as i64 + 1)
        )
    };
    b.q.sql = sql;
    let q = std::mem::take(&mut b.q);
    let rows = fetch(tx, &q, &[Kind::I64]).await?;
    Ok(rows.iter().filter_map(|r| r.first().and_then(Cell::i64)).collect())
}

/// Current content of resources by pk: `(pk, type, id, content)`.
pub async fn contents(tx: &mut Tx, pks: &[i64]) -> Result<Vec<(i64, String, String, Vec<u8>)>> {
    if pks.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = SqlQuery::default();
    let listed = q.pk_in(tx.backend(), "r.pk", pks);
    q.sql = format!(
        "SELECT r.pk, r.res_type, r.res_id, v.content FROM resources r \
         JOIN resource_versions v ON v.pk = r.pk AND v.version = r.version \
         WHERE r.deleted = FALSE AND {listed}"
    );
    let rows = fetch(tx, &q, &[Kind::I64, Kind::Text, Kind::Text, Kind::Bytes]).await?;
    Ok(rows
        .into_iter()
        .filter_map(|mut r| {
            let content = match r.pop() {
                Some(Cell::Bytes(Some(c))) => c,
                _ => return None,
            };
            Some((r[0].i64()?, r[1].text()?.to_string(), r[2].text()?.to_string(), content))
        })
        .collect())
}

/// The patients whose compartments hold each of `pks` (resources in none are absent):
/// what the request's AuditEvent names, read in the search's own snapshot.
pub async fn owners(tx: &mut Tx, pks: &[i64]) -> Result<HashMap<i64, Vec<String>>> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    if pks.is_empty() {
        return Ok(out);
    }
    let mut q = SqlQuery::default();
    let listed = q.pk_in(tx.backend(), "pc.pk", pks);
    q.sql = format!("SELECT pc.pk, pc.patient_id FROM patient_compartment pc WHERE {listed}");
    for row in fetch(tx, &q, &[Kind::I64, Kind::Text]).await? {
        if let (Some(pk), Some(p)) = (row[0].i64(), row[1].text()) {
            out.entry(pk).or_default().push(p.to_string());
        }
    }
    Ok(out)
}
