//! Who may see what: the access policy (docs/policy.md) as conditions on one
//! `resources` row, added to every query that fetches resources.
//!
//! The query builder calls [`AccessScope::condition`] for every resource a search can
//! reach: the main query (so the condition applies before `LIMIT` and before counts),
//! each chain target, each `_has` source, and `_include` / `_revinclude` fetches. The
//! main query takes it as its two halves ([`AccessScope::visible`] and
//! [`AccessScope::not_refused`]), so that a page tests refusals only on the matches up
//! to its end, still before its `LIMIT` (`search::execute::Plan`). Read, vread and
//! history use the two halves so that a refusal can answer 403 where hiding answers
//! 404. Every condition is an index lookup in the tables of
//! `migrations/*/0005_policy_audit.sql`, which writes keep up to date.

use super::sql::{Bind, SqlQuery};

/// The caller's access scope, built per request by `policy::Access::scope`.
#[derive(Debug, Clone, Default)]
pub struct AccessScope {
    /// Nothing at all is visible (a representation that lapsed, an under-age patient).
    pub nothing: bool,
    /// R1: only the compartment of this Patient.
    pub compartment: Option<String>,
    /// R2/R3: results are visible only once published.
    pub publication: Option<Publication>,
    /// R4: records of patients who refused sharing are hidden.
    pub refusals: Option<Refusals>,
    /// SMART v2 scope restrictions (`policy::restrictions`), part of what is visible.
    pub restrictions: Option<std::sync::Arc<crate::policy::restrictions::Restrictions>>,
}

/// R2/R3 for a patient-facing caller.
#[derive(Debug, Clone)]
pub struct Publication {
    /// Whose preference (R3) applies.
    pub patient: String,
    /// Results issued at or before this instant (epoch µs, "now minus the delay") are
    /// past the delay.
    pub issued_before: i64,
}

/// R4 for a provider.
#[derive(Debug, Clone, Default)]
pub struct Refusals {
    /// A practitioner who consulted a record before its refusal keeps access to it.
    pub practitioner: Option<String>,
}

impl AccessScope {
    /// Everything is visible: internal callers (loaders, benches).
    pub fn unrestricted() -> AccessScope {
        AccessScope::default()
    }

    pub fn is_unrestricted(&self) -> bool {
        !self.nothing
            && self.compartment.is_none()
            && self.publication.is_none()
            && self.refusals.is_none()
            && self.restrictions.is_none()
    }

    /// A condition on the `resources` row aliased `alias` (columns `pk`, `res_type`,
    /// `res_id`, `last_updated`, `deleted`), binding its values into `q`; `None` when
    /// the scope does not restrict.
    pub fn condition(&self, q: &mut SqlQuery, alias: &str) -> Option<String> {
        let parts: Vec<String> = [self.visible(q, alias), self.not_refused(q, alias)]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" AND "))
    }

    /// R1, R2, R3 (and R6 through `nothing`): what hiding makes absent.
    pub fn visible(&self, q: &mut SqlQuery, alias: &str) -> Option<String> {
        if self.nothing {
            return Some("1 = 0".to_string());
        }
        let mut w = Vec::new();
        if let Some(p) = &self.compartment {
            w.push(format!(
                "{alias}.pk IN (SELECT pol_c.pk FROM patient_compartment pol_c WHERE pol_c.patient_id = {})",
                q.text(p)
            ));
        }
        if let Some(p) = &self.publication {
            let cut = q.bind(Bind::I64(Some(p.issued_before)));
            let patient = q.text(&p.patient);
            // Sensitive results only by release; others also by the patient's choice
            // or after the delay. Rows without a visibility record were never indexed
            // as results: hidden.
            w.push(format!(
                "({alias}.res_type NOT IN ('Observation', 'DiagnosticReport') OR EXISTS (SELECT 1 FROM \
                 result_visibility pol_rv WHERE pol_rv.pk = {alias}.pk AND pol_rv.status_ok = TRUE AND \
                 (pol_rv.released = TRUE OR (pol_rv.sensitive = FALSE AND (pol_rv.issued_at <= {cut} OR \
                 EXISTS (SELECT 1 FROM patient_result_preference pol_pp WHERE pol_pp.patient_id = {patient} \
                 AND pol_pp.immediate = TRUE))))))"
            ));
        }
        if let Some(r) = &self.restrictions {
            w.push(r.condition(q, alias));
        }
        (!w.is_empty()).then(|| w.join(" AND "))
    }

    /// R4: false for a record of a patient whose refusal is in force.
    pub fn not_refused(&self, q: &mut SqlQuery, alias: &str) -> Option<String> {
        let r = self.refusals.as_ref()?;
        let prior = match &r.practitioner {
            Some(p) => format!(
                " AND NOT EXISTS (SELECT 1 FROM prior_access pol_pa WHERE pol_pa.practitioner_id = {} \
                 AND pol_pa.patient_id = pol_pc.patient_id AND pol_pa.first_at < pol_pr.refused_at)",
                q.text(p)
            ),
            None => String::new(),
        };
        Some(format!(
            "NOT EXISTS (SELECT 1 FROM patient_compartment pol_pc JOIN patient_refusal pol_pr \
             ON pol_pr.patient_id = pol_pc.patient_id WHERE pol_pc.pk = {alias}.pk{prior})"
        ))
    }
}
