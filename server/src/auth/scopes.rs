//! SMART scopes, v1 (`patient/Observation.read`, `user/*.write`, `system/*.*`) and v2
//! (`patient/Observation.rs`, `user/Appointment.cruds`, with `?param=value`
//! restrictions), and their narrowing: granted = requested ∩ client ∩ actor kind.

use std::fmt;

use super::principal::Interaction;

/// Which kind of user a resource scope is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    Patient,
    User,
    System,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }
}

pub const C: u8 = 1;
pub const R: u8 = 2;
pub const U: u8 = 4;
pub const D: u8 = 8;
pub const S: u8 = 16;
const ALL: u8 = C | R | U | D | S;

/// One resource scope. `perms` is a set of the v2 letters c r u d s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceScope {
    pub context: Context,
    /// A resource type, or `*`.
    pub resource_type: String,
    pub perms: u8,
    /// v2 `?a=b&c=d`: the resource must match every pair (search semantics).
    pub restriction: Vec<(String, String)>,
    /// The text the client asked for, kept when granted unchanged (v1 apps expect it).
    original: Option<String>,
}

impl ResourceScope {
    pub fn parse(text: &str) -> Option<ResourceScope> {
        let (context, rest) = text.split_once('/')?;
        let context = match context {
            "patient" => Context::Patient,
            "user" => Context::User,
            "system" => Context::System,
            _ => return None,
        };
        let (body, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let (resource_type, perm_text) = body.split_once('.')?;
        let type_ok = resource_type == "*"
            || (resource_type.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && resource_type.chars().all(|c| c.is_ascii_alphanumeric()));
        if !type_ok {
            return None;
        }
        let perms = match perm_text {
            "read" => R | S,
            "write" => C | U | D,
            "*" => ALL,
            v2 => parse_v2(v2)?,
        };
        let mut restriction = Vec::new();
        if let Some(q) = query {
            // v1 scopes have no restrictions.
            if matches!(perm_text, "read" | "write" | "*") || q.is_empty() {
                return None;
            }
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                if k.is_empty() || v.is_empty() {
                    return None;
                }
                restriction.push((k.into_owned(), v.into_owned()));
            }
        }
        Some(ResourceScope {
            context,
            resource_type: resource_type.to_string(),
            perms,
            restriction,
            original: Some(text.to_string()),
        })
    }

    pub fn matches_type(&self, resource_type: &str) -> bool {
        self.resource_type == "*" || self.resource_type == resource_type
    }

    /// The v2 text of this scope.
    fn v2_text(&self) -> String {
        let mut s = format!("{}/{}.", self.context.as_str(), self.resource_type);
        for (bit, ch) in [(C, 'c'), (R, 'r'), (U, 'u'), (D, 'd'), (S, 's')] {
            if self.perms & bit != 0 {
                s.push(ch);
            }
        }
        if !self.restriction.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &self.restriction {
                q.append_pair(k, v);
            }
            s.push('?');
            s.push_str(&q.finish());
        }
        s
    }

    /// What is left of `self` (requested) inside `limit` (allowed), if anything.
    fn narrow(&self, limit: &ResourceScope) -> Option<ResourceScope> {
        if self.context != limit.context {
            return None;
        }
        let resource_type = if limit.resource_type == "*" {
            self.resource_type.clone()
        } else if self.resource_type == "*" || self.resource_type == limit.resource_type {
            limit.resource_type.clone()
        } else {
            return None;
        };
        let perms = self.perms & limit.perms;
        if perms == 0 {
            return None;
        }
        let mut restriction = self.restriction.clone();
        for pair in &limit.restriction {
            if !restriction.contains(pair) {
                restriction.push(pair.clone());
            }
        }
        let unchanged = resource_type == self.resource_type && perms == self.perms && restriction == self.restriction;
        Some(ResourceScope {
            context: self.context,
            resource_type,
            perms,
            restriction,
            original: if unchanged { self.original.clone() } else { None },
        })
    }

    /// True when `other` grants nothing beyond `self`.
    fn covers(&self, other: &ResourceScope) -> bool {
        self.context == other.context
            && (self.resource_type == "*" || self.resource_type == other.resource_type)
            && other.perms & !self.perms == 0
            && self.restriction.iter().all(|p| other.restriction.contains(p))
    }
}

