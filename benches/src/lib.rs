//! Criterion benches live in benches/*.rs.
