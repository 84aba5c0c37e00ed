//! Which connector a source runs. Most kinds live in `samle-connectors`; the kinds listed in
//! [`KINDS`] live in this crate because they need its code (the staff directory reads the
//! `[directory]` the portal logs in against). The sync engine and `samle check` build every
//! connector through [`build`], so both always agree on what a kind means.

use samle_connectors::{Connector, ConnectorError};

use crate::config::{Config, SourceConfig};
use crate::directory::people::{self, StaffDirectory};

/// The kinds this crate builds itself, as written in the configuration.
pub const KINDS: &[&str] = &[people::KIND];

/// Whether `kind` names a connector, here or in `samle-connectors`.
pub fn is_known_kind(kind: &str) -> bool {
    KINDS.contains(&kind) || samle_connectors::KINDS.contains(&kind)
}

/// Every known kind, for messages.
pub fn known_kinds() -> Vec<&'static str> {
    samle_connectors::KINDS
        .iter()
        .chain(KINDS)
        .copied()
        .collect()
}

/// Builds the connector of `source`. Validates configuration only: nothing is contacted.
pub fn build(config: &Config, source: &SourceConfig) -> Result<Box<dyn Connector>, ConnectorError> {
    match source.kind.as_str() {
        people::KIND => {
            // Every key of the table has a default, so the table itself may be left out.
            let params = source.staff_directory.clone().unwrap_or_default();
            Ok(Box::new(StaffDirectory::new(&params, &config.directory)?))
        }
        kind => samle_connectors::build(kind, &source.params, &config.base_dir),
    }
}
