//! R5: every interaction on patient data, allowed or refused, becomes an AuditEvent
//! that is committed before the response leaves ([`layer`]). Records of concurrent
//! requests are written together ([`group_commit`]): one database transaction per
//! batch instead of one durable write per request.
//!
//! AuditEvents are ordinary stored resources (searchable, in the patient's compartment
//! through `entity.what`), but the API never updates or deletes them.

pub mod group_commit;
pub mod record;

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use group_commit::Auditor;
pub use record::Record;

use crate::auth::principal::Principal;
use crate::error::Error;
use crate::state::AppState;

/// Most resources one AuditEvent names (a search page can hold many more).
pub const MAX_ENTITIES: usize = 100;

/// What one request touched, filled in by the service layer through `Access::note`.
#[derive(Debug, Default)]
pub struct Notes {
    inner: Mutex<NotesInner>,
}

#[derive(Debug, Default, Clone)]
pub struct NotesInner {
    pub resources: Vec<(String, String)>,
    pub query: Option<String>,
}

impl Notes {
    pub fn resource(&self, res_type: &str, id: &str) {
        if let Ok(mut n) = self.inner.lock()
            && n.resources.len() < MAX_ENTITIES
            && !n.resources.iter().any(|(t, i)| t == res_type && i == id)
        {
            n.resources.push((res_type.to_string(), id.to_string()));
        }
    }

    pub fn query(&self, q: &str) {
        if let Ok(mut n) = self.inner.lock() {
            n.query = Some(q.to_string());
        }
    }

    pub fn take(&self) -> NotesInner {
        self.inner
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }
}

/// Axum middleware inside the token check: the handler runs, then its AuditEvent is
/// made durable, then the response goes out. A request whose record cannot be written
/// gets a 500 instead of its answer.
pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(principal) = req.extensions().get::<Arc<Principal>>().cloned() else {
        return next.run(req).await;
    };
    let notes = Arc::new(Notes::default());
    req.extensions_mut().insert(notes.clone());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let rec = Record::new(&state, &principal, &method, &path, resp.status(), notes.take());
    match state.auditor().submit(&state, rec).await {
        Ok(()) => resp,
        Err(e) => {
            tracing::error!(error = %e, "audit record not written: response withheld");
            Error::Internal(format!("audit: {e}")).into_response()
        }
    }
}
