//! Rate limiting: a token bucket per remote IP address (every route, sign-in pages
//! included) and one per OAuth client (FHIR requests, after the token check). Over the
//! limit the answer is 429 with `Retry-After` and an OperationOutcome.
//!
//! The buckets live in each process's memory, not in the database: a limit checked in
//! the database would cost a write per request, which is what the limit protects. With
//! several Carnet processes behind a load balancer each enforces the limit on the
//! traffic it sees (docs/design.md).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::fhir::outcome::{Issue, outcome};
use crate::state::AppState;

/// Shards keep concurrent requests from queueing on one lock.
const SHARDS: usize = 16;
/// Past this many keys in a shard, buckets that are full again are forgotten.
const PRUNE_AT: usize = 4096;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets of `rate` tokens per second holding at most `burst`; `rate` 0 turns it off.
pub struct Limiter<K> {
    rate: f64,
    burst: f64,
    shards: Vec<Mutex<HashMap<K, Bucket>>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate_per_sec: u32) -> Self {
        let rate = f64::from(rate_per_sec);
        Limiter {
            rate,
            // Bursts of twice the rate: a page load or a batch of parallel requests
            // passes, a sustained flood does not.
            burst: (rate * 2.0).max(1.0),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// `None` when the request may go; otherwise the seconds until one token is back.
    pub fn check(&self, key: &K, now: Instant) -> Option<u64> {
        if self.rate <= 0.0 {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let shard = &self.shards[(h.finish() as usize) % SHARDS];
        let mut map = match shard.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() >= PRUNE_AT {
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        // A key is cloned only the first time it is seen, not on every request.
        if !map.contains_key(key) {
            map.insert(
                key.clone(),
                Bucket {
                    tokens: self.burst,
                    at: now,
                },
            );
        }
        // Present: inserted just above if it was not.
        let b = map.get_mut(key)?;
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            None
        } else {
            Some(((1.0 - b.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

/// The per-process limiters, built from the configuration.
pub struct Limits {
    pub by_ip: Limiter<IpAddr>,
    pub by_client: Limiter<String>,
}

impl Limits {
    pub fn new(per_ip: u32, per_client: u32) -> Limits {
        Limits {
            by_ip: Limiter::new(per_ip),
            by_client: Limiter::new(per_client),
        }
    }
}

fn too_many(retry_after: u64, who: &str) -> Response {
    let body = serde_json::to_vec(&outcome(&[Issue::error(
        "throttled",
        format!("Too many requests from this {who}; retry after {retry_after} s"),
    )]))
    .unwrap_or_default();
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        h.insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Outermost: every request, by the connection's remote address.
pub async fn by_ip(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = ip
        && let Some(wait) = state.limits().by_ip.check(&ip, Instant::now())
    {
        return too_many(wait, "address");
    }
    next.run(req).await
}

/// After the token check: by the token's client id.
pub async fn by_client(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let wait = req
        .extensions()
        .get::<std::sync::Arc<crate::auth::principal::Principal>>()
        .and_then(|p| state.limits().by_client.check(&p.client_id, Instant::now()));
    if let Some(wait) = wait {
        return too_many(wait, "client");
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_the_rate() {
        let l = Limiter::new(10);
        let t0 = Instant::now();
        // A burst of 20 passes, the 21st waits.
        for _ in 0..20 {
            assert_eq!(l.check(&"a", t0), None);
        }
        assert_eq!(l.check(&"a", t0), Some(1));
        // Other keys are not affected.
        assert_eq!(l.check(&"b", t0), None);
        // 100 ms later one token is back.
        assert_eq!(l.check(&"a", t0 + Duration::from_millis(100)), None);
        assert!(l.check(&"a", t0 + Duration::from_millis(100)).is_some());
    }

    #[test]
    fn zero_is_off() {
        let l = Limiter::new(0);
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(l.check(&"a", t0), None);
        }
    }
}
