//! `_summary` and `_elements`: returning part of a resource.

use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Shape {
    #[default]
    Full,
    /// `_summary=true`: the elements the specification marks as summary.
    Summary,
    /// `_summary=text`: text, id, meta and mandatory top-level elements.
    Text,
    /// `_summary=data`: everything but the narrative.
    Data,
    /// `_elements=a,b`: those top-level elements plus the mandatory ones.
    Elements(Vec<String>),
}

impl Shape {
    /// From the `_summary` and `_elements` parameters; `Err` names the bad value.
    /// `_summary=count` is a search concern and is handled there.
    pub fn from_params(summary: Option<&str>, elements: Option<&str>) -> Result<Shape, String> {
        match summary {
            Some("true") => return Ok(Shape::Summary),
            Some("text") => return Ok(Shape::Text),
            Some("data") => return Ok(Shape::Data),
            Some("false") | None => {}
            Some("count") => return Ok(Shape::Full),
            Some(other) => return Err(format!("_summary={other}")),
        }
        match elements {
            Some(list) => {
                let names: Vec<String> = list
                    .split(',')
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    // `Patient.name` is accepted as well as `name`.
                    .map(|s| s.rsplit('.').next().unwrap_or(s).to_string())
                    .collect();
                Ok(Shape::Elements(names))
            }
            None => Ok(Shape::Full),
        }
    }

    pub fn is_full(&self) -> bool {
        matches!(self, Shape::Full)
    }

    /// Applies the shape to one resource. Subsetted results carry the `SUBSETTED` tag
    /// so nobody mistakes them for the whole resource.
    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(map) = resource else {
            return resource;
        };
        let resource_type = map
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let keep = |name: &str| -> bool {
            let base = element_base(name);
            match self {
                Shape::Full => true,
                Shape::Data => base != "text",
                Shape::Text => {
                    matches!(base, "resourceType" | "id" | "meta" | "text")
                        || carnet_fhir::is_mandatory_element(&resource_type, base)
                }
                Shape::Summary => {
                    matches!(base, "resourceType" | "id" | "meta")
                        || carnet_fhir::is_summary_element(&resource_type, base)
                }
                Shape::Elements(names) => {
                    matches!(base, "resourceType" | "id" | "meta")
                        || names.iter().any(|n| n == base || choice_matches(n, base))
                        || carnet_fhir::is_mandatory_element(&resource_type, base)
                }
            }
        };
        let mut out = Map::with_capacity(map.len());
        for (k, v) in map {
            if keep(&k) {
                out.insert(k, v);
            }
        }
        if !matches!(self, Shape::Full) {
            add_subsetted_tag(&mut out);
        }
        Value::Object(out)
    }
}

/// `_birthDate` (a primitive's extension) follows `birthDate`.
fn element_base(name: &str) -> &str {
    name.strip_prefix('_').unwrap_or(name)
}

/// `_elements=value` selects `valueQuantity` and the other choices of `value[x]`.
fn choice_matches(requested: &str, actual: &str) -> bool {
    actual.len() > requested.len()
        && actual.starts_with(requested)
        && actual[requested.len()..].starts_with(|c: char| c.is_ascii_uppercase())
}

fn add_subsetted_tag(resource: &mut Map<String, Value>) {
    let meta = resource.entry("meta").or_insert_with(|| json!({}));
    if let Value::Object(meta) = meta {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Value::Array(tags) = tags {
            tags.push(json!({
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "SUBSETTED",
                "display": "subsetted"
            }));
        }
    }
}
