//! Search parameters and results, shared by the search page and the JSON API so that both
//! take the same parameters and show exactly the same (permission-trimmed) results.

use std::collections::BTreeMap;

use samle_index::{FacetFilter, Hit, SearchRequest, SearchResults, SortOrder};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::web::error::AppError;

/// The deepest result a visitor may page to: deep paging is costly and never useful.
pub const MAX_RESULT_WINDOW: usize = 1000;
pub const PAGE_SIZE: usize = 10;
pub const MAX_PAGE_SIZE: usize = 50;

/// The raw query string: every value is a string so a bad one gets our own clear error.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SearchParams {
    pub q: Option<String>,
    pub source: Option<String>,
    pub kind: Option<String>,
    pub year: Option<String>,
    pub tag: Option<String>,
    pub sort: Option<String>,
    pub page: Option<String>,
    pub limit: Option<String>,
}

/// Validated parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchQuery {
    pub q: String,
    pub source: Option<String>,
    pub kind: Option<String>,
    pub year: Option<i32>,
    pub tag: Option<String>,
    pub sort: SortOrder,
    pub page: usize,
    pub limit: usize,
}

impl SearchParams {
    pub fn validate(&self, default_limit: usize) -> Result<SearchQuery, AppError> {
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let q: String = self
            .q
            .as_deref()
            .unwrap_or("")
            .trim()
            .chars()
            .take(500)
            .collect();
        let year = match nonempty(&self.year) {
            Some(y) => Some(
                y.parse::<i32>()
                    .ok()
                    .filter(|y| (1900..=2200).contains(y))
                    .ok_or_else(|| AppError::bad_request(format!("year `{y}` is not a year")))?,
            ),
            None => None,
        };
        let sort = match nonempty(&self.sort).as_deref() {
            None | Some("relevance") => SortOrder::Relevance,
            Some("newest") => SortOrder::Newest,
            Some("oldest") => SortOrder::Oldest,
            Some(other) => {
                return Err(AppError::bad_request(format!(
                    "sort `{other}` is not one of relevance, newest, oldest"
                )));
            }
        };
        let page =
            match nonempty(&self.page) {
                Some(p) => p.parse::<usize>().ok().filter(|p| *p >= 1).ok_or_else(|| {
                    AppError::bad_request(format!("page `{p}` is not a page number"))
                })?,
                None => 1,
            };
        let limit = match nonempty(&self.limit) {
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_PAGE_SIZE).contains(l))
                .ok_or_else(|| {
                    AppError::bad_request(format!(
                        "limit `{l}` must be a number from 1 to {MAX_PAGE_SIZE}"
                    ))
                })?,
            None => default_limit,
        };
        if page * limit > MAX_RESULT_WINDOW {
            return Err(AppError::bad_request(format!(
                "results past number {MAX_RESULT_WINDOW} are not shown; narrow the search instead"
            )));
        }
        Ok(SearchQuery {
            q,
            source: nonempty(&self.source),
            kind: nonempty(&self.kind),
            year,
            tag: nonempty(&self.tag),
            sort,
            page,
            limit,
        })
    }
}

impl SearchQuery {
    pub fn to_request(&self) -> SearchRequest {
        let mut filters = Vec::new();
        if let Some(s) = &self.source {
            filters.push(FacetFilter::Source(s.clone()));
        }
        if let Some(k) = &self.kind {
            filters.push(FacetFilter::Kind(k.clone()));
        }
        if let Some(y) = self.year {
            filters.push(FacetFilter::Year(y));
        }
        if let Some(t) = &self.tag {
            filters.push(FacetFilter::Tag(t.clone()));
        }
        SearchRequest {
            query: self.q.clone(),
            filters,
            sort: self.sort,
            offset: (self.page - 1) * self.limit,
            limit: self.limit,
        }
    }

