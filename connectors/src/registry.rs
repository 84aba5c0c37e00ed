//! The registry of connector kinds: typed parameters per kind, and one factory.
//!
//! `src/` embeds [`ConnectorParams`] in its `[[sources]]` table, so each kind's parameters
//! live in their own sub-table (`[sources.file-share]`) and serde keeps TOML spans and line
//! numbers for error messages. Unknown keys are refused, so a typo never silently disables a
//! setting such as an access rule.

use std::path::Path;

use serde::Deserialize;

use crate::connector::Connector;
use crate::error::ConnectorError;
use crate::feed::{Feed, FeedParams};
use crate::file_share::{FileShare, FileShareParams};
use crate::mediawiki::{MediaWiki, MediaWikiParams};
use crate::website::{Website, WebsiteParams};
use crate::wordpress::{WordPress, WordPressParams};

/// The parameters of every connector kind; only the table matching the source's `kind` is used.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorParams {
    #[serde(rename = "file-share")]
    pub file_share: Option<FileShareParams>,
    #[serde(rename = "feed")]
    pub feed: Option<FeedParams>,
    #[serde(rename = "mediawiki")]
    pub mediawiki: Option<MediaWikiParams>,
    #[serde(rename = "wordpress")]
    pub wordpress: Option<WordPressParams>,
    #[serde(rename = "website")]
    pub website: Option<WebsiteParams>,
}

/// Every kind [`build`] knows, as written in the configuration.
pub const KINDS: &[&str] = &["file-share", "feed", "website", "wordpress", "mediawiki"];

/// Builds the connector for `kind` from its parameters.
///
/// `base_dir` is the directory that relative paths in the parameters are resolved against
/// (decided by `src/`). Building validates the configuration only: it does not touch the
/// source, so a share that is briefly unmounted at start-up does not stop the portal.
pub fn build(
    kind: &str,
    params: &ConnectorParams,
    base_dir: &Path,
) -> Result<Box<dyn Connector>, ConnectorError> {
    match kind {
        "file-share" => {
            let params = params.file_share.as_ref().ok_or_else(|| {
                ConnectorError::Config(
                    "kind \"file-share\" needs a [sources.file-share] table".to_owned(),
                )
            })?;
            Ok(Box::new(FileShare::new(params, base_dir)?))
        }
        "feed" => {
            let params = params.feed.as_ref().ok_or_else(|| {
                ConnectorError::Config("kind \"feed\" needs a [sources.feed] table".to_owned())
            })?;
            Ok(Box::new(Feed::new(params, base_dir)?))
        }
        "mediawiki" => {
            let params = params.mediawiki.as_ref().ok_or_else(|| {
                ConnectorError::Config(
                    "kind \"mediawiki\" needs a [sources.mediawiki] table".to_owned(),
                )
            })?;
            Ok(Box::new(MediaWiki::new(params, base_dir)?))
        }
        "wordpress" => {
            let params = params.wordpress.as_ref().ok_or_else(|| {
                ConnectorError::Config(
                    "kind \"wordpress\" needs a [sources.wordpress] table".to_owned(),
                )
            })?;
            Ok(Box::new(WordPress::new(params, base_dir)?))
        }
        "website" => {
            let params = params.website.as_ref().ok_or_else(|| {
                ConnectorError::Config(
                    "kind \"website\" needs a [sources.website] table".to_owned(),
                )
            })?;
            Ok(Box::new(Website::new(params, base_dir)?))
        }
        other => Err(ConnectorError::Config(format!(
            "unknown connector kind {other:?}; known kinds: {}",
            KINDS.join(", ")
        ))),
    }
}
