//! The SQL of searches: one builder turns parsed criteria into conditions over
//! `resources` aliases, one module per parameter type writes the value tests.
//!
//! Every statement is text with generated `$n` placeholders and fixed identifiers;
//! values, parameter names and resource types are always bound ([`Bind`]). The same
//! text runs on SQLite and PostgreSQL.

mod composite;
mod date;
pub(crate) mod fold;
mod number;
mod reference;
pub(crate) mod sort;
mod string;
mod token;
mod uri;

use carnet_search::{ChainStep, Criterion, Modifier, ParamType, Registry, SearchValue};

use super::index::{Table, is_resource_column};
use super::scope::AccessScope;
use crate::error::{Error, Result};

pub use crate::store::sql::{Bind, Cell, Kind, SqlQuery, fetch};

/// What conditions need besides the query: the server's base (absolute references to
/// this server are local), "now" (for `ap`) and the caller's access scope.
pub struct Ctx<'a> {
    pub base: &'a str,
    pub now: i64,
    pub scope: &'a AccessScope,
}

/// Builds conditions into one [`SqlQuery`]'s bind list. Aliases are numbered so nested
/// subqueries (chains, `_has`) never shadow the resource they correlate with.
pub struct Builder<'a> {
    pub q: SqlQuery,
    pub ctx: Ctx<'a>,
    next_alias: usize,
}

/// How a condition tests the resource it is about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `alias.pk IN (SELECT x.pk …)`: the list of every match, which a query can start
    /// from.
    List,
    /// `EXISTS (SELECT 1 … WHERE x.pk = alias.pk …)`: a test of the resource's own
    /// rows, for a condition checked on few candidates (a folded plan's flagged
    /// branch) whose list would hold every match of the criterion.
    Probe,
}

impl Form {
    /// The condition on `alias` whose rows, aliased `x`, come `from` and meet `w`.
    fn of(self, alias: &str, x: &str, from: &str, w: &[String]) -> String {
        match self {
            Form::List => format!("{alias}.pk IN (SELECT {x}.pk FROM {from} WHERE {})", w.join(" AND ")),
            Form::Probe => format!(
                "EXISTS (SELECT 1 FROM {from} WHERE {x}.pk = {alias}.pk AND {})",
                w.join(" AND ")
            ),
        }
    }
}

