//! Search index rows, written in the same transaction as the version they describe.
//!
//! One typed table per parameter type (see `migrations/*/0002_search_index.sql`).
//! Rows are computed from the resource first ([`IndexRows`], no I/O), then stored with
//! one bulk insert per table that has rows, for one resource or for many at once.

use std::sync::Arc;

use carnet_search::{IndexEntry, IndexValue, NumberValue, Registry, TokenValue};
use serde_json::Value;

use crate::store::bulk::{self, ColType, Rows};
use crate::store::sql::{Bind, execute};
use crate::store::{StoreError, Tx};

/// Longest text kept in an indexed column. PostgreSQL refuses B-tree entries above
/// ~2.7 kB, so longer values are clipped on write and queries clip the same way
/// (a match beyond the clip is a rare false positive, never a miss).
pub(crate) const MAX_INDEXED: usize = 1000;

/// `_id` and `_lastUpdated` are columns of `resources`; indexing them again would
/// only cost writes.
pub(crate) fn is_resource_column(param: &str) -> bool {
    matches!(param, "_id" | "_lastUpdated")
}

pub(crate) fn clip(s: &str) -> String {
    clipped(s).to_string()
}

fn clipped(s: &str) -> &str {
    if s.len() <= MAX_INDEXED {
        return s;
    }
    let mut end = MAX_INDEXED;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Index values are made once, on the thread that checks the resource, and shared
/// from there with the statement that stores them, instead of being copied twice (into
/// the rows, then by sqlx) on the task that stores: ~150 strings a resource.
fn shared(s: &str) -> Bind {
    Bind::Shared(Some(Arc::from(clipped(s))))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Table {
    String,
    Token,
    Reference,
    Date,
    Number,
    Quantity,
    Uri,
}

impl Table {
    pub(crate) const ALL: [Table; 7] = [
        Table::String,
        Table::Token,
        Table::Reference,
        Table::Date,
        Table::Number,
        Table::Quantity,
        Table::Uri,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::String => "idx_string",
            Table::Token => "idx_token",
            Table::Reference => "idx_reference",
            Table::Date => "idx_date",
            Table::Number => "idx_number",
            Table::Quantity => "idx_quantity",
            Table::Uri => "idx_uri",
        }
    }

    /// Every column: `(pk, res_type, param, grp)` then the table's values.
    fn columns(self) -> &'static [(&'static str, ColType)] {
        use ColType::{F64, I64, Text};
        match self {
            Table::String => &[
                ("pk", I64),
                ("res_type", Text),
                ("param", Text),
                ("grp", I64),
                ("normalized", Text),
                ("exact", Text),
            ],
            Table::Token => &[
                ("pk", I64),
                ("res_type", Text),
                ("param", Text),
                ("grp", I64),
                ("system", Text),
                ("code", Text),
                ("text", Text),
                ("type_system", Text),
                ("type_code", Text),
                ("rpatient", Text),
                ("rdate_low", I64),
                ("rdate_high", I64),
                ("rflags", I64),
            ],
            Table::Reference => &[
                ("pk", I64),
                ("res_type", Text),
                ("param", Text),
                ("grp", I64),
                ("target_type", Text),
                ("target_id", Text),
                ("url", Text),
                ("version", Text),
                ("id_system", Text),
                ("id_value", Text),
                ("rdate_low", I64),
                ("rdate_high", I64),
                ("rflags", I64),
            ],
            Table::Date => &[
                ("pk", I64),
                ("res_type", Text),
                ("param", Text),
                ("grp", I64),
                ("low", I64),
                ("high", I64),
            ],
            Table::Number => &[
                ("pk", I64),
                ("res_type", Text),
                ("param", Text),
                ("grp", I64),
                ("value", F64),
                ("low", F64),
                ("high", F64),
            ],
            Table::Quantity => &[
                ("pk", I64),
                ("res_type", Text),
                ("param", Text),
                ("grp", I64),
                ("value", F64),
                ("low", F64),
                ("high", F64),
                ("system", Text),
                ("code", Text),
                ("unit", Text),
            ],
            Table::Uri => &[
                ("pk", I64),
                ("res_type", Text),
                ("param", Text),
                ("grp", I64),
                ("uri", Text),
            ],
        }
    }

    pub(crate) fn of(param_type: carnet_search::ParamType) -> Option<Table> {
        use carnet_search::ParamType as P;
        Some(match param_type {
            P::String => Table::String,
            P::Token => Table::Token,
            P::Reference => Table::Reference,
            P::Date => Table::Date,
            P::Number => Table::Number,
            P::Quantity => Table::Quantity,
            P::Uri => Table::Uri,
            P::Composite | P::Special => return None,
        })
    }
}

fn text(s: &Option<String>) -> Bind {
    match s {
        Some(s) => shared(s),
        None => Bind::Shared(None),
    }
}