/// v2 permissions: a non-empty subsequence of `cruds`, in that order.
fn parse_v2(text: &str) -> Option<u8> {
    let mut perms = 0u8;
    let mut last = 0usize;
    for ch in text.chars() {
        let (pos, bit) = match ch {
            'c' => (1, C),
            'r' => (2, R),
            'u' => (3, U),
            'd' => (4, D),
            's' => (5, S),
            _ => return None,
        };
        if pos <= last {
            return None;
        }
        last = pos;
        perms |= bit;
    }
    (perms != 0).then_some(perms)
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.original {
            Some(o) => f.write_str(o),
            None => f.write_str(&self.v2_text()),
        }
    }
}

/// Scopes that are not about resources and that any client may ask for.
const CONTEXT_SCOPES: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "online_access",
];

/// A set of granted or requested scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    pub resources: Vec<ResourceScope>,
    /// openid, fhirUser, launch/patient, offline_access, ...
    pub other: Vec<String>,
}

/// The kind of user scopes are narrowed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    PatientFacing,
    Practitioner,
    System,
}

impl Scopes {
    /// Parses a space-separated scope string. Unknown or malformed scopes are dropped
    /// (RFC 6749 lets the server grant less than asked); `rejected` lists them.
    pub fn parse(text: &str) -> (Scopes, Vec<String>) {
        let mut scopes = Scopes::default();
        let mut rejected = Vec::new();
        for word in text.split_ascii_whitespace() {
            if let Some(r) = ResourceScope::parse(word) {
                if !scopes.resources.contains(&r) {
                    scopes.resources.push(r);
                }
            } else if CONTEXT_SCOPES.contains(&word) || word == "offline_access" {
                if !scopes.other.iter().any(|o| o == word) {
                    scopes.other.push(word.to_string());
                }
            } else {
                rejected.push(word.to_string());
            }
        }
        (scopes, rejected)
    }

    pub fn has(&self, scope: &str) -> bool {
        self.other.iter().any(|o| o == scope)
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.other.is_empty()
    }

    /// Requested ∩ client registration ∩ what this kind of user may hold.
    pub fn narrow(&self, client: &Scopes, actor: ActorKind) -> Scopes {
        let mut out = Scopes::default();
        for r in &self.resources {
            let kind_ok = match actor {
                ActorKind::PatientFacing => r.context == Context::Patient,
                ActorKind::Practitioner => matches!(r.context, Context::User | Context::Patient),
                ActorKind::System => r.context == Context::System,
            };
            if !kind_ok {
                continue;
            }
            for limit in &client.resources {
                if let Some(n) = r.narrow(limit)
                    && !out.resources.iter().any(|o| o.covers(&n))
                {
                    out.resources.push(n);
                }
            }
        }
        for o in &self.other {
            let ok = match o.as_str() {
                // Patient-facing sessions end after 10 idle minutes: never offline.
                "offline_access" => actor == ActorKind::Practitioner && client.has(o),
                _ => actor != ActorKind::System && CONTEXT_SCOPES.contains(&o.as_str()),
            };
            if ok {
                out.other.push(o.clone());
            }
        }
        out
    }

    /// True when every scope of `other` is covered by one of `self` (refresh requests
    /// may only ask for less).
    pub fn covers(&self, other: &Scopes) -> bool {
        other
            .resources
            .iter()
            .all(|o| self.resources.iter().any(|s| s.covers(o)))
            && other.other.iter().all(|o| self.has(o))
    }

