//! Deterministic Synthea-style R4 data for benches and tests: Québec patients
//! (French-Canadian names with accents, RAMQ health insurance numbers, addresses) and,
//! per patient, encounters, laboratory Observations (about thirty common LOINC tests in
//! SI units with reference ranges), vital signs, Conditions, MedicationStatements,
//! DiagnosticReports (laboratory panels and imaging) and Appointments, referencing a
//! shared pool of Practitioners and Organizations.
//!
//! About 113 resources per patient, so `Generator::for_resources(seed, 1_000_000)`
//! makes ~8 850 patients. Patient `i`'s resources depend only on the seed and `i`, so
//! any slice of patients can be generated on its own, in any order. Every resource has
//! its id (`pat-000042`, `obs-000042-0007`, …) and references use `Type/id`, so the data
//! loads with PUTs, in transaction Bundles or through the library.
//!
//! Dates are relative to a fixed "today" ([`TODAY`]), never to the clock: the same
//! seed gives byte-identical JSON.

mod rng;
pub mod tables;
pub mod time;

use serde_json::{Map, Value, json};

pub use rng::Rng;
pub use tables::{LABS, Lab};

pub const RAMQ_SYSTEM: &str = "https://ramq.gouv.qc.ca/nam";
pub const LOINC: &str = "http://loinc.org";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// The generator's "today": 2025-06-01.
pub const TODAY: (i64, i64, i64) = (2025, 6, 1);

/// Resources per patient, on average (the patient included): 1 M resources is
/// about 8 850 patients.
pub const RESOURCES_PER_PATIENT: usize = 113;

#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    patients: usize,
}

impl Generator {
    pub fn new(seed: u64, patients: usize) -> Generator {
        Generator {
            seed,
            patients: patients.max(1),
        }
    }

    /// About `resources` resources in all.
    pub fn for_resources(seed: u64, resources: usize) -> Generator {
        Generator::new(seed, resources / RESOURCES_PER_PATIENT)
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn patients(&self) -> usize {
        self.patients
    }

    /// One organization per 500 patients, at least 3.
    pub fn organizations(&self) -> usize {
        (self.patients / 500).max(3)
    }

    /// One practitioner per 50 patients, at least 5.
    pub fn practitioners(&self) -> usize {
        (self.patients / 50).max(5)
    }

    pub fn patient_id(i: usize) -> String {
        format!("pat-{i:06}")
    }

    pub fn organization_id(i: usize) -> String {
        format!("org-{i:04}")
    }

    pub fn practitioner_id(i: usize) -> String {
        format!("prac-{i:05}")
    }

    /// Organizations then Practitioners: what every patient may reference.
    pub fn shared(&self) -> Vec<Value> {
        let mut out = Vec::with_capacity(self.organizations() + self.practitioners());
        for i in 0..self.organizations() {
            out.push(self.organization(i));
        }
        for i in 0..self.practitioners() {
            out.push(self.practitioner(i));
        }
        out
    }

    /// Patient `i` (first) and everything about them.
    pub fn patient(&self, i: usize) -> Vec<Value> {
        PatientGen::new(self, i).run()
    }

    /// Every resource: [`Generator::shared`], then each patient's.
    pub fn resources(&self) -> impl Iterator<Item = Value> + '_ {
        self.shared()
            .into_iter()
            .chain((0..self.patients).flat_map(|i| self.patient(i)))
    }

    fn organization(&self, i: usize) -> Value {
        let mut rng = Rng::stream(self.seed, 0x0_5EED_0000 + i as u64);
        let base = tables::ORGANIZATIONS[i % tables::ORGANIZATIONS.len()];
        let name = if i < tables::ORGANIZATIONS.len() {
            base.to_string()
        } else {
            format!("{base} – installation {}", i / tables::ORGANIZATIONS.len() + 1)
        };
        let (city, district, area) = *rng.pick(tables::CITIES);
        json!({
            "resourceType": "Organization",
            "id": Self::organization_id(i),
            "identifier": [{"system": "https://www.quebec.ca/sante/etablissements", "value": format!("{}", 11_040_000 + i * 17)}],
            "active": true,
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov", "display": "Healthcare Provider"}]}],
            "name": name,
            "telecom": [{"system": "phone", "value": format!("{area}-555-{:04}", rng.below(10_000)), "use": "work"}],
            // An organization's address is never `home` (R4 org-2).
            "address": [address(&mut rng, city, district, "work")],
        })
    }

