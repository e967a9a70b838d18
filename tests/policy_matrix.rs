//! The policy matrix (issue 5, point 9): each rule × each read path × each actor, over
//! HTTP on both backends, against one shared data set per backend. Each row says what
//! an actor gets for a request: a status, or exactly which resources (across every
//! page, walked with `_count=1` through the `next` links) and the total. Every body of
//! every page is also checked for the ids the actor may not see.
//!
//! The data set (names used in the rows):
//! - `A` adult patient: `oA` (published), `oAnew` (final, issued now: R3 delay),
//!   `oAsens` (HIV test: R2), `eA` encounter of `oA`, `dA` (published report of `oA`),
//!   `dAnew` (report issued now: R3);
//! - `B` adult patient who refused sharing (R4, Consent `cB`) after practitioner `P1`
//!   read `oB`: `oB` (encounter `eB`);
//! - `K` child who turns 14 at the next UTC midnight, `oK`; `rpK` their mother;
//! - `M` adult, `oM`; `rpM` their mandatary (POWATT) whose period ends today;
//! - `F` adult; `rpF` a friend (no relationship that grants access);
//! - practitioners `P1` (consulted B before the refusal) and `P2` (never did).
//!
//! Actors: `patA` (Patient A), `mom` (rpK for K), `mand` (rpM for M), `p1`, `p2`
//! (practitioners), `sys` (a client_credentials feed). After the rows run, the clock
//! crosses midnight: K is 14, rpM's period is over, and the `after` rows run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use carnet_tests::{TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const DAY: i64 = 86_400_000_000;
const LONG_AGO: &str = "2001-01-01T00:00:00Z";

/// What a row expects.
enum Want {
    /// This status (a read, vread, instance history, operation).
    Status(u16),
    /// A 200 Bundle whose entries, over all pages, are exactly these resources; for a
    /// search (asked with `_total=accurate`), every page's `total` counts the `match`
    /// entries.
    Found(&'static [&'static str]),
    /// `_summary=count`: this total and no entries.
    Count(u64),
}
use Want::*;

struct Row(&'static str, &'static str, Want);

/// Who may see what at all (the union of every row's answer must stay inside).
fn visible(actor: &str, world: &World) -> BTreeSet<String> {
    let names: &[&str] = match actor {
        "patA" => &["A", "oA", "eA", "dA"],
        "mom" => &["K", "oK", "rpK"],
        "mand" => &["M", "oM", "rpM"],
        "p1" => return world.ids.keys().cloned().collect(),
        "p2" | "sys" => {
            return world
                .ids
                .keys()
                .filter(|k| !["B", "oB", "eB", "cB"].contains(&k.as_str()))
                .cloned()
                .collect();
        }
        _ => &[],
    };
    names.iter().map(|s| s.to_string()).collect()
}

const OBS_PROVIDER: &[&str] = &["oA", "oAnew", "oAsens", "oK", "oM"];

