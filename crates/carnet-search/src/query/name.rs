//! Parameter names: `code`, `code:modifier`, chains (`subject:Patient.name`,
//! `a.b.c`) and reverse chains (`_has:Observation:patient:code`, nestable).

use super::ChainStep;
use crate::modifier::Modifier;
use crate::registry::{ParamType, Registry, SearchParam, is_resource_type};

/// What a parameter name resolves to; values are parsed against `param`.
pub struct Target<'r> {
    pub chain: Vec<ChainStep>,
    pub resource_types: Vec<String>,
    pub param: &'r SearchParam,
    pub modifier: Option<Modifier>,
}

pub fn resolve<'r>(reg: &'r Registry, types: &[String], name: &str) -> Result<Target<'r>, String> {
    let mut chain = Vec::new();
    let (types, last) = walk(reg, types.to_vec(), name, &mut chain)?;
    let (code, modifier) = match last.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (last, None),
    };
    let found: Vec<(&String, &SearchParam)> = types.iter().filter_map(|t| Some((t, reg.param(t, code)?))).collect();
    let Some(&(_, param)) = found.first() else {
        return Err(format!("unknown search parameter '{code}' for {}", types.join(", ")));
    };
    if !param.supported {
        return Err(format!("search parameter '{code}' is not supported"));
    }
    let resource_types = found
        .iter()
        .filter(|(_, p)| p.param_type == param.param_type)
        .map(|(t, _)| (*t).clone())
        .collect();
    let modifier = modifier.map(|m| check_modifier(param, m)).transpose()?;
    Ok(Target {
        chain,
        resource_types,
        param,
        modifier,
    })
}

fn check_modifier(param: &SearchParam, m: &str) -> Result<Modifier, String> {
    let Some(modifier) = Modifier::parse(m) else {
        return Err(if Modifier::is_known_unsupported(m) {
            format!("modifier ':{m}' is not supported")
        } else {
            format!("unknown modifier ':{m}'")
        });
    };
    if !param.modifiers().contains(&modifier.kind()) {
        return Err(format!(
            "modifier ':{m}' is not allowed on {} parameter '{}'",
            param.param_type.as_str(),
            param.code
        ));
    }
    if let Modifier::Type(t) = &modifier
        && !param.targets.is_empty()
        && !param.targets.contains(t)
    {
        return Err(format!("'{}' cannot refer to {t}", param.code));
    }
    Ok(modifier)
}

/// Consumes chain hops, returning the types the final segment applies to and that segment.
fn walk<'n>(
    reg: &Registry,
    types: Vec<String>,
    name: &'n str,
    chain: &mut Vec<ChainStep>,
) -> Result<(Vec<String>, &'n str), String> {
    if let Some(rest) = name.strip_prefix("_has:") {
        let mut parts = rest.splitn(3, ':');
        let (Some(source), Some(code), Some(tail)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("_has needs the form _has:Type:reference-parameter:parameter".into());
        };
        if !is_resource_type(source) {
            return Err(format!("unknown resource type '{source}' in _has"));
        }
        let p = reference_param(reg, &[source.to_owned()], code)?;
        let points_here = p.targets.is_empty() || types.iter().any(|t| t == "Resource" || p.targets.contains(t));
        if !points_here {
            return Err(format!("{source}.{code} cannot refer to {}", types.join(", ")));
        }
        chain.push(ChainStep::Reverse {
            source_type: source.to_owned(),
            param: code.to_owned(),
        });
        return walk(reg, vec![source.to_owned()], tail, chain);
    }
    let Some((head, tail)) = name.split_once('.') else {
        return Ok((types, name));
    };
    let (code, explicit) = match head.split_once(':') {
        Some((c, t)) => (c, Some(t)),
        None => (head, None),
    };
    let p = reference_param(reg, &types, code)?;
    let mut targets: Vec<String> = match explicit {
        Some(t) if !is_resource_type(t) => return Err(format!("unknown resource type '{t}' in chain")),
        Some(t) if !p.targets.is_empty() && !p.targets.iter().any(|x| x == t) => {
            return Err(format!("'{code}' cannot refer to {t}"));
        }
        Some(t) => vec![t.to_owned()],
        None if p.targets.is_empty() => crate::registry::resource_types().map(str::to_owned).collect(),
        None => p.targets.to_vec(),
    };
    // Keep only the targets on which the next segment exists, so the SQL layer joins
    // just those.
    let next = tail.split(['.', ':']).next().unwrap_or_default();
    if next != "_has" {
        targets.retain(|t| reg.param(t, next).is_some());
        if targets.is_empty() {
            return Err(format!(
                "no resource that '{code}' refers to has a search parameter '{next}'"
            ));
        }
    }
    chain.push(ChainStep::Forward {
        param: code.to_owned(),
        explicit_type: explicit.map(str::to_owned),
        target_types: targets.clone(),
    });
    walk(reg, targets, tail, chain)
}

fn reference_param<'r>(reg: &'r Registry, types: &[String], code: &str) -> Result<&'r SearchParam, String> {
    let p = types
        .iter()
        .find_map(|t| reg.param(t, code))
        .ok_or_else(|| format!("unknown search parameter '{code}' for {}", types.join(", ")))?;
    if p.param_type != ParamType::Reference {
        return Err(format!(
            "'{code}' is not a reference parameter, so it cannot be chained"
        ));
    }
    Ok(p)
}
