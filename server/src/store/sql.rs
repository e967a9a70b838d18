//! SQL text with bound values, run on either backend: the primitives every query of
//! the server is built from. Statements are text with generated `$n` placeholders and
//! fixed identifiers; values are always bound.

use std::sync::Arc;

use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Postgres, Row, Sqlite};

use super::{Backend, StoreError, Tx, batched};

/// A bound value. `None` binds SQL NULL of the column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    I64(Option<i64>),
    F64(Option<f64>),
    Text(Option<String>),
    /// Text shared instead of copied: bulk writes bind each index row's strings, ~150
    /// a resource, and SQLite takes an `Arc<str>` as it is (a `String` it copies).
    Shared(Option<Arc<str>>),
    Bool(bool),
    Bytes(Option<Vec<u8>>),
    /// A whole column at once (PostgreSQL only: `store::bulk` binds `UNNEST` arrays).
    Array(Box<BindArray>),
}

/// A column of values bound as one PostgreSQL array.
#[derive(Debug, Clone, PartialEq)]
pub enum BindArray {
    I64(Vec<Option<i64>>),
    F64(Vec<Option<f64>>),
    Text(Vec<Option<Arc<str>>>),
    Bool(Vec<bool>),
    Bytes(Vec<Option<Vec<u8>>>),
}

/// What a result column decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    I64,
    F64,
    Text,
    Bytes,
}