/// The rows: (actor, request, expected). `{X}` is the id of the resource named X.
fn rows() -> Vec<Row> {
    vec![
        // read: R1 compartment, R2 sensitive, R3 delay, R4 refusal (403 to providers).
        Row("patA", "Observation/{oA}", Status(200)),
        Row("patA", "Observation/{oAnew}", Status(404)),
        Row("patA", "Observation/{oAsens}", Status(404)),
        Row("patA", "DiagnosticReport/{dA}", Status(200)),
        Row("patA", "DiagnosticReport/{dAnew}", Status(404)),
        Row("patA", "Observation/{oB}", Status(404)),
        Row("patA", "Patient/{B}", Status(404)),
        Row("patA", "Practitioner/{P1}", Status(404)),
        Row("mom", "Observation/{oK}", Status(200)),
        Row("mom", "Patient/{K}", Status(200)),
        Row("mom", "Observation/{oA}", Status(404)),
        Row("mand", "Observation/{oM}", Status(200)),
        Row("mand", "Observation/{oK}", Status(404)),
        Row("p1", "Observation/{oB}", Status(200)),
        Row("p1", "Observation/{oAsens}", Status(200)),
        Row("p2", "Observation/{oB}", Status(403)),
        Row("p2", "Patient/{B}", Status(403)),
        Row("p2", "DiagnosticReport/{dAnew}", Status(200)),
        Row("sys", "Observation/{oB}", Status(403)),
        Row("sys", "Consent/{cB}", Status(403)),
        Row("sys", "Observation/{oAnew}", Status(200)),
        // vread
        Row("patA", "Observation/{oA}/_history/1", Status(200)),
        Row("patA", "Observation/{oAsens}/_history/1", Status(404)),
        Row("patA", "Observation/{oB}/_history/1", Status(404)),
        Row("mom", "Observation/{oM}/_history/1", Status(404)),
        Row("p1", "Observation/{oB}/_history/1", Status(200)),
        Row("p2", "Observation/{oB}/_history/1", Status(403)),
        Row("sys", "Observation/{oB}/_history/1", Status(403)),
        // instance history
        Row("patA", "Observation/{oA}/_history", Found(&["oA"])),
        Row("patA", "Observation/{oAnew}/_history", Status(404)),
        Row("mand", "Observation/{oK}/_history", Status(404)),
        Row("p1", "Observation/{oB}/_history", Found(&["oB"])),
        Row("p2", "Observation/{oB}/_history", Status(403)),
        Row("sys", "Patient/{B}/_history", Status(403)),
        // type history, paged
        Row("patA", "Observation/_history?_count=1", Found(&["oA"])),
        Row("mom", "Observation/_history?_count=1", Found(&["oK"])),
        Row("mand", "Observation/_history?_count=1", Found(&["oM"])),
        Row(
            "p1",
            "Observation/_history?_count=1",
            Found(&["oA", "oAnew", "oAsens", "oB", "oK", "oM"]),
        ),
        Row("p2", "Observation/_history?_count=1", Found(OBS_PROVIDER)),
        Row("sys", "DiagnosticReport/_history?_count=1", Found(&["dA", "dAnew"])),
        Row("patA", "DiagnosticReport/_history?_count=1", Found(&["dA"])),
        // system history, paged
        Row("patA", "_history?_count=1", Found(&["A", "oA", "eA", "dA"])),
        Row("mom", "_history?_count=1", Found(&["K", "oK", "rpK"])),
        Row("mand", "_history?_count=1", Found(&["M", "oM", "rpM"])),
        // search, paged
        Row("patA", "Observation?_count=1", Found(&["oA"])),
        Row("mom", "Observation?_count=1", Found(&["oK"])),
        Row("mand", "Observation?_count=1", Found(&["oM"])),
        Row(
            "p1",
            "Observation?_count=1",
            Found(&["oA", "oAnew", "oAsens", "oB", "oK", "oM"]),
        ),
        Row("p2", "Observation?_count=1", Found(OBS_PROVIDER)),
        Row("sys", "Observation?_count=1", Found(OBS_PROVIDER)),
        Row("patA", "DiagnosticReport?_count=1", Found(&["dA"])),
        Row("p2", "DiagnosticReport?_count=1", Found(&["dA", "dAnew"])),
        Row("patA", "Patient?_count=1", Found(&["A"])),
        Row("mom", "RelatedPerson?_count=1", Found(&["rpK"])),
        Row("p2", "Patient?_count=1", Found(&["A", "K", "M", "F"])),
        Row("p1", "Patient?_count=1", Found(&["A", "B", "K", "M", "F"])),
        Row("patA", "Observation?subject=Patient/{B}&_count=1", Found(&[])),
        Row("sys", "Observation?subject=Patient/{B}&_count=1", Found(&[])),
        Row("p1", "Observation?subject=Patient/{B}&_count=1", Found(&["oB"])),
        // _summary=count
        Row("patA", "Observation?_summary=count", Count(1)),
        Row("mom", "Observation?_summary=count", Count(1)),
        Row("mand", "Observation?_summary=count", Count(1)),
        Row("p1", "Observation?_summary=count", Count(6)),
        Row("p2", "Observation?_summary=count", Count(5)),
        Row("sys", "Observation?_summary=count", Count(5)),
        Row("patA", "DiagnosticReport?_summary=count", Count(1)),
        Row("sys", "Patient?_summary=count", Count(4)),
        // _include (and :iterate)
        Row(
            "patA",
            "Observation?_include=Observation:subject&_count=1",
            Found(&["oA", "A"]),
        ),
        Row(
            "mom",
            "Observation?_include=Observation:subject&_count=1",
            Found(&["oK", "K"]),
        ),
        Row(
            "p2",
            "Observation?_include=Observation:subject&_count=1",
            Found(&["oA", "oAnew", "oAsens", "oK", "oM", "A", "K", "M"]),
        ),
        Row(
            "p1",
            "Observation?code=718-7&_include=Observation:subject&_count=1",
            Found(&["oA", "oAnew", "oB", "oK", "oM", "A", "B", "K", "M"]),
        ),
        Row(
            "patA",
            "DiagnosticReport?_include=DiagnosticReport:result&_count=1",
            Found(&["dA", "oA"]),
        ),
        Row(
            "patA",
            "DiagnosticReport?_include=DiagnosticReport:result&_include:iterate=Observation:encounter&_count=1",
            Found(&["dA", "oA", "eA"]),
        ),
        Row(
            "p2",
            "Encounter?_include=Encounter:subject&_count=1",
            Found(&["eA", "A"]),
        ),
        Row(
            "p1",
            "Encounter?_include=Encounter:subject&_count=1",
            Found(&["eA", "eB", "A", "B"]),
        ),
        // _revinclude (and :iterate)
        Row(
            "patA",
            "Patient?_revinclude=Observation:subject&_count=1",
            Found(&["A", "oA"]),
        ),
        Row(
            "mand",
            "Patient?_revinclude=Observation:subject&_count=1",
            Found(&["M", "oM"]),
        ),
        Row(
            "sys",
            "Patient?_revinclude=Observation:subject&_count=1",
            Found(&["A", "K", "M", "F", "oA", "oAnew", "oAsens", "oK", "oM"]),
        ),
        Row(
            "patA",
            "Patient?_id={A},{B}&_revinclude=Encounter:subject&_revinclude:iterate=Observation:encounter",
            Found(&["A", "eA", "oA"]),
        ),
        Row(
            "p1",
            "Patient?_id={A},{B}&_revinclude=Encounter:subject&_revinclude:iterate=Observation:encounter",
            Found(&["A", "B", "eA", "eB", "oA", "oB"]),
        ),
        Row(
            "p2",
            "Patient?_id={A},{B}&_revinclude=Encounter:subject&_revinclude:iterate=Observation:encounter",
            Found(&["A", "eA", "oA"]),
        ),
        Row(
            "patA",
            "Encounter?_revinclude=Observation:encounter&_revinclude:iterate=DiagnosticReport:result",
            Found(&["eA", "oA", "dA"]),
        ),
        // chains
        Row("patA", "Observation?subject:Patient.family=Beta", Found(&[])),
        Row(
            "patA",
            "Observation?subject:Patient.family=Alpha&_count=1",
            Found(&["oA"]),
        ),
        Row("p1", "Observation?subject:Patient.family=Beta", Found(&["oB"])),
        Row("p2", "Observation?subject:Patient.family=Beta", Found(&[])),
        Row("sys", "Observation?subject:Patient.family=Beta", Found(&[])),
        Row("sys", "Observation?encounter.subject:Patient.family=Beta", Found(&[])),
        Row(
            "p1",
            "Observation?encounter.subject:Patient.family=Beta",
            Found(&["oB"]),
        ),
        Row("mom", "Observation?subject:Patient.family=Alpha", Found(&[])),
        // _has (a hidden resource must not make its target match)
        Row("patA", "Patient?_has:Observation:subject:code=75622-1", Found(&[])),
        Row("p2", "Patient?_has:Observation:subject:code=75622-1", Found(&["A"])),
        Row("patA", "Patient?_has:Observation:subject:code=718-7", Found(&["A"])),
        Row(
            "p1",
            "Patient?_has:Observation:subject:code=718-7&_count=1",
            Found(&["A", "B", "K", "M"]),
        ),
        Row(
            "p2",
            "Patient?_has:Observation:subject:code=718-7&_count=1",
            Found(&["A", "K", "M"]),
        ),
        Row(
            "sys",
            "Encounter?_has:Observation:encounter:subject.family=Beta",
            Found(&[]),
        ),
        // compartment search
        Row("patA", "Patient/{A}/Observation?_count=1", Found(&["oA"])),
        Row("patA", "Patient/{B}/Observation", Found(&[])),
        Row("p1", "Patient/{B}/Observation", Found(&["oB"])),
        Row("p2", "Patient/{B}/Observation", Found(&[])),
        Row("sys", "Patient/{B}/Encounter", Found(&[])),
        Row("mom", "Patient/{K}/Observation", Found(&["oK"])),
        // system search
        Row("patA", "?_type=Observation,Patient&_count=1", Found(&["A", "oA"])),
        Row(
            "mand",
            "?_type=Observation,Patient,RelatedPerson&_count=1",
            Found(&["M", "oM", "rpM"]),
        ),
        Row(
            "p2",
            "?_type=Observation,Patient&_count=1",
            Found(&["A", "K", "M", "F", "oA", "oAnew", "oAsens", "oK", "oM"]),
        ),
        Row("sys", "?_type=Encounter,Consent", Found(&["eA"])),
        Row("p1", "?_type=Encounter,Consent", Found(&["eA", "eB", "cB"])),
    ]
}

