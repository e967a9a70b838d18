//! The conformance resources compiled into the server: Carnet's profiles, value sets and
//! code systems (`profiles/*.json`, see `build.rs`) and the R4 search parameters
//! (`conformance/search-parameters.json`). They are the same in every process and never
//! change while it runs, so they live in memory, loaded once, not in the database.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

include!(concat!(env!("OUT_DIR"), "/profiles.rs"));

const SEARCH_PARAMETERS: &str = include_str!("../../../conformance/search-parameters.json");

/// The resource types served from here (read-only; docs/design.md says why).
pub const TYPES: &[&str] = &["CodeSystem", "SearchParameter", "StructureDefinition", "ValueSet"];

pub fn is_catalog_type(res_type: &str) -> bool {
    TYPES.contains(&res_type)
}

/// One held conformance resource: its JSON as compiled into the binary, and the few
/// elements read to find it. Held as parsed trees, the StructureDefinitions' snapshots
/// took ~2.3 MB of every process and the R4 SearchParameters ~16 MB once searched,
/// for resources read now and then; parsing one when it is served costs well under a
/// millisecond.
pub struct Entry {
    head: Value,
    text: &'static str,
}

impl Entry {
    fn new(text: &'static str, whole: &Value) -> Entry {
        let head: Map<String, Value> = super::search::FIELDS
            .iter()
            .filter_map(|k| Some(((*k).to_string(), whole.get(*k)?.clone())))
            .collect();
        Entry {
            head: Value::Object(head),
            text,
        }
    }

    /// The elements searches read ([`super::search::FIELDS`]), as a JSON object; they
    /// include those `read`, `profiles_of` and `by_url` look at.
    pub fn head(&self) -> &Value {
        &self.head
    }

    pub fn id(&self) -> &str {
        self.head["id"].as_str().unwrap_or_default()
    }

    /// The whole resource. The text is part of the build and was parsed at load.
    pub fn resource(&self) -> Value {
        serde_json::from_str(self.text).unwrap_or(Value::Null)
    }
}

pub struct Catalog {
    /// Per type, sorted by id.
    by_type: HashMap<String, Vec<Entry>>,
    /// The R4 SearchParameters, indexed when first asked for.
    search_parameters: OnceLock<Vec<Entry>>,
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
    let mut by_type: HashMap<String, Vec<Entry>> = HashMap::new();
    for (name, text) in PROFILE_FILES {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("profiles/{name}: {e}"))?;
        let ty = v["resourceType"].as_str().unwrap_or_default().to_string();
        if !is_catalog_type(&ty) {
            return Err(format!("profiles/{name}: a {ty} is not a conformance resource"));
        }
        if v["id"].as_str().is_none_or(str::is_empty) {
            return Err(format!("profiles/{name}: no id"));
        }
        let entry = Entry::new(text, &v);
        registry.add(v).map_err(|e| format!("profiles/{name}: {e}"))?;
        by_type.entry(ty).or_default().push(entry);
    }
    for list in by_type.values_mut() {
        list.sort_by(|a, b| a.id().cmp(b.id()));
        if let Some(w) = list.windows(2).find(|w| w[0].id() == w[1].id()) {
            return Err(format!("two conformance resources share the id {}", w[0].id()));
        }
    }
    Ok(Catalog {
        by_type,
        search_parameters: OnceLock::new(),
        registry,
    })
}

/// The R4 SearchParameters sorted by id (`tests` checks they parse and ids are unique).
/// Each is parsed alone, for its head, and dropped: the text stays where it is.
fn search_parameters() -> Vec<Entry> {
    #[derive(serde::Deserialize)]
    struct Bundle<'a> {
        #[serde(borrow)]
        entry: Vec<BundleEntry<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct BundleEntry<'a> {
        #[serde(borrow)]
        resource: &'a RawValue,
    }
    let bundle: Bundle = match serde_json::from_str(SEARCH_PARAMETERS) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "search-parameters.json does not parse");
            return Vec::new();
        }
    };
    let mut list: Vec<Entry> = bundle
        .entry
        .into_iter()
        .filter_map(|e| {
            let text = e.resource.get();
            let whole: Value = serde_json::from_str(text).ok()?;
            Some(Entry::new(text, &whole))
        })
        .collect();
    list.sort_by(|a, b| a.id().cmp(b.id()));
    list
}

impl Catalog {
    pub fn registry(&self) -> &carnet_validate::Registry {
        &self.registry
    }

    pub fn all(&self, res_type: &str) -> &[Entry] {
        if res_type == "SearchParameter" {
            return self.search_parameters.get_or_init(search_parameters);
        }
        self.by_type.get(res_type).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn read(&self, res_type: &str, id: &str) -> Option<&Entry> {
        let list = self.all(res_type);
        list.binary_search_by(|r| r.id().cmp(id)).ok().map(|i| &list[i])
    }

    /// The URLs of the profiles held for `res_type` (CapabilityStatement
    /// `supportedProfile`).
    pub fn profiles_of(&self, res_type: &str) -> Vec<&str> {
        self.all("StructureDefinition")
            .iter()
            .map(Entry::head)
            .filter(|sd| sd["type"] == res_type && sd["derivation"] == "constraint")
            .filter_map(|sd| sd["url"].as_str())
            .collect()
    }

    /// A held resource by canonical URL, with an optional `|version`.
    pub fn by_url(&self, res_type: &str, canonical: &str) -> Option<&Entry> {
        let (url, version) = match canonical.split_once('|') {
            Some((u, v)) => (u, Some(v)),
            None => (canonical, None),
        };
        self.all(res_type).iter().find(|r| {
            let h = r.head();
            h["url"] == url && version.is_none_or(|v| h["version"] == v)
        })
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
        assert!(sps.windows(2).all(|w| w[0].id() < w[1].id()), "sorted, unique ids");
        assert!(
            sps.iter().all(|p| p.resource()["resourceType"] == "SearchParameter"),
            "each entry's text is a whole SearchParameter"
        );
        assert!(c.read("ValueSet", "sensitive-results").is_some());
        assert!(
            c.by_url("ValueSet", "https://carnet.dev/fhir/ValueSet/sensitive-results")
                .is_some()
        );
    }
}
