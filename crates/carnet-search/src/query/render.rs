//! Canonical re-rendering of what was applied, for the Bundle's `self` link.

use super::result::{Include, Summary, Total};
use super::{ChainStep, Criterion, ParsedQuery};

impl Criterion {
    /// The parameter name with chain and modifier, e.g. `subject:Patient.name:exact`.
    pub fn name(&self) -> String {
        let mut out = String::new();
        for step in &self.chain {
            match step {
                ChainStep::Forward {
                    param, explicit_type, ..
                } => {
                    out.push_str(param);
                    if let Some(t) = explicit_type {
                        out.push(':');
                        out.push_str(t);
                    }
                    out.push('.');
                }
                ChainStep::Reverse { source_type, param } => {
                    out.push_str(&format!("_has:{source_type}:{param}:"));
                }
            }
        }
        out.push_str(&self.param);
        if let Some(m) = &self.modifier {
            out.push(':');
            out.push_str(m.as_str());
        }
        out
    }
}

fn include(i: &Include) -> String {
    match (&i.param, &i.target_type) {
        (None, _) if i.source_type == "*" => "*".to_owned(),
        (None, _) => format!("{}:*", i.source_type),
        (Some(p), None) => format!("{}:{p}", i.source_type),
        (Some(p), Some(t)) => format!("{}:{p}:{t}", i.source_type),
    }
}

impl ParsedQuery {
    /// The applied parameters as name/value pairs, criteria first, in a stable order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .criteria
            .iter()
            .map(|c| {
                (
                    c.name(),
                    c.values.iter().map(|v| v.raw.as_str()).collect::<Vec<_>>().join(","),
                )
            })
            .collect();
        let r = &self.result;
        let mut push = |k: &str, v: String| out.push((k.to_owned(), v));
        if !r.types.is_empty() {
            push("_type", r.types.join(","));
        }
        if !r.sort.is_empty() {
            let keys: Vec<String> = r
                .sort
                .iter()
                .map(|s| format!("{}{}", if s.descending { "-" } else { "" }, s.param))
                .collect();
            push("_sort", keys.join(","));
        }
        for (name, list) in [("_include", &r.include), ("_revinclude", &r.revinclude)] {
            for i in list {
                let key = if i.iterate {
                    format!("{name}:iterate")
                } else {
                    name.to_owned()
                };
                push(&key, include(i));
            }
        }
        if let Some(s) = r.summary {
            let v = match s {
                Summary::True => "true",
                Summary::Text => "text",
                Summary::Data => "data",
                Summary::Count => "count",
                Summary::False => "false",
            };
            push("_summary", v.to_owned());
        }
        if !r.elements.is_empty() {
            push("_elements", r.elements.join(","));
        }
        if let Some(t) = r.total {
            let v = match t {
                Total::None => "none",
                Total::Estimate => "estimate",
                Total::Accurate => "accurate",
            };
            push("_total", v.to_owned());
        }
        if let Some((text, _)) = &r.since {
            push("_since", text.clone());
        }
        if let Some(c) = &r.contained {
            push("_contained", c.clone());
        }
        if let Some(c) = &r.contained_type {
            push("_containedType", c.clone());
        }
        if let Some(f) = &r.format {
            push("_format", f.clone());
        }
        if let Some(p) = r.pretty {
            push("_pretty", p.to_string());
        }
        if let Some(c) = r.count {
            push("_count", c.to_string());
        }
        if let Some(o) = r.offset {
            push("_offset", o.to_string());
        }
        out
    }

    /// `pairs()` form-urlencoded, e.g. `name=peter&_count=10`.
    pub fn to_query_string(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.pairs())
            .finish()
    }
}