/// Rows once the clock has crossed midnight: K is 14, rpM's mandate has ended.
fn after_rows() -> Vec<Row> {
    vec![
        Row("mom", "Observation/{oK}", Status(404)),
        Row("mom", "Patient/{K}", Status(404)),
        Row("mom", "Observation?_count=1", Found(&[])),
        Row("mom", "Observation?_summary=count", Count(0)),
        Row("mom", "_history?_count=1", Found(&[])),
        Row("mom", "Patient/{K}/Observation", Found(&[])),
        Row("mand", "Observation/{oM}", Status(404)),
        Row("mand", "Observation?_count=1", Found(&[])),
        Row("mand", "Observation/_history", Found(&[])),
        Row("mand", "Patient?_revinclude=Observation:subject", Found(&[])),
        Row("patA", "Observation?_count=1", Found(&["oA"])),
    ]
}

struct World {
    /// name → `Type/id`
    ids: BTreeMap<String, String>,
    tokens: BTreeMap<&'static str, String>,
}

impl World {
    fn id(&self, name: &str) -> &str {
        self.ids[name].split('/').nth(1).unwrap()
    }

    fn path(&self, template: &str) -> String {
        let mut out = template.to_string();
        for name in self.ids.keys() {
            out = out.replace(&format!("{{{name}}}"), self.id(name));
        }
        assert!(!out.contains('{'), "unknown name in {template}");
        out
    }
}

