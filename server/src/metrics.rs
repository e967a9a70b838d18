//! Prometheus metrics (`GET /metrics`), hand-rolled on atomics: a request costs a few
//! relaxed atomic adds and no lock or allocation, and the label sets are fixed in
//! advance (interaction × status code), so no client can grow them.
//!
//! Gauges that other parts own (database pools, the audit queue, the job queue) are
//! read when the page is rendered rather than pushed on every change.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// The label values of `interaction`: FHIR R4's restful interactions (compartment
/// search counts as `search-type`), every `$operation` as `operation`, then what is
/// not FHIR.
pub const INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "history-system",
    "create",
    "search-type",
    "search-system",
    "capabilities",
    "transaction",
    "operation",
    "auth",
    "ops",
    "other",
];

/// Upper bounds (seconds) of the latency histogram's buckets; `+Inf` follows.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Status codes 100..=599 each have their counter.
const STATUS_MIN: u16 = 100;
const STATUSES: usize = 500;

pub struct Metrics {
    /// `[interaction * STATUSES + (status - 100)]`
    requests: Vec<AtomicU64>,
    /// `[interaction * (BUCKETS + 1) + bucket]`, not cumulative (summed when rendered).
    buckets: Vec<AtomicU64>,
    sum_micros: Vec<AtomicU64>,
    counts: Vec<AtomicU64>,
    /// Requests being answered now.
    in_flight: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        let n = INTERACTIONS.len();
        let zeros = |len: usize| (0..len).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Metrics {
            requests: zeros(n * STATUSES),
            buckets: zeros(n * (BUCKETS.len() + 1)),
            sum_micros: zeros(n),
            counts: zeros(n),
            in_flight: AtomicI64::new(0),
        }
    }
}

