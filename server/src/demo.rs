//! `carnet demo`: a small, realistic data set in the configured database, with accounts
//! and a registered demo app, so that the SMART flow and the policy can be tried at once.
//!
//! Dates are relative to the day it runs: the lab series spans the past year, the
//! appointments are next week, the child is 8. Everything has a fixed id and goes in as
//! one transaction; a second run finds `Patient/demo-lea` and leaves the data alone, and
//! the accounts and the client are only created when missing, so running it again
//! changes nothing.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::accounts::{self, ActivationError, Status};
use crate::auth::clients::{self, Credential, Registration};
use crate::auth::i18n::Lang;
use crate::error::Error;
use crate::fhir::instant::format_micros;
use crate::policy::Access;
use crate::service::bundle::{self, Prefer};
use crate::state::AppState;

pub const CLIENT_ID: &str = "demo-app";
pub const REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";
pub const DEFAULT_PASSWORD: &str = "carnet-demo";
const CLIENT_SCOPES: &str = "launch/patient openid fhirUser patient/*.cruds user/*.cruds";
/// What the printed sign-in link asks for (a patient app reading the record).
const PATIENT_APP_SCOPES: &str = "launch/patient openid fhirUser patient/*.rs patient/Consent.cruds";

/// The demo accounts: username, fhirUser, who they are.
pub const ACCOUNTS: &[(&str, &str, &str)] = &[
    ("lea", "Patient/demo-lea", "Léa Tremblay, patient"),
    (
        "olivier",
        "RelatedPerson/demo-olivier",
        "Olivier Tremblay, father of Noah (8): sees Noah's record",
    ),
    ("dr.cote", "Practitioner/demo-cote", "Dre Julie Côté, family physician"),
];

const DAY: i64 = 86_400_000_000;

/// Loads the data set, creates the accounts (active, with `password`) and the client,
/// then prints how to sign in.
pub async fn run(state: &AppState, password: &str) -> anyhow::Result<()> {
    if password.chars().count() < crate::auth::passwords::MIN_LENGTH {
        anyhow::bail!(
            "the demo password must have at least {} characters",
            crate::auth::passwords::MIN_LENGTH
        );
    }
    // As the server's first start would: otherwise registering demo-app first would
    // leave the instance without its administration client.
    let admin_secret = crate::auth::bootstrap::first_run(state).await?;
    let loaded = load(state).await?;
    let mut account_lines = Vec::new();
    for (username, fhir_user, who) in ACCOUNTS {
        let done = account(state, username, fhir_user, password).await?;
        account_lines.push(format!("  {username:<9} {fhir_user:<28} {who} ({done})"));
    }
    let reg = Registration {
        client_id: CLIENT_ID.into(),
        name: "Carnet demo app".into(),
        redirect_uris: vec![REDIRECT_URI.into()],
        scopes: CLIENT_SCOPES.into(),
        credential: Credential::Public,
    };
    let client = clients::register(state.store(), &reg, state.now())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let base = state.base_url();
    let auth = state.config().auth_url();
    println!(
        "{}",
        if loaded {
            "Demo data loaded: 3 patients (Léa, her son Noah, Marc), 2 practitioners, a clinic."
        } else {
            "Demo data already present (Patient/demo-lea exists): left as it is."
        }
    );
    println!("  Léa (Patient/demo-lea): diabetes and cholesterol medications, an HbA1c and LDL series");
    println!("    with reference ranges, a chest X-ray report, a visit booked next week and one");
    println!("    proposed (she may book it), a glucose of 5 days ago (held back 30 days, R3) and");
    println!("    an HIV test (sensitive: held back until released, R2).");
    println!("  Noah (Patient/demo-noah), 8, with his father Olivier (RelatedPerson/demo-olivier).");
    println!("  Marc (Patient/demo-marc) refused that providers see his record (Consent, R4).");
    if let Some(path) = admin_secret {
        println!(
            "Registered the administration client 'carnet-admin'; its secret is in {}.",
            path.display()
        );
    }
    println!("Accounts (password: {password}):");
    for l in &account_lines {
        println!("{l}");
    }
    println!(
        "Demo app: client_id {CLIENT_ID} (public, PKCE), redirect_uri {REDIRECT_URI}{}",
        if client.created { "" } else { " (already registered)" }
    );
    let (verifier, challenge) = pkce()?;
    let scope = PATIENT_APP_SCOPES.replace(' ', "+");
    println!();
    println!("Sign in: start the server (carnet, same --database-url), then open in a browser");
    println!(
        "  {auth}/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={REDIRECT_URI}&scope={scope}&state=demo&aud={base}&code_challenge={challenge}&code_challenge_method=S256"
    );
    println!(
        "  sign in as lea; the 6-digit code is in the newest file of {}",
        state.config().outbox_dir.display()
    );
    println!("  the browser then goes to {REDIRECT_URI}?code=…&state=demo (nothing listens there: copy the code)");
    println!("Exchange the code for a token:");
    println!(
        "  curl -s -d grant_type=authorization_code -d client_id={CLIENT_ID} -d redirect_uri={REDIRECT_URI} -d code_verifier={verifier} -d code=CODE {auth}/token"
    );
    println!("and read the whole record:");
    println!("  curl -H \"Authorization: Bearer $TOKEN\" '{base}/Patient/demo-lea/$everything'");
    Ok(())
}