    /// The parameters as pairs, in a stable order, without defaults.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![("q", self.q.clone())];
        if let Some(s) = &self.source {
            p.push(("source", s.clone()));
        }
        if let Some(k) = &self.kind {
            p.push(("kind", k.clone()));
        }
        if let Some(y) = self.year {
            p.push(("year", y.to_string()));
        }
        if let Some(t) = &self.tag {
            p.push(("tag", t.clone()));
        }
        if self.sort != SortOrder::Relevance {
            p.push(("sort", sort_name(self.sort).into()));
        }
        if self.page > 1 {
            p.push(("page", self.page.to_string()));
        }
        p
    }

    /// A link to this search with one parameter changed (`None` removes it); any change
    /// other than the page goes back to page 1.
    pub fn link_with(&self, key: &str, value: Option<&str>) -> String {
        let mut pairs: Vec<(&str, String)> = self
            .pairs()
            .into_iter()
            .filter(|(k, _)| *k != key && (key == "page" || *k != "page"))
            .collect();
        if let Some(v) = value {
            pairs.push((key_static(key), v.to_string()));
        }
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            ser.append_pair(k, &v);
        }
        format!("/search?{}", ser.finish())
    }
}

fn key_static(key: &str) -> &'static str {
    match key {
        "q" => "q",
        "source" => "source",
        "kind" => "kind",
        "year" => "year",
        "tag" => "tag",
        "sort" => "sort",
        _ => "page",
    }
}

pub fn sort_name(s: SortOrder) -> &'static str {
    match s {
        SortOrder::Relevance => "relevance",
        SortOrder::Newest => "newest",
        SortOrder::Oldest => "oldest",
    }
}

/// Only web links are rendered as links: a `javascript:` or `data:` URL from a source must
/// never become clickable.
pub fn safe_link(url: Option<&str>) -> Option<String> {
    let url = url?;
    let parsed = url::Url::parse(url).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

/// Where a hit leads: its own web address, else the portal's page for the document.
pub fn hit_link(hit: &Hit) -> String {
    safe_link(hit.url.as_deref()).unwrap_or_else(|| doc_path(&hit.source, &hit.external_id))
}

pub fn doc_path(source: &str, external_id: &str) -> String {
    let encoded: Vec<String> = external_id.split('/').map(percent_encode_segment).collect();
    format!(
        "/doc/{}/{}",
        percent_encode_segment(source),
        encoded.join("/")
    )
}

fn percent_encode_segment(seg: &str) -> String {
    // `form_urlencoded` would turn spaces into `+`, which is wrong in a path.
    url::form_urlencoded::byte_serialize(seg.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// One hit as both the page and the API show it.
#[derive(Clone, Debug, Serialize)]
pub struct HitView {
    pub source: String,
    pub source_name: String,
    pub id: String,
    pub kind: String,
    pub title: String,
    pub link: String,
    pub url: Option<String>,
    pub author: Option<String>,
    pub language: String,
    pub created: Option<String>,
    pub updated: Option<String>,
    pub tags: Vec<String>,
    pub score: f32,
    pub snippet: Vec<samle_index::SnippetPart>,
    /// Structured facts from the source, such as a person's `phone` and `mail`.
    pub properties: BTreeMap<String, String>,
    /// For a hit of kind `person`: what its card shows, with safe links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonCard>,
}

/// The kind whose hits are shown as person cards.
pub const PERSON_KIND: &str = "person";

/// A person's card in the results: their facts, and links that can only dial or write.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PersonCard {
    pub title: Option<String>,
    pub department: Option<String>,
    pub phone: Option<String>,
    /// `tel:` link for `phone`, when it holds a number.
    pub tel: Option<String>,
    pub mail: Option<String>,
    /// `mailto:` link for `mail`, when it is an address.
    pub mailto: Option<String>,
    pub manager: Option<String>,
    pub office: Option<String>,
    pub room: Option<String>,
}

impl PersonCard {
    pub fn from_properties(p: &BTreeMap<String, String>) -> PersonCard {
        let get = |key: &str| {
            p.get(key)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let phone = get("phone");
        let mail = get("mail");
        PersonCard {
            title: get("title"),
            department: get("department"),
            tel: phone.as_deref().and_then(tel_link),
            phone,
            mailto: mail.as_deref().and_then(mailto_link),
            mail,
            manager: get("manager"),
            office: get("office"),
            room: get("room"),
        }
    }
}

/// A `tel:` URI (RFC 3966) for a phone number as people write it: the digits, with a leading
/// `+` kept; spaces, dashes, dots and brackets dropped. Anything else is not a number.
pub fn tel_link(phone: &str) -> Option<String> {
    let phone = phone.trim();
    let (plus, rest) = match phone.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", phone),
    };
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
            _ => return None,
        }
    }
    (digits.len() >= 3).then(|| format!("tel:{plus}{digits}"))
}

