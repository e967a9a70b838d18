//! The Bundle envelope: everything checked before the database is touched, so a
//! malformed Bundle is refused whole (400) with the path of the offending element.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::binary;
use super::get::{self, GetRequest};
use crate::error::{Error, Result};
use crate::fhir::meta::parse_etag;
use crate::fhir::outcome::Issue;
use crate::service::conditional::UpdateTarget;
use crate::service::ids;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Transaction,
    Batch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Processing order of http.html#trules: deletes free identities that creates may
    /// reuse, creates define the ids updates refer to, and reads see every write.
    pub fn rank(self) -> u8 {
        match self {
            Method::Delete => 0,
            Method::Post => 1,
            Method::Put | Method::Patch => 2,
            Method::Get | Method::Head => 3,
        }
    }
}

/// What an entry asks for, with its URL already interpreted.
#[derive(Debug)]
pub enum Action {
    Create(String),
    Update(String, String),
    CondUpdate(String, String),
    Patch(String, String),
    CondPatch(String, String),
    Delete(String, String),
    CondDelete(String, String),
    Get(GetRequest),
}

/// The identity an entry was given before any create or update ran.
#[derive(Debug, Default)]
pub enum Plan {
    #[default]
    Undecided,
    /// A create under this pre-chosen server id.
    CreateAs(String),
    /// A conditional create whose criteria matched this existing resource.
    Existing(String),
    Update(UpdateTarget),
}

#[derive(Debug)]
pub struct Entry {
    pub index: usize,
    pub full_url: Option<String>,
    pub method: Method,
    pub url: String,
    /// The URL's path below the base, without the query: what access rules look at.
    pub path: String,
    pub action: Action,
    /// The resource of a POST or PUT, or the JSON Patch document of a PATCH.
    pub body: Option<Value>,
    pub if_match: Option<i64>,
    pub if_none_exist: Option<String>,
    pub plan: Plan,
}

impl Entry {
    /// Names this entry in an error, so the client knows which one failed: the
    /// diagnostics say which entry, and expressions become paths inside the Bundle.
    pub fn locate(&self, e: Error) -> Error {
        let here = at(self.index, "");
        let say = |m: String| {
            format!(
                "{here} ({} {}): {m}",
                self.method.as_str(),
                ids::truncate(&self.url, 200)
            )
        };
        match e {
            Error::Invalid(issues) => Error::Invalid(relocate(issues, &here, say)),
            Error::Unprocessable(issues) => Error::Unprocessable(relocate(issues, &here, say)),
            Error::NotFound(m) => Error::NotFound(say(m)),
            Error::Gone(m) => Error::Gone(say(m)),
            Error::MethodNotAllowed(m) => Error::MethodNotAllowed(say(m)),
            Error::NotAcceptable(m) => Error::NotAcceptable(say(m)),
            Error::UnsupportedMediaType(m) => Error::UnsupportedMediaType(say(m)),
            Error::Conflict(m) => Error::Conflict(say(m)),
            Error::PreconditionFailed(m) => Error::PreconditionFailed(say(m)),
            Error::NotSupported(m) => Error::NotSupported(say(m)),
            // Storage and internal failures say nothing to the client about entries.
            other => other,
        }
    }
}

/// `Patient.birthDate` (a path in the entry's resource) becomes
/// `Bundle.entry[3].resource.birthDate`; anything else points at the entry.
fn relocate(issues: Vec<Issue>, here: &str, say: impl Fn(String) -> String) -> Vec<Issue> {
    issues
        .into_iter()
        .map(|mut i| {
            i.diagnostics = say(std::mem::take(&mut i.diagnostics));
            i.expression = Some(match i.expression.take() {
                Some(e) if e.starts_with("Bundle.entry[") => e,
                Some(e) if e == "resourceType" || e == "id" => format!("{here}.resource.{e}"),
                Some(e) if e.starts_with(|c: char| c.is_ascii_uppercase()) => {
                    let rest = e.find('.').map_or("", |dot| &e[dot..]);
                    format!("{here}.resource{rest}")
                }
                _ => here.to_string(),
            });
            i
        })
        .collect()
}

