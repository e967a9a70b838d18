//! Create, read, vread, update, delete, patch, preconditions and Prefer, over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carnet_tests::{Backend, TestServer, expressions, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "https://ramq.gouv.qc.ca/nam", "value": "TREM12345678"}],
        "name": [{"family": "Tremblay", "given": ["Élise"]}],
        "birthDate": "1980-02-29"
    })
}

async fn create_then_read(s: &TestServer) {
    let r = s.send_json(Method::POST, "Patient", &patient()).await;
    assert_eq!(r.status().as_u16(), 201);
    let h = r.headers().clone();
    assert_eq!(h["etag"], "W/\"1\"");
    assert!(h.contains_key("last-modified"));
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        h["location"].to_str().unwrap(),
        s.url(&format!("Patient/{id}/_history/1"))
    );
    assert_eq!(created["meta"]["versionId"], "1");
    assert!(created["meta"]["lastUpdated"].as_str().unwrap().ends_with('Z'));

    let r = s.get(&format!("Patient/{id}")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/fhir+json; charset=utf-8");
    assert_eq!(r.headers()["etag"], "W/\"1\"");
    let read: Value = r.json().await.unwrap();
    assert_eq!(read, created);
    assert_eq!(read["name"][0]["given"][0], "Élise");
}

async fn update_versions_and_vread(s: &TestServer) {
    let created = s.create(patient()).await;
    let id = created["id"].as_str().unwrap();
    let mut body = created.clone();
    body["birthDate"] = json!("1980-03-01");
    let r = s.send_json(Method::PUT, &format!("Patient/{id}"), &body).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["etag"], "W/\"2\"");
    let (st, v1) = s.get_json(&format!("Patient/{id}/_history/1")).await;
    assert_eq!(st, 200);
    assert_eq!(v1["birthDate"], "1980-02-29");
    let (_, v2) = s.get_json(&format!("Patient/{id}/_history/2")).await;
    assert_eq!(v2["birthDate"], "1980-03-01");
    assert_eq!(v2["meta"]["versionId"], "2");
    let (st, _) = s.get_json(&format!("Patient/{id}/_history/3")).await;
    assert_eq!(st, 404);
}

async fn update_as_create_with_client_id(s: &TestServer) {
    let mut body = patient();
    body["id"] = json!("client-chosen-1");
    let r = s.send_json(Method::PUT, "Patient/client-chosen-1", &body).await;
    assert_eq!(r.status().as_u16(), 201);
    let (st, read) = s.get_json("Patient/client-chosen-1").await;
    assert_eq!(st, 200);
    assert_eq!(read["id"], "client-chosen-1");
}

