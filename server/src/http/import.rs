//! `POST [base]/$import`: an NDJSON body (one resource a line) stored with the bulk
//! import path, read as it arrives. For backend services only (a `system/` token that
//! may create and update every type). The answer is an OperationOutcome: what was
//! stored, and one issue per refused line.

use std::io::Read;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use crate::auth::principal::{Actor, Interaction};
use crate::error::{Error, Result};
use crate::fhir::outcome::{Issue, outcome};
use crate::http::respond;
use crate::policy::Access;
use crate::service::import::{self, Importer};
use crate::state::AppState;

const NDJSON: [&str; 3] = ["application/fhir+ndjson", "application/ndjson", "application/x-ndjson"];

pub async fn import(State(state): State<AppState>, access: Access, req: Request) -> Result<Response> {
    let p = access
        .principal()
        .ok_or_else(|| Error::Forbidden("No access token was checked for this request".to_string()))?;
    if !matches!(p.actor, Actor::System) {
        return Err(Error::Forbidden(
            "$import is for backend services (a system/ token)".to_string(),
        ));
    }
    p.check(Interaction::Create, "*")?;
    p.check(Interaction::Update, "*")?;
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !media.as_deref().is_some_and(|m| NDJSON.contains(&m)) {
        return Err(Error::UnsupportedMediaType(
            "$import takes NDJSON: Content-Type application/fhir+ndjson".to_string(),
        ));
    }
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let who = Importer {
        client_id: p.client_id.clone(),
        remote_addr: p.remote_addr,
        path: req.uri().path().to_string(),
    };
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(forward(req.into_body(), tx));
    let report = import::import_ndjson(&state, Box::new(BodyReader { rx, cur: Bytes::new() }), length, &who).await?;
    let mut issues = vec![Issue::information(
        "informational",
        format!(
            "{} resources imported, {} lines rejected",
            report.resources,
            report.rejected.len()
        ),
    )];
    issues.extend(report.rejected.iter().map(|r| {
        let what = r.what.as_deref().map(|w| format!(" {w}:")).unwrap_or_default();
        Issue::error("processing", format!("{}:{what} {}", r.at, r.reason))
    }));
    Ok(respond::value(StatusCode::OK, &outcome(&issues)))
}

/// Hands the body's data frames to the import's reader thread as they arrive.
async fn forward(mut body: Body, tx: mpsc::Sender<std::io::Result<Bytes>>) {
    while let Some(frame) = body.frame().await {
        let item = match frame {
            Ok(f) => match f.into_data() {
                Ok(data) => Ok(data),
                Err(_) => continue,
            },
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// The request body as a blocking reader (the import reads on its own thread).
struct BodyReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}
