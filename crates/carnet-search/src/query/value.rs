//! Values of one criterion, typed by its parameter (and modifier).

use super::escape::{split, unescape};
use super::name::Target;
use super::{Criterion, Prefix, QueryValue, SearchValue, TokenQuery, TokenSystem};
use crate::extract::parse_reference;
use crate::modifier::Modifier;
use crate::normalize::normalize;
use crate::registry::{ParamType, Registry, SearchParam};
use crate::values::ReferenceValue;
use crate::{datetime, number};

/// Most comma-separated values in one parameter: each becomes a test in the SQL, and a
/// few hundred already cover real uses (a list of ids, of codes).
pub const MAX_VALUES: usize = 500;

pub fn criterion(reg: &Registry, target: Target<'_>, raw: &str) -> Result<Criterion, String> {
    let param = target.param;
    let mut values = Vec::new();
    let pieces = split(raw, ',');
    if pieces.len() > MAX_VALUES {
        return Err(format!("more than {MAX_VALUES} values"));
    }
    for piece in pieces {
        if piece.is_empty() {
            return Err("empty value in a comma-separated list".into());
        }
        let value = parse(reg, param, param.param_type, target.modifier.as_ref(), piece).map_err(|e| {
            let shown: String = piece.chars().take(80).collect();
            format!("invalid value '{shown}': {e}")
        })?;
        values.push(QueryValue {
            raw: piece.to_owned(),
            value,
        });
    }
    Ok(Criterion {
        chain: target.chain,
        resource_types: target.resource_types,
        param: param.code.clone(),
        param_type: param.param_type,
        modifier: target.modifier,
        values,
    })
}

fn parse(
    reg: &Registry,
    param: &SearchParam,
    param_type: ParamType,
    modifier: Option<&Modifier>,
    raw: &str,
) -> Result<SearchValue, String> {
    if modifier == Some(&Modifier::Missing) {
        return match raw {
            "true" => Ok(SearchValue::Missing(true)),
            "false" => Ok(SearchValue::Missing(false)),
            _ => Err(":missing takes true or false".into()),
        };
    }
    match param_type {
        ParamType::String => {
            let value = unescape(raw);
            Ok(SearchValue::String {
                normalized: normalize(&value),
                value,
            })
        }
        ParamType::Token => match modifier {
            Some(Modifier::Text) => Ok(SearchValue::Text(normalize(&unescape(raw)))),
            Some(Modifier::OfType) => match split(raw, '|').as_slice() {
                [s, c, v] if !s.is_empty() && !c.is_empty() && !v.is_empty() => Ok(SearchValue::OfType {
                    type_system: unescape(s),
                    type_code: unescape(c),
                    value: unescape(v),
                }),
                _ => Err(":of-type takes type-system|type-code|value".into()),
            },
            _ => token(raw).map(SearchValue::Token),
        },
        ParamType::Reference => match modifier {
            Some(Modifier::Identifier) => token(raw).map(SearchValue::Identifier),
            _ => reference(param, modifier, &unescape(raw)).map(SearchValue::Reference),
        },
        ParamType::Date => {
            let (prefix, rest) = prefix(raw)?;
            let range = datetime::parse_range(rest).ok_or("not a FHIR date/dateTime")?;
            Ok(SearchValue::Date { prefix, range })
        }
        ParamType::Number => {
            let (prefix, rest) = prefix(raw)?;
            let number = number::parse_number(rest).ok_or("not a number")?;
            Ok(SearchValue::Number { prefix, number })
        }
        ParamType::Quantity => {
            let (prefix, rest) = prefix(raw)?;
            let parts = split(rest, '|');
            let (num, system, code) = match parts.as_slice() {
                [n] => (*n, None, None),
                [n, s, c] => (
                    *n,
                    Some(*s).filter(|s| !s.is_empty()),
                    Some(*c).filter(|c| !c.is_empty()),
                ),
                _ => return Err("a quantity is number or number|system|code".into()),
            };
            let number = number::parse_number(num).ok_or("not a number")?;
            Ok(SearchValue::Quantity {
                prefix,
                number,
                system: system.map(unescape),
                code: code.map(unescape),
            })
        }
        ParamType::Uri => Ok(SearchValue::Uri(unescape(raw))),
        ParamType::Composite => {
            let parts = split(raw, '$');
            if parts.len() != param.components.len() {
                return Err(format!("expected {} '$'-separated parts", param.components.len()));
            }
            let values = parts
                .iter()
                .zip(&param.components)
                .map(|(part, comp)| {
                    // Component parameters are looked up by URL for their own targets.
                    let def = reg.all().iter().find(|p| p.url == comp.definition).unwrap_or(param);
                    parse(reg, def, comp.param_type, None, part)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SearchValue::Composite(values))
        }
        ParamType::Special => Err("special parameters are not supported".into()),
    }
}

fn prefix(raw: &str) -> Result<(Prefix, &str), String> {
    let head = raw.get(..2).unwrap_or_default();
    if head.bytes().all(|b| b.is_ascii_lowercase()) && head.len() == 2 {
        let p = Prefix::parse(head).ok_or_else(|| format!("unknown prefix '{head}'"))?;
        return Ok((p, &raw[2..]));
    }
    Ok((Prefix::Eq, raw))
}

/// `code`, `system|code`, `|code`, `system|`.
fn token(raw: &str) -> Result<TokenQuery, String> {
    match split(raw, '|').as_slice() {
        [code] => Ok(TokenQuery {
            system: TokenSystem::Any,
            code: Some(unescape(code)),
        }),
        ["", ""] => Err("a token needs a system or a code".into()),
        ["", code] => Ok(TokenQuery {
            system: TokenSystem::None,
            code: Some(unescape(code)),
        }),
        [system, ""] => Ok(TokenQuery {
            system: TokenSystem::Is(unescape(system)),
            code: None,
        }),
        [system, code] => Ok(TokenQuery {
            system: TokenSystem::Is(unescape(system)),
            code: Some(unescape(code)),
        }),
        _ => Err("a token has at most one unescaped '|'".into()),
    }
}

fn reference(param: &SearchParam, modifier: Option<&Modifier>, v: &str) -> Result<ReferenceValue, String> {
    let typed = match modifier {
        Some(Modifier::Type(t)) => Some(t.as_str()),
        _ => None,
    };
    let absolute = v.contains("://") || v.starts_with("urn:");
    let mut r = if absolute || v.contains('/') {
        parse_reference(v)
    } else {
        ReferenceValue::default()
    };
    if !absolute {
        if v.contains('/') {
            if r.target_type.is_none() {
                return Err("expected Type/id".into());
            }
        } else {
            if !valid_id(v) {
                return Err("not a valid resource id".into());
            }
            r.target_id = Some(v.to_owned());
            r.target_type = typed.map(str::to_owned).or_else(|| match &param.targets[..] {
                [only] => Some(only.clone()),
                _ => None,
            });
        }
        if let Some(id) = &r.target_id
            && !valid_id(id)
        {
            return Err("not a valid resource id".into());
        }
    }
    if let (Some(t), Some(actual)) = (typed, r.target_type.as_deref())
        && t != actual
    {
        return Err(format!("the value refers to {actual}, not {t}"));
    }
    if let Some(t) = r.target_type.as_deref()
        && !param.targets.is_empty()
        && !param.targets.iter().any(|x| x == t)
    {
        return Err(format!("'{}' cannot refer to {t}", param.code));
    }
    Ok(r)
}

/// FHIR ids: `[A-Za-z0-9\-\.]{1,64}`.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
