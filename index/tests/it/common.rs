//! Shared fixtures: documents, an index in a temporary directory, result helpers.

use std::collections::BTreeSet;

use samle_index::{
    DateTime, IndexDoc, Lang, Principals, SearchIndex, SearchRequest, SearchResults, Utc,
};
use tempfile::TempDir;

/// An index in its own temporary directory; the directory goes when this is dropped.
pub struct Fixture {
    pub dir: TempDir,
    pub index: SearchIndex,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open(&dir.path().join("index")).unwrap();
        Fixture { dir, index }
    }

    /// A fixture holding `docs`, committed.
    pub fn with(docs: impl IntoIterator<Item = IndexDoc>) -> Fixture {
        let fixture = Fixture::new();
        fixture.add(docs);
        fixture
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("index")
    }

    pub fn add(&self, docs: impl IntoIterator<Item = IndexDoc>) {
        let mut writer = self.index.writer(20_000_000).unwrap();
        for doc in docs {
            writer.upsert(doc).unwrap();
        }
        writer.commit(None).unwrap();
    }

    /// Searches as someone who may see `public` documents.
    pub fn find(&self, query: &str) -> SearchResults {
        self.find_as(&Principals::anonymous(), query)
    }

    pub fn find_as(&self, viewer: &Principals, query: &str) -> SearchResults {
        self.index
            .search(
                viewer,
                &SearchRequest {
                    query: query.to_string(),
                    limit: 100,
                    ..SearchRequest::default()
                },
            )
            .unwrap()
    }
}

/// A public Danish document of source `wiki`.
pub fn doc(id: &str, title: &str, body: &str) -> IndexDoc {
    IndexDoc {
        source: "wiki".into(),
        external_id: id.into(),
        kind: "page".into(),
        title: title.into(),
        body: body.into(),
        language: Some(Lang::Da),
        acl: vec![Principals::PUBLIC.into()],
        ..IndexDoc::default()
    }
}

pub fn english(id: &str, title: &str, body: &str) -> IndexDoc {
    IndexDoc {
        language: Some(Lang::En),
        ..doc(id, title, body)
    }
}

pub fn with_acl(mut d: IndexDoc, acl: &[&str]) -> IndexDoc {
    d.acl = acl.iter().map(|s| s.to_string()).collect();
    d
}

pub fn date(year: i32, month: u32, day: u32) -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(year, month, day, 12, 0, 0).unwrap()
}

/// The external ids of the hits, in order.
pub fn ids(results: &SearchResults) -> Vec<String> {
    results.hits.iter().map(|h| h.external_id.clone()).collect()
}

/// The external ids of the hits, as a set.
pub fn id_set(results: &SearchResults) -> BTreeSet<String> {
    ids(results).into_iter().collect()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn facet(results: &SearchResults, dimension: &str) -> Vec<(String, u64)> {
    let values = match dimension {
        "source" => &results.facets.source,
        "kind" => &results.facets.kind,
        "year" => &results.facets.year,
        "tag" => &results.facets.tag,
        other => panic!("no facet {other}"),
    };
    values.iter().map(|v| (v.value.clone(), v.count)).collect()
}

/// The snippet as text, with highlights in brackets.
pub fn snippet_text(results: &SearchResults, i: usize) -> String {
    results.hits[i]
        .snippet
        .iter()
        .map(|p| {
            if p.highlighted {
                format!("[{}]", p.text)
            } else {
                p.text.clone()
            }
        })
        .collect()
}
