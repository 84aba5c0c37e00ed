//! Query syntax, ranking, sorting, filters, facets and snippets.

use samle_index::{FacetFilter, IndexDoc, IndexError, Principals, SearchRequest, SortOrder};

use crate::common::{Fixture, date, doc, facet, id_set, ids, set, snippet_text};

#[test]
fn title_matches_rank_above_body_matches() {
    let f = Fixture::with([
        doc(
            "body",
            "Referat",
            "Mødet handlede om budget og planer for næste år.",
        ),
        doc(
            "title",
            "Budget",
            "Referat af mødet om planer for næste år.",
        ),
    ]);
    assert_eq!(ids(&f.find("budget")), vec!["title", "body"]);
}

#[test]
fn words_are_anded_phrases_and_exclusions_work() {
    let f = Fixture::with([
        doc("a", "Notat", "Budget for kantinen og rengøring"),
        doc("b", "Notat", "Kantinen holder lukket, budget følger"),
        doc("c", "Notat", "Rengøring af kantinen"),
    ]);
    let table: &[(&str, &[&str])] = &[
        ("budget kantinen", &["a", "b"]),
        ("budget rengøring", &["a"]),
        ("\"budget for kantinen\"", &["a"]),
        ("\"kantinen budget\"", &[]),
        ("kantinen -budget", &["c"]),
        ("kantinen -rengøring", &["b"]),
        ("-budget", &["c"]),
        ("budget OR rengøring", &["a", "b", "c"]),
    ];
    for (query, expected) in table {
        assert_eq!(id_set(&f.find(query)), set(expected), "query {query:?}");
    }
}

#[test]
fn garbage_queries_never_fail() {
    let f = Fixture::with([doc("a", "Titel", "Noget tekst om kaffe")]);
    let nasty = [
        "\"unbalanced",
        "a AND",
        "AND",
        "OR OR OR",
        "*",
        ":",
        "::::",
        "ÆØÅ",
        "title:",
        "acl:public",
        "[a TO",
        "{* TO *}",
        "(((",
        ")))",
        "kaffe^",
        "kaffe~2",
        "/regex.*/",
        "-",
        "+-+-",
        "\\",
        "\u{0}\u{1f}",
        "kl. 10:30",
        "💩 🦀",
        &"kaffe ".repeat(500),
    ];
    for query in nasty {
        let result = f.index.search(
            &Principals::anonymous(),
            &SearchRequest {
                query: query.to_string(),
                ..SearchRequest::default()
            },
        );
        assert!(result.is_ok(), "{query:?}: {result:?}");
    }
    // Field syntax does not reach internal fields, but the words still count.
    assert_eq!(f.find("acl:public").total, 0, "acl is not searchable");
    assert_eq!(f.find("title:kaffe").total, 1, "field names are ignored");
    assert_eq!(f.find("*").total, 1);
}

#[test]
fn empty_query_browses_everything_visible() {
    let f = Fixture::with([
        doc("a", "A", "en"),
        doc("b", "B", "to"),
        crate::common::with_acl(doc("secret", "C", "tre"), &["group:hr"]),
    ]);
    for query in ["", "   "] {
        assert_eq!(id_set(&f.find(query)), set(&["a", "b"]), "{query:?}");
    }
}

fn dated(id: &str, updated: Option<(i32, u32)>, created: Option<(i32, u32)>) -> IndexDoc {
    IndexDoc {
        updated: updated.map(|(y, m)| date(y, m, 1)),
        created: created.map(|(y, m)| date(y, m, 1)),
        ..doc(id, "Nyhed", "nyhed fra huset")
    }
}

#[test]
fn sort_by_date_puts_undated_last() {
    let docs = [
        dated("2021", Some((2021, 5)), None),
        dated("undated", None, None),
        dated("2023", Some((2023, 1)), Some((2020, 1))),
        dated("created-2022", None, Some((2022, 3))),
        dated("2019", Some((2019, 12)), None),
    ];
    // Two commits, so the order is merged across segments.
    let f = Fixture::with(docs[..2].to_vec());
    f.add(docs[2..].to_vec());
    let sorted = |sort: SortOrder, query: &str| {
        let req = SearchRequest {
            query: query.into(),
            sort,
            ..SearchRequest::default()
        };
        ids(&f.index.search(&Principals::anonymous(), &req).unwrap())
    };
    let newest = vec!["2023", "created-2022", "2021", "2019", "undated"];
    let oldest = vec!["2019", "2021", "created-2022", "2023", "undated"];
    for query in ["", "nyhed"] {
        assert_eq!(sorted(SortOrder::Newest, query), newest, "{query:?}");
        assert_eq!(sorted(SortOrder::Oldest, query), oldest, "{query:?}");
    }
    // Pages follow the same order.
    let page2 = SearchRequest {
        sort: SortOrder::Newest,
        offset: 2,
        limit: 2,
        ..SearchRequest::default()
    };
    let hits = f.index.search(&Principals::anonymous(), &page2).unwrap();
    assert_eq!(ids(&hits), vec!["2021", "2019"]);
    assert_eq!(hits.total, 5);
}

