//! What a crawled HTML page says about itself and where it leads: robots meta tags, a meta
//! refresh, `<base href>`, `<link rel="canonical">` and its links; and the state a page keeps
//! between runs in its document's fingerprint.

use scraper::{Html, Selector};
use serde::{Deserialize, Serialize};
use url::Url;

/// A meta refresh waiting longer than this is a page that reloads itself, not a redirect.
const MAX_REFRESH_REDIRECT_SECS: u64 = 30;

/// The links a page's state keeps; a page with more is a listing the limits should look at.
pub const MAX_LINKS_PER_PAGE: usize = 5_000;

/// Bump when the page state's meaning changes, so that old states are ignored once.
const STATE_VERSION: u32 = 1;

/// What the HTML says about the page.
#[derive(Debug, Default)]
pub struct PageMeta {
    pub noindex: bool,
    pub nofollow: bool,
    /// The target of a `<meta http-equiv="refresh" content="0; url=...">` redirect, resolved.
    pub refresh: Option<Url>,
    /// `<link rel="canonical">`, resolved against the base.
    pub canonical: Option<Url>,
    /// Every `href` of `<a>` and `<area>` and `src` of `<frame>` and `<iframe>`, resolved
    /// against the base, with whether the link is marked `rel="nofollow"`.
    pub links: Vec<(Url, bool)>,
}

/// Reads the page. `url` is where it was fetched from (after redirects); `agent` is the robots
/// name besides `robots` whose meta tags apply (`samle`).
pub fn analyse(source: &str, url: &Url, agent: &str) -> PageMeta {
    let document = Html::parse_document(source);
    let mut meta = PageMeta::default();

    let base = select(&document, "base[href]")
        .next()
        .and_then(|base| base.attr("href"))
        .and_then(|href| url.join(href.trim()).ok())
        .unwrap_or_else(|| url.clone());

    for tag in select(&document, "meta[content]") {
        let content = tag.attr("content").unwrap_or("");
        if let Some(name) = tag.attr("name") {
            let name = name.trim();
            if name.eq_ignore_ascii_case("robots") || name.eq_ignore_ascii_case(agent) {
                let (noindex, nofollow) = robots_directives(content);
                meta.noindex |= noindex;
                meta.nofollow |= nofollow;
            }
        }
        if meta.refresh.is_none()
            && tag
                .attr("http-equiv")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("refresh"))
        {
            meta.refresh = refresh_target(content, &base).filter(|target| target != url);
        }
    }

    meta.canonical = select(&document, "link[rel][href]")
        .find(|link| {
            link.attr("rel").is_some_and(|rel| {
                rel.split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("canonical"))
            })
        })
        .and_then(|link| link.attr("href"))
        .and_then(|href| base.join(href.trim()).ok());

    for element in select(&document, "a[href], area[href], frame[src], iframe[src]") {
        let Some(target) = element.attr("href").or_else(|| element.attr("src")) else {
            continue;
        };
        let target = target.trim();
        if target.is_empty() || target.starts_with('#') {
            continue;
        }
        let Ok(resolved) = base.join(target) else {
            continue;
        };
        let nofollow = element.attr("rel").is_some_and(|rel| {
            rel.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("nofollow"))
        });
        meta.links.push((resolved, nofollow));
    }
    meta
}

/// `(noindex, nofollow)` from a robots meta tag or an `X-Robots-Tag` header value.
pub fn robots_directives(content: &str) -> (bool, bool) {
    let mut noindex = false;
    let mut nofollow = false;
    for directive in content.split([',', ' ']).map(str::trim) {
        if directive.eq_ignore_ascii_case("noindex") {
            noindex = true;
        } else if directive.eq_ignore_ascii_case("nofollow") {
            nofollow = true;
        } else if directive.eq_ignore_ascii_case("none") {
            noindex = true;
            nofollow = true;
        }
    }
    (noindex, nofollow)
}

