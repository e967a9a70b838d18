//! `POST [base]`: batch and transaction Bundles. The processing is in `service::bundle`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;

use crate::auth::middleware::classify;
use crate::auth::principal::Principal;
use crate::error::{Error, Result};
use crate::http::extract::{Conditions, FhirBody, Return};
use crate::http::respond;
use crate::policy::Access;
use crate::service::bundle::{self, EntryAccess, Prefer};
use crate::state::AppState;

pub async fn process(
    State(state): State<AppState>,
    principal: Option<Extension<Arc<Principal>>>,
    access: Access,
    cond: Conditions,
    FhirBody(body): FhirBody,
) -> Result<Response> {
    let prefer = match cond.prefer_return {
        Return::Minimal => Prefer::Minimal,
        Return::Representation => Prefer::Representation,
        Return::OperationOutcome => Prefer::OperationOutcome,
    };
    let principal = principal.map(|Extension(p)| p);
    // Each entry needs what the same request sent alone would need: the edge only
    // checked that the caller may write at all.
    let authorize = |e: &EntryAccess<'_>| allowed(principal.as_deref(), e);
    let out = bundle::process(&state, &access, body, prefer, &authorize).await?;
    Ok(respond::json(StatusCode::OK, out))
}

fn allowed(principal: Option<&Principal>, e: &EntryAccess<'_>) -> Result<()> {
    // Without a principal the token layer did not run: refuse rather than open up.
    let Some(p) = principal else {
        return Err(Error::Forbidden(
            "No access token was checked for this Bundle".to_string(),
        ));
    };
    let method = Method::from_bytes(e.method.as_bytes())
        .map_err(|_| Error::invalid("value", format!("Unknown method {}", e.method)))?;
    for (interaction, ty) in classify(&method, e.path, e.if_none_exist) {
        p.check(interaction, &ty)?;
    }
    Ok(())
}