/// Splits the Bundle into checked entries. The resources are moved, not copied.
pub fn parse(body: Value, base: &str) -> Result<(Kind, Vec<Entry>)> {
    let Value::Object(mut bundle) = body else {
        return Err(Error::invalid("structure", "POST [base] takes a Bundle"));
    };
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(Error::invalid_at(
            "invalid",
            "resourceType",
            "POST [base] takes a Bundle of type transaction or batch",
        ));
    }
    let kind = match bundle.get("type").and_then(Value::as_str) {
        Some("transaction") => Kind::Transaction,
        Some("batch") => Kind::Batch,
        Some(other) => {
            return Err(Error::invalid_at(
                "invalid",
                "Bundle.type",
                format!(
                    "POST [base] processes transaction and batch Bundles, not '{}'",
                    ids::truncate(other, 40)
                ),
            ));
        }
        None => {
            return Err(Error::invalid_at("required", "Bundle.type", "The Bundle has no type"));
        }
    };
    let raw = match bundle.remove("entry") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(Error::invalid_at(
                "structure",
                "Bundle.entry",
                "Bundle.entry must be an array",
            ));
        }
    };
    let entries = raw
        .into_iter()
        .enumerate()
        .map(|(i, e)| entry(i, e, base))
        .collect::<Result<Vec<_>>>()?;
    check_full_urls(&entries)?;
    Ok((kind, entries))
}

fn at(index: usize, path: &str) -> String {
    format!("Bundle.entry[{index}]{path}")
}

fn entry(index: usize, v: Value, base: &str) -> Result<Entry> {
    let Value::Object(mut e) = v else {
        return Err(Error::invalid_at(
            "structure",
            at(index, ""),
            "A Bundle entry must be an object",
        ));
    };
    let full_url = match e.remove("fullUrl") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(Error::invalid_at(
                "structure",
                at(index, ".fullUrl"),
                "fullUrl must be a string",
            ));
        }
    };
    let request = match e.remove("request") {
        Some(Value::Object(r)) => r,
        Some(_) => {
            return Err(Error::invalid_at(
                "structure",
                at(index, ".request"),
                "request must be an object",
            ));
        }
        None => {
            return Err(Error::invalid_at(
                "required",
                at(index, ".request"),
                "The entry has no request",
            ));
        }
    };
    let method = method(index, &request)?;
    let url = match request.get("url").and_then(Value::as_str).map(str::trim) {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => {
            return Err(Error::invalid_at(
                "required",
                at(index, ".request.url"),
                "The entry's request has no url",
            ));
        }
    };
    let action = action(method, &url, base).map_err(|m| Error::invalid_at("value", at(index, ".request.url"), m))?;
    let path = relative(&url, base)
        .ok()
        .and_then(|r| r.split('?').next())
        .unwrap_or_default()
        .to_string();
    let body = body(index, method, e.remove("resource"))?;
    Ok(Entry {
        index,
        full_url,
        method,
        url,
        path,
        action,
        body,
        if_match: if_match(index, &request)?,
        if_none_exist: request.get("ifNoneExist").and_then(Value::as_str).map(str::to_string),
        plan: Plan::Undecided,
    })
}

fn method(index: usize, request: &Map<String, Value>) -> Result<Method> {
    match request.get("method").and_then(Value::as_str) {
        None => Err(Error::invalid_at(
            "required",
            at(index, ".request.method"),
            "The entry's request has no method",
        )),
        Some(m) => Method::parse(m).ok_or_else(|| {
            Error::invalid_at(
                "value",
                at(index, ".request.method"),
                format!(
                    "'{}' is not one of GET HEAD POST PUT PATCH DELETE",
                    ids::truncate(m, 20)
                ),
            )
        }),
    }
}

fn if_match(index: usize, request: &Map<String, Value>) -> Result<Option<i64>> {
    let Some(v) = request.get("ifMatch") else {
        return Ok(None);
    };
    v.as_str().and_then(parse_etag).map(Some).ok_or_else(|| {
        Error::invalid_at(
            "value",
            at(index, ".request.ifMatch"),
            "ifMatch must be a version ETag such as W/\"3\"",
        )
    })
}

