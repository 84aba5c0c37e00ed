//! The tantivy schema and the mapping between [`IndexDoc`]/[`StoredDoc`] and tantivy documents.

use chrono::{DateTime, Datelike, Utc};
use tantivy::TantivyDocument;
use tantivy::schema::Facet;
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, FacetOptions, Field, INDEXED, IndexRecordOption, STORED,
    STRING, Schema, TextFieldIndexing, TextOptions, Value,
};

use crate::analysis::{self, DANISH, ENGLISH};
use crate::{IndexDoc, IndexError, Lang, StoredDoc};

/// Separates source and external id in the `id` field. A control character, so it cannot
/// occur in a sane source name (and is refused there).
pub(crate) const ID_SEPARATOR: char = '\u{1f}';

pub(crate) const DATE_FIELD: &str = "date";
pub(crate) const FACETS_FIELD: &str = "facets";
pub(crate) const EXTERNAL_ID_FIELD: &str = "external_id";
pub(crate) const FINGERPRINT_FIELD: &str = "fingerprint";
pub(crate) const PROPERTIES_FIELD: &str = "properties";

/// The facet roots counted in every search.
pub(crate) const FACET_SOURCE: &str = "source";
pub(crate) const FACET_KIND: &str = "kind";
pub(crate) const FACET_YEAR: &str = "year";
pub(crate) const FACET_TAG: &str = "tag";

/// Handles of every field, resolved once at open.
#[derive(Clone, Debug)]
pub(crate) struct Fields {
    pub id: Field,
    pub source: Field,
    pub kind: Field,
    pub external_id: Field,
    pub title_da: Field,
    pub body_da: Field,
    pub title_en: Field,
    pub body_en: Field,
    pub url: Field,
    pub author: Field,
    pub language: Field,
    pub created: Field,
    pub updated: Field,
    pub date: Field,
    pub acl: Field,
    pub tags: Field,
    pub fingerprint: Field,
    pub properties: Field,
    pub facets: Field,
}

/// Builds the schema. Any change here makes existing indexes fail the schema check at open,
/// and `open_or_rebuild` then starts a fresh index that the connectors refill.
pub(crate) fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();

    let analysed = |tokenizer: &str| {
        // Positions make phrase queries work. A text is analysed once, in the fields of its
        // language, and stored there too: a document has either `title_da` or `title_en`,
        // and snippets are cut from the stored body.
        TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tokenizer)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored()
    };
    // Read for whole sources at a time (`source_ids`, `fingerprints`), so a column beats
    // decompressing the document store.
    let stored_column = TextOptions::default().set_stored().set_fast("raw");
    let date =
        DateOptions::default().set_precision(DateTimePrecision::Seconds) | STORED | FAST | INDEXED;

    let id = b.add_text_field("id", STRING | STORED);
    let source = b.add_text_field("source", STRING | STORED);
    let kind = b.add_text_field("kind", STRING | STORED);
    let external_id = b.add_text_field(EXTERNAL_ID_FIELD, stored_column.clone());
    let title_da = b.add_text_field("title_da", analysed(DANISH));
    let body_da = b.add_text_field("body_da", analysed(DANISH));
    let title_en = b.add_text_field("title_en", analysed(ENGLISH));
    let body_en = b.add_text_field("body_en", analysed(ENGLISH));
    let url = b.add_text_field("url", STORED);
    let author = b.add_text_field("author", STORED);
    let language = b.add_text_field("language", STRING | STORED);
    let created = b.add_date_field("created", date.clone());
    let updated = b.add_date_field("updated", date);
    // `updated`, else `created`: what Newest/Oldest sort on and what the year facet shows, so
    // the two always agree. Not stored: the stored dates are the originals.
    let date = b.add_date_field(
        DATE_FIELD,
        DateOptions::default().set_precision(DateTimePrecision::Seconds) | FAST,
    );
    let acl = b.add_text_field("acl", STRING | STORED);
    let tags = b.add_text_field("tags", STORED);
    let fingerprint = b.add_text_field(FINGERPRINT_FIELD, stored_column);
    // A JSON object of strings, stored for display only: what should be found is in `body`.
    let properties = b.add_text_field(PROPERTIES_FIELD, STORED);
    let facets = b.add_facet_field(FACETS_FIELD, FacetOptions::default());

    let fields = Fields {
        id,
        source,
        kind,
        external_id,
        title_da,
        body_da,
        title_en,
        body_en,
        url,
        author,
        language,
        created,
        updated,
        date,
        acl,
        tags,
        fingerprint,
        properties,
        facets,
    };
    (b.build(), fields)
}

