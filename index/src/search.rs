//! Permission-trimmed search: the request and result types, query building, collection,
//! facets and snippets.

use std::ops::Range;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tantivy::collector::sort_key::{NaturalComparator, SortBySimilarityScore};
use tantivy::collector::{
    Collector, Count, FacetCollector, FacetCounts, SegmentSortKeyComputer, SortKeyComputer, TopDocs,
};
use tantivy::columnar::Column;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, EmptyQuery, Occur, Query, QueryParser, TermQuery,
    TermSetQuery,
};
use tantivy::query_grammar::{self, UserInputAst, UserInputLeaf, UserInputLiteral};
use tantivy::schema::{Facet, Field, IndexRecordOption};
use tantivy::snippet::{Snippet, SnippetGenerator, collapse_overlapped_ranges};
use tantivy::tokenizer::{TextAnalyzer, TokenStream};
use tantivy::{DocAddress, DocId, Index, Score, Searcher, SegmentReader, TantivyDocument, Term};
use tracing::debug;

use crate::acl_cache::AclCache;
use crate::analysis::{self, DANISH, ENGLISH, prefix};
use crate::language_gate::LanguageGate;
use crate::passage::{BodyTerms, passage};
use crate::schema::{
    self, DATE_FIELD, FACET_KIND, FACET_SOURCE, FACET_TAG, FACET_YEAR, Fields, facet, year_value,
};
use crate::small_union;
use crate::stats::QueryStats;
use crate::{IndexError, Lang, Principals};

/// The most hits one request may ask for.
pub const MAX_LIMIT: usize = 1_000;
/// The deepest a request may page. Collecting the top `offset + limit` documents costs
/// memory in proportion, so paging deeper is refused rather than allowed to grow unbounded.
pub const MAX_OFFSET: usize = 10_000;
/// At most this many values are returned per facet (the most frequent ones).
pub const MAX_FACET_VALUES: usize = 50;

/// Longer queries are cut to this many bytes: nobody types more, and a pasted page would
/// become a query of thousands of clauses.
const MAX_QUERY_BYTES: usize = 1024;
/// Title matches weigh this much more than body matches.
const TITLE_BOOST: Score = 3.0;
/// Snippet length in characters.
const SNIPPET_CHARS: usize = 200;
/// Snippets are cut from at most this much of the body: tokenising a whole book for every
/// hit would dominate the search time, and the opening is where the matches usually are.
const SNIPPET_SOURCE_BYTES: usize = 16 * 1024;

/// One search.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    /// What the user typed. Parsed leniently: never an error. Words are ANDed; `"phrases"`
    /// and `-exclusions` work. Empty: every document the viewer may see (browse).
    pub query: String,
    /// Facet filters. Values of the same dimension are ORed (`Source(a)`, `Source(b)`: from
    /// either), dimensions are ANDed, and every `Tag` must be present.
    pub filters: Vec<FacetFilter>,
    /// Order of the hits.
    pub sort: SortOrder,
    /// Hits to skip (paging); at most [`MAX_OFFSET`].
    pub offset: usize,
    /// Hits to return; at most [`MAX_LIMIT`]. Zero gives counts and facets only.
    pub limit: usize,
}

impl Default for SearchRequest {
    fn default() -> Self {
        SearchRequest {
            query: String::new(),
            filters: Vec::new(),
            sort: SortOrder::Relevance,
            offset: 0,
            limit: 10,
        }
    }
}

/// A facet filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FacetFilter {
    /// Documents of this source.
    Source(String),
    /// Documents of this kind.
    Kind(String),
    /// Documents whose `updated` (else `created`) date falls in this year (UTC).
    Year(i32),
    /// Documents carrying this tag.
    Tag(String),
}

/// Order of the hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Best match first.
    #[default]
    Relevance,
    /// Most recently updated (else created) first; undated documents last.
    Newest,
    /// Least recently updated (else created) first; undated documents last.
    Oldest,
}

