//! The permission property: for many viewers and random queries, every hit, the total and
//! every facet count equal a brute-force recount over the generated documents that the
//! viewer may see. Seeded, so a failure reproduces.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Datelike;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use samle_index::{
    FacetFilter, IndexDoc, Lang, Principals, SearchRequest, SearchResults, SortOrder,
};

use crate::common::{Fixture, date};

/// Words that no analyser confuses with each other and none drops as a stop word.
const VOCABULARY: &[&str] = &[
    "zebra", "kiwi", "mango", "banjo", "tundra", "quasar", "nebula", "fjord", "lotus", "cobalt",
    "papaya", "oboe",
];
const SOURCES: &[&str] = &["wiki", "intranet", "share"];
const KINDS: &[&str] = &["page", "news", "file"];
const TAGS: &[&str] = &["hr", "it", "økonomi", "drift/nord", "ledelse"];

fn principal_pool() -> Vec<String> {
    let mut pool: Vec<String> = (0..24).map(|i| format!("group:g{i}")).collect();
    pool.extend((0..6).map(|i| format!("user:u{i}")));
    pool
}

fn words(rng: &mut StdRng, n: std::ops::RangeInclusive<usize>) -> Vec<&'static str> {
    let count = rng.random_range(n);
    (0..count)
        .map(|_| *VOCABULARY.choose(rng).unwrap())
        .collect()
}

fn random_doc(rng: &mut StdRng, id: usize, pool: &[String]) -> IndexDoc {
    let acl: Vec<String> = match rng.random_range(0..100) {
        0..3 => Vec::new(),
        3..8 => vec![Principals::PUBLIC.into()],
        8..13 => vec![Principals::AUTHENTICATED.into()],
        _ => {
            let n = rng.random_range(1..=4);
            pool.choose_multiple(rng, n).cloned().collect()
        }
    };
    let year = rng.random_range(2018..=2025);
    let dated = rng.random_bool(0.9);
    IndexDoc {
        source: SOURCES.choose(rng).unwrap().to_string(),
        external_id: format!("doc-{id}"),
        kind: KINDS.choose(rng).unwrap().to_string(),
        title: words(rng, 1..=3).join(" "),
        body: words(rng, 3..=12).join(" "),
        language: Some(if rng.random_bool(0.5) {
            Lang::Da
        } else {
            Lang::En
        }),
        updated: dated.then(|| date(year, rng.random_range(1..=12), 1)),
        created: (!dated && rng.random_bool(0.3)).then(|| date(year, 1, 1)),
        acl,
        tags: {
            let n = rng.random_range(0..=2);
            TAGS.choose_multiple(rng, n)
                .map(|t| t.to_string())
                .collect()
        },
        ..IndexDoc::default()
    }
}

/// A query the brute force can evaluate: words that must all occur, and words that must not.
struct Generated {
    text: String,
    required: Vec<&'static str>,
    excluded: Vec<&'static str>,
    filters: Vec<FacetFilter>,
}

fn random_query(rng: &mut StdRng) -> Generated {
    let mut required = Vec::new();
    let mut excluded = Vec::new();
    match rng.random_range(0..100) {
        0..5 => {}
        5..55 => required.push(*VOCABULARY.choose(rng).unwrap()),
        55..85 => required.extend(VOCABULARY.choose_multiple(rng, 2).copied()),
        _ => {
            let two: Vec<&str> = VOCABULARY.choose_multiple(rng, 2).copied().collect();
            required.push(two[0]);
            excluded.push(two[1]);
        }
    }
    let mut parts: Vec<String> = required.iter().map(|w| w.to_string()).collect();
    parts.extend(excluded.iter().map(|w| format!("-{w}")));
    // Vary the case: analysis must not care.
    if rng.random_bool(0.2) {
        parts = parts.into_iter().map(|p| p.to_uppercase()).collect();
    }
    let filters = match rng.random_range(0..100) {
        0..10 => vec![FacetFilter::Source(
            SOURCES.choose(rng).unwrap().to_string(),
        )],
        10..20 => vec![FacetFilter::Tag(TAGS.choose(rng).unwrap().to_string())],
        20..25 => vec![FacetFilter::Year(rng.random_range(2018..=2025))],
        25..30 => vec![FacetFilter::Kind(KINDS.choose(rng).unwrap().to_string())],
        _ => Vec::new(),
    };
    Generated {
        text: parts.join(" "),
        required,
        excluded,
        filters,
    }
}

fn doc_year(d: &IndexDoc) -> Option<String> {
    d.updated.or(d.created).map(|t| format!("{:04}", t.year()))
}

fn matches(d: &IndexDoc, words: &BTreeSet<&str>, q: &Generated) -> bool {
    let filters_ok = q.filters.iter().all(|f| match f {
        FacetFilter::Source(s) => &d.source == s,
        FacetFilter::Kind(k) => &d.kind == k,
        FacetFilter::Year(y) => doc_year(d) == Some(format!("{y:04}")),
        FacetFilter::Tag(t) => d.tags.contains(t),
    });
    filters_ok
        && q.required.iter().all(|w| words.contains(w))
        && !q.excluded.iter().any(|w| words.contains(w))
}

type Counts = BTreeMap<String, u64>;

