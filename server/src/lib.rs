//! Carnet: a FHIR R4 server. See `docs/architecture.md` for the request path.
//!
//! Layers, outermost first: `http` (axum handlers, negotiation, errors as
//! OperationOutcome) → `service` (FHIR interactions) → `search` and `store` (SQL on
//! SQLite or PostgreSQL). `fhir` holds format-level helpers shared by all.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conformance;
pub mod demo;
pub mod error;
pub mod fhir;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod search;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