/// What a search found, all of it trimmed to what the viewer may see.
#[derive(Clone, Debug, Serialize)]
pub struct SearchResults {
    /// How many documents match in all.
    pub total: u64,
    /// The requested page of them.
    pub hits: Vec<Hit>,
    /// Counts per facet value over all matching documents.
    pub facets: Facets,
}

/// Facet counts, each list sorted by count (highest first) then value, at most
/// [`MAX_FACET_VALUES`] long.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Facets {
    /// Per source.
    pub source: Vec<FacetCount>,
    /// Per kind.
    pub kind: Vec<FacetCount>,
    /// Per year (four digits).
    pub year: Vec<FacetCount>,
    /// Per tag.
    pub tag: Vec<FacetCount>,
}

/// One facet value and how many matching documents have it.
#[derive(Clone, Debug, Serialize)]
pub struct FacetCount {
    /// The value.
    pub value: String,
    /// Matching documents with it.
    pub count: u64,
}

/// One found document.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    /// See [`crate::IndexDoc::source`].
    pub source: String,
    /// See [`crate::IndexDoc::external_id`].
    pub external_id: String,
    /// See [`crate::IndexDoc::kind`].
    pub kind: String,
    /// See [`crate::IndexDoc::title`].
    pub title: String,
    /// See [`crate::IndexDoc::url`].
    pub url: Option<String>,
    /// See [`crate::IndexDoc::author`].
    pub author: Option<String>,
    /// The language it was analysed as.
    pub language: Lang,
    /// See [`crate::IndexDoc::created`].
    pub created: Option<DateTime<Utc>>,
    /// See [`crate::IndexDoc::updated`].
    pub updated: Option<DateTime<Utc>>,
    /// See [`crate::IndexDoc::tags`].
    pub tags: Vec<String>,
    /// See [`crate::IndexDoc::properties`].
    pub properties: std::collections::BTreeMap<String, String>,
    /// Relevance score (also computed for date orders, where it breaks ties).
    pub score: f32,
    /// About 200 characters of the body around the best matches, or its start.
    pub snippet: Vec<SnippetPart>,
}

/// A piece of a snippet. The text is raw, not HTML-escaped: templates escape.
#[derive(Clone, Debug, Serialize)]
pub struct SnippetPart {
    /// The text.
    pub text: String,
    /// Whether it matched the query.
    pub highlighted: bool,
}

/// Parses user queries. One parser per language: a Danish document is searched in its
/// Danish fields with Danish analysis of the query, an English one likewise. Keeping the
/// languages apart matters because words are ANDed: a Danish stop word (`og`) must vanish
/// from the query for Danish documents, not turn into a required term that only English
/// fields could hold. Each language's analysis also folds spellings (see `analysis`), so
/// `Aarhus` finds `Århus` through the same fields.
pub(crate) struct QueryBuilder {
    da: LanguageParser,
    en: LanguageParser,
    language: Field,
    /// The access filters of recent viewers (see `acl_cache`).
    acl: AclCache,
}

/// A query parser over one language's title and body fields, with their analyser (to tell
/// which words survive analysis).
struct LanguageParser {
    parser: QueryParser,
    analyzer: TextAnalyzer,
}

impl LanguageParser {
    /// Whether this parser's analysis keeps a token of `phrase`.
    fn keeps_any_token(&self, phrase: &str) -> bool {
        self.analyzer.clone().token_stream(phrase).advance()
    }

    fn parse(&self, ast: &UserInputAst) -> (Box<dyn Query>, usize) {
        // Words that analyse to nothing (stop words, punctuation) must go before tantivy
        // sees them: it would turn a query of only such words into "match all".
        match prune(ast.clone(), &|phrase| self.keeps_any_token(phrase)) {
            Some(ast) => {
                let (query, errors) = self.parser.build_query_from_user_input_ast_lenient(ast);
                // A word's fields as a small union (see `small_union`).
                (small_union::rewrite(query), errors.len())
            }
            None => (Box::new(EmptyQuery), 0),
        }
    }
}