/// The target of `content="0; url=/ny/side.html"` (also `0;URL='...'`), when the wait is
/// short enough to be a redirect.
fn refresh_target(content: &str, base: &Url) -> Option<Url> {
    let (delay, rest) = content.split_once([';', ','])?;
    let delay: f64 = delay.trim().parse().ok()?;
    if !(0.0..=MAX_REFRESH_REDIRECT_SECS as f64).contains(&delay) {
        return None;
    }
    let rest = rest.trim();
    let value = match rest.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("url=") => &rest[4..],
        _ => rest,
    };
    let value = value.trim().trim_matches(|c| c == '\'' || c == '"').trim();
    if value.is_empty() {
        return None;
    }
    base.join(value).ok()
}

fn select<'a>(document: &'a Html, css: &str) -> impl Iterator<Item = scraper::ElementRef<'a>> {
    // The selectors are constants; one that does not parse selects nothing.
    let selector = Selector::parse(css).ok();
    selector
        .map(|s| document.select(&s).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
}

/// What a page keeps between runs, as its document's fingerprint (compact JSON): the hash of
/// the document, the validators for a conditional GET, the sitemap's `lastmod` when it was
/// fetched, and its links (so that a 304 still leads on to the pages behind it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PageState {
    #[serde(rename = "v")]
    pub version: u32,
    /// The hash of everything the document says; equal means unchanged.
    #[serde(rename = "h")]
    pub hash: String,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The sitemap's `lastmod` for the page when it was fetched, RFC 3339.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub sitemap_lastmod: Option<String>,
    /// Links within scope: `/path?query` on the page's own origin, absolute otherwise.
    #[serde(rename = "l", default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
}

impl PageState {
    pub fn new(hash: String) -> Self {
        Self {
            version: STATE_VERSION,
            hash,
            ..Self::default()
        }
    }

    /// The state in a fingerprint, or `None` for one written by another version.
    pub fn parse(fingerprint: &str) -> Option<Self> {
        serde_json::from_str::<Self>(fingerprint)
            .ok()
            .filter(|state| state.version == STATE_VERSION)
    }