/// The value of the `id` field: unique per document, used to replace and delete.
pub(crate) fn doc_id(source: &str, external_id: &str) -> String {
    let mut id = String::with_capacity(source.len() + external_id.len() + 1);
    id.push_str(source);
    id.push(ID_SEPARATOR);
    id.push_str(external_id);
    id
}

/// A facet `/<root>/<value>`. The value is one path step: `/` inside it is kept as is.
pub(crate) fn facet(root: &str, value: &str) -> Facet {
    Facet::from_path([root, &facet_safe(value)])
}

pub(crate) fn year_value(year: i32) -> String {
    format!("{year:04}")
}

/// Facet values cannot hold NUL (tantivy's path separator); other control characters are
/// dropped with it since they never mean anything in a tag.
fn facet_safe(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

fn to_tantivy(dt: DateTime<Utc>) -> tantivy::DateTime {
    tantivy::DateTime::from_timestamp_micros(dt.timestamp_micros())
}

fn from_tantivy(dt: tantivy::DateTime) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(dt.into_timestamp_micros())
}

impl IndexDoc {
    /// Checks what the index requires of a document: a source without U+001F and an external
    /// id. [`IndexWriter::upsert`](crate::IndexWriter::upsert) refuses a document that fails
    /// this; a caller that streams documents checks first, so that one bad document is
    /// reported on its own instead of failing a commit.
    pub fn validate(&self) -> Result<(), IndexError> {
        if self.source.trim().is_empty() {
            return Err(IndexError::InvalidDocument("source is empty".into()));
        }
        if self.source.contains(ID_SEPARATOR) {
            return Err(IndexError::InvalidDocument(format!(
                "source {:?} contains the reserved character U+001F",
                self.source
            )));
        }
        if self.external_id.is_empty() {
            return Err(IndexError::InvalidDocument(format!(
                "document of source {:?} has an empty external id",
                self.source
            )));
        }
        Ok(())
    }
}

/// Checks a document and turns it into a tantivy document, with its language resolved.
pub(crate) fn to_document(f: &Fields, doc: &IndexDoc) -> Result<TantivyDocument, IndexError> {
    doc.validate()?;

    let language = doc
        .language
        .unwrap_or_else(|| analysis::detect_language(&doc.title, &doc.body));
    let (title_lang, body_lang) = match language {
        Lang::Da => (f.title_da, f.body_da),
        Lang::En => (f.title_en, f.body_en),
    };

    let mut d = TantivyDocument::default();
    d.add_text(f.id, doc_id(&doc.source, &doc.external_id));
    d.add_text(f.source, &doc.source);
    d.add_text(f.kind, &doc.kind);
    d.add_text(f.external_id, &doc.external_id);
    d.add_text(title_lang, &doc.title);
    d.add_text(body_lang, &doc.body);
    if let Some(url) = &doc.url {
        d.add_text(f.url, url);
    }
    if let Some(author) = &doc.author {
        d.add_text(f.author, author);
    }
    d.add_text(f.language, language.as_str());
    if let Some(created) = doc.created {
        d.add_date(f.created, to_tantivy(created));
    }
    if let Some(updated) = doc.updated {
        d.add_date(f.updated, to_tantivy(updated));
    }
    let date = doc.updated.or(doc.created);
    if let Some(date) = date {
        d.add_date(f.date, to_tantivy(date));
    }
    // Empty principals could never be held by a viewer; leaving them out keeps the acl clean.
    for principal in doc.acl.iter().filter(|p| !p.is_empty()) {
        d.add_text(f.acl, principal);
    }
    for tag in &doc.tags {
        d.add_text(f.tags, tag);
    }
    if let Some(fingerprint) = &doc.fingerprint {
        d.add_text(f.fingerprint, fingerprint);
    }
    if !doc.properties.is_empty() {
        let json = serde_json::to_string(&doc.properties).map_err(|e| {
            IndexError::InvalidDocument(format!(
                "properties of {:?} cannot be stored: {e}",
                doc.external_id
            ))
        })?;
        d.add_text(f.properties, json);
    }

    d.add_facet(f.facets, facet(FACET_SOURCE, &doc.source));
    let kind = facet_safe(&doc.kind);
    if !kind.is_empty() {
        d.add_facet(f.facets, facet(FACET_KIND, &kind));
    }
    if let Some(date) = date {
        d.add_facet(f.facets, facet(FACET_YEAR, &year_value(date.year())));
    }
    let mut seen_tags = std::collections::BTreeSet::new();
    for tag in &doc.tags {
        let tag = facet_safe(tag);
        // A tag listed twice must not count the document twice.
        if !tag.is_empty() && seen_tags.insert(tag.clone()) {
            d.add_facet(f.facets, facet(FACET_TAG, &tag));
        }
    }
    Ok(d)
}

