//! Searches over realistic generated data (`carnet-datagen`: 30 Québec patients, about
//! 3 400 resources), loaded over HTTP in transaction Bundles. Every expected result is
//! computed here by scanning the generated JSON, independently of the server's index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use carnet_datagen::{Generator, LOINC, RAMQ_SYSTEM, UCUM};
use carnet_tests::{TestServer, on_both_backends};
use reqwest::Method;
use serde_json::Value;

const SEED: u64 = 20_250_601;
const PATIENTS: usize = 30;

/// Lower case without accents: what a string search compares.
fn norm(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            c => c,
        })
        .collect()
}

struct Data {
    all: Vec<Value>,
}

impl Data {
    fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.all.iter().filter(move |r| r["resourceType"] == ty)
    }

    fn ids<'a>(it: impl Iterator<Item = &'a Value>) -> BTreeSet<String> {
        it.map(|r| r["id"].as_str().unwrap().to_string()).collect()
    }

    fn has_code(r: &Value, system: &str, code: &str) -> bool {
        r["code"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["system"] == system && c["code"] == code)
    }

    fn subject_id(r: &Value) -> &str {
        r["subject"]["reference"]
            .as_str()
            .unwrap()
            .trim_start_matches("Patient/")
    }

    fn families(p: &Value) -> Vec<String> {
        p["name"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["family"].as_str().map(str::to_string))
            .collect()
    }

    /// Patient id → its family names.
    fn family_by_patient(&self) -> BTreeMap<String, Vec<String>> {
        self.of_type("Patient")
            .map(|p| (p["id"].as_str().unwrap().to_string(), Self::families(p)))
            .collect()
    }
}

async fn load(s: &TestServer, data: &Data) {
    for chunk in data.all.chunks(250) {
        let bundle = carnet_datagen::transaction(chunk);
        let r = s.send_json(Method::POST, "", &bundle).await;
        let status = r.status().as_u16();
        assert_eq!(status, 200, "transaction: {}", r.text().await.unwrap());
    }
}

fn link(bundle: &Value, rel: &str) -> Option<String> {
    bundle["link"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["relation"] == rel)
        .map(|l| l["url"].as_str().unwrap().to_string())
}

fn entry_ids(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == mode)
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

