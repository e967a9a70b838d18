//! The one place where service errors become HTTP: a status code and an
//! OperationOutcome. Internal details (SQL, driver messages) are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::fhir::outcome::{Issue, outcome};

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Gone(_) => StatusCode::GONE,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::NotSupported(_) => StatusCode::BAD_REQUEST,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Store(e) if e.is_conflict() => StatusCode::CONFLICT,
            Error::Store(e) if e.is_unreachable() => StatusCode::SERVICE_UNAVAILABLE,
            Error::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn issues(&self) -> Vec<Issue> {
        match self {
            Error::Invalid(issues) | Error::Unprocessable(issues) => issues.clone(),
            Error::NotFound(m) => vec![Issue::error("not-found", m.clone())],
            Error::Gone(m) => vec![Issue::error("deleted", m.clone())],
            Error::MethodNotAllowed(m) | Error::NotSupported(m) => vec![Issue::error("not-supported", m.clone())],
            Error::NotAcceptable(m) | Error::UnsupportedMediaType(m) => vec![Issue::error("not-supported", m.clone())],
            Error::PayloadTooLarge(_) => vec![Issue::error("too-costly", self.to_string())],
            Error::Conflict(m) => vec![Issue::error("conflict", m.clone())],
            Error::PreconditionFailed(m) => vec![Issue::error("conflict", m.clone())],
            Error::Forbidden(m) => vec![Issue::error("forbidden", m.clone())],
            Error::Internal(_) => vec![Issue::error("exception", "Internal server error")],
            Error::Unavailable(_) => vec![Issue::error(
                "transient",
                "A service this request depends on is unreachable; retry later",
            )],
            Error::Store(e) if e.is_conflict() => {
                vec![Issue::error(
                    "conflict",
                    "A concurrent change conflicted with this request; retry it",
                )]
            }
            Error::Store(e) if e.is_unreachable() => vec![Issue::error(
                "transient",
                "The database cannot be reached just now; retry later",
            )],
            Error::Store(_) => vec![Issue::error("exception", "Internal server error")],
        }
    }

    pub fn outcome(&self) -> serde_json::Value {
        outcome(&self.issues())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Store(e) = &self
            && !e.is_conflict()
        {
            tracing::error!(error = %e, "storage failure");
        }
        if let Error::Internal(m) | Error::Unavailable(m) = &self {
            tracing::error!(error = %m, "internal failure");
        }
        let body = serde_json::to_vec(&self.outcome()).unwrap_or_default();
        // Seconds: an outside service (a JWKS) stays down longer than a database
        // restarts.
        let retry = match &self {
            Error::Unavailable(_) => Some("30"),
            Error::Store(e) if e.is_unreachable() => Some("5"),
            _ => None,
        };
        let mut resp = (self.status(), body).into_response();
        if let Some(secs) = retry {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json; charset=utf-8"),
        );
        resp
    }
}
