//! Many rows in few statements. The write paths that store many resources at once
//! (the audit trail's group commit, imports, transaction Bundles) would otherwise pay
//! one round trip per row: twenty index rows per resource make that the whole cost.
//!
//! PostgreSQL gets one statement per table whatever the number of rows:
//! `INSERT … SELECT * FROM UNNEST($1::int8[], …)`, a fixed text whose plan is prepared
//! once per connection, or for plain inserts of many rows `COPY` in its binary form
//! (copy.rs). SQLite has no arrays; it gets multi-row `VALUES` in chunks that
//! stay below its limit of bound values (its statements are in-process calls, so the
//! number of statements matters far less there).

use std::sync::Arc;

mod copy;

use super::sql::{Bind, BindArray, Cell, Kind, SqlQuery, execute, fetch, fetch_binds};
use super::{StoreError, Tx};

/// A column's SQL type, which PostgreSQL's array casts need even when every value is NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    I64,
    F64,
    Text,
    Bool,
    Bytes,
}

impl ColType {
    fn pg_array(self) -> &'static str {
        match self {
            ColType::I64 => "int8[]",
            ColType::F64 => "float8[]",
            ColType::Text => "text[]",
            ColType::Bool => "bool[]",
            ColType::Bytes => "bytea[]",
        }
    }
}

/// Rows for one table, in row order.
#[derive(Debug, Clone)]
pub struct Rows {
    table: &'static str,
    columns: &'static [(&'static str, ColType)],
    cells: Vec<Bind>,
}

/// Rows from which a plain insert (no suffix) goes to PostgreSQL by `COPY` (copy.rs):
/// below it the extra round trip outweighs what `COPY` saves. A transaction Bundle of a
/// hundred resources already passes it in the index tables.
const PG_COPY_FROM_ROWS: usize = 64;

/// Most values bound in one SQLite statement (its limit is 32766).
const SQLITE_MAX_BINDS: usize = 30_000;
/// Most rows in one SQLite `VALUES` list.
const SQLITE_MAX_ROWS: usize = 500;

impl Rows {
    pub fn new(table: &'static str, columns: &'static [(&'static str, ColType)]) -> Rows {
        Rows {
            table,
            columns,
            cells: Vec::new(),
        }
    }

    /// Room for `rows` more rows, so that a bulk write's thousands of rows are not
    /// copied each time the list outgrows itself.
    pub fn reserve(&mut self, rows: usize) {
        self.cells.reserve(rows * self.columns.len());
    }

    /// Appends a row: one value per column, in column order.
    pub fn push(&mut self, row: impl IntoIterator<Item = Bind>) {
        let before = self.cells.len();
        self.cells.extend(row);
        debug_assert_eq!(
            self.cells.len() - before,
            self.columns.len(),
            "row width of {}",
            self.table
        );
    }

    pub fn len(&self) -> usize {
        self.cells.len() / self.columns.len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    fn column_list(&self) -> String {
        self.columns.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
    }

    /// The PostgreSQL statement: every column bound as one array.
    fn pg_query(&self, suffix: &str) -> SqlQuery {
        let width = self.columns.len();
        let mut q = SqlQuery::default();
        let mut arrays = Vec::with_capacity(width);
        for (i, (_, ty)) in self.columns.iter().enumerate() {
            let column = self.cells.iter().skip(i).step_by(width);
            let bind = Bind::Array(Box::new(array_of(*ty, column)));
            arrays.push(format!("{}::{}", q.bind(bind), ty.pg_array()));
        }
        q.sql = format!(
            "INSERT INTO {} ({}) SELECT * FROM UNNEST({}) {suffix}",
            self.table,
            self.column_list(),
            arrays.join(", ")
        );
        q
    }

    /// SQLite statements: multi-row `VALUES` with anonymous `?` placeholders, chunked;
    /// each with the range of [`Rows::cells`] it binds, in order. The values are bound
    /// from the rows where they are (an import binds ~250 a resource: copying each
    /// string for the statement showed in its profile), and `?` needs no rewriting.
    fn sqlite_statements(&self, suffix: &str) -> Vec<(String, std::ops::Range<usize>)> {
        let width = self.columns.len().max(1);
        let per = (SQLITE_MAX_BINDS / width).clamp(1, SQLITE_MAX_ROWS);
        let row = format!("({})", vec!["?"; width].join(", "));
        let rows = self.len();
        (0..rows)
            .step_by(per)
            .map(|first| {
                let n = per.min(rows - first);
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES {} {suffix}",
                    self.table,
                    self.column_list(),
                    vec![row.as_str(); n].join(", ")
                );
                (sql, first * width..(first + n) * width)
            })
            .collect()
    }
}

/// One column of binds as a typed array for PostgreSQL.
fn array_of<'a>(ty: ColType, values: impl Iterator<Item = &'a Bind>) -> BindArray {
    match ty {
        ColType::I64 => BindArray::I64(
            values
                .map(|b| match b {
                    Bind::I64(v) => *v,
                    _ => None,
                })
                .collect(),
        ),
        ColType::F64 => BindArray::F64(
            values
                .map(|b| match b {
                    Bind::F64(v) => *v,
                    _ => None,
                })
                .collect(),
        ),
        ColType::Text => BindArray::Text(
            values
                .map(|b| match b {
                    Bind::Text(v) => v.as_deref().map(Arc::from),
                    Bind::Shared(v) => v.clone(),
                    _ => None,
                })
                .collect(),
        ),
        ColType::Bool => BindArray::Bool(values.map(|b| matches!(b, Bind::Bool(true))).collect()),
        ColType::Bytes => BindArray::Bytes(
            values
                .map(|b| match b {
                    Bind::Bytes(v) => v.clone(),
                    _ => None,
                })
                .collect(),
        ),
    }
}

/// Inserts every row; `suffix` follows the statement (e.g. `ON CONFLICT … DO NOTHING`).
pub async fn insert(tx: &mut Tx, rows: &Rows, suffix: &str) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let copied = suffix.is_empty() && rows.len() >= PG_COPY_FROM_ROWS;
    match tx {
        Tx::Postgres(t) if copied => copy::insert(t, rows).await,
        Tx::PostgresConn(c) if copied => copy::insert(c, rows).await,
        Tx::Postgres(_) | Tx::PostgresConn(_) => {
            let q = rows.pg_query(suffix);
            execute(tx, &q.sql, &q.binds).await
        }
        Tx::Sqlite(_) | Tx::SqliteConn(_) => {
            for (sql, cells) in rows.sqlite_statements(suffix) {
                execute(tx, &sql, &rows.cells[cells]).await?;
            }
            Ok(())
        }
    }
}

