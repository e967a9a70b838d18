//! FHIR XML <-> JSON through fhirbolt.
//!
//! fhirbolt re-indents narrative XHTML (trimming its text) and writes newlines and tabs
//! raw inside attribute values, where XML parsers would normalise them to spaces. So
//! narratives go through fhirbolt as numbered placeholders and are spliced back
//! verbatim, and fhirbolt's output is re-emitted with proper attribute escaping and the
//! requested indentation.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::Value;

use crate::bolt;
use crate::check::json_kind;
use crate::types::Issue;

const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// Converts a JSON resource to FHIR XML. The resource is parsed strictly, but only
/// [`crate::check_resource`] checks values; call it first for untrusted input.
pub fn to_xml(value: &Value, pretty: bool) -> Result<String, Vec<Issue>> {
    if !value.is_object() {
        return Err(vec![Issue::found(
            "structure",
            None,
            format!("a resource must be a JSON object, not {}", json_kind(value)),
        )]);
    }
    let mut value = value.clone();
    let mut divs = Vec::new();
    let root = value
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut path = root;
    stash_divs(&mut value, &mut divs, &mut path).map_err(|i| vec![i])?;
    let raw = bolt::json_to_xml(&value).map_err(|i| vec![i])?;
    reemit(&raw, &divs, pretty)
        .map_err(|e| vec![Issue::found("exception", None, format!("cannot convert to XML: {e}"))])
}

/// Converts FHIR XML to a JSON resource (decimals keep their text). The XML is parsed
/// strictly, but only [`crate::check_resource`] checks values: run it on the result.
pub fn from_xml(xml: &[u8]) -> Result<Value, Vec<Issue>> {
    // FHIR's XML is UTF-8, and fhirbolt's reader unwraps the decoding of names inside a
    // narrative (a panic its callers only contain; found by the `resource` fuzz target).
    if let Err(e) = std::str::from_utf8(xml) {
        let msg = format!("invalid FHIR XML: not UTF-8 (byte {})", e.valid_up_to());
        return Err(vec![Issue::found("structure", None, msg)]);
    }
    let (patched, divs) =
        scan_xml(xml).map_err(|e| vec![Issue::found("structure", None, format!("invalid FHIR XML: {e}"))])?;
    let input = if divs.is_empty() { xml } else { &patched };
    let mut value = bolt::xml_to_json(input).map_err(|i| vec![i])?;
    if !divs.is_empty() {
        restore_divs(&mut value, &divs);
    }
    Ok(value)
}

/// Deepest element nesting accepted (real resources stay far below it).
const MAX_DEPTH: usize = 128;

fn placeholder(n: usize) -> String {
    format!("<div xmlns=\"{XHTML_NS}\">{n}</div>")
}

/// Checks that the document is complete (fhirbolt accepts a truncated document) and
/// works around fhirbolt's XML reader trimming narrative text and dropping the root
/// div's attributes: self-contained narratives (an unprefixed `div` declaring the XHTML
/// namespace, without prefixed elements inside) are cut out verbatim and replaced by
/// placeholders.
fn scan_xml(xml: &[u8]) -> Result<(Vec<u8>, Vec<String>), String> {
    let mut reader = Reader::from_reader(xml);
    let mut out = Vec::new();
    let mut divs = Vec::new();
    let mut copied = 0usize;
    let mut depth = 0usize;
    let mut roots = 0usize;
    let err = |e: quick_xml::Error| format!("malformed XML: {e}");
    loop {
        let start = reader.buffer_position();
        let (is_div, empty) = match reader.read_event().map_err(err)? {
            Event::Start(e) => (depth > 0 && is_narrative_root(&e), false),
            Event::Empty(e) => (depth > 0 && is_narrative_root(&e), true),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        if depth == 0 {
            roots += 1;
        }
        if !is_div {
            depth += usize::from(!empty);
            // fhirbolt's reader recurses once per level: a deep enough document would
            // overflow the stack. JSON input has the same bound (serde_json's 128).
            if depth > MAX_DEPTH {
                return Err(format!("elements are nested deeper than {MAX_DEPTH} levels"));
            }
            continue;
        }
        let mut self_contained = true;
        let mut inner = usize::from(!empty);
        while inner > 0 {
            match reader.read_event().map_err(err)? {
                Event::Start(e) => {
                    self_contained &= !e.name().as_ref().contains(&b':');
                    inner += 1;
                    if depth + inner > MAX_DEPTH {
                        return Err(format!("elements are nested deeper than {MAX_DEPTH} levels"));
                    }
                }
                Event::Empty(e) => self_contained &= !e.name().as_ref().contains(&b':'),
                Event::End(_) => inner -= 1,
                Event::Eof => {
                    return Err("unexpected end of document inside a narrative".to_owned());
                }
                _ => {}
            }
        }
        let end = reader.buffer_position();
        let raw = xml.get(start..end).map(std::str::from_utf8);
        let Some(Ok(raw)) = raw.filter(|_| self_contained) else {
            continue;
        };
        out.extend_from_slice(xml.get(copied..start).unwrap_or_default());
        out.extend_from_slice(placeholder(divs.len()).as_bytes());
        divs.push(raw.to_owned());
        copied = end;
    }
    if depth != 0 {
        return Err("unexpected end of document: an element is not closed".to_owned());
    }
    if roots != 1 {
        return Err(format!(
            "a FHIR XML document must have exactly one root element, found {roots}"
        ));
    }
    if !divs.is_empty() {
        out.extend_from_slice(xml.get(copied..).unwrap_or_default());
    }
    Ok((out, divs))
}

fn is_narrative_root(e: &BytesStart<'_>) -> bool {
    e.name().as_ref() == b"div"
        && e.attributes()
            .flatten()
            .any(|a| a.key.as_ref() == b"xmlns" && a.value.as_ref() == XHTML_NS.as_bytes())
}

fn restore_divs(v: &mut Value, divs: &[String]) {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                if k == "div"
                    && let Value::String(s) = child
                {
                    let n = s
                        .strip_prefix(&format!("<div xmlns=\"{XHTML_NS}\">"))
                        .and_then(|r| r.strip_suffix("</div>"))
                        .and_then(|n| n.parse::<usize>().ok());
                    if let Some(original) = n.and_then(|n| divs.get(n)) {
                        s.clone_from(original);
                    }
                } else {
                    restore_divs(child, divs);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| restore_divs(c, divs)),
        _ => {}
    }
}

