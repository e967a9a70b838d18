//! Conformance: the definitions this server holds (profiles, value sets, code systems,
//! search parameters), validation against them, and terminology operations.
//!
//! - `catalog`: the built-in conformance resources, loaded once per process;
//! - `search`: finding them by url, name, status...;
//! - this module: which profiles a resource is held to, and the validation call that
//!   every write and `$validate` share (docs/validation.md).

pub mod catalog;
pub mod search;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fhir::outcome::Issue;

/// Profiles a deployment requires per resource type, on top of those a resource claims.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    // Shared: import's checking threads each hold a copy.
    required: Arc<BTreeMap<String, Vec<String>>>,
}

impl Rules {
    /// Parses `Type=canonical` settings; each profile must be one the server holds, for
    /// that type, or the server refuses to start.
    pub fn from_settings(settings: &[String]) -> anyhow::Result<Rules> {
        let catalog = catalog::get().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut required: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in settings {
            let Some((ty, url)) = s.split_once('=') else {
                anyhow::bail!("require-profile '{s}': expected Type=profile-url");
            };
            let (ty, url) = (ty.trim(), url.trim());
            let Some(sd) = catalog.by_url("StructureDefinition", url) else {
                anyhow::bail!("require-profile '{s}': this server holds no profile {url}");
            };
            let sd_type = &sd.head()["type"];
            if sd_type != ty {
                anyhow::bail!("require-profile '{s}': {url} constrains {sd_type}, not {ty}");
            }
            required.entry(ty.to_string()).or_default().push(url.to_string());
        }
        Ok(Rules {
            required: Arc::new(required),
        })
    }

    pub fn required_for(&self, res_type: &str) -> &[String] {
        self.required.get(res_type).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Which held profiles `resource` must meet: the ones it claims in `meta.profile` that
/// the server holds (others are ignored, as the spec allows), the deployment's required
/// ones, and `extra` (the `profile` parameter of `$validate`).
pub fn profiles_for<'a>(rules: &'a Rules, resource: &'a Value, extra: Option<&'a str>) -> Result<Vec<&'a str>> {
    let catalog = catalog()?;
    let ty = resource["resourceType"].as_str().unwrap_or_default();
    let mut out: Vec<&str> = resource["meta"]["profile"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|url| catalog.by_url("StructureDefinition", url).is_some())
        .collect();
    out.extend(rules.required_for(ty).iter().map(String::as_str));
    if let Some(p) = extra {
        out.push(p);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Validates a resource that already passed the structural checks against the base R4
/// rules (invariants, required bindings) and `profiles`; returns every issue found.
pub fn validate(resource: &Value, profiles: &[&str]) -> Result<Vec<Issue>> {
    let catalog = catalog()?;
    Ok(carnet_validate::validate(catalog.registry(), resource, profiles))
}

/// The write path's check: any error-severity issue refuses the write (422) with every
/// issue listed.
pub fn enforce(rules: &Rules, resource: &Value) -> Result<()> {
    let profiles = profiles_for(rules, resource, None)?;
    let issues = validate(resource, &profiles)?;
    if issues.iter().any(Issue::is_error) {
        return Err(Error::Unprocessable(issues));
    }
    Ok(())
}

/// The catalog, or a server error (the files are part of the build: a broken build).
pub fn catalog() -> Result<&'static catalog::Catalog> {
    catalog::get().map_err(|e| Error::Internal(format!("conformance catalog: {e}")))
}