impl QueryBuilder {
    pub(crate) fn new(index: &Index, f: &Fields) -> Result<QueryBuilder, IndexError> {
        // A query is a few words: the analysers that remember words are for indexing.
        let plain = analysis::plain_tokenizers();
        let parser = |title: Field, body: Field, analyzer_name: &str| {
            let mut parser = QueryParser::new(index.schema(), vec![title, body], plain.clone());
            parser.set_conjunction_by_default();
            parser.set_field_boost(title, TITLE_BOOST);
            let analyzer = analysis::plain(analyzer_name).ok_or_else(|| {
                IndexError::Engine(tantivy::TantivyError::InternalError(format!(
                    "no analyser {analyzer_name}"
                )))
            })?;
            Ok::<_, IndexError>(LanguageParser { parser, analyzer })
        };
        Ok(QueryBuilder {
            da: parser(f.title_da, f.body_da, DANISH)?,
            en: parser(f.title_en, f.body_en, ENGLISH)?,
            language: f.language,
            acl: AclCache::default(),
        })
    }

    /// The query for what the user typed; `None` for an empty query (match everything).
    pub(crate) fn user_query(&self, text: &str) -> Option<Box<dyn Query>> {
        if text.trim().is_empty() {
            return None;
        }
        let text = prefix(text, MAX_QUERY_BYTES);
        let (ast, syntax_errors) = query_grammar::parse_query_lenient(text);
        let ast = default_fields_only(ast);
        let (da, da_errors) = self.da.parse(&ast);
        let (en, en_errors) = self.en.parse(&ast);
        if !syntax_errors.is_empty() || da_errors > 0 || en_errors > 0 {
            debug!(
                syntax = syntax_errors.len(),
                danish = da_errors,
                english = en_errors,
                "query parsed leniently, parts dropped"
            );
        }
        let in_language = |lang: Lang, query: Box<dyn Query>| -> Box<dyn Query> {
            let term = Term::from_field_text(self.language, lang.as_str());
            let is_lang = TermQuery::new(term.clone(), IndexRecordOption::Basic);
            // The gate skips segments without documents of the language (see
            // `language_gate`).
            Box::new(LanguageGate::new(
                term,
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, query),
                    (
                        Occur::Must,
                        Box::new(ConstScoreQuery::new(Box::new(is_lang), 0.0)),
                    ),
                ])),
            ))
        };
        Some(Box::new(BooleanQuery::new(vec![
            (Occur::Should, in_language(Lang::Da, da)),
            (Occur::Should, in_language(Lang::En, en)),
        ])))
    }
}

/// Strips field names from the parsed query, so that every word searches the text fields.
/// Without this, `acl:group:hr` or `source:x` would query internal fields; that cannot widen
/// what a viewer sees (the access filter is a separate required clause), but it would let
/// a viewer probe other documents' access lists. It also keeps `kl. 10:30` from turning
/// into a search of a field named `10`.
fn default_fields_only(ast: UserInputAst) -> UserInputAst {
    match ast {
        UserInputAst::Clause(clauses) => UserInputAst::Clause(
            clauses
                .into_iter()
                .map(|(occur, sub)| (occur, default_fields_only(sub)))
                .collect(),
        ),
        UserInputAst::Boost(sub, boost) => {
            UserInputAst::Boost(Box::new(default_fields_only(*sub)), boost)
        }
        UserInputAst::Leaf(leaf) => match *leaf {
            UserInputLeaf::Literal(literal) => {
                UserInputAst::Leaf(Box::new(UserInputLeaf::Literal(UserInputLiteral {
                    field_name: None,
                    ..literal
                })))
            }
            UserInputLeaf::All => UserInputAst::Leaf(Box::new(UserInputLeaf::All)),
            // `field:*` means "has the field": every document has text.
            UserInputLeaf::Exists { .. } => UserInputAst::Leaf(Box::new(UserInputLeaf::All)),
            // `field: IN [a b]`: any of the words.
            UserInputLeaf::Set { elements, .. } => UserInputAst::Clause(
                elements
                    .into_iter()
                    .map(|phrase| {
                        (
                            Some(Occur::Should),
                            UserInputAst::Leaf(Box::new(UserInputLeaf::Literal(
                                UserInputLiteral {
                                    field_name: None,
                                    phrase,
                                    delimiter: query_grammar::Delimiter::None,
                                    slop: 0,
                                    prefix: false,
                                },
                            ))),
                        )
                    })
                    .collect(),
            ),
            // Ranges and regexes need a field: they become an empty clause, which `prune`
            // removes.
            UserInputLeaf::Range { .. } | UserInputLeaf::Regex { .. } => {
                UserInputAst::Clause(Vec::new())
            }
        },
    }
}