/// The entry's body as its method needs it: a resource for POST and PUT, the JSON
/// Patch a Binary carries for PATCH, nothing otherwise.
fn body(index: usize, method: Method, resource: Option<Value>) -> Result<Option<Value>> {
    if !matches!(method, Method::Post | Method::Put | Method::Patch) {
        // A resource on a GET or DELETE entry has no meaning: it is ignored.
        return Ok(None);
    }
    match resource {
        None => Err(Error::invalid_at(
            "required",
            at(index, ".resource"),
            format!("A {} entry needs a resource", method.as_str()),
        )),
        Some(r @ Value::Object(_)) if method == Method::Patch => binary::json_patch(r)
            .map(Some)
            .map_err(|(path, msg)| Error::invalid_at("invalid", at(index, &format!(".resource{path}")), msg)),
        Some(r @ Value::Object(_)) => Ok(Some(r)),
        Some(_) => Err(Error::invalid_at(
            "structure",
            at(index, ".resource"),
            "resource must be an object",
        )),
    }
}

/// URLs are relative to the base; absolute ones are accepted only on this server.
fn relative<'a>(url: &'a str, base: &str) -> Result<&'a str, String> {
    if let Some(rest) = url.strip_prefix(base)
        && (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
    {
        return Ok(rest.trim_start_matches('/'));
    }
    if url.contains("://") || url.starts_with("urn:") {
        return Err(format!("'{}' is not a URL on this server", ids::truncate(url, 120)));
    }
    Ok(url.trim_start_matches('/'))
}

fn action(method: Method, url: &str, base: &str) -> Result<Action, String> {
    let rel = relative(url, base)?;
    let (path, query) = rel.split_once('?').unwrap_or((rel, ""));
    let segments: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    if let Method::Get | Method::Head = method {
        return get::parse(&segments, query, method == Method::Head).map(Action::Get);
    }
    let unsupported = || {
        format!(
            "'{}' is not a valid URL for {}",
            ids::truncate(url, 120),
            method.as_str()
        )
    };
    match (segments.as_slice(), query.is_empty()) {
        ([t], true) if method == Method::Post => Ok(Action::Create(resource_type(t)?)),
        ([t], false) if method != Method::Post => {
            let t = resource_type(t)?;
            let criteria = query.to_string();
            Ok(match method {
                Method::Put => Action::CondUpdate(t, criteria),
                Method::Patch => Action::CondPatch(t, criteria),
                _ => Action::CondDelete(t, criteria),
            })
        }
        ([t, id], true) if method != Method::Post => {
            let (t, id) = (resource_type(t)?, logical_id(id)?);
            Ok(match method {
                Method::Put => Action::Update(t, id),
                Method::Patch => Action::Patch(t, id),
                _ => Action::Delete(t, id),
            })
        }
        _ => Err(unsupported()),
    }
}

pub fn resource_type(t: &str) -> Result<String, String> {
    if carnet_fhir::is_resource_type(t) {
        Ok(t.to_string())
    } else {
        Err(format!("Unknown resource type '{}'", ids::truncate(t, 60)))
    }
}

pub fn logical_id(id: &str) -> Result<String, String> {
    ids::check_id(id)
        .map(|()| id.to_string())
        .map_err(|_| format!("'{}' is not a valid FHIR id", ids::truncate(id, 80)))
}

fn check_full_urls(entries: &[Entry]) -> Result<()> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    for e in entries {
        if let Some(f) = &e.full_url
            && let Some(first) = seen.insert(f, e.index)
        {
            return Err(Error::invalid_at(
                "invalid",
                at(e.index, ".fullUrl"),
                format!(
                    "fullUrl '{}' is also the fullUrl of Bundle.entry[{first}]",
                    ids::truncate(f, 120)
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn urls() {
        let base = "http://h/fhir";
        assert!(matches!(action(Method::Post, "Patient", base), Ok(Action::Create(t)) if t == "Patient"));
        assert!(matches!(action(Method::Put, "http://h/fhir/Patient/1", base), Ok(Action::Update(_, id)) if id == "1"));
        assert!(matches!(action(Method::Delete, "Patient?_id=1", base), Ok(Action::CondDelete(_, c)) if c == "_id=1"));
        assert!(action(Method::Post, "Patient/1", base).is_err());
        assert!(action(Method::Put, "Patient", base).is_err());
        assert!(action(Method::Put, "http://elsewhere/fhir/Patient/1", base).is_err());
        assert!(action(Method::Delete, "Unicorn/1", base).is_err());
        assert!(action(Method::Get, "Patient/1/_history/2", base).is_ok());
    }
}