impl Metrics {
    /// Records one answered request.
    pub fn observe(&self, interaction: usize, status: u16, micros: u64) {
        let i = interaction.min(INTERACTIONS.len() - 1);
        let s = usize::from(status.clamp(STATUS_MIN, STATUS_MIN + STATUSES as u16 - 1) - STATUS_MIN);
        if let Some(c) = self.requests.get(i * STATUSES + s) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let secs = micros as f64 / 1e6;
        let b = BUCKETS.iter().position(|le| secs <= *le).unwrap_or(BUCKETS.len());
        if let Some(c) = self.buckets.get(i * (BUCKETS.len() + 1) + b) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = self.sum_micros.get(i) {
            c.fetch_add(micros, Ordering::Relaxed);
        }
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The request counters and the latency histogram, in the text exposition format.
    pub fn render_requests(&self, out: &mut String) {
        out.push_str(
            "# HELP carnet_http_requests_total HTTP requests answered, by FHIR interaction and status code.\n",
        );
        out.push_str("# TYPE carnet_http_requests_total counter\n");
        for (i, name) in INTERACTIONS.iter().enumerate() {
            for s in 0..STATUSES {
                let n = self.requests[i * STATUSES + s].load(Ordering::Relaxed);
                if n > 0 {
                    let code = usize::from(STATUS_MIN) + s;
                    let _ = writeln!(
                        out,
                        "carnet_http_requests_total{{interaction=\"{name}\",code=\"{code}\"}} {n}"
                    );
                }
            }
        }
        out.push_str(
            "# HELP carnet_http_request_duration_seconds Time from request to response headers, by FHIR interaction.\n",
        );
        out.push_str("# TYPE carnet_http_request_duration_seconds histogram\n");
        for (i, name) in INTERACTIONS.iter().enumerate() {
            let count = self.counts[i].load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (b, le) in BUCKETS.iter().enumerate() {
                cumulative += self.buckets[i * (BUCKETS.len() + 1) + b].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "carnet_http_request_duration_seconds_bucket{{interaction=\"{name}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "carnet_http_request_duration_seconds_bucket{{interaction=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let sum = self.sum_micros[i].load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "carnet_http_request_duration_seconds_sum{{interaction=\"{name}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "carnet_http_request_duration_seconds_count{{interaction=\"{name}\"}} {count}"
            );
        }
    }
}

/// The `INTERACTIONS` index of a request, from its method and path alone (the body
/// is not read: a POST to the base counts as `transaction`, batches included).
pub fn interaction_of(method: &Method, path: &str) -> usize {
    let idx = |name: &str| {
        INTERACTIONS
            .iter()
            .position(|n| *n == name)
            .unwrap_or(INTERACTIONS.len() - 1)
    };
    let Some(rest) = path.strip_prefix("/fhir") else {
        return if path.starts_with("/auth") {
            idx("auth")
        } else if matches!(path, "/health" | "/ready" | "/metrics") {
            idx("ops")
        } else {
            idx("other")
        };
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let m = method.as_str();
    let name = match segs.as_slice() {
        [] if m == "POST" => "transaction",
        [] => "search-system",
        ["metadata"] | [".well-known", ..] => "capabilities",
        ["_history"] => "history-system",
        [op] if op.starts_with('$') => "operation",
        [_, op] if op.starts_with('$') => "operation",
        [_, _, op] if op.starts_with('$') => "operation",
        [_] => match m {
            "GET" => "search-type",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "other",
        },
        [_, "_search"] => "search-type",
        [_, "_history"] => "history-type",
        [_, _] => match m {
            "GET" => "read",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "other",
        },
        [_, _, "_history"] => "history-instance",
        [_, _, "_history", _] => "vread",
        [_, _, _] if m == "GET" => "search-type",
        _ => "other",
    };
    idx(name)
}

/// Decrements the in-flight gauge when the request ends, also when the client goes
/// away and the request's future is dropped.
struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Axum middleware around every route: counts the answer and its latency.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let interaction = interaction_of(req.method(), req.uri().path());
    let start = Instant::now();
    state.metrics().in_flight.fetch_add(1, Ordering::Relaxed);
    let guard = InFlight(&state.metrics().in_flight);
    let resp = next.run(req).await;
    drop(guard);
    let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    state.metrics().observe(interaction, resp.status().as_u16(), micros);
    resp
}

/// The whole `/metrics` page.
/// `audit_backlog`: rows of the audit log not yet stored as AuditEvents, counted for
/// this scrape (-1 when the database did not answer).
pub fn render(state: &AppState, jobs: crate::service::export::JobCounts, audit_backlog: i64) -> String {
    let mut out = String::with_capacity(8192);
    out.push_str("# HELP carnet_build_info The running version.\n");
    out.push_str("# TYPE carnet_build_info gauge\n");
    let _ = writeln!(out, "carnet_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    state.metrics().render_requests(&mut out);
    out.push_str("# HELP carnet_http_requests_in_flight Requests being answered.\n");
    out.push_str("# TYPE carnet_http_requests_in_flight gauge\n");
    let _ = writeln!(
        out,
        "carnet_http_requests_in_flight {}",
        state.metrics().in_flight.load(Ordering::Relaxed)
    );

    let pools = state.store().pool_stats();
    out.push_str("# HELP carnet_db_pool_connections Open database connections, by pool and state.\n");
    out.push_str("# TYPE carnet_db_pool_connections gauge\n");
    for p in &pools {
        let _ = writeln!(
            out,
            "carnet_db_pool_connections{{pool=\"{}\",state=\"idle\"}} {}",
            p.name, p.idle
        );
        let _ = writeln!(
            out,
            "carnet_db_pool_connections{{pool=\"{}\",state=\"in_use\"}} {}",
            p.name,
            p.size.saturating_sub(p.idle)
        );
    }
    out.push_str("# HELP carnet_db_pool_max_connections Most connections a pool may open.\n");
    out.push_str("# TYPE carnet_db_pool_max_connections gauge\n");
    for p in &pools {
        let _ = writeln!(out, "carnet_db_pool_max_connections{{pool=\"{}\"}} {}", p.name, p.max);
    }

    let audit = state.auditor();
    out.push_str(
        "# HELP carnet_audit_queue_depth AuditEvents handed to the group-commit writer and not yet committed.\n",
    );
    out.push_str("# TYPE carnet_audit_queue_depth gauge\n");
    let _ = writeln!(out, "carnet_audit_queue_depth {}", audit.queued());
    out.push_str("# HELP carnet_audit_records_total Audit records committed to the audit log.\n");
    out.push_str("# TYPE carnet_audit_records_total counter\n");
    let _ = writeln!(out, "carnet_audit_records_total {}", audit.committed_records());
    out.push_str("# HELP carnet_audit_batches_total Group-commit transactions of AuditEvents.\n");
    out.push_str("# TYPE carnet_audit_batches_total counter\n");
    let _ = writeln!(out, "carnet_audit_batches_total {}", audit.committed_batches());
    out.push_str("# HELP carnet_audit_projected_total Logged audit records this process stored as AuditEvents.\n");
    out.push_str("# TYPE carnet_audit_projected_total counter\n");
    let _ = writeln!(out, "carnet_audit_projected_total {}", audit.projector().projected());
    out.push_str(
        "# HELP carnet_audit_log_rows Audit records logged and not yet stored as AuditEvents, by any process.\n",
    );
    out.push_str("# TYPE carnet_audit_log_rows gauge\n");
    let _ = writeln!(out, "carnet_audit_log_rows {audit_backlog}");

    // The export job queue as the database holds it, counted for this scrape.
    out.push_str("# HELP carnet_jobs Background jobs, by state.\n");
    out.push_str("# TYPE carnet_jobs gauge\n");
    let _ = writeln!(out, "carnet_jobs{{state=\"queued\"}} {}", jobs.queued);
    let _ = writeln!(out, "carnet_jobs{{state=\"running\"}} {}", jobs.running);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(m: Method, p: &str) -> &'static str {
        INTERACTIONS[interaction_of(&m, p)]
    }

    #[test]
    fn interactions() {
        assert_eq!(name(Method::GET, "/fhir/Patient/1"), "read");
        assert_eq!(name(Method::GET, "/fhir/Patient/1/_history/2"), "vread");
        assert_eq!(name(Method::GET, "/fhir/Patient"), "search-type");
        assert_eq!(name(Method::POST, "/fhir/Patient/_search"), "search-type");
        assert_eq!(name(Method::GET, "/fhir/Patient/1/Observation"), "search-type");
        assert_eq!(name(Method::GET, "/fhir/Patient/1/$everything"), "operation");
        assert_eq!(name(Method::POST, "/fhir/$import"), "operation");
        assert_eq!(name(Method::POST, "/fhir"), "transaction");
        assert_eq!(name(Method::GET, "/fhir/"), "search-system");
        assert_eq!(name(Method::POST, "/fhir/Observation"), "create");
        assert_eq!(name(Method::PUT, "/fhir/Observation/1"), "update");
        assert_eq!(name(Method::GET, "/fhir/metadata"), "capabilities");
        assert_eq!(name(Method::GET, "/auth/authorize"), "auth");
        assert_eq!(name(Method::GET, "/metrics"), "ops");
        assert_eq!(name(Method::GET, "/favicon.ico"), "other");
    }

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe(0, 200, 500);
        m.observe(0, 200, 30_000);
        m.observe(0, 404, 20_000_000);
        let mut out = String::new();
        m.render_requests(&mut out);
        assert!(out.contains("carnet_http_requests_total{interaction=\"read\",code=\"200\"} 2"));
        assert!(out.contains("carnet_http_requests_total{interaction=\"read\",code=\"404\"} 1"));
        assert!(out.contains("carnet_http_request_duration_seconds_bucket{interaction=\"read\",le=\"0.001\"} 1"));
        assert!(out.contains("carnet_http_request_duration_seconds_bucket{interaction=\"read\",le=\"0.05\"} 2"));
        assert!(out.contains("carnet_http_request_duration_seconds_bucket{interaction=\"read\",le=\"10\"} 2"));
        assert!(out.contains("carnet_http_request_duration_seconds_bucket{interaction=\"read\",le=\"+Inf\"} 3"));
        assert!(out.contains("carnet_http_request_duration_seconds_count{interaction=\"read\"} 3"));
    }
}
