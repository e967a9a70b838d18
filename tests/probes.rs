//! Security probes (issue 8, point 5): for every read path, tokens that must not reach a
//! record try to, and none gets its data. One table per backend: probes × paths.
//!
//! Two records are the targets:
//! - `T`, an adult who refused sharing (R4, a Consent OPTOUT written with their own
//!   token): Observations `o` (published, in encounter `e`) and `o2`, a report `d`;
//! - `C`, a child who turns 14 at the next UTC midnight, with the same shape of data,
//!   and their mother `rpC`.
//!
//! Probes on `T`: the wrong patient `W` (404 / absent, R1); a practitioner who never
//! consulted `T` before the refusal (403 / absent, R4); `T`'s own token expired, for
//! another audience (both signed with the server's real key, so only that claim is
//! wrong), re-signed with another key under the server's `kid`, `W`'s token with `T`'s
//! claims pasted in, `alg: none`, HS256 keyed with the public key, another Carnet's own
//! token, and revoked by signing out (all 401, `invalid_token`); a system client after
//! the refusal (403 / absent). On `C`: the
//! mother's token once the clock has crossed midnight (404 / absent, R6).
//!
//! Paths: read, vread, instance / type / system history, type and system search,
//! `_include`, `_revinclude`, chain, `_has`, `_summary=count`, compartment search,
//! `$everything`, a `next` link the target's own search produced (replayed), and batch
//! GET entries. Searches are walked through every `next` link. No answer may hold a
//! target id the request did not name, nor a resource with a target id; a control run
//! with the target's own token first shows the paths do reach the data. Every answer,
//! refusals and 401s included, has its AuditEvent (R5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_support.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carnet::auth::jwt::AccessClaims;
use carnet_tests::{TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const DAY: i64 = 86_400_000_000;
const LONG_AGO: &str = "2001-01-01T00:00:00Z";

/// What kind of answer a path gives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// One resource (read, vread, instance history, `$everything`): refused or hidden.
    Read,
    /// A search or history Bundle: 200, the target left out.
    Search,
    /// `_summary=count` on the target's compartment: 200 with total 0.
    Count,
    /// A search of the target's audit trail: 200, and no entry names the target
    /// patient unless it is the caller's own attempt on a path naming it.
    Empty,
    /// A batch of GET entries.
    Batch,
}
use Kind::*;

/// How a probe must be turned away.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Denial {
    /// The token is not valid: 401 everywhere.
    BadToken,
    /// The record does not exist for this caller (R1, R6): reads 404, searches empty.
    Hidden,
    /// The patient refused sharing (R4): reads 403, searches empty.
    Refused,
}
use Denial::*;

