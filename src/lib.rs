// One `unsafe` block exists, in `process::clear_env` (edition 2024 makes removing an
// environment variable unsafe); everything else is safe code.
#![deny(unsafe_code)]
//! billd keeps a business's Stripe billing in step with its own database.
//!
//! See `ARCHITECTURE.md` for the code map and the invariants the modules keep.

pub mod alerts;
pub mod app;
pub mod cli;
pub mod compliance;
pub mod config;
pub mod events;
pub mod gap;
pub mod http;
pub mod ids;
pub mod ingest;
pub mod metrics;
pub mod objects;
pub mod process;
pub mod report;
pub mod signature;
pub mod store;
pub mod stripe;
pub mod telemetry;
pub mod time;
pub mod worker;
