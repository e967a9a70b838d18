//! Result parameters (`_count`, `_sort`, `_include`, ...): they shape the response, they
//! do not select resources.

use crate::datetime;
use crate::registry::{ParamType, Registry, is_resource_type};
use crate::values::DateRange;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub param: String,
    pub descending: bool,
}

/// `_include=Type:param[:Target]` / `_revinclude=...`; `param: None` is `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// `*` for a bare `_include=*`.
    pub source_type: String,
    pub param: Option<String>,
    pub target_type: Option<String>,
    /// `:iterate` (or R4's older `:recurse`).
    pub iterate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    True,
    Text,
    Data,
    Count,
    False,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    None,
    Estimate,
    Accurate,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultParams {
    pub count: Option<u32>,
    /// `_offset` (not in R4, but widely sent for paging).
    pub offset: Option<u32>,
    pub sort: Vec<SortKey>,
    pub include: Vec<Include>,
    pub revinclude: Vec<Include>,
    pub summary: Option<Summary>,
    pub elements: Vec<String>,
    pub total: Option<Total>,
    pub format: Option<String>,
    pub pretty: Option<bool>,
    /// `_type` of a system search.
    pub types: Vec<String>,
    /// `_since` (history), with its text for re-rendering.
    pub since: Option<(String, DateRange)>,
    pub contained: Option<String>,
    pub contained_type: Option<String>,
}

/// Names (before any `:modifier`) handled here rather than as criteria.
pub const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_offset",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_format",
    "_pretty",
    "_type",
    "_since",
    "_contained",
    "_containedType",
];

/// Defined by the spec but refused here, so the error is explicit.
const UNSUPPORTED: &[&str] = &["_list", "_filter", "_query", "_at", "_graph", "_score"];

pub fn is_result_param(key: &str) -> bool {
    let base = key.split(':').next().unwrap_or_default();
    RESULT_PARAMS.contains(&base) || UNSUPPORTED.contains(&base)
}

pub fn apply(
    reg: &Registry,
    resource_type: Option<&str>,
    r: &mut ResultParams,
    key: &str,
    val: &str,
) -> Result<(), String> {
    let (base, modifier) = match key.split_once(':') {
        Some((b, m)) => (b, Some(m)),
        None => (key, None),
    };
    if UNSUPPORTED.contains(&base) {
        return Err(format!("{base} is not supported"));
    }
    let iterate = match (base, modifier) {
        ("_include" | "_revinclude", Some("iterate" | "recurse")) => true,
        (_, None) => false,
        (_, Some(m)) => return Err(format!("unknown modifier ':{m}'")),
    };
    let list = || val.split(',').map(str::trim).filter(|s| !s.is_empty());
    match base {
        "_count" => r.count = Some(val.parse().map_err(|_| "_count must be a non-negative integer")?),
        "_offset" => r.offset = Some(val.parse().map_err(|_| "_offset must be a non-negative integer")?),
        "_sort" => {
            for key in list() {
                let (descending, code) = match key.strip_prefix('-') {
                    Some(c) => (true, c),
                    None => (false, key),
                };
                let t = resource_type.unwrap_or("Resource");
                let p = reg
                    .param(t, code)
                    .ok_or_else(|| format!("cannot sort by unknown parameter '{code}'"))?;
                if matches!(p.param_type, ParamType::Composite | ParamType::Special) || !p.supported {
                    return Err(format!("cannot sort by '{code}'"));
                }
                r.sort.push(SortKey {
                    param: code.to_owned(),
                    descending,
                });
            }
        }
        "_include" | "_revinclude" => {
            let inc = include(reg, resource_type, val, iterate)?;
            if base == "_include" {
                r.include.push(inc)
            } else {
                r.revinclude.push(inc)
            }
        }
        "_summary" => {
            r.summary = Some(match val {
                "true" => Summary::True,
                "text" => Summary::Text,
                "data" => Summary::Data,
                "count" => Summary::Count,
                "false" => Summary::False,
                _ => return Err("_summary is one of true, text, data, count, false".into()),
            })
        }
        "_elements" => r.elements.extend(list().map(str::to_owned)),
        "_total" => {
            r.total = Some(match val {
                "none" => Total::None,
                "estimate" => Total::Estimate,
                "accurate" => Total::Accurate,
                _ => return Err("_total is one of none, estimate, accurate".into()),
            })
        }
        "_format" => r.format = Some(val.to_owned()),
        "_pretty" => {
            r.pretty = Some(match val {
                "true" => true,
                "false" => false,
                _ => return Err("_pretty is true or false".into()),
            })
        }
        "_type" => {
            for t in list() {
                if !is_resource_type(t) {
                    return Err(format!("unknown resource type '{t}'"));
                }
                r.types.push(t.to_owned());
            }
        }
        "_since" => {
            let range = datetime::parse_range(val).ok_or("_since must be an instant")?;
            r.since = Some((val.to_owned(), range));
        }
        "_contained" => match val {
            "true" | "false" | "both" => r.contained = Some(val.to_owned()),
            _ => return Err("_contained is true, false or both".into()),
        },
        "_containedType" => match val {
            "container" | "contained" => r.contained_type = Some(val.to_owned()),
            _ => return Err("_containedType is container or contained".into()),
        },
        _ => return Err("unknown parameter".into()),
    }
    Ok(())
}

fn include(reg: &Registry, resource_type: Option<&str>, val: &str, iterate: bool) -> Result<Include, String> {
    if val == "*" {
        return Ok(Include {
            source_type: resource_type.unwrap_or("*").to_owned(),
            param: None,
            target_type: None,
            iterate,
        });
    }
    let mut parts = val.splitn(3, ':');
    let source = parts.next().unwrap_or_default();
    let code = parts.next().ok_or("expected Type:parameter[:TargetType]")?;
    let target = parts.next();
    if !is_resource_type(source) {
        return Err(format!("unknown resource type '{source}'"));
    }
    if code == "*" {
        return Ok(Include {
            source_type: source.to_owned(),
            param: None,
            target_type: None,
            iterate,
        });
    }
    let p = reg
        .param(source, code)
        .ok_or_else(|| format!("{source} has no search parameter '{code}'"))?;
    if p.param_type != ParamType::Reference {
        return Err(format!("{source}:{code} is not a reference parameter"));
    }
    if let Some(t) = target
        && (!is_resource_type(t) || (!p.targets.is_empty() && !p.targets.iter().any(|x| x == t)))
    {
        return Err(format!("{source}:{code} cannot refer to {t}"));
    }
    Ok(Include {
        source_type: source.to_owned(),
        param: Some(code.to_owned()),
        target_type: target.map(str::to_owned),
        iterate,
    })
}