/// The paths, `{P}` etc. standing for the target's ids (`{next}`: a `next` link of the
/// target's own search, `{fam}`: the target's family name).
const PATHS: &[(Kind, &str)] = &[
    (Read, "Observation/{o}"),
    (Read, "Patient/{P}"),
    (Read, "DiagnosticReport/{d}"),
    (Read, "Observation/{o}/_history/1"),
    (Read, "Observation/{o}/_history"),
    (Read, "Patient/{P}/_history"),
    (Read, "Patient/{P}/$everything"),
    (Read, "Patient/{P}/$everything?_count=1"),
    (Search, "Observation?subject=Patient/{P}&_count=1"),
    (Search, "Observation?_count=1"),
    (Search, "Encounter?_count=1"),
    (Search, "?_type=Observation,Patient,Encounter,DiagnosticReport&_count=1"),
    (
        Search,
        "Observation?_include=Observation:subject&_include=Observation:encounter&_count=1",
    ),
    (Search, "DiagnosticReport?_include=DiagnosticReport:result&_count=1"),
    (
        Search,
        "Patient?_id={P}&_revinclude=Observation:subject&_revinclude=Encounter:subject",
    ),
    (Search, "Patient?_revinclude=Observation:subject&_count=1"),
    (Search, "Observation?subject:Patient.family={fam}&_count=1"),
    (Search, "Observation?encounter.status=finished&_count=1"),
    (Search, "Patient?_has:Observation:subject:code=718-7&_count=1"),
    (Search, "Patient?family={fam}"),
    (Search, "Patient?_id={P}"),
    (Search, "Observation?_include=*&_count=1"),
    (Search, "Patient?_has:Observation:subject:_id={o}"),
    (Search, "Observation?_id={o}&patient=Patient/{P}"),
    (Search, "Observation?_id={o}&code=718-7"),
    (Search, "Observation?subject:missing=false&_count=1"),
    (Search, "Observation?patient.identifier:missing=true&_count=1"),
    (Search, "Observation?_id={o},{o2}"),
    (Search, "?_type=Patient,Observation&_id={P},{o}"),
    (
        Search,
        "Observation?_lastUpdated=gt2000-01-01&_sort=-_lastUpdated&_count=1",
    ),
    (Search, "Observation?_elements=subject&_count=1"),
    (
        Search,
        "DiagnosticReport?_include=DiagnosticReport:result&_include:iterate=Observation:encounter&_count=1",
    ),
    (
        Search,
        "Encounter?_revinclude=Observation:encounter&_revinclude:iterate=DiagnosticReport:result&_count=1",
    ),
    (Search, "Observation/_history?_count=1"),
    (Search, "_history?_count=1"),
    (Search, "Patient/{P}/Observation?_count=1"),
    (Search, "Patient/{P}/Encounter"),
    (Search, "{next}"),
    (Search, "POST Observation/_search?subject=Patient/{P}&_count=1"),
    (Search, "POST Patient/_search?_id={P}&_revinclude=Observation:subject"),
    (Empty, "AuditEvent?patient=Patient/{P}&_count=5"),
    (Empty, "AuditEvent?entity=Observation/{o}"),
    (Count, "Observation?subject=Patient/{P}&_summary=count"),
    (Count, "Observation?subject:Patient.family={fam}&_summary=count"),
    (Count, "Patient?family={fam}&_summary=count"),
    (Count, "Observation?_id={o},{o2}&_summary=count"),
    (Batch, "batch"),
];

/// One target record: name → `Type/id`, its family name, and a `next` link of its own
/// search.
struct Target {
    ids: BTreeMap<&'static str, String>,
    family: String,
    next: String,
}

impl Target {
    fn id(&self, name: &str) -> &str {
        self.ids[name].split('/').nth(1).unwrap()
    }

    fn path(&self, template: &str) -> String {
        let mut out = template.replace("{fam}", &self.family).replace("{next}", &self.next);
        for name in self.ids.keys() {
            out = out.replace(&format!("{{{name}}}"), self.id(name));
        }
        assert!(!out.contains('{'), "unknown name in {template}");
        out
    }

    fn batch(&self) -> Value {
        let entries: Vec<Value> = [
            "Observation/{o}",
            "Patient/{P}",
            "Observation?subject=Patient/{P}",
            "Observation?subject=Patient/{P}&_summary=count",
            // Compartment search is no Bundle entry yet (400 for the whole batch).
            "Observation/{o}/_history",
        ]
        .iter()
        .map(|p| json!({"request": {"method": "GET", "url": self.path(p)}}))
        .collect();
        json!({"resourceType": "Bundle", "type": "batch", "entry": entries})
    }
}

async fn create(s: &TestServer, log: &Log, token: &str, body: Value) -> String {
    let ty = body["resourceType"].as_str().unwrap().to_string();
    let (st, text) = log.send(s, Some(token), Method::POST, &ty, Some(&body)).await;
    assert_eq!(st, 201, "create {ty}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    format!("{ty}/{}", v["id"].as_str().unwrap())
}

/// A patient with the data every target has; returns its ids.
async fn record(s: &TestServer, log: &Log, sys: &str, family: &str, birth: &str) -> BTreeMap<&'static str, String> {
    let p = create(
        s,
        log,
        sys,
        json!({"resourceType": "Patient", "name": [{"family": family}], "birthDate": birth}),
    )
    .await;
    let e = create(
        s,
        log,
        sys,
        json!({"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": p}}),
    )
    .await;
    let obs = |enc: Option<&str>| {
        let mut o = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": p}, "issued": LONG_AGO});
        if let Some(e) = enc {
            o["encounter"] = json!({"reference": e});
        }
        o
    };
    let o = create(s, log, sys, obs(Some(&e))).await;
    let o2 = create(s, log, sys, obs(None)).await;
    let d = create(
        s,
        log,
        sys,
        json!({"resourceType": "DiagnosticReport", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
            "subject": {"reference": p}, "issued": LONG_AGO, "result": [{"reference": o}]}),
    )
    .await;
    BTreeMap::from([("P", p), ("e", e), ("o", o), ("o2", o2), ("d", d)])
}

