//! `htmlChecks()`: the R4 narrative rules (<https://hl7.org/fhir/R4/narrative.html#xhtml>)
//! over the XHTML text. A small tag scanner, not a full XML parser: it checks that
//! tags nest, that the root is an XHTML `div`, and that only the basic formatting
//! elements and attributes the rules allow appear (no scripts, forms, frames, objects,
//! head/body, stylesheet links, event attributes or `javascript:` URLs).

/// Elements of HTML 4.0 chapters 7-11 and 12 (except 9.4) plus `a` and `img`.
const ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "area",
    "b",
    "bdo",
    "big",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "map",
    "ol",
    "p",
    "pre",
    "q",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "ul",
    "var",
];

const ATTRIBUTES: &[&str] = &[
    "abbr",
    "accesskey",
    "align",
    "alt",
    "axis",
    "bgcolor",
    "border",
    "cellhalign",
    "cellpadding",
    "cellspacing",
    "cellvalign",
    "char",
    "charoff",
    "charset",
    "cite",
    "class",
    "colspan",
    "compact",
    "coords",
    "datetime",
    "dir",
    "frame",
    "headers",
    "height",
    "href",
    "hreflang",
    "hspace",
    "id",
    "lang",
    "longdesc",
    "name",
    "nowrap",
    "rel",
    "rev",
    "rowspan",
    "rules",
    "scope",
    "shape",
    "span",
    "src",
    "start",
    "style",
    "summary",
    "tabindex",
    "title",
    "type",
    "valign",
    "value",
    "vspace",
    "width",
    "xml:lang",
    "xml:space",
    "xmlns",
    "usemap",
];

const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// `Err(reason)` when the narrative breaks a rule.
pub(crate) fn check(xhtml: &str) -> Result<(), String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = xhtml.trim_start();
    let mut seen_root = false;
    loop {
        let Some(lt) = rest.find('<') else {
            if !rest.trim().is_empty() && (stack.is_empty()) {
                return Err("text outside the root div".into());
            }
            break;
        };
        if lt > 0 && stack.is_empty() && !rest[..lt].trim().is_empty() {
            return Err("text outside the root div".into());
        }
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or("unterminated comment")?;
            rest = &r[end + 3..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").ok_or("unterminated processing instruction")?;
            rest = &r[end + 2..];
            continue;
        }
        if rest.starts_with("<!") {
            return Err("doctype or CDATA not allowed".into());
        }
        let end = tag_end(rest).ok_or("unterminated tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim();
            match stack.pop() {
                Some(open) if open == name => {}
                _ => return Err(format!("mismatched </{name}>")),
            }
            if stack.is_empty() {
                if !rest.trim().is_empty() {
                    return Err("content after the root div".into());
                }
                return Ok(());
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name_end = tag.find(|c: char| c.is_whitespace()).unwrap_or(tag.len());
        let name = &tag[..name_end];
        let local = name
            .strip_prefix("h:")
            .or_else(|| name.strip_prefix("xhtml:"))
            .unwrap_or(name);
        if stack.is_empty() {
            if seen_root || local != "div" {
                return Err("the root element must be a single div".into());
            }
            seen_root = true;
        }
        if !ELEMENTS.contains(&local) {
            return Err(format!("element <{name}> is not allowed"));
        }
        let attrs = attributes(&tag[name_end..])?;
        let mut has_ns = false;
        for (attr, value) in attrs {
            if attr == "xmlns" || attr.starts_with("xmlns:") {
                has_ns |= value == XHTML_NS;
                continue;
            }
            if !ATTRIBUTES.contains(&attr) {
                return Err(format!("attribute {attr} is not allowed on <{name}>"));
            }
            if matches!(attr, "href" | "src") && value.trim_start().to_ascii_lowercase().starts_with("javascript:") {
                return Err("javascript: URLs are not allowed".into());
            }
        }
        if stack.is_empty() && !has_ns {
            return Err("the root div must declare the XHTML namespace".into());
        }
        if !self_closing {
            stack.push(name);
        } else if stack.is_empty() {
            return Ok(());
        }
    }
    if stack.is_empty() && seen_root {
        Ok(())
    } else if seen_root {
        Err("unclosed elements".into())
    } else {
        Err("no root div".into())
    }
}

/// The index of the `>` closing the tag at the start of `s`, skipping quoted values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

fn attributes(mut s: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(out);
        }
        let eq = s.find('=').ok_or("attribute without a value")?;
        let name = s[..eq].trim();
        let after = s[eq + 1..].trim_start();
        let q = after
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or("unquoted attribute")?;
        let close = after[1..].find(q).ok_or("unterminated attribute")?;
        out.push((name, &after[1..1 + close]));
        s = &after[close + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn narratives() {
        let ok = [
            r#"<div xmlns="http://www.w3.org/1999/xhtml">Hello <b>world</b><br/></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><table class="x"><tr><td colspan="2">a</td></tr></table></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><!-- note --><a href="http://x">x</a><img src="pic.png" alt="y"/></div>"#,
        ];
        for h in ok {
            assert_eq!(check(h), Ok(()), "{h}");
        }
        let bad = [
            r#"<div>no namespace</div>"#,
            r#"<p xmlns="http://www.w3.org/1999/xhtml">not a div</p>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">a</p></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><a href="javascript:x()">a</a></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><b>unclosed</div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><form/></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml">a</div><div>b</div>"#,
        ];
        for h in bad {
            assert!(check(h).is_err(), "{h}");
        }
    }
}