/// Replaces every narrative `div` by a numbered placeholder, keeping the originals.
/// `div` is only an element name in R4's Narrative, so the key alone identifies them.
fn stash_divs(v: &mut Value, divs: &mut Vec<String>, path: &mut String) -> Result<(), Issue> {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                let base = path.len();
                path.push('.');
                path.push_str(k);
                if k == "div"
                    && let Value::String(s) = child
                {
                    check_div(s)
                        .map_err(|msg| Issue::found("value", Some(path.clone()), format!("invalid XHTML: {msg}")))?;
                    let p = placeholder(divs.len());
                    divs.push(std::mem::replace(s, p));
                } else {
                    stash_divs(child, divs, path)?;
                }
                path.truncate(base);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                let base = path.len();
                path.push_str(&format!("[{i}]"));
                stash_divs(child, divs, path)?;
                path.truncate(base);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The narrative is spliced into the XML verbatim, so it must be a well-formed `div`
/// in the XHTML namespace.
fn check_div(s: &str) -> Result<(), String> {
    let mut reader = Reader::from_str(s);
    reader.check_end_names(true);
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                if depth == 0 {
                    roots += 1;
                    check_div_root(&e)?;
                }
                depth += 1;
            }
            Event::Empty(e) => {
                if depth == 0 {
                    roots += 1;
                    check_div_root(&e)?;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) => {
                if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err("text outside the div element".to_owned());
                }
            }
            Event::CData(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Decl(_) | Event::DocType(_) => {
                return Err("declarations are not allowed in a narrative".to_owned());
            }
            Event::Eof => break,
        }
    }
    if depth != 0 {
        return Err("unclosed element".to_owned());
    }
    if roots != 1 {
        return Err("the narrative must be a single div element".to_owned());
    }
    Ok(())
}

fn check_div_root(e: &BytesStart<'_>) -> Result<(), String> {
    if e.name().as_ref() != b"div" {
        return Err("the narrative must be a div element".to_owned());
    }
    let ns = e
        .attributes()
        .flatten()
        .find(|a| a.key.as_ref() == b"xmlns")
        .map(|a| a.value.into_owned());
    if ns.as_deref() != Some(XHTML_NS.as_bytes()) {
        return Err(format!("the div must declare xmlns=\"{XHTML_NS}\""));
    }
    Ok(())
}

/// Re-emits fhirbolt's (always indented) XML with our escaping and indentation,
/// splicing the stashed narratives back in.
fn reemit(raw: &str, divs: &[String], pretty: bool) -> Result<String, String> {
    let mut reader = Reader::from_str(raw);
    let mut out = String::with_capacity(raw.len() + divs.iter().map(String::len).sum::<usize>());
    let mut depth = 0usize;
    let newline = |out: &mut String, depth: usize| {
        if pretty && !out.is_empty() {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', depth * 2));
        }
    };
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Decl(_) => out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#),
            Event::Start(e) if e.name().as_ref() == b"div" => {
                let mut index = String::new();
                loop {
                    match reader.read_event().map_err(|e| e.to_string())? {
                        Event::Text(t) => index.push_str(&String::from_utf8_lossy(&t)),
                        Event::End(_) => break,
                        Event::Eof => return Err("unterminated narrative".to_owned()),
                        _ => return Err("unexpected narrative content".to_owned()),
                    }
                }
                let div = index
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| divs.get(i))
                    .ok_or("lost narrative")?;
                newline(&mut out, depth);
                out.push_str(div);
            }
            Event::Start(e) => {
                newline(&mut out, depth);
                write_tag(&mut out, &e)?;
                out.push('>');
                depth += 1;
            }
            Event::Empty(e) => {
                newline(&mut out, depth);
                write_tag(&mut out, &e)?;
                out.push_str("/>");
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push_str("</");
                out.push_str(std::str::from_utf8(e.name().as_ref()).map_err(|e| e.to_string())?);
                out.push('>');
            }
            Event::Text(_) | Event::Comment(_) => {}
            Event::CData(_) | Event::PI(_) | Event::DocType(_) => {
                return Err("unexpected XML content".to_owned());
            }
            Event::Eof => break,
        }
    }
    if pretty {
        out.push('\n');
    }
    Ok(out)
}

fn write_tag(out: &mut String, e: &BytesStart<'_>) -> Result<(), String> {
    out.push('<');
    out.push_str(std::str::from_utf8(e.name().as_ref()).map_err(|e| e.to_string())?);
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        out.push(' ');
        out.push_str(std::str::from_utf8(a.key.as_ref()).map_err(|e| e.to_string())?);
        out.push_str("=\"");
        escape_attr(out, &a.unescape_value().map_err(|e| e.to_string())?);
        out.push('"');
    }
    Ok(())
}

/// Also escapes tab, CR and LF, which attribute-value normalisation would turn to spaces.
fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}
