//! Which URLs belong to a crawl, and the one spelling of each: a page reached as
//! `HTTP://Intra:80/a/index.html?b=2&a=1#top` and as `http://intra/a/?a=1&b=2` is one document.

use globset::{Glob, GlobSet, GlobSetBuilder};
use url::Url;

use crate::error::ConnectorError;

/// File names that a web server serves for the folder they are in.
const INDEX_FILES: &[&str] = &["index.html", "index.htm"];

/// Extensions of files that are never documents (images, media, archives, styles, scripts, and
/// office formats the extractors do not read), skipped without a request.
const NOT_DOCUMENTS: &[&str] = &[
    "7z", "avi", "bmp", "css", "csv", "dmg", "doc", "eot", "exe", "gif", "gz", "ico", "iso",
    "jpeg", "jpg", "js", "json", "m4a", "m4v", "mov", "mp3", "mp4", "mpeg", "mpg", "msi", "ogg",
    "otf", "png", "ppt", "pptx", "rar", "rss", "svg", "tar", "tgz", "tif", "tiff", "ttf", "wav",
    "webm", "webp", "wmv", "woff", "woff2", "xls", "xlsx", "xml", "zip",
];

/// The one spelling of `url`, or `None` when it is not an http(s) URL with a host.
///
/// The fragment, user name and password, a default port and a trailing dot of the host are
/// dropped, the host is lowercased (the `url` crate does that), a trailing `index.html` or
/// `index.htm` becomes the folder, and query parameters are sorted (their encoding is kept as
/// written, so `a=%C3%A6` and `a=æ` stay apart only if the server wrote them apart).
pub fn canonical(url: &Url) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let mut url = url.clone();
    let host = url.host_str()?.to_owned();
    if host.is_empty() {
        return None;
    }
    if let Some(trimmed) = host.strip_suffix('.')
        && !trimmed.is_empty()
    {
        url.set_host(Some(trimmed)).ok()?;
    }
    url.set_fragment(None);
    if !url.username().is_empty() {
        url.set_username("").ok()?;
    }
    if url.password().is_some() {
        url.set_password(None).ok()?;
    }
    if url.port().is_some() && url.port() == default_port(url.scheme()) {
        url.set_port(None).ok()?;
    }
    let path = url.path().to_owned();
    if let Some((folder, file)) = path.rsplit_once('/')
        && INDEX_FILES.iter().any(|f| file.eq_ignore_ascii_case(f))
    {
        url.set_path(&format!("{folder}/"));
    }
    if let Some(query) = url.query() {
        let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
        if pairs.is_empty() {
            url.set_query(None);
        } else {
            pairs.sort_unstable();
            pairs.dedup();
            let sorted = pairs.join("&");
            url.set_query(Some(&sorted));
        }
    }
    Some(url)
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// True when the URL's last path segment has an extension of a file that is never a document.
pub fn is_not_a_document(url: &Url) -> bool {
    let file = url.path().rsplit('/').next().unwrap_or("");
    match file.rsplit_once('.') {
        Some((_, ext)) => NOT_DOCUMENTS.iter().any(|e| ext.eq_ignore_ascii_case(e)),
        None => false,
    }
}

/// The part of a URL that the per-prefix page limit counts under: its first path segment
/// (`/kalender` for `/kalender/2031/12?uge=3` and for `/kalender?month=3`), or `/` for the top
/// page and its query variants.
pub fn prefix_key(url: &Url) -> String {
    let first = url
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    format!("/{first}")
}

/// The path and query a pattern or a robots rule sees: `/nyheder/side.html?print=1`.
pub fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// A host the crawl may visit, optionally on one port only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRule {
    pub host: String,
    pub port: Option<u16>,
}

impl HostRule {
    /// Parses `intra.example.dk`, `intra.example.dk:8080`, `127.0.0.1:3000` or `[::1]:80`.
    pub fn parse(value: &str) -> Result<Self, ConnectorError> {
        let value = value.trim().to_ascii_lowercase();
        let bad = || {
            ConnectorError::Config(format!(
                "website hosts entry {value:?} must be a host name, optionally with a port, such as \"intra.example.dk\" or \"intra.example.dk:8080\""
            ))
        };
        if value.is_empty() || value.contains(['/', '?', '#', '@']) {
            return Err(bad());
        }
        let url = Url::parse(&format!("http://{value}/")).map_err(|_| bad())?;
        let host = url.host_str().ok_or_else(bad)?;
        let host = host.trim_end_matches('.').to_owned();
        // `Url` drops port 80 for http; an explicit ":80" still means "this port only".
        let port = url.port().or_else(|| value.ends_with(":80").then_some(80));
        Ok(Self { host, port })
    }

    /// The rule a seed implies: its host, and its port when it is not the scheme's default.
    pub fn of(url: &Url) -> Option<Self> {
        let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
        Some(Self {
            host,
            port: url.port(),
        })
    }

    fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        host.eq_ignore_ascii_case(&self.host)
            && self
                .port
                .is_none_or(|port| url.port_or_known_default() == Some(port))
    }

    /// The host alone, as the HTTP client's `allowed_hosts` takes it.
    pub fn bare_host(&self) -> &str {
        &self.host
    }
}

