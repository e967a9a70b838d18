//! Batch and transaction Bundles at `POST [base]`, over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use carnet_tests::{TestServer, expressions, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

async fn post(s: &TestServer, bundle: &Value) -> (u16, Value) {
    post_with(s, bundle, None).await
}

async fn post_with(s: &TestServer, bundle: &Value, prefer: Option<&str>) -> (u16, Value) {
    let mut req = s
        .req(Method::POST, &s.base)
        .header("content-type", "application/fhir+json")
        .body(serde_json::to_vec(bundle).unwrap());
    if let Some(p) = prefer {
        req = req.header("prefer", p);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

fn patient(family: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "http://x", "value": family}],
        "name": [{"family": family}]
    })
}

fn observation(subject: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "weight"},
        "subject": {"reference": subject}
    })
}

fn statuses(resp: &Value) -> Vec<String> {
    resp["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap().to_string())
        .collect()
}

/// `Type/id` from a response entry's `location` (`Type/id/_history/v`).
fn located(entry: &Value) -> String {
    let loc = entry["response"]["location"].as_str().unwrap();
    loc.split("/_history").next().unwrap().to_string()
}

async fn nothing_stored(s: &TestServer) {
    let (st, hist) = s.get_json("_history").await;
    assert_eq!(st, 200);
    assert!(hist.get("entry").is_none(), "something was stored: {hist}");
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn binary_patch(ops: &Value) -> Value {
    json!({
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64(&serde_json::to_vec(ops).unwrap())
    })
}

async fn transaction_resolves_urn_references(s: &TestServer) {
    let pat = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a";
    let mut obs = observation(pat);
    // References deep in the tree are rewritten too: extensions, contained, backbones.
    obs["extension"] = json!([{"url": "http://x/ext", "valueReference": {"reference": pat}}]);
    obs["performer"] = json!([{"reference": "#pr"}]);
    obs["contained"] = json!([{"resourceType": "Practitioner", "id": "pr",
        "extension": [{"url": "http://x/ext", "valueReference": {"reference": pat}}]}]);
    let b = bundle(
        "transaction",
        vec![
            json!({"fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059", "resource": obs,
               "request": {"method": "POST", "url": "Observation"}}),
            json!({"fullUrl": pat, "resource": patient("Tremblay"), "request": {"method": "POST", "url": "Patient"}}),
        ],
    );
    let (st, resp) = post(s, &b).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(resp["type"], "transaction-response");
    assert_eq!(statuses(&resp), ["201 Created", "201 Created"]);
    let patient_ref = located(&resp["entry"][1]);
    assert!(patient_ref.starts_with("Patient/"), "{patient_ref}");
    let e0 = &resp["entry"][0];
    assert_eq!(e0["response"]["etag"], "W/\"1\"");
    assert!(e0["response"]["lastModified"].as_str().unwrap().ends_with('Z'));
    assert_eq!(e0["resource"]["subject"]["reference"], patient_ref.as_str());
    let (st, stored) = s.get_json(&located(e0)).await;
    assert_eq!(st, 200);
    assert_eq!(stored["subject"]["reference"], patient_ref.as_str());
    assert_eq!(
        stored["extension"][0]["valueReference"]["reference"],
        patient_ref.as_str()
    );
    assert_eq!(
        stored["contained"][0]["extension"][0]["valueReference"]["reference"],
        patient_ref.as_str()
    );
    assert_eq!(stored["performer"][0]["reference"], "#pr");
    let (st, p) = s.get_json(&patient_ref).await;
    assert_eq!(st, 200);
    assert_eq!(p["name"][0]["family"], "Tremblay");
    assert_eq!(resp["entry"][1]["fullUrl"], s.url(&patient_ref));
}

async fn transaction_is_all_or_nothing(s: &TestServer) {
    let mut put = patient("Roy");
    put["id"] = json!("tx-roy");
    let b = bundle(
        "transaction",
        vec![
            json!({"fullUrl": "urn:uuid:0c9d2a8e-1b1a-4b8e-9a53-0d3c0f6c1a01", "resource": patient("Gagnon"),
               "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": put, "request": {"method": "PUT", "url": "Patient/tx-roy"}}),
            json!({"resource": observation("urn:uuid:0c9d2a8e-1b1a-4b8e-9a53-0d3c0f6c1a01"),
               "request": {"method": "POST", "url": "Observation"}}),
            json!({"resource": {"resourceType": "Patient", "birthDate": "1980-13-45"},
               "request": {"method": "POST", "url": "Patient"}}),
        ],
    );
    let (st, oo) = post(s, &b).await;
    assert_eq!(st, 400, "{oo}");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let exprs = expressions(&oo);
    assert!(
        exprs
            .iter()
            .any(|e| e.starts_with("Bundle.entry[3].resource.birthDate")),
        "{oo}"
    );
    assert!(
        oo["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("Bundle.entry[3]"),
        "{oo}"
    );
    nothing_stored(s).await;
    let (st, _) = s.get_json("Patient/tx-roy").await;
    assert_eq!(st, 404);
}

async fn processing_order_and_response_order(s: &TestServer) {
    let old = s.create(patient("Old")).await;
    let old_id = old["id"].as_str().unwrap();
    // Listed first, the conditional create runs after the delete: it matches nothing
    // and creates. Had it run first it would have matched the old Patient (200).
    let b = bundle(
        "transaction",
        vec![
            json!({"resource": patient("New"),
               "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("_id={old_id}")}}),
            json!({"request": {"method": "DELETE", "url": format!("Patient/{old_id}")}}),
        ],
    );
    let (st, resp) = post(s, &b).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(statuses(&resp), ["201 Created", "204 No Content"]);
    assert_eq!(resp["entry"][0]["resource"]["name"][0]["family"], "New");
    assert_eq!(resp["entry"][1]["response"]["etag"], "W/\"2\"");
    let (st, _) = s.get_json(&format!("Patient/{old_id}")).await;
    assert_eq!(st, 410);
}

async fn conditional_create_matches_existing(s: &TestServer) {
    let existing = s.create(patient("Existing")).await;
    let id = existing["id"].as_str().unwrap();
    let urn = "urn:uuid:5b0d2f43-8f0f-4d0a-a3b7-0b8b8d0b9a11";
    let b = bundle(
        "transaction",
        vec![
            json!({"fullUrl": urn, "resource": patient("Existing"),
               "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("_id={id}")}}),
            json!({"resource": observation(urn), "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    let (st, resp) = post(s, &b).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(statuses(&resp), ["200 OK", "201 Created"]);
    assert_eq!(located(&resp["entry"][0]), format!("Patient/{id}"));
    assert_eq!(
        resp["entry"][1]["resource"]["subject"]["reference"],
        format!("Patient/{id}")
    );
    let (_, hist) = s.get_json("Patient/_history").await;
    assert_eq!(
        hist["entry"].as_array().unwrap().len(),
        1,
        "a Patient was created: {hist}"
    );
}

/// Needs search on `identifier` (the full search engine).
async fn conditional_create_by_identifier(s: &TestServer) {
    let existing = s.create(patient("Ident")).await;
    let id = existing["id"].as_str().unwrap();
    let b = bundle(
        "transaction",
        vec![json!({"resource": patient("Ident"),
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=http://x|Ident"}})],
    );
    let (st, resp) = post(s, &b).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(statuses(&resp), ["200 OK"]);
    assert_eq!(located(&resp["entry"][0]), format!("Patient/{id}"));
    // Two matches: the transaction fails with 412.
    s.create(patient("Ident")).await;
    let (st, oo) = post(s, &b).await;
    assert_eq!(st, 412, "{oo}");
}

async fn conditional_references(s: &TestServer) {
    let p = s.create(patient("Ref")).await;
    let id = p["id"].as_str().unwrap();
    let b = bundle(
        "transaction",
        vec![json!({"resource": observation(&format!("Patient?_id={id}")),
        "request": {"method": "POST", "url": "Observation"}})],
    );
    let (st, resp) = post(s, &b).await;
    assert_eq!(st, 200, "{resp}");
    let (_, stored) = s.get_json(&located(&resp["entry"][0])).await;
    assert_eq!(stored["subject"]["reference"], format!("Patient/{id}"));
    // No match: the transaction fails and names the entry.
    let b = bundle(
        "transaction",
        vec![
            json!({"resource": patient("Nobody"), "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": observation("Patient?_id=nobody"), "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    let (st, oo) = post(s, &b).await;
    assert_eq!(st, 404, "{oo}");
    assert!(
        oo["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("Bundle.entry[1]"),
        "{oo}"
    );
    let (_, hist) = s.get_json("Patient/_history").await;
    assert_eq!(hist["entry"].as_array().unwrap().len(), 1);
}

/// Needs search on `identifier` (the full search engine).
async fn conditional_reference_by_identifier(s: &TestServer) {
    let p = s.create(patient("Lavoie")).await;
    let id = p["id"].as_str().unwrap();
    let b = bundle(
        "transaction",
        vec![json!({"resource": observation("Patient?identifier=http://x|Lavoie"),
        "request": {"method": "POST", "url": "Observation"}})],
    );
    let (st, resp) = post(s, &b).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(
        resp["entry"][0]["resource"]["subject"]["reference"],
        format!("Patient/{id}")
    );
    s.create(patient("Lavoie")).await;
    let (st, oo) = post(s, &b).await;
    assert_eq!(st, 412, "{oo}");
}

async fn conditional_update_and_delete(s: &TestServer) {
    let a = s.create(patient("CondA")).await;
    let b_ = s.create(patient("CondB")).await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b_["id"].as_str().unwrap());
    let mut body = patient("CondA2");
    body.as_object_mut().unwrap().remove("id");
    let b = bundle(
        "transaction",
        vec![
            json!({"resource": body, "request": {"method": "PUT", "url": format!("Patient?_id={a_id}")}}),
            json!({"request": {"method": "DELETE", "url": format!("Patient?_id={b_id}")}}),
            json!({"request": {"method": "DELETE", "url": "Patient?_id=none-such"}}),
        ],
    );
    let (st, resp) = post(s, &b).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(statuses(&resp), ["200 OK", "204 No Content", "204 No Content"]);
    let (_, now) = s.get_json(&format!("Patient/{a_id}")).await;
    assert_eq!(now["name"][0]["family"], "CondA2");
    assert_eq!(now["meta"]["versionId"], "2");
    let (st, _) = s.get_json(&format!("Patient/{b_id}")).await;
    assert_eq!(st, 410);
}

async fn stale_if_match_fails_the_transaction(s: &TestServer) {
    let p = s.create(patient("Stale")).await;
    let id = p["id"].as_str().unwrap().to_string();
    let r = s.send_json(Method::PUT, &format!("Patient/{id}"), &p).await;
    assert_eq!(r.status().as_u16(), 200);
    let b = bundle(
        "transaction",
        vec![
            json!({"resource": {"resourceType": "Organization", "name": "CLSC"},
               "request": {"method": "POST", "url": "Organization"}}),
            json!({"resource": p, "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"1\""}}),
        ],
    );
    let (st, oo) = post(s, &b).await;
    assert_eq!(st, 412, "{oo}");
    assert!(
        oo["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("Bundle.entry[1]"),
        "{oo}"
    );
    let (_, orgs) = s.get_json("Organization/_history").await;
    assert!(orgs.get("entry").is_none(), "{orgs}");
    let (_, now) = s.get_json(&format!("Patient/{id}")).await;
    assert_eq!(now["meta"]["versionId"], "2");
}

async fn same_resource_twice_is_refused(s: &TestServer) {
    let mut p = patient("Twice");
    p["id"] = json!("twice");
    let b = bundle(
        "transaction",
        vec![
            json!({"resource": p, "request": {"method": "PUT", "url": "Patient/twice"}}),
            json!({"request": {"method": "DELETE", "url": "Patient/twice"}}),
        ],
    );
    let (st, oo) = post(s, &b).await;
    assert_eq!(st, 400, "{oo}");
    nothing_stored(s).await;
}

async fn transaction_reads_its_own_writes(s: &TestServer) {
    let mut p = patient("Own");
    p["id"] = json!("own-1");
    let b = bundle(
        "transaction",
        vec![
            json!({"request": {"method": "GET", "url": "Patient/own-1"}}),
            json!({"resource": p, "request": {"method": "PUT", "url": "Patient/own-1"}}),
        ],
    );
    let (st, resp) = post_with(s, &b, Some("return=minimal")).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(statuses(&resp), ["200 OK", "201 Created"]);
    assert_eq!(resp["entry"][0]["resource"]["name"][0]["family"], "Own");
    // return=minimal: the write's entry has no resource, but its location.
    assert!(resp["entry"][1].get("resource").is_none());
    assert_eq!(resp["entry"][1]["response"]["location"], "Patient/own-1/_history/1");
}

async fn batch_failures_stay_in_their_entry(s: &TestServer) {
    let mut put = patient("BatchPut");
    put["id"] = json!("batch-put");
    let b = bundle(
        "batch",
        vec![
            json!({"resource": patient("BatchPost"), "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": {"resourceType": "Patient", "active": "yes"}, "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": put, "request": {"method": "PUT", "url": "Patient/batch-put"}}),
        ],
    );
    let (st, resp) = post(s, &b).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(resp["type"], "batch-response");
    assert_eq!(statuses(&resp), ["201 Created", "400 Bad Request", "201 Created"]);
    let bad = &resp["entry"][1]["response"]["outcome"];
    assert_eq!(bad["resourceType"], "OperationOutcome");
    assert!(
        expressions(bad)
            .iter()
            .any(|e| e.starts_with("Bundle.entry[1].resource.active")),
        "{bad}"
    );
    let (st, _) = s.get_json(&located(&resp["entry"][0])).await;
    assert_eq!(st, 200);
    let (st, _) = s.get_json("Patient/batch-put").await;
    assert_eq!(st, 200);
    let (_, hist) = s.get_json("Patient/_history").await;
    assert_eq!(hist["entry"].as_array().unwrap().len(), 2);
}

async fn batch_entries_may_not_depend_on_each_other(s: &TestServer) {
    let urn = "urn:uuid:3f1e6a4b-6a5e-4a43-9a0d-7b3b9d3e1c22";
    let b = bundle(
        "batch",
        vec![
            json!({"fullUrl": urn, "resource": patient("Dep"), "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": observation(urn), "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    let (st, resp) = post(s, &b).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(statuses(&resp), ["201 Created", "400 Bad Request"]);
    let (_, obs) = s.get_json("Observation/_history").await;
    assert!(obs.get("entry").is_none());
}

async fn get_entries_in_a_batch(s: &TestServer) {
    let p = s.create(patient("Reader")).await;
    let id = p["id"].as_str().unwrap();
    let b = bundle(
        "batch",
        vec![
            json!({"request": {"method": "GET", "url": format!("Patient/{id}")}}),
            json!({"request": {"method": "GET", "url": "Patient/missing"}}),
            json!({"request": {"method": "GET", "url": format!("Patient/{id}/_history")}}),
            json!({"request": {"method": "GET", "url": format!("Patient/{id}/_history/1")}}),
            json!({"request": {"method": "HEAD", "url": format!("Patient/{id}")}}),
            json!({"request": {"method": "GET", "url": format!("Patient?_id={id}")}}),
        ],
    );
    let (st, resp) = post(s, &b).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(
        statuses(&resp),
        ["200 OK", "404 Not Found", "200 OK", "200 OK", "200 OK", "200 OK"]
    );
    let e = resp["entry"].as_array().unwrap();
    assert_eq!(e[0]["resource"]["id"], id);
    assert_eq!(e[0]["response"]["etag"], "W/\"1\"");
    assert_eq!(e[1]["response"]["outcome"]["resourceType"], "OperationOutcome");
    assert_eq!(e[2]["resource"]["type"], "history");
    assert_eq!(e[3]["resource"]["meta"]["versionId"], "1");
    assert!(e[4].get("resource").is_none());
    assert_eq!(e[5]["resource"]["type"], "searchset");
    assert_eq!(e[5]["resource"]["entry"][0]["resource"]["id"], id);
}

async fn patch_through_a_binary(s: &TestServer) {
    let p = s.create(patient("Patch")).await;
    let id = p["id"].as_str().unwrap();
    let ops = json!([{"op": "add", "path": "/birthDate", "value": "1970-01-02"}]);
    let b = bundle(
        "transaction",
        vec![json!({"resource": binary_patch(&ops),
        "request": {"method": "PATCH", "url": format!("Patient/{id}"), "ifMatch": "W/\"1\""}})],
    );
    let (st, resp) = post(s, &b).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(statuses(&resp), ["200 OK"]);
    let (_, now) = s.get_json(&format!("Patient/{id}")).await;
    assert_eq!(now["birthDate"], "1970-01-02");
    assert_eq!(now["meta"]["versionId"], "2");
    // The same patch again is stale, and bad base64 is refused with its path.
    let (st, _) = post(s, &b).await;
    assert_eq!(st, 412);
    let mut bad = binary_patch(&ops);
    bad["data"] = json!("***");
    let b = bundle(
        "transaction",
        vec![json!({"resource": bad, "request": {"method": "PATCH", "url": format!("Patient/{id}")}})],
    );
    let (st, oo) = post(s, &b).await;
    assert_eq!(st, 400);
    assert_eq!(expressions(&oo), ["Bundle.entry[0].resource.data"]);
}

async fn malformed_bundles_are_refused(s: &TestServer) {
    let ok = || json!({"resource": patient("Ok"), "request": {"method": "POST", "url": "Patient"}});
    let cases = [
        (
            json!({"resourceType": "Bundle", "type": "document", "entry": [ok()]}),
            "Bundle.type",
        ),
        (
            bundle("transaction", vec![ok(), json!({"resource": patient("x")})]),
            "Bundle.entry[1].request",
        ),
        (
            bundle(
                "batch",
                vec![json!({"resource": patient("x"), "request": {"method": "FETCH", "url": "Patient"}})],
            ),
            "Bundle.entry[0].request.method",
        ),
        (
            bundle(
                "transaction",
                vec![
                    ok(),
                    ok(),
                    json!({"resource": patient("x"), "request": {"method": "POST"}}),
                ],
            ),
            "Bundle.entry[2].request.url",
        ),
        (
            bundle(
                "transaction",
                vec![json!({"request": {"method": "POST", "url": "Patient"}})],
            ),
            "Bundle.entry[0].resource",
        ),
        (
            bundle(
                "transaction",
                vec![json!({"request": {"method": "DELETE", "url": "Unicorn/1"}})],
            ),
            "Bundle.entry[0].request.url",
        ),
        (
            bundle(
                "transaction",
                vec![json!({"request": {"method": "PUT", "url": "Patient"}, "resource": patient("x")})],
            ),
            "Bundle.entry[0].request.url",
        ),
        (
            bundle(
                "transaction",
                vec![
                    json!({"fullUrl": "urn:uuid:1", "resource": patient("a"), "request": {"method": "POST", "url": "Patient"}}),
                    json!({"fullUrl": "urn:uuid:1", "resource": patient("b"), "request": {"method": "POST", "url": "Patient"}}),
                ],
            ),
            "Bundle.entry[1].fullUrl",
        ),
        (
            bundle(
                "transaction",
                vec![json!({"resource": patient("x"),
            "request": {"method": "PUT", "url": "Patient/1", "ifMatch": "yesterday"}})],
            ),
            "Bundle.entry[0].request.ifMatch",
        ),
    ];
    for (b, path) in cases {
        let (st, oo) = post(s, &b).await;
        assert_eq!(st, 400, "{b}: {oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome");
        assert!(expressions(&oo).iter().any(|e| e == path), "{path} not in {oo}");
    }
    let (st, _) = post(s, &patient("NotABundle")).await;
    assert_eq!(st, 400);
    // Resource type differs from the URL's: the entry is named.
    let b = bundle(
        "transaction",
        vec![json!({"resource": patient("x"), "request": {"method": "POST", "url": "Observation"}})],
    );
    let (st, oo) = post(s, &b).await;
    assert_eq!(st, 400);
    assert!(
        expressions(&oo).iter().any(|e| e.starts_with("Bundle.entry[0]")),
        "{oo}"
    );
    nothing_stored(s).await;
}

async fn xml_bundle(s: &TestServer) {
    let xml = r#"<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/><entry><fullUrl value="urn:uuid:9a4e7a44-7c1f-4d53-8a0b-2b1d6a1e3f10"/><resource><Patient><name><family value="Côté"/></name></Patient></resource><request><method value="POST"/><url value="Patient"/></request></entry></Bundle>"#;
    let r = s
        .req(Method::POST, &s.base)
        .header("content-type", "application/fhir+xml")
        .body(xml)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let resp: Value = r.json().await.unwrap();
    assert_eq!(st, 200, "{resp}");
    assert_eq!(statuses(&resp), ["201 Created"]);
    assert_eq!(resp["entry"][0]["resource"]["name"][0]["family"], "Côté");
}

async fn thousands_of_entries(s: &TestServer) {
    let mut entries = Vec::new();
    for i in 0..1500 {
        let urn = format!("urn:uuid:00000000-0000-4000-8000-{i:012}");
        entries.push(json!({"fullUrl": urn, "resource": patient(&format!("P{i}")), "request": {"method": "POST", "url": "Patient"}}));
        entries.push(json!({"resource": observation(&urn), "request": {"method": "POST", "url": "Observation"}}));
    }
    let (st, resp) = post_with(s, &bundle("transaction", entries), Some("return=minimal")).await;
    assert_eq!(st, 200);
    let e = resp["entry"].as_array().unwrap();
    assert_eq!(e.len(), 3000);
    let (_, obs) = s.get_json(&located(&e[2999])).await;
    assert_eq!(obs["subject"]["reference"], located(&e[2998]).as_str());
}

/// A client that leaves before the answer does not cut its transaction short: the
/// transaction is finished (http/complete.rs), and the pooled connections it used keep
/// answering right afterwards.
async fn a_transaction_whose_client_left_is_finished(s: &TestServer) {
    let n = 1500;
    let mut entries = Vec::new();
    for i in 0..n {
        let urn = format!("urn:uuid:00000000-0000-4000-8000-{i:012}");
        entries.push(json!({"fullUrl": urn, "resource": patient(&format!("left-{i}")), "request": {"method": "POST", "url": "Patient"}}));
        entries.push(json!({"resource": observation(&urn), "request": {"method": "POST", "url": "Observation"}}));
    }
    let sent = s
        .req(Method::POST, &s.base)
        .header("content-type", "application/fhir+json")
        .timeout(Duration::from_millis(300))
        .body(serde_json::to_vec(&bundle("transaction", entries)).unwrap())
        .send()
        .await;
    let err = sent.expect_err("the client gives up before the answer");
    assert!(err.is_timeout(), "{err}");
    // The Bundle's last Patient is found once the transaction has committed.
    let last = format!("Patient?identifier=http://x|left-{}&_summary=count", n - 1);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, found) = s.get_json(&last).await;
        assert_eq!(status, 200);
        if found["total"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the transaction was never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, observations) = s.get_json("Observation?_summary=count").await;
    assert_eq!(observations["total"], n);
    for i in (0..n).step_by(50) {
        let (status, found) = s.get_json(&format!("Patient?identifier=http://x|left-{i}")).await;
        assert_eq!(status, 200);
        assert_eq!(found["entry"].as_array().map(Vec::len), Some(1), "left-{i}");
    }
}

on_both_backends!(
    transaction_resolves_urn_references,
    transaction_is_all_or_nothing,
    processing_order_and_response_order,
    conditional_create_matches_existing,
    conditional_create_by_identifier,
    conditional_references,
    conditional_reference_by_identifier,
    conditional_update_and_delete,
    stale_if_match_fails_the_transaction,
    same_resource_twice_is_refused,
    transaction_reads_its_own_writes,
    batch_failures_stay_in_their_entry,
    batch_entries_may_not_depend_on_each_other,
    get_entries_in_a_batch,
    patch_through_a_binary,
    malformed_bundles_are_refused,
    xml_bundle,
    thousands_of_entries,
    a_transaction_whose_client_left_is_finished,
);