    fn practitioner(&self, i: usize) -> Value {
        let mut rng = Rng::stream(self.seed, 0x0_9EAC_0000 + i as u64);
        let female = rng.chance(0.55);
        let given = *rng.pick(if female {
            tables::GIVEN_FEMALE
        } else {
            tables::GIVEN_MALE
        });
        let family = *rng.pick(tables::FAMILY);
        json!({
            "resourceType": "Practitioner",
            "id": Self::practitioner_id(i),
            "identifier": [{"system": "https://www.cmq.org/permis", "value": format!("{}-{:05}", 1 + i % 9, 10_000 + i)}],
            "active": true,
            "name": [{"use": "official", "family": family, "given": [given], "prefix": [if female { "Dre" } else { "Dr" }]}],
            "gender": if female { "female" } else { "male" },
            "qualification": [{"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360", "code": "MD", "display": "Doctor of Medicine"}]}}],
        })
    }
}

/// A transaction Bundle that PUTs each resource at its id.
pub fn transaction(resources: &[Value]) -> Value {
    let entries: Vec<Value> = resources
        .iter()
        .map(|r| {
            let ty = r["resourceType"].as_str().unwrap_or_default();
            let id = r["id"].as_str().unwrap_or_default();
            json!({"resource": r, "request": {"method": "PUT", "url": format!("{ty}/{id}")}})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// A transaction Bundle as Synthea writes them: every resource POSTed under a
/// `urn:uuid:` fullUrl, references between them by those URNs, ids left to the server.
/// References to resources outside `resources` stay as they are.
pub fn synthea_transaction(resources: &[Value]) -> Value {
    let urn = |ty: &str, id: &str| {
        // A stable UUID-shaped name for `Type/id` (the generator's ids are not UUIDs).
        let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        for b in ty.bytes().chain([b'/']).chain(id.bytes()) {
            h = (h ^ b as u128).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
        }
        let x = format!("{h:032x}");
        format!(
            "urn:uuid:{}-{}-{}-{}-{}",
            &x[0..8],
            &x[8..12],
            &x[12..16],
            &x[16..20],
            &x[20..32]
        )
    };
    let local: std::collections::HashMap<String, String> = resources
        .iter()
        .filter_map(|r| {
            let ty = r["resourceType"].as_str()?;
            let id = r["id"].as_str()?;
            Some((format!("{ty}/{id}"), urn(ty, id)))
        })
        .collect();
    let entries: Vec<Value> = resources
        .iter()
        .map(|r| {
            let ty = r["resourceType"].as_str().unwrap_or_default();
            let mut body = r.clone();
            let full = urn(ty, r["id"].as_str().unwrap_or_default());
            if let Some(m) = body.as_object_mut() {
                m.remove("id");
            }
            rewrite_refs(&mut body, &local);
            json!({"fullUrl": full, "resource": body, "request": {"method": "POST", "url": ty}})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

fn rewrite_refs(v: &mut Value, map: &std::collections::HashMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                match child {
                    Value::String(s) if k == "reference" => {
                        if let Some(u) = map.get(s.as_str()) {
                            *s = u.clone();
                        }
                    }
                    other => rewrite_refs(other, map),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| rewrite_refs(c, map)),
        _ => {}
    }
}

fn address(rng: &mut Rng, city: &str, district: &str, use_: &str) -> Value {
    let letters = b"ABCEGHJKLMNPRSTVWXYZ";
    let l = letters[rng.below(letters.len() as u64) as usize] as char;
    let postal = format!("{district} {}{l}{}", rng.below(10), rng.below(10));
    json!({
        "use": use_,
        "line": [format!("{} {}", rng.range(1, 9999), rng.pick(tables::STREETS))],
        "city": city,
        "state": "QC",
        "postalCode": postal,
        "country": "CA",
    })
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

fn reference(ty: &str, id: &str) -> Value {
    json!({"reference": format!("{ty}/{id}")})
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn quantity(value: f64, unit: &str) -> Value {
    json!({"value": value, "unit": unit, "system": UCUM, "code": unit})
}

/// ASCII upper-case letters of a name, accents dropped (for the RAMQ number).
fn ascii_letters(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let base = match c {
                'à' | 'â' | 'ä' | 'À' | 'Â' => 'A',
                'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' => 'E',
                'î' | 'ï' | 'Î' => 'I',
                'ô' | 'ö' | 'Ô' => 'O',
                'ù' | 'û' | 'ü' | 'Û' => 'U',
                'ç' | 'Ç' => 'C',
                c if c.is_ascii_alphabetic() => c.to_ascii_uppercase(),
                _ => return None,
            };
            Some(base)
        })
        .collect()
}

/// A RAMQ health insurance number (NAM): three letters of the family name, the first of
/// the given name, YYMMDD of birth (month + 50 for women), two administrative digits.
pub fn nam(family: &str, given: &str, birth_day: i64, female: bool, admin: u64) -> String {
    let mut fam = ascii_letters(family);
    while fam.len() < 3 {
        fam.push('X');
    }
    let g = ascii_letters(given).chars().next().unwrap_or('X');
    let (y, m, d) = time::civil_from_days(birth_day);
    let m = if female { m + 50 } else { m };
    format!("{}{g}{:02}{m:02}{d:02}{:02}", &fam[..3], y.rem_euclid(100), admin % 100)
}

struct PatientGen<'a> {
    g: &'a Generator,
    rng: Rng,
    n: usize,
    pid: String,
    out: Vec<Value>,
    counter: usize,
}

/// One encounter as the clinical resources of a visit see it.
struct Visit {
    id: String,
    day: i64,
    minute: i64,
    practitioner: String,
    org: String,
}

impl<'a> PatientGen<'a> {
    fn new(g: &'a Generator, n: usize) -> PatientGen<'a> {
        PatientGen {
            g,
            rng: Rng::stream(g.seed, n as u64 + 1),
            n,
            pid: Generator::patient_id(n),
            out: Vec::with_capacity(128),
            counter: 0,
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{:06}-{:04}", self.n, self.counter)
    }

    fn subject(&self) -> Value {
        reference("Patient", &self.pid)
    }

    fn run(mut self) -> Vec<Value> {
        let today = time::days_from_civil(TODAY.0, TODAY.1, TODAY.2);
        // Ages 0 to 99, weighted towards adults, as a clinic's patients are.
        let age_years = if self.rng.chance(0.12) {
            self.rng.range(0, 17)
        } else {
            self.rng.range(18, 99)
        };
        let birth = today - age_years * 365 - self.rng.range(0, 364);
        let female = self.rng.chance(0.52);
        let given = *self.rng.pick(if female {
            tables::GIVEN_FEMALE
        } else {
            tables::GIVEN_MALE
        });
        let second = *self.rng.pick(if female {
            tables::GIVEN_FEMALE
        } else {
            tables::GIVEN_MALE
        });
        let family = *self.rng.pick(tables::FAMILY);
        let (city, district, area) = *self.rng.pick(tables::CITIES);
        let gp = self.rng.below(self.g.practitioners() as u64) as usize;
        let org = self.rng.below(self.g.organizations() as u64) as usize;
        let gp_id = Generator::practitioner_id(gp);
        let org_id = Generator::organization_id(org);
        let nam_value = nam(family, given, birth, female, self.rng.below(100));
        let mut given_names = vec![Value::from(given)];
        if second != given && self.rng.chance(0.6) {
            given_names.push(Value::from(second));
        }
        let patient = json!({
            "resourceType": "Patient",
            "id": self.pid,
            "identifier": [
                {"use": "official",
                 "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "JHN", "display": "Jurisdictional health number (Canada)"}]},
                 "system": RAMQ_SYSTEM, "value": nam_value},
                {"use": "usual", "system": format!("urn:oid:2.16.124.10.101.1.60.100.{}", org), "value": format!("{:07}", 1_000_000 + self.n)}
            ],
            "active": true,
            "name": [{"use": "official", "family": family, "given": given_names}],
            "telecom": [{"system": "phone", "value": format!("{area}-555-{:04}", self.rng.below(10_000)), "use": "home"}],
            "gender": if female { "female" } else { "male" },
            "birthDate": time::date(birth),
            "address": [address(&mut self.rng, city, district, "home")],
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": if self.rng.chance(0.85) { "fr-CA" } else { "en-CA" }}]}, "preferred": true}],
            "generalPractitioner": [reference("Practitioner", &gp_id)],
            "managingOrganization": reference("Organization", &org_id),
        });
        self.out.push(patient);

        // Encounters over the last ten years (or since birth), oldest first.
        let mut visits = 4 + self.rng.range(0, 8);
        if age_years >= 60 {
            visits += 2;
        } else if age_years < 18 {
            visits -= 2;
        }
        let first_day = (today - 3650).max(birth + 1);
        let mut days: Vec<i64> = (0..visits).map(|_| self.rng.range(first_day, today - 1)).collect();
        days.sort_unstable();
        let adult = age_years >= 18;
        let mut chronic: Vec<usize> = Vec::new();
        for (k, day) in days.iter().enumerate() {
            let practitioner = if self.rng.chance(0.8) {
                gp_id.clone()
            } else {
                Generator::practitioner_id(self.rng.below(self.g.practitioners() as u64) as usize)
            };
            // Visits between 08:00 and 15:59 local time.
            let visit = Visit {
                id: self.next_id("enc"),
                day: *day,
                minute: self.rng.range(8 * 60, 16 * 60 - 1),
                practitioner,
                org: org_id.clone(),
            };
            self.encounter(&visit);
            self.vitals(&visit, adult);
            self.labs(&visit, adult);
            if self.rng.chance(0.1) {
                self.imaging(&visit);
            }
            // Conditions appear along the way; chronic ones bring medications.
            if k == 0 || self.rng.chance(0.3) {
                let c = self.rng.below(tables::CONDITIONS.len() as u64) as usize;
                if !chronic.contains(&c) {
                    chronic.push(c);
                    self.condition(&visit, c, today);
                }
            }
            if self.rng.chance(0.6) {
                self.medication(&visit, today);
            }
        }
        // Appointments: past ones fulfilled or missed, a few booked ahead.
        let appointments = self.rng.range(1, 3);
        for _ in 0..appointments {
            self.appointment(&gp_id, today);
        }
        self.out
    }

    fn encounter(&mut self, v: &Visit) {
        let (code, display, class) = *self.rng.pick(tables::ENCOUNTER_TYPES);
        let length = if class == "EMER" {
            self.rng.range(120, 480)
        } else {
            self.rng.range(15, 45)
        };
        let enc = json!({
            "resourceType": "Encounter",
            "id": v.id,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class},
            "type": [coding(SNOMED, code, display)],
            "subject": self.subject(),
            "participant": [{"individual": reference("Practitioner", &v.practitioner)}],
            "period": {"start": time::date_time(v.day, v.minute), "end": time::date_time(v.day, v.minute + length)},
            "serviceProvider": reference("Organization", &v.org),
        });
        self.out.push(enc);
    }

    fn observation_base(
        &mut self,
        v: &Visit,
        category: &str,
        code: &str,
        display: &str,
        delay: i64,
    ) -> Map<String, Value> {
        let status = if self.rng.chance(0.96) {
            "final"
        } else if self.rng.chance(0.5) {
            "amended"
        } else {
            "preliminary"
        };
        let cat_display = if category == "laboratory" {
            "Laboratory"
        } else {
            "Vital Signs"
        };
        let mut m = Map::new();
        m.insert("resourceType".into(), "Observation".into());
        m.insert("id".into(), self.next_id("obs").into());
        m.insert("status".into(), status.into());
        m.insert(
            "category".into(),
            json!([{"coding": [{"system": OBSERVATION_CATEGORY, "code": category, "display": cat_display}]}]),
        );
        m.insert("code".into(), coding(LOINC, code, display));
        m.insert("subject".into(), self.subject());
        m.insert("encounter".into(), reference("Encounter", &v.id));
        m.insert("effectiveDateTime".into(), time::date_time(v.day, v.minute).into());
        let second = self.rng.range(0, 59);
        m.insert("issued".into(), time::instant(v.day, v.minute + delay, second).into());
        m
    }

    fn vitals(&mut self, v: &Visit, adult: bool) {
        // Blood pressure (a panel with components) and heart rate at every visit.
        let mut bp = self.observation_base(
            v,
            "vital-signs",
            "85354-9",
            "Blood pressure panel with all children optional",
            0,
        );
        let sys = round(self.rng.normal(if adult { 126.0 } else { 105.0 }, 15.0).max(80.0), 0);
        let dia = round(self.rng.normal(if adult { 80.0 } else { 65.0 }, 9.0).max(45.0), 0);
        bp.insert(
            "component".into(),
            json!([
                {"code": coding(LOINC, "8480-6", "Systolic blood pressure"), "valueQuantity": quantity(sys, "mm[Hg]")},
                {"code": coding(LOINC, "8462-4", "Diastolic blood pressure"), "valueQuantity": quantity(dia, "mm[Hg]")},
            ]),
        );
        self.out.push(Value::Object(bp));
        let mut picks = vec![0usize];
        if self.rng.chance(0.5) {
            picks.push(1);
        }
        for extra in 2..tables::VITALS.len() {
            if self.rng.chance(0.2) {
                picks.push(extra);
            }
        }
        for p in picks {
            let (code, display, unit, mean, sd, decimals) = tables::VITALS[p];
            let (mean, sd) = match (p, adult) {
                (1, false) => (30.0, 12.0),
                (0, false) => (90.0, 12.0),
                _ => (mean, sd),
            };
            let mut o = self.observation_base(v, "vital-signs", code, display, 0);
            let value = round(self.rng.normal(mean, sd).max(mean * 0.3), decimals);
            o.insert("valueQuantity".into(), quantity(value, unit));
            self.out.push(Value::Object(o));
        }
    }

    fn labs(&mut self, v: &Visit, adult: bool) {
        let roll = self.rng.unit();
        let panel = if roll < 0.4 {
            Some((0, tables::METABOLIC))
        } else if roll < 0.7 {
            Some((1, tables::CBC))
        } else if roll < 0.9 && adult {
            Some((2, tables::LIPIDS))
        } else {
            None
        };
        let delay = self.rng.range(90, 480);
        let mut results = Vec::new();
        if let Some((_, (from, to))) = panel {
            for lab in &LABS[from..to] {
                results.push(self.lab(v, lab, delay));
            }
        }
        let singles = self.rng.range(0, 2);
        for _ in 0..singles {
            let (from, to) = tables::SINGLES;
            let lab = LABS[from + self.rng.below((to - from) as u64) as usize];
            self.lab(v, &lab, delay);
        }
        if let Some((p, _)) = panel
            && self.rng.chance(0.9)
        {
            let (code, display) = tables::PANELS[p];
            let dr = json!({
                "resourceType": "DiagnosticReport",
                "id": self.next_id("dr"),
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB", "display": "Laboratory"}]}],
                "code": coding(LOINC, code, display),
                "subject": self.subject(),
                "encounter": reference("Encounter", &v.id),
                "effectiveDateTime": time::date_time(v.day, v.minute),
                "issued": time::instant(v.day, v.minute + delay, 0),
                "performer": [reference("Organization", &v.org)],
                "result": results.iter().map(|id| reference("Observation", id)).collect::<Vec<_>>(),
            });
            self.out.push(dr);
        }
    }

    /// One laboratory result; returns its id.
    fn lab(&mut self, v: &Visit, lab: &Lab, delay: i64) -> String {
        let mut o = self.observation_base(v, "laboratory", lab.code, lab.display, delay);
        let id = o["id"].as_str().unwrap_or_default().to_string();
        let value = round(self.rng.normal(lab.mean, lab.sd).max(lab.mean * 0.1), lab.decimals);
        o.insert("valueQuantity".into(), quantity(value, lab.unit));
        let interpretation = match (lab.low, lab.high) {
            (Some(l), _) if value < l => Some(("L", "Low")),
            (_, Some(h)) if value > h => Some(("H", "High")),
            _ => Some(("N", "Normal")),
        };
        if let Some((code, display)) = interpretation {
            o.insert(
                "interpretation".into(),
                json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": code, "display": display}]}]),
            );
        }
        let mut range = Map::new();
        if let Some(l) = lab.low {
            range.insert("low".into(), quantity(l, lab.unit));
        }
        if let Some(h) = lab.high {
            range.insert("high".into(), quantity(h, lab.unit));
        }
        o.insert("referenceRange".into(), json!([range]));
        o.insert("performer".into(), json!([reference("Organization", &v.org)]));
        self.out.push(Value::Object(o));
        id
    }

    fn imaging(&mut self, v: &Visit) {
        let (code, display) = *self.rng.pick(tables::IMAGING);
        let conclusion = *self.rng.pick(tables::IMAGING_CONCLUSIONS);
        let delay = self.rng.range(60, 2 * 1440);
        let dr = json!({
            "resourceType": "DiagnosticReport",
            "id": self.next_id("dr"),
            "status": if self.rng.chance(0.95) { "final" } else { "preliminary" },
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology"}]}],
            "code": coding(LOINC, code, display),
            "subject": self.subject(),
            "encounter": reference("Encounter", &v.id),
            "effectiveDateTime": time::date_time(v.day, v.minute),
            "issued": time::instant(v.day, v.minute + delay, 0),
            "performer": [reference("Organization", &v.org)],
            "resultsInterpreter": [reference("Practitioner", &v.practitioner)],
            "conclusion": conclusion,
        });
        self.out.push(dr);
    }

    fn condition(&mut self, v: &Visit, c: usize, today: i64) {
        let (code, display) = tables::CONDITIONS[c];
        let acute = tables::ACUTE.contains(&code);
        let resolved_day = v.day + self.rng.range(7, 40);
        let resolved = acute && resolved_day < today;
        let status = if resolved { "resolved" } else { "active" };
        let mut cond = json!({
            "resourceType": "Condition",
            "id": self.next_id("cond"),
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": if acute { "encounter-diagnosis" } else { "problem-list-item" }}]}],
            "code": coding(SNOMED, code, display),
            "subject": self.subject(),
            "encounter": reference("Encounter", &v.id),
            "onsetDateTime": time::date_time(v.day, v.minute),
            "recordedDate": time::date_time(v.day, v.minute),
            "recorder": reference("Practitioner", &v.practitioner),
        });
        if resolved {
            cond["abatementDateTime"] = time::date_time(resolved_day, 9 * 60).into();
        }
        self.out.push(cond);
    }

    fn medication(&mut self, v: &Visit, today: i64) {
        let (code, display, dosage) = *self.rng.pick(tables::MEDICATIONS);
        let end = v.day + self.rng.range(10, 900);
        let mut period = json!({"start": time::date(v.day)});
        let status = if end < today {
            period["end"] = time::date(end).into();
            "completed"
        } else {
            "active"
        };
        let med = json!({
            "resourceType": "MedicationStatement",
            "id": self.next_id("med"),
            "status": status,
            "medicationCodeableConcept": coding(RXNORM, code, display),
            "subject": self.subject(),
            "context": reference("Encounter", &v.id),
            "effectivePeriod": period,
            "dateAsserted": time::date_time(v.day, v.minute),
            "informationSource": reference("Practitioner", &v.practitioner),
            "dosage": [{"text": dosage}],
        });
        self.out.push(med);
    }

    fn appointment(&mut self, gp: &str, today: i64) {
        let day = today + self.rng.range(-700, 120);
        let minute = self.rng.range(8 * 60, 16 * 60) / 15 * 15;
        let status = if day >= today {
            "booked"
        } else if self.rng.chance(0.85) {
            "fulfilled"
        } else if self.rng.chance(0.5) {
            "noshow"
        } else {
            "cancelled"
        };
        let appt = json!({
            "resourceType": "Appointment",
            "id": self.next_id("appt"),
            "status": status,
            "serviceType": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/service-type", "code": "124", "display": "General Practice"}]}],
            "description": "Rendez-vous de suivi",
            "start": format!("{}T{:02}:{:02}:00{}", time::date(day), minute / 60, minute % 60, time::offset(day)),
            "end": format!("{}T{:02}:{:02}:00{}", time::date(day), (minute + 20) / 60, (minute + 20) % 60, time::offset(day)),
            "minutesDuration": 20,
            "participant": [
                {"actor": self.subject(), "status": "accepted"},
                {"actor": reference("Practitioner", gp), "status": "accepted"},
            ],
        });
        self.out.push(appt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_about_a_hundred_per_patient() {
        let g = Generator::new(42, 200);
        assert_eq!(g.patient(17), g.patient(17));
        let total: usize = (0..g.patients()).map(|i| g.patient(i).len()).sum();
        let per = total as f64 / g.patients() as f64;
        assert!((80.0..=120.0).contains(&per), "{per} resources per patient");
        let p = &g.patient(3)[0];
        assert_eq!(p["resourceType"], "Patient");
        assert_eq!(p["identifier"][0]["system"], RAMQ_SYSTEM);
        let nam = p["identifier"][0]["value"].as_str().unwrap_or_default();
        assert_eq!(nam.len(), 12);
        assert!(nam[..4].chars().all(|c| c.is_ascii_uppercase()), "{nam}");
        assert!(nam[4..].chars().all(|c| c.is_ascii_digit()), "{nam}");
    }

    #[test]
    fn nam_format() {
        let birth = time::days_from_civil(1980, 2, 29);
        assert_eq!(nam("Côté", "Élise", birth, true, 12), "COTE80522912");
        assert_eq!(nam("Roy", "Jean", birth, false, 3), "ROYJ80022903");
    }
}
