//! Permission trimming on every surface: hits, totals, facets, snippets, pages, `get`.

use samle_index::{FacetFilter, IndexDoc, Principals, SearchRequest, SortOrder};

use crate::common::{Fixture, doc, facet, id_set, set, snippet_text, with_acl};

fn fixture() -> Fixture {
    let tagged = |d: IndexDoc, source: &str, tag: &str| IndexDoc {
        source: source.into(),
        kind: source.to_string() + "-kind",
        tags: vec![tag.into()],
        updated: Some(crate::common::date(
            if tag == "løn" { 2020 } else { 2024 },
            1,
            1,
        )),
        ..d
    };
    Fixture::with([
        tagged(
            with_acl(
                doc("pub", "Kantine", "Kantinen serverer kage i dag"),
                &["public"],
            ),
            "wiki",
            "mad",
        ),
        tagged(
            with_acl(
                doc("staff", "Kage", "Kage til alle medarbejdere"),
                &["authenticated"],
            ),
            "intranet",
            "mad",
        ),
        tagged(
            with_acl(
                doc(
                    "hr",
                    "Lønforhandling",
                    "Hemmelig kage og lønforhandling for HR",
                ),
                &["group:hr", "user:boss"],
            ),
            "hr-share",
            "løn",
        ),
        tagged(
            with_acl(doc("nobody", "Glemt", "Kage uden adgangsliste"), &[]),
            "orphans",
            "hemmelig-tag",
        ),
    ])
}

#[test]
fn each_viewer_sees_exactly_their_documents() {
    let f = fixture();
    let table: &[(Principals, &[&str])] = &[
        (Principals::anonymous(), &["pub"]),
        (Principals::new(["authenticated"]), &["pub", "staff"]),
        (
            Principals::new(["authenticated", "group:hr"]),
            &["pub", "staff", "hr"],
        ),
        (Principals::new(["user:boss"]), &["pub", "hr"]),
        (Principals::new(["group:it"]), &["pub"]),
    ];
    for (viewer, expected) in table {
        for query in ["kage", ""] {
            let r = f.find_as(viewer, query);
            assert_eq!(id_set(&r), set(expected), "{viewer:?} {query:?}");
            assert_eq!(r.total, expected.len() as u64, "{viewer:?} {query:?}");
        }
    }
}

#[test]
fn facets_never_count_hidden_documents() {
    let f = fixture();
    let r = f.find_as(&Principals::new(["authenticated"]), "kage");
    assert_eq!(
        facet(&r, "source"),
        vec![("intranet".into(), 1), ("wiki".into(), 1)]
    );
    assert_eq!(
        facet(&r, "kind"),
        vec![("intranet-kind".into(), 1), ("wiki-kind".into(), 1)]
    );
    assert_eq!(facet(&r, "year"), vec![("2024".into(), 2)]);
    assert_eq!(facet(&r, "tag"), vec![("mad".into(), 2)]);
    // Filtering on a hidden document's facet value finds nothing and reveals nothing.
    let req = SearchRequest {
        filters: vec![FacetFilter::Tag("løn".into())],
        ..SearchRequest::default()
    };
    let hidden = f
        .index
        .search(&Principals::new(["authenticated"]), &req)
        .unwrap();
    assert_eq!(hidden.total, 0);
    assert!(hidden.facets.source.is_empty() && hidden.facets.tag.is_empty());
}

#[test]
fn snippets_come_only_from_visible_documents() {
    let f = fixture();
    let r = f.find_as(&Principals::new(["authenticated"]), "lønforhandling");
    assert_eq!(r.total, 0);
    assert!(r.hits.is_empty());
    let r = f.find_as(&Principals::new(["group:hr"]), "lønforhandling");
    assert!(snippet_text(&r, 0).contains("[lønforhandling]"));
}

#[test]
fn later_pages_are_trimmed_too() {
    let mut docs = Vec::new();
    for i in 0..30 {
        let acl: &[&str] = if i % 3 == 0 {
            &["group:a"]
        } else {
            &["group:b"]
        };
        docs.push(with_acl(
            doc(&format!("d{i:02}"), "Side", "fælles ord"),
            acl,
        ));
    }
    let f = Fixture::with(docs);
    let viewer = Principals::new(["group:a"]);
    let mut seen = Vec::new();
    for sort in [SortOrder::Relevance, SortOrder::Newest] {
        seen.clear();
        for page in 0..5 {
            let req = SearchRequest {
                query: "ord".into(),
                sort,
                offset: page * 3,
                limit: 3,
                ..SearchRequest::default()
            };
            let r = f.index.search(&viewer, &req).unwrap();
            assert_eq!(r.total, 10);
            seen.extend(r.hits.into_iter().map(|h| h.external_id));
        }
        let expected: Vec<String> = (0..30)
            .filter(|i| i % 3 == 0)
            .map(|i| format!("d{i:02}"))
            .collect();
        let mut got = seen.clone();
        got.sort();
        assert_eq!(
            got, expected,
            "{sort:?}: every visible doc once, nothing else"
        );
    }
}

#[test]
fn get_is_trimmed() {
    let f = fixture();
    let hr = Principals::new(["group:hr"]);
    let doc = f.index.get(&hr, "hr-share", "hr").unwrap().unwrap();
    assert_eq!(doc.acl, vec!["group:hr", "user:boss"]);
    assert_eq!(doc.body, "Hemmelig kage og lønforhandling for HR");
    assert!(
        f.index
            .get(&Principals::anonymous(), "hr-share", "hr")
            .unwrap()
            .is_none()
    );
    assert!(
        f.index
            .get(&Principals::new(["authenticated"]), "hr-share", "hr")
            .unwrap()
            .is_none()
    );
    assert!(f.index.get(&hr, "hr-share", "missing").unwrap().is_none());
    assert!(
        f.index.get(&hr, "wiki", "hr").unwrap().is_none(),
        "id is per source"
    );
}

#[test]
fn a_document_with_an_empty_acl_is_visible_to_nobody() {
    let f = fixture();
    let everyone = Principals::new(
        (0..200)
            .map(|i| format!("group:g{i}"))
            .chain(["authenticated", "group:hr", "user:boss", "", "orphans"].map(String::from)),
    );
    let r = f.find_as(&everyone, "kage");
    assert!(!id_set(&r).contains("nobody"));
    assert!(!facet(&r, "source").iter().any(|(s, _)| s == "orphans"));
    assert!(!facet(&r, "tag").iter().any(|(t, _)| t == "hemmelig-tag"));
    assert!(
        f.index
            .get(&everyone, "orphans", "nobody")
            .unwrap()
            .is_none()
    );
    // Its fields are indexed all the same: stats (admin only) count it.
    assert_eq!(f.index.stats().unwrap().per_source.get("orphans"), Some(&1));
}
