//! Shared test harness. Each test binary uses a different part of it.
#![allow(dead_code)]
pub mod admin;
pub mod app;
pub mod cli_json;
pub mod mailservers;
pub mod oidc;
pub mod process;
pub mod roster;
pub mod skip;
pub mod smtp;

#[allow(unused_imports)]
pub use roster::*;
