//! Bundles assembled from stored bytes: search and history results are written out
//! without parsing the resources they carry.

use serde_json::{Value, json};

/// Incrementally writes a Bundle as compact JSON. Resources go in as raw JSON bytes.
pub struct BundleWriter {
    buf: Vec<u8>,
    entries: usize,
}

pub struct Link<'a> {
    pub relation: &'a str,
    pub url: &'a str,
}

impl BundleWriter {
    pub fn new(bundle_type: &str, now: i64, total: Option<i64>, links: &[Link<'_>]) -> BundleWriter {
        let mut head = json!({
            "resourceType": "Bundle",
            "id": uuid::Uuid::new_v4().to_string(),
            "meta": { "lastUpdated": super::instant::format_micros(now) },
            "type": bundle_type,
        });
        if let (Some(t), Some(obj)) = (total, head.as_object_mut()) {
            obj.insert("total".into(), json!(t));
        }
        if !links.is_empty()
            && let Some(obj) = head.as_object_mut()
        {
            obj.insert(
                "link".into(),
                Value::Array(
                    links
                        .iter()
                        .map(|l| json!({"relation": l.relation, "url": l.url}))
                        .collect(),
                ),
            );
        }
        let mut buf = serde_json::to_vec(&head).unwrap_or_default();
        // Re-open the object to append entries.
        buf.pop();
        buf.extend_from_slice(b",\"entry\":[");
        BundleWriter { buf, entries: 0 }
    }

    /// Appends an entry; `resource` is compact JSON, `rest` holds the entry's other
    /// members (`search`, `request`, `response`) as a JSON object.
    pub fn entry(&mut self, full_url: Option<&str>, resource: Option<&[u8]>, rest: &Value) {
        if self.entries > 0 {
            self.buf.push(b',');
        }
        self.entries += 1;
        self.buf.push(b'{');
        let mut first = true;
        if let Some(url) = full_url {
            self.buf.extend_from_slice(b"\"fullUrl\":");
            self.buf.extend_from_slice(&serde_json::to_vec(url).unwrap_or_default());
            first = false;
        }
        if let Some(r) = resource {
            if !first {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(b"\"resource\":");
            self.buf.extend_from_slice(r);
            first = false;
        }
        if let Value::Object(map) = rest {
            for (k, v) in map {
                if !first {
                    self.buf.push(b',');
                }
                first = false;
                self.buf.extend_from_slice(&serde_json::to_vec(k).unwrap_or_default());
                self.buf.push(b':');
                self.buf.extend_from_slice(&serde_json::to_vec(v).unwrap_or_default());
            }
        }
        self.buf.push(b'}');
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.entries == 0 {
            // `entry: []` is not valid FHIR (arrays are never empty): drop the member.
            let tail = b",\"entry\":[";
            self.buf.truncate(self.buf.len() - tail.len());
            self.buf.push(b'}');
        } else {
            self.buf.extend_from_slice(b"]}");
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json() {
        let mut w = BundleWriter::new(
            "searchset",
            0,
            Some(1),
            &[Link {
                relation: "self",
                url: "http://x/fhir/Patient",
            }],
        );
        w.entry(
            Some("http://x/fhir/Patient/1"),
            Some(br#"{"resourceType":"Patient","id":"1"}"#),
            &json!({"search": {"mode": "match"}}),
        );
        let v: Value = serde_json::from_slice(&w.finish()).unwrap();
        assert_eq!(v["entry"][0]["resource"]["id"], "1");
        assert_eq!(v["total"], 1);
        let empty: Value = serde_json::from_slice(&BundleWriter::new("history", 0, None, &[]).finish()).unwrap();
        assert!(empty.get("entry").is_none());
    }
}
