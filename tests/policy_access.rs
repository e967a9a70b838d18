//! The access policy (docs/policy.md) over HTTP on both backends, with tokens from the
//! real authorization-code flow (patient, practitioner) and client_credentials (system).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use carnet::auth::clients::{self, Credential, Registration};
use carnet::auth::i18n::Lang;
use carnet_tests::{TestServer, on_both_backends, sorted_ids};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use reqwest::Method;
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const PASSWORD: &str = "un mot de passe solide";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn redirect_pairs(r: &reqwest::Response) -> Vec<(String, String)> {
    let loc = r.headers()["location"].to_str().unwrap();
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// An access token for `fhir_user` through activation, sign-in (password + code) and
/// the PKCE code exchange.
async fn user_token(s: &TestServer, fhir_user: &str, scopes: &[&str]) -> String {
    // One account per user: a second token for the same user only signs in again.
    let username = format!("u-{}", fhir_user.replace('/', "-"));
    if carnet::auth::accounts::invite(s.state(), fhir_user, &[], Some("x@example.org"), Lang::Fr)
        .await
        .is_ok()
    {
        let code = s.last_message()["code"].as_str().unwrap().to_string();
        let r = s
            .anon
            .post(format!("{}/activate", s.auth_url()))
            .form(&[
                ("activation_code", code.as_str()),
                ("username", &username),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let app = format!("app-{}", uuid::Uuid::new_v4().simple());
    let reg = Registration {
        client_id: app.clone(),
        name: "app".into(),
        redirect_uris: vec![REDIRECT.into()],
        scopes: scopes.join(" "),
        credential: Credential::Public,
    };
    clients::register(s.state().store(), &reg, s.state().now())
        .await
        .unwrap();
    let client = BasicClient::new(ClientId::new(app.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/authorize", s.auth_url())).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/token", s.auth_url())).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("aud", s.base.clone())
        .set_pkce_challenge(challenge);
    for sc in scopes {
        req = req.add_scope(Scope::new(sc.to_string()));
    }
    let (url, _) = req.url();
    let http = browser();
    let html = http.get(url.as_str()).send().await.unwrap().text().await.unwrap();
    let start = html.find("name=\"tx\" value=\"").unwrap() + "name=\"tx\" value=\"".len();
    let tx = html[start..].split('"').next().unwrap().to_string();
    let authz = format!("{}/authorize", s.auth_url());
    let r = http
        .post(&authz)
        .form(&[("tx", tx.as_str()), ("username", &username), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let code = s.last_message()["code"].as_str().unwrap().to_string();
    let r = http
        .post(&authz)
        .form(&[("tx", tx.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let pairs = redirect_pairs(&r);
    let code = pairs
        .iter()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.clone())
        .expect("code");
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    token.access_token().secret().clone()
}

async fn patient_token(s: &TestServer, id: &str) -> String {
    user_token(
        s,
        &format!("Patient/{id}"),
        &["launch/patient", "openid", "fhirUser", "patient/*.cruds"],
    )
    .await
}

async fn practitioner_token(s: &TestServer, id: &str) -> String {
    user_token(
        s,
        &format!("Practitioner/{id}"),
        &["openid", "fhirUser", "user/*.cruds"],
    )
    .await
}

async fn as_get(s: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let r = s.req_as(Some(token), Method::GET, path).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn as_send(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: &Value,
    lang: Option<&str>,
) -> (u16, Value) {
    let mut r = s
        .req_as(Some(token), method, path)
        .header("content-type", "application/fhir+json");
    if let Some(l) = lang {
        r = r.header("accept-language", l);
    }
    let r = r.body(serde_json::to_vec(body).unwrap()).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn patient(s: &TestServer, family: &str) -> String {
    id(&s
        .create(json!({"resourceType": "Patient", "name": [{"family": family}], "birthDate": "1980-01-01"}))
        .await)
}

async fn obs(s: &TestServer, patient: &str, status: &str, code: &str, issued: &str) -> String {
    id(&s
        .create(json!({"resourceType": "Observation", "status": status,
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": format!("Patient/{patient}")}, "issued": issued}))
        .await)
}

const LONG_AGO: &str = "2001-01-01T00:00:00Z";

/// R1: the patient sees their compartment only, on every read path.
async fn r1_compartment(s: &TestServer) {
    let a = patient(s, "Alpha").await;
    let b = patient(s, "Beta").await;
    let oa = obs(s, &a, "final", "718-7", LONG_AGO).await;
    let ob = obs(s, &b, "final", "718-7", LONG_AGO).await;
    let t = patient_token(s, &a).await;
    assert_eq!(as_get(s, &t, &format!("Observation/{oa}")).await.0, 200);
    assert_eq!(as_get(s, &t, &format!("Observation/{ob}")).await.0, 404);
    assert_eq!(as_get(s, &t, &format!("Observation/{ob}/_history/1")).await.0, 404);
    assert_eq!(as_get(s, &t, &format!("Observation/{ob}/_history")).await.0, 404);
    assert_eq!(as_get(s, &t, &format!("Patient/{b}")).await.0, 404);
    let (st, bundle) = as_get(s, &t, "Observation").await;
    assert_eq!(st, 200);
    assert_eq!(sorted_ids(&bundle), vec![format!("Observation/{oa}")]);
    assert_eq!(bundle["total"], 1);
    let (_, c) = as_get(s, &t, "Observation?_summary=count").await;
    assert_eq!(c["total"], 1);
    let (_, inc) = as_get(s, &t, "Observation?_include=Observation:subject").await;
    assert_eq!(
        sorted_ids(&inc),
        vec![format!("Observation/{oa}"), format!("Patient/{a}")]
    );
    let (_, rev) = as_get(s, &t, "Patient?_revinclude=Observation:subject").await;
    assert_eq!(
        sorted_ids(&rev),
        vec![format!("Observation/{oa}"), format!("Patient/{a}")]
    );
    assert_eq!(rev["total"], 1);
    let (_, chain) = as_get(s, &t, "Observation?subject:Patient.family=Beta").await;
    assert_eq!(sorted_ids(&chain), Vec::<String>::new());
    let (_, has) = as_get(s, &t, "Patient?_has:Observation:subject:code=718-7").await;
    assert_eq!(sorted_ids(&has), vec![format!("Patient/{a}")]);
    let (_, comp) = as_get(s, &t, &format!("Patient/{b}/Observation")).await;
    assert_eq!(comp["total"], 0);
    let (st, sys) = as_get(s, &t, &format!("{}?_type=Observation,Patient", s.base)).await;
    assert_eq!(st, 200, "{sys}");
    assert_eq!(
        sorted_ids(&sys),
        vec![format!("Observation/{oa}"), format!("Patient/{a}")]
    );
    let (_, hist) = as_get(s, &t, "Observation/_history").await;
    assert_eq!(sorted_ids(&hist), vec![format!("Observation/{oa}")]);
    let (_, hist) = as_get(s, &t, "_history").await;
    assert_eq!(
        sorted_ids(&hist),
        vec![format!("Observation/{oa}"), format!("Patient/{a}")]
    );
    // Paging: one per page, the next link leads to nothing of B's.
    let (_, p1) = as_get(s, &t, "Observation?_count=1").await;
    assert!(
        p1["link"].as_array().unwrap().iter().all(|l| l["relation"] != "next"),
        "{p1}"
    );
    // Batch GET entries answer as the plain requests do.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Observation/{ob}")}},
        {"request": {"method": "GET", "url": format!("Observation/{oa}")}},
        {"request": {"method": "GET", "url": "Observation"}}]});
    let (st, out) = as_send(s, &t, Method::POST, "", &batch, None).await;
    if st == 200 {
        let statuses: Vec<&str> = out["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["response"]["status"].as_str().unwrap())
            .collect();
        assert!(
            statuses[0].starts_with("404") || statuses[0].starts_with("403"),
            "{statuses:?}"
        );
        assert!(statuses[1].starts_with("200"), "{statuses:?}");
        assert_eq!(
            sorted_ids(&out["entry"][2]["resource"]),
            vec![format!("Observation/{oa}")]
        );
    } else {
        // The edge refuses bundles to tokens without a write scope on every type.
        assert_eq!(st, 403, "{out}");
    }
    // The system token (a provider) sees both.
    let (_, all) = s.get_json("Observation").await;
    assert_eq!(all["total"], 2);
}

/// R2, R3 and $release.
async fn r2_r3_publication(s: &TestServer) {
    let a = patient(s, "Gamma").await;
    // Two minutes short of the 30-day delay: tokens (10 minutes) outlive the wait.
    let almost = carnet::fhir::instant::format_micros(s.state().now() - 30 * 86_400_000_000 + 120_000_000);
    let recent = obs(s, &a, "final", "718-7", &almost).await;
    let prelim = obs(s, &a, "preliminary", "718-7", LONG_AGO).await;
    let sensitive = obs(s, &a, "final", "75622-1", LONG_AGO).await;
    let labelled = id(&s
        .create(
            json!({"resourceType": "Observation", "status": "final", "issued": LONG_AGO,
            "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]},
            "code": {"text": "x"}, "subject": {"reference": format!("Patient/{a}")}}),
        )
        .await);
    let old = obs(s, &a, "final", "718-7", LONG_AGO).await;
    let t = patient_token(s, &a).await;
    let (_, b) = as_get(s, &t, "Observation").await;
    assert_eq!(sorted_ids(&b), vec![format!("Observation/{old}")]);
    assert_eq!(b["total"], 1);
    for hidden in [&recent, &prelim, &sensitive, &labelled] {
        assert_eq!(as_get(s, &t, &format!("Observation/{hidden}")).await.0, 404);
    }
    // The delay passes: the recent one appears, the sensitive ones do not.
    s.clock.advance(Duration::from_secs(180));
    let (_, b) = as_get(s, &t, "Observation").await;
    let mut want = vec![format!("Observation/{old}"), format!("Observation/{recent}")];
    want.sort();
    assert_eq!(sorted_ids(&b), want);
    // Release by a practitioner: once written, idempotent.
    let pr = id(&s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "House", "given": ["Greg"]}]}))
        .await);
    let pt = practitioner_token(s, &pr).await;
    let (st, r1) = as_send(
        s,
        &pt,
        Method::POST,
        &format!("Observation/{sensitive}/$release"),
        &json!({}),
        None,
    )
    .await;
    assert_eq!(st, 200, "{r1}");
    assert_eq!(r1["meta"]["versionId"], "2");
    let (_, r2) = as_send(
        s,
        &pt,
        Method::POST,
        &format!("Observation/{sensitive}/$release"),
        &json!({}),
        None,
    )
    .await;
    assert_eq!(r2["meta"]["versionId"], "2");
    assert_eq!(as_get(s, &t, &format!("Observation/{sensitive}")).await.0, 200);
    // The patient may not release: a result they see is refused, one they do not is absent.
    assert_eq!(
        as_send(
            s,
            &t,
            Method::POST,
            &format!("Observation/{old}/$release"),
            &json!({}),
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        as_send(
            s,
            &t,
            Method::POST,
            &format!("Observation/{labelled}/$release"),
            &json!({}),
            None
        )
        .await
        .0,
        404
    );
    // The preference: results as soon as ready, at once and for past results.
    let now = carnet::fhir::instant::format_micros(s.state().now());
    let fresh = obs(s, &a, "final", "718-7", &now).await;
    assert_eq!(as_get(s, &t, &format!("Observation/{fresh}")).await.0, 404);
    let pref = json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "https://carnet.dev/fhir/CodeSystem/consent-category", "code": "result-publication"}]}],
        "patient": {"reference": format!("Patient/{a}")},
        // R4 requires a policy or a policyRule (ppc-1).
        "policy": [{"uri": "https://carnet.dev/fhir/policy/result-publication"}],
        "provision": {"type": "permit"}});
    let (st, c) = as_send(s, &t, Method::POST, "Consent", &pref, None).await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(as_get(s, &t, &format!("Observation/{fresh}")).await.0, 200);
    assert_eq!(as_get(s, &t, &format!("Observation/{labelled}")).await.0, 404);
    assert_eq!(as_get(s, &t, &format!("Observation/{prelim}")).await.0, 404);
}

fn refusal(patient: &str) -> Value {
    json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": {"type": "deny"}})
}

/// R4: refusal, prior access, writes that still land, withdrawal; R5: the audit trail.
async fn r4_refusal_and_audit(s: &TestServer) {
    let a = patient(s, "Delta").await;
    let o = obs(s, &a, "final", "718-7", LONG_AGO).await;
    let seen = id(&s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Seen", "given": ["Before"]}]}))
        .await);
    let other = id(&s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Never"}]}))
        .await);
    let t_seen = practitioner_token(s, &seen).await;
    let t_other = practitioner_token(s, &other).await;
    assert_eq!(as_get(s, &t_seen, &format!("Observation/{o}")).await.0, 200);
    s.clock.advance(Duration::from_secs(1));
    let t = patient_token(s, &a).await;
    let (st, consent) = as_send(s, &t, Method::POST, "Consent", &refusal(&a), None).await;
    assert_eq!(st, 201, "{consent}");
    // System and the other practitioner: 403 on read, absent from search.
    let (st, oo) = s.get_json(&format!("Observation/{o}")).await;
    assert_eq!(st, 403);
    assert!(
        oo["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .contains("refus"),
        "{oo}"
    );
    let (st, oo) = as_get(s, &t_other, &format!("Patient/{a}")).await;
    assert_eq!(st, 403, "{oo}");
    let (_, b) = s.get_json(&format!("Observation?subject=Patient/{a}")).await;
    assert_eq!(b["total"], 0);
    let (_, b) = as_get(s, &t_other, &format!("Patient/{a}/Observation")).await;
    assert_eq!(b["total"], 0);
    // The practitioner who consulted before keeps access.
    assert_eq!(as_get(s, &t_seen, &format!("Observation/{o}")).await.0, 200);
    let (_, b) = as_get(s, &t_seen, &format!("Observation?subject=Patient/{a}")).await;
    assert_eq!(b["total"], 1);
    // Feeds still write; the patient still reads.
    let new = obs(s, &a, "final", "718-7", LONG_AGO).await;
    assert_eq!(as_get(s, &t, &format!("Observation/{new}")).await.0, 200);
    // Withdrawal by setting the refusal inactive.
    let mut withdrawn = consent.clone();
    withdrawn["status"] = json!("inactive");
    let (st, _) = as_send(
        s,
        &t,
        Method::PUT,
        &format!("Consent/{}", id(&consent)),
        &withdrawn,
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(s.get_json(&format!("Observation/{new}")).await.0, 200);

    // R5: the refusals and reads are in the trail, the patient sees them with the name.
    let (_, trail) = as_get(s, &t, "AuditEvent?_count=500").await;
    let events = trail["entry"].as_array().cloned().unwrap_or_default();
    assert!(
        events.iter().any(|e| e["resource"]["outcome"] == "4"),
        "a refusal is recorded"
    );
    assert!(
        events
            .iter()
            .any(|e| e["resource"]["agent"][0]["who"]["display"] == "Before Seen"),
        "the practitioner's name is shown"
    );
    let (_, theirs) = as_get(s, &t_other, "AuditEvent?_count=1").await;
    assert!(
        theirs["entry"]
            .as_array()
            .is_none_or(|e| e.iter().all(|x| x["resource"]["resourceType"] == "AuditEvent"))
    );
    // Nobody changes the trail.
    let ev = events[0]["resource"].clone();
    let path = format!("AuditEvent/{}", id(&ev));
    assert_eq!(s.send_json(Method::PUT, &path, &ev).await.status().as_u16(), 405);
    assert_eq!(
        s.req(Method::DELETE, &path).send().await.unwrap().status().as_u16(),
        405
    );
}

/// R7: what a patient may write, refusals in French by default and English on request.
async fn r7_patient_writes(s: &TestServer) {
    let a = id(&s
        .create(json!({"resourceType": "Patient", "name": [{"family": "Epsilon"}], "birthDate": "1980-01-01"}))
        .await);
    let b = patient(s, "Zeta").await;
    let t = patient_token(s, &a).await;
    let o = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/{a}")}});
    let (st, oo) = as_send(s, &t, Method::POST, "Observation", &o, None).await;
    assert_eq!(st, 403);
    assert!(
        oo["issue"][0]["diagnostics"].as_str().unwrap().contains("consulter"),
        "{oo}"
    );
    let (_, oo) = as_send(s, &t, Method::POST, "Observation", &o, Some("en-CA,en;q=0.9")).await;
    assert!(
        oo["issue"][0]["diagnostics"].as_str().unwrap().contains("may read"),
        "{oo}"
    );
    // Contact details yes, anything else no.
    let (_, mut me) = as_get(s, &t, &format!("Patient/{a}")).await;
    me["telecom"] = json!([{"system": "phone", "value": "514-555-0000"}]);
    assert_eq!(
        as_send(s, &t, Method::PUT, &format!("Patient/{a}"), &me, None).await.0,
        200
    );
    me["birthDate"] = json!("1970-01-01");
    assert_eq!(
        as_send(s, &t, Method::PUT, &format!("Patient/{a}"), &me, None).await.0,
        403
    );
    // Someone else's consent.
    assert_eq!(as_send(s, &t, Method::POST, "Consent", &refusal(&b), None).await.0, 403);
    // Appointments: no creation; booking a proposed one and cancelling are allowed.
    // A time slot offered by the care team (a booked appointment has a start and an
    // end, R4 app-3).
    let appt = json!({"resourceType": "Appointment", "status": "proposed",
        "start": "2030-01-01T09:00:00Z", "end": "2030-01-01T09:30:00Z",
        "participant": [{"actor": {"reference": format!("Patient/{a}")}, "status": "needs-action"}]});
    assert_eq!(as_send(s, &t, Method::POST, "Appointment", &appt, None).await.0, 403);
    let stored = s.create(appt).await;
    let mut booked = stored.clone();
    booked["status"] = json!("booked");
    booked["participant"][0]["status"] = json!("accepted");
    let (st, booked) = as_send(
        s,
        &t,
        Method::PUT,
        &format!("Appointment/{}", id(&stored)),
        &booked,
        None,
    )
    .await;
    assert_eq!(st, 200, "{booked}");
    let mut moved = booked.clone();
    moved["start"] = json!("2030-01-01T10:00:00Z");
    assert_eq!(
        as_send(
            s,
            &t,
            Method::PUT,
            &format!("Appointment/{}", id(&stored)),
            &moved,
            None
        )
        .await
        .0,
        403
    );
    let mut cancelled = booked.clone();
    cancelled["status"] = json!("cancelled");
    assert_eq!(
        as_send(
            s,
            &t,
            Method::PUT,
            &format!("Appointment/{}", id(&stored)),
            &cancelled,
            None
        )
        .await
        .0,
        200
    );
}

on_both_backends!(
    r1_compartment,
    r2_r3_publication,
    r4_refusal_and_audit,
    r7_patient_writes
);