/// Removes the words `keep` rejects, and the clauses left empty by that. `None`: nothing
/// is left.
fn prune(ast: UserInputAst, keep: &dyn Fn(&str) -> bool) -> Option<UserInputAst> {
    match ast {
        UserInputAst::Clause(clauses) => {
            let kept: Vec<_> = clauses
                .into_iter()
                .filter_map(|(occur, sub)| prune(sub, keep).map(|sub| (occur, sub)))
                .collect();
            (!kept.is_empty()).then_some(UserInputAst::Clause(kept))
        }
        UserInputAst::Boost(sub, boost) => {
            prune(*sub, keep).map(|sub| UserInputAst::Boost(Box::new(sub), boost))
        }
        UserInputAst::Leaf(leaf) => match *leaf {
            UserInputLeaf::Literal(literal) if !keep(&literal.phrase) => None,
            other => Some(UserInputAst::Leaf(Box::new(other))),
        },
    }
}

/// The access filter: documents whose acl names one of the viewer's principals. A required
/// clause with a constant zero score, so it trims without changing the ranking.
pub(crate) fn acl_filter(f: &Fields, viewer: &Principals) -> Box<dyn Query> {
    let terms = viewer.iter().map(|p| Term::from_field_text(f.acl, p));
    Box::new(ConstScoreQuery::new(
        Box::new(TermSetQuery::new(terms)),
        0.0,
    ))
}

fn check_request(req: &SearchRequest) -> Result<(), IndexError> {
    if req.limit > MAX_LIMIT {
        return Err(IndexError::InvalidRequest(format!(
            "limit {} is above the maximum of {MAX_LIMIT}",
            req.limit
        )));
    }
    if req.offset > MAX_OFFSET {
        return Err(IndexError::InvalidRequest(format!(
            "offset {} is above the maximum of {MAX_OFFSET}",
            req.offset
        )));
    }
    Ok(())
}

fn non_empty<'a>(what: &str, value: &'a str) -> Result<&'a str, IndexError> {
    if value.is_empty() {
        Err(IndexError::InvalidFilter(format!("{what} filter is empty")))
    } else {
        Ok(value)
    }
}

/// The filter clauses. Every one scores zero.
fn filter_clauses(f: &Fields, filters: &[FacetFilter]) -> Result<Vec<Box<dyn Query>>, IndexError> {
    let term = |root: &str, value: &str| Term::from_facet(f.facets, &facet(root, value));
    let (mut sources, mut kinds, mut years, mut tags) = (vec![], vec![], vec![], vec![]);
    for filter in filters {
        match filter {
            FacetFilter::Source(s) => sources.push(term(FACET_SOURCE, non_empty("source", s)?)),
            FacetFilter::Kind(k) => kinds.push(term(FACET_KIND, non_empty("kind", k)?)),
            FacetFilter::Year(y) if (0..=9999).contains(y) => {
                years.push(term(FACET_YEAR, &year_value(*y)));
            }
            FacetFilter::Year(y) => {
                return Err(IndexError::InvalidFilter(format!(
                    "year {y} is out of range"
                )));
            }
            FacetFilter::Tag(t) => tags.push(term(FACET_TAG, non_empty("tag", t)?)),
        }
    }
    let mut clauses: Vec<Box<dyn Query>> = Vec::new();
    for any_of in [sources, kinds, years] {
        if !any_of.is_empty() {
            clauses.push(Box::new(ConstScoreQuery::new(
                Box::new(TermSetQuery::new(any_of)),
                0.0,
            )));
        }
    }
    for tag in tags {
        clauses.push(Box::new(ConstScoreQuery::new(
            Box::new(TermQuery::new(tag, IndexRecordOption::Basic)),
            0.0,
        )));
    }
    Ok(clauses)
}