/// Inserts every row and returns the `RETURNING` columns (`suffix` holds the clause).
pub async fn insert_returning(
    tx: &mut Tx,
    rows: &Rows,
    suffix: &str,
    kinds: &[Kind],
) -> Result<Vec<Vec<Cell>>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    match tx {
        Tx::Postgres(_) | Tx::PostgresConn(_) => fetch(tx, &rows.pg_query(suffix), kinds).await,
        Tx::Sqlite(_) | Tx::SqliteConn(_) => {
            let mut out = Vec::with_capacity(rows.len());
            for (sql, cells) in rows.sqlite_statements(suffix) {
                out.extend(fetch_binds(tx, &sql, &rows.cells[cells], kinds).await?);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: &[(&str, ColType)] = &[("a", ColType::I64), ("b", ColType::Text)];

    #[test]
    fn sqlite_chunks_stay_under_the_row_limit() {
        let mut rows = Rows::new("t", COLS);
        for i in 0..1001 {
            rows.push([Bind::I64(Some(i)), Bind::Text(None)]);
        }
        let qs = rows.sqlite_statements("");
        assert_eq!(qs.len(), 3);
        assert_eq!(qs[0].1, 0..1000);
        assert_eq!(qs[2].1, 2000..2002);
        assert_eq!(qs[0].0.matches('?').count(), 1000);
        assert!(qs[2].0.starts_with("INSERT INTO t (a, b) VALUES (?, ?) "));
    }

    #[test]
    fn postgres_binds_one_array_per_column() {
        let mut rows = Rows::new("t", COLS);
        rows.push([Bind::I64(Some(1)), Bind::Text(Some("x".into()))]);
        rows.push([Bind::I64(Some(2)), Bind::Text(None)]);
        let q = rows.pg_query("RETURNING a");
        assert_eq!(
            q.sql,
            "INSERT INTO t (a, b) SELECT * FROM UNNEST($1::int8[], $2::text[]) RETURNING a"
        );
        assert_eq!(
            q.binds[1],
            Bind::Array(Box::new(BindArray::Text(vec![Some("x".into()), None])))
        );
    }
}