/// A PKCE verifier and its S256 challenge, for the printed link.
fn pkce() -> anyhow::Result<(String, String)> {
    use base64::Engine;
    let verifier = crate::auth::random_token().map_err(|e| anyhow::anyhow!("{e}"))?;
    let digest = Sha256::digest(verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    Ok((verifier, challenge))
}

/// Creates and activates an account unless it is active already; says what it did.
async fn account(state: &AppState, username: &str, fhir_user: &str, password: &str) -> anyhow::Result<&'static str> {
    if let Some(a) = accounts::by_fhir_user(state.store(), fhir_user).await?
        && a.status == Status::Active
    {
        return Ok("already active");
    }
    if let Some(other) = accounts::by_username(state.store(), username).await?
        && other.fhir_user != fhir_user
    {
        anyhow::bail!("the username {username} belongs to {} already", other.fhir_user);
    }
    let inv = accounts::invite(state, fhir_user, &[], None, Lang::Fr)
        .await
        .map_err(|e| anyhow::anyhow!("inviting {fhir_user}: {e}"))?;
    match accounts::activate(state, &inv.activation_code, username, password).await? {
        Ok(_) => Ok("created"),
        Err(e) => Err(anyhow::anyhow!("activating {fhir_user}: {}", describe(e))),
    }
}

fn describe(e: ActivationError) -> &'static str {
    match e {
        ActivationError::WeakPassword => "the password is too short",
        ActivationError::UsernameTaken => "the username is taken",
        ActivationError::BadCode => "the activation code was refused",
        ActivationError::Refused(_) => "the policy refuses this account (age or relationship)",
    }
}

/// The data set as one transaction, unless it is there already. `true` when loaded.
async fn load(state: &AppState) -> anyhow::Result<bool> {
    let mut conn = state.store().reader().await?;
    let present = crate::store::resources::current(&mut conn, "Patient", "demo-lea")
        .await?
        .is_some();
    drop(conn);
    if present {
        return Ok(false);
    }
    let entries: Vec<Value> = resources(state.now())
        .into_iter()
        .map(|r| {
            let url = format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap_or_default(),
                r["id"].as_str().unwrap_or_default()
            );
            json!({"fullUrl": format!("{}/{url}", state.base_url()), "resource": r,
                "request": {"method": "PUT", "url": url}})
        })
        .collect();
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    bundle::process(state, &Access::internal(), tx, Prefer::Minimal, &|_| Ok(()))
        .await
        .map_err(|e| anyhow::anyhow!("the demo data was refused: {}", explain(&e)))?;
    Ok(true)
}