/// A decoded result cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    I64(Option<i64>),
    F64(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Cell {
    pub fn i64(&self) -> Option<i64> {
        match self {
            Cell::I64(v) => *v,
            _ => None,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(v) => v.as_deref(),
            _ => None,
        }
    }

    pub fn to_bind(&self) -> Bind {
        match self {
            Cell::I64(v) => Bind::I64(*v),
            Cell::F64(v) => Bind::F64(*v),
            Cell::Text(v) => Bind::Text(v.clone()),
            Cell::Bytes(v) => Bind::Bytes(v.clone()),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(
            self,
            Cell::I64(None) | Cell::F64(None) | Cell::Text(None) | Cell::Bytes(None)
        )
    }
}

/// SQL text and its bound values, `$1..$n` in `binds` order.
#[derive(Debug, Clone, Default)]
pub struct SqlQuery {
    pub sql: String,
    pub binds: Vec<Bind>,
}

impl SqlQuery {
    /// Binds a value and returns its placeholder.
    pub fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }

    pub fn text(&mut self, s: &str) -> String {
        self.bind(Bind::Text(Some(s.to_string())))
    }

    pub fn int(&mut self, v: i64) -> String {
        self.bind(Bind::I64(Some(v)))
    }

    pub fn float(&mut self, v: f64) -> String {
        self.bind(Bind::F64(Some(v)))
    }

    /// `col` is one of `pks`. On PostgreSQL one array parameter (`col = ANY($n)`), so
    /// that the statement is the same whatever the list's length and PostgreSQL may keep
    /// one plan for it: a custom plan for a list of 50 pks took 0.4–1.5 ms to make, at a
    /// million resources, for a statement that runs in 0.3 ms (docs/design.md). On SQLite,
    /// whose planning costs little, a list of parameters.
    pub fn pk_in(&mut self, backend: Backend, col: &str, pks: &[i64]) -> String {
        match (backend, pks) {
            (_, []) => "1 = 0".to_string(),
            (Backend::Postgres, _) => {
                let all = pks.iter().map(|pk| Some(*pk)).collect();
                let p = self.bind(Bind::Array(Box::new(BindArray::I64(all))));
                format!("{col} = ANY({p})")
            }
            (Backend::Sqlite, _) => {
                let ps: Vec<String> = pks.iter().map(|pk| self.int(*pk)).collect();
                format!("{col} IN ({})", ps.join(", "))
            }
        }
    }

    /// `col = $n` or `col IN ($a, $b, …)`.
    pub fn in_list(&mut self, col: &str, items: &[String]) -> String {
        match items {
            [] => "1 = 0".to_string(),
            [one] => format!("{col} = {}", self.text(one)),
            many => {
                let ps: Vec<String> = many.iter().map(|i| self.text(i)).collect();
                format!("{col} IN ({})", ps.join(", "))
            }
        }
    }

    /// A condition on `col` restricting to `types`; none for `Resource` (any type).
    pub fn type_filter(&mut self, col: &str, types: &[String]) -> Option<String> {
        if types.is_empty() || types.iter().any(|t| t == "Resource") {
            None
        } else {
            Some(self.in_list(col, types))
        }
    }
}

/// Lets PostgreSQL keep one generic plan per statement for the rest of the
/// transaction, where connections otherwise force a plan made for each statement's
/// values (`Store::connect`). For lookups by lists of pks ([`SqlQuery::pk_in`]), whose
/// plans do not depend on the values: at a million resources planning `_include`'s
/// lookup for a page of 50 took 0.46 ms for 0.3 ms of execution (docs/design.md). Outside
/// a transaction, and on SQLite, nothing changes.
pub async fn generic_plans_from_here(tx: &mut Tx) -> Result<(), StoreError> {
    if matches!(tx, Tx::Postgres(_)) {
        execute(tx, "SET LOCAL plan_cache_mode = auto", &[]).await?;
    }
    Ok(())
}

macro_rules! bound {
    ($sql:expr, $binds:expr, $shared:expr, $array:expr) => {{
        let mut q = sqlx::query(sqlx::AssertSqlSafe($sql.to_string()));
        for b in $binds {
            q = match b {
                Bind::I64(v) => q.bind(*v),
                Bind::F64(v) => q.bind(*v),
                // Borrowed: the values outlive the statement, which runs at once.
                Bind::Text(v) => q.bind(v.as_deref()),
                Bind::Shared(v) => $shared(q, v),
                Bind::Bool(v) => q.bind(*v),
                Bind::Bytes(v) => q.bind(v.as_deref()),
                Bind::Array(a) => $array(q, a),
            };
        }
        q
    }};
}

fn pg_array<'q>(q: Query<'q, Postgres, PgArguments>, a: &'q BindArray) -> Query<'q, Postgres, PgArguments> {
    match a {
        BindArray::I64(v) => q.bind(v.clone()),
        BindArray::F64(v) => q.bind(v.clone()),
        // Borrowed, as single values are: the strings are copied once, onto the wire.
        BindArray::Text(v) => q.bind(v.iter().map(Option::as_deref).collect::<Vec<Option<&str>>>()),
        BindArray::Bool(v) => q.bind(v.clone()),
        BindArray::Bytes(v) => q.bind(v.clone()),
    }
}

/// PostgreSQL copies text onto the wire whatever it is given.
fn pg_shared<'q>(q: Query<'q, Postgres, PgArguments>, v: &'q Option<Arc<str>>) -> Query<'q, Postgres, PgArguments> {
    q.bind(v.as_deref())
}

/// SQLite keeps an `Arc<str>` bound by value as it is, where it would copy a `&str`.
fn sqlite_shared<'q>(
    q: Query<'q, Sqlite, SqliteArguments>,
    v: &Option<Arc<str>>,
) -> Query<'q, Sqlite, SqliteArguments> {
    q.bind(v.clone())
}

/// SQLite has no arrays: `store::bulk` never sends it one, so this only keeps the
/// placeholder count right.
fn sqlite_array<'q>(q: Query<'q, Sqlite, SqliteArguments>, _: &BindArray) -> Query<'q, Sqlite, SqliteArguments> {
    q.bind(None::<i64>)
}

/// Statements with more bound values than this are rewritten for SQLite with anonymous
/// `?` placeholders: SQLite finds a named parameter (`$7`) by walking the list of all of
/// them, so binding n named values costs n² (measured: 60 % of a bulk import's time).
const SQLITE_NAMED_BINDS: usize = 32;

