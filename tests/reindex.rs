//! `carnet reindex` as a real process against a running server's database (both
//! backends): after the sensitivity settings change, a result published under the old
//! ones is held back from its patient once re-derived (R2), and search index rows that
//! are missing (a database written before they existed) are rebuilt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "policy_support.rs"]
mod support;

use carnet_tests::{Backend, TestServer};
use reqwest::Method;
use serde_json::json;
use sqlx::Connection;
use support::{PATIENT_SCOPES, user_token};

async fn sql(s: &TestServer, statement: &'static str) {
    if s.backend == Backend::Sqlite {
        let mut c = sqlx::SqliteConnection::connect(&s.database_url).await.unwrap();
        sqlx::query(statement).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(&s.database_url).await.unwrap();
        sqlx::query(statement).execute(&mut c).await.unwrap();
    }
}

async fn reindex_applies_new_settings(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = json!({"resourceType": "Patient", "id": "ri", "birthDate": "1980-01-01", "name": [{"family": "Roy"}]});
    assert_eq!(s.send_json(Method::PUT, "Patient/ri", &p).await.status(), 201);
    let o = json!({"resourceType": "Observation", "id": "ri-o", "status": "final",
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]},
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": "Patient/ri"}, "issued": "2020-01-01T00:00:00Z"});
    assert_eq!(s.send_json(Method::PUT, "Observation/ri-o", &o).await.status(), 201);
    let read = async |s: &TestServer| {
        // A new port after a restart is a new audience: a new token each time.
        let tok = user_token(s, "Patient/ri", PATIENT_SCOPES).await.unwrap();
        s.req_as(Some(&tok), Method::GET, "Observation/ri-o")
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(read(&s).await, 200, "published: not sensitive, past the delay");

    // Normal confidentiality becomes sensitive; the index rows of tokens go missing.
    let s = s
        .restart_with(|c| c.policy.confidentiality_labels = vec!["R".into(), "V".into(), "N".into()])
        .await;
    sql(&s, "DELETE FROM idx_token").await;
    assert_eq!(read(&s).await, 200, "decided when it was written");
    let (_, found) = s.get_json("Observation?code=http://loinc.org|2345-7").await;
    assert_eq!(found["total"], 0);

    let bin = carnet_tests::bin::carnet_binary().to_path_buf();
    let url = s.database_url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["reindex", "--database-url", &url, "--confidentiality-labels", "R,V,N"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("re-derived the search index and policy tables of"),
        "{stdout}"
    );

    assert_eq!(read(&s).await, 404, "held back once re-derived (R2)");
    let (_, found) = s.get_json("Observation?code=http://loinc.org|2345-7").await;
    assert_eq!(found["total"], 1, "the index is back");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reindex_applies_new_settings() {
    reindex_applies_new_settings(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reindex_applies_new_settings() {
    reindex_applies_new_settings(Backend::Postgres).await;
}
