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
    /// The R4 SearchParameters, parsed when first asked for: as `Value`s they hold
    /// ~16 MB that a server which is never asked for them need not carry.
    search_parameters: OnceLock<Vec<Arc<Value>>>,
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
        // A StructureDefinition is held once, by the registry (snapshots are large).
        let url = v["url"].as_str().unwrap_or_default().to_string();
        let shared = if ty == "StructureDefinition" {
            registry.add(v).map_err(|e| format!("profiles/{name}: {e}"))?;
            registry
                .structure_definition_shared(&url)
                .ok_or_else(|| format!("profiles/{name}: not held after adding"))?
        } else {
            registry.add(v.clone()).map_err(|e| format!("profiles/{name}: {e}"))?;
            Arc::new(v)
        };
        by_type.entry(ty).or_default().push(shared);
    }
    for list in by_type.values_mut() {
        list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        if let Some(w) = list.windows(2).find(|w| w[0]["id"] == w[1]["id"]) {
            return Err(format!("two conformance resources share the id {}", w[0]["id"]));
        }
    }
    Ok(Catalog {
        by_type,
        search_parameters: OnceLock::new(),
        registry,
    })
}

/// The R4 SearchParameters sorted by id (`tests` checks they parse and ids are unique).
fn search_parameters() -> Vec<Arc<Value>> {
    let bundle: Value = match serde_json::from_str(SEARCH_PARAMETERS) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "search-parameters.json does not parse");
            return Vec::new();
        }
    };
    let mut list: Vec<Arc<Value>> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| Arc::new(entry["resource"].clone()))
        .collect();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    list
}

impl Catalog {
    pub fn registry(&self) -> &carnet_validate::Registry {
        &self.registry
    }

    pub fn all(&self, res_type: &str) -> &[Arc<Value>] {
        if res_type == "SearchParameter" {
            return self.search_parameters.get_or_init(search_parameters);
        }
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
        let sps = c.all("SearchParameter");
        assert!(sps.len() > 1300);
        assert!(
            sps.windows(2).all(|w| w[0]["id"].as_str() < w[1]["id"].as_str()),
            "sorted, unique ids"
        );
        assert!(c.read("ValueSet", "sensitive-results").is_some());
        assert!(
            c.by_url("ValueSet", "https://carnet.dev/fhir/ValueSet/sensitive-results")
                .is_some()
        );
    }
}