/// `sql` with its `$N` placeholders (reused or not, in any order) as `?`, and the values
/// in the order of the `?`s. Our statements never hold a `$` outside a placeholder
/// (values are always bound), so a plain scan is enough.
fn sqlite_positional<'a>(sql: &'a str, binds: &'a [Bind]) -> (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, [Bind]>) {
    use std::borrow::Cow;
    if binds.len() <= SQLITE_NAMED_BINDS {
        return (Cow::Borrowed(sql), Cow::Borrowed(binds));
    }
    anonymous(sql, binds)
}

/// `sql` with only anonymous `?` placeholders, and its values in their order: what
/// statements sent together need, since a `$N` would name the Nth value of the batch.
fn anonymous<'a>(sql: &'a str, binds: &'a [Bind]) -> (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, [Bind]>) {
    use std::borrow::Cow;
    // `store::bulk` writes `?` itself: nothing to rewrite.
    if !sql.contains('$') {
        return (Cow::Borrowed(sql), Cow::Borrowed(binds));
    }
    let mut out = String::with_capacity(sql.len());
    let mut ordered = Vec::with_capacity(binds.len());
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let digits = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
            let n: Option<usize> = sql[i + 1..i + 1 + digits].parse().ok();
            if let Some(b) = n.and_then(|n| n.checked_sub(1)).and_then(|k| binds.get(k)) {
                out.push_str(&sql[copied..i]);
                out.push('?');
                ordered.push(b.clone());
                i += 1 + digits;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&sql[copied..]);
    (Cow::Owned(out), Cow::Owned(ordered))
}

/// Runs `$body` with `$q` bound to the statement for whichever backend `$tx` holds.
macro_rules! with_query {
    ($tx:expr, $sql:expr, $binds:expr, |$q:ident, $c:ident| $body:expr) => {
        match $tx {
            Tx::Sqlite(t) => {
                // With the statements it kept, if any: one call of SQLite's thread.
                let (sql, binds) = if t.has_kept() {
                    anonymous($sql, $binds)
                } else {
                    sqlite_positional($sql, $binds)
                };
                let (sql, binds) = match t.join(sql, binds) {
                    Ok(joined) => joined,
                    Err(alone) => {
                        t.flush().await?;
                        alone
                    }
                };
                let $c = t.conn()?;
                let $q = bound!(sql, binds.iter(), sqlite_shared, sqlite_array);
                $body
            }
            Tx::SqliteConn(t) => {
                let $c = &mut **t;
                let (sql, binds) = sqlite_positional($sql, $binds);
                let $q = bound!(sql, binds.iter(), sqlite_shared, sqlite_array);
                $body
            }
            Tx::Postgres(t) => {
                let $c = &mut **t;
                let $q = bound!($sql, $binds, pg_shared, pg_array);
                $body
            }
            Tx::PostgresConn(t) => {
                let $c = &mut **t;
                let $q = bound!($sql, $binds, pg_shared, pg_array);
                $body
            }
        }
    };
}

/// Makes write transactions that name the same `key` take turns until they commit. On
/// PostgreSQL a transaction-scoped advisory lock; SQLite needs none, its one writer
/// (`BEGIN IMMEDIATE`) already serializes write transactions.
pub async fn serialize_on(tx: &mut Tx, key: &str) -> Result<(), StoreError> {
    if let Tx::Postgres(_) = tx {
        execute(
            tx,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[Bind::Text(Some(key.to_string()))],
        )
        .await?;
    }
    Ok(())
}

pub async fn execute(tx: &mut Tx, sql: &str, binds: &[Bind]) -> Result<(), StoreError> {
    if let Tx::Sqlite(t) = tx
        && batched::worth_keeping(binds)
    {
        // Nothing reads its result: sent with the next statement that is read, or the
        // commit (`store::batched`).
        let (sql, binds) = anonymous(sql, binds);
        t.defer(&sql, &binds);
        return Ok(());
    }
    with_query!(tx, sql, binds, |q, c| {
        q.execute(c).await?;
    });
    Ok(())
}

