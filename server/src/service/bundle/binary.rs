//! PATCH inside a Bundle: the JSON Patch travels base64-encoded in a Binary resource
//! (http.html#patch), since an entry can only hold resources.

use serde_json::Value;

const JSON_PATCH: &str = "application/json-patch+json";

/// The JSON Patch document a Binary entry carries. `Err` holds the path below
/// `resource` that is wrong and why.
pub fn json_patch(resource: Value) -> Result<Value, (&'static str, String)> {
    let ty = resource.get("resourceType").and_then(Value::as_str);
    if ty != Some("Binary") {
        return Err((
            ".resourceType",
            "A PATCH entry takes a Binary holding a JSON Patch (FHIRPath Patch is not supported)".to_string(),
        ));
    }
    let ct = resource.get("contentType").and_then(Value::as_str).unwrap_or("");
    if !ct.trim().to_ascii_lowercase().starts_with(JSON_PATCH) {
        return Err((".contentType", format!("The Binary's contentType must be {JSON_PATCH}")));
    }
    let data = resource.get("data").and_then(Value::as_str).unwrap_or("");
    let bytes = decode(data).ok_or((".data", "Binary.data is not valid base64".to_string()))?;
    let doc: Value =
        serde_json::from_slice(&bytes).map_err(|e| (".data", format!("The patch is not valid JSON: {e}")))?;
    if !doc.is_array() {
        return Err((".data", "A JSON Patch document is an array of operations".to_string()));
    }
    Ok(doc)
}

/// Standard or URL-safe base64, padding optional, whitespace ignored.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 3);
    let (mut acc, mut bits, mut padded) = (0u32, 0u32, false);
    for b in s.bytes().filter(|b| !b.is_ascii_whitespace()) {
        if b == b'=' {
            padded = true;
            continue;
        }
        if padded {
            return None;
        }
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing character carries 6 bits: not a whole byte, so not base64.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode("aGVs\nbG8h").unwrap(), b"hello!");
        assert_eq!(decode("").unwrap(), b"");
        assert!(decode("a").is_none());
        assert!(decode("aGV*").is_none());
        assert!(decode("aG=Vs").is_none());
    }
}