fn explain(e: &Error) -> String {
    match e {
        Error::Invalid(issues) | Error::Unprocessable(issues) => issues
            .iter()
            .map(|i| format!("{} ({})", i.diagnostics, i.expression.as_deref().unwrap_or("-")))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn loinc(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display})
}

fn category(code: &str) -> Value {
    json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": code}]}])
}

fn reference(r: &str) -> Value {
    json!({"reference": r})
}

fn quantity(value: f64, unit: &str, ucum: &str) -> Value {
    json!({"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": ucum})
}

/// A final lab result of Léa's, issued `days` ago.
fn lab(
    id: &str,
    now: i64,
    days: i64,
    code: Value,
    value: Value,
    range: Option<Value>,
    interpretation: Option<&str>,
) -> Value {
    let at = format_micros(now - days * DAY);
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
        "category": category("laboratory"), "code": code,
        "subject": reference("Patient/demo-lea"), "effectiveDateTime": at, "issued": at,
        "performer": [reference("Organization/demo-clinic")], "valueQuantity": value});
    if let Some(r) = range {
        o["referenceRange"] = json!([r]);
    }
    if let Some(i) = interpretation {
        o["interpretation"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": i}]}]);
    }
    o
}

/// The demo resources, dated relative to `now` (epoch µs).
fn resources(now: i64) -> Vec<Value> {
    let day = |d: i64| format_micros(now + d * DAY);
    let date = |d: i64| day(d).chars().take(10).collect::<String>();
    // Noah turned 8 on the 15th of January: under 14, so his father has access (R6).
    let this_year = date(0).get(..4).and_then(|y| y.parse::<i32>().ok()).unwrap_or(2026);
    let noah_birth = format!("{}-01-15", this_year - 8);
    let hba1c = loinc("4548-4", "Hémoglobine A1c");
    let hba1c_range = json!({"low": quantity(4.0, "%", "%"), "high": quantity(6.0, "%", "%")});
    let ldl = loinc("13457-7", "Cholestérol LDL (calculé)");
    let ldl_range = json!({"high": quantity(3.4, "mmol/L", "mmol/L")});
    let mut out = vec![
        json!({"resourceType": "Organization", "id": "demo-clinic", "active": true,
            "name": "Clinique médicale du Plateau",
            "telecom": [{"system": "phone", "value": "514-555-0100"}],
            "address": [{"line": ["4200 rue Saint-Denis"], "city": "Montréal", "state": "QC", "postalCode": "H2J 2K8", "country": "CA"}]}),
        json!({"resourceType": "Location", "id": "demo-location", "status": "active",
            "name": "Clinique médicale du Plateau, 2e étage",
            "managingOrganization": reference("Organization/demo-clinic")}),
        json!({"resourceType": "Practitioner", "id": "demo-cote", "active": true,
            "name": [{"family": "Côté", "given": ["Julie"], "prefix": ["Dre"]}],
            "telecom": [{"system": "email", "value": "julie.cote@example.org"}]}),
        json!({"resourceType": "Practitioner", "id": "demo-roy", "active": true,
            "name": [{"family": "Roy", "given": ["Samuel"], "prefix": ["Dr"]}],
            "qualification": [{"code": {"text": "Radiologiste"}}]}),
        json!({"resourceType": "Patient", "id": "demo-lea", "active": true,
            "name": [{"family": "Tremblay", "given": ["Léa"]}], "gender": "female", "birthDate": "1985-03-12",
            "telecom": [{"system": "email", "value": "lea@example.org"}, {"system": "phone", "value": "514-555-0142"}],
            "address": [{"line": ["1234 avenue du Mont-Royal Est"], "city": "Montréal", "state": "QC", "postalCode": "H2J 1X5", "country": "CA"}],
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr-CA"}]}, "preferred": true}],
            "generalPractitioner": [reference("Practitioner/demo-cote")],
            "managingOrganization": reference("Organization/demo-clinic")}),
        json!({"resourceType": "Patient", "id": "demo-noah", "active": true,
            "name": [{"family": "Tremblay", "given": ["Noah"]}], "gender": "male", "birthDate": noah_birth,
            "generalPractitioner": [reference("Practitioner/demo-cote")],
            "managingOrganization": reference("Organization/demo-clinic")}),
        json!({"resourceType": "RelatedPerson", "id": "demo-olivier", "active": true,
            "patient": reference("Patient/demo-noah"),
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "FTH", "display": "father"}]}],
            "name": [{"family": "Tremblay", "given": ["Olivier"]}],
            "telecom": [{"system": "email", "value": "olivier@example.org"}]}),
        json!({"resourceType": "Patient", "id": "demo-marc", "active": true,
            "name": [{"family": "Gagnon", "given": ["Marc"]}], "gender": "male", "birthDate": "1962-09-30",
            "telecom": [{"system": "email", "value": "marc@example.org"}],
            "managingOrganization": reference("Organization/demo-clinic")}),
        // Léa: conditions and medications.
        json!({"resourceType": "Condition", "id": "demo-lea-diabetes",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes mellitus type 2"}], "text": "Diabète de type 2"},
            "subject": reference("Patient/demo-lea"), "onsetDateTime": "2019-06-01",
            "recorder": reference("Practitioner/demo-cote")}),
        json!({"resourceType": "Medication", "id": "demo-metformin",
            "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "861007", "display": "metformin hydrochloride 500 MG Oral Tablet"}], "text": "Metformine 500 mg, comprimé"}}),
        json!({"resourceType": "MedicationRequest", "id": "demo-lea-metformin", "status": "active", "intent": "order",
            "medicationReference": reference("Medication/demo-metformin"),
            "subject": reference("Patient/demo-lea"), "authoredOn": date(-200),
            "requester": reference("Practitioner/demo-cote"),
            "reasonReference": [reference("Condition/demo-lea-diabetes")],
            "dosageInstruction": [{"text": "1 comprimé deux fois par jour, aux repas"}]}),
        json!({"resourceType": "MedicationRequest", "id": "demo-lea-atorvastatin", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "617310", "display": "atorvastatin 20 MG Oral Tablet"}], "text": "Atorvastatine 20 mg, comprimé"},
            "subject": reference("Patient/demo-lea"), "authoredOn": date(-150),
            "requester": reference("Practitioner/demo-cote"),
            "dosageInstruction": [{"text": "1 comprimé au coucher"}]}),
        // Léa: a past visit, the X-ray report, appointments (one booked, one proposed).
        json!({"resourceType": "Encounter", "id": "demo-lea-visit", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
            "subject": reference("Patient/demo-lea"),
            "participant": [{"individual": reference("Practitioner/demo-cote")}],
            "period": {"start": day(-60), "end": day(-60)},
            "location": [{"location": reference("Location/demo-location")}],
            "serviceProvider": reference("Organization/demo-clinic")}),
        json!({"resourceType": "DiagnosticReport", "id": "demo-lea-chest-xray", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology"}]}],
            "code": loinc("36643-5", "Radiographie pulmonaire, 2 incidences"),
            "subject": reference("Patient/demo-lea"), "encounter": reference("Encounter/demo-lea-visit"),
            "effectiveDateTime": day(-58), "issued": day(-57),
            "performer": [reference("Organization/demo-clinic")],
            "resultsInterpreter": [reference("Practitioner/demo-roy")],
            "conclusion": "Poumons clairs. Pas de signe de condensation ni d'épanchement. Silhouette cardiaque normale."}),
        json!({"resourceType": "Appointment", "id": "demo-lea-followup", "status": "booked",
            "description": "Suivi du diabète", "start": format_micros(now + 7 * DAY), "end": format_micros(now + 7 * DAY + 30 * 60_000_000),
            "participant": [
                {"actor": reference("Patient/demo-lea"), "status": "accepted"},
                {"actor": reference("Practitioner/demo-cote"), "status": "accepted"},
                {"actor": reference("Location/demo-location"), "status": "accepted"}]}),
        json!({"resourceType": "Appointment", "id": "demo-lea-proposed", "status": "proposed",
            "description": "Prise de sang de contrôle (HbA1c, bilan lipidique)",
            "participant": [
                {"actor": reference("Patient/demo-lea"), "status": "needs-action"},
                {"actor": reference("Practitioner/demo-cote"), "status": "accepted"}],
            "requestedPeriod": [{"start": day(10), "end": day(17)}]}),
        // Léa: a glucose of five days ago, past nothing yet (held back 30 days, R3) …
        lab(
            "demo-lea-glucose-recent",
            now,
            5,
            loinc("2345-7", "Glucose"),
            quantity(7.9, "mmol/L", "mmol/L"),
            Some(json!({"low": quantity(3.9, "mmol/L", "mmol/L"), "high": quantity(6.1, "mmol/L", "mmol/L")})),
            Some("H"),
        ),
        // … and a sensitive result: held back until the care team releases it (R2).
        json!({"resourceType": "Observation", "id": "demo-lea-hiv", "status": "final",
            "category": category("laboratory"), "code": loinc("75622-1", "VIH 1 et 2, dépistage"),
            "subject": reference("Patient/demo-lea"), "effectiveDateTime": day(-40), "issued": day(-40),
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}], "text": "Négatif"}}),
        // Noah: vaccination and growth.
        json!({"resourceType": "Immunization", "id": "demo-noah-mmr", "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "94", "display": "MMRV"}], "text": "RRO-Var"},
            "patient": reference("Patient/demo-noah"), "occurrenceDateTime": format!("{}-06-10", this_year - 7),
            "performer": [{"actor": reference("Practitioner/demo-cote")}]}),
        json!({"resourceType": "Observation", "id": "demo-noah-weight", "status": "final",
            "category": category("vital-signs"), "code": loinc("29463-7", "Poids"),
            "subject": reference("Patient/demo-noah"), "effectiveDateTime": day(-90), "issued": day(-90),
            "valueQuantity": quantity(26.5, "kg", "kg")}),
        // Marc: a result, and his refusal (R4): providers no longer see his record.
        lab(
            "demo-marc-ldl",
            now,
            120,
            ldl.clone(),
            quantity(2.9, "mmol/L", "mmol/L"),
            Some(ldl_range.clone()),
            None,
        ),
        json!({"resourceType": "Consent", "id": "demo-marc-refusal", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": reference("Patient/demo-marc"), "dateTime": day(-3),
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
            "provision": {"type": "deny"}}),
    ];
    // Marc's result is his, not Léa's.
    if let Some(m) = out.iter_mut().find(|r| r["id"] == "demo-marc-ldl") {
        m["subject"] = reference("Patient/demo-marc");
    }
    // Léa's lab series: quarterly HbA1c and LDL over the past year, with ranges.
    for (i, (days, a1c, ldl_v)) in [(330, 8.1, 4.2), (240, 7.6, 3.6), (150, 7.2, 3.1), (60, 6.9, 2.6)]
        .into_iter()
        .enumerate()
    {
        out.push(lab(
            &format!("demo-lea-hba1c-{}", i + 1),
            now,
            days,
            hba1c.clone(),
            quantity(a1c, "%", "%"),
            Some(hba1c_range.clone()),
            Some("H"),
        ));
        out.push(lab(
            &format!("demo-lea-ldl-{}", i + 1),
            now,
            days,
            ldl.clone(),
            quantity(ldl_v, "mmol/L", "mmol/L"),
            Some(ldl_range.clone()),
            (ldl_v > 3.4).then_some("H"),
        ));
    }
    out
}