/// Sorts by the `date` column (`updated`, else `created`). Documents without a date get
/// `None`, which sorts last. For oldest-first the timestamp is negated, so that both orders
/// are "largest key first" and share tantivy's descending top-k.
#[derive(Clone, Copy)]
struct ByDate {
    newest_first: bool,
}

struct ByDateSegment {
    column: Option<Column<tantivy::DateTime>>,
    newest_first: bool,
}

impl SortKeyComputer for ByDate {
    type SortKey = Option<i64>;
    type Child = ByDateSegment;
    type Comparator = NaturalComparator;

    fn segment_sort_key_computer(&self, reader: &SegmentReader) -> tantivy::Result<ByDateSegment> {
        // A segment where no document has a date has no column at all.
        let column = reader
            .fast_fields()
            .column_opt::<tantivy::DateTime>(DATE_FIELD)?;
        Ok(ByDateSegment {
            column,
            newest_first: self.newest_first,
        })
    }
}

impl SegmentSortKeyComputer for ByDateSegment {
    type SortKey = Option<i64>;
    type SegmentSortKey = Option<i64>;
    type SegmentComparator = NaturalComparator;

    fn segment_sort_key(&mut self, doc: DocId, _score: Score) -> Option<i64> {
        let micros = self.column.as_ref()?.first(doc)?.into_timestamp_micros();
        Some(if self.newest_first {
            micros
        } else {
            micros.saturating_neg()
        })
    }

    fn convert_segment_sort_key(&self, key: Option<i64>) -> Option<i64> {
        key
    }
}

fn facet_collector() -> FacetCollector {
    let mut collector = FacetCollector::for_field(schema::FACETS_FIELD);
    for root in [FACET_SOURCE, FACET_KIND, FACET_YEAR, FACET_TAG] {
        collector.add_facet(Facet::from_path([root]));
    }
    collector
}

type Collected = (u64, FacetCounts, Vec<(Score, DocAddress)>);

/// Runs one search that counts, computes facets and picks the page together, so all three
/// see exactly the same (trimmed) set of documents.
fn collect<C, K>(
    searcher: &Searcher,
    stats: &QueryStats,
    query: &dyn Query,
    top: Option<C>,
    score_of: fn(&K) -> Score,
) -> Result<Collected, IndexError>
where
    C: Collector<Fruit = Vec<(K, DocAddress)>>,
{
    let (total, facets, top) =
        searcher.search_with_statistics_provider(query, &(Count, facet_collector(), top), stats)?;
    let top = top
        .unwrap_or_default()
        .into_iter()
        .map(|(key, address)| (score_of(&key), address))
        .collect();
    Ok((total as u64, facets, top))
}