    fn allowing<'a>(
        &'a self,
        interaction: &Interaction,
        resource_type: &str,
    ) -> impl Iterator<Item = &'a ResourceScope> {
        let need = interaction.permission();
        let resource_type = resource_type.to_string();
        self.resources
            .iter()
            .filter(move |r| r.matches_type(&resource_type) && r.perms & need == need)
    }

    /// Whether some granted scope allows this interaction on this type.
    pub fn allows(&self, interaction: &Interaction, resource_type: &str) -> bool {
        self.allowing(interaction, resource_type).next().is_some()
    }

    /// The v2 restrictions that apply to this interaction on this type, as search
    /// criteria for the data layer: `None` when some scope allows it without
    /// restriction, otherwise the alternatives (a resource must match all pairs of at
    /// least one). `Some(vec![])` means nothing is allowed.
    pub fn restrictions(&self, interaction: &Interaction, resource_type: &str) -> Option<Vec<Vec<(String, String)>>> {
        let mut alternatives = Vec::new();
        for r in self.allowing(interaction, resource_type) {
            if r.restriction.is_empty() {
                return None;
            }
            alternatives.push(r.restriction.clone());
        }
        Some(alternatives)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in self
            .other
            .iter()
            .map(String::as_str)
            .map(str::to_string)
            .chain(self.resources.iter().map(|r| r.to_string()))
        {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(&s)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(s: &str) -> Scopes {
        Scopes::parse(s).0
    }

    #[test]
    fn v1_and_v2_grammar() {
        let r = ResourceScope::parse("patient/Observation.read").unwrap();
        assert_eq!(r.perms, R | S);
        let r = ResourceScope::parse("user/*.write").unwrap();
        assert_eq!(r.perms, C | U | D);
        assert_eq!(ResourceScope::parse("system/*.*").unwrap().perms, ALL);
        assert_eq!(ResourceScope::parse("user/Appointment.cruds").unwrap().perms, ALL);
        let r = ResourceScope::parse(
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        )
        .unwrap();
        assert_eq!(r.restriction[0].0, "category");
        assert!(r.restriction[0].1.ends_with("|laboratory"));
        for bad in [
            "patient/Observation.sr",
            "patient/observation.r",
            "foo/X.r",
            "patient/X.read?a=b",
            "patient/X.",
            "patient/X.rr",
        ] {
            assert!(ResourceScope::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn narrowing() {
        let client = p("patient/Observation.rs patient/Patient.r launch/patient openid fhirUser offline_access");
        let got = p("patient/*.cruds user/*.* launch/patient offline_access").narrow(&client, ActorKind::PatientFacing);
        assert_eq!(
            got.to_string(),
            "launch/patient patient/Observation.rs patient/Patient.r"
        );
        let got = p("patient/Observation.read").narrow(&client, ActorKind::PatientFacing);
        assert_eq!(got.to_string(), "patient/Observation.read");
        let got = p("patient/Observation.rs").narrow(&client, ActorKind::PatientFacing);
        assert_eq!(got.to_string(), "patient/Observation.rs");
        let sys = p("system/*.*");
        assert!(p("user/*.*").narrow(&sys, ActorKind::System).resources.is_empty());
        assert_eq!(
            p("system/Patient.rs").narrow(&sys, ActorKind::System).to_string(),
            "system/Patient.rs"
        );
    }

    #[test]
    fn allows_and_restrictions() {
        let s = p("patient/Observation.rs?category=laboratory patient/Patient.r");
        assert!(s.allows(&Interaction::Search, "Observation"));
        assert!(!s.allows(&Interaction::Create, "Observation"));
        assert!(s.allows(&Interaction::Read, "Patient"));
        assert!(!s.allows(&Interaction::Search, "Patient"));
        assert_eq!(
            s.restrictions(&Interaction::Search, "Observation"),
            Some(vec![vec![("category".to_string(), "laboratory".to_string())]])
        );
        assert_eq!(s.restrictions(&Interaction::Read, "Patient"), None);
        assert!(p("patient/Observation.rs").covers(&p("patient/Observation.r")));
        assert!(!p("patient/Observation.r").covers(&p("patient/Observation.rs")));
    }
}
