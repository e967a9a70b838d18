//! R5: every interaction on patient data, allowed or refused, becomes an AuditEvent
//! that is committed before the response leaves ([`layer`]). Records of concurrent
//! requests are written together ([`group_commit`]): one database transaction per
//! batch instead of one durable write per request.
//!
//! A record is committed as one row of the audit log, and stored as an AuditEvent by
//! the [`projection`] before anything reads AuditEvents. AuditEvents are ordinary
//! stored resources (searchable, in the patient's compartment through `entity.what`),
//! but the API never updates or deletes them.

pub mod group_commit;
pub mod projection;
pub mod record;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use group_commit::Auditor;
pub use record::Record;

use crate::auth::principal::Principal;
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
    /// Whose compartments held some of `resources` when the request read them, where
    /// the read already knew (a search's page): the group commit looks up the others.
    pub owners: HashMap<(String, String), Vec<String>>,
    pub query: Option<String>,
    /// The entries of a batch or transaction Bundle, each audited on its own.
    pub entries: Vec<EntryNote>,
    /// The verified caller, set inside the token check ([`identify`]).
    pub principal: Option<Arc<Principal>>,
}

/// One Bundle entry as its AuditEvent needs it.
#[derive(Debug, Clone)]
pub struct EntryNote {
    pub method: String,
    /// Below the base, without the query (`Observation/1`).
    pub path: String,
    pub status: u16,
    pub notes: NotesInner,
}

impl Notes {
    pub fn resource(&self, res_type: &str, id: &str) {
        self.add(res_type, id, None);
    }

    /// A resource and the patients whose compartments hold it.
    pub fn resource_owned(&self, res_type: &str, id: &str, owners: Vec<String>) {
        self.add(res_type, id, Some(owners));
    }

    fn add(&self, res_type: &str, id: &str, owners: Option<Vec<String>>) {
        // Only what a resource can be named by reaches the trail (and its SQL): a
        // request with a malformed id is refused before it touches anything.
        if !carnet_fhir::is_resource_type(res_type) || crate::service::ids::check_id(id).is_err() {
            return;
        }
        if let Ok(mut n) = self.inner.lock()
            && n.resources.len() < MAX_ENTITIES
            && !n.resources.iter().any(|(t, i)| t == res_type && i == id)
        {
            let key = (res_type.to_string(), id.to_string());
            if let Some(o) = owners {
                n.owners.insert(key.clone(), o);
            }
            n.resources.push(key);
        }
    }

    pub fn query(&self, q: &str) {
        if let Ok(mut n) = self.inner.lock() {
            n.query = Some(q.to_string());
        }
    }

    pub fn entry(&self, entry: EntryNote) {
        if let Ok(mut n) = self.inner.lock() {
            n.entries.push(entry);
        }
    }

    pub fn principal(&self, p: Arc<Principal>) {
        if let Ok(mut n) = self.inner.lock() {
            n.principal = Some(p);
        }
    }

    pub fn take(&self) -> NotesInner {
        self.inner
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }
}

/// Axum middleware around the token check: the request runs, then its AuditEvents are
/// made durable, then the response goes out. A request whose records cannot be written
/// gets a 500 instead of its answer.
///
/// What is recorded: one AuditEvent per request, or one per entry of a batch or of a
/// committed transaction (a transaction that fails is one record with its status).
/// Refusals at the edge are recorded too: a 403 of the scope check with the caller the
/// token names, a 401 with the token's caller when it still verifies (never: 401 means
/// it does not) else as an anonymous agent with the network address only.
pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let notes = Arc::new(Notes::default());
    req.extensions_mut().insert(notes.clone());
    let method = req.method().clone();
    // The path as the client sent it (a nested router sees it without `/fhir`).
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path().to_string(), |u| u.0.path().to_string());
    let remote = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let token = crate::auth::middleware::bearer(req.headers()).map(str::to_string);
    if projection::may_read_audit_events(method.as_str(), &path, req.uri().query().unwrap_or_default())
        && let Err(e) = projection::flush(&state).await
    {
        tracing::error!(error = %e, "audit log not projected: request refused");
        return e.into_response();
    }
    let resp = next.run(req).await;
    let mut inner = notes.take();
    let principal = match inner.principal.take() {
        Some(p) => Some(p),
        // Refused before the handler: find out who asked, if the token says so.
        None => match &token {
            Some(t) => crate::auth::middleware::verify(&state, t).await.ok().map(|p| {
                let mut p = (*p).clone();
                p.remote_addr = remote;
                Arc::new(p)
            }),
            None => None,
        },
    };
    let status = resp.status();
    let records: Vec<Record> = match &principal {
        None => vec![Record::anonymous(&state, remote, &method, &path, status)],
        Some(p) if inner.entries.is_empty() => vec![Record::new(&state, p, &method, &path, status, inner)],
        Some(p) => {
            let base = path.trim_end_matches('/');
            std::mem::take(&mut inner.entries)
                .into_iter()
                .map(|e| {
                    let m = Method::from_bytes(e.method.as_bytes()).unwrap_or(Method::GET);
                    let at = format!("{base}/{}", e.path.trim_start_matches('/'));
                    let code = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    Record::new(&state, p, &m, &at, code, e.notes)
                })
                .collect()
        }
    };
    match state.auditor().submit_all(&state, records).await {
        Ok(()) => resp,
        Err(e) => {
            // 500, or 503 when the database cannot be reached (group_commit::Failed).
            tracing::error!(error = %e, "audit record not written: response withheld");
            e.into_response()
        }
    }
}

/// Axum middleware inside the token check: hands the verified caller to [`layer`].
pub async fn identify(req: Request, next: Next) -> Response {
    if let (Some(p), Some(n)) = (
        req.extensions().get::<Arc<Principal>>(),
        req.extensions().get::<Arc<Notes>>(),
    ) {
        n.principal(p.clone());
    }
    next.run(req).await
}
