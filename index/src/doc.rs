//! The documents going in ([`IndexDoc`]) and coming back out ([`StoredDoc`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The languages Samle analyses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Danish.
    Da,
    /// English.
    En,
}

impl Lang {
    /// The ISO 639-1 code: `"da"` or `"en"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Lang::Da => "da",
            Lang::En => "en",
        }
    }

    /// Reads `da`, `dan`, `danish`, `en`, `eng` or `english`, in any case.
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "da" | "dan" | "danish" => Some(Lang::Da),
            "en" | "eng" | "english" => Some(Lang::En),
            _ => None,
        }
    }
}

/// A document to index. Its identity is `(source, external_id)`: upserting the same pair
/// again replaces it.
#[derive(Clone, Debug, Default)]
pub struct IndexDoc {
    /// The source (connector instance) it comes from. Must not be empty or contain U+001F.
    pub source: String,
    /// Its id within the source. Must not be empty.
    pub external_id: String,
    /// What kind of thing it is (`page`, `post`, `file`, `notice`, ...); a facet.
    pub kind: String,
    /// The title, searched with a boost.
    pub title: String,
    /// The plain text body, searched and used for snippets.
    pub body: String,
    /// Where to read it.
    pub url: Option<String>,
    /// Who wrote it.
    pub author: Option<String>,
    /// `None`: detected from title and body (Danish or English; Danish when unsure).
    pub language: Option<Lang>,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
    /// When it last changed. Sorting and the year facet use this, else `created`.
    pub updated: Option<DateTime<Utc>>,
    /// The principals allowed to see it. Empty: visible to nobody.
    pub acl: Vec<String>,
    /// Free facet values (categories, folders).
    pub tags: Vec<String>,
    /// An opaque change marker owned by the connector (see `SearchIndex::fingerprints`).
    pub fingerprint: Option<String>,
    /// Structured facts shown with a hit, such as a person's `phone` and `mail`. Stored
    /// only: searching them goes through `body`, where the connector puts what should be
    /// found.
    pub properties: BTreeMap<String, String>,
}

/// A document as stored, every field included: what `SearchIndex::get` returns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredDoc {
    /// See [`IndexDoc::source`].
    pub source: String,
    /// See [`IndexDoc::external_id`].
    pub external_id: String,
    /// See [`IndexDoc::kind`].
    pub kind: String,
    /// See [`IndexDoc::title`].
    pub title: String,
    /// See [`IndexDoc::body`].
    pub body: String,
    /// See [`IndexDoc::url`].
    pub url: Option<String>,
    /// See [`IndexDoc::author`].
    pub author: Option<String>,
    /// The language it was analysed as (given or detected).
    pub language: Lang,
    /// See [`IndexDoc::created`].
    pub created: Option<DateTime<Utc>>,
    /// See [`IndexDoc::updated`].
    pub updated: Option<DateTime<Utc>>,
    /// See [`IndexDoc::acl`] (empty principals dropped).
    pub acl: Vec<String>,
    /// See [`IndexDoc::tags`].
    pub tags: Vec<String>,
    /// See [`IndexDoc::fingerprint`].
    pub fingerprint: Option<String>,
    /// See [`IndexDoc::properties`].
    pub properties: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_parse_table() {
        let table = [
            ("da", Some(Lang::Da)),
            ("DAN", Some(Lang::Da)),
            ("Danish", Some(Lang::Da)),
            (" da ", Some(Lang::Da)),
            ("en", Some(Lang::En)),
            ("Eng", Some(Lang::En)),
            ("ENGLISH", Some(Lang::En)),
            ("de", None),
            ("", None),
            ("dansk", None),
        ];
        for (input, expected) in table {
            assert_eq!(Lang::parse(input), expected, "{input:?}");
        }
    }

    #[test]
    fn lang_round_trips() {
        for lang in [Lang::Da, Lang::En] {
            assert_eq!(Lang::parse(lang.as_str()), Some(lang));
            let json = serde_json::to_string(&lang).unwrap();
            assert_eq!(json, format!("\"{}\"", lang.as_str()));
            assert_eq!(serde_json::from_str::<Lang>(&json).unwrap(), lang);
        }
    }
}
