//! `_sort` keys as scalar subqueries: the smallest value of a multi-valued parameter
//! for ascending order, the largest for descending (dates and numbers compare their
//! range ends). Missing values sort last in both directions.

use carnet_search::{ParamType, Registry, SortKey};

use super::{Builder, Kind};
use crate::error::{Error, Result};
use crate::search::index::Table;

pub struct SortCol {
    pub expr: String,
    pub descending: bool,
    pub kind: Kind,
}

pub fn key(b: &mut Builder<'_>, types: &[String], key: &SortKey, alias: &str) -> Result<SortCol> {
    let (expr, kind) = match key.param.as_str() {
        "_id" => (format!("{alias}.res_id"), Kind::Text),
        "_lastUpdated" => (format!("{alias}.last_updated"), Kind::I64),
        code => {
            let t = types.first().map_or("Resource", String::as_str);
            let p = Registry::r4()
                .param(t, code)
                .ok_or_else(|| Error::invalid_at("not-supported", "_sort", format!("Cannot sort by '{code}'")))?;
            let (col, kind) = match (p.param_type, key.descending) {
                (ParamType::String, _) => ("normalized", Kind::Text),
                (ParamType::Token, _) => ("code", Kind::Text),
                (ParamType::Reference, _) => ("target_id", Kind::Text),
                (ParamType::Uri, _) => ("uri", Kind::Text),
                (ParamType::Date, false) => ("low", Kind::I64),
                (ParamType::Date, true) => ("high", Kind::I64),
                (ParamType::Number | ParamType::Quantity, false) => ("low", Kind::F64),
                (ParamType::Number | ParamType::Quantity, true) => ("high", Kind::F64),
                _ => {
                    return Err(Error::invalid_at(
                        "not-supported",
                        "_sort",
                        format!("Cannot sort by '{code}'"),
                    ));
                }
            };
            let table = Table::of(p.param_type)
                .ok_or_else(|| Error::invalid_at("not-supported", "_sort", format!("Cannot sort by '{code}'")))?;
            let agg = if key.descending { "MAX" } else { "MIN" };
            let a = b.alias("k");
            let param = super::param_cond(&mut b.q, &a, types, code, "");
            (
                format!(
                    "(SELECT {agg}({a}.{col}) FROM {} {a} WHERE {a}.pk = {alias}.pk AND {param})",
                    table.name()
                ),
                kind,
            )
        }
    };
    Ok(SortCol {
        expr,
        descending: key.descending,
        kind,
    })
}
