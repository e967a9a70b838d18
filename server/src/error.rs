//! The error of the service layer: what went wrong, in FHIR terms. The HTTP edge
//! (`http::error`) maps each variant to a status code and an OperationOutcome.

use thiserror::Error;

use crate::fhir::outcome::Issue;
use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum Error {
    /// The request is malformed (400): bad JSON, bad resource, bad parameter.
    #[error("invalid request")]
    Invalid(Vec<Issue>),
    /// Well-formed but breaks a business rule or profile (422).
    #[error("unprocessable resource")]
    Unprocessable(Vec<Issue>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    NotSupported(String),
    /// Authenticated, but not allowed (403): a scope or an access rule refuses it.
    #[error("{0}")]
    Forbidden(String),
    /// A failure inside the server that is not the store's (500); the text is logged,
    /// never sent, and never holds a secret.
    #[error("{0}")]
    Internal(String),
    /// Something this request depends on outside the server (the external identity
    /// provider's JWKS) cannot be reached (503); the text is logged, not sent.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        Error::Store(StoreError::Database(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid(vec![Issue::error(code, message)])
    }

    pub fn invalid_at(code: &'static str, expression: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid(vec![Issue::error(code, message).at(expression)])
    }
}
