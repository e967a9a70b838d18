//! Composite parameters (`code-value-quantity=http://loinc.org|8480-6$gt100`): each
//! component is a row of its own type under `"<code>$<i>"`, and the rows of one
//! composite value share `pk` and `grp`.

use carnet_search::{Criterion, Modifier, Registry, SearchValue};

use super::Builder;
use crate::error::{Error, Result};
use crate::search::index::Table;

fn table_of(v: &SearchValue) -> Option<Table> {
    Some(match v {
        SearchValue::String { .. } => Table::String,
        SearchValue::Token(_) | SearchValue::Text(_) | SearchValue::OfType { .. } => Table::Token,
        SearchValue::Reference(_) | SearchValue::Identifier(_) => Table::Reference,
        SearchValue::Date { .. } => Table::Date,
        SearchValue::Number { .. } => Table::Number,
        SearchValue::Quantity { .. } => Table::Quantity,
        SearchValue::Uri(_) => Table::Uri,
        SearchValue::Missing(_) | SearchValue::Composite(_) => return None,
    })
}

fn invalid(c: &Criterion) -> Error {
    Error::invalid_at(
        "not-supported",
        c.name(),
        format!("Unsupported value for composite parameter '{}'", c.name()),
    )
}

pub fn criterion(b: &mut Builder<'_>, c: &Criterion, alias: &str) -> Result<String> {
    if c.modifier == Some(Modifier::Missing) {
        let first = c
            .resource_types
            .iter()
            .find_map(|t| Registry::r4().param(t, &c.param))
            .and_then(|p| p.components.first())
            .and_then(|comp| Table::of(comp.param_type))
            .ok_or_else(|| invalid(c))?;
        return Ok(b.missing(c, first, "$0", alias));
    }
    let mut ors = Vec::new();
    for v in &c.values {
        let SearchValue::Composite(parts) = &v.value else {
            return Err(invalid(c));
        };
        let mut from = String::new();
        let mut w = Vec::new();
        let mut first = String::new();
        for (i, part) in parts.iter().enumerate() {
            let table = table_of(part).ok_or_else(|| invalid(c))?;
            let a = b.alias("c");
            let param = super::param_cond(&mut b.q, &a, &c.resource_types, &c.param, &format!("${i}"));
            if i == 0 {
                from = format!("{} {a}", table.name());
                w.extend(b.q.type_filter(&format!("{a}.res_type"), &c.resource_types));
                w.push(param);
                first = a.clone();
            } else {
                from.push_str(&format!(
                    " JOIN {} {a} ON {a}.pk = {first}.pk AND {a}.grp = {first}.grp AND {param}",
                    table.name()
                ));
            }
            w.push(b.value(&a, part, None, &[], c)?);
        }
        ors.push(format!(
            "{alias}.pk IN (SELECT {first}.pk FROM {from} WHERE {})",
            w.join(" AND ")
        ));
    }
    Ok(format!("({})", ors.join(" OR ")))
}