async fn create(s: &TestServer, log: &Log, token: &str, body: Value) -> String {
    let ty = body["resourceType"].as_str().unwrap().to_string();
    let (st, text) = log.send(s, Some(token), Method::POST, &ty, Some(&body)).await;
    assert_eq!(st, 201, "create {ty}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    format!("{ty}/{}", v["id"].as_str().unwrap())
}

fn obs(patient: &str, status: &str, code: &str, issued: &str, encounter: Option<&str>) -> Value {
    let mut o = json!({"resourceType": "Observation", "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": patient}, "issued": issued});
    if let Some(e) = encounter {
        o["encounter"] = json!({"reference": e});
    }
    o
}

fn report(patient: &str, issued: &str, result: &str) -> Value {
    json!({"resourceType": "DiagnosticReport", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
        "subject": {"reference": patient}, "issued": issued, "result": [{"reference": result}]})
}

fn related(patient: &str, code: &str, period_end: Option<&str>) -> Value {
    let mut rp = json!({"resourceType": "RelatedPerson", "patient": {"reference": patient},
        "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": code}]}]});
    if let Some(e) = period_end {
        rp["period"] = json!({"start": "2000-01-01", "end": e});
    }
    rp
}

pub fn refusal(patient: &str) -> Value {
    json!({"resourceType": "Consent", "status": "active",
        "identifier": [{"system": "urn:test:consent", "value": format!("refusal-{patient}")}],
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"type": "deny"}})
}

