//! Who is asking: the verified identity behind a token, and the per-interaction scope
//! check. The compartment and policy rules of the next issue take a `&Principal` in the
//! data-access path; this module only answers "does a granted scope allow it?".

use std::net::IpAddr;

use super::scopes::{self, Scopes};
use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// `fhirUser` Patient/X: patient-facing, context patient X.
    Patient { id: String },
    /// `fhirUser` RelatedPerson/R acting for the patient chosen at sign-in.
    Representative { related_person: String, patient: String },
    /// `fhirUser` Practitioner/P; `patient` is set by an EHR launch.
    Practitioner { id: String, patient: Option<String> },
    /// A backend client (client_credentials), no user.
    System,
}

impl Actor {
    pub fn is_patient_facing(&self) -> bool {
        matches!(self, Actor::Patient { .. } | Actor::Representative { .. })
    }

    /// The patient the token is about, if any (the SMART `patient` launch context).
    pub fn context_patient(&self) -> Option<&str> {
        match self {
            Actor::Patient { id } => Some(id),
            Actor::Representative { patient, .. } => Some(patient),
            Actor::Practitioner { patient, .. } => patient.as_deref(),
            Actor::System => None,
        }
    }

    /// Builds the actor from the claims a token carries (`fhirUser` is a relative
    /// reference or an absolute URL ending in one).
    pub fn from_claims(fhir_user: Option<&str>, patient: Option<&str>) -> Option<Actor> {
        let Some(fhir_user) = fhir_user else {
            return Some(Actor::System);
        };
        let mut parts = fhir_user.rsplit('/');
        let id = parts.next()?.to_string();
        let ty = parts.next()?;
        if id.is_empty() {
            return None;
        }
        match ty {
            "Patient" => {
                // A patient's context is always themself.
                if patient.is_some_and(|p| p != id) {
                    return None;
                }
                Some(Actor::Patient { id })
            }
            "RelatedPerson" => Some(Actor::Representative {
                related_person: id,
                patient: patient?.to_string(),
            }),
            "Practitioner" => Some(Actor::Practitioner {
                id,
                patient: patient.map(str::to_string),
            }),
            _ => None,
        }
    }
}

/// A FHIR interaction, as far as scopes are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    Read,
    Vread,
    Search,
    /// `[type]/[id]/_history`
    HistoryInstance,
    /// `[type]/_history` and `/_history`
    HistoryType,
    Create,
    Update,
    Patch,
    Delete,
    /// `$name`; `write` when it changes data (POST to a non-query operation).
    Operation {
        name: String,
        write: bool,
    },
}

impl Interaction {
    /// The SMART v2 permission letters needed (v1 `read` = rs, `write` = cud).
    pub fn permission(&self) -> u8 {
        match self {
            Interaction::Read | Interaction::Vread | Interaction::HistoryInstance => scopes::R,
            Interaction::Search | Interaction::HistoryType => scopes::S,
            Interaction::Create => scopes::C,
            Interaction::Update | Interaction::Patch => scopes::U,
            Interaction::Delete => scopes::D,
            Interaction::Operation { write: false, .. } => scopes::R,
            Interaction::Operation { write: true, .. } => scopes::U,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Interaction::Read => "read",
            Interaction::Vread => "vread",
            Interaction::Search => "search",
            Interaction::HistoryInstance => "history-instance",
            Interaction::HistoryType => "history-type",
            Interaction::Create => "create",
            Interaction::Update => "update",
            Interaction::Patch => "patch",
            Interaction::Delete => "delete",
            Interaction::Operation { name, .. } => name,
        }
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    pub client_id: String,
    /// `sub`: the account (or, for a backend client, the client id).
    pub subject: String,
    /// `fhirUser` as a relative reference (`Patient/123`), if there is a user.
    pub fhir_user: Option<String>,
    pub scopes: Scopes,
    /// The sign-in session (`sid`); revoking it ends every token it issued.
    pub session_id: Option<String>,
    /// `jti`
    pub token_id: String,
    /// Who issued the token: this server, or the external OpenID Connect issuer.
    pub issuer: String,
    /// Epoch microseconds.
    pub expires_at: i64,
    pub remote_addr: Option<IpAddr>,
}

impl Principal {
    /// Whether a granted scope allows `interaction` on `resource_type` (`*` for
    /// system-wide interactions): 403 with an OperationOutcome if not.
    pub fn check(&self, interaction: Interaction, resource_type: &str) -> Result<(), Error> {
        let allowed = if resource_type == "*" {
            self.scopes
                .resources
                .iter()
                .any(|r| r.resource_type == "*" && r.perms & interaction.permission() != 0 && r.restriction.is_empty())
        } else {
            self.scopes.allows(&interaction, resource_type)
        };
        if allowed {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "The access token's scopes do not allow {} on {}",
                interaction.name(),
                resource_type
            )))
        }
    }

    /// v2 scope restrictions for the data layer (see [`Scopes::restrictions`]).
    pub fn restrictions(&self, interaction: &Interaction, resource_type: &str) -> Option<Vec<Vec<(String, String)>>> {
        self.scopes.restrictions(interaction, resource_type)
    }
}