fn refusal(patient: &str) -> Value {
    json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"type": "deny"}})
}

/// The `next` link of `path` walked with `token` (the target's own view).
async fn own_next(s: &TestServer, token: &str, target: &Target) -> String {
    let url = target.path("Observation?subject=Patient/{P}&_count=1");
    let r = s.req_as(Some(token), Method::GET, &url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    next_link(&b).expect("the target's own search has a second page")
}

fn claims_of(token: &str) -> AccessClaims {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// Crafted tokens from `T`'s real one: (name, token).
async fn bad_tokens(s: &TestServer, t_token: &str, w_token: &str) -> Vec<(&'static str, String)> {
    let keys = carnet::auth::keys::load_or_create(s.state().store(), s.state().now())
        .await
        .unwrap();
    let real = claims_of(t_token);
    let now = s.state().now() / 1_000_000;
    let mint = |f: &dyn Fn(&mut AccessClaims)| {
        let mut c = real.clone();
        c.jti = uuid::Uuid::new_v4().to_string();
        f(&mut c);
        carnet::auth::jwt::sign(&keys, &c).unwrap()
    };
    // The server's own key minting a valid copy: the control that minting works.
    let valid = mint(&|_| {});
    let r = s
        .req_as(
            Some(&valid),
            Method::GET,
            &format!("Patient/{}", real.patient.as_deref().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "a minted valid token is accepted");
    let expired = mint(&|c| {
        c.iat = now - 1200;
        c.exp = now - 600;
    });
    let other_audience = mint(&|c| c.aud = "https://other.example.org/fhir".into());
    // Same header (ES256, the server's kid) and claims, signed by another P-256 key.
    let doc =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(keys.kid.clone());
    header.typ = Some("JWT".into());
    let forged = jsonwebtoken::encode(&header, &real, &jsonwebtoken::EncodingKey::from_ec_der(doc.as_ref())).unwrap();
    // W's real header and signature around T's claims.
    let w: Vec<&str> = w_token.split('.').collect();
    let t: Vec<&str> = t_token.split('.').collect();
    let pasted = format!("{}.{}.{}", w[0], t[1], w[2]);
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), t[1]);
    let none_kid = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": keys.kid})),
        t[1]
    );
    // Algorithm confusion: HS256 keyed with the server's public key.
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(keys.kid.clone());
    let public = serde_json::to_vec(&keys.public_jwk).unwrap();
    let hs256 = jsonwebtoken::encode(&hs, &real, &jsonwebtoken::EncodingKey::from_secret(&public)).unwrap();
    vec![
        ("HS256 keyed with the public key", hs256),
        ("expired", expired),
        ("other audience", other_audience),
        ("forged signature", forged),
        ("W's signature, T's claims", pasted),
        ("alg none", none),
        ("alg none with the server's kid", none_kid),
    ]
}

