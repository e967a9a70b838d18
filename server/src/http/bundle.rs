//! `POST [base]`: batch and transaction Bundles. The processing is in `service::bundle`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::error::Result;
use crate::http::extract::{Conditions, FhirBody, Return};
use crate::http::respond;
use crate::service::bundle::{self, Prefer};
use crate::state::AppState;

pub async fn process(
    State(state): State<AppState>,
    cond: Conditions,
    FhirBody(body): FhirBody,
) -> Result<Response> {
    let prefer = match cond.prefer_return {
        Return::Minimal => Prefer::Minimal,
        Return::Representation => Prefer::Representation,
        Return::OperationOutcome => Prefer::OperationOutcome,
    };
    // Access-token checks of each entry plug in here (`bundle::EntryAccess`).
    let out = bundle::process(&state, body, prefer, &|_| Ok(())).await?;
    Ok(respond::json(StatusCode::OK, out))
}