/// Ranges are stored closed; a single value is stored as the point it is (its written
/// precision matters for the query value, not for the stored one).
fn number_binds(n: &NumberValue) -> [Bind; 3] {
    match n.value {
        Some(v) => [Bind::F64(Some(v)), Bind::F64(Some(v)), Bind::F64(Some(v))],
        None => [Bind::F64(None), Bind::F64(Some(n.low)), Bind::F64(Some(n.high))],
    }
}

fn token_binds(t: &TokenValue) -> Vec<Bind> {
    vec![
        text(&t.system),
        text(&t.code),
        Bind::Shared(t.text.as_deref().map(Arc::from)),
        text(&t.of_type_system),
        text(&t.of_type_code),
    ]
}

/// The table and value columns of one index value; `None` for a nested composite.
fn row(value: &IndexValue) -> Option<(Table, Vec<Bind>)> {
    Some(match value {
        IndexValue::String(s) => (
            Table::String,
            vec![shared(&s.normalized), Bind::Shared(Some(Arc::from(s.exact.as_str())))],
        ),
        IndexValue::Token(t) => (Table::Token, token_binds(t)),
        IndexValue::Reference(r) => {
            let (id_system, id_value) = match &r.identifier {
                Some(i) => (text(&i.system), text(&i.code)),
                None => (Bind::Shared(None), Bind::Shared(None)),
            };
            (
                Table::Reference,
                vec![
                    text(&r.target_type),
                    text(&r.target_id),
                    text(&r.url),
                    text(&r.version),
                    id_system,
                    id_value,
                ],
            )
        }
        IndexValue::Date(d) => (Table::Date, vec![Bind::I64(Some(d.low)), Bind::I64(Some(d.high))]),
        IndexValue::Number(n) => (Table::Number, number_binds(n).to_vec()),
        IndexValue::Quantity(q) => {
            let mut b = number_binds(&q.number).to_vec();
            b.extend([text(&q.system), text(&q.code), text(&q.unit)]);
            (Table::Quantity, b)
        }
        IndexValue::Uri(u) => (Table::Uri, vec![shared(&u.uri)]),
        IndexValue::Composite(_) => return None,
    })
}

/// One index row before insertion: parameter (or composite component) name, `grp`,
/// and the table's value columns.
type Row = (Arc<str>, Option<i64>, Vec<Bind>);

/// The index rows of one resource, computed before its pk is known (so that many
/// resources can be prepared apart from the transaction that stores them).
#[derive(Debug, Clone, Default)]
pub struct IndexRows {
    by_table: [Vec<Row>; Table::ALL.len()],
    co: CoFacts,
}

/// Facts of the whole resource repeated on its token and reference rows (migration
/// 0010), so that `code` + `patient`, `code` + `date`, chains to the Patient and
/// `_has` read one index range (docs/design.md, "Search plans").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoFacts {
    /// The one Patient its `patient` parameter names.
    pub patient: Option<Arc<str>>,
    /// The one value of its `date` parameter, when at most [`MAX_FOLDED_SPAN`] long.
    pub date: Option<(i64, i64)>,
    pub flags: i64,
}

/// The resource has a `date` value that is not in [`CoFacts::date`].
pub const FLAG_DATE: i64 = 1;
/// The resource names several patients.
pub const FLAG_PATIENTS: i64 = 2;
/// Longest `date` value folded into the token and reference rows: queries bound the
/// folded start by the searched range widened by this much, which is what lets a date
/// range be an index range together with a code.
pub const MAX_FOLDED_SPAN: i64 = 400 * 86_400_000_000;

