//! Integration tests of samle-index against real tantivy directories in temporary folders.

// Test code may unwrap (the workspace allows it in tests), but clippy's
// `allow-unwrap-in-tests` only covers `#[test]` functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

mod access;
mod analysis;
mod common;
mod durability;
mod permission_property;
mod query;
mod writer;