/// Hosts, path prefixes and include/exclude patterns: the URLs a crawl may fetch.
#[derive(Debug)]
pub struct Scope {
    hosts: Vec<HostRule>,
    prefixes: Vec<String>,
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Scope {
    pub fn new(
        hosts: Vec<HostRule>,
        prefixes: &[String],
        include: &[String],
        exclude: &[String],
    ) -> Result<Self, ConnectorError> {
        let prefixes = if prefixes.is_empty() {
            vec!["/".to_owned()]
        } else {
            prefixes
                .iter()
                .map(|p| {
                    let p = p.trim();
                    if p.starts_with('/') {
                        Ok(p.to_owned())
                    } else {
                        Err(ConnectorError::Config(format!(
                            "website path_prefixes entry {p:?} must start with /, such as \"/nyheder/\""
                        )))
                    }
                })
                .collect::<Result<_, _>>()?
        };
        let include = if include.is_empty() {
            None
        } else {
            Some(glob_set(include, "include")?)
        };
        let exclude = glob_set(exclude, "exclude")?;
        Ok(Self {
            hosts,
            prefixes,
            include,
            exclude,
        })
    }

    pub fn hosts(&self) -> &[HostRule] {
        &self.hosts
    }

    /// True when `url` (canonical) may be crawled: an allowed host, under a path prefix,
    /// matching an include pattern if there are any, and no exclude pattern.
    pub fn contains(&self, url: &Url) -> bool {
        if !self.hosts.iter().any(|rule| rule.matches(url)) {
            return false;
        }
        let path = url.path();
        if !self.prefixes.iter().any(|prefix| path.starts_with(prefix)) {
            return false;
        }
        let target = path_and_query(url);
        if let Some(include) = &self.include
            && !include.is_match(&target)
        {
            return false;
        }
        !self.exclude.is_match(&target)
    }
}

/// Patterns are globs over the path and query, where `*` also crosses `/`: a URL is not a file
/// tree, and `/kalender*` should catch `/kalender/2031?uge=3` as well.
fn glob_set(patterns: &[String], field: &str) -> Result<GlobSet, ConnectorError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern.trim()).map_err(|e| {
            ConnectorError::Config(format!(
                "invalid website {field} pattern {pattern:?}: {}",
                e.kind()
            ))
        })?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| ConnectorError::Config(format!("invalid website {field} patterns: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> Option<String> {
        canonical(&Url::parse(s).unwrap()).map(|u| u.to_string())
    }

    #[test]
    fn one_spelling_per_page() {
        let cases = [
            (
                "http://Intra.Example.DK:80/a/",
                Some("http://intra.example.dk/a/"),
            ),
            ("https://intra:443/a#top", Some("https://intra/a")),
            ("http://intra:8080/a", Some("http://intra:8080/a")),
            ("http://intra/a/index.html", Some("http://intra/a/")),
            ("http://intra/INDEX.HTM?x=1", Some("http://intra/?x=1")),
            (
                "http://intra/a/index.html.bak",
                Some("http://intra/a/index.html.bak"),
            ),
            (
                "http://intra/s?b=2&a=1&&a=1",
                Some("http://intra/s?a=1&b=2"),
            ),
            ("http://intra/s?", Some("http://intra/s")),
            ("http://bruger:hemmelig@intra./s", Some("http://intra/s")),
            ("http://intra", Some("http://intra/")),
            ("mailto:it@intra.dk", None),
            ("javascript:void(0)", None),
            ("ftp://intra/fil.pdf", None),
        ];
        for (input, expected) in cases {
            assert_eq!(canon(input).as_deref(), expected, "{input}");
        }
    }

    #[test]
    fn prefixes_and_documents() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            prefix_key(&url("http://i/kalender/2031/12?uge=3")),
            "/kalender"
        );
        assert_eq!(prefix_key(&url("http://i/kalender?month=3")), "/kalender");
        assert_eq!(prefix_key(&url("http://i/")), "/");
        assert!(is_not_a_document(&url("http://i/logo.PNG")));
        assert!(!is_not_a_document(&url("http://i/haandbog.pdf")));
        assert!(!is_not_a_document(&url("http://i/side.aspx?id=3")));
        assert!(!is_not_a_document(&url("http://i/mappe/")));
    }

    #[test]
    fn scope_rules() {
        let scope = Scope::new(
            vec![
                HostRule::parse("intra.example.dk").unwrap(),
                HostRule::parse("127.0.0.1:3000").unwrap(),
            ],
            &["/nyheder/".to_owned(), "/hr/".to_owned()],
            &[],
            &["*?print=*".to_owned(), "/hr/arkiv/**".to_owned()],
        )
        .unwrap();
        let cases = [
            ("https://intra.example.dk/nyheder/a.html", true),
            ("http://intra.example.dk:8443/hr/", true),
            ("https://intra.example.dk/om/", false),
            ("https://other.example.dk/nyheder/", false),
            ("http://127.0.0.1:3000/hr/x", true),
            ("http://127.0.0.1:3001/hr/x", false),
            ("https://intra.example.dk/nyheder/a.html?print=1", false),
            ("https://intra.example.dk/hr/arkiv/2001/x", false),
        ];
        for (input, expected) in cases {
            assert_eq!(
                scope.contains(&Url::parse(input).unwrap()),
                expected,
                "{input}"
            );
        }
        assert!(HostRule::parse("http://intra/").is_err());
        assert_eq!(HostRule::parse("intra:80").unwrap().port, Some(80));
    }
}