impl CoFacts {
    pub fn of(entries: &[IndexEntry<'_>]) -> CoFacts {
        let mut patients: Vec<&str> = Vec::new();
        let mut dates: Vec<(i64, i64)> = Vec::new();
        for e in entries {
            match (e.param, &e.value) {
                ("patient", IndexValue::Reference(r)) if r.target_type.as_deref() == Some("Patient") => {
                    if let Some(id) = r.target_id.as_deref()
                        && !patients.contains(&id)
                    {
                        patients.push(id);
                    }
                }
                ("date", IndexValue::Date(d)) if !dates.contains(&(d.low, d.high)) => dates.push((d.low, d.high)),
                _ => {}
            }
        }
        let mut flags = 0;
        let patient = match patients.as_slice() {
            [one] => Some(Arc::from(clipped(one))),
            [] => None,
            _ => {
                flags |= FLAG_PATIENTS;
                None
            }
        };
        let date = match dates.as_slice() {
            [(low, high)] if high.saturating_sub(*low) <= MAX_FOLDED_SPAN => Some((*low, *high)),
            [] => None,
            _ => {
                flags |= FLAG_DATE;
                None
            }
        };
        CoFacts { patient, date, flags }
    }

    fn binds(&self, with_patient: bool) -> Vec<Bind> {
        let mut b = Vec::with_capacity(4);
        if with_patient {
            b.push(Bind::Shared(self.patient.clone()));
        }
        b.push(Bind::I64(self.date.map(|d| d.0)));
        b.push(Bind::I64(self.date.map(|d| d.1)));
        b.push(Bind::I64(Some(self.flags)));
        b
    }
}

/// Whether the token and reference rows of `res_type` carry its [`CoFacts`] (and its
/// searches are planned with them, `search::sql::fold`). Not AuditEvents: each fact
/// puts every row in one more partial index, and the trail is the most written type
/// (one event per request) while its searches (`patient` + `_sort=date`) have no
/// folded plan. Without them the index of an audited read's event is 39 table and
/// index entries instead of 56, of a search page's (30 Patients) 277 instead of 417.
pub fn folds(res_type: &str) -> bool {
    res_type != "AuditEvent"
}

impl IndexRows {
    /// The rows of the entries extracted from one resource of type `res_type`.
    pub fn of(res_type: &str, entries: &[IndexEntry<'_>]) -> IndexRows {
        let mut out = IndexRows {
            co: if folds(res_type) {
                CoFacts::of(entries)
            } else {
                CoFacts::default()
            },
            ..IndexRows::default()
        };
        let mut grp = 0i64;
        for e in entries {
            if is_resource_column(e.param) {
                continue;
            }
            match &e.value {
                // One `grp` per element: a search joins the components' rows on it.
                IndexValue::Composite(parts) => {
                    grp += 1;
                    for (i, values) in parts.iter().enumerate() {
                        for (table, binds) in values.iter().filter_map(row) {
                            let name = Arc::from(format!("{}${i}", e.param));
                            out.by_table[table as usize].push((name, Some(grp), binds));
                        }
                    }
                }
                v => {
                    if let Some((table, binds)) = row(v) {
                        out.by_table[table as usize].push((Arc::from(e.param), None, binds));
                    }
                }
            }
        }
        out
    }

    /// How many rows each index table gets, as `(table, count)`: what a consistency
    /// check (the crash test) compares with the rows stored for a resource.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        Table::ALL
            .iter()
            .map(|t| (t.name(), self.by_table[*t as usize].len()))
            .collect()
    }

    /// The rows of `resource` (a `res_type`), by evaluating every parameter.
    pub fn extract(res_type: &str, resource: &Value) -> IndexRows {
        IndexRows::of(res_type, &Registry::r4().extract(res_type, resource))
    }
}

/// Inserts the index rows of many resources (`(pk, type, rows)`), one statement per
/// table on PostgreSQL whatever their number.
pub async fn insert(tx: &mut Tx, items: &[(i64, &str, &IndexRows)]) -> Result<(), StoreError> {
    let types: Vec<Arc<str>> = items.iter().map(|(_, t, _)| Arc::from(*t)).collect();
    for table in Table::ALL {
        let mut rows = Rows::new(table.name(), table.columns());
        rows.reserve(items.iter().map(|(_, _, i)| i.by_table[table as usize].len()).sum());
        for ((pk, _, index), res_type) in items.iter().zip(&types) {
            let co = match table {
                Table::Token => index.co.binds(true),
                Table::Reference => index.co.binds(false),
                _ => Vec::new(),
            };
            for (param, grp, values) in &index.by_table[table as usize] {
                rows.push(
                    [
                        Bind::I64(Some(*pk)),
                        Bind::Shared(Some(res_type.clone())),
                        Bind::Shared(Some(param.clone())),
                        Bind::I64(*grp),
                    ]
                    .into_iter()
                    .chain(values.iter().cloned())
                    .chain(co.iter().cloned()),
                );
            }
        }
        bulk::insert(tx, &rows, "").await?;
    }
    Ok(())
}

/// Replaces the index rows of resource `pk` (a new version of it was written).
pub async fn replace(tx: &mut Tx, pk: i64, res_type: &str, rows: &IndexRows) -> Result<(), StoreError> {
    clear(tx, pk).await?;
    insert(tx, &[(pk, res_type, rows)]).await
}

/// Removes the index rows of a resource (on delete, and before re-indexing).
pub async fn clear(tx: &mut Tx, pk: i64) -> Result<(), StoreError> {
    match tx {
        // One round trip: data-modifying CTEs delete from every table at once.
        Tx::Postgres(_) | Tx::PostgresConn(_) => {
            let ctes: Vec<String> = Table::ALL[..Table::ALL.len() - 1]
                .iter()
                .enumerate()
                .map(|(i, t)| format!("d{i} AS (DELETE FROM {} WHERE pk = $1)", t.name()))
                .collect();
            let sql = format!("WITH {} DELETE FROM idx_uri WHERE pk = $1", ctes.join(", "));
            execute(tx, &sql, &[Bind::I64(Some(pk))]).await
        }
        // SQLite has no DELETE in CTEs; its statements go to its thread together
        // (`store::batched`).
        Tx::Sqlite(_) | Tx::SqliteConn(_) => {
            for t in Table::ALL {
                execute(
                    tx,
                    &format!("DELETE FROM {} WHERE pk = $1", t.name()),
                    &[Bind::I64(Some(pk))],
                )
                .await?;
            }
            Ok(())
        }
    }
}