/// Runs one probe over every path; returns what went wrong.
async fn probe(s: &TestServer, log: &Log, name: &str, token: &str, denial: Denial, target: &Target) -> Vec<String> {
    let secret: Vec<&str> = target.ids.keys().map(|n| target.id(n)).collect();
    let mut problems = Vec::new();
    for (kind, template) in PATHS {
        let (method, url, body) = if *kind == Batch {
            (Method::POST, String::new(), Some(target.batch()))
        } else {
            let p = target.path(template.trim_start_matches("POST "));
            let url = if p.starts_with('?') {
                format!("{}{p}", s.base)
            } else {
                p
            };
            (Method::GET, url, None)
        };
        let mut problem = |m: String| problems.push(format!("{name} {template}: {m}"));
        let mut pages = 0;
        let mut next = Some(url.clone());
        while let Some(u) = next.take() {
            pages += 1;
            let (st, text) = if template.starts_with("POST ") && pages == 1 {
                // Search by POST: the parameters in a form body.
                post_search(s, log, token, &u).await
            } else {
                log.send(s, Some(token), method.clone(), &u, body.as_ref()).await
            };
            // Ids named in the request may be echoed (self links, OperationOutcome);
            // no other target id may appear, and no resource of the target at all.
            let named = body.as_ref().map_or_else(|| u.clone(), Value::to_string);
            for id in &secret {
                let leaked = if named.contains(id) {
                    text.contains(&format!("\"id\":\"{id}\""))
                } else {
                    text.contains(id)
                };
                if leaked {
                    problem(format!("{id} leaked ({st}): {text}"));
                }
            }
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let want = match (denial, kind) {
                (BadToken, _) => 401,
                (Hidden, Read) => 404,
                (Refused, Read) => 403,
                _ => 200,
            };
            if st != want {
                problem(format!("{st}, want {want}: {text}"));
                break;
            }
            if denial == BadToken && pages == 1 && *kind == Read {
                // RFC 6750: a refused token is named invalid_token in the challenge.
                let r = s.req_as(Some(token), Method::GET, &u).send().await.unwrap();
                let challenge = r
                    .headers()
                    .get("www-authenticate")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("");
                if !challenge.contains("error=\"invalid_token\"") {
                    problem(format!("WWW-Authenticate {challenge:?}"));
                }
            }
            match (denial, kind) {
                (BadToken, _) => {}
                (_, Count) if v["total"] != json!(0) => problem(format!("total {}, want 0", v["total"])),
                (_, Batch) => {
                    let got: Vec<&str> = v["entry"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| e["response"]["status"].as_str().unwrap_or("?"))
                        .collect();
                    let first = if denial == Hidden { "404" } else { "403" };
                    let read = |s: &str| s.starts_with(first);
                    let ok = got.len() == 5
                        && read(got[0])
                        && read(got[1])
                        && read(got[4])
                        && got[2..4].iter().all(|s| s.starts_with("200"))
                        && v["entry"][3]["resource"]["total"] == json!(0);
                    if !ok {
                        problem(format!("batch entry statuses {got:?}: {text}"));
                    }
                }
                (_, Empty)
                    if v["entry"].as_array().into_iter().flatten().any(|e| {
                        // The caller's own attempt on `Patient/{P}` names what it sent.
                        let r = &e["resource"];
                        let p = target.id("P");
                        r.to_string().contains(p) && !r["outcomeDesc"].as_str().unwrap_or("").contains(p)
                    }) =>
                {
                    problem(format!("entries about the target: {text}"))
                }
                (_, Search | Empty) => {
                    next = next_link(&v);
                    assert!(pages < 50, "{name} {template}: too many pages");
                }
                _ => {}
            }
        }
    }
    problems
}

/// `POST [type]/_search` with the query of `url` as a form body.
async fn post_search(s: &TestServer, log: &Log, token: &str, url: &str) -> (u16, String) {
    let (path, query) = url.split_once('?').unwrap();
    let r = s
        .req_as(Some(token), Method::POST, path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query.to_string())
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let path = r.url().path().to_string();
    let text = r.text().await.unwrap();
    log.seen.lock().unwrap().push(Seen {
        method: "POST".into(),
        path,
        status: st,
    });
    (st, text)
}

/// The target's own token reaches its data on every path (else a probe proves nothing).
async fn control(s: &TestServer, token: &str, target: &Target) -> Vec<String> {
    let mut problems = Vec::new();
    for (kind, template) in PATHS {
        if !matches!(kind, Read | Search | Empty) {
            continue;
        }
        let p = target.path(template.trim_start_matches("POST "));
        let mut next = Some(if p.starts_with('?') {
            format!("{}{p}", s.base)
        } else {
            p
        });
        let mut found = false;
        let mut first = true;
        while let Some(u) = next.take() {
            let (st, text) = if template.starts_with("POST ") && first {
                post_search(s, &Log::default(), token, &u).await
            } else {
                let r = s.req_as(Some(token), Method::GET, &u).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            };
            first = false;
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if st != 200 {
                problems.push(format!("control {template}: {st} {v}"));
                break;
            }
            let ids = entry_ids(&v);
            found |= v["resourceType"] != "Bundle"
                || target.ids.values().any(|i| ids.contains(i))
                || (*kind == Empty && !ids.is_empty());
            next = next_link(&v);
        }
        if !found {
            problems.push(format!(
                "control {template}: the target's own token finds none of its data"
            ));
        }
    }
    problems
}