async fn stale_if_match_is_refused(s: &TestServer) {
    let created = s.create(patient()).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("Patient/{id}");
    let ok = s
        .req(Method::PUT, &path)
        .header("content-type", "application/fhir+json")
        .header("if-match", "W/\"1\"")
        .body(serde_json::to_vec(&created).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    // A second writer who also read version 1 must not overwrite version 2.
    let stale = s
        .req(Method::PUT, &path)
        .header("content-type", "application/fhir+json")
        .header("if-match", "W/\"1\"")
        .body(serde_json::to_vec(&created).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 412);
    let oo: Value = stale.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let stale_delete = s
        .req(Method::DELETE, &path)
        .header("if-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale_delete.status().as_u16(), 412);
    let (_, now) = s.get_json(&path).await;
    assert_eq!(now["meta"]["versionId"], "2");
}

async fn delete_then_gone(s: &TestServer) {
    let created = s.create(patient()).await;
    let path = format!("Patient/{}", created["id"].as_str().unwrap());
    let r = s.req(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (st, oo) = s.get_json(&path).await;
    assert_eq!(st, 410);
    assert_eq!(oo["resourceType"], "OperationOutcome");
    // The version before the delete is still readable.
    let (st, _) = s.get_json(&format!("{path}/_history/1")).await;
    assert_eq!(st, 200);
    let (st, _) = s.get_json("Patient/never-existed").await;
    assert_eq!(st, 404);
}

async fn conditional_read_headers(s: &TestServer) {
    let created = s.create(patient()).await;
    let path = format!("Patient/{}", created["id"].as_str().unwrap());
    let r = s
        .req(Method::GET, &path)
        .header("if-none-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);
    let r = s
        .req(Method::GET, &path)
        .header("if-none-match", "W/\"0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let lm = s.get(&path).await.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    let r = s
        .req(Method::GET, &path)
        .header("if-modified-since", lm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);
    let r = s
        .req(Method::GET, &path)
        .header("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn prefer_return(s: &TestServer) {
    let r = s
        .req(Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=minimal")
        .body(serde_json::to_vec(&patient()).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert!(r.headers().contains_key("location"));
    assert!(r.bytes().await.unwrap().is_empty());
    let r = s
        .req(Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=OperationOutcome")
        .body(serde_json::to_vec(&patient()).unwrap())
        .send()
        .await
        .unwrap();
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
}

async fn json_patch(s: &TestServer) {
    let created = s.create(patient()).await;
    let path = format!("Patient/{}", created["id"].as_str().unwrap());
    let patch = json!([{"op": "replace", "path": "/birthDate", "value": "1981-01-01"}]);
    let r = s
        .req(Method::PATCH, &path)
        .header("content-type", "application/json-patch+json")
        .header("if-match", "W/\"1\"")
        .body(serde_json::to_vec(&patch).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["birthDate"], "1981-01-01");
    assert_eq!(body["meta"]["versionId"], "2");
    // A stale patch is refused, and a patch making the resource invalid stores nothing.
    let stale = s
        .req(Method::PATCH, &path)
        .header("content-type", "application/json-patch+json")
        .header("if-match", "W/\"1\"")
        .body(serde_json::to_vec(&patch).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 412);
    let bad = json!([{"op": "replace", "path": "/birthDate", "value": "not-a-date"}]);
    let r = s
        .req(Method::PATCH, &path)
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&bad).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (_, now) = s.get_json(&path).await;
    assert_eq!(now["meta"]["versionId"], "2");
}

async fn bad_input_is_refused_with_a_path(s: &TestServer) {
    let cases = [
        (
            json!({"resourceType": "Patient", "birthDate": "1980-13-45"}),
            "Patient.birthDate",
        ),
        (
            json!({"resourceType": "Patient", "unknownThing": true}),
            "Patient.unknownThing",
        ),
        (json!({"resourceType": "Patient", "active": "yes"}), "Patient.active"),
    ];
    for (body, path) in cases {
        let r = s.send_json(Method::POST, "Patient", &body).await;
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let oo: Value = r.json().await.unwrap();
        assert!(
            expressions(&oo).iter().any(|e| e.starts_with(path)),
            "{path} not in {oo}"
        );
    }
    // resourceType that does not match the URL
    let r = s.send_json(Method::POST, "Observation", &patient()).await;
    assert_eq!(r.status().as_u16(), 400);
    // id that does not match on update
    let mut body = patient();
    body["id"] = json!("abc");
    let r = s.send_json(Method::PUT, "Patient/xyz", &body).await;
    assert_eq!(r.status().as_u16(), 400);
    // not JSON at all
    let r = s
        .req(Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // unsupported media type
    let r = s
        .req(Method::POST, "Patient")
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // not acceptable
    let r = s
        .req(Method::GET, "metadata")
        .header("accept", "image/png")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 406);
    // unknown type
    let (st, _) = s.get_json("Unicorn/1").await;
    assert_eq!(st, 404);
    // invalid id
    let (st, _) = s.get_json("Patient/a%20b").await;
    assert_eq!(st, 400);
    // method not allowed
    let r = s.req(Method::DELETE, "metadata").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // nothing was stored by any of these
    let (_, hist) = s.get_json("_history").await;
    assert!(hist.get("entry").is_none(), "{hist}");
}

/// The limit is configurable; a body over it is refused before it is parsed. The test
/// server gets a small limit so the client has finished sending when the 413 comes.
async fn body_limit_is_413(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.body_limit = 2048).await;
    let big = "x".repeat(4096);
    let body = format!(r#"{{"resourceType":"Patient","name":[{{"family":"{big}"}}]}}"#);
    let r = s
        .req(Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let small = s.send_json(Method::POST, "Patient", &patient()).await;
    assert_eq!(small.status().as_u16(), 201);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_is_413_sqlite() {
    body_limit_is_413(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_is_413_postgres() {
    body_limit_is_413(Backend::Postgres).await;
}

async fn summary_and_elements_on_read(s: &TestServer) {
    let mut p = patient();
    p["text"] =
        json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Élise Tremblay</div>"});
    p["photo"] = json!([{"contentType": "image/png", "data": "iVBORw0KGgo="}]);
    let created = s.create(p).await;
    let path = format!("Patient/{}", created["id"].as_str().unwrap());
    let subsetted = |v: &Value| {
        v["meta"]["tag"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["code"] == "SUBSETTED"))
    };
    let (_, full) = s.get_json(&path).await;
    assert!(full.get("photo").is_some() && !subsetted(&full));
    let (_, summary) = s.get_json(&format!("{path}?_summary=true")).await;
    assert_eq!(summary["birthDate"], "1980-02-29");
    assert!(summary.get("name").is_some() && summary.get("identifier").is_some());
    assert!(
        summary.get("photo").is_none() && summary.get("text").is_none(),
        "{summary}"
    );
    assert!(subsetted(&summary));
    let (_, text) = s.get_json(&format!("{path}?_summary=text")).await;
    assert!(text.get("text").is_some() && text.get("name").is_none() && text.get("id").is_some());
    let (_, data) = s.get_json(&format!("{path}?_summary=data")).await;
    assert!(data.get("text").is_none() && data.get("photo").is_some());
    let (_, elements) = s.get_json(&format!("{path}?_elements=birthDate")).await;
    let keys: Vec<&str> = elements.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["resourceType", "id", "meta", "birthDate"]);
    assert!(subsetted(&elements));
    let (st, _) = s.get_json(&format!("{path}?_summary=maybe")).await;
    assert_eq!(st, 400);
}

async fn history_levels_and_paging(s: &TestServer) {
    let a = s.create(patient()).await;
    let id = a["id"].as_str().unwrap();
    for _ in 0..3 {
        let r = s.send_json(Method::PUT, &format!("Patient/{id}"), &a).await;
        assert_eq!(r.status().as_u16(), 200);
    }
    s.create(json!({"resourceType": "Organization", "name": "CIUSSS"}))
        .await;
    let (st, h) = s.get_json(&format!("Patient/{id}/_history")).await;
    assert_eq!(st, 200);
    assert_eq!(h["type"], "history");
    let versions: Vec<&str> = h["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["4", "3", "2", "1"]);
    let (_, t) = s.get_json("Patient/_history").await;
    assert_eq!(t["entry"].as_array().unwrap().len(), 4);
    let (_, sys) = s.get_json("_history").await;
    assert_eq!(sys["entry"].as_array().unwrap().len(), 5);
    assert_eq!(sys["entry"][0]["resource"]["resourceType"], "Organization");
    // paging: 2 per page, follow next links
    let mut url = s.url(&format!("Patient/{id}/_history?_count=2"));
    let mut seen = Vec::new();
    loop {
        let (_, page) = s.get_json(&url).await;
        for e in page["entry"].as_array().unwrap() {
            seen.push(e["resource"]["meta"]["versionId"].as_str().unwrap().to_string());
        }
        match carnet_tests::next_link(&page) {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(seen, ["4", "3", "2", "1"]);
    // _since in the future returns nothing
    let (_, none) = s
        .get_json(&format!("Patient/{id}/_history?_since=2999-01-01T00:00:00Z"))
        .await;
    assert!(none.get("entry").is_none());
    let (st, _) = s.get_json(&format!("Patient/{id}/_history?_since=garbage")).await;
    assert_eq!(st, 400);
}

async fn xml_in_and_out(s: &TestServer) {
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><name><family value="Côté"/></name><birthDate value="1990-05-06"/></Patient>"#;
    let r = s
        .req(Method::POST, "Patient")
        .header("content-type", "application/fhir+xml")
        .header("accept", "application/fhir+xml")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+xml")
    );
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    assert!(text.contains("<family value=\"Côté\"/>"), "{text}");
    let id = loc.split('/').rev().nth(2).unwrap();
    let (_, json) = s.get_json(&format!("Patient/{id}")).await;
    assert_eq!(json["name"][0]["family"], "Côté");
    let r = s.get(&format!("Patient/{id}?_format=xml")).await;
    let text = r.text().await.unwrap();
    assert!(text.contains("<Patient xmlns=\"http://hl7.org/fhir\""), "{text}");
    let r = s.get(&format!("Patient/{id}?_pretty=true")).await;
    assert!(r.text().await.unwrap().contains("\n  \"resourceType\""));
}

async fn metadata_is_a_capability_statement(s: &TestServer) {
    let (st, cs) = s.get_json("metadata").await;
    assert_eq!(st, 200);
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert!(cs["rest"][0]["resource"].as_array().unwrap().len() >= 140);
    // Valid R4, by the same strict checker the server applies to what it stores.
    if let Err(issues) = carnet_fhir::check_resource(&cs) {
        panic!("the CapabilityStatement is not valid R4: {issues:#?}");
    }
}

async fn unappliable_patch_is_422_and_stores_nothing(s: &TestServer) {
    let created = s.create(patient()).await;
    let path = format!("Patient/{}", created["id"].as_str().unwrap());
    let patch = json!([{"op": "remove", "path": "/deceasedBoolean"}]);
    let r = s
        .req(Method::PATCH, &path)
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&patch).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let (_, now) = s.get_json(&path).await;
    assert_eq!(now["meta"]["versionId"], "1");
}

on_both_backends!(
    create_then_read,
    update_versions_and_vread,
    update_as_create_with_client_id,
    stale_if_match_is_refused,
    delete_then_gone,
    conditional_read_headers,
    prefer_return,
    json_patch,
    bad_input_is_refused_with_a_path,
    summary_and_elements_on_read,
    history_levels_and_paging,
    xml_in_and_out,
    metadata_is_a_capability_statement,
    unappliable_patch_is_422_and_stores_nothing,
);