fn first_str(doc: &TantivyDocument, field: Field) -> Option<String> {
    doc.get_first(field)
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn all_str(doc: &TantivyDocument, field: Field) -> Vec<String> {
    doc.get_all(field)
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn first_date(doc: &TantivyDocument, field: Field) -> Option<DateTime<Utc>> {
    doc.get_first(field)
        .and_then(|v| v.as_datetime())
        .and_then(from_tantivy)
}

/// Reads a stored document back.
pub(crate) fn to_stored(f: &Fields, doc: &TantivyDocument) -> StoredDoc {
    StoredDoc {
        source: first_str(doc, f.source).unwrap_or_default(),
        external_id: first_str(doc, f.external_id).unwrap_or_default(),
        kind: first_str(doc, f.kind).unwrap_or_default(),
        title: first_str(doc, f.title_da)
            .or_else(|| first_str(doc, f.title_en))
            .unwrap_or_default(),
        body: first_str(doc, f.body_da)
            .or_else(|| first_str(doc, f.body_en))
            .unwrap_or_default(),
        url: first_str(doc, f.url),
        author: first_str(doc, f.author),
        language: first_str(doc, f.language)
            .and_then(|l| Lang::parse(&l))
            .unwrap_or(Lang::Da),
        created: first_date(doc, f.created),
        updated: first_date(doc, f.updated),
        acl: all_str(doc, f.acl),
        tags: all_str(doc, f.tags),
        fingerprint: first_str(doc, f.fingerprint),
        properties: first_str(doc, f.properties)
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn sample() -> IndexDoc {
        IndexDoc {
            source: "wiki".into(),
            external_id: "Side/1".into(),
            kind: "page".into(),
            title: "Titel".into(),
            body: "Brødtekst".into(),
            url: Some("https://wiki.example/Side/1".into()),
            author: Some("Anna".into()),
            language: Some(Lang::En),
            created: Some(Utc.with_ymd_and_hms(2020, 1, 2, 3, 4, 5).unwrap()),
            updated: Some(Utc.timestamp_micros(1_700_000_000_123_456).unwrap()),
            acl: vec!["group:hr".into(), String::new(), "public".into()],
            tags: vec!["a/b".into(), "x\u{0}y".into()],
            fingerprint: Some("abc".into()),
            properties: [
                ("phone".to_string(), "+45 12 34 56 78".to_string()),
                (
                    "department".to_string(),
                    "Børn og Unge \"Solsikken\"".to_string(),
                ),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn stored_document_round_trips() {
        let (_, f) = build();
        let doc = sample();
        let stored = to_stored(&f, &to_document(&f, &doc).unwrap());
        assert_eq!(
            stored,
            StoredDoc {
                source: doc.source,
                external_id: doc.external_id,
                kind: doc.kind,
                title: doc.title,
                body: doc.body,
                url: doc.url,
                author: doc.author,
                language: Lang::En,
                created: doc.created,
                // Stored with microsecond precision, not truncated to the index's seconds.
                updated: doc.updated,
                acl: vec!["group:hr".into(), "public".into()],
                tags: doc.tags,
                fingerprint: doc.fingerprint,
                properties: doc.properties,
            }
        );
        // No properties, no stored field: they read back empty.
        let plain = IndexDoc {
            properties: Default::default(),
            ..sample()
        };
        let stored = to_stored(&f, &to_document(&f, &plain).unwrap());
        assert!(stored.properties.is_empty());
    }

    #[test]
    fn facets_are_safe_paths() {
        assert_eq!(facet("tag", "a/b").to_path(), vec!["tag", "a/b"]);
        assert_eq!(facet("tag", "x\u{0}y").to_path(), vec!["tag", "xy"]);
        assert_eq!(year_value(987), "0987");
    }

    #[test]
    fn invalid_documents_are_refused() {
        let (_, f) = build();
        for doc in [
            IndexDoc {
                source: " ".into(),
                ..sample()
            },
            IndexDoc {
                source: "a\u{1f}b".into(),
                ..sample()
            },
            IndexDoc {
                external_id: String::new(),
                ..sample()
            },
        ] {
            assert!(matches!(
                to_document(&f, &doc),
                Err(IndexError::InvalidDocument(_))
            ));
        }
    }
}