/// Runs a query and decodes each row's columns as `kinds`.
pub async fn fetch(tx: &mut Tx, q: &SqlQuery, kinds: &[Kind]) -> Result<Vec<Vec<Cell>>, StoreError> {
    fetch_binds(tx, &q.sql, &q.binds, kinds).await
}

/// The first column of the first row as an integer (0 when there is none): counts.
pub async fn fetch_i64(tx: &mut Tx, q: &SqlQuery) -> Result<i64, StoreError> {
    let rows = fetch(tx, q, &[Kind::I64]).await?;
    Ok(rows.first().and_then(|r| r.first()).and_then(Cell::i64).unwrap_or(0))
}

/// [`fetch`] of a statement and its values held apart.
pub async fn fetch_binds(tx: &mut Tx, sql: &str, binds: &[Bind], kinds: &[Kind]) -> Result<Vec<Vec<Cell>>, StoreError> {
    let rows = with_query!(tx, sql, binds, |query, c| {
        let rows = query.fetch_all(c).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut cells = Vec::with_capacity(kinds.len());
            for (i, k) in kinds.iter().enumerate() {
                cells.push(match k {
                    Kind::I64 => Cell::I64(r.try_get(i)?),
                    Kind::F64 => Cell::F64(r.try_get(i)?),
                    Kind::Text => Cell::Text(r.try_get(i)?),
                    Kind::Bytes => Cell::Bytes(r.try_get(i)?),
                });
            }
            out.push(cells);
        }
        out
    });
    Ok(rows)
}

/// Runs statements joined into one text, whose `?` placeholders take `binds` in
/// order: one call of SQLite's connection thread instead of one each
/// (`store::batched`).
pub(super) async fn run_joined(
    c: &mut sqlx::SqliteConnection,
    sql: &str,
    binds: &[Bind],
    keep: bool,
) -> Result<(), sqlx::Error> {
    use sqlx::Executor as _;
    let q = bound!(sql, binds.iter(), sqlite_shared, sqlite_array).persistent(keep);
    c.execute(q).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_named_placeholders_become_positional() {
        let binds: Vec<Bind> = (1..=40).map(|i| Bind::I64(Some(i))).collect();
        let sql = format!(
            "SELECT $2, $1, $2 FROM t WHERE a IN ({}) AND b = 'x$'",
            (3..=40).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
        );
        let (out, ordered) = sqlite_positional(&sql, &binds);
        assert!(out.starts_with("SELECT ?, ?, ? FROM t WHERE a IN (?, ?"));
        assert!(out.ends_with("?) AND b = 'x$'"));
        assert_eq!(ordered.len(), 41);
        assert_eq!(
            ordered[..3],
            [Bind::I64(Some(2)), Bind::I64(Some(1)), Bind::I64(Some(2))]
        );
        assert_eq!(ordered[40], Bind::I64(Some(40)));
        let few = &binds[..3];
        assert_eq!(sqlite_positional("SELECT $1", few).0, "SELECT $1");
    }

    #[test]
    fn a_list_of_pks_is_one_array_on_postgres() {
        let mut q = SqlQuery::default();
        q.text("x");
        assert_eq!(q.pk_in(Backend::Postgres, "r.pk", &[7, 9]), "r.pk = ANY($2)");
        assert_eq!(
            q.binds[1],
            Bind::Array(Box::new(BindArray::I64(vec![Some(7), Some(9)])))
        );
        let mut q = SqlQuery::default();
        assert_eq!(q.pk_in(Backend::Sqlite, "r.pk", &[7, 9]), "r.pk IN ($1, $2)");
        assert_eq!(q.binds, [Bind::I64(Some(7)), Bind::I64(Some(9))]);
        for backend in [Backend::Postgres, Backend::Sqlite] {
            let mut q = SqlQuery::default();
            assert_eq!(q.pk_in(backend, "r.pk", &[]), "1 = 0");
            assert!(q.binds.is_empty());
        }
    }
}