/// Builds the data set; returns it with the next UTC midnight (epoch µs).
async fn build(s: &TestServer, log: &Log) -> (World, i64) {
    // Five minutes before a UTC midnight: tokens (10 minutes) outlive the crossing.
    let now = s.state().now();
    let midnight = (now / DAY + 1) * DAY;
    let mut to = midnight - 5 * 60_000_000 - now;
    if to < 0 {
        to += DAY;
    }
    s.clock.advance(Duration::from_micros(to as u64));
    let midnight = (s.state().now() / DAY + 1) * DAY;
    let tomorrow = carnet::fhir::instant::format_micros(midnight)[..10].to_string();
    let today = carnet::fhir::instant::format_micros(midnight - DAY)[..10].to_string();
    let year: i32 = tomorrow[..4].parse().unwrap();
    let k_birth = format!("{}{}", year - 14, &tomorrow[4..]);
    let issued_now = carnet::fhir::instant::format_micros(s.state().now());

    let sys = system_token(s).await;
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let patient = |family: &str, birth: &str| {
        json!({"resourceType": "Patient", "name": [{"family": family}], "birthDate": birth,
               "identifier": [{"system": "urn:test:mrn", "value": family}]})
    };
    for (n, fam, birth) in [
        ("A", "Alpha", "1980-01-01"),
        ("B", "Beta", "1981-02-02"),
        ("K", "Kid", k_birth.as_str()),
        ("M", "Mandant", "1940-03-03"),
        ("F", "Friendly", "1970-04-04"),
    ] {
        ids.insert(n.into(), create(s, log, &sys, patient(fam, birth)).await);
    }
    for (n, fam) in [("P1", "Seen"), ("P2", "Never")] {
        let p = json!({"resourceType": "Practitioner", "name": [{"family": fam, "given": ["Doc"]}]});
        ids.insert(n.into(), create(s, log, &sys, p).await);
    }
    let snapshot = ids.clone();
    let r = |n: &str| snapshot[n].clone();
    let enc = |p: &str| {
        json!({"resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": p}})
    };
    let e_a = create(s, log, &sys, enc(&r("A"))).await;
    let e_b = create(s, log, &sys, enc(&r("B"))).await;
    let o_a = create(s, log, &sys, obs(&r("A"), "final", "718-7", LONG_AGO, Some(&e_a))).await;
    let o_anew = create(s, log, &sys, obs(&r("A"), "final", "718-7", &issued_now, None)).await;
    let o_asens = create(s, log, &sys, obs(&r("A"), "final", "75622-1", LONG_AGO, None)).await;
    let d_a = create(s, log, &sys, report(&r("A"), LONG_AGO, &o_a)).await;
    let d_anew = create(s, log, &sys, report(&r("A"), &issued_now, &o_anew)).await;
    let o_b = create(s, log, &sys, obs(&r("B"), "final", "718-7", LONG_AGO, Some(&e_b))).await;
    let o_k = create(s, log, &sys, obs(&r("K"), "final", "718-7", LONG_AGO, None)).await;
    let o_m = create(s, log, &sys, obs(&r("M"), "final", "718-7", LONG_AGO, None)).await;
    let rp_k = create(s, log, &sys, related(&r("K"), "MTH", None)).await;
    let rp_m = create(s, log, &sys, related(&r("M"), "POWATT", Some(&today))).await;
    let rp_f = create(s, log, &sys, related(&r("F"), "FRND", None)).await;
    for (n, v) in [
        ("eA", e_a),
        ("eB", e_b),
        ("oA", o_a),
        ("oAnew", o_anew),
        ("oAsens", o_asens),
        ("dA", d_a),
        ("dAnew", d_anew),
        ("oB", o_b.clone()),
        ("oK", o_k),
        ("oM", o_m),
        ("rpK", rp_k.clone()),
        ("rpM", rp_m.clone()),
        ("rpF", rp_f.clone()),
    ] {
        ids.insert(n.into(), v);
    }

    let mut tokens = BTreeMap::new();
    tokens.insert("sys", sys.clone());
    tokens.insert("patA", user_token(s, &r("A"), PATIENT_SCOPES).await.unwrap());
    tokens.insert(
        "mom",
        user_token(s, &rp_k, PATIENT_SCOPES)
            .await
            .expect("a mother of a child under 14"),
    );
    tokens.insert(
        "mand",
        user_token(s, &rp_m, PATIENT_SCOPES)
            .await
            .expect("a mandatary within the period"),
    );
    assert!(
        user_token(s, &rp_f, PATIENT_SCOPES).await.is_none(),
        "a friend is given no token"
    );
    tokens.insert("p1", user_token(s, &r("P1"), PRACTITIONER_SCOPES).await.unwrap());
    tokens.insert("p2", user_token(s, &r("P2"), PRACTITIONER_SCOPES).await.unwrap());
    // P1 consults B's record, then B refuses sharing.
    assert_eq!(log.get(s, Some(&tokens["p1"]), &o_b).await.0, 200);
    s.clock.advance(Duration::from_secs(1));
    let t_b = user_token(s, &r("B"), PATIENT_SCOPES).await.unwrap();
    let c_b = create(s, log, &t_b, refusal(&r("B"))).await;
    ids.insert("cB".into(), c_b);
    (World { ids, tokens }, midnight)
}

