//! One audit record, and the R4 AuditEvent it becomes.

use std::net::IpAddr;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::NotesInner;
use crate::auth::middleware::classify;
use crate::auth::principal::{Actor, Principal};
use crate::fhir::instant::format_micros;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Record {
    pub recorded: i64,
    /// The interaction (`read`, `search`, `$release`, …): `AuditEvent.subtype`.
    pub interaction: String,
    /// C R U D E
    pub action: &'static str,
    pub status: u16,
    /// `None`: the request carried no token that verifies (a 401).
    pub actor: Option<Actor>,
    pub client_id: String,
    pub fhir_user: Option<String>,
    pub remote_addr: Option<IpAddr>,
    pub path: String,
    pub notes: NotesInner,
}

impl Record {
    pub fn new(
        state: &AppState,
        p: &Principal,
        method: &Method,
        path: &str,
        status: StatusCode,
        notes: NotesInner,
    ) -> Record {
        let (interaction, action) = interaction_of(method, path);
        Record {
            recorded: state.now(),
            interaction,
            action,
            status: status.as_u16(),
            actor: Some(p.actor.clone()),
            client_id: p.client_id.clone(),
            fhir_user: p.fhir_user.clone(),
            remote_addr: p.remote_addr,
            path: path.to_string(),
            notes,
        }
    }

    /// A request refused before anyone was identified (401): the network address is
    /// all that is known of the caller.
    pub fn anonymous(
        state: &AppState,
        remote_addr: Option<IpAddr>,
        method: &Method,
        path: &str,
        status: StatusCode,
    ) -> Record {
        let (interaction, action) = interaction_of(method, path);
        Record {
            recorded: state.now(),
            interaction,
            action,
            status: status.as_u16(),
            actor: None,
            client_id: String::new(),
            fhir_user: None,
            remote_addr,
            path: path.to_string(),
            notes: NotesInner::default(),
        }
    }

    pub fn succeeded(&self) -> bool {
        self.status < 400
    }

    /// The AuditEvent; `patients` are those whose record was touched, `who_display`
    /// the user's name (the practitioner's, from their stored resource).
    pub fn to_fhir(&self, base: &str, patients: &[String], who_display: Option<&str>) -> Value {
        // 0 success, 4 minor failure (refused, not found), 8 serious (server error).
        let outcome = match self.status {
            s if s < 400 => "0",
            s if s < 500 => "4",
            _ => "8",
        };
        let network = self.remote_addr.map(|a| json!({"address": a.to_string(), "type": "2"}));
        let mut user = json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "humanuser", "display": "human user"}]},
            "requestor": true,
        });
        match &self.fhir_user {
            Some(u) => {
                let mut who = json!({"reference": u});
                if let Some(d) = who_display {
                    who["display"] = json!(d);
                }
                user["who"] = who;
            }
            None => {
                user["who"] = json!({"identifier": {"system": format!("{base}/clients"), "value": self.client_id}, "display": self.client_id})
            }
        }
        if let Some(n) = &network {
            user["network"] = n.clone();
        }
        let mut client = json!({
            "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
            "who": {"identifier": {"system": format!("{base}/clients"), "value": self.client_id}, "display": self.client_id},
            "requestor": self.fhir_user.is_none(),
        });
        if let Some(n) = network {
            client["network"] = n;
        }
        let agents = match &self.actor {
            Some(Actor::System) => vec![client],
            Some(_) => vec![user, client],
            None => {
                let mut anon = json!({
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "humanuser", "display": "human user"}]},
                    "who": {"display": "unauthenticated"},
                    "requestor": true,
                });
                if let Some(n) = self.remote_addr.map(|a| json!({"address": a.to_string(), "type": "2"})) {
                    anon["network"] = n;
                }
                vec![anon]
            }
        };
        let mut entities: Vec<Value> = patients
            .iter()
            .map(|p| {
                json!({
                    "what": {"reference": format!("Patient/{p}")},
                    "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
                    "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
                })
            })
            .collect();
        for (t, id) in &self.notes.resources {
            if t == "Patient" && patients.contains(id) {
                continue;
            }
            entities.push(json!({
                "what": {"reference": format!("{t}/{id}")},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "4", "display": "Domain Resource"},
            }));
        }
        if let Some(q) = &self.notes.query {
            use base64::Engine;
            entities.push(json!({
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"},
                "query": base64::engine::general_purpose::STANDARD.encode(q.as_bytes()),
            }));
        }
        let mut ev = json!({
            "resourceType": "AuditEvent",
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
            "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": self.interaction}],
            "action": self.action,
            "recorded": format_micros(self.recorded),
            "outcome": outcome,
            "outcomeDesc": format!("{} {}", self.status, self.path),
            "agent": agents,
            "source": {"site": base, "observer": {"display": "Carnet"}, "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "3", "display": "Web Server"}]},
        });
        if !entities.is_empty() {
            ev["entity"] = Value::Array(entities);
        }
        ev
    }
}

/// `AuditEvent.subtype` and `action` of a request.
fn interaction_of(method: &Method, path: &str) -> (String, &'static str) {
    let interaction = classify(method, path, false)
        .into_iter()
        .next()
        .map(|(i, _)| i.name().to_string())
        // Operations that check their caller themselves ($export and its status and
        // files) are named by their `$` segment.
        .unwrap_or_else(|| {
            path.rsplit('/')
                .find(|s| s.starts_with('$'))
                .unwrap_or("operation")
                .to_string()
        });
    let at_base = path.trim_matches('/').is_empty() || path.trim_end_matches('/').ends_with("/fhir");
    let interaction = match (method.as_str(), at_base) {
        ("POST", true) => "transaction".to_string(),
        _ => interaction,
    };
    let action = match interaction.as_str() {
        "create" | "transaction" => "C",
        "update" | "patch" => "U",
        "delete" => "D",
        // A read of the whole record: R, so that it also counts as the practitioner's
        // prior access to it (R4).
        "$everything" => "R",
        i if i.starts_with('$') => "E",
        _ => "R",
    };
    (interaction, action)
}