pub(crate) fn search(
    searcher: &Searcher,
    f: &Fields,
    queries: &QueryBuilder,
    viewer: &Principals,
    req: &SearchRequest,
) -> Result<SearchResults, IndexError> {
    check_request(req)?;
    let user_query = queries.user_query(&req.query);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
        (
            Occur::Must,
            user_query
                .as_ref()
                .map_or_else(|| Box::new(AllQuery) as Box<dyn Query>, |q| q.box_clone()),
        ),
        (Occur::Must, queries.acl.filter(searcher, f.acl, viewer)?),
    ];
    clauses.extend(
        filter_clauses(f, &req.filters)?
            .into_iter()
            .map(|q| (Occur::Must, q)),
    );
    let query = BooleanQuery::new(clauses);

    let page = || TopDocs::with_limit(req.limit.max(1)).and_offset(req.offset);
    let wants_page = req.limit > 0;
    let stats = QueryStats::new(searcher);
    let (total, facet_counts, top) = match req.sort {
        SortOrder::Relevance => collect(
            searcher,
            &stats,
            &query,
            wants_page.then(|| page().order_by_score()),
            |score: &Score| *score,
        )?,
        SortOrder::Newest | SortOrder::Oldest => {
            let by_date = ByDate {
                newest_first: req.sort == SortOrder::Newest,
            };
            collect(
                searcher,
                &stats,
                &query,
                wants_page.then(|| page().order_by((by_date, SortBySimilarityScore))),
                |key: &(Option<i64>, Score)| key.1,
            )?
        }
    };

    let snippets = match (&user_query, top.is_empty()) {
        (Some(q), false) => Some(Snippets::new(&stats, f, q.as_ref())?),
        _ => None,
    };
    let mut hits = Vec::with_capacity(top.len());
    for (score, address) in top {
        let doc: TantivyDocument = searcher.doc(address)?;
        let stored = schema::to_stored(f, &doc);
        let snippet = snippet_parts(
            snippets.as_ref(),
            f,
            searcher,
            address,
            stored.language,
            &stored.body,
        )?;
        hits.push(Hit {
            source: stored.source,
            external_id: stored.external_id,
            kind: stored.kind,
            title: stored.title,
            url: stored.url,
            author: stored.author,
            language: stored.language,
            created: stored.created,
            updated: stored.updated,
            tags: stored.tags,
            properties: stored.properties,
            score,
            snippet,
        });
    }

    Ok(SearchResults {
        total,
        hits,
        facets: Facets {
            source: facet_values(&facet_counts, FACET_SOURCE),
            kind: facet_values(&facet_counts, FACET_KIND),
            year: facet_values(&facet_counts, FACET_YEAR),
            tag: facet_values(&facet_counts, FACET_TAG),
        },
    })
}

fn facet_values(counts: &FacetCounts, root: &str) -> Vec<FacetCount> {
    let mut values: Vec<FacetCount> = counts
        .get(Facet::from_path([root]))
        .filter_map(|(facet, count)| {
            facet.to_path().last().map(|value| FacetCount {
                value: (*value).to_string(),
                count,
            })
        })
        .collect();
    values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    values.truncate(MAX_FACET_VALUES);
    values
}

/// Snippet generators for the two body fields a hit may have matched in, and those fields'
/// query terms, whose positions say where in a body the matches are.
struct Snippets {
    da: SnippetGenerator,
    en: SnippetGenerator,
    terms: BodyTerms,
}

impl Snippets {
    fn new(stats: &QueryStats, f: &Fields, query: &dyn Query) -> Result<Snippets, IndexError> {
        let terms = BodyTerms::new(stats, query, &[f.body_da, f.body_en])?;
        let generator = |field, name: &str| -> Result<SnippetGenerator, IndexError> {
            // Each search analyses a few texts with a fresh analyser: one that remembers
            // words would only pay to fill its memory.
            let tokenizer = analysis::plain(name).ok_or_else(|| {
                IndexError::Engine(tantivy::TantivyError::InternalError(format!(
                    "no analyser {name}"
                )))
            })?;
            Ok(SnippetGenerator::new(
                terms.texts(field),
                tokenizer,
                field,
                SNIPPET_CHARS,
            ))
        };
        Ok(Snippets {
            da: generator(f.body_da, DANISH)?,
            en: generator(f.body_en, ENGLISH)?,
            terms,
        })
    }
}

/// The snippet of a hit, from its language's body field; the start of the body when that
/// does not match (a title-only match). Only the passage the postings' positions point to
/// is analysed (see `passage`).
fn snippet_parts(
    snippets: Option<&Snippets>,
    f: &Fields,
    searcher: &Searcher,
    address: DocAddress,
    lang: Lang,
    body: &str,
) -> Result<Vec<SnippetPart>, IndexError> {
    let text = prefix(body, SNIPPET_SOURCE_BYTES);
    if let Some(s) = snippets {
        let (field, generator) = match lang {
            Lang::Da => (f.body_da, &s.da),
            Lang::En => (f.body_en, &s.en),
        };
        let matches = s.terms.matches(searcher, address, &[field])?;
        // No match in the part of the body snippets are cut from: its start, as before.
        let Some(range) = passage(text, matches) else {
            return Ok(lead(body));
        };
        let snippet = generator.snippet(&text[range]);
        if !snippet.highlighted().is_empty() {
            return Ok(highlighted_parts(&snippet));
        }
    }
    Ok(lead(body))
}

