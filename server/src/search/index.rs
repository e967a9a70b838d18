//! Search index rows, written in the same transaction as the version they describe.
//!
//! One typed table per parameter type (see `migrations/*/0002_search_index.sql`).
//! A write deletes the resource's rows and inserts the new ones with one multi-row
//! INSERT per table that has rows: this runs on every create and update, so it stays
//! at a handful of statements per resource.

use carnet_search::{IndexValue, NumberValue, Registry, TokenValue};
use serde_json::Value;

use super::sql::{Bind, execute};
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
    if s.len() <= MAX_INDEXED {
        return s.to_string();
    }
    let mut end = MAX_INDEXED;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
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

    /// Value columns after `(pk, res_type, param, grp)`.
    fn columns(self) -> &'static [&'static str] {
        match self {
            Table::String => &["normalized", "exact"],
            Table::Token => &["system", "code", "text", "type_system", "type_code"],
            Table::Reference => &["target_type", "target_id", "url", "version", "id_system", "id_value"],
            Table::Date => &["low", "high"],
            Table::Number => &["value", "low", "high"],
            Table::Quantity => &["value", "low", "high", "system", "code", "unit"],
            Table::Uri => &["uri"],
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
    Bind::Text(s.as_deref().map(clip))
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
        Bind::Text(t.text.clone()),
        text(&t.of_type_system),
        text(&t.of_type_code),
    ]
}

/// The table and value columns of one index value; `None` for a nested composite.
fn row(value: &IndexValue) -> Option<(Table, Vec<Bind>)> {
    Some(match value {
        IndexValue::String(s) => (
            Table::String,
            vec![Bind::Text(Some(clip(&s.normalized))), Bind::Text(Some(s.exact.clone()))],
        ),
        IndexValue::Token(t) => (Table::Token, token_binds(t)),
        IndexValue::Reference(r) => {
            let (id_system, id_value) = match &r.identifier {
                Some(i) => (text(&i.system), text(&i.code)),
                None => (Bind::Text(None), Bind::Text(None)),
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
        IndexValue::Uri(u) => (Table::Uri, vec![Bind::Text(Some(clip(&u.uri)))]),
        IndexValue::Composite(_) => return None,
    })
}

/// One index row before insertion: parameter (or composite component) name, `grp`,
/// and the table's value columns.
type Row = (String, Option<i64>, Vec<Bind>);

/// Rows per INSERT: well under SQLite's 32766 and PostgreSQL's 65535 bound values.
const ROWS_PER_INSERT: usize = 500;

/// Replaces the index rows of resource `pk` with those extracted from `resource`.
pub async fn replace(tx: &mut Tx, pk: i64, res_type: &str, resource: &Value) -> Result<(), StoreError> {
    clear(tx, pk).await?;
    let entries = Registry::r4().extract(res_type, resource);
    let mut rows: Vec<Vec<Row>> = vec![Vec::new(); Table::ALL.len()];
    let mut grp = 0i64;
    for e in &entries {
        if is_resource_column(e.param) {
            continue;
        }
        match &e.value {
            IndexValue::Composite(parts) => {
                grp += 1;
                for (i, part) in parts.iter().enumerate() {
                    if let Some((table, binds)) = row(part) {
                        rows[table as usize].push((format!("{}${i}", e.param), Some(grp), binds));
                    }
                }
            }
            v => {
                if let Some((table, binds)) = row(v) {
                    rows[table as usize].push((e.param.to_string(), None, binds));
                }
            }
        }
    }
    for table in Table::ALL {
        for chunk in rows[table as usize].chunks(ROWS_PER_INSERT) {
            insert(tx, table, pk, res_type, chunk).await?;
        }
    }
    Ok(())
}

async fn insert(tx: &mut Tx, table: Table, pk: i64, res_type: &str, rows: &[Row]) -> Result<(), StoreError> {
    let cols = table.columns();
    let mut sql = format!(
        "INSERT INTO {} (pk, res_type, param, grp, {}) VALUES ",
        table.name(),
        cols.join(", ")
    );
    let mut binds: Vec<Bind> = vec![Bind::I64(Some(pk)), Bind::Text(Some(res_type.to_string()))];
    for (i, (param, grp, values)) in rows.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        // pk and res_type are the same on every row: $1 and $2.
        sql.push_str("($1, $2");
        binds.push(Bind::Text(Some(param.clone())));
        sql.push_str(&format!(", ${}", binds.len()));
        binds.push(Bind::I64(*grp));
        sql.push_str(&format!(", ${}", binds.len()));
        for v in values {
            binds.push(v.clone());
            sql.push_str(&format!(", ${}", binds.len()));
        }
        sql.push(')');
    }
    execute(tx, &sql, &binds).await
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
        // SQLite has no DELETE in CTEs; its statements are in-process calls.
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