#[test]
fn sort_newest_in_a_segment_without_any_dates() {
    let f = Fixture::with([dated("undated", None, None)]);
    let req = SearchRequest {
        sort: SortOrder::Newest,
        ..SearchRequest::default()
    };
    let hits = f.index.search(&Principals::anonymous(), &req).unwrap();
    assert_eq!(ids(&hits), vec!["undated"]);
}

fn faceted() -> Fixture {
    let make = |id: &str, source: &str, kind: &str, year: i32, tags: &[&str]| IndexDoc {
        source: source.into(),
        kind: kind.into(),
        updated: Some(date(year, 6, 1)),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..doc(id, "Dokument", "fælles tekst")
    };
    Fixture::with([
        make("1", "wiki", "page", 2023, &["hr", "ferie"]),
        make("2", "wiki", "page", 2024, &["hr"]),
        make("3", "intranet", "news", 2024, &["it", "hr/politik"]),
        make("4", "intranet", "page", 2022, &[]),
        make("5", "share", "file", 2024, &["it", "it"]),
    ])
}

#[test]
fn filters_by_each_facet() {
    let f = faceted();
    let table: &[(&[FacetFilter], &[&str])] = &[
        (&[], &["1", "2", "3", "4", "5"]),
        (&[FacetFilter::Source("wiki".into())], &["1", "2"]),
        (&[FacetFilter::Kind("page".into())], &["1", "2", "4"]),
        (&[FacetFilter::Year(2024)], &["2", "3", "5"]),
        (&[FacetFilter::Tag("hr".into())], &["1", "2"]),
        (&[FacetFilter::Tag("hr/politik".into())], &["3"]),
        (&[FacetFilter::Tag("it".into())], &["3", "5"]),
        // Same dimension: either value.
        (
            &[
                FacetFilter::Source("wiki".into()),
                FacetFilter::Source("share".into()),
            ],
            &["1", "2", "5"],
        ),
        (
            &[FacetFilter::Year(2022), FacetFilter::Year(2023)],
            &["1", "4"],
        ),
        // Different dimensions: both.
        (
            &[
                FacetFilter::Source("intranet".into()),
                FacetFilter::Kind("page".into()),
            ],
            &["4"],
        ),
        // Tags: all of them.
        (
            &[
                FacetFilter::Tag("hr".into()),
                FacetFilter::Tag("ferie".into()),
            ],
            &["1"],
        ),
        (
            &[FacetFilter::Tag("hr".into()), FacetFilter::Tag("it".into())],
            &[],
        ),
        (&[FacetFilter::Source("nowhere".into())], &[]),
        (&[FacetFilter::Year(1999)], &[]),
    ];
    for (filters, expected) in table {
        let req = SearchRequest {
            query: "tekst".into(),
            filters: filters.to_vec(),
            ..SearchRequest::default()
        };
        let results = f.index.search(&Principals::anonymous(), &req).unwrap();
        assert_eq!(id_set(&results), set(expected), "{filters:?}");
        assert_eq!(results.total, expected.len() as u64, "{filters:?}");
    }
}

#[test]
fn invalid_filters_are_user_errors() {
    let f = faceted();
    for filter in [
        FacetFilter::Source(String::new()),
        FacetFilter::Kind(String::new()),
        FacetFilter::Tag(String::new()),
        FacetFilter::Year(-5),
        FacetFilter::Year(12345),
    ] {
        let req = SearchRequest {
            filters: vec![filter.clone()],
            ..SearchRequest::default()
        };
        let err = f.index.search(&Principals::anonymous(), &req).unwrap_err();
        assert!(
            matches!(err, IndexError::InvalidFilter(_)) && err.is_user_error(),
            "{filter:?}: {err}"
        );
    }
}

#[test]
fn facet_counts_sorted_by_count_then_value() {
    let f = faceted();
    let all = f.find("");
    assert_eq!(
        facet(&all, "source"),
        vec![
            ("intranet".into(), 2),
            ("wiki".into(), 2),
            ("share".into(), 1)
        ]
    );
    assert_eq!(
        facet(&all, "kind"),
        vec![("page".into(), 3), ("file".into(), 1), ("news".into(), 1)]
    );
    assert_eq!(
        facet(&all, "year"),
        vec![("2024".into(), 3), ("2022".into(), 1), ("2023".into(), 1)]
    );
    // A tag listed twice on a document counts once; a tag with a slash is one value.
    assert_eq!(
        facet(&all, "tag"),
        vec![
            ("hr".into(), 2),
            ("it".into(), 2),
            ("ferie".into(), 1),
            ("hr/politik".into(), 1)
        ]
    );
    // Facets describe the filtered result.
    let req = SearchRequest {
        filters: vec![FacetFilter::Year(2024)],
        ..SearchRequest::default()
    };
    let filtered = f.index.search(&Principals::anonymous(), &req).unwrap();
    assert_eq!(
        facet(&filtered, "source"),
        vec![
            ("intranet".into(), 1),
            ("share".into(), 1),
            ("wiki".into(), 1)
        ]
    );
}

