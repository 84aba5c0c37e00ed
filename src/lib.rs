//! The `samle` binary's library: configuration, the web portal, login and sessions, the sync
//! scheduler and the SQLite store. It is the only crate that knows axum, minijinja and
//! SQLite, and the only place that wires connectors to the index.
//!
//! It is not where documents are parsed (`samle-connectors`) or searched (`samle-index`).

pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod directory;
pub mod session_store;
pub mod sources;
pub mod store;
pub mod sync;
pub mod web;