impl<'a> Builder<'a> {
    pub fn new(ctx: Ctx<'a>) -> Builder<'a> {
        Builder {
            q: SqlQuery::default(),
            ctx,
            next_alias: 0,
        }
    }

    pub fn alias(&mut self, prefix: &str) -> String {
        self.next_alias += 1;
        format!("{prefix}{}", self.next_alias)
    }

    /// The access-policy condition on resource alias `alias`, if any; every place that
    /// reaches a resource (main query, chain targets, `_has` sources, includes) calls it.
    pub fn scope(&mut self, alias: &str) -> Option<String> {
        self.ctx.scope.condition(&mut self.q, alias)
    }

    /// The two halves of [`Self::scope`]: what the caller may see (R1–R3) ...
    pub fn visible(&mut self, alias: &str) -> Option<String> {
        self.ctx.scope.visible(&mut self.q, alias)
    }

    /// ... and R4, the records of patients who refused sharing.
    pub fn not_refused(&mut self, alias: &str) -> Option<String> {
        self.ctx.scope.not_refused(&mut self.q, alias)
    }

    /// A condition on resource alias `alias` (of one of `types`) for criterion `c`.
    pub fn criterion(&mut self, c: &Criterion, types: &[String], alias: &str) -> Result<String> {
        self.step(c, 0, types, alias)
    }

    /// Like [`Self::criterion`], as a probe of the resource's own rows ([`Form::Probe`])
    /// where the criterion allows it (plain values, forward chains).
    pub(crate) fn probe(&mut self, c: &Criterion, types: &[String], alias: &str) -> Result<String> {
        self.step_as(c, 0, types, alias, Form::Probe)
    }

    pub(crate) fn step(&mut self, c: &Criterion, at: usize, types: &[String], alias: &str) -> Result<String> {
        self.step_as(c, at, types, alias, Form::List)
    }

    fn step_as(&mut self, c: &Criterion, at: usize, types: &[String], alias: &str, form: Form) -> Result<String> {
        let Some(step) = c.chain.get(at) else {
            return self.leaf(c, alias, form);
        };
        let rf = self.alias("ref");
        let t = self.alias("t");
        let mut w = Vec::new();
        match step {
            ChainStep::Forward {
                param, target_types, ..
            } => {
                w.extend(self.q.type_filter(&format!("{rf}.res_type"), types));
                w.push(param_cond(&mut self.q, &rf, types, param, ""));
                w.push(self.q.in_list(&format!("{rf}.target_type"), target_types));
                w.push(format!("{t}.deleted = FALSE"));
                w.extend(self.scope(&t));
                w.push(self.step(c, at + 1, target_types, &t)?);
                let from = format!(
                    "idx_reference {rf} JOIN resources {t} \
                     ON {t}.res_type = {rf}.target_type AND {t}.res_id = {rf}.target_id"
                );
                Ok(form.of(alias, &rf, &from, &w))
            }
            ChainStep::Reverse { source_type, param } => {
                let s = self.alias("s");
                w.push(format!("{rf}.res_type = {}", self.q.text(source_type)));
                w.push(param_cond(
                    &mut self.q,
                    &rf,
                    std::slice::from_ref(source_type),
                    param,
                    "",
                ));
                w.extend(self.q.type_filter(&format!("{t}.res_type"), types));
                w.push(format!("{s}.deleted = FALSE"));
                w.extend(self.scope(&s));
                w.push(self.step(c, at + 1, std::slice::from_ref(source_type), &s)?);
                Ok(format!(
                    "{alias}.pk IN (SELECT {t}.pk FROM idx_reference {rf} JOIN resources {t} \
                     ON {t}.res_type = {rf}.target_type AND {t}.res_id = {rf}.target_id \
                     JOIN resources {s} ON {s}.pk = {rf}.pk WHERE {})",
                    w.join(" AND ")
                ))
            }
        }
    }

    /// The final parameter's test on resource alias `alias`.
    fn leaf(&mut self, c: &Criterion, alias: &str, form: Form) -> Result<String> {
        if is_resource_column(&c.param) {
            return self.resource_column(c, alias);
        }
        if c.param_type == ParamType::Composite {
            return composite::criterion(self, c, alias);
        }
        let table = Table::of(c.param_type).ok_or_else(|| unsupported(c))?;
        let types = &c.resource_types;
        if c.modifier == Some(Modifier::Missing) {
            return Ok(self.missing(c, table, "", alias));
        }
        let a = self.alias("i");
        let targets = reference_targets(c);
        let mut ors = Vec::new();
        for v in &c.values {
            ors.push(self.value(&a, &v.value, c.modifier.as_ref(), &targets, c)?);
        }
        let mut w = Vec::new();
        w.extend(self.q.type_filter(&format!("{a}.res_type"), types));
        w.push(param_cond(&mut self.q, &a, types, &c.param, ""));
        w.push(format!("({})", ors.join(" OR ")));
        if c.modifier == Some(Modifier::Not) {
            // `:not` also matches resources without any value (R4 search 3.1.1.5.5).
            let sub = format!("SELECT {a}.pk FROM {} {a} WHERE {}", table.name(), w.join(" AND "));
            return Ok(format!("{alias}.pk NOT IN ({sub})"));
        }
        Ok(form.of(alias, &a, &format!("{} {a}", table.name()), &w))
    }

    /// `:missing=true` / `false` as (NOT) EXISTS over the resource's rows (of the
    /// component named by `suffix`, `$0`, for a composite).
    pub(crate) fn missing(&mut self, c: &Criterion, table: Table, suffix: &str, alias: &str) -> String {
        let mut ors = Vec::new();
        for v in &c.values {
            let a = self.alias("m");
            let p = param_cond(&mut self.q, &a, &c.resource_types, &c.param, suffix);
            let exists = format!(
                "EXISTS (SELECT 1 FROM {} {a} WHERE {a}.pk = {alias}.pk AND {p})",
                table.name()
            );
            ors.push(match v.value {
                SearchValue::Missing(true) => format!("NOT {exists}"),
                _ => exists,
            });
        }
        format!("({})", ors.join(" OR "))
    }

    /// `_id` and `_lastUpdated` test columns of `resources` directly.
    fn resource_column(&mut self, c: &Criterion, alias: &str) -> Result<String> {
        let mut ors = Vec::new();
        let mut ids = Vec::new();
        for v in &c.values {
            match (&v.value, c.param.as_str()) {
                (SearchValue::Missing(m), _) => ors.push(if *m { "1 = 0" } else { "1 = 1" }.to_string()),
                (SearchValue::Token(t), "_id") => match &t.code {
                    Some(code) => ids.push(code.clone()),
                    None => return Err(unsupported(c)),
                },
                (SearchValue::Date { prefix, range }, "_lastUpdated") => {
                    let col = format!("{alias}.last_updated");
                    ors.push(date::cond(&mut self.q, &col, &col, *prefix, *range, self.ctx.now));
                }
                _ => return Err(unsupported(c)),
            }
        }
        if !ids.is_empty() {
            ors.push(self.q.in_list(&format!("{alias}.res_id"), &ids));
        }
        let any = format!("({})", ors.join(" OR "));
        Ok(if c.modifier == Some(Modifier::Not) {
            format!("NOT {any}")
        } else {
            any
        })
    }

    /// One value's test on index alias `a`.
    pub(crate) fn value(
        &mut self,
        a: &str,
        v: &SearchValue,
        m: Option<&Modifier>,
        targets: &[String],
        c: &Criterion,
    ) -> Result<String> {
        let q = &mut self.q;
        Ok(match v {
            SearchValue::String { value, normalized } => string::cond(q, a, value, normalized, m),
            SearchValue::Token(_) | SearchValue::Text(_) | SearchValue::OfType { .. } => token::cond(q, a, v),
            SearchValue::Reference(_) | SearchValue::Identifier(_) => reference::cond(q, a, v, targets, self.ctx.base),
            SearchValue::Date { prefix, range } => date::cond(
                q,
                &format!("{a}.low"),
                &format!("{a}.high"),
                *prefix,
                *range,
                self.ctx.now,
            ),
            SearchValue::Number { prefix, number } => number::cond(q, a, *prefix, number),
            SearchValue::Quantity {
                prefix,
                number,
                system,
                code,
            } => number::quantity(q, a, *prefix, number, system.as_deref(), code.as_deref()),
            SearchValue::Uri(u) => uri::cond(q, a, u, m),
            SearchValue::Missing(_) | SearchValue::Composite(_) => return Err(unsupported(c)),
        })
    }
}

/// The parameters whose rows hold a parameter's values, and the one type their
/// references must point to when the parameter is narrowed to it.
type Stored<'a> = (Vec<String>, Option<&'a str>);

