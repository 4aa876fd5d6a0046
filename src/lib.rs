//! ambassador: rolls the SOAR forced-labor training course out to a health
//! system's staff. The binary in `main.rs` is a thin command line over this
//! library; see docs/architecture.md for how the parts fit.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod bounces;
pub mod campaign;
pub mod clock;
pub mod completions;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod domain;
pub mod heartbeat;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod problem;
pub mod reload;
pub mod report;
pub mod roster;
pub mod schedule;
pub mod service;
pub mod shutdown;
pub mod sso;
pub mod store;
pub mod telemetry;
pub mod tracking;

pub use app::App;