/// A `mailto:` URI for something that looks like one address: one `@`, text on both sides,
/// no spaces and none of the characters that would add headers or recipients.
pub fn mailto_link(mail: &str) -> Option<String> {
    let mail = mail.trim();
    let (local, domain) = mail.split_once('@')?;
    let plain = |s: &str| {
        !s.is_empty()
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "@?&#%,;:<>\"'/\\".contains(c))
    };
    (plain(local) && plain(domain) && domain.contains('.')).then(|| format!("mailto:{mail}"))
}

#[derive(Clone, Debug, Serialize)]
pub struct FacetView {
    pub value: String,
    pub label: String,
    pub count: u64,
    pub selected: bool,
    pub link: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResultsView {
    pub query: String,
    pub total: u64,
    pub page: usize,
    pub limit: usize,
    pub pages: usize,
    pub first: usize,
    pub last: usize,
    pub sort: &'static str,
    pub hits: Vec<HitView>,
    pub facets: BTreeMap<&'static str, Vec<FacetView>>,
    pub took_ms: f64,
}

pub fn source_names(config: &Config) -> BTreeMap<String, String> {
    config
        .sources
        .iter()
        .map(|s| (s.id.clone(), s.name.clone()))
        .collect()
}

/// Turns index results into what the page and the API show.
pub fn view(
    config: &Config,
    q: &SearchQuery,
    results: SearchResults,
    took_ms: f64,
    kind_label: &dyn Fn(&str) -> String,
) -> ResultsView {
    let names = source_names(config);
    let name_of = |s: &str| names.get(s).cloned().unwrap_or_else(|| s.to_string());
    let hits = results
        .hits
        .into_iter()
        .map(|h| HitView {
            person: (h.kind == PERSON_KIND).then(|| PersonCard::from_properties(&h.properties)),
            link: hit_link(&h),
            url: safe_link(h.url.as_deref()),
            source_name: name_of(&h.source),
            source: h.source,
            id: h.external_id,
            kind: h.kind,
            title: h.title,
            author: h.author,
            language: h.language.as_str().to_string(),
            created: h.created.map(|d| d.to_rfc3339()),
            updated: h.updated.map(|d| d.to_rfc3339()),
            tags: h.tags,
            score: h.score,
            snippet: h.snippet,
            properties: h.properties,
        })
        .collect();
    let facet = |key: &'static str,
                 counts: Vec<samle_index::FacetCount>,
                 selected: Option<String>,
                 label: &dyn Fn(&str) -> String| {
        counts
            .into_iter()
            .map(|c| {
                let is_sel = selected.as_deref() == Some(c.value.as_str());
                FacetView {
                    link: q.link_with(key, if is_sel { None } else { Some(&c.value) }),
                    label: label(&c.value),
                    selected: is_sel,
                    value: c.value,
                    count: c.count,
                }
            })
            .collect::<Vec<_>>()
    };
    let mut facets = BTreeMap::new();
    facets.insert(
        "source",
        facet("source", results.facets.source, q.source.clone(), &name_of),
    );
    facets.insert(
        "kind",
        facet("kind", results.facets.kind, q.kind.clone(), kind_label),
    );
    let mut years = results.facets.year;
    years.sort_by(|a, b| b.value.cmp(&a.value));
    facets.insert(
        "year",
        facet("year", years, q.year.map(|y| y.to_string()), &|v: &str| {
            v.to_string()
        }),
    );
    facets.insert(
        "tag",
        facet("tag", results.facets.tag, q.tag.clone(), &|v: &str| {
            v.to_string()
        }),
    );
    let total = results.total;
    let shown_total = (total as usize).min(MAX_RESULT_WINDOW);
    let pages = shown_total.div_ceil(q.limit).max(1);
    let first = (q.page - 1) * q.limit + 1;
    let last = (first + q.limit - 1).min(total as usize);
    ResultsView {
        query: q.q.clone(),
        total,
        page: q.page,
        limit: q.limit,
        pages,
        first: if total == 0 { 0 } else { first },
        last,
        sort: sort_name(q.sort),
        hits,
        facets,
        took_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> SearchParams {
        let qs = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        serde_urlencoded_from(&qs)
    }

    fn serde_urlencoded_from(qs: &str) -> SearchParams {
        let mut p = SearchParams::default();
        for (k, v) in url::form_urlencoded::parse(qs.as_bytes()) {
            let v = Some(v.to_string());
            match k.as_ref() {
                "q" => p.q = v,
                "source" => p.source = v,
                "kind" => p.kind = v,
                "year" => p.year = v,
                "tag" => p.tag = v,
                "sort" => p.sort = v,
                "page" => p.page = v,
                "limit" => p.limit = v,
                _ => {}
            }
        }
        p
    }

    #[test]
    fn validation_table() {
        let ok: &[&[(&str, &str)]] = &[
            &[],
            &[("q", "ferie")],
            &[("q", "x"), ("sort", "newest"), ("page", "3")],
            &[("year", "2026"), ("limit", "50")],
            &[("source", ""), ("year", " ")],
        ];
        for p in ok {
            assert!(params(p).validate(10).is_ok(), "{p:?}");
        }
        let bad: &[&[(&str, &str)]] = &[
            &[("sort", "best")],
            &[("page", "0")],
            &[("page", "abc")],
            &[("page", "-1")],
            &[("limit", "500")],
            &[("year", "20x6")],
            &[("page", "200")],
        ];
        for p in bad {
            assert!(params(p).validate(10).is_err(), "{p:?}");
        }
    }

    #[test]
    fn links_keep_filters_and_reset_page() {
        let q = params(&[("q", "sygefravær"), ("source", "ledelse"), ("page", "2")])
            .validate(10)
            .unwrap();
        assert_eq!(
            q.link_with("kind", Some("file")),
            "/search?q=sygefrav%C3%A6r&source=ledelse&kind=file"
        );
        assert_eq!(q.link_with("source", None), "/search?q=sygefrav%C3%A6r");
        assert_eq!(
            q.link_with("page", Some("3")),
            "/search?q=sygefrav%C3%A6r&source=ledelse&page=3"
        );
    }

    #[test]
    fn only_web_links_are_links() {
        assert_eq!(
            safe_link(Some("https://intra.example/a b")).as_deref(),
            Some("https://intra.example/a%20b")
        );
        assert_eq!(safe_link(Some("javascript:alert(1)")), None);
        assert_eq!(safe_link(Some("JaVaScRiPt:alert(1)")), None);
        assert_eq!(safe_link(Some("data:text/html,<script>")), None);
        assert_eq!(safe_link(Some("file:///etc/passwd")), None);
        assert_eq!(safe_link(Some("/relative")), None);
    }

    #[test]
    fn person_links_only_dial_or_write() {
        let table: &[(&str, Option<&str>)] = &[
            ("+45 89 40 12 31", Some("tel:+4589401231")),
            ("(089) 40-12.31", Some("tel:089401231")),
            ("8940\u{a0}1231", Some("tel:89401231")),
            ("javascript:alert(1)", None),
            ("+45 89 40 12 31 ext. 4", None),
            ("12", None),
            ("", None),
        ];
        for (phone, expected) in table {
            assert_eq!(tel_link(phone).as_deref(), *expected, "{phone:?}");
        }
        let table: &[(&str, Option<&str>)] = &[
            (
                "mette.sorensen@kommune.example",
                Some("mailto:mette.sorensen@kommune.example"),
            ),
            (
                " anna@kommune.example ",
                Some("mailto:anna@kommune.example"),
            ),
            ("dobbelt", None),
            ("a@b", None),
            ("a@b.example?cc=boss@x.example", None),
            ("a b@x.example", None),
            ("a@b@x.example", None),
            ("\"><script>@x.example", None),
        ];
        for (mail, expected) in table {
            assert_eq!(mailto_link(mail).as_deref(), *expected, "{mail:?}");
        }
        let card = PersonCard::from_properties(
            &[
                ("phone".to_string(), "+45 89 40 12 31".to_string()),
                ("mail".to_string(), "mette@kommune.example".to_string()),
                ("manager".to_string(), "Lars Ærenlund".to_string()),
                ("title".to_string(), "  ".to_string()),
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(card.tel.as_deref(), Some("tel:+4589401231"));
        assert_eq!(card.mailto.as_deref(), Some("mailto:mette@kommune.example"));
        assert_eq!(card.manager.as_deref(), Some("Lars Ærenlund"));
        assert_eq!(card.title, None);
    }

    #[test]
    fn doc_paths_are_encoded() {
        assert_eq!(
            doc_path("haandbog", "Fravær/Syg dag.md"),
            "/doc/haandbog/Frav%C3%A6r/Syg%20dag.md"
        );
    }
}