fn highlighted_parts(snippet: &Snippet) -> Vec<SnippetPart> {
    let fragment = snippet.fragment();
    let mut parts = Vec::new();
    let mut push = |range: Range<usize>, highlighted: bool| {
        if let Some(text) = fragment.get(range) {
            let text = collapse_whitespace(text);
            if !text.is_empty() {
                parts.push(SnippetPart { text, highlighted });
            }
        }
    };
    let mut at = 0;
    for range in collapse_overlapped_ranges(snippet.highlighted()) {
        if range.start > at {
            push(at..range.start, false);
        }
        at = range.end;
        push(range, true);
    }
    if at < fragment.len() {
        push(at..fragment.len(), false);
    }
    parts
}

/// The start of the body, about [`SNIPPET_CHARS`] characters, cut at a word boundary.
fn lead(body: &str) -> Vec<SnippetPart> {
    let text = collapse_whitespace(prefix(body, SNIPPET_CHARS * 4));
    let text = match text.char_indices().nth(SNIPPET_CHARS) {
        None => text,
        Some((cut, _)) => {
            let head = &text[..cut];
            // Back off to the last space unless that would lose much of the snippet.
            match head.rfind(' ') {
                Some(space) if space > cut * 3 / 4 => head[..space].to_string(),
                _ => head.to_string(),
            }
        }
    };
    if text.is_empty() {
        Vec::new()
    } else {
        vec![SnippetPart {
            text,
            highlighted: false,
        }]
    }
}

/// Runs of whitespace (line breaks from extracted text included) become one space. Spaces
/// at the ends are kept: they separate a part from its highlighted neighbour.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_cuts_at_a_word_boundary() {
        let body = "ord ".repeat(100);
        let parts = lead(&body);
        assert_eq!(parts.len(), 1);
        let text = &parts[0].text;
        assert!(text.chars().count() <= SNIPPET_CHARS, "{}", text.len());
        assert!(text.ends_with("ord"), "{text:?}");
        assert!(!parts[0].highlighted);
    }

    #[test]
    fn lead_of_short_and_empty_bodies() {
        assert_eq!(lead("Kort\n\ntekst")[0].text, "Kort tekst");
        assert!(lead("").is_empty());
        assert!(lead("  \n ").iter().all(|p| p.text.trim().is_empty()));
    }

    #[test]
    fn lead_without_spaces_is_cut_hard() {
        let body = "æ".repeat(1000);
        assert_eq!(lead(&body)[0].text.chars().count(), SNIPPET_CHARS);
    }

    #[test]
    fn whitespace_collapses() {
        assert_eq!(collapse_whitespace(" a \n\t b "), " a b ");
    }

    #[test]
    fn request_bounds() {
        let ok = SearchRequest::default();
        assert!(check_request(&ok).is_ok());
        let deep = SearchRequest {
            offset: MAX_OFFSET + 1,
            ..SearchRequest::default()
        };
        let err = check_request(&deep).unwrap_err();
        assert!(err.is_user_error(), "{err}");
        let wide = SearchRequest {
            limit: MAX_LIMIT + 1,
            ..SearchRequest::default()
        };
        assert!(check_request(&wide).unwrap_err().is_user_error());
    }

    #[test]
    fn field_names_are_stripped() {
        let (ast, _) = query_grammar::parse_query_lenient("acl:public title:x 10:30 -a:b");
        let stripped = default_fields_only(ast);
        let text = format!("{stripped:?}");
        assert!(!text.contains("acl"), "{text}");
        assert!(!text.contains("title"), "{text}");
    }
}