/// Runs one row; returns a description of what went wrong, if anything.
async fn run(s: &TestServer, log: &Log, world: &World, row: &Row) -> Option<String> {
    let Row(actor, template, want) = row;
    let token = world.tokens[actor].as_str();
    let path = world.path(template);
    let url = if path.starts_with('?') {
        format!("{}{path}", s.base)
    } else {
        path.clone()
    };
    // Searches ask for the count, so that every page's `total` (the policy's condition
    // in a COUNT) is checked against the matches walked; history has none.
    let counted = matches!(want, Found(_)) && !template.contains("_history");
    let url = match (counted, url.contains('?')) {
        (false, _) => url,
        (true, true) => format!("{url}&_total=accurate"),
        (true, false) => format!("{url}?_total=accurate"),
    };
    let allowed = visible(actor, world);
    // Ids the request itself names may come back in links; others never appear.
    let hidden: Vec<&str> = world
        .ids
        .iter()
        .filter(|(n, _)| !allowed.contains(*n))
        .map(|(_, v)| v.split('/').nth(1).unwrap())
        .filter(|id| !path.contains(id))
        .collect();
    let leak = |text: &str| hidden.iter().find(|h| text.contains(**h)).map(|h| h.to_string());
    let (st, text) = log.get(s, Some(token), &url).await;
    let problem = |m: String| Some(format!("{actor} GET {template}: {m}"));
    if let Some(h) = leak(&text) {
        return problem(format!("hidden id {h} in the answer: {text}"));
    }
    match want {
        Status(code) => (st != *code).then(|| format!("{actor} GET {template}: {st}, want {code}: {text}")),
        Count(n) => {
            let b: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if st != 200 || b["total"] != json!(n) || b["entry"].as_array().is_some_and(|e| !e.is_empty()) {
                return problem(format!("{st}, want total {n} and no entries: {text}"));
            }
            None
        }
        Found(names) => {
            if st != 200 {
                return problem(format!("{st}: {text}"));
            }
            let mut got: BTreeSet<String> = BTreeSet::new();
            let mut matches = 0u64;
            let mut page: Value = serde_json::from_str(&text).unwrap();
            let total = page.get("total").cloned();
            if counted && total.is_none() {
                return problem(format!("no total with _total=accurate: {text}"));
            }
            let mut pages = 1;
            loop {
                for e in page["entry"].as_array().into_iter().flatten() {
                    if e["search"]["mode"] != "include" {
                        matches += 1;
                    }
                }
                got.extend(entry_ids(&page));
                let Some(next) = next_link(&page) else { break };
                pages += 1;
                if pages > 40 {
                    return problem("more than 40 pages".into());
                }
                let (st, text) = log.get(s, Some(token), &next).await;
                if st != 200 {
                    return problem(format!("next page {st}: {text}"));
                }
                if let Some(h) = leak(&text) {
                    return problem(format!("hidden id {h} on page {pages}: {text}"));
                }
                page = serde_json::from_str(&text).unwrap();
                if counted && page.get("total") != total.as_ref() {
                    return problem(format!("page {pages}'s total differs from the first's: {text}"));
                }
            }
            let want: BTreeSet<String> = names.iter().map(|n| world.ids[*n].clone()).collect();
            if got != want {
                let name = |v: &String| world.ids.iter().find(|(_, x)| *x == v).map(|(n, _)| n.clone()).unwrap();
                let got: Vec<String> = got.iter().map(name).collect();
                return problem(format!("got {got:?}, want {names:?}"));
            }
            if let Some(t) = total
                && counted
                && t != json!(matches)
            {
                return problem(format!("total {t}, but {matches} matches over {pages} pages"));
            }
            None
        }
    }
}

