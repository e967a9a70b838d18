//! Writing `id` and `meta` into a resource before it is stored, so reads can send the
//! stored bytes untouched.

use serde_json::{Map, Value};

use super::instant::format_micros;

/// Returns the resource with `resourceType`, `id`, `meta` first (the usual FHIR JSON
/// order) and `meta.versionId` / `meta.lastUpdated` set; other `meta` content
/// (profiles, tags, security labels, source) is kept.
pub fn stamp(resource: Map<String, Value>, id: &str, version: i64, last_updated: i64) -> Map<String, Value> {
    let mut resource = resource;
    let resource_type = resource.remove("resourceType").unwrap_or(Value::Null);
    resource.remove("id");
    let mut meta = match resource.remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    meta.remove("versionId");
    meta.remove("lastUpdated");
    let mut new_meta = Map::with_capacity(meta.len() + 2);
    new_meta.insert("versionId".into(), Value::String(version.to_string()));
    new_meta.insert("lastUpdated".into(), Value::String(format_micros(last_updated)));
    new_meta.extend(meta);

    let mut out = Map::with_capacity(resource.len() + 3);
    out.insert("resourceType".into(), resource_type);
    out.insert("id".into(), Value::String(id.to_string()));
    out.insert("meta".into(), Value::Object(new_meta));
    out.extend(resource);
    out
}

/// `W/"n"`, the weak ETag of a version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Accepts `W/"3"`, `"3"` and `3`.
pub fn parse_etag(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_prefix("W/").unwrap_or(s);
    let s = s.trim_matches('"');
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamp_puts_meta_first_and_keeps_tags() {
        let Value::Object(r) = json!({"name": [{"family": "Tremblay"}], "resourceType": "Patient",
            "meta": {"tag": [{"code": "x"}], "versionId": "9"}, "id": "old"})
        else {
            panic!()
        };
        let out = Value::Object(stamp(r, "p1", 2, 0));
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"2","lastUpdated":"1970-01-01T00:00:00.000Z","tag":[{"code":"x"}]},"name":[{"family":"Tremblay"}]}"#
        );
    }

    #[test]
    fn etags() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"4\""), Some(4));
        assert_eq!(parse_etag("W/\"x\""), None);
    }
}