/// The test of index alias `a`'s `param` column for parameter `code` (with `suffix`,
/// a composite component's `$i`) on resources of `types`. A parameter that is the
/// union of others on a type (`Registry::stored_as`: Observation's `combo-code` is
/// `code` and `component-code`) has no rows of its own there: its parts' are read,
/// only those referencing one type where the union is narrowed to it
/// (`Registry::restricted_to`: AuditEvent's `patient`; `a` is then a reference index).
/// Where the searched types disagree on that, each group of types gets its own test.
pub(crate) fn param_cond(q: &mut SqlQuery, a: &str, types: &[String], code: &str, suffix: &str) -> String {
    let reg = Registry::r4();
    let stored_on = |t: &str| -> Stored<'_> {
        match reg.stored_as(t, code) {
            Some(parts) => (
                parts.iter().map(|p| format!("{p}{suffix}")).collect(),
                reg.restricted_to(t, code),
            ),
            None => (vec![format!("{code}{suffix}")], None),
        }
    };
    let test = |q: &mut SqlQuery, (names, only): &Stored<'_>| -> String {
        let c = q.in_list(&format!("{a}.param"), names);
        match only {
            Some(t) => format!("({c} AND {a}.target_type = {})", q.text(t)),
            None => c,
        }
    };
    if types.is_empty() || types.iter().any(|t| t == "Resource") {
        // A parameter of every type (`_tag`, …): one definition, resolved as the
        // registry resolves it for `Resource`.
        return test(q, &stored_on("Resource"));
    }
    let mut groups: Vec<(Stored<'_>, Vec<String>)> = Vec::new();
    for t in types {
        let stored = stored_on(t);
        match groups.iter_mut().find(|(s, _)| *s == stored) {
            Some((_, ts)) => ts.push(t.clone()),
            None => groups.push((stored, vec![t.clone()])),
        }
    }
    match groups.as_slice() {
        [(stored, _)] => test(q, stored),
        _ => {
            let ors: Vec<String> = groups
                .iter()
                .map(|(stored, ts)| {
                    let types = q.in_list(&format!("{a}.res_type"), ts);
                    format!("({types} AND {})", test(q, stored))
                })
                .collect();
            format!("({})", ors.join(" OR "))
        }
    }
}

/// The types a bare reference id may point to, from the parameter's definition.
pub(crate) fn reference_targets(c: &Criterion) -> Vec<String> {
    if c.param_type != ParamType::Reference {
        return Vec::new();
    }
    c.resource_types
        .iter()
        .find_map(|t| Registry::r4().param(t, &c.param))
        .map(|p| p.targets.to_vec())
        .unwrap_or_default()
}

fn unsupported(c: &Criterion) -> Error {
    Error::invalid_at(
        "not-supported",
        c.name(),
        format!("This use of search parameter '{}' is not supported", c.name()),
    )
}

/// The smallest string greater than every string starting with `s` (code point order),
/// or `None` when there is none. Prefix search is `col >= s AND col < next(s)`: an
/// index range on both backends, where LIKE would not be.
pub(crate) fn next_prefix(s: &str) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    while let Some(last) = chars.pop() {
        let mut n = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&n) {
            n = 0xE000;
        }
        if let Some(c) = char::from_u32(n) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// `col` starts with `s`.
pub(crate) fn prefix_cond(q: &mut SqlQuery, col: &str, s: &str) -> String {
    let s = super::index::clip(s);
    match next_prefix(&s) {
        Some(n) if !s.is_empty() => format!("({col} >= {} AND {col} < {})", q.text(&s), q.text(&n)),
        _ => format!("{col} >= {}", q.text(&s)),
    }
}

#[cfg(test)]
mod tests {
    use super::next_prefix;

    #[test]
    fn next_prefix_bounds_the_prefix() {
        assert_eq!(next_prefix("abc").as_deref(), Some("abd"));
        assert_eq!(next_prefix("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(next_prefix("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(next_prefix(""), None);
    }
}