/// Batch GET entries answer for each actor as the plain requests do.
async fn batch_rows(s: &TestServer, log: &Log, world: &World) -> Vec<String> {
    let entries = [
        "Observation/{oA}",
        "Observation/{oB}",
        "Observation/{oK}",
        "Observation/{oAsens}",
    ];
    let table: &[(&str, [u16; 4], &[&str])] = &[
        ("patA", [200, 404, 404, 404], &["oA"]),
        ("mom", [404, 404, 200, 404], &["oK"]),
        ("mand", [404, 404, 404, 404], &["oM"]),
        ("p1", [200, 200, 200, 200], &["oA", "oAnew", "oAsens", "oB", "oK", "oM"]),
        ("p2", [200, 403, 200, 200], OBS_PROVIDER),
        ("sys", [200, 403, 200, 200], OBS_PROVIDER),
    ];
    let mut problems = Vec::new();
    for (actor, statuses, found) in table {
        let mut list: Vec<Value> = entries
            .iter()
            .map(|e| json!({"request": {"method": "GET", "url": world.path(e)}}))
            .collect();
        list.push(json!({"request": {"method": "GET", "url": "Observation?_count=50"}}));
        list.push(json!({"request": {"method": "GET", "url": "Observation?_summary=count"}}));
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": list});
        let (st, text) = log
            .send(s, Some(&world.tokens[actor]), Method::POST, "", Some(&bundle))
            .await;
        if st != 200 {
            problems.push(format!("{actor} batch: {st} {text}"));
            continue;
        }
        let out: Value = serde_json::from_str(&text).unwrap();
        let got: Vec<u16> = out["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["response"]["status"].as_str().unwrap()[..3].parse().unwrap())
            .collect();
        if got[..4] != statuses[..] {
            problems.push(format!("{actor} batch statuses {got:?}, want {statuses:?}"));
        }
        let search = &out["entry"][4]["resource"];
        let got: BTreeSet<String> = entry_ids(search).into_iter().collect();
        let want: BTreeSet<String> = found.iter().map(|n| world.ids[*n].clone()).collect();
        if got != want || search["total"] != json!(want.len()) {
            problems.push(format!("{actor} batch search: {search}"));
        }
        if out["entry"][5]["resource"]["total"] != json!(want.len()) {
            problems.push(format!("{actor} batch count: {}", out["entry"][5]));
        }
        let hidden: BTreeSet<String> = world
            .ids
            .keys()
            .filter(|n| !visible(actor, world).contains(*n))
            .cloned()
            .collect();
        for e in out["entry"].as_array().unwrap() {
            let t = e["resource"].to_string();
            if let Some(h) = hidden.iter().find(|h| t.contains(world.id(h))) {
                problems.push(format!("{actor} batch: hidden {h} in {t}"));
            }
        }
    }
    problems
}

/// Conditional writes decide with the caller's scope: a patient's conditional update
/// cannot match another patient's resource; a feed's still lands on a refused record.
async fn conditional_rows(s: &TestServer, log: &Log, world: &World) -> Vec<String> {
    let mut problems = Vec::new();
    let t = &world.tokens;
    // Patient A, `PUT Consent?identifier=…` naming B's refusal: no match, a new Consent.
    let mut mine = refusal(&world.ids["A"]);
    mine["status"] = json!("inactive");
    let b_ident = format!("refusal-{}", world.ids["B"]);
    let (st, text) = log
        .send(
            s,
            Some(&t["patA"]),
            Method::PUT,
            &format!("Consent?identifier=urn:test:consent|{b_ident}"),
            Some(&mine),
        )
        .await;
    let created: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if st != 201 || created["patient"]["reference"] != json!(world.ids["A"]) {
        problems.push(format!("patA conditional update of B's consent: {st} {text}"));
    }
    let (_, cb) = log.get(s, Some(&t["p1"]), &world.ids["cB"]).await;
    let cb: Value = serde_json::from_str(&cb).unwrap();
    if cb["meta"]["versionId"] != "1" || cb["status"] != "active" {
        problems.push(format!("B's refusal changed: {cb}"));
    }
    // Conditional delete by patient A naming B's refusal: nothing of B's goes.
    let (st, _) = log
        .send(
            s,
            Some(&t["patA"]),
            Method::DELETE,
            &format!("Consent?identifier=urn:test:consent|{b_ident}"),
            None,
        )
        .await;
    let (st2, _) = log.get(s, Some(&t["p1"]), &world.ids["cB"]).await;
    if st2 != 200 || st >= 500 {
        problems.push(format!("patA conditional delete: {st}, B's consent then {st2}"));
    }
    // A feed's conditional update of B's patient record lands despite the refusal.
    let mut b = json!({"resourceType": "Patient", "name": [{"family": "Beta"}], "birthDate": "1981-02-02",
        "identifier": [{"system": "urn:test:mrn", "value": "Beta"}], "gender": "female"});
    b["id"] = json!(world.id("B"));
    let (st, text) = log
        .send(
            s,
            Some(&t["sys"]),
            Method::PUT,
            "Patient?identifier=urn:test:mrn|Beta",
            Some(&b),
        )
        .await;
    if st != 200 {
        problems.push(format!("sys conditional update of refused B: {st} {text}"));
    }
    // A practitioner's conditional create whose match is refused: 403, nothing created.
    let r = s
        .req_as(Some(&t["p2"]), Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .header("if-none-exist", "identifier=urn:test:mrn|Beta")
        .body(json!({"resourceType": "Patient", "name": [{"family": "Beta"}]}).to_string())
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    log.seen.lock().unwrap().push(Seen {
        method: "POST".into(),
        path: r.url().path().to_string(),
        status: st,
    });
    if st != 403 {
        problems.push(format!("p2 conditional create matching refused B: {st}"));
    }
    // Patient A's conditional read-side search of another's record stays empty.
    let (st, text) = log
        .get(
            s,
            Some(&t["patA"]),
            &format!("Consent?identifier=urn:test:consent|{b_ident}"),
        )
        .await;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if st != 200 || v["total"] != 0 {
        problems.push(format!("patA search of B's consent: {st} {text}"));
    }
    problems
}

async fn matrix(s: &TestServer) {
    let log = Log::default();
    let (world, midnight) = build(s, &log).await;
    let rows = rows();
    let mut problems = Vec::new();
    for row in &rows {
        if let Some(p) = run(s, &log, &world, row).await {
            problems.push(p);
        }
    }
    let batch = batch_rows(s, &log, &world).await;
    problems.extend(batch);
    // Midnight: K turns 14, the mandate ends; the same tokens now see nothing.
    let now = s.state().now();
    assert!(now < midnight, "the rows took too long");
    s.clock
        .advance(Duration::from_micros((midnight - now + 5_000_000) as u64));
    let after = after_rows();
    for row in &after {
        if let Some(p) = run(s, &log, &world, row).await {
            problems.push(format!("after midnight: {p}"));
        }
    }
    problems.extend(conditional_rows(s, &log, &world).await);
    eprintln!(
        "policy matrix on {:?}: {} rows + {} after midnight + 6 batch rows + conditional rows; {} answers",
        s.backend,
        rows.len(),
        after.len(),
        log.seen.lock().unwrap().len()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // R5: every answer the test saw has its AuditEvent, refusals included.
    let events = audit_events(s.backend, &s.database_url).await;
    assert_audited(&events, &log.seen.lock().unwrap());
}

on_both_backends!(matrix);
