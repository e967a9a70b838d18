//! The import's threads: units checked on every core at low priority, and what a
//! stored chunk held freed away from the task that stores.
//!
//! An import goes as fast as its slower side, and on a small machine that is the one
//! chain of statements that stores (the async task that binds them, then SQLite's
//! writer or the PostgreSQL connection). With checking threads on every core at the
//! same priority that chain got only part of a core: on 2 cores, storing 98,108
//! Synthea resources took 13.2 s with two checking threads, 11.4 s with one
//! (benches/README.md, 2026-12-07). Checking threads therefore run at the lowest
//! priority and take units one at a time, so that they use exactly the CPU time the
//! storing side (or a server's requests) leaves.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::check::{self, Checked, Refusal};
use super::source::Unit;

/// A unit and the outcome of its check.
pub type CheckedUnit = (Unit, Result<Checked, Refusal>);
pub type CheckedUnits = Vec<CheckedUnit>;

/// Lowers the calling thread's priority to the lowest. Not being allowed to (a
/// sandbox may refuse) only costs speed.
pub fn yield_to_the_writer() {
    use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
    let _ = thread_priority::set_thread_priority_and_policy(
        thread_priority::thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
    );
}

/// Frees what a stored chunk held on the blocking pool instead of the task that
/// stores: dropping a group's ~4,000 JSON trees and index rows took a third of that
/// task's time, which the database's writer spends waiting for it (perf, 2026-12-07).
pub fn dispose<T: Send + 'static>(stored: T) {
    drop(tokio::task::spawn_blocking(move || drop(stored)));
}

/// Checks units on `threads` threads, keeping their order.
pub fn check_all(
    units: Vec<Unit>,
    now: i64,
    rules: &crate::conformance::Rules,
    threads: usize,
) -> Result<CheckedUnits, String> {
    let check_one = |mut u: Unit| {
        let body = std::mem::replace(&mut u.body, Err(String::new()));
        let checked = match body {
            // A unit that makes a checker panic is refused, not lost with its chunk.
            Ok(b) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check::check(b, now, rules)))
                .unwrap_or_else(|_| Err((None, "internal error while checking this resource".to_string()))),
            Err(e) => Err((None, e)),
        };
        (u, checked)
    };
    if threads <= 1 || units.len() < 2 {
        return Ok(units.into_iter().map(check_one).collect());
    }
    // Units differ a hundredfold in size (a Synthea patient's Bundle holds 30 to 3,000
    // resources): threads take the next one when done, so that none waits for another
    // to finish a fixed share.
    let count = units.len();
    let queue = Mutex::new(units.into_iter().enumerate().collect::<VecDeque<_>>());
    let take = || queue.lock().ok().and_then(|mut q| q.pop_front());
    let mut done: Vec<(usize, CheckedUnit)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    yield_to_the_writer();
                    let mut out = Vec::new();
                    while let Some((i, u)) = take() {
                        out.push((i, check_one(u)));
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().map_err(|_| "a checking thread failed".to_string())?);
        }
        Ok::<_, String>(all)
    })?;
    // A poisoned queue stops every thread early: units would be missing.
    if done.len() != count {
        return Err("a checking thread failed".to_string());
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, c)| c).collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::service::import::source::{Body, Location};

    /// Units of very different sizes, some refused, on more threads than units of one
    /// kind: the outcomes come back in the units' order.
    #[test]
    fn outcomes_keep_the_units_order() {
        let units: Vec<Unit> = (0..40u64)
            .map(|i| {
                let body = match i % 4 {
                    0 => Ok(Body::Transaction(json!({
                        "resourceType": "Bundle",
                        "type": "transaction",
                        "entry": (0..50).map(|k| json!({
                            "resource": {"resourceType": "Patient", "id": format!("p{i}-{k}")},
                            "request": {"method": "PUT", "url": format!("Patient/p{i}-{k}")}
                        })).collect::<Vec<_>>()
                    }))),
                    1 => Ok(Body::Resource(
                        json!({"resourceType": "Patient", "id": format!("p{i}")}),
                    )),
                    2 => Ok(Body::Resource(json!({"resourceType": "Patient", "gender": 7}))),
                    _ => Err(format!("line {i} is not JSON")),
                };
                Unit {
                    seq: i,
                    at: Location::Line(i + 1),
                    offset: i * 10,
                    body,
                }
            })
            .collect();
        let checked = check_all(units, 0, &crate::conformance::Rules::default(), 3).expect("checked");
        assert_eq!(checked.len(), 40);
        for (i, (unit, outcome)) in checked.iter().enumerate() {
            assert_eq!(unit.seq, i as u64);
            match (i % 4, outcome) {
                (0, Ok(Checked::Ready(r))) => assert_eq!(r.len(), 50),
                (1, Ok(Checked::Ready(r))) => assert_eq!(r[0].new.id, format!("p{i}")),
                (2, Err((_, why))) => assert!(why.contains("gender"), "{why}"),
                (3, Err((_, why))) => assert_eq!(why, &format!("line {i} is not JSON")),
                (_, other) => panic!("unit {i}: unexpected outcome {}", other.is_ok()),
            }
        }
    }
}