async fn get(s: &TestServer, path: &str) -> Value {
    let (status, body) = s.get_json(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(body["type"], "searchset", "{path}");
    body
}

/// Every match over all pages (no id twice), and the first page's total.
async fn all_pages(s: &TestServer, path: &str) -> (BTreeSet<String>, Option<u64>, usize) {
    let mut page = get(s, path).await;
    let total = page["total"].as_u64();
    let mut seen = BTreeSet::new();
    let mut pages = 0;
    loop {
        pages += 1;
        for id in entry_ids(&page, "match") {
            assert!(seen.insert(id.clone()), "{path}: {id} on two pages");
        }
        match link(&page, "next") {
            Some(next) => page = get(s, &next).await,
            None => break,
        }
        assert!(pages < 1000, "{path}: paging does not end");
    }
    (seen, total, pages)
}

/// The matches over all pages are exactly `want`, and the total (asked for, so that
/// the count's SQL is checked too) says so.
async fn expect(s: &TestServer, path: &str, want: &BTreeSet<String>) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (got, total, _) = all_pages(s, &format!("{path}{sep}_total=accurate")).await;
    assert_eq!(&got, want, "{path} on {:?}", s.backend);
    assert_eq!(total, Some(want.len() as u64), "{path}: total on {:?}", s.backend);
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn generated_data_searches(s: &TestServer) {
    let g = Generator::new(SEED, PATIENTS);
    let data = Data {
        all: g.resources().collect(),
    };
    assert!(data.all.len() > 2_500, "{} resources", data.all.len());
    let started = std::time::Instant::now();
    load(s, &data).await;
    eprintln!(
        "{:?}: loaded {} resources in {:?}",
        s.backend,
        data.all.len(),
        started.elapsed()
    );
    let started = std::time::Instant::now();

    let patients: Vec<&Value> = data.of_type("Patient").collect();
    let observations: Vec<&Value> = data.of_type("Observation").collect();
    let families = data.family_by_patient();

    // Counts of everything.
    for ty in [
        "Patient",
        "Observation",
        "Encounter",
        "Condition",
        "MedicationStatement",
        "DiagnosticReport",
        "Appointment",
    ] {
        let b = get(s, &format!("{ty}?_summary=count")).await;
        assert_eq!(
            b["total"].as_u64().unwrap() as usize,
            data.of_type(ty).count(),
            "{ty} count on {:?}",
            s.backend
        );
        assert!(b.get("entry").is_none());
    }

    // Patients by family name: prefix, case- and accent-insensitive.
    for q in ["cot", "Côté", "BEL", "gag", "tremblay", "st-p"] {
        let want = Data::ids(
            patients
                .iter()
                .copied()
                .filter(|p| Data::families(p).iter().any(|f| norm(f).starts_with(&norm(q)))),
        );
        expect(s, &format!("Patient?family={}", enc(q)), &want).await;
    }
    // Someone's family name, to be sure a name search finds something.
    let fam0 = Data::families(patients[0]).remove(0);
    let want: BTreeSet<String> = families
        .iter()
        .filter(|(_, fs)| fs.iter().any(|f| norm(f).starts_with(&norm(&fam0))))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!want.is_empty());
    expect(s, &format!("Patient?name={}", enc(&fam0)), &want).await;

    // Patients by RAMQ number, with and without the system.
    for p in patients.iter().step_by(7) {
        let nam = p["identifier"][0]["value"].as_str().unwrap();
        let want = Data::ids(patients.iter().copied().filter(|q| {
            q["identifier"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["system"] == RAMQ_SYSTEM && i["value"] == nam)
        }));
        assert!(want.contains(p["id"].as_str().unwrap()));
        expect(
            s,
            &format!("Patient?identifier={}", enc(&format!("{RAMQ_SYSTEM}|{nam}"))),
            &want,
        )
        .await;
        expect(s, &format!("Patient?identifier={nam}"), &want).await;
    }

    // Observations of a patient with a code (subject and patient parameters).
    for (pid, code) in [
        ("pat-000001", "718-7"),
        ("pat-000007", "14749-6"),
        ("pat-000013", "8867-4"),
    ] {
        let want = Data::ids(
            observations
                .iter()
                .copied()
                .filter(|o| Data::subject_id(o) == pid && Data::has_code(o, LOINC, code)),
        );
        expect(
            s,
            &format!(
                "Observation?subject=Patient/{pid}&code={}",
                enc(&format!("{LOINC}|{code}"))
            ),
            &want,
        )
        .await;
        expect(s, &format!("Observation?patient={pid}&code={code}"), &want).await;
    }

    // A code in a date range: visits are 08:00–16:00 local (UTC−4/−5), so the local date
    // is the UTC date and day boundaries are unambiguous.
    let in_range = |o: &Value, from: &str, to: &str| {
        let d = &o["effectiveDateTime"].as_str().unwrap()[..10];
        d >= from && d < to
    };
    for (code, from, to) in [
        ("14749-6", "2020-01-01", "2022-01-01"),
        ("718-7", "2023-03-15", "2023-09-01"),
    ] {
        let want = Data::ids(
            observations
                .iter()
                .copied()
                .filter(|o| Data::has_code(o, LOINC, code) && in_range(o, from, to)),
        );
        assert!(!want.is_empty(), "{code} {from}..{to}");
        expect(
            s,
            &format!("Observation?code={code}&date=ge{from}&date=lt{to}&_count=20"),
            &want,
        )
        .await;
    }

    // Value greater than a threshold finer than the data's one decimal.
    let glucose_high = Data::ids(
        observations
            .iter()
            .copied()
            .filter(|o| Data::has_code(o, LOINC, "14749-6") && o["valueQuantity"]["value"].as_f64().unwrap() > 7.05),
    );
    assert!(!glucose_high.is_empty());
    expect(
        s,
        &format!(
            "Observation?code=14749-6&value-quantity=gt7.05|{}",
            enc(&format!("{UCUM}|mmol/L"))
        ),
        &glucose_high,
    )
    .await;
    expect(s, "Observation?code=14749-6&value-quantity=gt7.05", &glucose_high).await;

    // _include of the subjects: exactly the distinct patients of the matches.
    let a1c: Vec<&Value> = observations
        .iter()
        .copied()
        .filter(|o| Data::has_code(o, LOINC, "4548-4") && in_range(o, "2021-01-01", "2030-01-01"))
        .collect();
    let want_subjects: BTreeSet<String> = a1c.iter().map(|o| Data::subject_id(o).to_string()).collect();
    assert!(!want_subjects.is_empty());
    let b = get(
        s,
        "Observation?code=4548-4&date=ge2021-01-01&_include=Observation:subject&_count=1000",
    )
    .await;
    let matched: BTreeSet<String> = entry_ids(&b, "match").into_iter().collect();
    assert_eq!(
        matched,
        Data::ids(a1c.iter().copied()),
        "HbA1c since 2021 on {:?}",
        s.backend
    );
    let included: BTreeSet<String> = entry_ids(&b, "include").into_iter().collect();
    assert_eq!(included, want_subjects, "_include subjects on {:?}", s.backend);

    // Chain: observations whose subject has a family name.
    let want = Data::ids(observations.iter().copied().filter(|o| {
        Data::has_code(o, LOINC, "718-7")
            && families[Data::subject_id(o)]
                .iter()
                .any(|f| norm(f).starts_with(&norm(&fam0)))
    }));
    assert!(!want.is_empty());
    expect(
        s,
        &format!("Observation?subject:Patient.family={}&code=718-7", enc(&fam0)),
        &want,
    )
    .await;

    // Reverse chain: patients with an HbA1c.
    let want: BTreeSet<String> = observations
        .iter()
        .filter(|o| Data::has_code(o, LOINC, "4548-4"))
        .map(|o| Data::subject_id(o).to_string())
        .collect();
    assert!(!want.is_empty() && want.len() < PATIENTS);
    expect(s, "Patient?_has:Observation:patient:code=4548-4", &want).await;
    expect(s, "Patient?_has:Observation:patient:code=4548-4&_count=5", &want).await;

    // Counts without entries.
    let hb = observations
        .iter()
        .filter(|o| Data::has_code(o, LOINC, "718-7"))
        .count();
    let b = get(
        s,
        &format!("Observation?code={}&_summary=count", enc(&format!("{LOINC}|718-7"))),
    )
    .await;
    assert_eq!(b["total"].as_u64().unwrap() as usize, hb);
    assert!(b.get("entry").is_none());
    let labs = observations
        .iter()
        .filter(|o| o["category"][0]["coding"][0]["code"] == "laboratory" && o["status"] == "final")
        .count();
    let b = get(s, "Observation?category=laboratory&status=final&_summary=count").await;
    assert_eq!(
        b["total"].as_u64().unwrap() as usize,
        labs,
        "final labs on {:?}",
        s.backend
    );

    // Paging through every page of a large result: all of one patient's observations
    // seven at a time, and all glucose results fifty at a time.
    let want = Data::ids(
        observations
            .iter()
            .copied()
            .filter(|o| Data::subject_id(o) == "pat-000002"),
    );
    let (got, total, pages) = all_pages(s, "Observation?patient=pat-000002&_count=7&_total=accurate").await;
    assert_eq!(got, want);
    assert_eq!(total, Some(want.len() as u64));
    assert_eq!(pages, want.len().div_ceil(7).max(1));
    let want = Data::ids(
        observations
            .iter()
            .copied()
            .filter(|o| Data::has_code(o, LOINC, "14749-6")),
    );
    let (got, _, pages) = all_pages(s, "Observation?code=14749-6&_count=50").await;
    assert_eq!(got, want);
    assert!(pages > 2, "{pages} pages");
    eprintln!("{:?}: searches in {:?}", s.backend, started.elapsed());
}

on_both_backends!(generated_data_searches);
