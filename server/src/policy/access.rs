//! Who is asking, as the data-access path needs it: built once per request.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::representation;
use crate::audit::{EntryNote, Notes};
use crate::auth::i18n::Lang;
use crate::auth::principal::{Actor, Principal};
use crate::error::Error;
use crate::search::AccessScope;
use crate::search::scope::{Publication, Refusals};
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Access {
    /// `None`: the server itself (loaders, benches): everything, no audit.
    principal: Option<Arc<Principal>>,
    /// When the request is decided (epoch µs), from the server's clock.
    pub now: i64,
    delay_micros: i64,
    /// R6 failed at request time: the token's patient-facing access has lapsed.
    lapsed: bool,
    pub lang: Lang,
    /// What the request touched, for its AuditEvent.
    notes: Option<Arc<Notes>>,
}

impl Access {
    /// The server itself: no policy applies.
    pub fn internal() -> Access {
        Access {
            principal: None,
            now: 0,
            delay_micros: 0,
            lapsed: false,
            lang: Lang::Fr,
            notes: None,
        }
    }

    /// The access of a verified caller; R6 is checked here against the stored Patient
    /// or RelatedPerson, on the day of the request.
    pub async fn for_principal(
        state: &AppState,
        principal: Arc<Principal>,
        lang: Lang,
        notes: Option<Arc<Notes>>,
    ) -> Result<Access, Error> {
        let now = state.now();
        let settings = &state.config().policy;
        let lapsed = !representation::allowed(state, &principal.actor, now).await?;
        Ok(Access {
            principal: Some(principal),
            now,
            delay_micros: settings.delay_micros(),
            lapsed,
            lang,
            notes,
        })
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_deref()
    }

    pub fn actor(&self) -> Option<&Actor> {
        self.principal.as_deref().map(|p| &p.actor)
    }

    pub fn is_patient_facing(&self) -> bool {
        self.actor().is_some_and(Actor::is_patient_facing)
    }

    /// The patient a patient-facing caller acts for.
    pub fn own_patient(&self) -> Option<&str> {
        match self.actor()? {
            Actor::Patient { id } => Some(id),
            Actor::Representative { patient, .. } => Some(patient),
            _ => None,
        }
    }

    /// The SQL conditions of this caller's rules.
    pub fn scope(&self) -> AccessScope {
        let Some(actor) = self.actor() else {
            return AccessScope::unrestricted();
        };
        if self.lapsed {
            return AccessScope {
                nothing: true,
                ..AccessScope::default()
            };
        }
        let mut scope = match actor {
            Actor::Patient { id: patient } | Actor::Representative { patient, .. } => AccessScope {
                compartment: Some(patient.clone()),
                publication: Some(Publication {
                    patient: patient.clone(),
                    issued_before: self.now.saturating_sub(self.delay_micros),
                }),
                ..AccessScope::default()
            },
            Actor::Practitioner { id, patient } => AccessScope {
                compartment: patient.clone(),
                refusals: Some(Refusals {
                    practitioner: Some(id.clone()),
                }),
                ..AccessScope::default()
            },
            Actor::System => AccessScope {
                refusals: Some(Refusals::default()),
                ..AccessScope::default()
            },
        };
        // SMART v2 scope restrictions: part of what is visible (docs/auth.md).
        scope.restrictions = self
            .principal
            .as_deref()
            .and_then(|p| super::restrictions::of(p, self.now));
        scope
    }

    /// The scope a conditional write matches with: what hiding removes stays absent,
    /// but a refusal does not, so a feed's conditional update still finds its record
    /// (R4: writes land).
    pub fn match_scope(&self) -> AccessScope {
        AccessScope {
            refusals: None,
            ..self.scope()
        }
    }

    /// Records a resource the request touched (AuditEvent.entity).
    pub fn note(&self, res_type: &str, id: &str) {
        if let Some(n) = &self.notes {
            n.resource(res_type, id);
        }
    }

    /// Like [`Access::note`], with the patients whose compartments hold the resource
    /// (the group commit then need not look them up).
    pub fn note_owned(&self, res_type: &str, id: &str, owners: Vec<String>) {
        if let Some(n) = &self.notes {
            n.resource_owned(res_type, id, owners);
        }
    }

    pub fn note_query(&self, query: &str) {
        if let Some(n) = &self.notes {
            n.query(query);
        }
    }

    /// The same caller for one Bundle entry: what the entry touches is noted apart,
    /// so that the entry gets its own AuditEvent ([`Access::entry_done`]).
    pub fn for_entry(&self) -> Access {
        Access {
            notes: self.notes.as_ref().map(|_| Arc::new(Notes::default())),
            ..self.clone()
        }
    }

    /// Records a finished Bundle entry (run with `entry`, from [`Access::for_entry`]).
    pub fn entry_done(&self, method: &str, path: &str, status: u16, entry: &Access) {
        if let (Some(n), Some(e)) = (&self.notes, &entry.notes) {
            n.entry(EntryNote {
                method: method.to_string(),
                path: path.to_string(),
                status,
                notes: e.take(),
            });
        }
    }

    /// R4's 403.
    pub fn refused(&self) -> Error {
        Error::Forbidden(super::text(self.lang, "refused").to_string())
    }

    pub fn forbidden(&self, key: &str) -> Error {
        Error::Forbidden(super::text(self.lang, key).to_string())
    }
}

impl FromRequestParts<AppState> for Access {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Access, Error> {
        // Without a principal the token layer did not run: refuse rather than open up.
        let principal = parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .ok_or_else(|| Error::Forbidden("No access token was checked for this request".to_string()))?;
        let notes = parts.extensions.get::<Arc<Notes>>().cloned();
        let lang = Lang::from_headers(&parts.headers);
        Access::for_principal(state, principal, lang, notes).await
    }
}
