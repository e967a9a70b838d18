//! JSON -> XML -> JSON round trips through fhirbolt.

mod common;

use carnet_fhir::{from_xml, to_xml};
use common::{MAIN_TYPES, examples_of};
use serde_json::{Value, json};

#[test]
fn main_type_examples_round_trip() {
    let mut failures = Vec::new();
    let mut n = 0;
    for ty in MAIN_TYPES {
        for (name, v) in examples_of(ty) {
            n += 1;
            for pretty in [false, true] {
                let xml = match to_xml(&v, pretty) {
                    Ok(x) => x,
                    Err(e) => {
                        failures.push(format!("{name}: to_xml: {e:?}"));
                        continue;
                    }
                };
                match from_xml(xml.as_bytes()) {
                    Ok(back) if back == v => {}
                    Ok(back) => failures.push(format!(
                        "{name} (pretty={pretty}): differs: {}",
                        first_difference(&v, &back, "")
                    )),
                    Err(e) => failures.push(format!("{name}: from_xml: {e:?}")),
                }
            }
        }
    }
    eprintln!("{n} examples round-tripped");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn first_difference(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if w == v => {}
                    Some(w) => return first_difference(v, w, &format!("{path}.{k}")),
                    None => return format!("{path}.{k} missing"),
                }
            }
            for k in y.keys() {
                if !x.contains_key(k) {
                    return format!("{path}.{k} added");
                }
            }
            format!("{path}: ?")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if v != w {
                    return first_difference(v, w, &format!("{path}[{i}]"));
                }
            }
            format!("{path}: ?")
        }
        _ => format!("{path}: {a} != {b}"),
    }
}

#[test]
fn decimals_keep_their_text() {
    let text = r#"{"resourceType":"Observation","status":"final","code":{"text":"w"},
        "valueQuantity":{"value":60.50,"unit":"kg"},
        "component":[{"code":{"text":"c"},"valueQuantity":{"value":1.000e2}}]}"#;
    let v: Value = serde_json::from_str(text).unwrap();
    let xml = to_xml(&v, false).unwrap();
    assert!(xml.contains(r#"<value value="60.50"/>"#), "{xml}");
    let back = from_xml(xml.as_bytes()).unwrap();
    assert_eq!(back, v);
    assert_eq!(back["valueQuantity"]["value"].to_string(), "60.50");
    assert!(serde_json::to_string(&back).unwrap().contains("\"value\":60.50"));
}

#[test]
fn compact_and_pretty_output() {
    let v = json!({"resourceType": "Patient", "id": "p1", "active": true,
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">\n  <p>Hi  <b>there</b></p>\n</div>"},
        "name": [{"family": "Line\nbreak\ttab \"q\" <&>"}]});
    let compact = to_xml(&v, false).unwrap();
    assert!(
        compact.starts_with(
            r#"<?xml version="1.0" encoding="UTF-8"?><Patient xmlns="http://hl7.org/fhir"><id value="p1"/>"#
        ),
        "{compact}"
    );
    assert!(
        compact.contains("Line&#10;break&#9;tab &quot;q&quot; &lt;&amp;&gt;"),
        "{compact}"
    );
    assert!(compact.contains("<p>Hi  <b>there</b></p>"), "{compact}");
    let pretty = to_xml(&v, true).unwrap();
    assert!(pretty.contains("\n  <id value=\"p1\"/>\n"), "{pretty}");
    for xml in [&compact, &pretty] {
        assert_eq!(from_xml(xml.as_bytes()).unwrap(), v);
    }
}

#[test]
fn xml_errors_are_issues() {
    let e = from_xml(b"<Patient xmlns=\"http://hl7.org/fhir\"><bogus value=\"1\"/></Patient>").unwrap_err();
    assert_eq!(e[0].code, "structure");
    assert!(e[0].diagnostics.contains("bogus"), "{e:?}");
    assert!(from_xml(b"not xml at all").is_err());
    assert!(from_xml(b"").is_err());
    assert!(from_xml(b"<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\"/>").is_err());
    let bad_div = json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>x</div>"}});
    let e = to_xml(&bad_div, false).unwrap_err();
    assert_eq!(e[0].expression.as_deref(), Some("Patient.text.div"));
    assert!(to_xml(&json!({"resourceType": "Patient", "bogus": 1}), false).is_err());
    assert!(to_xml(&json!([1]), false).is_err());
}