async fn no_probe_gets_data(s: &TestServer) {
    let log = Log::default();
    // Five minutes before a UTC midnight: C turns 14 at it, tokens (10 minutes) outlive it.
    let now = s.state().now();
    let mut to = (now / DAY + 1) * DAY - 5 * 60_000_000 - now;
    if to < 0 {
        to += DAY;
    }
    s.clock.advance(Duration::from_micros(to as u64));
    let midnight = (s.state().now() / DAY + 1) * DAY;
    let tomorrow = carnet::fhir::instant::format_micros(midnight)[..10].to_string();
    let c_birth = format!("{}{}", tomorrow[..4].parse::<i32>().unwrap() - 14, &tomorrow[4..]);

    let sys = system_token(s).await;
    let t_ids = record(s, &log, &sys, "Probed", "1975-05-05").await;
    let c_ids = record(s, &log, &sys, "Young", &c_birth).await;
    let w_ids = record(s, &log, &sys, "Wrong", "1980-06-06").await;
    let rp_c = create(
        s,
        &log,
        &sys,
        json!({"resourceType": "RelatedPerson", "patient": {"reference": c_ids["P"]},
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}]}),
    )
    .await;
    let p2 = create(
        s,
        &log,
        &sys,
        json!({"resourceType": "Practitioner", "name": [{"family": "Never", "given": ["Doc"]}]}),
    )
    .await;

    let t_tok = user_token(s, &t_ids["P"], PATIENT_SCOPES).await.unwrap();
    let w_tok = user_token(s, &w_ids["P"], PATIENT_SCOPES).await.unwrap();
    let mom = user_token(s, &rp_c, PATIENT_SCOPES)
        .await
        .expect("a mother of a child under 14");
    let p2_tok = user_token(s, &p2, PRACTITIONER_SCOPES).await.unwrap();
    let mut t = Target {
        ids: t_ids,
        family: "Probed".into(),
        next: String::new(),
    };
    t.next = own_next(s, &t_tok, &t).await;
    let mut c = Target {
        ids: c_ids,
        family: "Young".into(),
        next: String::new(),
    };
    c.next = own_next(s, &mom, &c).await;

    // Controls: the target's own token (and the mother, before midnight) reach the data.
    let mut problems = control(s, &t_tok, &t).await;
    problems.extend(control(s, &mom, &c).await);
    // T refuses sharing with their own token; the practitioner never read T before.
    let consent = create(s, &log, &t_tok, refusal(&t.ids["P"])).await;
    t.ids.insert("consent", consent);
    let mut runs = 0;

    problems.extend(probe(s, &log, "wrong patient", &w_tok, Hidden, &t).await);
    problems.extend(probe(s, &log, "practitioner after refusal", &p2_tok, Refused, &t).await);
    problems.extend(probe(s, &log, "system client after refusal", &sys, Refused, &t).await);
    runs += 3;
    // A token another Carnet issued (its own key and audience).
    let other = TestServer::start(s.backend).await;
    problems.extend(probe(s, &log, "another server's token", &other.token, BadToken, &t).await);
    other.stop().await;
    runs += 1;
    for (name, tok) in bad_tokens(s, &t_tok, &w_tok).await {
        problems.extend(probe(s, &log, name, &tok, BadToken, &t).await);
        runs += 1;
    }
    // Signing out revokes the session: T's own token is now refused.
    let r = s
        .anon
        .post(format!("{}/signout", s.auth_url()))
        .bearer_auth(&t_tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    problems.extend(probe(s, &log, "revoked", &t_tok, BadToken, &t).await);
    // Midnight: C is 14, the mother's token (still unexpired) must see nothing of C.
    s.clock.advance(Duration::from_secs(6 * 60));
    problems.extend(probe(s, &log, "parent past the age limit", &mom, Hidden, &c).await);
    runs += 2;

    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // R5: every answer, refusals and 401s included, has its AuditEvent.
    let events = audit_events(s.backend, &s.database_url).await;
    let seen = log.seen.lock().unwrap().clone();
    assert_audited(&events, &seen);
    eprintln!(
        "probes on {:?}: {runs} probes × {} paths, {} answers, all audited",
        s.backend,
        PATHS.len(),
        seen.len()
    );
}

on_both_backends!(no_probe_gets_data);
