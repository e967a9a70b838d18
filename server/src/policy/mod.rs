//! The access policy of `../shared/spec/policy.md` (R1–R7), enforced in the data-access
//! path: an [`Access`] built once per request from the verified `Principal` produces
//! the `AccessScope` whose SQL conditions every fetch of resources carries; writes keep
//! the tables those conditions read ([`maintain`]). See docs/policy.md.

pub mod access;
pub mod consent;
pub mod maintain;
pub mod patient_writes;
pub mod release;
pub mod representation;
pub mod restrictions;
pub mod settings;
pub mod visibility;
pub mod write_scope;

pub use access::Access;

use crate::auth::i18n::Lang;

/// OperationOutcome texts of the policy, French by default.
pub fn text(lang: Lang, key: &str) -> &'static str {
    let (fr, en) = match key {
        "refused" => (
            "Le patient a refusé que son dossier soit partagé avec les intervenants.",
            "The patient refused sharing their record with providers.",
        ),
        "read-only" => (
            "Vous pouvez consulter ce dossier, mais pas le modifier ainsi.",
            "You may read this record, but not change it this way.",
        ),
        "consent-own" => (
            "Vous ne pouvez enregistrer que vos propres consentements.",
            "You may only record your own consents.",
        ),
        "patient-contact" => (
            "Vous ne pouvez modifier que vos coordonnées (téléphone, courriel, adresse, langue).",
            "You may only change your contact details (telecom, address, language).",
        ),
        "appointment" => (
            "Vous pouvez seulement annuler un rendez-vous, accepter votre participation ou réserver un rendez-vous proposé.",
            "You may only cancel an appointment, accept your participation or book a proposed appointment.",
        ),
        "appointment-create" => (
            "Les rendez-vous se prennent sur invitation de l'équipe soignante.",
            "Appointments are booked by invitation of the care team.",
        ),
        "audit-immutable" => (
            "Le journal des accès ne peut être ni modifié ni supprimé.",
            "The access log can be neither changed nor deleted.",
        ),
        "release-practitioner" => (
            "Seul un intervenant peut libérer un résultat.",
            "Only a practitioner can release a result.",
        ),
        _ => ("Accès refusé.", "Access refused."),
    };
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
    }
}