#[test]
fn snippets_highlight_matches_and_fall_back_to_the_start() {
    let long_intro = "Indledning uden noget særligt. ".repeat(20);
    let f = Fixture::with([
        doc(
            "folded",
            "Kontor",
            &format!("{long_intro} Vores kontor i Århus har åbent hver dag."),
        ),
        doc(
            "title-only",
            "Kantine",
            "Menuen skifter hver uge. Der er også salat.",
        ),
        doc(
            "stem",
            "Byggeri",
            "Arbejdet med bygningerne begynder i maj.",
        ),
    ]);
    let r = f.find("Aarhus");
    let text = snippet_text(&r, 0);
    assert!(text.contains("[Århus]"), "{text}");
    assert!(
        text.contains("Vores kontor"),
        "the fragment is around the match: {text}"
    );
    assert!(text.chars().count() <= 220, "{}", text.chars().count());

    let r = f.find("bygning");
    assert!(
        snippet_text(&r, 0).contains("[bygningerne]"),
        "{}",
        snippet_text(&r, 0)
    );

    let r = f.find("kantine");
    assert_eq!(ids(&r), vec!["title-only"]);
    assert_eq!(
        snippet_text(&r, 0),
        "Menuen skifter hver uge. Der er også salat."
    );

    // Browsing has no terms to highlight: the start of the body.
    let r = f.find("");
    assert!(
        r.hits
            .iter()
            .all(|h| h.snippet.iter().all(|p| !p.highlighted))
    );
}

#[test]
fn snippets_are_raw_text() {
    let f = Fixture::with([doc(
        "x",
        "Script",
        "<script>alert('kage')</script> & mere kage",
    )]);
    let text = snippet_text(&f.find("kage"), 0);
    assert!(
        text.contains("<script>"),
        "templates escape, not the index: {text}"
    );
    assert!(text.contains("&"), "{text}");
}

#[test]
fn limit_zero_gives_counts_only_and_bounds_are_checked() {
    let f = faceted();
    let counts = f
        .index
        .search(
            &Principals::anonymous(),
            &SearchRequest {
                limit: 0,
                ..SearchRequest::default()
            },
        )
        .unwrap();
    assert_eq!(counts.total, 5);
    assert!(counts.hits.is_empty());
    assert_eq!(counts.facets.source.len(), 3);

    for req in [
        SearchRequest {
            limit: samle_index::MAX_LIMIT + 1,
            ..SearchRequest::default()
        },
        SearchRequest {
            offset: samle_index::MAX_OFFSET + 1,
            ..SearchRequest::default()
        },
    ] {
        let err = f.index.search(&Principals::anonymous(), &req).unwrap_err();
        assert!(err.is_user_error(), "{err}");
    }
    // Past the end: empty page, full total.
    let beyond = SearchRequest {
        offset: 100,
        ..SearchRequest::default()
    };
    let r = f.index.search(&Principals::anonymous(), &beyond).unwrap();
    assert_eq!((r.total, r.hits.len()), (5, 0));
}

#[test]
fn hits_carry_the_stored_fields() {
    let d = IndexDoc {
        url: Some("https://intra.example/a".into()),
        author: Some("Anna".into()),
        created: Some(date(2020, 1, 2)),
        updated: Some(date(2021, 3, 4)),
        tags: vec!["hr".into()],
        properties: [
            ("phone".to_string(), "+45 89 40 12 31".to_string()),
            ("mail".to_string(), "mette@kommune.example".to_string()),
        ]
        .into_iter()
        .collect(),
        ..doc("a", "Titel", "kaffe")
    };
    let f = Fixture::with([d]);
    let r = f.find("kaffe");
    let h = &r.hits[0];
    assert_eq!(h.properties["phone"], "+45 89 40 12 31");
    assert_eq!(h.properties["mail"], "mette@kommune.example");
    // Properties are for display: only what the connector put in the body is searched.
    assert_eq!(f.find("mette").total, 0);
    assert_eq!(h.source, "wiki");
    assert_eq!(h.kind, "page");
    assert_eq!(h.title, "Titel");
    assert_eq!(h.url.as_deref(), Some("https://intra.example/a"));
    assert_eq!(h.author.as_deref(), Some("Anna"));
    assert_eq!(h.created, Some(date(2020, 1, 2)));
    assert_eq!(h.updated, Some(date(2021, 3, 4)));
    assert_eq!(h.tags, vec!["hr"]);
    assert!(h.score > 0.0);
}
