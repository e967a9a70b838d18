//! Graceful shutdown: a request in flight when the server is told to stop still gets
//! its answer, and what it wrote is there after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use carnet_tests::{Backend, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

async fn in_flight_request_finishes(backend: Backend) {
    let s = TestServer::start(backend).await;
    // A transaction large enough to still be running when the stop comes.
    let entries: Vec<Value> = (0..1500)
        .map(|i| {
            json!({
                "fullUrl": format!("urn:uuid:00000000-0000-0000-0000-{i:012}"),
                "resource": {"resourceType": "Patient", "name": [{"family": format!("Arrêt{i}")}]},
                "request": {"method": "POST", "url": "Patient"}
            })
        })
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let request = s.send_json(Method::POST, "", &bundle);
    let (response, stopped) = tokio::join!(request, async {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        s.begin_shutdown();
    });
    let () = stopped;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["entry"].as_array().unwrap().len(), 1500);
    let first = body["entry"][0]["response"]["location"].as_str().unwrap().to_string();
    // The server did stop: new connections are refused.
    assert!(s.req(Method::GET, "metadata").send().await.is_err());
    // Restart on the same database: the transaction's writes are all there.
    let s = s.restart().await;
    let id_path = first.split("/_history").next().unwrap();
    let (status, _) = s.get_json(id_path).await;
    assert_eq!(status, 200);
    let (_, count) = s.get_json("Patient?_summary=count").await;
    assert_eq!(count["total"], 1500);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_finishes_sqlite() {
    in_flight_request_finishes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_finishes_postgres() {
    in_flight_request_finishes(Backend::Postgres).await;
}