    pub fn to_fingerprint(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Stores `links` compactly relative to `page`.
    pub fn set_links(&mut self, page: &Url, links: &[Url]) {
        let origin = page.origin();
        self.links = links
            .iter()
            .map(|link| {
                // A path starting with `//` would read back as another host.
                if link.origin() == origin && !link.path().starts_with("//") {
                    let mut relative = link.path().to_owned();
                    if let Some(query) = link.query() {
                        relative.push('?');
                        relative.push_str(query);
                    }
                    relative
                } else {
                    link.to_string()
                }
            })
            .collect();
    }
}

/// A link as [`PageState`] stores it, absolute again: `origin` is the page's
/// (`http://intra:8080`).
#[cfg(test)]
pub fn absolute_link(origin: &str, link: String) -> String {
    let mut absolute = String::new();
    absolute_link_into(&mut absolute, origin, &link);
    absolute
}

/// [`absolute_link`] into `buffer`, replacing what it held.
pub fn absolute_link_into(buffer: &mut String, origin: &str, link: &str) {
    buffer.clear();
    if link.starts_with('/') {
        buffer.push_str(origin);
    }
    buffer.push_str(link);
}

/// A page's origin as its stored links are relative to (`http://intra:8080`), the same as
/// `page.origin().ascii_serialization()`: for an http(s) URL without credentials, the start
/// of its own text, so no formatting is needed.
pub fn origin_of(page: &Url) -> String {
    let plain = matches!(page.scheme(), "http" | "https")
        && page.username().is_empty()
        && page.password().is_none()
        && page.has_host();
    if plain {
        page[..url::Position::BeforePath].to_owned()
    } else {
        page.origin().ascii_serialization()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_tags_links_and_base() {
        let page = Url::parse("http://intra/nyheder/2031/side.html").unwrap();
        let html = r##"<!doctype html><html><head>
            <base href="/nyheder/">
            <meta name="ROBOTS" content="NoIndex">
            <link rel="alternate canonical" href="kantine.html">
            </head><body>
            <a href="arkiv/?side=2">Arkiv</a>
            <a href="/intern/" rel="nofollow">Intern</a>
            <a href="#top">Top</a>
            <a href="mailto:it@intra">Skriv</a>
            <map><area href="/kort.html"></map>
            </body></html>"##;
        let meta = analyse(html, &page, "samle");
        assert!(meta.noindex);
        assert!(!meta.nofollow);
        assert_eq!(
            meta.canonical.unwrap().as_str(),
            "http://intra/nyheder/kantine.html"
        );
        let links: Vec<(String, bool)> = meta
            .links
            .iter()
            .map(|(u, n)| (u.to_string(), *n))
            .collect();
        assert_eq!(
            links,
            [
                ("http://intra/nyheder/arkiv/?side=2".to_owned(), false),
                ("http://intra/intern/".to_owned(), true),
                ("mailto:it@intra".to_owned(), false),
                ("http://intra/kort.html".to_owned(), false),
            ]
        );
    }

    #[test]
    fn refresh_redirects() {
        let base = Url::parse("http://intra/gammel/").unwrap();
        let cases = [
            ("0; url=/ny/", Some("http://intra/ny/")),
            ("0;URL='ny.html'", Some("http://intra/gammel/ny.html")),
            ("5, url=\"/x\"", Some("http://intra/x")),
            ("300; url=/x", None),
            ("30", None),
            ("0; url=", None),
        ];
        for (content, expected) in cases {
            assert_eq!(
                refresh_target(content, &base)
                    .map(|u| u.to_string())
                    .as_deref(),
                expected,
                "{content}"
            );
        }
        assert_eq!(robots_directives("none"), (true, true));
        assert_eq!(robots_directives("index, nofollow"), (false, true));
    }

    #[test]
    fn origins_are_cut_from_the_url_as_the_url_crate_would_serialise_them() {
        for url in [
            "http://intra/a/b.html",
            "http://intra:8080/a?b=c",
            "https://intra:443/",
            "http://127.0.0.1:39123/x",
            "http://[::1]:8080/x",
            "http://bÜcher.example/x",
            "http://user:secret@intra/x",
            "http://user@intra:81/x",
            "https://INTRA.Example.DK/x",
        ] {
            let url = Url::parse(url).unwrap();
            assert_eq!(origin_of(&url), url.origin().ascii_serialization(), "{url}");
        }
    }

    #[test]
    fn links_are_made_absolute_in_one_buffer() {
        let mut buffer = "left over".to_owned();
        absolute_link_into(&mut buffer, "http://intra:8080", "/c?d=1");
        assert_eq!(buffer, "http://intra:8080/c?d=1");
        absolute_link_into(&mut buffer, "http://intra:8080", "http://other/e");
        assert_eq!(buffer, "http://other/e");
    }

    #[test]
    fn state_round_trip_with_relative_links() {
        let page = Url::parse("http://intra:8080/a/b.html").unwrap();
        let links = [
            Url::parse("http://intra:8080/c?d=1").unwrap(),
            Url::parse("http://other/e").unwrap(),
        ];
        let mut state = PageState::new("abc".to_owned());
        state.etag = Some("\"v1\"".to_owned());
        state.set_links(&page, &links);
        assert_eq!(state.links, ["/c?d=1", "http://other/e"]);
        let back = PageState::parse(&state.to_fingerprint()).unwrap();
        assert_eq!(back, state);
        let origin = page.origin().ascii_serialization();
        let absolute: Vec<String> = back
            .links
            .into_iter()
            .map(|link| absolute_link(&origin, link))
            .collect();
        assert_eq!(absolute, ["http://intra:8080/c?d=1", "http://other/e"]);
        assert_eq!(PageState::parse("{\"v\":0,\"h\":\"x\"}"), None);
        assert_eq!(PageState::parse("not json"), None);
    }
}
