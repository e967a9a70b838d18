//! The `response` of each entry and the response Bundle that lists them.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::Prefer;
use crate::error::Error;
use crate::fhir::bundle::BundleWriter;
use crate::fhir::instant::format_micros;
use crate::fhir::meta::etag;
use crate::fhir::outcome::{Issue, outcome};
use crate::service::write::Written;

/// One entry's answer. Resources stay the bytes the store wrote or read: the response
/// Bundle is assembled around them without parsing them again.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub full_url: Option<String>,
    pub location: Option<String>,
    pub version: Option<i64>,
    pub last_modified: Option<i64>,
    pub resource: Option<Vec<u8>>,
    pub outcome: Option<Value>,
}

impl Answer {
    fn new(status: StatusCode) -> Answer {
        Answer {
            status,
            full_url: None,
            location: None,
            version: None,
            last_modified: None,
            resource: None,
            outcome: None,
        }
    }

    pub fn written(base: &str, w: Written, prefer: Prefer) -> Answer {
        let (status, what) = if w.created {
            (StatusCode::CREATED, "created")
        } else {
            (StatusCode::OK, "updated")
        };
        let message = format!("{}/{} {what} as version {}", w.res_type, w.id, w.version);
        Answer::version(
            base,
            status,
            &w.res_type,
            &w.id,
            w.version,
            w.last_updated,
            w.content,
            prefer,
            message,
        )
    }

    /// A conditional create whose criteria matched: nothing was written.
    pub fn existing(
        base: &str,
        t: &str,
        id: &str,
        version: i64,
        last_updated: i64,
        content: Vec<u8>,
        prefer: Prefer,
    ) -> Answer {
        let message = format!("{t}/{id} matched the ifNoneExist criteria: nothing was created");
        Answer::version(
            base,
            StatusCode::OK,
            t,
            id,
            version,
            last_updated,
            content,
            prefer,
            message,
        )
    }

    pub fn found(base: &str, t: &str, id: &str, version: i64, last_updated: i64, content: Vec<u8>) -> Answer {
        Answer::version(
            base,
            StatusCode::OK,
            t,
            id,
            version,
            last_updated,
            content,
            Prefer::Representation,
            String::new(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn version(
        base: &str,
        status: StatusCode,
        t: &str,
        id: &str,
        version: i64,
        last_updated: i64,
        content: Vec<u8>,
        prefer: Prefer,
        message: String,
    ) -> Answer {
        let mut a = Answer::new(status);
        a.full_url = Some(format!("{base}/{t}/{id}"));
        a.location = Some(format!("{t}/{id}/_history/{version}"));
        a.version = Some(version);
        a.last_modified = Some(last_updated);
        match prefer {
            Prefer::Representation => a.resource = Some(content),
            Prefer::Minimal => {}
            Prefer::OperationOutcome => a.outcome = Some(outcome(&[Issue::information("informational", message)])),
        }
        a
    }

    pub fn deleted(version: Option<i64>, prefer: Prefer, message: String) -> Answer {
        let mut a = Answer::new(StatusCode::NO_CONTENT);
        a.version = version;
        if prefer == Prefer::OperationOutcome {
            a.outcome = Some(outcome(&[Issue::information("informational", message)]));
        }
        a
    }

    /// A history or search result: a Bundle inside the entry.
    pub fn bundle(content: Vec<u8>) -> Answer {
        let mut a = Answer::new(StatusCode::OK);
        a.resource = Some(content);
        a
    }

    pub fn failed(e: &Error) -> Answer {
        let status = e.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "failure in a batch entry");
        }
        let mut a = Answer::new(status);
        a.outcome = Some(e.outcome());
        a
    }

    fn response(&mut self) -> Value {
        let mut r = Map::new();
        let reason = self.status.canonical_reason().unwrap_or("");
        r.insert(
            "status".into(),
            json!(format!("{} {reason}", self.status.as_u16()).trim_end()),
        );
        if let Some(l) = &self.location {
            r.insert("location".into(), json!(l));
        }
        if let Some(v) = self.version {
            r.insert("etag".into(), json!(etag(v)));
        }
        if let Some(t) = self.last_modified {
            r.insert("lastModified".into(), json!(format_micros(t)));
        }
        if let Some(o) = self.outcome.take() {
            r.insert("outcome".into(), o);
        }
        json!({ "response": r })
    }
}

/// The `transaction-response` or `batch-response`, entries in the request's order.
pub fn render(bundle_type: &str, now: i64, answers: Vec<Answer>) -> Vec<u8> {
    let mut w = BundleWriter::new(bundle_type, now, None, &[]);
    for mut a in answers {
        let response = a.response();
        w.entry(a.full_url.as_deref(), a.resource.as_deref(), &response);
    }
    w.finish()
}