fn recount(docs: &[&IndexDoc]) -> [Counts; 4] {
    let mut counts: [Counts; 4] = Default::default();
    for d in docs {
        *counts[0].entry(d.source.clone()).or_default() += 1;
        *counts[1].entry(d.kind.clone()).or_default() += 1;
        if let Some(year) = doc_year(d) {
            *counts[2].entry(year).or_default() += 1;
        }
        let tags: BTreeSet<&String> = d.tags.iter().collect();
        for tag in tags {
            *counts[3].entry(tag.clone()).or_default() += 1;
        }
    }
    counts
}

fn reported(r: &SearchResults) -> [Counts; 4] {
    let to_map = |v: &[samle_index::FacetCount]| {
        v.iter()
            .map(|c| (c.value.clone(), c.count))
            .collect::<Counts>()
    };
    [
        to_map(&r.facets.source),
        to_map(&r.facets.kind),
        to_map(&r.facets.year),
        to_map(&r.facets.tag),
    ]
}

#[test]
fn search_never_shows_more_or_less_than_the_viewer_may_see() {
    let mut rng = StdRng::seed_from_u64(0x5a31e);
    let pool = principal_pool();
    let fixture = Fixture::new();

    // 2,000 documents over four commits (several segments), then 200 of them re-indexed
    // with new content and access lists, so deletes inside segments are exercised too.
    let mut docs: HashMap<String, IndexDoc> = HashMap::new();
    let mut writer = fixture.index.writer(30_000_000).unwrap();
    for id in 0..2_000 {
        let d = random_doc(&mut rng, id, &pool);
        docs.insert(d.external_id.clone(), d.clone());
        writer.upsert(d).unwrap();
        if id % 500 == 499 {
            writer.commit(None).unwrap();
        }
    }
    let mut ids: Vec<usize> = (0..2_000).collect();
    ids.shuffle(&mut rng);
    for &id in &ids[..200] {
        let original = &docs[&format!("doc-{id}")];
        // Same identity (source and id), new everything else.
        let d = IndexDoc {
            source: original.source.clone(),
            ..random_doc(&mut rng, id, &pool)
        };
        docs.insert(d.external_id.clone(), d.clone());
        writer.upsert(d).unwrap();
    }
    writer.commit(None).unwrap();
    drop(writer);
    let docs: Vec<IndexDoc> = docs.into_values().collect();

    let mut viewers = vec![Principals::anonymous()];
    for _ in 0..9 {
        let n = rng.random_range(1..=6);
        let mut principals: Vec<String> = pool.choose_multiple(&mut rng, n).cloned().collect();
        if rng.random_bool(0.7) {
            principals.push(Principals::AUTHENTICATED.into());
        }
        viewers.push(Principals::new(principals));
    }

    let mut checked_hits = 0usize;
    for viewer in &viewers {
        // Each visible document with the set of its words, for the brute-force matcher.
        let visible: Vec<(&IndexDoc, BTreeSet<&str>)> = docs
            .iter()
            .filter(|d| viewer.may_see(&d.acl))
            .map(|d| (d, d.title.split(' ').chain(d.body.split(' ')).collect()))
            .collect();
        for _ in 0..200 {
            let q = random_query(&mut rng);
            let expected: Vec<&IndexDoc> = visible
                .iter()
                .filter(|(d, words)| matches(d, words, &q))
                .map(|(d, _)| *d)
                .collect();
            let expected_ids: BTreeSet<&str> =
                expected.iter().map(|d| d.external_id.as_str()).collect();
            let total = expected.len();
            let offset = if total > 0 && rng.random_bool(0.3) {
                rng.random_range(0..total)
            } else {
                0
            };
            let limit = *[5, 10, 50].choose(&mut rng).unwrap();
            let sort = *[SortOrder::Relevance, SortOrder::Newest, SortOrder::Oldest]
                .choose(&mut rng)
                .unwrap();
            let req = SearchRequest {
                query: q.text.clone(),
                filters: q.filters.clone(),
                sort,
                offset,
                limit,
            };
            let r = fixture.index.search(viewer, &req).unwrap();
            let context = format!("viewer {viewer:?}, request {req:?}");

            assert_eq!(r.total, total as u64, "total; {context}");
            assert_eq!(
                r.hits.len(),
                limit.min(total - offset),
                "page size; {context}"
            );
            let hit_ids: BTreeSet<&str> = r.hits.iter().map(|h| h.external_id.as_str()).collect();
            assert_eq!(hit_ids.len(), r.hits.len(), "duplicate hits; {context}");
            for hit in &hit_ids {
                assert!(
                    expected_ids.contains(hit),
                    "hit {hit} not allowed; {context}"
                );
            }
            assert_eq!(reported(&r), recount(&expected), "facets; {context}");
            checked_hits += r.hits.len();
        }
        // Full pages add up to exactly the visible matching set.
        let all = fixture
            .index
            .search(
                viewer,
                &SearchRequest {
                    limit: samle_index::MAX_LIMIT,
                    ..SearchRequest::default()
                },
            )
            .unwrap();
        assert_eq!(
            all.total,
            visible.len() as u64,
            "browse total for {viewer:?}"
        );
    }
    assert!(
        checked_hits > 10_000,
        "the queries should find things: {checked_hits}"
    );
}
