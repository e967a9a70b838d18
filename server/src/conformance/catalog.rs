//! The conformance resources compiled into the server: Carnet's profiles, value sets and
//! code systems (`profiles/*.json`, see `build.rs`) and the R4 search parameters
//! (`conformance/search-parameters.json`). They are the same in every process and never
//! change while it runs, so they live in memory, loaded once, not in the database.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

include!(concat!(env!("OUT_DIR"), "/profiles.rs"));

const SEARCH_PARAMETERS: &str = include_str!("../../../conformance/search-parameters.json");

/// The resource types served from here (read-only; docs/design.md says why).
pub const TYPES: &[&str] = &["CodeSystem", "SearchParameter", "StructureDefinition", "ValueSet"];

pub fn is_catalog_type(res_type: &str) -> bool {
    TYPES.contains(&res_type)
}

pub struct Catalog {
    /// Per type, sorted by id.
    by_type: HashMap<String, Vec<Arc<Value>>>,
    registry: carnet_validate::Registry,
}

static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();

/// The catalog, loaded at first use. The files are part of the build and a test loads
/// them, so an error here means a broken build; startup calls this to fail early.
pub fn get() -> Result<&'static Catalog, &'static str> {
    CATALOG.get_or_init(load).as_ref().map_err(String::as_str)
}

fn load() -> Result<Catalog, String> {
    let mut registry = carnet_validate::Registry::new();
    let mut by_type: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
    for (name, text) in PROFILE_FILES {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("profiles/{name}: {e}"))?;
        let ty = v["resourceType"].as_str().unwrap_or_default().to_string();
        if !is_catalog_type(&ty) {
            return Err(format!("profiles/{name}: a {ty} is not a conformance resource"));
        }
        if v["id"].as_str().is_none_or(str::is_empty) {
            return Err(format!("profiles/{name}: no id"));
        }
        registry.add(v.clone()).map_err(|e| format!("profiles/{name}: {e}"))?;
        by_type.entry(ty).or_default().push(Arc::new(v));
    }
    let bundle: Value = serde_json::from_str(SEARCH_PARAMETERS).map_err(|e| format!("search-parameters.json: {e}"))?;
    for entry in bundle["entry"].as_array().into_iter().flatten() {
        by_type
            .entry("SearchParameter".to_string())
            .or_default()
            .push(Arc::new(entry["resource"].clone()));
    }
    for list in by_type.values_mut() {
        list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        if let Some(w) = list.windows(2).find(|w| w[0]["id"] == w[1]["id"]) {
            return Err(format!("two conformance resources share the id {}", w[0]["id"]));
        }
    }
    Ok(Catalog { by_type, registry })
}

impl Catalog {
    pub fn registry(&self) -> &carnet_validate::Registry {
        &self.registry
    }

    pub fn all(&self, res_type: &str) -> &[Arc<Value>] {
        self.by_type.get(res_type).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn read(&self, res_type: &str, id: &str) -> Option<&Arc<Value>> {
        let list = self.all(res_type);
        list.binary_search_by(|r| r["id"].as_str().unwrap_or_default().cmp(id))
            .ok()
            .map(|i| &list[i])
    }

    /// The URLs of the profiles held for `res_type` (CapabilityStatement
    /// `supportedProfile`).
    pub fn profiles_of(&self, res_type: &str) -> Vec<&str> {
        self.all("StructureDefinition")
            .iter()
            .filter(|sd| sd["type"] == res_type && sd["derivation"] == "constraint")
            .filter_map(|sd| sd["url"].as_str())
            .collect()
    }

    /// A held resource by canonical URL, with an optional `|version`.
    pub fn by_url(&self, res_type: &str, canonical: &str) -> Option<&Arc<Value>> {
        let (url, version) = match canonical.split_once('|') {
            Some((u, v)) => (u, Some(v)),
            None => (canonical, None),
        };
        self.all(res_type)
            .iter()
            .find(|r| r["url"] == url && version.is_none_or(|v| r["version"] == v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_loads() {
        let c = get().unwrap();
        assert!(c.all("SearchParameter").len() > 1300);
        assert!(c.read("ValueSet", "sensitive-results").is_some());
        assert!(
            c.by_url("ValueSet", "https://carnet.dev/fhir/ValueSet/sensitive-results")
                .is_some()
        );
    }
}
