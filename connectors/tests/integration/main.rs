//! Integration tests of samle-connectors: one test binary, one module per area, all against
//! real files in temporary folders, the committed fixtures (see `fixtures/make_fixtures.py`) and
//! fixture HTTP servers on 127.0.0.1.
//!
//! The modules are marked `cfg(test)` so that their helpers, not only the `#[test]` functions,
//! may unwrap (clippy's `allow-unwrap-in-tests` looks for that attribute).

#[cfg(test)]
mod common;
#[cfg(test)]
mod extract;
#[cfg(test)]
mod feed;
#[cfg(test)]
mod file_share;
#[cfg(test)]
mod http;
#[cfg(test)]
mod mediawiki;
#[cfg(test)]
mod memory;
#[cfg(test)]
mod registry;
#[cfg(test)]
mod website;
#[cfg(test)]
mod wordpress;
