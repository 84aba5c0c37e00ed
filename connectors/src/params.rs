//! Checks every connector's parameters share: principals and document kinds.

use crate::error::ConnectorError;

/// Trims each principal and refuses an empty one (a blank entry in `access` is a mistake, and
/// must not silently mean "nobody"). `field` names the setting in the error, such as
/// `"feed access"`.
pub fn principals(values: &[String], field: &str) -> Result<Vec<String>, ConnectorError> {
    values
        .iter()
        .map(|value| {
            let value = value.trim();
            if value.is_empty() {
                Err(ConnectorError::Config(format!(
                    "empty principal in {field}"
                )))
            } else {
                Ok(value.to_owned())
            }
        })
        .collect()
}

/// A configured document kind: lowercase ASCII letters, digits and `-`, as the kind facet and
/// the UI's labels expect. `connector` and `example` shape the error ("feed kind \"News\" must
/// be …, such as \"news\"").
pub fn document_kind(kind: &str, connector: &str, example: &str) -> Result<String, ConnectorError> {
    let valid = !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(kind.to_owned())
    } else {
        Err(ConnectorError::Config(format!(
            "{connector} kind {kind:?} must be lowercase letters a-z, digits and -, such as \"{example}\""
        )))
    }
}
